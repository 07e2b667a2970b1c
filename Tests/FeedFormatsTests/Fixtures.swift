import Foundation
import Testing
import ZIPFoundation

@testable import FeedFormats

/// Writes fixture files into a fresh temporary folder, removed by `remove()`.
struct Fixture {
    let folder: URL

    init() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent(
            "feed-formats-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    func file(_ name: String, _ bytes: [UInt8]) throws -> URL {
        let url = folder.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url
    }

    func file(_ name: String, _ text: String) throws -> URL { try file(name, Array(text.utf8)) }

    func remove() { try? FileManager.default.removeItem(at: folder) }
}

/// Everything a reader produced from one file.
struct Read {
    var rows: [(table: Int, line: Int, values: [FieldValue])] = []
    var issues: [RowIssue] = []

    init(_ feed: String, _ url: URL, name: String? = nil) throws {
        var rows: [(Int, Int, [FieldValue])] = []
        var issues: [RowIssue] = []
        try FeedFileReader(feed: feed).read(
            file: url, name: name, row: { rows.append(($0, $1, $2)) }, rejected: { issues.append($0) })
        self.rows = rows.map { (table: $0.0, line: $0.1, values: $0.2) }
        self.issues = issues
    }

    /// `line column: reason` per issue, for exact comparisons.
    var problems: [String] { issues.map { "\($0.line) \($0.column): \($0.reason)" } }
}

/// Reads a file expecting a batch-level error, and returns it.
func readError(_ feed: String, _ url: URL, name: String? = nil) -> FeedFormatError? {
    #expect(throws: FeedFormatError.self) { _ = try Read(feed, url, name: name) }
    do {
        _ = try Read(feed, url, name: name)
        return nil
    } catch {
        return error as? FeedFormatError
    }
}

let xponentHeader = "PRESCRIBER_ID,NPI,ME_NUMBER,PRODUCT_NDC11,WEEK_ENDING,NRX,TRX,NQTY,TQTY"

/// The NPPES header of the columns the layout reads, quoted as CMS writes it.
let nppesHeader = [
    "NPI", "Entity Type Code", "Provider Last Name (Legal Name)", "Provider First Name", "Provider Middle Name",
    "Provider Credential Text", "Provider First Line Business Practice Location Address",
    "Provider Business Practice Location Address City Name", "Provider Business Practice Location Address State Name",
    "Provider Business Practice Location Address Postal Code", "Healthcare Provider Taxonomy Code_1",
    "Provider Enumeration Date", "NPI Deactivation Date",
].map { "\"\($0)\"" }.joined(separator: ",")

/// The real CMS files of shared/fixtures/cms (see its README), found beside the package as CI lays it out.
enum CMSFiles {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("../shared/fixtures/cms").standardizedFileURL
    static let nppes = folder.appendingPathComponent("npidata_pfile_head99.csv")
    static let partd = folder.appendingPathComponent("MUP_DPR_RY26_P04_V10_DY24_NPIBN_head26.csv")

    static func bytes(_ url: URL) throws -> [UInt8] { Array(try Data(contentsOf: url)) }
}

extension Fixture {
    /// `bytes` gzipped by the system's gzip (another implementation than the reader's zlib calls).
    func gzipped(_ name: String, _ bytes: [UInt8]) throws -> URL {
        let plain = try file(name, bytes)
        let gzip = Process()
        gzip.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        gzip.arguments = ["gzip", "-n", "-f", plain.path]
        try gzip.run()
        gzip.waitUntilExit()
        #expect(gzip.terminationStatus == 0)
        return folder.appendingPathComponent(name + ".gz")
    }

    /// A zip archive (written by ZIPFoundation, deflated) of the given members, in order.
    func zipped(_ name: String, _ members: [(String, [UInt8])], stored: Bool = false) throws -> URL {
        let url = folder.appendingPathComponent(name)
        let archive = try Archive(url: url, accessMode: .create)
        for (path, bytes) in members {
            let data = Data(bytes)
            try archive.addEntry(
                with: path, type: .file, uncompressedSize: Int64(data.count),
                compressionMethod: stored ? .none : .deflate
            ) { position, size in
                data.subdata(in: Int(position)..<Int(position) + size)
            }
        }
        return url
    }
}

/// Rows of a read keyed by NPI (the first column), with values by output column name.
struct NamedRows {
    let names: [String]
    let rows: [[FieldValue]]

    init(_ read: Read, feed: String) {
        names = FeedLayouts.layout(for: feed)!.tables[0].outputColumns.map(\.name)
        rows = read.rows.map(\.values)
    }

    func value(_ column: String, where key: String, is id: String) -> FieldValue? {
        let k = names.firstIndex(of: key)!
        let c = names.firstIndex(of: column)!
        return rows.first { $0[k] == .text(id) }?[c]
    }

    func column(_ column: String) -> [FieldValue] {
        let c = names.firstIndex(of: column)!
        return rows.map { $0[c] }
    }
}
