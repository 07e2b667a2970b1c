import Foundation
import GRDB

/// What a kitchen changed against its parent, domain by domain and table by table.
package struct KitchenDiff: Codable, Sendable {
    package struct TableDiff: Codable, Sendable {
        package var table: String
        package var addedColumns: [String]
        package var removedColumns: [String]
        package var parentRows: Int?
        package var kitchenRows: Int?
        /// By the table's grain: keys only in the kitchen, only in the parent, and in both with other values.
        package var addedRows: Int
        package var removedRows: Int
        package var changedRows: Int
        /// A few changed rows, keyed: `key`, then `parent` and `kitchen` values of the common columns.
        package var sample: [[String: String]]
        /// A few rows only the kitchen has, and only the parent has, by the grain: `key`, then `row` (the
        /// common columns' values).
        package var addedSample: [[String: String]] = []
        package var removedSample: [[String: String]] = []
        /// The partition column (`OutputPort.partition`), and the partitions whose row count differs.
        package var partition: String?
        package var partitionCounts: [PartitionCount] = []
        enum CodingKeys: String, CodingKey {
            case table, addedColumns = "added_columns", removedColumns = "removed_columns",
                parentRows = "parent_rows", kitchenRows = "kitchen_rows", addedRows = "added_rows",
                removedRows = "removed_rows", changedRows = "changed_rows", sample, addedSample = "added_sample",
                removedSample = "removed_sample", partition, partitionCounts = "partition_counts"
        }
    }
    /// The rows of one partition in the parent and in the kitchen.
    package struct PartitionCount: Codable, Sendable, Hashable {
        package var partition: String
        package var parentRows: Int
        package var kitchenRows: Int
        enum CodingKeys: String, CodingKey {
            case partition, parentRows = "parent_rows", kitchenRows = "kitchen_rows"
        }
    }
    package struct TestSideBySide: Codable, Sendable {
        package var step: String
        package var test: String
        package var parent: String?
        package var kitchen: String?
    }
    package struct DomainDiff: Codable, Sendable {
        package var domain: DomainID
        package var parentVersion: Int?
        package var kitchenVersion: Int?
        /// False while the kitchen has not built the domain itself (it still reads the parent's version).
        package var builtInKitchen: Bool
        package var codeChanged: Bool
        package var parameterChanges: [String: [String]]
        package var tables: [TableDiff]
        package var tests: [TestSideBySide]
        enum CodingKeys: String, CodingKey {
            case domain, parentVersion = "parent_version", kitchenVersion = "kitchen_version",
                builtInKitchen = "built_in_kitchen", codeChanged = "code_changed",
                parameterChanges = "parameter_changes", tables, tests
        }
    }
    package var kitchen: String
    package var parent: String
    package var domains: [DomainDiff]
}

