import FeedFormats
import Foundation
import GRDB
import Mastering
import MeshRuntime
import MeshTestSupport
import SelfService
import Testing
import Warehouse

@testable import Ingest

/// Two months of sample-data with hostile copies of our own feeds delivered beside them, one defect each, through
/// the whole mesh: what loaded, what was quarantined with which reason, and that every domain still publishes.
///
///     feeds (+ hostile batches) ──▶ raw-* ──▶ masters ──▶ conformed-dims ──▶ marts ──▶ extracts
struct HostileFeedsTests {
    static let sampleFeeds = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("sample-data/feeds")

    /// Copies every batch delivered by `lastDay` of sample-data.
    static func copySample(to feeds: URL, through lastDay: String) throws {
        let fm = FileManager.default
        for feed in try fm.contentsOfDirectory(atPath: sampleFeeds.path) {
            for batch in try fm.contentsOfDirectory(atPath: sampleFeeds.appendingPathComponent(feed).path)
            where batch <= lastDay {
                let target = feeds.appendingPathComponent("\(feed)/\(batch)")
                try fm.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
                try fm.copyItem(at: sampleFeeds.appendingPathComponent("\(feed)/\(batch)"), to: target)
            }
        }
    }

    /// The single file of a sample batch, as lines.
    static func lines(_ feed: String, _ batch: String) throws -> (name: String, lines: [String]) {
        let folder = sampleFeeds.appendingPathComponent("\(feed)/\(batch)")
        let name = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()[0]
        let text = try String(contentsOf: folder.appendingPathComponent(name), encoding: .utf8)
        return (name, text.split(separator: "\n").map(String.init))
    }

    /// A fully quoted CSV line with field `index` replaced by `bytes` (quotes added).
    static func replacing(_ line: String, field index: Int, with bytes: [UInt8]) -> [UInt8] {
        var fields = line.dropFirst().dropLast().components(separatedBy: "\",\"").map { Array($0.utf8) }
        fields[index] = bytes
        return Array("\"".utf8) + fields.joined(separator: Array("\",\"".utf8)) + Array("\"".utf8)
    }

