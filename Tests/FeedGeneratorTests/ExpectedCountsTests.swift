import Foundation
import Testing

@testable import FeedGenerator

/// `truth/expected_counts.json` recomputed from the files, independently of the generator's own bookkeeping.
struct ExpectedCountsTests {
    func isDate(_ compact: String) -> Bool {
        guard compact.count == 8, let y = Int(compact.prefix(4)), let m = Int(compact.dropFirst(4).prefix(2)),
            let d = Int(compact.suffix(2)), (1...12).contains(m)
        else { return false }
        let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
        return d >= 1 && d <= [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1]
    }

    /// Claims rows the ingest must quarantine: impossible dates, non-numeric quantities or days of supply.
    func isInvalidClaim(_ f: [String: String]) -> Bool {
        !isDate(f["FILL_DATE"]!) || Double(f["QUANTITY"]!) == nil || Int(f["DAYS_SUPPLY"]!) == nil
    }

    @Test func expectedCountsMatchTheFiles() throws {
        let world = try TinyWorld()
        defer { world.remove() }
        let data = try Data(contentsOf: world.root.appendingPathComponent("truth/expected_counts.json"))
        let expected = try JSONSerialization.jsonObject(with: data) as! [String: [String: Int]]
        #expect(Set(expected.keys) == LayoutTests.feeds)
        for feed in LayoutTests.feeds.sorted() {
            let files = try world.files(feed)
            var rows = 0
            var invalid = 0
            var keys = Set<String>()
            if feed == "formulary" {
                for file in files {
                    var plan = ""
                    for line in file.text.split(separator: "\n") {
                        if let match = line.firstMatch(of: /<plan id="([^"]+)"/) { plan = String(match.1) }
                        if let match = line.firstMatch(of: /<coverage ndc11="(\d+)"/) {
                            rows += 1
                            keys.insert("\(file.batch)|\(plan)|\(match.1)")
                        }
                    }
                }
            } else if let columns = SpecColumns.jsonLines[feed] {
                _ = columns
                for object in try world.objects(feed) {
                    rows += 1
                    keys.insert(SpecColumns.keys[feed]!.map { "\(object[$0]!)" }.joined(separator: "|"))
                }
            } else {
                for record in try world.records(feed) {
                    rows += 1
                    if feed == "claims" && isInvalidClaim(record.fields) {
                        invalid += 1
                        continue
                    }
                    let year = feed == "partd" ? record.name + "|" : ""
                    keys.insert(year + SpecColumns.keys[feed]!.map { record.fields[$0]! }.joined(separator: "|"))
                }
            }
            let batches = Set(files.map(\.batch)).count
            #expect(expected[feed]?["rows"] == rows, "\(feed) rows")
            #expect(expected[feed]?["batches"] == batches, "\(feed) batches")
            #expect(expected[feed]?["distinct_keys"] == keys.count, "\(feed) distinct keys")
            #expect(expected[feed]?["invalid_rows"] == invalid, "\(feed) invalid rows")
            #expect(world.summary.feeds[feed]?.rows == rows, "\(feed) summary")
        }
        #expect(expected["claims"]?["invalid_rows"] == 3)
        #expect(expected["xponent"]!["distinct_keys"]! < expected["xponent"]!["rows"]!)  // restatements
        #expect(expected["email_events"]!["distinct_keys"]! < expected["email_events"]!["rows"]!)  // duplicates
    }

    @Test func theStagedIncidentIsOneBrokenClaimsBatchAndItsCorrection() throws {
        let world = try TinyWorld()
        defer { world.remove() }
        let files = try world.files("claims")
        let broken = files.filter { file in
            file.text.split(separator: "\n").dropFirst().contains {
                isInvalidClaim(
                    Dictionary(
                        uniqueKeysWithValues: zip(
                            SpecColumns.delimited["claims"]!, splitDelimited(String($0), "|"))))
            }
        }
        #expect(broken.count == 1)
        let fix = try #require(files.first { $0.name.hasSuffix("_redelivery.txt") })
        #expect(fix.batch > broken[0].batch)
        let ids = { (text: String) in text.split(separator: "\n").dropFirst().map { $0.prefix { $0 != "|" } } }
        #expect(ids(fix.text) == ids(broken[0].text))
        #expect(broken[0].batch >= "2024-07-15" && broken[0].batch < "2026-01-01")  // growth
        let incidents = try String(
            contentsOf: world.root.appendingPathComponent("truth/incidents.md"), encoding: .utf8)
        #expect(incidents.contains("claims/\(broken[0].batch)/\(broken[0].name)"))
        #expect(incidents.contains("claims/\(fix.batch)/\(fix.name)"))
        // Reversals reference a claim delivered earlier or in the same batch.
        var seen = Set<Substring>()
        for file in files {
            for line in file.text.split(separator: "\n").dropFirst() {
                let f = line.split(separator: "|", omittingEmptySubsequences: false)
                if f[10] == "X" { #expect(seen.contains(f[13]) || file.text.contains("\(f[13])|")) }
                seen.insert(f[0])
            }
        }
    }
}
