import Foundation
import GRDBSQLite
import SQLiteTuning

#if canImport(Glibc)
    import Glibc
#endif

/// Stops a running query from another thread: a server that is shutting down, a caller that went away.
///
/// ```swift
/// let cancellation = QueryCancellation()
/// // on another thread, later: cancellation.cancel()
/// let result = try mesh.query(sql, limits: QueryLimits(), cancellation: cancellation)  // throws once cancelled
/// ```
public final class QueryCancellation: @unchecked Sendable {
    // @unchecked: every field is read and written under `lock`; `sqlite3_interrupt` is the one SQLite call
    // made from another thread, which SQLite allows for an open connection, and the lock keeps the connection
    // open while it runs (`detach` takes the lock before the connection closes).
    private let lock = NSLock()
    private var cancelled = false
    private var connection: OpaquePointer?

    public init() {}

    public var isCancelled: Bool { lock.withLock { cancelled } }

    /// Stops the query where it is (SQLite returns SQLITE_INTERRUPT); a query not started yet never starts.
    public func cancel() {
        lock.withLock {
            cancelled = true
            if let connection { sqlite3_interrupt(connection) }
        }
    }

    /// Registers the connection to interrupt; false when the query was cancelled already.
    func attach(_ db: OpaquePointer) -> Bool {
        lock.withLock {
            guard !cancelled else { return false }
            connection = db
            return true
        }
    }

    func detach() { lock.withLock { connection = nil } }
}

/// What a query may do, decided statement by statement by SQLite's authorizer while the statement is
/// prepared (nothing has run yet), so comments, case and spacing change nothing.
///
/// Allowed: SELECT and recursive CTEs; reading the attached published schemas (and `main`, the connection's
/// empty in-memory database, where the built-in table-valued functions such as `json_each` live); SQL
/// functions except those that reach outside the data; a short list of read-only PRAGMAs that describe the
/// attached tables. Everything else is refused: writes of any kind, ATTACH and DETACH (VACUUM INTO is an
/// ATTACH), transactions and savepoints, other PRAGMAs, ANALYZE, REINDEX, temp objects.
final class SandboxPolicy {
    /// The schemas a query may read: the attached domains, and `main` and `temp` (empty by construction).
    let readable: Set<String>
    /// The first refusal of the statement being prepared, worded for people.
    var refusal: MeshError?
    /// The first action SQLite asked about for this statement (see `decide`).
    private(set) var firstAction: Int32?

    /// PRAGMAs that only describe tables (as `pragma_table_info(…)` functions too): nothing that names a
    /// file (`database_list`), changes a setting, or reads internals.
    static let pragmas: Set<String> = [
        "table_info", "table_xinfo", "table_list", "index_list", "index_info", "index_xinfo", "foreign_key_list",
    ]

    /// SQL functions that reach outside the published data: extensions and files (`load_extension`, and the
    /// shell's `readfile`, `writefile`, `edit`, `fsdir`, `zipfile`, `sqlar_*`, should a build carry them),
    /// memory addresses (`fts3_tokenizer` returns one and can register one, `fts5` hands out an API pointer),
    /// and `icu_load_collation`, which changes the connection.
    static let deniedFunctions: Set<String> = [
        "load_extension", "fts3_tokenizer", "fts5", "readfile", "writefile", "edit", "fsdir", "zipfile",
        "sqlar_compress", "sqlar_uncompress", "icu_load_collation", "sqlite_dbdata", "sqlite_dbptr",
    ]

    init(readable: Set<String>) {
        self.readable = readable.union(["main", "temp"])
    }

    /// Called before each statement is prepared.
    func beginStatement() {
        refusal = nil
        firstAction = nil
    }