    @Test func hostileBytesLoseNothingAndTheMeshPublishesEveryDomain() async throws {
        let dir = try TemporaryDirectory("hostile")
        defer { dir.remove() }
        let feeds = dir.url.appendingPathComponent("feeds")
        try Self.copySample(to: feeds, through: "2024-02-26")
        func deliver(_ feed: String, _ date: String, _ name: String, _ bytes: [UInt8]) throws {
            try Deliveries.file(feeds, feed, date, name, Data(bytes))
        }

        // Xponent: a NUL inside a prescriber id; an unclosed quote; TRX twice in the header.
        let (xponentName, xponent) = try Self.lines("xponent", "2024-02-26")
        var nul = xponent
        nul[2] = String(nul[2].prefix(4)) + "\u{0}" + String(nul[2].dropFirst(4))
        let nulBytes = Array((nul.joined(separator: "\n") + "\n").utf8)
        try deliver("xponent", "2024-02-27", xponentName, nulBytes)
        var quote = xponent
        quote[3] = quote[3].replacingOccurrences(of: ",", with: ",\"", options: [], range: quote[3].range(of: ","))
        try deliver("xponent", "2024-02-28", xponentName, Array((quote.joined(separator: "\n") + "\n").utf8))
        try deliver(
            "xponent", "2024-02-29", xponentName,
            Array(([xponent[0] + ",TRX"] + xponent.dropFirst().map { $0 + ",1" }).joined(separator: "\n").utf8))

        // NPPES: a NUL in a first name, Windows-1252 in a last name (the layout reads UTF-8).
        let (nppesName, nppes) = try Self.lines("nppes", "2024-01-03")
        let header = nppes[0].dropFirst().dropLast().components(separatedBy: "\",\"")
        let first = header.firstIndex(of: "Provider First Name")!
        let last = header.firstIndex(of: "Provider Last Name (Legal Name)")!
        let firstName = nppes[1].dropFirst().dropLast().components(separatedBy: "\",\"")[first]
        var nppesBytes = Array((nppes[0] + "\n").utf8)
        nppesBytes +=
            Self.replacing(
                nppes[1], field: first, with: Array(firstName.prefix(3).utf8) + [0] + Array(firstName.dropFirst(3).utf8)
            ) + [0x0A]
        nppesBytes += Self.replacing(nppes[2], field: last, with: Array("MU".utf8) + [0xD1] + Array("OZ".utf8)) + [0x0A]
        nppesBytes += Array((nppes.dropFirst(3).joined(separator: "\n") + "\n").utf8)
        try deliver("nppes", "2024-02-27", nppesName, nppesBytes)

        // CRM: a JSON escape that is a NUL.
        let (accountsName, accounts) = try Self.lines("crm_accounts", "2024-02-21")
        let escaped = accounts[0].replacingOccurrences(of: "\"FirstName\":\"", with: "\"FirstName\":\"NAN\\u0000")
        try deliver("crm_accounts", "2024-02-27", accountsName, Array((escaped + "\n").utf8))

        // A symbolic link to /etc/passwd as a delivered file, and a batch folder that is a link.
        let calls = try Deliveries.folder(feeds, "crm_calls", "2024-02-27")
        try FileManager.default.createSymbolicLink(
            atPath: calls.appendingPathComponent("calls_20240219_20240225.jsonl").path,
            withDestinationPath: "/etc/passwd")
        let outside = dir.url.appendingPathComponent("outside")
        try FileManager.default.copyItem(at: feeds.appendingPathComponent("media/2024-02-21"), to: outside)
        try FileManager.default.createSymbolicLink(
            atPath: feeds.appendingPathComponent("media/2024-02-28").path, withDestinationPath: outside.path)

        // A generic without a brand name; the real Part D file under CMS's name, and one without a year.
        let products = try String(
            contentsOf: Self.sampleFeeds.appendingPathComponent("products/2024-01-01/products.csv"), encoding: .utf8)
        try deliver(
            "products", "2024-02-27", "products.csv",
            Array(
                (products + "68180051201,,ACIDOPRAZOLE,ACID_SUPPRESSION_RX,GENERIQ INC,N,2024-02-01,2.9500,30\n").utf8))
        try deliver(
            "partd", "2024-02-27", "MUP_DPR_RY26_P04_V10_DY24_NPIBN.csv",
            Array(try CMSFixtures.bytes(CMSFixtures.partd)))
        try deliver(
            "partd", "2024-02-28", "MUP_DPR_RY26_P04_V10_NPIBN.csv", Array(try CMSFixtures.bytes(CMSFixtures.partd)))

        let nppesNUL = nppesBytes.firstIndex(of: 0)!
        let nppesD1 = nppesBytes.firstIndex(of: 0xD1)!
        let mesh = try ToyMesh.mesh(
            IngestDomains.all() + MasteringDomains.all() + WarehouseDomains.all() + SelfServiceDomains.all(),
            home: dir.url.appendingPathComponent("home"))
        let report = try Landing.land(feeds: feeds, home: mesh.home)
        #expect(
            report.problems.contains {
                $0.hasSuffix(
                    "crm_calls/2024-02-27/calls_20240219_20240225.jsonl: a symbolic link, not a file; the batch is not landed. A batch folder holds the delivered files themselves: the mesh copies their bytes and never follows a link (it could point outside the feeds folder, and what it points at could change after landing). Replace it by the file and run again"
                )
            }, "\(report.problems)")
        #expect(
            report.problems.contains {
                $0.contains("media/2024-02-28: a symbolic link, not a batch folder; not landed.")
            })
        #expect(try !Landing.batches(of: "crm_calls", home: mesh.home).contains { $0.delivery == "2024-02-27" })
        #expect(try !Landing.batches(of: "media", home: mesh.home).contains { $0.delivery == "2024-02-28" })

        let summary = try await mesh.run(RunRequest(sourceStates: try Landing.sourceStates(home: mesh.home)))
        for domain in mesh.registry.ids {
            #expect(
                summary.outcomes[domain]?.status.published == true,
                "\(domain): \(summary.outcomes[domain]?.status.rawValue ?? "-") \(summary.outcomes[domain]?.message ?? "")"
            )
        }

        let (queue, _) = try mesh.snapshot(
            attaching: [
                "raw-xponent", "raw-nppes", "raw-crm_accounts", "raw-crm_calls", "raw-partd", "physician-master",
                "product-master",
            ])
        try await queue.read { db in
            func strings(_ sql: String) throws -> [String] {
                try Row.fetchAll(db, sql: sql).map { row in row.databaseValues.map { "\($0)" }.joined(separator: " | ")
                }
            }
            // The NUL: quarantined with its byte offset, the rest of the batch loaded, the master unbroken.
            let nulOffset = nulBytes.firstIndex(of: 0)!
            let xq = try Row.fetchAll(
                db,
                sql:
                    "SELECT batch, line, \"column\", raw_value, reason FROM raw_xponent.quarantine ORDER BY batch, line"
            )
            #expect(xq.count == 2)
            let places = xq.map { "\($0["batch"] as String) \($0["line"] as Int) \($0["column"] as String)" }
            #expect(places == ["2024-02-27 3 PRESCRIBER_ID", "2024-02-28 4 NPI"])
            #expect(
                (xq[0]["reason"] as String)
                    == "a control character 0x00 (NUL) at byte offset \(nulOffset) of the file (byte 5 of the value)")
            #expect((xq[0]["raw_value"] as String).contains("\\x00"))
            #expect((xq[1]["reason"] as String).contains("is not closed on its line"))
            let xb = try Row.fetchAll(
                db,
                sql:
                    "SELECT batch, status, rows_read, rows_loaded, message FROM raw_xponent.batches WHERE batch > '2024-02-26' ORDER BY batch"
            )
            #expect(
                xb.map { $0["status"] as String } == ["loaded_with_quarantine", "loaded_with_quarantine", "rejected"])
            #expect(xb.map { $0["rows_loaded"] as Int } == [xponent.count - 2, xponent.count - 2, 0])
            #expect(
                (xb[2]["message"] as String).contains(
                    "the header on line 1 names the column \"TRX\" 2 times (columns 7 and 10); the batch is rejected whole"
                ))
            #expect(
                try Int.fetchOne(
                    db, sql: "SELECT COUNT(*) FROM raw_xponent.xponent WHERE instr(prescriber_id, char(0)) > 0") == 0)
            #expect(
                try Int.fetchOne(
                    db,
                    sql: """
                        SELECT COUNT(*) FROM physician_master.physician_xref WHERE instr(source_id, char(0)) > 0
                        """) == 0)
            #expect(
                try Int.fetchOne(
                    db,
                    sql: """
                        SELECT COUNT(*) FROM physician_master.physician
                        WHERE instr(first_name, char(0)) > 0 OR instr(last_name, char(0)) > 0
                           OR instr(first_name, char(65533)) > 0 OR instr(last_name, char(65533)) > 0
                        """) == 0)
            // NPPES: both names quarantined with what is wrong and where; the rest of the month restated.
            let nq = try Row.fetchAll(
                db, sql: "SELECT line, \"column\", reason FROM raw_nppes.quarantine ORDER BY line")
            #expect(
                nq.map { "\($0["line"] as Int) \($0["column"] as String)" } == [
                    "2 Provider First Name", "3 Provider Last Name (Legal Name)",
                ])
            #expect(
                (nq[0]["reason"] as String).hasPrefix(
                    "a control character 0x00 (NUL) at byte offset \(nppesNUL) of the file"))
            #expect(
                (nq[1]["reason"] as String).hasPrefix(
                    "bytes that are not UTF-8 (0xD1 0x4F 0x5A) at byte offset \(nppesD1) of the file"))
            #expect(
                try Int.fetchOne(db, sql: "SELECT rows_loaded FROM raw_nppes.batches WHERE batch = '2024-02-27'")
                    == nppes.count - 3)
            // CRM: the escaped NUL.
            #expect(
                try strings("SELECT line, \"column\" FROM raw_crm_accounts.quarantine WHERE batch = '2024-02-27'")
                    == ["1 | \"FirstName\""])
            // Nothing of /etc/passwd anywhere.
            #expect(
                try Int.fetchOne(
                    db, sql: "SELECT COUNT(*) FROM raw_crm_calls.quarantine WHERE raw_value LIKE '%root:%'") == 0)
            #expect(
                try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM raw_crm_calls.batches WHERE batch = '2024-02-27'") == 0)
            // The generic is named by its generic name; Part D's CMS name gives 2024, the nameless one is rejected.
            #expect(
                try String.fetchOne(db, sql: "SELECT brand FROM product_master.product WHERE ndc11 = '68180051201'")
                    == "ACIDOPRAZOLE")
            #expect(
                try strings("SELECT batch, status FROM raw_partd.batches ORDER BY batch") == [
                    "\"2024-02-27\" | \"loaded\"", "\"2024-02-28\" | \"rejected\"",
                ])
            #expect(try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM raw_partd.partd WHERE data_year = 2024") == 26)
        }
        // A landed batch is a copy: changing the delivered file changes nothing landed.
        let landed = mesh.home.appendingPathComponent("landing/products/2024-02-27/products.csv")
        let before = try Data(contentsOf: landed)
        try Data("NDC11\n".utf8).write(to: feeds.appendingPathComponent("products/2024-02-27/products.csv"))
        #expect(try Data(contentsOf: landed) == before)
        let mode = try FileManager.default.attributesOfItem(atPath: landed.path)[.posixPermissions] as? Int
        #expect(mode == 0o444)
    }
}
