import FeedFormats
import Foundation
import GRDB
import Mastering
import MeshRuntime
import MeshTestSupport
import Testing
import ZIPFoundation

@testable import Ingest

/// Builds delivery folders: plain files, gzipped by the system's gzip, zipped by ZIPFoundation.
enum Deliveries {
    static func folder(_ feeds: URL, _ feed: String, _ date: String) throws -> URL {
        let folder = feeds.appendingPathComponent("\(feed)/\(date)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder
    }

    @discardableResult
    static func file(_ feeds: URL, _ feed: String, _ date: String, _ name: String, _ bytes: Data) throws -> URL {
        let url = try folder(feeds, feed, date).appendingPathComponent(name)
        try bytes.write(to: url)
        return url
    }

    static func gzip(_ feeds: URL, _ feed: String, _ date: String, _ name: String, _ bytes: Data) throws {
        let url = try file(feeds, feed, date, name, bytes)
        let gzip = Process()
        gzip.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        gzip.arguments = ["gzip", "-n", "-f", url.path]
        try gzip.run()
        gzip.waitUntilExit()
        #expect(gzip.terminationStatus == 0)
    }

    static func zip(_ feeds: URL, _ feed: String, _ date: String, _ name: String, _ members: [(String, Data)]) throws {
        let archive = try Archive(
            url: try folder(feeds, feed, date).appendingPathComponent(name), accessMode: .create)
        for (path, data) in members {
            try archive.addEntry(
                with: path, type: .file, uncompressedSize: Int64(data.count), compressionMethod: .deflate
            ) { position, size in data.subdata(in: Int(position)..<Int(position) + size) }
        }
    }

    /// CRLF line ends and a byte-order mark.
    static func windows(_ data: Data) -> Data {
        Data([0xEF, 0xBB, 0xBF])
            + Data(String(decoding: data, as: UTF8.self).replacingOccurrences(of: "\n", with: "\r\n").utf8)
    }
}

/// The real CMS files dropped into batch folders as they come, through the raw domains and physician-master.
///
///     feeds/nppes, feeds/partd ──▶ raw-nppes, raw-partd ──▶ physician-master
struct RealFeedsTests {
    static func rows(_ mesh: Mesh, _ domains: [DomainID], _ sql: String) throws -> [Row] {
        let (queue, _) = try mesh.snapshot(attaching: domains)
        return try queue.read { db in try Row.fetchAll(db, sql: sql) }
    }

    static func run(_ mesh: Mesh, feeds: URL) async throws -> (RunSummary, LandingReport) {
        let report = try Landing.land(feeds: feeds, home: mesh.home)
        let summary = try await mesh.run(RunRequest(sourceStates: try Landing.sourceStates(home: mesh.home)))
        return (summary, report)
    }