    func decide(_ action: Int32, _ first: String?, _ second: String?, _ schema: String?) -> Int32 {
        let isFirst = firstAction == nil
        if isFirst { firstAction = action }
        switch action {
        case SQLITE_SELECT, SQLITE_RECURSIVE:
            return SQLITE_OK
        case SQLITE_READ:
            // No schema: a common table expression or a subquery, not a database.
            guard let schema else { return SQLITE_OK }
            if readable.contains(schema.lowercased()) { return SQLITE_OK }
            return refuse(
                "refused: the query reads \(schema).\(first ?? "?"), outside the published schemas it names")
        case SQLITE_FUNCTION:
            let name = (second ?? "").lowercased()
            if !Self.deniedFunctions.contains(name) { return SQLITE_OK }
            return refuse(
                "refused: queries may not call \(name)(), which reaches outside the published data (extensions, "
                    + "files or memory addresses). Use SELECT with SQL's own functions.")
        case SQLITE_PRAGMA:
            let name = (first ?? "").lowercased()
            if Self.pragmas.contains(name), schema.map({ readable.contains($0.lowercased()) }) ?? true {
                return SQLITE_OK
            }
            return refuse(
                "refused: PRAGMA \(name) is not one of the read-only pragmas a query may use ("
                    + Self.pragmas.sorted().joined(separator: ", ") + "); published versions never change.")
        case SQLITE_UPDATE where !isFirst && first == "sqlite_master" && schema == "main":
            // A built-in table-valued function (json_each, pragma_table_info) declares its columns the first
            // time a connection uses it, and SQLite asks about that as an UPDATE of main's schema table while
            // the SELECT that uses it is prepared. Nothing is written (main is an empty read-only in-memory
            // database, defensive mode forbids schema writes, and the statement must still be read-only); a
            // statement that starts as an UPDATE is refused above.
            return SQLITE_OK
        default:
            return refuse(Self.refusal(Self.verb(action, first)))
        }
    }

    private func refuse(_ message: String) -> Int32 {
        if refusal == nil { refusal = MeshError(.readOnly, message) }
        return SQLITE_DENY
    }

    static func refusal(_ verb: String) -> String {
        "refused: queries are read-only, and this statement (\(verb)) would change state. "
            + "Use SELECT (or WITH ... SELECT); published versions never change."
    }

    /// The SQL a refused action comes from, for the message.
    static func verb(_ action: Int32, _ first: String?) -> String {
        switch action {
        case SQLITE_INSERT: return "INSERT"
        case SQLITE_UPDATE: return "UPDATE"
        case SQLITE_DELETE: return "DELETE"
        case SQLITE_CREATE_INDEX, SQLITE_CREATE_TEMP_INDEX: return "CREATE INDEX"
        case SQLITE_CREATE_TABLE, SQLITE_CREATE_TEMP_TABLE: return "CREATE TABLE"
        case SQLITE_CREATE_TRIGGER, SQLITE_CREATE_TEMP_TRIGGER: return "CREATE TRIGGER"
        case SQLITE_CREATE_VIEW, SQLITE_CREATE_TEMP_VIEW: return "CREATE VIEW"
        case SQLITE_CREATE_VTABLE: return "CREATE VIRTUAL TABLE"
        case SQLITE_DROP_INDEX, SQLITE_DROP_TEMP_INDEX: return "DROP INDEX"
        case SQLITE_DROP_TABLE, SQLITE_DROP_TEMP_TABLE: return "DROP TABLE"
        case SQLITE_DROP_TRIGGER, SQLITE_DROP_TEMP_TRIGGER: return "DROP TRIGGER"
        case SQLITE_DROP_VIEW, SQLITE_DROP_TEMP_VIEW: return "DROP VIEW"
        case SQLITE_DROP_VTABLE: return "DROP VIRTUAL TABLE"
        case SQLITE_ATTACH: return "ATTACH"
        case SQLITE_DETACH: return "DETACH"
        case SQLITE_ALTER_TABLE: return "ALTER TABLE"
        case SQLITE_ANALYZE: return "ANALYZE"
        case SQLITE_REINDEX: return "REINDEX"
        case SQLITE_TRANSACTION: return first ?? "a transaction"
        case SQLITE_SAVEPOINT: return first == "BEGIN" ? "SAVEPOINT" : "\(first ?? "") a savepoint"
        default: return "action \(action)"
        }
    }
}

/// The C callback SQLite calls while preparing; the context is the connection's `SandboxPolicy`.
private let sandboxAuthorizer:
    @convention(c) (
        UnsafeMutableRawPointer?, Int32, UnsafePointer<CChar>?, UnsafePointer<CChar>?, UnsafePointer<CChar>?,
        UnsafePointer<CChar>?
    ) -> Int32 = { context, action, first, second, schema, _ in
        guard let context else { return SQLITE_DENY }
        let policy = Unmanaged<SandboxPolicy>.fromOpaque(context).takeUnretainedValue()
        return policy.decide(
            action, first.map { String(cString: $0) }, second.map { String(cString: $0) },
            schema.map { String(cString: $0) })
    }

