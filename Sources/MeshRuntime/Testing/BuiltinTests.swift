import Foundation
import GRDB
import GRDBSQLite

/// The listed columns are never NULL.
public struct NotNull: DataTest {
    public var table: String
    public var columns: [String]
    public var severity: Severity
    public init(table: String, columns: [String], severity: Severity = .fail) {
        self.table = table
        self.columns = columns
        self.severity = severity
    }
    public var name: String { "not_null(\(table).\(columns.joined(separator: ",")))" }
    public func offendingRowsSQL(_ context: TestContext) -> String? {
        let condition = columns.map { "\(quoteQualified($0)) IS NULL" }.joined(separator: " OR ")
        return "SELECT * FROM \(quoteQualified(table)) WHERE \(condition)"
    }
}

extension NotNull: KeyEnforcedTest {
    var enforcedBy: String { "enforced by the table's NOT NULL columns" }

    /// True when the table's schema already forbids NULL in every listed column: the column is declared
    /// NOT NULL, or belongs to the PRIMARY KEY of a WITHOUT ROWID table (which SQLite keeps free of NULLs).
    func isEnforcedByKey(in db: Database) throws -> Bool {
        guard !columns.isEmpty else { return false }
        guard let (schema, name, withoutRowid) = try tableShape(table, in: db) else { return false }
        let s = quoteQualified(schema)
        var guarded = Set<String>()
        for row in try Row.fetchAll(db, sql: "PRAGMA \(s).table_info(\(quoteLiteral(name)))") {
            if (row["notnull"] as Int) != 0 || (withoutRowid && (row["pk"] as Int) > 0) {
                guarded.insert((row["name"] as String).lowercased())
            }
        }
        return columns.allSatisfy { guarded.contains($0.lowercased()) }
    }
}

/// The schema and name of a table (`schema.name` or `name` in `main`), and whether it is WITHOUT ROWID; nil
/// when it is not a table (a view, or missing).
func tableShape(_ table: String, in db: Database) throws -> (schema: String, name: String, withoutRowid: Bool)? {
    let parts = table.split(separator: ".", maxSplits: 1).map(String.init)
    let (schema, name) = parts.count == 2 ? (parts[0], parts[1]) : ("main", parts[0])
    let s = quoteQualified(schema)
    guard
        try String.fetchOne(
            db, sql: "SELECT type FROM \(s).sqlite_master WHERE name = ? COLLATE NOCASE", arguments: [name])
            == "table"
    else { return nil }
    // A table WITHOUT ROWID has no rowid to select (a column named rowid only makes this conservative): the
    // failure to prepare is the answer, not an error.
    let withoutRowid = (try? db.makeStatement(sql: "SELECT rowid FROM \(s).\(quoteQualified(name)) LIMIT 0")) == nil
    return (schema, name, withoutRowid)
}

/// No two rows share the same values of the grain columns.
public struct Unique: DataTest {
    public var table: String
    public var grain: [String]
    public var severity: Severity
    public init(table: String, grain: [String], severity: Severity = .fail) {
        self.table = table
        self.grain = grain
        self.severity = severity
    }
    public var name: String { "unique(\(table): \(grain.joined(separator: ",")))" }
    public func offendingRowsSQL(_ context: TestContext) -> String? {
        let columns = grain.map(quoteQualified).joined(separator: ", ")
        return
            "SELECT \(columns), COUNT(*) AS copies FROM \(quoteQualified(table)) GROUP BY \(columns) HAVING COUNT(*) > 1"
    }
}

extension Unique: KeyEnforcedTest {
    var enforcedBy: String { "enforced by the table's unique key" }

