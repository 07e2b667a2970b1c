import Foundation
import GRDB
import MeshRuntime

/// Writes a published extract domain as files analysts' tools open directly.
///
/// For version N of domain D, `HOME/extracts/D/vN/` holds, per output table, `TABLE.csv` (header, rows in
/// grain order) and `TABLE.sqlite` (that table alone), plus `manifest.json`: the mesh run, the version and
/// its fingerprint, every input and upstream domain version, the parameters, and per table the row count
/// and the SHA-256 of each file. The folder is written under a temporary name and renamed when complete, and
/// `HOME/extracts/D/current` then points at it, so a reader never sees half an extract.
public enum ExtractExport {
    public static func folder(home: URL, domain: DomainID) -> URL {
        home.appendingPathComponent("extracts/\(domain.rawValue)")
    }

    static func export(_ published: PublishedVersion, outputs: [OutputPort]) throws {
        let fm = FileManager.default
        let root = folder(home: published.home, domain: published.domain)
        let name = "v\(String(format: "%06d", published.record.version))"
        let final = root.appendingPathComponent(name)
        let staging = root.appendingPathComponent(".\(name).partial")
        try? fm.removeItem(at: staging)
        try fm.createDirectory(at: staging, withIntermediateDirectories: true)

        var config = Configuration()
        config.readonly = true
        let source = try DatabaseQueue(path: published.file.path, configuration: config)
        var tables: [String: Any] = [:]
        for output in outputs {
            let csv = staging.appendingPathComponent("\(output.table).csv")
            let sqlite = staging.appendingPathComponent("\(output.table).sqlite")
            let order = output.grain.isEmpty ? "1" : output.grain.map { "\"\($0)\"" }.joined(separator: ", ")
            let rows = try source.read { db -> Int in
                try writeCSV(db, sql: "SELECT * FROM \"\(output.table)\" ORDER BY \(order)", to: csv)
            }
            // No rollback journal: the file is new, in a folder renamed into place only once complete.
            var standaloneConfig = Configuration()
            standaloneConfig.journalMode = .default
            standaloneConfig.prepareDatabase { db in try db.execute(sql: "PRAGMA journal_mode = OFF") }
            let standalone = try DatabaseQueue(path: sqlite.path, configuration: standaloneConfig)
            try standalone.writeWithoutTransaction { db in
                let path = published.file.standardizedFileURL.path
                let uri =
                    "file:\(path.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? path)?mode=ro&immutable=1"
                try db.execute(sql: "ATTACH DATABASE ? AS published", arguments: [uri])
                try db.execute(
                    sql:
                        "CREATE TABLE main.\"\(output.table)\" AS SELECT * FROM published.\"\(output.table)\" ORDER BY \(order)"
                )
                try db.execute(sql: "DETACH DATABASE published")
            }
            try standalone.close()
            tables[output.table] = [
                "rows": rows, "grain": output.grain,
                "files": [
                    "\(output.table).csv": try Fingerprint.sha256Hex(fileAt: csv),
                    "\(output.table).sqlite": try Fingerprint.sha256Hex(fileAt: sqlite),
                ],
            ]
        }
        try source.close()
        let record = published.record
        let manifest: [String: Any] = [
            "domain": published.domain.rawValue, "version": record.version, "mesh_run": record.runID.rawValue,
            "fingerprint": record.fingerprint, "code_version": record.codeVersion, "variation": record.variation,
            "parameters": record.parameters, "inputs": record.inputVersions, "upstream": record.upstreamVersions,
            "tables": tables,
        ]
        let json = try JSONSerialization.data(withJSONObject: manifest, options: [.prettyPrinted, .sortedKeys])
        try json.write(to: staging.appendingPathComponent("manifest.json"))
        if fm.fileExists(atPath: final.path) { try fm.removeItem(at: final) }
        try fm.moveItem(at: staging, to: final)
        // Repoint `current` atomically: a new link under a temporary name, renamed over the old one.
        let link = root.appendingPathComponent("current")
        let temporaryLink = root.appendingPathComponent(".current.new")
        try? fm.removeItem(at: temporaryLink)
        try fm.createSymbolicLink(atPath: temporaryLink.path, withDestinationPath: name)
        guard rename(temporaryLink.path, link.path) == 0 else {
            throw MeshError(.storage, "cannot point \(link.path) at \(name): \(String(cString: strerror(errno)))")
        }
        published.log("extracts written to \(final.path)")
    }

    /// RFC 4180 CSV: fields with a comma, quote or line break are quoted; NULL is an empty field.
    static func writeCSV(_ db: Database, sql: String, to url: URL) throws -> Int {
        FileManager.default.createFile(atPath: url.path, contents: nil)
        let handle = try FileHandle(forWritingTo: url)
        defer { try? handle.close() }
        let statement = try db.makeStatement(sql: sql)
        var buffer = statement.columnNames.map(field).joined(separator: ",") + "\n"
        var count = 0
        let rows = try Row.fetchCursor(statement)
        while let row = try rows.next() {
            for index in 0..<row.count {
                if index > 0 { buffer += "," }
                switch (row[index] as DatabaseValue).storage {
                case .int64(let int): buffer += String(int)
                case .double(let double): buffer += format(double)
                case .string(let string): buffer += field(string)
                case .blob(let data): buffer += data.base64EncodedString()
                case .null: break
                }
            }
            buffer += "\n"
            count += 1
            if buffer.utf8.count > 1 << 20 {
                try handle.write(contentsOf: Data(buffer.utf8))
                buffer = ""
            }
        }
        try handle.write(contentsOf: Data(buffer.utf8))
        return count
    }

    static func field(_ text: String) -> String {
        // Scanned as bytes: the four are ASCII, and iterating characters costs grapheme breaking.
        guard text.utf8.contains(where: { $0 == 0x2C || $0 == 0x22 || $0 == 0x0A || $0 == 0x0D }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// Shortest text that reads back as the same double, without exponents for everyday magnitudes.
    static func format(_ value: Double) -> String {
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        let text = "\(value)"
        if text.utf8.contains(UInt8(ascii: "e")) { return String(format: "%.10f", value) }
        return text
    }
}
