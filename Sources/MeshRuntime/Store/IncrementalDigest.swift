import Foundation
import GRDB
import GRDBSQLite

/// Keeps the digests of tables that a build modifies in place, so that finalizing costs in proportion to
/// the rows that changed instead of the table size.
///
/// `install` registers the SQL function `mesh_row_hash(...)` on the working connection and adds TEMP
/// triggers (after insert, delete and update) on each tracked table. The triggers hash every written row
/// exactly as `Fingerprint.digest` hashes a row of `SELECT *`, and log the hash with a sign (+1 inserted,
/// −1 deleted; an update logs the old row −1 and the new row +1) in a TEMP table of its own,
/// `mesh_digest_log_N`, so that reading one table's delta reads only its rows (one shared log would be read
/// in full once per table). Logging into a
/// table rather than into Swift memory keeps the delta transactional: rows of a rolled back transaction or
/// savepoint leave the log with the data they described.
///
/// `digest(of:previous:in:)` then returns the previous digest plus the logged delta (wrapping sums), or
/// nil when the table cannot be digested incrementally (its triggers are gone because it was dropped or
/// renamed, its columns changed, or another connection wrote to the file): the caller digests it fully.
struct IncrementalDigest {
    /// The prefix of the log tables, one per tracked table.
    static let logTable = "mesh_digest_log"
    static let functionName = "mesh_row_hash"
    /// SQLite's default limit on function arguments is 127; wider tables are digested fully.
    static let maxColumns = 100

    /// Tracked table → the `name TYPE` columns the triggers hash, in table order.
    private(set) var tracked: [String: [String]] = [:]
    /// Tracked table → its trigger names.
    private var triggers: [String: [String]] = [:]
    /// Tracked table → its log table (in `temp`).
    private var logs: [String: String] = [:]
    /// `PRAGMA data_version` at install: it changes when another connection commits to the file.
    private var dataVersion: Int = 0

    /// Registers the row-hash function and installs the triggers on the tables that exist.
    static func install(tables: [String], in db: Database) throws -> IncrementalDigest {
        try registerFunction(in: db)
        // A REPLACE that deletes a conflicting row fires delete triggers only when recursive triggers are on.
        try db.execute(sql: "PRAGMA recursive_triggers = ON")
        var result = IncrementalDigest()
        // Every DDL statement makes GRDB reload the schema before the next lookup: the tables are looked up
        // first, then every log and trigger is created in one batch.
        var ddl: [String] = []
        for (index, table) in tables.enumerated() {
            guard try db.tableExists(table) else { continue }
            let columns = try db.columns(in: table)
            guard !columns.isEmpty, columns.count <= maxColumns else { continue }
            let names = try selectStarColumns(of: table, in: db)
            guard names.count == columns.count else { continue }
            func hash(_ row: String) -> String {
                "\(functionName)(" + names.map { "\(row).\(quoteIdentifier($0))" }.joined(separator: ", ") + ")"
            }
            let t = quoteQualified(table)
            let logName = "\(logTable)_\(index)"
            let log = "INSERT INTO \(logName) (sign, hash) VALUES"  // a TEMP trigger writes its own schema
            let names3 = ["insert", "delete", "update"].map { "mesh_digest_\(index)_\($0)" }
            ddl.append(
                """
                DROP TABLE IF EXISTS temp.\(logName);
                CREATE TEMP TABLE \(logName) (sign INTEGER NOT NULL, hash BLOB NOT NULL);
                CREATE TEMP TRIGGER \(names3[0]) AFTER INSERT ON main.\(t) BEGIN
                    \(log) (1, \(hash("NEW")));
                END;
                CREATE TEMP TRIGGER \(names3[1]) AFTER DELETE ON main.\(t) BEGIN
                    \(log) (-1, \(hash("OLD")));
                END;
                CREATE TEMP TRIGGER \(names3[2]) AFTER UPDATE ON main.\(t) BEGIN
                    \(log) (-1, \(hash("OLD"))), (1, \(hash("NEW")));
                END;
                """)
            result.tracked[table] = columns.map { "\($0.name) \($0.type.uppercased())" }
            result.triggers[table] = names3
            result.logs[table] = logName
        }
        if !ddl.isEmpty { try db.execute(sql: ddl.joined(separator: "\n")) }
        result.dataVersion = try Int.fetchOne(db, sql: "PRAGMA data_version") ?? 0
        return result
    }

