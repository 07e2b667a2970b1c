import ArgumentParser
import Foundation
import MeshRuntime

/// `query SQL`: read-only SQL over the published domains.
struct QueryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "query",
        abstract: "Read-only SQL over the published domains; each is a schema named after it with - as _.",
        discussion: "Example: pharma-mesh query \"SELECT COUNT(*) FROM raw_xponent.xponent\"")

    enum Format: String, ExpressibleByArgument, CaseIterable { case table, csv, json }
    enum Engine: String, ExpressibleByArgument, CaseIterable { case sqlite, postgresql }

    @OptionGroup var mesh: MeshOptions
    @Option(help: "table (aligned), csv or json.") var format: Format = .table
    @Option(help: "At most this many rows.") var maxRows = 100_000
    @Option(help: "Stop the query after this many seconds.") var timeout: Double = 60
    @Option(help: "sqlite (the published files) or postgresql (the server `engine use` chose).")
    var engine: Engine = .sqlite
    @Argument(help: "The SQL (SELECT or WITH … SELECT).") var sql: String

    func run() async throws {
        let result: QueryResult
        switch engine {
        case .sqlite: result = try mesh.open(access: .read).query(sql, maxRows: maxRows, timeout: timeout)
        case .postgresql:
            result = try await EngineCommand.postgres(mesh).1.query(sql, maxRows: maxRows, timeout: timeout)
        }
        print(Self.render(result, as: format))
        if format == .table {
            let versions = result.versions.sorted { $0.key < $1.key }.map { "\($0.key)@v\($0.value)" }.joined(
                separator: ", ")
            Console.error(
                "(\(result.rows.count) row\(result.rows.count == 1 ? "" : "s")\(result.truncated ? ", cut at --max-rows" : "")"
                    + (versions.isEmpty ? ")" : "; read \(versions))"))
        }
    }

    static func render(_ result: QueryResult, as format: Format) -> String {
        switch format {
        case .table:
            return Console.table(result.columns, result.rows.map { $0.map(\.description) })
        case .csv:
            func field(_ text: String) -> String {
                text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" })
                    ? "\"\(text.replacingOccurrences(of: "\"", with: "\"\""))\"" : text
            }
            return
                ([result.columns.map(field).joined(separator: ",")]
                + result.rows.map { $0.map { field($0.description) }.joined(separator: ",") })
                .joined(separator: "\n")
        case .json:
            return jsonRows(result)
        }
    }

    /// An array of objects whose keys are in the query's column order (not sorted: the columns are the
    /// query's own order), pretty-printed like the other JSON the command line prints.
    static func jsonRows(_ result: QueryResult) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        func encoded<T: Encodable>(_ value: T) -> String {
            (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "null"
        }
        let keys = result.columns.map(encoded)
        guard !result.rows.isEmpty else { return "[]" }
        let objects = result.rows.map { row in
            "  {\n" + zip(keys, row).map { "    \($0) : \(encoded($1))" }.joined(separator: ",\n") + "\n  }"
        }
        return "[\n" + objects.joined(separator: ",\n") + "\n]"
    }
}