extension Kitchens {
    /// Compares each of the kitchen's domains with the parent's current version.
    /// The grain of each table comes from the registry's output contracts.
    package func diff(_ name: String, registry: DomainRegistry, sampleSize: Int = 5) throws -> KitchenDiff {
        let manifest = try manifest(name)
        let parentHome = parentHome(of: manifest)
        let home = home(of: name)
        let parent = try RuntimeStore(home: parentHome)
        let kitchen = try RuntimeStore(home: home)
        let parentCurrent = try parent.currentVersions()
        let kitchenCurrent = try kitchen.currentVersions()
        var domains: [KitchenDiff.DomainDiff] = []
        for id in manifest.domains {
            let p = parentCurrent[id]
            let k = kitchenCurrent[id]
            let built = k?.retained == true
            var diff = KitchenDiff.DomainDiff(
                domain: id, parentVersion: p?.version, kitchenVersion: built ? k?.version : nil, builtInKitchen: built,
                codeChanged: built && k?.codeVersion != p?.codeVersion, parameterChanges: [:], tables: [], tests: [])
            guard built, let k else {
                domains.append(diff)
                continue
            }
            for key in Set((p?.parameters ?? [:]).keys).union(k.parameters.keys).sorted()
            where p?.parameters[key] != k.parameters[key] {
                diff.parameterChanges[key] = [p?.parameters[key] ?? "", k.parameters[key] ?? ""]
            }
            let kitchenFile = home.appendingPathComponent(k.path)
            let parentFile = p.map { parentHome.appendingPathComponent($0.path) }
            let queue = try DatabaseQueue()
            try queue.writeWithoutTransaction { db in
                try db.execute(sql: "ATTACH DATABASE ? AS k", arguments: [DomainBuilder.readOnlyURI(kitchenFile)])
                if let parentFile {
                    try db.execute(sql: "ATTACH DATABASE ? AS p", arguments: [DomainBuilder.readOnlyURI(parentFile)])
                }
            }
            let ports = Dictionary(
                (registry[id]?.outputs ?? []).map { ($0.table, $0) }, uniquingKeysWith: { a, _ in a })
            for table in k.schema.keys.sorted() {
                let kColumns = Self.columnNames(k.schema[table] ?? [])
                let pColumns = Self.columnNames(p?.schema[table] ?? [])
                var t = KitchenDiff.TableDiff(
                    table: table, addedColumns: kColumns.filter { !pColumns.contains($0) },
                    removedColumns: pColumns.filter { !kColumns.contains($0) }, parentRows: p?.rowCounts[table],
                    kitchenRows: k.rowCounts[table], addedRows: 0, removedRows: 0, changedRows: 0, sample: [])
                if parentFile != nil, !pColumns.isEmpty {
                    let common = kColumns.filter { pColumns.contains($0) }
                    let grain = (ports[table]?.grain ?? []).filter { common.contains($0) }
                    let partition = ports[table]?.partition.flatMap { common.contains($0) ? $0 : nil }
                    try queue.read { db in
                        try Self.compare(
                            db, table: table, common: common, grain: grain, into: &t, sampleSize: sampleSize)
                        if let partition {
                            t.partition = partition
                            t.partitionCounts = try Self.partitionCounts(db, table: table, column: partition)
                        }
                    }
                } else {
                    t.addedRows = k.rowCounts[table] ?? 0
                }
                diff.tables.append(t)
            }
            // Tests side by side: the parent's current version's run against the kitchen's.
            let parentTests = try p.map { try parent.testResults(of: id, run: $0.runID) } ?? []
            let kitchenTests = try kitchen.testResults(of: id, run: k.runID)
            var rows: [String: KitchenDiff.TestSideBySide] = [:]
            for r in parentTests {
                rows["\(r.step)|\(r.test)"] = .init(step: r.step, test: r.test, parent: r.status.rawValue)
            }
            for r in kitchenTests {
                rows["\(r.step)|\(r.test)", default: .init(step: r.step, test: r.test)].kitchen = r.status.rawValue
            }
            diff.tests = rows.keys.sorted().map { rows[$0]! }
            domains.append(diff)
        }
        return KitchenDiff(kitchen: name, parent: manifest.from, domains: domains)
    }

    /// Column names from the schema strings a version records (`name TYPE`).
    static func columnNames(_ schema: [String]) -> [String] {
        schema.map { String($0.split(separator: " ", maxSplits: 1).first ?? "") }
    }

