import Foundation
import Testing

@testable import FeedGenerator

/// A tiny world, generated once per test into its own folder.
func generateTiny(seed: UInt64 = 7, physicians: Int = 120) throws -> (URL, GenerationSummary) {
    let out = FileManager.default.temporaryDirectory.appendingPathComponent("gen-\(UUID().uuidString.prefix(8))")
    let summary = try FeedGenerator.generate(
        GeneratorOptions(scale: .sample, seed: seed, outputDirectory: out, physicianCount: physicians))
    return (out, summary)
}

func files(under root: URL) throws -> [String: Data] {
    var result: [String: Data] = [:]
    let enumerator = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil)!
    for case let url as URL in enumerator where !url.hasDirectoryPath {
        result[String(url.path.dropFirst(root.path.count))] = try Data(contentsOf: url)
    }
    return result
}

struct GeneratorTests {
    @Test func theSameSeedGivesIdenticalBytesAndAnotherSeedDoesNot() throws {
        let (a, _) = try generateTiny(seed: 7)
        let (b, _) = try generateTiny(seed: 7)
        let (c, _) = try generateTiny(seed: 8)
        defer { for d in [a, b, c] { try? FileManager.default.removeItem(at: d) } }
        let fa = try files(under: a)
        #expect(fa.count > 50)
        #expect(fa == (try files(under: b)))
        #expect(fa != (try files(under: c)))
    }

