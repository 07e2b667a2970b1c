import Foundation
import GRDB

/// Captures the rows a build changes in tables it modifies in place: every inserted row with
/// `mesh_sign = 1`, every deleted row with `mesh_sign = -1`, an update as both.
///
/// Two uses:
/// - **Change logs** (`Domain.changeLogs`): the capture goes into a table of the published file,
///   `mesh_changes_TABLE (mesh_seq, mesh_sign, the table's columns)`, tagged with the build's sequence number,
///   and `mesh_change_log (seq, before, after)` says which version fingerprints each sequence number leads
///   from and to. A consumer that read version `before` of this domain then reads only the rows that changed
///   since (`StepContext.changes(of:)`), instead of the whole table.
/// - **Test scopes**: a TEMP capture of an output, so that a test the previous version passed checks only the
///   rows this build changed (`IncrementalTest`).
///
/// Like `IncrementalDigest`, the capture works through TEMP triggers, so it is complete only while they are
/// in place: a table dropped and recreated, or written by another connection, is reported incomplete and its
/// changes are unknown.
struct ChangeCapture {
    static let logTable = "mesh_change_log"
    static func changesTable(of table: String) -> String { "mesh_changes_\(table)" }

    struct Target {
        var table: String
        /// Where the rows go (`temp.mesh_capture_N`, or `main.mesh_changes_TABLE`).
        var destination: String
        var triggers: [String]
    }

    private(set) var targets: [String: Target] = [:]
    private var dataVersion = 0

    /// Installs capture triggers on the tables that exist: into TEMP tables (`sequence` nil), or into the
    /// persistent change-log tables of the main database with `mesh_seq = sequence`.
    static func install(tables: [String], sequence: Int?, in db: Database) throws -> ChangeCapture {
        try db.execute(sql: "PRAGMA recursive_triggers = ON")  // a REPLACE's deletes fire delete triggers
        var capture = ChangeCapture()
        // The tables are looked up first and the TEMP tables and triggers created in one batch: each DDL
        // statement makes GRDB reload the schema before its next lookup.
        var ddl: [String] = []
        for (index, table) in tables.enumerated() {
            guard try db.tableExists(table) else { continue }
            let columns = try IncrementalDigest.selectStarColumns(of: table, in: db)
            let t = quoteQualified(table)
            let destination: String
            let prefix: String
            if let sequence {
                let name = changesTable(of: table)
                try Self.ensureLogTable(name, like: table, in: db)
                destination = "main.\(name)"
                prefix = "\(sequence), "
            } else {
                let name = "mesh_capture_\(index)"
                ddl.append(
                    """
                    DROP TABLE IF EXISTS temp.\(name);
                    CREATE TEMP TABLE \(name) AS SELECT 1 AS mesh_sign, * FROM main.\(t) WHERE 0;
                    """)
                destination = "temp.\(name)"
                prefix = ""
            }
            // The body names its target unqualified: SQLite resolves it in temp, then main.
            let target = String(destination.split(separator: ".", maxSplits: 1)[1])
            let list = (sequence == nil ? ["mesh_sign"] : ["mesh_seq", "mesh_sign"]) + columns.map(quoteIdentifier)
            func row(_ sign: Int, _ alias: String) -> String {
                "(\(prefix)\(sign), " + columns.map { "\(alias).\(quoteIdentifier($0))" }.joined(separator: ", ") + ")"
            }
            let insert = "INSERT INTO \(quoteIdentifier(target)) (\(list.joined(separator: ", "))) VALUES"
            let kind = sequence == nil ? "capture" : "log"
            let names = ["insert", "delete", "update"].map { "mesh_\(kind)_\(index)_\($0)" }
            ddl.append(
                """
                DROP TRIGGER IF EXISTS temp.\(names[0]);
                DROP TRIGGER IF EXISTS temp.\(names[1]);
                DROP TRIGGER IF EXISTS temp.\(names[2]);
                CREATE TEMP TRIGGER \(names[0]) AFTER INSERT ON main.\(t) BEGIN \(insert) \(row(1, "NEW")); END;
                CREATE TEMP TRIGGER \(names[1]) AFTER DELETE ON main.\(t) BEGIN \(insert) \(row(-1, "OLD")); END;
                CREATE TEMP TRIGGER \(names[2]) AFTER UPDATE ON main.\(t) BEGIN
                    \(insert) \(row(-1, "OLD")), \(row(1, "NEW"));
                END;
                """)
            capture.targets[table] = Target(table: table, destination: destination, triggers: names)
        }
        if !ddl.isEmpty { try db.execute(sql: ddl.joined(separator: "\n")) }
        capture.dataVersion = try Int.fetchOne(db, sql: "PRAGMA data_version") ?? 0
        return capture
    }

    /// The relation holding the table's captured changes, or nil when the capture is incomplete (the table
    /// was dropped or renamed, its columns changed, or another connection wrote to the file).
    func relation(of table: String, in db: Database) throws -> String? {
        guard let target = targets[table] else { return nil }
        guard try Int.fetchOne(db, sql: "PRAGMA data_version") == dataVersion else { return nil }
        guard try IncrementalDigest.triggers(target.triggers, stillOn: table, in: db) else { return nil }
        let columns = try IncrementalDigest.selectStarColumns(of: table, in: db)
        let captured = try IncrementalDigest.selectStarColumns(of: target.destination, in: db)
        guard Array(captured.drop { $0 == "mesh_seq" || $0 == "mesh_sign" }) == columns else { return nil }
        return quoteQualified(target.destination)
    }