    /// True when a unique key of the table guarantees the test: a PRIMARY KEY or UNIQUE index (not partial)
    /// whose key columns are exactly the grain columns, in any order, compared with the columns' own
    /// collations (as GROUP BY compares them), and that admits no NULL (a unique index lets NULLs repeat,
    /// GROUP BY groups them): every key column is declared NOT NULL, or the key is the PRIMARY KEY of a
    /// WITHOUT ROWID table, or it is an INTEGER PRIMARY KEY (the rowid).
    func isEnforcedByKey(in db: Database) throws -> Bool {
        let grainNames = Set(grain.map { $0.lowercased() })
        guard !grain.isEmpty, grainNames.count == grain.count else { return false }
        guard let (schema, name, withoutRowid) = try tableShape(table, in: db) else { return false }
        let s = quoteQualified(schema)

        struct Column {
            var notNull: Bool
            var primaryKey: Int
            var type: String
            var collation: String
        }
        var columns: [String: Column] = [:]
        for row in try Row.fetchAll(db, sql: "PRAGMA \(s).table_xinfo(\(quoteLiteral(name)))") {
            let column: String = row["name"]
            var collation: UnsafePointer<CChar>?
            var dataType: UnsafePointer<CChar>?
            var notNull: Int32 = 0
            var primaryKey: Int32 = 0
            var autoincrement: Int32 = 0
            let code = sqlite3_table_column_metadata(
                db.sqliteConnection, schema, name, column, &dataType, &collation, &notNull, &primaryKey, &autoincrement)
            guard code == SQLITE_OK else { return false }
            columns[column.lowercased()] = Column(
                notNull: row["notnull"] as Int != 0, primaryKey: row["pk"], type: (row["type"] as String).uppercased(),
                collation: collation.map { String(cString: $0) }?.uppercased() ?? "BINARY")
        }

        let indexes = try Row.fetchAll(db, sql: "PRAGMA \(s).index_list(\(quoteLiteral(name)))")
        // INTEGER PRIMARY KEY: the rowid itself, unique and never NULL, with no separate index.
        let keyColumns = columns.filter { $0.value.primaryKey > 0 }
        if !withoutRowid, keyColumns.count == 1, let key = keyColumns.first, key.value.type == "INTEGER",
            !indexes.contains(where: { ($0["origin"] as String) == "pk" }), grainNames == [key.key]
        {
            return true
        }
        for index in indexes where (index["unique"] as Int) != 0 && (index["partial"] as Int) == 0 {
            let origin: String = index["origin"]
            let indexName: String = index["name"]
            let keys = try Row.fetchAll(db, sql: "PRAGMA \(s).index_xinfo(\(quoteLiteral(indexName)))")
                .filter { ($0["key"] as Int) != 0 }
            guard keys.count == grain.count else { continue }
            let enforced = keys.allSatisfy { key in
                guard let keyName = key["name"] as String?, grainNames.contains(keyName.lowercased()),
                    let column = columns[keyName.lowercased()]
                else { return false }
                let collation = (key["coll"] as String?)?.uppercased() ?? "BINARY"
                return collation == column.collation && (column.notNull || (withoutRowid && origin == "pk"))
            }
            if enforced && Set(keys.compactMap { ($0["name"] as String?)?.lowercased() }) == grainNames { return true }
        }
        return false
    }
}

/// Every non-null value of a column is one of a list.
public struct AcceptedValues: DataTest {
    public var table: String
    public var column: String
    public var values: [String]
    public var severity: Severity
    public init(table: String, column: String, values: [String], severity: Severity = .fail) {
        self.table = table
        self.column = column
        self.values = values
        self.severity = severity
    }
    public var name: String { "accepted_values(\(table).\(column))" }
    public var definition: String { "\(name) in \(values.sorted().joined(separator: ",")) [\(severity.rawValue)]" }
    public func offendingRowsSQL(_ context: TestContext) -> String? {
        let list = values.map(quoteLiteral).joined(separator: ", ")
        let c = quoteQualified(column)
        return
            "SELECT \(c), COUNT(*) AS rows FROM \(quoteQualified(table)) WHERE \(c) IS NOT NULL AND CAST(\(c) AS TEXT) NOT IN (\(list)) GROUP BY \(c)"
    }
}

/// Referential integrity: every non-null value of a column exists in another table's column, possibly in
/// another domain's published output (`orders_master.customer`).
public struct Relationship: DataTest {
    public var table: String
    public var column: String
    public var toTable: String
    public var toColumn: String
    public var severity: Severity
    public init(
        table: String, column: String, references toTable: String, column toColumn: String, severity: Severity = .fail
    ) {
        self.table = table
        self.column = column
        self.toTable = toTable
        self.toColumn = toColumn
        self.severity = severity
    }
    public var name: String { "relationship(\(table).\(column) → \(toTable).\(toColumn))" }
    public func offendingRowsSQL(_ context: TestContext) -> String? {
        let c = quoteQualified(column)
        return """
            SELECT f.\(c), COUNT(*) AS rows FROM \(quoteQualified(table)) f
            WHERE f.\(c) IS NOT NULL AND NOT EXISTS (SELECT 1 FROM \(quoteQualified(toTable)) t WHERE t.\(quoteQualified(toColumn)) = f.\(c))
            GROUP BY f.\(c)
            """
    }
}

extension Relationship: IncrementalTest {
    public var changeTables: [String] { [table] }

    /// The values to check are those of inserted rows, and the keys the referenced table lost: for an output
    /// of the domain, the previous version's keys that are gone (a read of the keys, where capturing the
    /// changes of a dimension rewritten whole would cost more); for an input, its logged deletions. A value
    /// still missing is counted in the whole table, which is read only when there is one (the `CROSS JOIN`
    /// keeps the short list outside).
    public func changedRowsSQL(_ context: TestContext) -> String? {
        guard let child = context.changes[table] else { return nil }
        let c = quoteQualified(column)
        let tc = quoteQualified(toColumn)
        let lost: String
        if toTable.contains(".") {
            guard let parent = context.changes[toTable] else { return nil }
            lost = "SELECT o.\(tc) FROM \(parent) o WHERE o.mesh_sign = -1 AND o.\(tc) IS NOT NULL"
        } else {
            guard context.hasPrevious else { return nil }
            // Sought in the current table key by key, so that only the lost ones join the candidates (a
            // dimension's whole key list, unioned with the inserted values, cost a sort per test).
            lost = """
                SELECT o.\(tc) FROM previous.\(quoteQualified(toTable)) o WHERE o.\(tc) IS NOT NULL
                    AND NOT EXISTS (SELECT 1 FROM main.\(quoteQualified(toTable)) t WHERE t.\(tc) = o.\(tc))
                """
        }
        func current(_ name: String) -> String {
            name.contains(".") ? quoteQualified(name) : "main.\(quoteQualified(name))"
        }
        return """
            WITH candidate AS MATERIALIZED (
                SELECT n.\(c) AS k FROM \(child) n WHERE n.mesh_sign = 1 AND n.\(c) IS NOT NULL UNION \(lost)),
            missing AS MATERIALIZED (
                SELECT k FROM candidate
                WHERE NOT EXISTS (SELECT 1 FROM \(current(toTable)) t WHERE t.\(tc) = candidate.k))
            SELECT f.\(c), COUNT(*) AS rows FROM missing m CROSS JOIN \(current(table)) f
            WHERE f.\(c) = m.k GROUP BY f.\(c)
            """
    }
}