/// The deadline and the cancellation a running statement checks every `QuerySandbox.progressSteps` steps.
final class QueryClock {
    let deadline: UInt64
    let cancellation: QueryCancellation?
    init(timeout: TimeInterval, cancellation: QueryCancellation?) {
        let nanoseconds = timeout.isFinite ? UInt64(max(0, min(timeout, 1e9)) * 1e9) : UInt64.max / 2
        deadline = DispatchTime.now().uptimeNanoseconds &+ nanoseconds
        self.cancellation = cancellation
    }
    var expired: Bool { DispatchTime.now().uptimeNanoseconds >= deadline }
}

private let sandboxProgress: @convention(c) (UnsafeMutableRawPointer?) -> Int32 = { context in
    guard let context else { return 1 }
    let clock = Unmanaged<QueryClock>.fromOpaque(context).takeUnretainedValue()
    return clock.expired || clock.cancellation?.isCancelled == true ? 1 : 0
}

/// One query's own SQLite connection, on the C API, locked down before the query's text is even prepared.
///
/// GRDB is not used here: it installs its own authorizer on every connection it opens (to track what a
/// statement reads and writes), and a second `sqlite3_set_authorizer` would silently replace it. A query
/// needs neither GRDB's observation nor its pool, so the connection is opened, used and closed on the C API,
/// on the calling thread.
///
/// In order: opened read-only (`SQLITE_OPEN_READONLY` on an empty in-memory main database; attached files
/// inherit the flag and are opened `mode=ro&immutable=1` as well), hardened (`pharma_mesh_sqlite_harden`:
/// defensive, no extensions, no fts3 tokenizer registration, untrusted schema, no triggers), limited
/// (`sqlite3_limit`: value length, program size, no sorter threads), the published files attached, the
/// attach limit lowered to their number, `query_only`, caches set, and only then the authorizer and the
/// progress handler installed. Temporary files go to a folder of the mesh home through
/// `pharma_mesh_sqlite_temp_vfs`, never to the system's temporary folder.
final class QuerySandbox {
    /// Virtual-machine steps between two checks of the clock: often enough to stop within milliseconds,
    /// rare enough to cost nothing measurable.
    static let progressSteps: Int32 = 1000
    /// The longest program a statement may compile to (`SQLITE_LIMIT_VDBE_OP`; SQLite's default is 250
    /// million, gigabytes of memory). Real queries, views expanded, stay in the thousands.
    static let maxProgramSteps: Int32 = 1_000_000

    let db: OpaquePointer
    let policy: SandboxPolicy
    let clock: QueryClock
    let limits: QueryLimits
    private let policyPointer: UnsafeMutableRawPointer
    private let clockPointer: UnsafeMutableRawPointer
    private var closed = false

