import Foundation
import Testing

@testable import FeedGenerator

/// The glossary's story, read back from the files as an analyst would (latest delivery wins).
struct BrandStoryTests {
    static let own = "50090123401"

    /// 0 launch (to mid-July 2024), 1 late growth (Q4 2025), 2 late maturity (Q4 2026); -1 otherwise.
    func phase(_ isoDate: String) -> Int {
        isoDate < "2024-07-15"
            ? 0 : isoDate >= "2025-10-01" && isoDate < "2026-01-01" ? 1 : isoDate >= "2026-10-01" ? 2 : -1
    }

    @Test func ownShareRisesThenErodesAfterTheGeneric() throws {
        let world = try TinyWorld(physicians: 600)
        defer { world.remove() }
        var latest: [String: [String: String]] = [:]
        for record in try world.records("xponent") {
            let f = record.fields
            latest["\(f["PRESCRIBER_ID"]!)|\(f["PRODUCT_NDC11"]!)|\(f["WEEK_ENDING"]!)"] = f
        }
        var own = [0.0, 0.0, 0.0]
        var all = [0.0, 0.0, 0.0]
        var ownNRx = 0.0
        var ownTRx = 0.0
        for f in latest.values {
            let p = phase(f["WEEK_ENDING"]!)
            guard p >= 0 else { continue }
            let trx = Double(f["TRX"]!)!
            all[p] += trx
            if f["PRODUCT_NDC11"] == Self.own {
                own[p] += trx
                if p == 1 {
                    ownNRx += Double(f["NRX"]!)!
                    ownTRx += trx
                }
            }
        }
        let share = (0..<3).map { own[$0] / all[$0] }
        #expect(share[0] > 0 && share[0] < 0.06, "launch share \(share[0])")
        #expect(share[1] > 0.15 && share[1] < 0.25, "growth share \(share[1])")
        #expect(share[2] < share[1], "maturity share \(share[2])")
        #expect(ownTRx > 2 * ownNRx, "refills put TRx well ahead of NRx")
    }

    @Test func grossToNetAndPriorAuthorisationTighten() throws {
        let world = try TinyWorld(physicians: 600)
        defer { world.remove() }
        var wac: [String: Double] = [:]
        var rebate: [String: Double] = [:]
        for record in try world.records("rebates") {
            let quarter = record.fields["QUARTER"]!
            wac[quarter, default: 0] += Double(record.fields["WAC_AMOUNT"]!)!
            rebate[quarter, default: 0] += Double(record.fields["REBATE_AMOUNT"]!)!
        }
        let quarters = wac.keys.sorted()
        let launch = rebate[quarters.first!]! / wac[quarters.first!]!
        let mature = rebate[quarters.last!]! / wac[quarters.last!]!
        #expect(quarters.last == "2026Q3")
        #expect(launch > 0.1 && launch < 0.2, "launch gross-to-net \(launch)")
        #expect(mature > 0.3 && mature < 0.4, "mature gross-to-net \(mature)")
        // Code-75 rejections of the own brand: a larger share of its claims in maturity than in late growth.
        var pa = [0, 0, 0]
        var total = [0, 0, 0]
        for record in try world.records("claims") where record.fields["NDC11"] == Self.own {
            let d = record.fields["FILL_DATE"]!
            guard d.count == 8 else { continue }
            let p = phase("\(d.prefix(4))-\(d.dropFirst(4).prefix(2))-\(d.suffix(2))")
            guard p >= 0 else { continue }
            total[p] += 1
            if record.fields["REJECT_CODE"] == "75" { pa[p] += 1 }
        }
        #expect(Double(pa[2]) / Double(total[2]) > Double(pa[1]) / Double(total[1]))
    }

    @Test func emailFunnelAndNonPersonalPromotionFollowThePhases() throws {
        let world = try TinyWorld(physicians: 600)
        defer { world.remove() }
        var unique: [String: [String: Any]] = [:]
        for event in try world.objects("email_events") { unique[event["event_id"] as! String] = event }
        var counts: [String: Int] = [:]
        for event in unique.values { counts[event["event_type"] as! String, default: 0] += 1 }
        let delivered = Double(counts["delivered"]!)
        let openRate = Double(counts["open"]!) / delivered
        let clickRate = Double(counts["click"]!) / delivered
        #expect(openRate > 0.15 && openRate < 0.30, "open rate \(openRate)")
        #expect(clickRate > 0.02 && clickRate < 0.05, "click rate \(clickRate)")
        // Media spend falls from launch to maturity.
        var spend = [0.0, 0.0, 0.0]
        for record in try world.records("media") {
            let p = phase(record.fields["WEEK_ENDING"]!)
            if p >= 0 { spend[p] += Double(record.fields["SPEND_USD"]!)! }
        }
        #expect(spend[0] > spend[1] && spend[1] > spend[2])
    }

    @Test func callsFocusOnHighDecileTargets() throws {
        let world = try TinyWorld(physicians: 600)
        defer { world.remove() }
        let truth = try String(contentsOf: world.root.appendingPathComponent("truth/physicians.csv"), encoding: .utf8)
        var decile: [String: Int] = [:]
        for line in truth.split(separator: "\n").dropFirst() {
            let f = splitDelimited(String(line), ",")
            decile[f[0]] = Int(f[8])!
        }
        let map = try String(contentsOf: world.root.appendingPathComponent("truth/source_map.csv"), encoding: .utf8)
        var truthOfAccount: [String: String] = [:]
        for line in map.split(separator: "\n") where line.hasPrefix("crm,") {
            let f = line.split(separator: ",")
            truthOfAccount[String(f[1])] = String(f[2])
        }
        // Growth, 2025: calls a month per called decile 7–10 physician.
        var calls = 0
        var reached = Set<String>()
        var others = 0
        for call in try world.objects("crm_calls") where (call["Call_Date_vod__c"] as! String).hasPrefix("2025-") {
            guard call["Status_vod__c"] as? String == "Submitted" else { continue }
            let physician = truthOfAccount[call["Account_vod__c"] as! String]!
            if decile[physician]! >= 7 {
                calls += 1
                reached.insert(physician)
            } else {
                others += 1
            }
        }
        let perMonth = Double(calls) / Double(reached.count) / 12
        #expect(perMonth >= 2 && perMonth <= 4, "calls a month per decile 7–10 target: \(perMonth)")
        #expect(calls > 3 * others)
    }
}
