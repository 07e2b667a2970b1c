import Foundation
import GRDB

/// The result of a read-only query.
public struct QueryResult: Sendable {
    public var columns: [String]
    /// Values as SQLite gives them: nil, Int64, Double, String, or Data.
    public var rows: [[QueryValue]]
    /// The version of each domain the query read.
    public var versions: [DomainID: Int]
    /// True when the row limit cut the result.
    public var truncated: Bool
    public init(columns: [String], rows: [[QueryValue]], versions: [DomainID: Int], truncated: Bool) {
        self.columns = columns
        self.rows = rows
        self.versions = versions
        self.truncated = truncated
    }
}

/// One cell of a query result.
public enum QueryValue: Sendable, Hashable, Encodable, CustomStringConvertible {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob(Data)

    public var description: String {
        switch self {
        case .null: return ""
        case .integer(let v): return String(v)
        case .real(let v): return v == v.rounded() && abs(v) < 1e15 ? String(format: "%.1f", v) : String(v)
        case .text(let v): return v
        case .blob(let v): return "<\(v.count) bytes>"
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .integer(let v): try container.encode(v)
        case .real(let v): try container.encode(v)
        case .text(let v): try container.encode(v)
        case .blob(let v): try container.encode(v.base64EncodedString())
        }
    }
}

