import Foundation
import Testing

@testable import FeedGenerator

/// The hard noise: the same people and truth as the standard noise, with AMA and CRM records spelled worse,
/// reproducibly; the other feeds are untouched.
struct NoiseTests {
    @Test func hardNoiseRespellsAMAAndCRMRecordsOnlyAndRepeats() throws {
        let standard = try TinyWorld(seed: 5, physicians: 400)
        let hard = try TinyWorld(seed: 5, physicians: 400, noise: .hard)
        let again = try TinyWorld(seed: 5, physicians: 400, noise: .hard)
        defer { for w in [standard, hard, again] { w.remove() } }
        #expect(try hard.files("crm_accounts").map(\.text) == (try again.files("crm_accounts").map(\.text)))
        #expect(try hard.files("ama").map(\.text) == (try again.files("ama").map(\.text)))
        for feed in ["nppes", "xponent", "claims"] {
            #expect(try standard.files(feed).map(\.text) == (try hard.files(feed).map(\.text)), "\(feed)")
        }
        let truth = { (w: TinyWorld) in
            try String(contentsOf: w.root.appendingPathComponent("truth/source_map.csv"), encoding: .utf8)
        }
        #expect(try truth(standard) == (try truth(hard)))
        // AMA: the same records (by ME number), a good share of them spelled differently.
        // The first (full) masterfile of each.
        let masterfile = { (w: TinyWorld) in
            let all = try w.records("ama")
            return all.filter { $0.batch == all[0].batch }.map(\.fields)
        }
        let before = Dictionary(uniqueKeysWithValues: try masterfile(standard).map { ($0["ME_NUMBER"]!, $0) })
        let after = try masterfile(hard)
        #expect(after.count == before.count)
        let changed = after.filter { row in
            let old = before[row["ME_NUMBER"]!]!
            return ["LAST_NAME", "FIRST_NAME", "MAILING_ADDRESS", "CITY", "ZIP"].contains { old[$0] != row[$0] }
        }
        #expect(
            changed.count > after.count / 5 && changed.count < after.count * 3 / 4, "\(changed.count) of \(after.count)"
        )
        #expect(after.contains { ($0["ZIP"] ?? "").isEmpty })
        // CRM accounts carry fewer NPIs.
        let npis = { (w: TinyWorld) in
            try w.objects("crm_accounts").filter { !($0["NPI_vod__c"] as! String).isEmpty }.count
        }
        #expect(try npis(hard) < (try npis(standard)))
    }

    @Test func typosAreOneEditOfTheFourKinds() {
        var r = SeededRandom(seed: 3)
        for _ in 0..<200 {
            let typo = PersonNoise.typo("MARTINEZ", &r)
            #expect(typo != "MARTINEZ")
            #expect(abs(typo.count - 8) <= 1)
            #expect(typo.first == "M")
        }
        #expect(PersonNoise.zipError("07102", &r).count == 5)
    }
}