    @Test func everyFeedIsWrittenWithTheVendorHeader() throws {
        let (root, summary) = try generateTiny()
        defer { try? FileManager.default.removeItem(at: root) }
        #expect(
            Set(summary.feeds.keys) == [
                "products", "nppes", "ama", "crm_accounts", "alignment", "xponent", "claims", "formulary", "rebates",
                "crm_calls",
                "email_events", "web_sessions", "media", "partd",
            ])
        func firstLine(_ feed: String) throws -> String {
            let folder = root.appendingPathComponent("feeds/\(feed)")
            let batch = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()[0]
            let file = try FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent(batch).path)[0]
            let text = try String(contentsOf: folder.appendingPathComponent("\(batch)/\(file)"), encoding: .utf8)
            return String(text.split(separator: "\n")[0])
        }
        #expect(try firstLine("xponent") == "PRESCRIBER_ID,NPI,ME_NUMBER,PRODUCT_NDC11,WEEK_ENDING,NRX,TRX,NQTY,TQTY")
        #expect(
            try firstLine("claims").hasPrefix("CLAIM_ID|PATIENT_TOKEN|FILL_DATE|NDC11|PRESCRIBER_NPI|BIN|PCN|GROUP_ID"))
        #expect(try firstLine("ama").hasPrefix("ME_NUMBER|LAST_NAME|FIRST_NAME|MIDDLE_NAME|SUFFIX|BIRTH_YEAR"))
        #expect(try firstLine("nppes").contains("\"Provider Last Name (Legal Name)\""))
        #expect(try firstLine("partd").hasPrefix("Prscrbr_NPI,Prscrbr_Last_Org_Name"))
        #expect(try firstLine("formulary").hasPrefix("<?xml"))
        #expect(try firstLine("crm_calls").contains("\"Call_Date_vod__c\""))
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("feeds/partd").path).count
                == 2)
    }

    @Test func npisCarryValidCheckDigits() throws {
        let (root, _) = try generateTiny()
        defer { try? FileManager.default.removeItem(at: root) }
        let text = try String(contentsOf: root.appendingPathComponent("truth/physicians.csv"), encoding: .utf8)
        let npis = text.split(separator: "\n").dropFirst().map {
            $0.split(separator: ",", omittingEmptySubsequences: false)[1]
        }.filter { !$0.isEmpty }
        #expect(npis.count == 120)
        for npi in npis {
            #expect(npiCheckDigit(String(npi.prefix(9))) == Int(String(npi.last!)))
        }
    }

    @Test func theBrandStoryIsInTheNumbers() throws {
        let (root, _) = try generateTiny(physicians: 600)
        defer { try? FileManager.default.removeItem(at: root) }
        // Own-brand share of TRx by phase, from the first delivery of each week.
        var own = [0.0, 0.0, 0.0]
        var all = [0.0, 0.0, 0.0]
        let folder = root.appendingPathComponent("feeds/xponent")
        for batch in try FileManager.default.contentsOfDirectory(atPath: folder.path) {
            let dir = folder.appendingPathComponent(batch)
            for file in try FileManager.default.contentsOfDirectory(atPath: dir.path) {
                for line in try String(contentsOf: dir.appendingPathComponent(file), encoding: .utf8).split(
                    separator: "\n"
                ).dropFirst() {
                    let f = line.split(separator: ",", omittingEmptySubsequences: false)
                    let week = String(f[4])
                    // Launch; the last two months of growth; the last two months of maturity.
                    let phase =
                        week < "2024-07-01"
                        ? 0 : week >= "2025-11-01" && week < "2026-01-01" ? 1 : week >= "2026-11-01" ? 2 : -1
                    guard phase >= 0 else { continue }
                    let trx = Double(f[6])!
                    all[phase] += trx
                    if f[3] == "50090123401" { own[phase] += trx }
                }
            }
        }
        let share = (0..<3).map { own[$0] / all[$0] }
        #expect(share[0] < share[1])
        #expect(share[1] > 0.12 && share[1] < 0.3)
        #expect(share[2] < share[1])
        // Gross-to-net rises: the rebate percentage of the last quarter exceeds the first's.
        let rebates = root.appendingPathComponent("feeds/rebates")
        func averagePct(_ batch: String) throws -> Double {
            let dir = rebates.appendingPathComponent(batch)
            let file = try FileManager.default.contentsOfDirectory(atPath: dir.path)[0]
            let pcts = try String(contentsOf: dir.appendingPathComponent(file), encoding: .utf8).split(separator: "\n")
                .dropFirst()
                .map { Double($0.split(separator: ",", omittingEmptySubsequences: false)[8])! }
            return pcts.isEmpty ? .nan : pcts.reduce(0, +) / Double(pcts.count)
        }
        let averages = try FileManager.default.contentsOfDirectory(atPath: rebates.path).sorted().map(averagePct).filter
        { !$0.isNaN }
        #expect(averages.last! > 0.28)
        #expect(averages.first! < 0.2)
    }

    @Test func expectedCountsMatchTheFiles() throws {
        let (root, summary) = try generateTiny()
        defer { try? FileManager.default.removeItem(at: root) }
        let data = try Data(contentsOf: root.appendingPathComponent("truth/expected_counts.json"))
        let counts = try JSONSerialization.jsonObject(with: data) as! [String: [String: Int]]
        var lines = 0
        let folder = root.appendingPathComponent("feeds/claims")
        for batch in try FileManager.default.contentsOfDirectory(atPath: folder.path) {
            let dir = folder.appendingPathComponent(batch)
            for file in try FileManager.default.contentsOfDirectory(atPath: dir.path) {
                lines +=
                    try String(contentsOf: dir.appendingPathComponent(file), encoding: .utf8).split(separator: "\n")
                    .count - 1
            }
        }
        #expect(counts["claims"]?["rows"] == lines)
        #expect(counts["claims"]?["invalid_rows"] == 3)
        #expect(counts["xponent"]?["rows"] == summary.feeds["xponent"]?.rows)
        #expect(summary.feeds["xponent"]!.distinctKeys < summary.feeds["xponent"]!.rows)  // restatements repeat keys
    }

    @Test func brokenBatchesAreWhatTheyClaim() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("broken-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: dir) }
        let broken = try FeedGenerator.writeBrokenBatches(to: dir)
        #expect(
            Set(broken.map(\.name)) == [
                "bom", "crlf", "truncated_last_line", "extra_column", "missing_required_column", "bad_dates",
                "non_numeric_counts",
                "malformed_xml", "invalid_json_lines",
            ])
        for b in broken {
            let data = try Data(contentsOf: b.folder.appendingPathComponent(b.file))
            switch b.name {
            case "bom": #expect(data.starts(with: [0xEF, 0xBB, 0xBF]))
            case "crlf": #expect(String(decoding: data, as: UTF8.self).contains("\r\n"))
            case "truncated_last_line": #expect(data.last != 10)
            default: #expect(!data.isEmpty)
            }
        }
    }
}
