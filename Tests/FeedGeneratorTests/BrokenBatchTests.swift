import Foundation
import Testing

@testable import FeedGenerator

struct BrokenBatchTests {
    @Test func brokenBatchesContainWhatTheyClaim() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("broken-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: dir) }
        let broken = try FeedGenerator.writeBrokenBatches(to: dir)
        #expect(
            Set(broken.map(\.name)) == [
                "bom", "crlf", "truncated_last_line", "extra_column", "missing_required_column", "bad_dates",
                "non_numeric_counts", "malformed_xml", "invalid_json_lines",
            ])
        for b in broken {
            // A real layout: ROOT/FEED/YYYY-MM-DD/FILE.
            #expect(b.folder.deletingLastPathComponent().lastPathComponent == b.feed)
            #expect(b.folder.lastPathComponent.wholeMatch(of: /\d{4}-\d\d-\d\d/) != nil)
            #expect(
                b.folder.deletingLastPathComponent().deletingLastPathComponent().standardizedFileURL.path
                    == b.feedsRoot.standardizedFileURL.path)
            let data = try Data(contentsOf: b.folder.appendingPathComponent(b.file))
            let text = String(decoding: data, as: UTF8.self)
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map {
                String($0.hasSuffix("\r") ? $0.dropLast() : $0)
            }
            let delimiter: Character = b.file.hasSuffix(".txt") ? "|" : ","
            let header = splitDelimited(lines[0], delimiter)
            switch b.name {
            case "bom": #expect(data.starts(with: [0xEF, 0xBB, 0xBF]))
            case "crlf":
                #expect(text.contains("\r\n") && !text.replacingOccurrences(of: "\r\n", with: "").contains("\n"))
            case "truncated_last_line":
                #expect(data.last != 10)
                for line in b.badLines { #expect(splitDelimited(lines[line - 1], delimiter).count < header.count) }
            case "extra_column":
                #expect(header.count == SpecColumns.delimited[b.feed]!.count + 1)
                #expect(
                    lines.dropFirst().filter { !$0.isEmpty }.allSatisfy {
                        splitDelimited($0, delimiter).count == header.count
                    })
            case "missing_required_column":
                for column in b.badColumns { #expect(!header.contains(column)) }
                #expect(b.expectedOutcome.hasPrefix("reject"))
            case "bad_dates", "non_numeric_counts":
                for (line, column) in zip(b.badLines, b.badColumns) {
                    let value = splitDelimited(lines[line - 1], delimiter)[header.firstIndex(of: column)!]
                    let valid = column == "FILL_DATE" ? ExpectedCountsTests().isDate(value) : Double(value) != nil
                    #expect(!valid, "\(b.name) line \(line): \(column) \(value)")
                }
            case "malformed_xml":
                #expect(text.components(separatedBy: "<plan ").count != text.components(separatedBy: "</plan>").count)
                #expect(b.expectedOutcome.hasPrefix("reject"))
            case "invalid_json_lines":
                for (i, line) in lines.enumerated() where !line.isEmpty {
                    let parses = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) != nil
                    #expect(parses != b.badLines.contains(i + 1), "line \(i + 1)")
                }
            default: Issue.record("unknown case \(b.name)")
            }
            // Quarantine cases name their bad lines; every other case loads all its rows.
            #expect(b.expectedOutcome.hasPrefix("quarantine") == !b.badLines.isEmpty, "\(b.name)")
            #expect(b.badLines.count == b.badColumns.count || b.expectedOutcome.hasPrefix("reject"), "\(b.name)")
        }
    }
}