    /// True when some tracked table was written since `install`, or the file changed behind the connection.
    func hasChanges(in db: Database) throws -> Bool {
        if try Int.fetchOne(db, sql: "PRAGMA data_version") != dataVersion { return true }
        for log in logs.values.sorted() {
            guard try db.tableExists(log, in: "temp") else { return true }
            if try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM temp.\(log))") ?? true { return true }
        }
        return false
    }

    /// The table's digest from the previous one and the logged changes, or nil when it must be computed fully.
    func digest(of table: String, previous: Fingerprint.TableDigest, in db: Database) throws
        -> Fingerprint.TableDigest?
    {
        guard let columns = tracked[table], let names = triggers[table], let log = logs[table],
            columns == previous.columns,
            let (previousA, previousB) = Fingerprint.digestSums(previous.digest)
        else { return nil }
        // Another connection (a command step, say) wrote to the file: its rows passed no trigger.
        guard try Int.fetchOne(db, sql: "PRAGMA data_version") == dataVersion else { return nil }
        guard try Self.triggers(names, stillOn: table, in: db), try db.tableExists(log, in: "temp") else { return nil }
        let current = try db.columns(in: table).map { "\($0.name) \($0.type.uppercased())" }
        guard current == columns else { return nil }

        var sumA = previousA
        var sumB = previousB
        var count = previous.rowCount
        let rows = try Row.fetchCursor(db, sql: "SELECT sign, hash FROM temp.\(log)")
        while let row = try rows.next() {
            let sign: Int = row[0]
            let hash: Data = row[1]
            guard hash.count == 16 else { return nil }
            let (a, b) = hash.withUnsafeBytes {
                (
                    UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: 0, as: UInt64.self)),
                    UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
                )
            }
            if sign > 0 {
                sumA &+= a
                sumB &+= b
            } else {
                sumA &-= a
                sumB &-= b
            }
            count += sign
        }
        return Fingerprint.TableDigest(columns: columns, rowCount: count, digest: Fingerprint.digestText(sumA, sumB))
    }

    /// Removes the triggers, the log and the function's use, leaving the connection as before `install`.
    func uninstall(in db: Database) throws {
        let drops =
            triggers.values.joined().sorted().map { "DROP TRIGGER IF EXISTS temp.\($0);" }
            + logs.values.sorted().map { "DROP TABLE IF EXISTS temp.\($0);" }
        if !drops.isEmpty { try db.execute(sql: drops.joined(separator: "\n")) }
    }

    /// The column names `SELECT *` returns for a table (`schema.name` or a name in `main`), in order: the names
    /// triggers read through NEW and OLD.
    static func selectStarColumns(of table: String, in db: Database) throws -> [String] {
        let qualified = table.contains(".") ? quoteQualified(table) : "main.\(quoteQualified(table))"
        return try db.makeStatement(sql: "SELECT * FROM \(qualified) LIMIT 0").columnNames
    }

    /// True when every named TEMP trigger still exists on `table`: dropping a table drops its triggers, and
    /// renaming it moves them to the new name.
    static func triggers(_ names: [String], stillOn table: String, in db: Database) throws -> Bool {
        for name in names {
            let owner = try String.fetchOne(
                db, sql: "SELECT tbl_name FROM sqlite_temp_master WHERE type = 'trigger' AND name = ?",
                arguments: [name])
            guard let owner, owner.lowercased() == table.lowercased() else { return false }
        }
        return true
    }

    /// Registers `mesh_row_hash(v1, v2, ...)`: a 16-byte blob holding the row's two finished hash lanes
    /// (little-endian), computed with the same type dispatch and byte mixing as `Fingerprint.digest`.
    static func registerFunction(in db: Database) throws {
        let code = sqlite3_create_function_v2(
            db.sqliteConnection, functionName, -1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, nil,
            { context, argc, argv in
                var hasher = RowHasher()
                for index in 0..<Int(argc) {
                    let value = argv![index]
                    switch sqlite3_value_type(value) {
                    case SQLITE_NULL: hasher.null()
                    case SQLITE_INTEGER: hasher.integer(sqlite3_value_int64(value))
                    case SQLITE_FLOAT: hasher.real(sqlite3_value_double(value))
                    case SQLITE_TEXT:
                        hasher.text(sqlite3_value_text(value), count: Int(sqlite3_value_bytes(value)))
                    default:
                        hasher.blob(sqlite3_value_blob(value), count: Int(sqlite3_value_bytes(value)))
                    }
                }
                let (a, b) = hasher.finish()
                var lanes = (a.littleEndian, b.littleEndian)
                withUnsafeBytes(of: &lanes) { buffer in
                    sqlite3_result_blob(
                        context, buffer.baseAddress, 16, unsafeBitCast(-1, to: sqlite3_destructor_type.self))
                }
            }, nil, nil, nil)
        guard code == SQLITE_OK else {
            throw DatabaseError(
                resultCode: ResultCode(rawValue: code), message: String(cString: sqlite3_errmsg(db.sqliteConnection)))
        }
    }
}
