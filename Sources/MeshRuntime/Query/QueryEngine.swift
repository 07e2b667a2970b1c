import Foundation
import GRDBSQLite

/// The result of a read-only query.
public struct QueryResult: Sendable {
    public var columns: [String]
    /// Values as SQLite gives them: nil, Int64, Double, String, or Data.
    public var rows: [[QueryValue]]
    /// The version of each domain the query read.
    public var versions: [DomainID: Int]
    /// True when a limit cut the result.
    public var truncated: Bool
    /// Which limit cut it, when one did.
    public var cut: QueryCut?
    public init(
        columns: [String], rows: [[QueryValue]], versions: [DomainID: Int], truncated: Bool, cut: QueryCut? = nil
    ) {
        self.columns = columns
        self.rows = rows
        self.versions = versions
        self.truncated = truncated
        self.cut = cut ?? (truncated ? .rows : nil)
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

/// Why a result was cut short.
public enum QueryCut: String, Sendable, Codable {
    /// `QueryLimits.maxRows` rows were kept and there were more.
    case rows
    /// The values kept reached `QueryLimits.maxResultBytes`.
    case bytes
}

/// What one query may use: time, rows, bytes of result, length of a value, page cache.
///
/// The defaults suit the command line and the library; the server passes tighter ones
/// (`MeshServerConfiguration`). What they bound, with the numbers, is in docs/architecture.md ("The query
/// sandbox").
public struct QueryLimits: Sendable, Hashable {
    /// Seconds after which SQLite stops the query (its progress handler checks the clock every 1,000
    /// virtual-machine steps).
    public var timeout: TimeInterval
    /// The most rows a result keeps (`truncated` says when it was cut).
    public var maxRows: Int
    /// The most bytes of values a result keeps: text and blobs by their length, numbers 8 bytes, and
    /// `cellOverhead` bytes a cell besides.
    public var maxResultBytes: Int
    /// The longest string or blob a query may build (`SQLITE_LIMIT_LENGTH`): a `group_concat`, `zeroblob`
    /// or `randomblob` past it stops the query (`printf` gives NULL instead).
    public var maxValueBytes: Int
    /// The page cache, in KiB, of each attached file and of the connection's main database, which also
    /// sizes the memory a sort uses before it spills to the home's `tmp/query` folder.
    public var cacheKiB: Int

    /// What a cell costs besides its value, in the byte count.
    public static let cellOverhead = 16

    public init(
        timeout: TimeInterval = 30, maxRows: Int = 100_000, maxResultBytes: Int = 256 << 20,
        maxValueBytes: Int = 32 << 20, cacheKiB: Int = 8 << 10
    ) {
        self.timeout = timeout
        self.maxRows = maxRows
        self.maxResultBytes = maxResultBytes
        self.maxValueBytes = maxValueBytes
        self.cacheKiB = cacheKiB
    }
}

extension Mesh {
    /// Runs read-only SQL over the published domains, each attached under its schema name.
    ///
    /// Only the domains the SQL names are attached (SQLite attaches at most 10), all from one consistent
    /// set of current versions. The query runs in a sandbox (`QuerySandbox`): a connection of its own,
    /// opened read-only, where SQLite's authorizer refuses anything but reading while the statement is
    /// prepared, and SQLite's progress handler stops it at the time limit.
    ///
    /// ```swift
    /// let result = try mesh.query("SELECT COUNT(*) FROM orders_mart.daily")
    /// ```
    /// `allowed` limits the domains the SQL may read (a caller's scope); a query naming another is refused.
    public func query(
        _ sql: String, maxRows: Int = 100_000, timeout: TimeInterval = 30,
        allowed: (@Sendable (DomainID) -> Bool)? = nil
    ) throws -> QueryResult {
        try query(sql, limits: QueryLimits(timeout: timeout, maxRows: maxRows), allowed: allowed)
    }

    /// Runs read-only SQL within `limits`; `cancellation` stops it from another thread.
    public func query(
        _ sql: String, limits: QueryLimits, allowed: (@Sendable (DomainID) -> Bool)? = nil,
        cancellation: QueryCancellation? = nil
    ) throws -> QueryResult {
        let trimmed = sql.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { throw MeshError(.query, "the query is empty") }
        guard !trimmed.utf8.contains(0) else {
            throw MeshError(.query, "the query holds a NUL character; send the SQL as plain text")
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
        guard domains.count <= 10 else {
            throw MeshError(
                .query, "a query can read at most 10 domains at once (SQLite's attach limit); it names \(domains.count)"
            )
        }
        let files = try store.currentFiles(of: domains)
        var attached: [(schema: String, file: URL)] = []
        for id in domains {
            guard let file = files[id] else {
                throw MeshError(.notFound, "domain \(id) has no published version yet; run the mesh first")
            }
            attached.append((id.schemaName, home.appendingPathComponent(file.path)))
        }
        let sandbox = try QuerySandbox(
            attaching: attached, temporaryFolder: queryTemporaryFolder, limits: limits, cancellation: cancellation)
        defer { sandbox.close() }
        do {
            let statement = try sandbox.prepare(trimmed)
            defer { sqlite3_finalize(statement) }
            let (columns, rows, cut) = try sandbox.rows(of: statement)
            return QueryResult(
                columns: columns, rows: rows, versions: files.mapValues(\.version), truncated: cut != nil, cut: cut)
        } catch let failure as QueryFailure {
            throw Self.explain(failure, sandbox: sandbox, domains: domains, limits: limits, registry: registry)
        }
    }

    /// Where queries keep their temporary files (sorts, spilled intermediate results): inside the home.
    public var queryTemporaryFolder: URL { home.appendingPathComponent("tmp/query", isDirectory: true) }

    /// `name.` prefixes in the SQL, outside string literals, lower-cased.
    static func referencedSchemas(in sql: String) -> Set<String> {
        var result = Set<String>()
        var identifier = ""
        var inString = false
        var previous: Character = " "
        var inQuotedName = false
        for character in sql {
            if character == "'" && !inQuotedName { inString.toggle() }
            if inString {
                identifier = ""
                continue
            }
            // A quoted name (`"physician_mart"."fact_rx_weekly"`) is a name like any other: its quotes are not
            // part of it.
            if character == "\"" {
                inQuotedName.toggle()
                if inQuotedName { identifier = "" }
                continue
            }
            if inQuotedName {
                identifier.append(character)
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

    /// Turns SQLite's answer into a sentence that says what happened and what to do, naming close
    /// alternatives for a table that does not exist.
    static func explain(
        _ failure: QueryFailure, sandbox: QuerySandbox, domains: [DomainID], limits: QueryLimits,
        registry: DomainRegistry
    ) -> MeshError {
        let message = failure.message
        switch failure.code & 0xFF {
        case SQLITE_INTERRUPT:
            if sandbox.clock.cancellation?.isCancelled == true { return QuerySandbox.cancelled }
            return MeshError(
                .query,
                "the query ran longer than \(String(format: "%g", limits.timeout)) s and was stopped; narrow it or add a LIMIT"
            )
        case SQLITE_TOOBIG:
            return MeshError(
                .query,
                "the query built a value longer than \(limits.maxValueBytes >> 20) MiB, the most a query may (SQLite: \(message)); aggregate less into one value"
            )
        case SQLITE_NOMEM:
            return MeshError(.query, "the query ran out of memory and was stopped; narrow it or add a LIMIT")
        case SQLITE_FULL, SQLITE_IOERR, SQLITE_CANTOPEN:
            return MeshError(
                .storage,
                "the query could not write its temporary files in the mesh home's tmp/query folder (SQLite: \(message)); check free space there"
            )
        default:
            break
        }
        if message.hasPrefix("no such table: ") {
            return missingTable(
                String(message.dropFirst("no such table: ".count)), message: message, sandbox: sandbox,
                domains: domains, registry: registry)
        }
        if message.hasPrefix("no such column: ") {
            return missingColumn(
                String(message.dropFirst("no such column: ".count)), message: message, domains: domains,
                registry: registry)
        }
        return MeshError(.query, "the query did not run: \(message)")
    }

    /// A table that does not exist: the close names among the tables the query reads, else among every
    /// domain's published tables.
    private static func missingTable(
        _ missing: String, message: String, sandbox: QuerySandbox, domains: [DomainID], registry: DomainRegistry
    ) -> MeshError {
        var tables: [String] = []
        for domain in domains {
            tables += sandbox.strings(
                "SELECT \(quoteLiteral(domain.schemaName + ".")) || name FROM \(quoteIdentifier(domain.schemaName)).sqlite_master WHERE type IN ('table', 'view')"
            )
        }
        let bare = missing.split(separator: ".").last.map(String.init) ?? missing
        let close = tables.filter { t in
            let name = t.split(separator: ".").last.map(String.init) ?? t
            return Levenshtein.distance(name, bare) <= 4 || name.contains(bare) || bare.contains(name)
        }
        if !close.isEmpty {
            return MeshError(.query, "\(message); did you mean \(close.sorted().joined(separator: ", "))?")
        }
        // An unqualified name: the domains that publish a table of that name (or close to it).
        let published = registry.ids.flatMap { id in
            (registry[id]?.outputs ?? []).map { "\(id.schemaName).\($0.table)" }
        }
        let qualified = published.filter { $0.hasSuffix(".\(bare.lowercased())") }
        if !missing.contains("."), !qualified.isEmpty {
            return MeshError(
                .query,
                "\(message); tables are named with their domain's schema: did you mean \(qualified.joined(separator: ", "))?"
            )
        }
        let near = published.filter { t in
            Levenshtein.distance(String(t.split(separator: ".").last ?? ""), bare) <= 3
        }
        if !near.isEmpty {
            return MeshError(.query, "\(message); did you mean \(near.sorted().joined(separator: ", "))?")
        }
        if !missing.contains("."), let first = domains.first {
            return MeshError(
                .query, "\(message); name the domain's schema, for example \(first.schemaName).\(missing)")
        }
        return MeshError(.query, "\(message); the catalog of each domain lists its tables")
    }

    /// A column that does not exist: the close names among the columns of the domains the query reads.
    private static func missingColumn(
        _ missing: String, message: String, domains: [DomainID], registry: DomainRegistry
    ) -> MeshError {
        let bare = (missing.split(separator: ".").last.map(String.init) ?? missing).lowercased()
        // The columns of the tables of the domains the query reads that are close to the name.
        var close: [String] = []
        for id in domains {
            for output in registry[id]?.outputs ?? [] {
                for column in output.columns
                where Levenshtein.distance(column.name.lowercased(), bare) <= 3
                    || column.name.lowercased().contains(bare) || bare.contains(column.name.lowercased())
                {
                    close.append("\(column.name) (\(id.schemaName).\(output.table))")
                }
            }
        }
        if !close.isEmpty {
            return MeshError(.query, "\(message); did you mean \(close.prefix(8).joined(separator: ", "))?")
        }
        return MeshError(
            .query, "\(message); the catalog of each domain (/domains/DOMAIN/catalog) lists its columns")
    }
}