    /// Removes the triggers (and the TEMP capture tables).
    func uninstall(in db: Database) throws {
        var drops: [String] = []
        for (_, target) in targets.sorted(by: { $0.key < $1.key }) {
            drops += target.triggers.map { "DROP TRIGGER IF EXISTS temp.\($0);" }
            if target.destination.hasPrefix("temp.") {
                drops.append("DROP TABLE IF EXISTS \(quoteQualified(target.destination));")
            }
        }
        if !drops.isEmpty { try db.execute(sql: drops.joined(separator: "\n")) }
    }

    /// Creates `mesh_changes_TABLE` with the table's columns, or recreates it empty when they differ.
    static func ensureLogTable(_ name: String, like table: String, in db: Database) throws {
        let columns = try IncrementalDigest.selectStarColumns(of: table, in: db)
        if try db.tableExists(name) {
            if try Array(IncrementalDigest.selectStarColumns(of: name, in: db).dropFirst(2)) == columns { return }
            try db.execute(sql: "DROP TABLE main.\(quoteIdentifier(name))")
        }
        try db.execute(
            sql:
                "CREATE TABLE main.\(quoteIdentifier(name)) AS SELECT 0 AS mesh_seq, 1 AS mesh_sign, * FROM main.\(quoteQualified(table)) WHERE 0"
        )
    }

    // MARK: The persistent log

    /// The next sequence number of a change log in the working database (1 when there is none).
    static func nextSequence(in db: Database) throws -> Int {
        guard try db.tableExists(logTable) else { return 1 }
        return (try Int.fetchOne(db, sql: "SELECT MAX(seq) FROM \(logTable)") ?? 0) + 1
    }

    /// Records the build as step `sequence` from `before` to `after` when every logged table's capture is
    /// complete, and drops entries older than `depth` steps; otherwise empties the log (what changed is
    /// unknown, so no consumer may read it). Creates the log's tables when missing.
    static func commit(
        _ capture: ChangeCapture?, tables: [String], sequence: Int, before: String?, after: String, depth: Int,
        in db: Database
    ) throws {
        try db.execute(
            sql:
                "CREATE TABLE IF NOT EXISTS \(logTable) (seq INTEGER PRIMARY KEY, before TEXT NOT NULL, after TEXT NOT NULL)"
        )
        var complete = capture != nil && before != nil
        let present = try tables.filter { try db.tableExists($0) }
        for table in present {
            let name = changesTable(of: table)
            if try !db.tableExists(name) { complete = false }
            try ensureLogTable(name, like: table, in: db)
            if try capture?.relation(of: table, in: db) == nil { complete = false }
        }
        // Kept: the last `depth` steps when the capture is complete; nothing when what changed is unknown.
        let oldest = complete ? sequence - depth : Int.max
        if complete, let before {
            try db.execute(sql: "INSERT INTO \(logTable) VALUES (?, ?, ?)", arguments: [sequence, before, after])
        }
        for table in present {
            try db.execute(
                sql: "DELETE FROM \(quoteIdentifier(changesTable(of: table))) WHERE mesh_seq <= ?", arguments: [oldest])
        }
        try db.execute(sql: "DELETE FROM \(logTable) WHERE seq <= ?", arguments: [oldest])
    }

    /// The relations of an input's changes since version fingerprint `since`, keyed `schema.table`: the rows
    /// of the input's change log on the chain from `since` to `current`, or nothing when the log does not
    /// reach back that far. When the fingerprints are equal, every output is known unchanged.
    static func inputChanges(
        schema: String, tables: [String], since: String, current: String, in db: Database
    ) throws -> [String: String] {
        let s = quoteIdentifier(schema)
        var result: [String: String] = [:]
        if since == current {
            for table in tables {
                guard try db.tableExists(table, in: schema) else { continue }
                result["\(schema).\(table)"] =
                    "(SELECT 0 AS mesh_seq, 1 AS mesh_sign, * FROM \(s).\(quoteIdentifier(table)) WHERE 0)"
            }
            return result
        }
        guard try db.tableExists(logTable, in: schema) else { return [:] }
        let steps = try Row.fetchAll(db, sql: "SELECT seq, before, after FROM \(s).\(logTable) ORDER BY seq")
        guard let start = steps.firstIndex(where: { ($0["before"] as String) == since }) else { return [:] }
        var expected = since
        var last: Int?
        for step in steps[start...] {
            guard (step["before"] as String) == expected, last == nil || (step["seq"] as Int) == last! + 1 else {
                return [:]
            }
            expected = step["after"]
            last = step["seq"]
            if expected == current { break }
        }
        guard expected == current, let last else { return [:] }
        let first: Int = steps[start]["seq"]
        for table in tables {
            let name = changesTable(of: table)
            guard try db.tableExists(name, in: schema) else { continue }
            result["\(schema).\(table)"] =
                "(SELECT * FROM \(s).\(quoteIdentifier(name)) WHERE mesh_seq BETWEEN \(first) AND \(last))"
        }
        return result
    }
}