/// The table's row count lies within bounds.
public struct RowCountBounds: DataTest {
    public var table: String
    public var min: Int?
    public var max: Int?
    public var severity: Severity
    public init(table: String, min: Int? = nil, max: Int? = nil, severity: Severity = .fail) {
        self.table = table
        self.min = min
        self.max = max
        self.severity = severity
    }
    public var name: String { "row_count(\(table) in \(min.map(String.init) ?? "")..\(max.map(String.init) ?? ""))" }
    public func offendingRowsSQL(_ context: TestContext) -> String? {
        var conditions: [String] = []
        if let min { conditions.append("row_count < \(min)") }
        if let max { conditions.append("row_count > \(max)") }
        guard !conditions.isEmpty else { return nil }
        return
            "SELECT row_count FROM (SELECT COUNT(*) AS row_count FROM \(quoteQualified(table))) WHERE \(conditions.joined(separator: " OR "))"
    }
}

/// The row count changed by at most a percentage against the previous published version.
public struct RowCountChange: DataTest {
    public var table: String
    public var maxPercent: Double
    public var severity: Severity
    public init(table: String, maxPercent: Double, severity: Severity = .warn) {
        self.table = table
        self.maxPercent = maxPercent
        self.severity = severity
    }
    public var name: String { "row_count_change(\(table) within \(maxPercent)%)" }
    public func offendingRowsSQL(_ context: TestContext) -> String? {
        guard context.hasPrevious else { return nil }
        let t = quoteQualified(table)
        return """
            SELECT current_rows, previous_rows,
                   ROUND(100.0 * (current_rows - previous_rows) / previous_rows, 2) AS change_percent
            FROM (SELECT (SELECT COUNT(*) FROM main.\(t)) AS current_rows,
                         (SELECT COUNT(*) FROM previous.\(t)) AS previous_rows)
            WHERE previous_rows > 0 AND ABS(current_rows - previous_rows) * 100.0 / previous_rows > \(maxPercent)
            """
    }
}

/// Any SQL that returns the offending rows.
///
/// When the SQL uses SQLite's own syntax, `postgresql` says the same in PostgreSQL's, so that a serving
/// engine can run the test too (both texts sit together, in this one place).
public struct CustomSQLTest: DialectalTest {
    public var name: String
    public var sql: String
    public var severity: Severity
    /// The same query in PostgreSQL's dialect, when `sql` is not standard SQL.
    public var postgresql: String?
    /// The same check over what the build changed, run when the previous version passed: `{changes:TABLE}`
    /// stands for the changed rows of an output or an input's `schema.table` (`mesh_sign` 1 or −1, then the
    /// table's columns). When one of them is unknown, `sql` runs.
    public var incremental: String?
    public init(
        _ name: String, severity: Severity = .fail, sql: String, postgresql: String? = nil, incremental: String? = nil
    ) {
        self.name = name
        self.sql = sql
        self.severity = severity
        self.postgresql = postgresql
        self.incremental = incremental
    }
    public var definition: String {
        "\(name) [\(severity.rawValue)]: \(sql)" + (postgresql.map { "\npostgresql: \($0)" } ?? "")
            + (incremental.map { "\nincremental: \($0)" } ?? "")
    }
    public func offendingRowsSQL(_ context: TestContext) -> String? { sql }
    public func offendingRowsSQL(_ context: TestContext, in dialect: SQLDialect) -> String? {
        dialect == .postgresql ? postgresql ?? sql : sql
    }
}

extension CustomSQLTest: IncrementalTest {
    public var changeTables: [String] {
        guard let incremental else { return [] }
        var names: [String] = []
        var rest = Substring(incremental)
        while let open = rest.range(of: "{changes:"), let close = rest[open.upperBound...].firstIndex(of: "}") {
            names.append(String(rest[open.upperBound..<close]))
            rest = rest[rest.index(after: close)...]
        }
        return names
    }

    public func changedRowsSQL(_ context: TestContext) -> String? {
        guard var text = incremental else { return nil }
        for name in changeTables {
            guard let relation = context.changes[name] else { return nil }
            text = text.replacingOccurrences(of: "{changes:\(name)}", with: relation)
        }
        return text
    }
}