    static func compare(
        _ db: Database, table: String, common: [String], grain: [String], into t: inout KitchenDiff.TableDiff,
        sampleSize: Int
    ) throws {
        let q = quoteIdentifier
        let tableName = q(table)
        let columns = common.map(q).joined(separator: ", ")
        guard !common.isEmpty else { return }
        // Rows are told apart by the grain when the table has one, else by all their common columns.
        let keys = grain.isEmpty ? columns : grain.map(q).joined(separator: ", ")
        func onlyIn(_ a: String, not b: String) throws -> Int {
            try Int.fetchOne(
                db,
                sql:
                    "SELECT COUNT(*) FROM (SELECT \(keys) FROM \(a).\(tableName) EXCEPT SELECT \(keys) FROM \(b).\(tableName))"
            ) ?? 0
        }
        t.addedRows = try onlyIn("k", not: "p")
        t.removedRows = try onlyIn("p", not: "k")
        // A few whole rows of each side's extra keys, in key order.
        let keyColumns = grain.isEmpty ? common : grain
        func sampleOnly(_ a: String, not b: String) throws -> [[String: String]] {
            let match = keyColumns.map { "x.\(q($0)) IS y.\(q($0))" }.joined(separator: " AND ")
            let selected = common.map { "x.\(q($0))" }.joined(separator: ", ")
            let order = keyColumns.map { "x.\(q($0))" }.joined(separator: ", ")
            let rows = try Row.fetchAll(
                db,
                sql: "SELECT \(selected) FROM \(a).\(tableName) x "
                    + "WHERE NOT EXISTS (SELECT 1 FROM \(b).\(tableName) y WHERE \(match)) "
                    + "ORDER BY \(order) LIMIT \(sampleSize)")
            return rows.map { row in
                [
                    "key": keyColumns.map { "\($0)=\(row[$0] as DatabaseValue)" }.joined(separator: " "),
                    "row": common.map { "\($0)=\(row[$0] as DatabaseValue)" }.joined(separator: " "),
                ]
            }
        }
        if t.addedRows > 0 { t.addedSample = try sampleOnly("k", not: "p") }
        if t.removedRows > 0 { t.removedSample = try sampleOnly("p", not: "k") }
        guard !grain.isEmpty else { return }
        let join = grain.map { "a.\(q($0)) IS b.\(q($0))" }.joined(separator: " AND ")
        let changedSQL = """
            SELECT \(grain.map { "a.\(q($0))" }.joined(separator: ", ")) FROM
              (SELECT \(columns) FROM k.\(tableName) EXCEPT SELECT \(columns) FROM p.\(tableName)) a
              JOIN p.\(tableName) b ON \(join)
            """
        t.changedRows = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM (\(changedSQL))") ?? 0
        let rows = try Row.fetchAll(db, sql: "\(changedSQL) ORDER BY 1 LIMIT \(sampleSize)")
        let others = common.filter { !grain.contains($0) }
        for row in rows {
            let key = grain.indices.map { "\(grain[$0])=\(row[$0] as DatabaseValue)" }.joined(separator: " ")
            let condition = grain.indices.map { "\(q(grain[$0])) IS ?" }.joined(separator: " AND ")
            let arguments = StatementArguments(grain.indices.map { row[$0] as DatabaseValue })
            let parentRow = try Row.fetchOne(
                db, sql: "SELECT \(columns) FROM p.\(tableName) WHERE \(condition) LIMIT 1", arguments: arguments)
            let kitchenRow = try Row.fetchOne(
                db, sql: "SELECT \(columns) FROM k.\(tableName) WHERE \(condition) LIMIT 1", arguments: arguments)
            var entry = ["key": key]
            let differing = others.filter { parentRow?[$0] as DatabaseValue? != kitchenRow?[$0] as DatabaseValue? }
            entry["parent"] = differing.map { "\($0)=\(parentRow?[$0] as DatabaseValue? ?? .null)" }.joined(
                separator: " ")
            entry["kitchen"] = differing.map { "\($0)=\(kitchenRow?[$0] as DatabaseValue? ?? .null)" }.joined(
                separator: " ")
            t.sample.append(entry)
        }
    }

    /// Rows per partition on each side, for the partitions whose counts differ, in partition order.
    static func partitionCounts(_ db: Database, table: String, column: String) throws -> [KitchenDiff.PartitionCount] {
        let q = quoteIdentifier
        let rows = try Row.fetchAll(
            db,
            sql: """
                SELECT part, SUM(p), SUM(k) FROM (
                    SELECT CAST(\(q(column)) AS TEXT) AS part, COUNT(*) AS p, 0 AS k FROM p.\(q(table)) GROUP BY 1
                    UNION ALL
                    SELECT CAST(\(q(column)) AS TEXT), 0, COUNT(*) FROM k.\(q(table)) GROUP BY 1)
                GROUP BY part HAVING SUM(p) <> SUM(k) ORDER BY part
                """)
        return rows.map {
            KitchenDiff.PartitionCount(partition: $0[0] ?? "NULL", parentRows: $0[1], kitchenRows: $0[2])
        }
    }
}
