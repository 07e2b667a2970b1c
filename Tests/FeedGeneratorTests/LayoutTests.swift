import Foundation
import Testing

@testable import FeedGenerator

struct LayoutTests {
    static let feeds: Set<String> = [
        "products", "nppes", "ama", "crm_accounts", "alignment", "xponent", "claims", "formulary", "rebates",
        "crm_calls", "email_events", "web_sessions", "media", "partd",
    ]

    @Test func everyFeedIsWrittenInDatedBatches() throws {
        let world = try TinyWorld()
        defer { world.remove() }
        #expect(Set(world.summary.feeds.keys) == Self.feeds)
        let folders = try FileManager.default.contentsOfDirectory(
            atPath: world.root.appendingPathComponent("feeds").path)
        #expect(Set(folders) == Self.feeds)
        for feed in Self.feeds.sorted() {
            for file in try world.files(feed) {
                #expect(file.batch.wholeMatch(of: /20\d\d-\d\d-\d\d/) != nil, "\(feed)/\(file.batch)")
            }
        }
        #expect(try world.files("partd").map(\.name) == ["partd_2024.csv", "partd_2025.csv"])
        #expect(try world.files("formulary").allSatisfy { $0.name.hasSuffix(".xml") })
        #expect(try world.files("ama").allSatisfy { $0.name.hasSuffix(".txt") })
        #expect(try world.files("claims").allSatisfy { $0.name.hasSuffix(".txt") })
        // Xponent lands on the Monday after the Friday it ends, and restates at most the four weeks before.
        let format = DateFormatter()
        format.locale = Locale(identifier: "en_US_POSIX")
        format.timeZone = TimeZone(identifier: "UTC")
        format.dateFormat = "yyyy-MM-dd"
        var newest: [String: Date] = [:]
        var oldest: [String: Date] = [:]
        for record in try world.records("xponent") {
            let week = format.date(from: record.fields["WEEK_ENDING"]!)!
            #expect(Calendar(identifier: .gregorian).component(.weekday, from: week) == 6)  // Friday (UTC)
            newest[record.batch] = max(newest[record.batch] ?? week, week)
            oldest[record.batch] = min(oldest[record.batch] ?? week, week)
        }
        for (batch, week) in newest {
            #expect(format.date(from: batch)!.timeIntervalSince(week) == 3 * 86_400, "\(batch)")
            #expect(week.timeIntervalSince(oldest[batch]!) <= 28 * 86_400, "\(batch)")
        }
    }

    @Test func delimitedHeadersAreThoseOfTheSpec() throws {
        let world = try TinyWorld()
        defer { world.remove() }
        for (feed, columns) in SpecColumns.delimited.sorted(by: { $0.key < $1.key }) {
            for file in try world.files(feed) {
                let delimiter: Character = file.name.hasSuffix(".txt") ? "|" : ","
                let header = splitDelimited(String(file.text.prefix { $0 != "\n" }), delimiter)
                if feed == "nppes" {
                    // The real NPPES extract carries more columns (organisation name, suffix); ours are among them.
                    #expect(Set(columns).isSubset(of: Set(header)), "\(feed)/\(file.batch)")
                    #expect(file.text.hasPrefix("\"NPI\",\"Entity Type Code\""))
                } else {
                    #expect(header == columns, "\(feed)/\(file.batch)")
                }
            }
        }
    }

    @Test func jsonLinesCarryTheSpecFields() throws {
        let world = try TinyWorld()
        defer { world.remove() }
        for (feed, fields) in SpecColumns.jsonLines.sorted(by: { $0.key < $1.key }) {
            let objects = try world.objects(feed)
            #expect(!objects.isEmpty, "\(feed)")
            #expect(objects.allSatisfy { Set($0.keys) == Set(fields) }, "\(feed)")
        }
    }

    @Test func formularyFilesFollowTheVendorLayout() throws {
        let world = try TinyWorld()
        defer { world.remove() }
        for file in try world.files("formulary") {
            #expect(file.text.contains("<formularyFile asOf=\"\(file.batch)\">"))
            #expect(file.text.contains("<bin>"))
            #expect(file.text.contains("<coverage ndc11=\""))
            #expect(
                file.text.components(separatedBy: "<plan ").count == file.text.components(separatedBy: "</plan>").count)
        }
    }

    @Test func xponentValuesAreDecimalsWithTrxAtLeastNrx() throws {
        let world = try TinyWorld()
        defer { world.remove() }
        var rows = 0
        for record in try world.records("xponent") {
            let f = record.fields
            for column in ["NRX", "TRX", "NQTY", "TQTY"] {
                #expect(f[column]!.wholeMatch(of: /\d+(\.\d{1,3})?/) != nil, "\(column) \(f[column]!)")
            }
            #expect(Double(f["TRX"]!)! >= Double(f["NRX"]!)!)
            rows += 1
        }
        #expect(rows > 1_000)
    }
}

/// Whole deliveries that arrive twice or late, as real vendors send them.
struct DeliveryAnomalyTests {
    @Test func oneWebDeliveryArrivesTwiceByteForByte() throws {
        let world = try TinyWorld()
        defer { world.remove() }
        let files = try world.files("web_sessions")
        let byName = Dictionary(grouping: files, by: \.name).filter { $0.value.count > 1 }
        #expect(byName.count == 1)
        for (_, copies) in byName {
            #expect(copies.count == 2)
            #expect(copies[0].text == copies[1].text)
            #expect(copies[0].batch != copies[1].batch)
        }
        let summary = try #require(world.summary.feeds["web_sessions"])
        #expect(summary.batches == Set(files.map(\.batch)).count)
    }

    @Test func aLateCRMExtractKeepsItsExtractDate() throws {
        let world = try TinyWorld(physicians: 600)
        defer { world.remove() }
        let late = try world.files("crm_accounts").filter { $0.name == "accounts_20240911.jsonl" }
        #expect(late.map(\.batch) == ["2024-09-14"])
    }
}
