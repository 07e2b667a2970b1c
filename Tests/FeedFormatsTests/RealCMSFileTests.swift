import Foundation
import Testing

@testable import FeedFormats

/// The real CMS files of shared/fixtures/cms, as CMS publishes them and as users pass them on: zipped with
/// CMS's companion files, gzipped, with CRLF line ends and a byte-order mark, in the 2014 layout.
struct RealCMSFileTests {
    @Test func theNPPESFileAsDeliveredLoadsEveryRow() throws {
        let read = try Read("nppes", CMSFiles.nppes)
        #expect(read.issues.isEmpty, "\(read.problems)")
        #expect(read.rows.count == 99)
        let rows = NamedRows(read, feed: "nppes")
        let types = rows.column("entity_type_code")
        #expect(types.filter { $0 == .integer(1) }.count == 71)
        #expect(types.filter { $0 == .integer(2) }.count == 22)
        #expect(types.filter { $0 == .null }.count == 6)
        // The deactivated NPIs, which CMS sends with every field empty but the NPI and the deactivation date.
        let deactivated = rows.rows.filter { $0[rows.names.firstIndex(of: "deactivated")!] == .integer(1) }
        #expect(deactivated.count == 6)
        #expect(rows.value("deactivation_date", where: "npi", is: "1306849450") == .text("2021-03-03"))
        #expect(rows.value("last_name", where: "npi", is: "1306849450") == .null)
        // Deactivated on 05/23/2005, reactivated the next day: active.
        #expect(rows.value("deactivation_date", where: "npi", is: "1659374601") == .text("2005-05-23"))
        #expect(rows.value("reactivation_date", where: "npi", is: "1659374601") == .text("2005-05-24"))
        #expect(rows.value("deactivated", where: "npi", is: "1659374601") == .integer(0))
        // The primary taxonomy is the slot whose switch is Y: slot 3 (internal medicine), not slot 1 (pediatrics).
        #expect(rows.value("taxonomy_code", where: "npi", is: "1114920162") == .text("207R00000X"))
        #expect(rows.value("taxonomy_code", where: "npi", is: "1851394803") == .text("213ES0103X"))
        #expect(rows.value("taxonomy_code", where: "npi", is: "1497758429") == .text("207X00000X"))
        // Organisations carry their legal business name.
        #expect(
            rows.value("organization_name", where: "npi", is: "1023011079")
                == .text("ADVANTAGE HOME HEALTH CARE, INC."))
        #expect(rows.value("organization_name", where: "npi", is: "1114920162") == .null)
        #expect(rows.column("npi_valid").allSatisfy { $0 == .integer(1) })
    }

    @Test func thePrimaryTaxonomyFollowsTheSwitchOnEveryRealRow() throws {
        // Recomputed from the file's own columns by a plain CSV split (no quoted commas in these columns).
        let text = String(decoding: try CMSFiles.bytes(CMSFiles.nppes), as: UTF8.self)
        var lines = text.split(separator: "\n").map { line in
            line.dropFirst().dropLast().components(separatedBy: "\",\"")
        }
        let header = lines.removeFirst()
        let code = (1...15).map { header.firstIndex(of: "Healthcare Provider Taxonomy Code_\($0)")! }
        let flag = (1...15).map { header.firstIndex(of: "Healthcare Provider Primary Taxonomy Switch_\($0)")! }
        var expected: [String: FieldValue] = [:]
        var notFirst = 0
        for line in lines where line.count == header.count {
            let slot = (0..<15).first { line[flag[$0]] == "Y" && !line[code[$0]].isEmpty } ?? 0
            expected[line[0]] = line[code[slot]].isEmpty ? .null : .text(line[code[slot]])
            if line[code[slot]] != line[code[0]] { notFirst += 1 }
        }
        #expect(expected.count == 99)
        #expect(notFirst == 13)
        let rows = NamedRows(try Read("nppes", CMSFiles.nppes), feed: "nppes")
        for (npi, taxonomy) in expected {
            #expect(rows.value("taxonomy_code", where: "npi", is: npi) == taxonomy, "\(npi)")
        }
    }

    @Test func theNPPESFileZippedGzippedWithCRLFAndABOMReadsTheSame() throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        let bytes = try CMSFiles.bytes(CMSFiles.nppes)
        let plain = try Read("nppes", CMSFiles.nppes)
        let header = Array(bytes.prefix(through: bytes.firstIndex(of: 0x0A)!))
        let crlf = Array(String(decoding: bytes, as: UTF8.self).replacingOccurrences(of: "\n", with: "\r\n").utf8)
        let withBOM = [0xEF, 0xBB, 0xBF] + crlf
        let zip = try fixture.zipped(
            "NPPES_Data_Dissemination_September_2025.zip",
            [
                ("npidata_pfile_20050523-20250907.csv", bytes),
                ("npidata_pfile_20050523-20250907_fileheader.csv", header),
                ("endpoint_pfile_20050523-20250907.csv", Array("\"NPI\",\"Endpoint Type\"\n".utf8)),
                ("NPPES_Data_Dissemination_Readme.pdf", Array("%PDF-1.4\n".utf8)),
            ])
        var zipRows: [[FieldValue]] = []
        let report = try FeedFileReader(feed: "nppes").read(
            file: zip, name: "nppes/2025-09-10/NPPES.zip", row: { zipRows.append($2) },
            rejected: { Issue.record("\($0)") })
        #expect(report.read == ["npidata_pfile_20050523-20250907.csv"])
        #expect(
            report.ignored == [
                "npidata_pfile_20050523-20250907_fileheader.csv", "endpoint_pfile_20050523-20250907.csv",
                "NPPES_Data_Dissemination_Readme.pdf",
            ])
        #expect(zipRows == plain.rows.map(\.values))
        let stored = try fixture.zipped("stored.zip", [("npidata_pfile_x.csv", withBOM)], stored: true)
        for url in [
            try fixture.file("npidata_crlf.csv", crlf), try fixture.file("npidata_bom.csv", withBOM),
            try fixture.gzipped("npidata_pfile_gz.csv", bytes), try fixture.gzipped("npidata_pfile_bom.csv", withBOM),
            stored,
        ] {
            let variant = try Read("nppes", url)
            #expect(variant.issues.isEmpty, "\(url.lastPathComponent): \(variant.problems)")
            #expect(variant.rows.map(\.values) == plain.rows.map(\.values), "\(url.lastPathComponent)")
            #expect(variant.rows.map(\.line) == plain.rows.map(\.line), "\(url.lastPathComponent)")
        }
    }

    @Test func theNPPES2014LayoutAndAWeeklyFileAreAccepted() throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        // The 2014 layout: 329 columns, without the later "Certification Date".
        let text = String(decoding: try CMSFiles.bytes(CMSFiles.nppes), as: UTF8.self)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let older = lines.map { line -> String in
            guard let cut = line.range(of: ",\"", options: .backwards) else { return String(line) }
            return String(line[..<cut.lowerBound])
        }.joined(separator: "\n")
        #expect(older.split(separator: "\n").first?.components(separatedBy: "\",\"").count == 329)
        let read = try Read("nppes", try fixture.file("npidata_pfile_20140106-20140112.csv", older))
        #expect(read.issues.isEmpty, "\(read.problems)")
        #expect(read.rows.map(\.values) == (try Read("nppes", CMSFiles.nppes)).rows.map(\.values))
    }

    @Test func thePartDFileUnderItsCMSNameLoadsWithItsDataYearAndSuppressedCells() throws {
        let read = try Read("partd", CMSFiles.partd)
        #expect(read.issues.isEmpty, "\(read.problems)")
        #expect(read.rows.count == 26)
        let rows = NamedRows(read, feed: "partd")
        #expect(rows.column("data_year").allSatisfy { $0 == .integer(2024) })
        let flags = rows.column("ge65_sprsn_flag")
        #expect(flags.filter { $0 == .text("*") }.count == 4)
        #expect(flags.filter { $0 == .text("#") }.count == 6)
        #expect(flags.filter { $0 == .null }.count == 16)
        // A suppressed cell is empty: NULL, never 0.
        let claims = rows.column("ge65_tot_clms")
        for (flag, value) in zip(flags, claims) { #expect((flag == .null) == (value != .null)) }
        #expect(rows.column("ge65_bene_sprsn_flag").filter { $0 != .null }.count == 16)
        #expect(rows.column("tot_benes").filter { $0 == .null }.count == 5)
        // Quoted generic names keep their commas.
        #expect(rows.column("gnrc_name").contains(.text("Diphth,pertuss(Acell),tet Vac")))
        #expect(
            rows.value("tot_clms", where: "gnrc_name", is: "Hydrocodone/Acetaminophen") == .integer(340))
    }

    @Test func thePartDDataYearComesFromDYnnPartdYYYYOrAYearColumn() throws {
        #expect(FeedLayouts.dataYear(fileName: "MUP_DPR_RY26_P04_V10_DY24_NPIBN.csv") == 2024)
        #expect(FeedLayouts.dataYear(fileName: "MUP_DPR_RY25_P04_V10_DY23_NPIBN_2025-05-01.csv") == 2023)
        #expect(FeedLayouts.dataYear(fileName: "partd_2022.csv") == 2022)
        #expect(FeedLayouts.dataYear(fileName: "MUP_DPR_RY26_P04_V10_NPIBN.csv") == nil)
        #expect(FeedLayouts.dataYear(fileName: "BUDDY24.csv") == nil)
        let fixture = try Fixture()
        defer { fixture.remove() }
        let bytes = try CMSFiles.bytes(CMSFiles.partd)
        // Gzipped, the name without .gz gives the year.
        let gz = try Read("partd", try fixture.gzipped("MUP_DPR_RY25_P04_V10_DY23_NPIBN.csv", bytes))
        #expect(NamedRows(gz, feed: "partd").column("data_year").allSatisfy { $0 == .integer(2023) })
        // A Year column wins over the name.
        let text = String(decoding: bytes, as: UTF8.self).split(separator: "\n").enumerated().map {
            $0.offset == 0 ? "\($0.element),Year" : "\($0.element),2021"
        }.joined(separator: "\n")
        let withColumn = try Read("partd", try fixture.file("prescribers.csv", text))
        #expect(withColumn.issues.isEmpty)
        #expect(NamedRows(withColumn, feed: "partd").column("data_year").allSatisfy { $0 == .integer(2021) })
        // No year anywhere: the batch is rejected with how to name the file.
        let error = readError(
            "partd", try fixture.file("MUP_DPR_RY26_P04_V10_NPIBN.csv", bytes),
            name: "partd/2026-05-15/MUP_DPR_RY26_P04_V10_NPIBN.csv")
        #expect(error?.code == .fileRule)
        #expect(
            error?.description
                == "partd/2026-05-15/MUP_DPR_RY26_P04_V10_NPIBN.csv: no data year: the file name \"MUP_DPR_RY26_P04_V10_NPIBN.csv\" carries none and the file has no Data_Year column. Name the file as CMS does (MUP_DPR_RY26_P04_V10_DY24_NPIBN.csv, where DY24 is the data year 2024) or partd_2024.csv, and deliver it again as a new batch; the batch is rejected whole."
        )
    }
}