    @Test func theRealFilesAsDeliveredLoadAndReachTheMaster() async throws {
        let dir = try TemporaryDirectory("cms")
        defer { dir.remove() }
        let feeds = dir.url.appendingPathComponent("feeds")
        try Deliveries.file(
            feeds, "nppes", "2025-09-10", "npidata_pfile_20050523-20250907.csv", CMSFixtures.bytes(CMSFixtures.nppes))
        try Deliveries.file(
            feeds, "partd", "2026-05-15", "MUP_DPR_RY26_P04_V10_DY24_NPIBN.csv", CMSFixtures.bytes(CMSFixtures.partd))
        let mesh = try ToyMesh.mesh(
            IngestDomains.all() + MasteringDomains.all(), home: dir.url.appendingPathComponent("home"))
        let (summary, _) = try await Self.run(mesh, feeds: feeds)
        for domain in ["raw-nppes", "raw-partd", "physician-master"] as [DomainID] {
            #expect(
                summary.outcomes[domain]?.status == .success, "\(domain): \(summary.outcomes[domain]?.message ?? "")")
        }
        let raw = try Self.rows(
            mesh, ["raw-nppes", "raw-partd"],
            """
            SELECT (SELECT COUNT(*) FROM raw_nppes.nppes), (SELECT COUNT(*) FROM raw_nppes.quarantine),
                   (SELECT status FROM raw_nppes.batches), (SELECT COUNT(*) FROM raw_partd.partd),
                   (SELECT group_concat(DISTINCT data_year) FROM raw_partd.partd), (SELECT COUNT(*) FROM raw_partd.quarantine),
                   (SELECT COUNT(*) FROM raw_partd.partd WHERE ge65_sprsn_flag IS NOT NULL AND ge65_tot_clms IS NULL),
                   (SELECT COUNT(*) FROM raw_partd.partd WHERE ge65_sprsn_flag IS NULL AND ge65_tot_clms IS NOT NULL)
            """)[0]
        #expect(raw[0] == 99)
        #expect(raw[1] == 0)
        #expect(raw[2] == "loaded")
        #expect(raw[3] == 26)
        #expect(raw[4] == "2024")
        #expect(raw[5] == 0)
        #expect(raw[6] == 10)
        #expect(raw[7] == 16)
        let golden = try Self.rows(
            mesh, ["physician-master"],
            """
            SELECT x.source_id, p.status, p.specialty FROM physician_master.physician_xref x
            JOIN physician_master.physician p ON p.physician_id = x.physician_id
            WHERE x.source = 'nppes' AND x.source_id IN ('1659374601', '1114920162', '1851394803', '1306849450')
            ORDER BY x.source_id
            """
        ).map { "\($0[0] as String) \($0[1] as String) \(($0[2] as String?) ?? "-")" }
        #expect(
            golden == [
                "1114920162 active Internal Medicine", "1306849450 deactivated -", "1659374601 active Family Medicine",
                "1851394803 active 213ES0103X",
            ])
        let counts = try Self.rows(
            mesh, ["physician-master"],
            """
            SELECT (SELECT COUNT(*) FROM physician_master.physician_xref WHERE source = 'nppes' AND physician_id IS NULL),
                   (SELECT COUNT(*) FROM physician_master.physician WHERE status = 'deactivated')
            """)[0]
        #expect(counts[0] == 22)  // the organisations
        #expect(counts[1] == 6)
    }

    @Test func zippedGzippedAndWindowsStyleDeliveriesLoadTheSameRows() async throws {
        let dir = try TemporaryDirectory("cms-variants")
        defer { dir.remove() }
        let nppes = try CMSFixtures.bytes(CMSFixtures.nppes)
        let partd = try CMSFixtures.bytes(CMSFixtures.partd)
        let header = nppes.prefix(through: nppes.firstIndex(of: 0x0A)!)
        func load(_ label: String, _ deliver: (URL) throws -> Void) async throws -> (Mesh, RunSummary, LandingReport) {
            let feeds = dir.url.appendingPathComponent("feeds-\(label)")
            try deliver(feeds)
            let mesh = try ToyMesh.mesh(IngestDomains.all(), home: dir.url.appendingPathComponent("home-\(label)"))
            let (summary, report) = try await Self.run(mesh, feeds: feeds)
            #expect(summary.failed.isEmpty, "\(label)")
            return (mesh, summary, report)
        }
        let content = """
            SELECT * FROM (SELECT 'nppes', npi, entity_type_code, organization_name, last_name, first_name, taxonomy_code,
                                  deactivation_date, reactivation_date, deactivated, line FROM raw_nppes.nppes ORDER BY npi)
            UNION ALL SELECT * FROM (SELECT 'partd', prscrbr_npi, brnd_name, gnrc_name, data_year, tot_clms, ge65_tot_clms,
                                            ge65_sprsn_flag, tot_30day_fills, tot_drug_cst, line FROM raw_partd.partd
                                     ORDER BY prscrbr_npi, brnd_name, gnrc_name)
            """
        let (plain, _, _) = try await load("plain") { feeds in
            try Deliveries.file(feeds, "nppes", "2025-09-10", "npidata_pfile_20050523-20250907.csv", nppes)
            try Deliveries.file(feeds, "partd", "2026-05-15", "MUP_DPR_RY26_P04_V10_DY24_NPIBN.csv", partd)
        }
        let expected = try Self.rows(plain, ["raw-nppes", "raw-partd"], content)
        #expect(expected.count == 99 + 26)

        let (zipped, _, _) = try await load("zipped") { feeds in
            try Deliveries.zip(
                feeds, "nppes", "2025-09-10", "NPPES_Data_Dissemination_September_2025.zip",
                [
                    ("npidata_pfile_20050523-20250907.csv", nppes),
                    ("npidata_pfile_20050523-20250907_fileheader.csv", Data(header)),
                    ("pl_pfile_20050523-20250907.csv", Data("\"NPI\",\"Provider Secondary Practice Location\"\n".utf8)),
                    ("NPPES_Data_Dissemination_Readme.pdf", Data("%PDF-1.4\n".utf8)),
                ])
            try Deliveries.zip(
                feeds, "partd", "2026-05-15", "MUP_DPR_RY26_P04_V10_DY24_NPIBN.zip",
                [("MUP_DPR_RY26_P04_V10_DY24_NPIBN.csv", partd)])
        }
        #expect(try Self.rows(zipped, ["raw-nppes", "raw-partd"], content) == expected)
        let batch = try Self.rows(zipped, ["raw-nppes"], "SELECT status, rows_read, message FROM raw_nppes.batches")[0]
        #expect(batch[0] == "loaded")
        #expect(batch[1] == 99)
        #expect(
            batch[2]
                == "not data, not read: nppes/2025-09-10/NPPES_Data_Dissemination_September_2025.zip/npidata_pfile_20050523-20250907_fileheader.csv, nppes/2025-09-10/NPPES_Data_Dissemination_September_2025.zip/pl_pfile_20050523-20250907.csv, nppes/2025-09-10/NPPES_Data_Dissemination_September_2025.zip/NPPES_Data_Dissemination_Readme.pdf"
        )
        // The landed batch keeps the archive as delivered.
        let landed = zipped.home.appendingPathComponent(
            "landing/nppes/2025-09-10/NPPES_Data_Dissemination_September_2025.zip")
        #expect(try Data(contentsOf: landed).prefix(4) == Data([0x50, 0x4B, 0x03, 0x04]))

        let (gzipped, _, _) = try await load("gzipped") { feeds in
            try Deliveries.gzip(feeds, "nppes", "2025-09-10", "npidata_pfile_20050523-20250907.csv", nppes)
            try Deliveries.gzip(feeds, "partd", "2026-05-15", "MUP_DPR_RY26_P04_V10_DY24_NPIBN.csv", partd)
        }
        #expect(try Self.rows(gzipped, ["raw-nppes", "raw-partd"], content) == expected)

        let (windows, _, _) = try await load("windows") { feeds in
            try Deliveries.file(
                feeds, "nppes", "2025-09-10", "npidata_pfile_20050523-20250907.csv", Deliveries.windows(nppes))
            try Deliveries.file(
                feeds, "partd", "2026-05-15", "MUP_DPR_RY26_P04_V10_DY24_NPIBN.csv", Deliveries.windows(partd))
        }
        #expect(try Self.rows(windows, ["raw-nppes", "raw-partd"], content) == expected)
    }

    @Test func aDeactivationOnlyRecordKeepsWhatAnEarlierDeliverySaid() async throws {
        let dir = try TemporaryDirectory("deactivation")
        defer { dir.remove() }
        let feeds = dir.url.appendingPathComponent("feeds")
        // An earlier monthly file knew 1306849450 as a physician; CMS's September file has it deactivated, empty.
        let header = String(
            decoding: try CMSFixtures.bytes(CMSFixtures.nppes).prefix(while: { $0 != 0x0A }), as: UTF8.self)
        let names = header.dropFirst().dropLast().components(separatedBy: "\",\"")
        var fields = [String](repeating: "", count: names.count)
        func set(_ name: String, _ value: String) { fields[names.firstIndex(of: name)!] = value }
        set("NPI", "1306849450")
        set("Entity Type Code", "1")
        set("Provider Last Name (Legal Name)", "KOWALSKI")
        set("Provider First Name", "ANNA")
        set("Healthcare Provider Taxonomy Code_1", "207R00000X")
        set("Healthcare Provider Primary Taxonomy Switch_1", "Y")
        set("Provider Enumeration Date", "05/23/2005")
        let earlier = header + "\n" + fields.map { "\"\($0)\"" }.joined(separator: ",") + "\n"
        try Deliveries.file(feeds, "nppes", "2021-01-10", "npidata_pfile_20050523-20210103.csv", Data(earlier.utf8))
        try Deliveries.file(
            feeds, "nppes", "2025-09-10", "npidata_pfile_20050523-20250907.csv", CMSFixtures.bytes(CMSFixtures.nppes))
        let mesh = try ToyMesh.mesh(
            IngestDomains.all() + MasteringDomains.all(), home: dir.url.appendingPathComponent("home"))
        let (summary, _) = try await Self.run(mesh, feeds: feeds)
        #expect(summary.failed.isEmpty)
        let raw = try Self.rows(
            mesh, ["raw-nppes"],
            "SELECT entity_type_code, last_name, taxonomy_code, deactivation_date, deactivated, batch FROM raw_nppes.nppes WHERE npi = '1306849450'"
        )[0]
        #expect(raw[0] == 1)
        #expect(raw[1] == "KOWALSKI")
        #expect(raw[2] == "207R00000X")
        #expect(raw[3] == "2021-03-03")
        #expect(raw[4] == 1)
        #expect(raw[5] == "2025-09-10")
        let golden = try Self.rows(
            mesh, ["physician-master"],
            """
            SELECT p.last_name, p.status, p.specialty FROM physician_master.physician_xref x
            JOIN physician_master.physician p ON p.physician_id = x.physician_id
            WHERE x.source = 'nppes' AND x.source_id = '1306849450'
            """)[0]
        #expect(golden[0] == "KOWALSKI")
        #expect(golden[1] == "deactivated")
        #expect(golden[2] == "Internal Medicine")
    }

    @Test func aPartDFileWithoutADataYearIsRejectedWithHowToNameIt() async throws {
        let dir = try TemporaryDirectory("partd-year")
        defer { dir.remove() }
        let feeds = dir.url.appendingPathComponent("feeds")
        try Deliveries.file(
            feeds, "partd", "2026-05-15", "MUP_DPR_RY26_P04_V10_NPIBN.csv", CMSFixtures.bytes(CMSFixtures.partd))
        try Deliveries.file(feeds, "partd", "2026-05-16", "partd_2023.csv", CMSFixtures.bytes(CMSFixtures.partd))
        let mesh = try ToyMesh.mesh(IngestDomains.all(), home: dir.url.appendingPathComponent("home"))
        let (summary, _) = try await Self.run(mesh, feeds: feeds)
        #expect(summary.outcomes["raw-partd"]?.status == .warn)
        let batches = try Self.rows(
            mesh, ["raw-partd"], "SELECT batch, status, message FROM raw_partd.batches ORDER BY batch")
        #expect(batches.map { $0[1] as String } == ["rejected", "loaded"])
        let message: String = batches[0][2]
        #expect(message.hasPrefix("partd/2026-05-15/MUP_DPR_RY26_P04_V10_NPIBN.csv: no data year:"))
        #expect(message.contains("Name the file as CMS does (MUP_DPR_RY26_P04_V10_DY24_NPIBN.csv"))
        #expect(!message.contains("SQLite") && !message.contains("constraint"))
        #expect(
            try Self.rows(mesh, ["raw-partd"], "SELECT DISTINCT data_year FROM raw_partd.partd").map { $0[0] as Int }
                == [2023])
    }
}