    /// Opens the connection with each published file attached under its schema name.
    init(
        attaching files: [(schema: String, file: URL)], temporaryFolder: URL, limits: QueryLimits,
        cancellation: QueryCancellation?
    ) throws {
        self.limits = limits
        guard let vfs = Self.temporaryStorage(temporaryFolder) else {
            throw MeshError(
                .storage,
                "the query's temporary folder \(temporaryFolder.path) cannot be created or used; check the mesh home's permissions and free space"
            )
        }
        var handle: OpaquePointer?
        let flags = SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_PRIVATECACHE
        let opened = sqlite3_open_v2(":memory:", &handle, flags, vfs)
        guard opened == SQLITE_OK, let handle else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "code \(opened)"
            sqlite3_close_v2(handle)
            throw MeshError(.storage, "SQLite could not open a query connection (\(message)); try again")
        }
        db = handle
        policy = SandboxPolicy(readable: Set(files.map { $0.schema.lowercased() }))
        clock = QueryClock(timeout: limits.timeout, cancellation: cancellation)
        policyPointer = Unmanaged.passRetained(policy).toOpaque()
        clockPointer = Unmanaged.passRetained(clock).toOpaque()
        do {
            let hardened = pharma_mesh_sqlite_harden(db)
            guard hardened == SQLITE_OK else {
                throw MeshError(
                    .storage,
                    "this SQLite library refused a sandbox setting (sqlite3_db_config \(hardened < 0 ? "option \(-hardened) did not take" : "code \(hardened)")); queries cannot run safely with it"
                )
            }
            sqlite3_limit(db, SQLITE_LIMIT_LENGTH, Int32(clamping: limits.maxValueBytes))
            sqlite3_limit(db, SQLITE_LIMIT_VDBE_OP, Self.maxProgramSteps)
            sqlite3_limit(db, SQLITE_LIMIT_WORKER_THREADS, 0)
            for (schema, file) in files { try attach(schema, file) }
            // No further database can be attached, whatever gets past the authorizer.
            sqlite3_limit(db, SQLITE_LIMIT_ATTACHED, Int32(files.count))
            let cache = -max(64, limits.cacheKiB)
            var setup = "PRAGMA query_only = 1; PRAGMA temp_store = FILE; PRAGMA main.cache_size = \(cache);"
            for (schema, _) in files { setup += " PRAGMA \(quoteIdentifier(schema)).cache_size = \(cache);" }
            try execute(setup)
            sqlite3_set_authorizer(db, sandboxAuthorizer, policyPointer)
            sqlite3_progress_handler(db, Self.progressSteps, sandboxProgress, clockPointer)
            if let cancellation, !cancellation.attach(db) { throw Self.cancelled }
        } catch {
            close()
            throw error
        }
    }

    deinit { close() }

    func close() {
        guard !closed else { return }
        closed = true
        clock.cancellation?.detach()
        sqlite3_close_v2(db)
        Unmanaged<SandboxPolicy>.fromOpaque(policyPointer).release()
        Unmanaged<QueryClock>.fromOpaque(clockPointer).release()
    }

    static let cancelled = MeshError(.query, "the query was stopped before it finished (the server is stopping)")

    /// The VFS that keeps the query's temporary files in `folder` (created when missing, owner only).
    private static func temporaryStorage(_ folder: URL) -> String? {
        let path = folder.standardizedFileURL.path
        if mkdir(path, 0o700) != 0 && errno != EEXIST {
            // Checked just below: a folder that could not be made refuses the query with its own message.
            try? FileManager.default.createDirectory(
                atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue,
            let name = pharma_mesh_sqlite_temp_vfs(path)
        else { return nil }
        return String(cString: name)
    }

    private func attach(_ schema: String, _ file: URL) throws {
        var statement: OpaquePointer?
        defer { sqlite3_finalize(statement) }
        let uri = DomainBuilder.readOnlyURI(file)
        guard
            sqlite3_prepare_v2(db, "ATTACH DATABASE ?1 AS \(quoteIdentifier(schema))", -1, &statement, nil)
                == SQLITE_OK,
            sqlite3_bind_text(statement, 1, uri, -1, Self.transient) == SQLITE_OK,
            sqlite3_step(statement) == SQLITE_DONE
        else {
            throw MeshError(
                .storage,
                "the published file \(file.lastPathComponent) of schema \(schema) could not be opened for the query (SQLite: \(message)); run `status` to check the domain's current version"
            )
        }
    }

    private func execute(_ sql: String) throws {
        guard sqlite3_exec(db, sql, nil, nil, nil) == SQLITE_OK else {
            throw MeshError(.storage, "the query connection could not be set up (SQLite: \(message)); try again")
        }
    }

    var message: String { String(cString: sqlite3_errmsg(db)) }

    /// SQLITE_TRANSIENT: SQLite copies the bound text.
    static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    /// Prepares the query: exactly one statement, accepted by the authorizer and read-only.
    ///
    /// What follows the first statement is prepared too, and must prepare to nothing (whitespace, comments,
    /// semicolons): a second statement is refused without anything having run, whatever its text looks like.
    func prepare(_ sql: String) throws -> OpaquePointer {
        var utf8 = Array(sql.utf8)
        utf8.append(0)
        return try utf8.withUnsafeBufferPointer { buffer -> OpaquePointer in
            let base = UnsafeRawPointer(buffer.baseAddress!).assumingMemoryBound(to: CChar.self)
            let end = base + (buffer.count - 1)
            var cursor = base
            var found: OpaquePointer?
            while cursor < end {
                var statement: OpaquePointer?
                var tail: UnsafePointer<CChar>?
                policy.beginStatement()
                let rc = sqlite3_prepare_v3(db, cursor, Int32(end - cursor), 0, &statement, &tail)
                if rc != SQLITE_OK {
                    sqlite3_finalize(found)
                    if let refusal = policy.refusal { throw refusal }
                    if found != nil { throw Self.severalStatements(String(cString: cursor)) }
                    throw QueryFailure(code: rc, message: message)
                }
                if let statement {
                    if found != nil {
                        sqlite3_finalize(statement)
                        sqlite3_finalize(found)
                        throw Self.severalStatements(String(cString: cursor))
                    }
                    // A query is what SQLite itself reports as a SELECT or an allowed PRAGMA: a statement the
                    // authorizer was never asked about (REINDEX or VACUUM of everything) is not one.
                    let first = policy.firstAction
                    if sqlite3_stmt_readonly(statement) == 0 || (first != SQLITE_SELECT && first != SQLITE_PRAGMA) {
                        sqlite3_finalize(statement)
                        throw MeshError(.readOnly, SandboxPolicy.refusal("not a SELECT"))
                    }
                    found = statement
                }
                guard let tail, tail > cursor else { break }
                cursor = tail
            }
            guard let found else { throw MeshError(.query, "the query has no statement, only comments") }
            return found
        }
    }

    static func severalStatements(_ rest: String) -> MeshError {
        let start = rest.trimmingCharacters(in: .whitespacesAndNewlines.union(CharacterSet(charactersIn: ";")))
        return MeshError(
            .readOnly,
            "refused: a query is one statement, and this text holds another after the first (\(start.prefix(40))…). "
                + "Send one SELECT (or WITH ... SELECT) at a time.")
    }

    /// Steps the statement, keeping at most `limits.maxRows` rows and `limits.maxResultBytes` bytes of values.
    func rows(of statement: OpaquePointer) throws -> (columns: [String], rows: [[QueryValue]], cut: QueryCut?) {
        let count = Int(sqlite3_column_count(statement))
        let columns = (0..<Int32(count)).map { String(cString: sqlite3_column_name(statement, $0)) }
        var rows: [[QueryValue]] = []
        var bytes = 0
        while true {
            let rc = sqlite3_step(statement)
            if rc == SQLITE_DONE { return (columns, rows, nil) }
            guard rc == SQLITE_ROW else {
                // A table-valued PRAGMA prepares its own statement as it runs, and the authorizer sees that too.
                if let refusal = policy.refusal { throw refusal }
                throw QueryFailure(code: rc, message: message)
            }
            if rows.count >= limits.maxRows { return (columns, rows, .rows) }
            var row: [QueryValue] = []
            row.reserveCapacity(count)
            for index in 0..<Int32(count) {
                switch sqlite3_column_type(statement, index) {
                case SQLITE_INTEGER:
                    row.append(.integer(sqlite3_column_int64(statement, index)))
                    bytes += 8
                case SQLITE_FLOAT:
                    row.append(.real(sqlite3_column_double(statement, index)))
                    bytes += 8
                case SQLITE_TEXT:
                    let length = Int(sqlite3_column_bytes(statement, index))
                    let text = sqlite3_column_text(statement, index).map {
                        String(decoding: UnsafeBufferPointer(start: $0, count: length), as: UTF8.self)
                    }
                    row.append(.text(text ?? ""))
                    bytes += length
                case SQLITE_BLOB:
                    let length = Int(sqlite3_column_bytes(statement, index))
                    let data = sqlite3_column_blob(statement, index).map { Data(bytes: $0, count: length) }
                    row.append(.blob(data ?? Data()))
                    bytes += length
                default:
                    row.append(.null)
                }
                bytes += QueryLimits.cellOverhead
            }
            if bytes > limits.maxResultBytes { return (columns, rows, .bytes) }
            rows.append(row)
        }
    }

    /// Strings from a query of the connection's own (the tables of a schema, to suggest names).
    func strings(_ sql: String) -> [String] {
        var statement: OpaquePointer?
        defer { sqlite3_finalize(statement) }
        policy.beginStatement()
        guard sqlite3_prepare_v2(db, sql, -1, &statement, nil) == SQLITE_OK else { return [] }
        var result: [String] = []
        while sqlite3_step(statement) == SQLITE_ROW {
            if let text = sqlite3_column_text(statement, 0) { result.append(String(cString: text)) }
        }
        return result
    }
}

/// SQLite's answer to a statement that did not prepare or run: its result code and message.
struct QueryFailure: Error {
    var code: Int32
    var message: String
}