extension Mesh {
    /// Runs read-only SQL over the published domains, each attached under its schema name.
    ///
    /// Only the domains the SQL names are attached (SQLite attaches at most 10), all from one consistent
    /// set of current versions. Anything that would change state is refused before it runs.
    ///
    /// ```swift
    /// let result = try mesh.query("SELECT COUNT(*) FROM orders_mart.daily")
    /// ```
    /// `allowed` limits the domains the SQL may read (a caller's scope); a query naming another is refused.
    public func query(
        _ sql: String, maxRows: Int = 100_000, timeout: TimeInterval = 30,
        allowed: (@Sendable (DomainID) -> Bool)? = nil
    ) throws -> QueryResult {
        let trimmed = sql.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { throw MeshError(.query, "the query is empty") }
        // Refuse obvious writes before anything is attached; prepared statements are checked again below.
        for part in trimmed.split(separator: ";") {
            let keyword = part.trimmingCharacters(in: .whitespacesAndNewlines).prefix { $0.isLetter }.uppercased()
            if Self.writeKeywords.contains(keyword) { throw Self.refusal(keyword) }
        }
        let schemas = Dictionary(uniqueKeysWithValues: registry.ids.map { ($0.schemaName.lowercased(), $0) })
        let referenced = Self.referencedSchemas(in: trimmed)
        var domains: [DomainID] = []
        for name in referenced.sorted() {
            if let id = schemas[name] {
                domains.append(id)
            } else if !["main", "temp", "sqlite_master", "sqlite_schema"].contains(name),
                Self.looksLikeSchema(name, in: trimmed)
            {
                let close = schemas.keys.filter {
                    Levenshtein.distance($0, name) <= 3 || $0.contains(name) || name.contains($0)
                }.sorted()
                throw MeshError(
                    .query,
                    "unknown schema '\(name)'"
                        + (close.isEmpty
                            ? "; the schemas are: \(schemas.keys.sorted().joined(separator: ", "))"
                            : "; did you mean \(close.joined(separator: ", "))?"))
            }
        }
        if let allowed {
            let refused = domains.filter { !allowed($0) }
            if !refused.isEmpty {
                throw MeshError(
                    .forbidden,
                    "this query reads \(refused.map(\.rawValue).joined(separator: ", ")), which the caller may not read"
                )
            }
        }
        let (queue, versions) = try attachCurrent(domains)
        // The time limit: SQLite stops the statement where it is when interrupted.
        let timer = DispatchWorkItem { queue.interrupt() }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: timer)
        defer { timer.cancel() }
        return try queue.read { db in
            do {
                return try Self.run(trimmed, db: db, maxRows: maxRows, versions: versions)
            } catch let error as DatabaseError where error.resultCode == .SQLITE_INTERRUPT {
                throw MeshError(
                    .query,
                    "the query ran longer than \(String(format: "%g", timeout)) s and was stopped; narrow it or add a LIMIT"
                )
            } catch let error as DatabaseError {
                throw MeshError(.query, try Self.explain(error, db: db, domains: domains))
            }
        }
    }

    private static func run(_ sql: String, db: Database, maxRows: Int, versions: [DomainID: Int]) throws
        -> QueryResult
    {
        let statements = try db.allStatements(sql: sql)
        var last: Statement?
        while let statement = try statements.next() {
            try Self.refuseWrites(statement)
            last = statement
        }
        guard let statement = last else { throw MeshError(.query, "the query has no statement") }
        var rows: [[QueryValue]] = []
        var truncated = false
        let cursor = try Row.fetchCursor(statement)
        while let row = try cursor.next() {
            if rows.count >= maxRows {
                truncated = true
                break
            }
            rows.append(
                (0..<row.count).map { index in
                    switch (row[index] as DatabaseValue).storage {
                    case .null: return .null
                    case .int64(let v): return .integer(v)
                    case .double(let v): return .real(v)
                    case .string(let v): return .text(v)
                    case .blob(let v): return .blob(v)
                    }
                })
        }
        return QueryResult(
            columns: statement.columnNames, rows: rows, versions: versions, truncated: truncated)
    }

    /// `name.` prefixes in the SQL, outside string literals, lower-cased.
    static func referencedSchemas(in sql: String) -> Set<String> {
        var result = Set<String>()
        var identifier = ""
        var inString = false
        var previous: Character = " "
        for character in sql {
            if character == "'" { inString.toggle() }
            if inString {
                identifier = ""
                continue
            }
            if character.isLetter || character.isNumber || character == "_" {
                identifier.append(character)
            } else {
                if character == ".", !identifier.isEmpty, !(identifier.first!.isNumber), previous != "." {
                    result.insert(identifier.lowercased())
                }
                identifier = ""
            }
            previous = character
        }
        return result
    }

    /// A prefix is a schema unless the query declares it: a table alias (`FROM t AS x`, `JOIN t x`), a
    /// subquery alias (`JOIN (SELECT …) g`), or a common table expression (`WITH w AS (…)`, `, w(a, b) AS (…)`).
    static func looksLikeSchema(_ name: String, in sql: String) -> Bool {
        let n = NSRegularExpression.escapedPattern(for: name)
        let declarations = [
            "(?i)(from|join|,)\\s+[\\w.\"]+\\s+(as\\s+)?\(n)\\b",
            "(?i)\\)\\s*(as\\s+)?\(n)\\b",
            "(?i)\\b\(n)\\s*(\\([^)]*\\))?\\s+as\\s+(not\\s+)?(materialized\\s+)?\\(",
        ]
        return !declarations.contains { sql.range(of: $0, options: .regularExpression) != nil }
    }

    static let writeKeywords: Set<String> = [
        "INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER", "ATTACH", "DETACH", "PRAGMA", "VACUUM",
        "BEGIN", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE", "ANALYZE", "REINDEX",
    ]

    static func refusal(_ keyword: String) -> MeshError {
        MeshError(
            .readOnly,
            "refused: queries are read-only, and this statement (\(keyword.isEmpty ? "?" : keyword)) would change state. "
                + "Use SELECT (or WITH ... SELECT); published versions never change.")
    }

    static func refuseWrites(_ statement: Statement) throws {
        let keyword = statement.sql.trimmingCharacters(in: .whitespacesAndNewlines).prefix { $0.isLetter }.uppercased()
        if !statement.isReadonly || writeKeywords.contains(keyword) { throw refusal(keyword) }
    }

    /// Turns SQLite's message into one that names close alternatives.
    static func explain(_ error: DatabaseError, db: Database, domains: [DomainID]) throws -> String {
        let message = error.message ?? "\(error)"
        if message.hasPrefix("no such table: ") {
            let missing = String(message.dropFirst("no such table: ".count))
            var tables: [String] = []
            for domain in domains {
                tables += try String.fetchAll(
                    db,
                    sql:
                        "SELECT '\(domain.schemaName).' || name FROM \"\(domain.schemaName)\".sqlite_master WHERE type IN ('table', 'view')"
                )
            }
            let bare = missing.split(separator: ".").last.map(String.init) ?? missing
            let close = tables.filter { t in
                let name = t.split(separator: ".").last.map(String.init) ?? t
                return Levenshtein.distance(name, bare) <= 4 || name.contains(bare) || bare.contains(name)
            }
            if !close.isEmpty { return "\(message); did you mean \(close.sorted().joined(separator: ", "))?" }
            if !missing.contains("."), let first = domains.first {
                return "\(message); name the domain's schema, for example \(first.schemaName).\(missing)"
            }
        }
        return message
    }
}
