import GRDB

/// Rebuilds the touched partitions of a table in place, writing only the rows that differ.
///
/// A partition that had rows is computed into a TEMP copy of the table first; then the published rows that
/// the copy does not hold identically are deleted, and the copy's rows whose key is no longer published are
/// inserted. A restated week of a vendor file changes a few percent of its rows, and every row written passes
/// the digest and capture triggers (docs/benchmarks.md has the measurement). A partition that had no rows (a new week) is inserted directly.
///
/// This applies when the INSERT is one `INSERT INTO <table> SELECT …` statement and the table's primary key
/// includes the partition column (so the copy's keys cannot meet rows of other partitions); otherwise the
/// partitions are deleted and inserted again.
public enum PartitionRewrite {
    /// Deletes and reinserts the partitions listed in `touched` (a TEMP table with a column `p`).
    /// `insert(relation)` is the INSERT with its partition filter over `SELECT p FROM <relation>`.
    public static func apply(
        table: String, create: String, partitionColumn: String, touched: String,
        insert: (_ relation: String) throws -> String, in db: Database
    ) throws {
        let statement = try insert(touched)
        let prefix = "INSERT INTO \(table)"
        let head = statement.drop { $0.isWhitespace }
        let columns = try Row.fetchAll(db, sql: "SELECT name, pk FROM pragma_table_info(?, 'main')", arguments: [table])
        let names: [String] = columns.map { $0["name"] }
        let key: [String] = columns.filter { ($0["pk"] as Int) > 0 }.map { $0["name"] }
        guard head.hasPrefix(prefix), head.dropFirst(prefix.count).first?.isWhitespace == true,
            !head.dropFirst(prefix.count).contains(";"), key.contains(partitionColumn),
            let copyCreate = create.range(of: "CREATE TABLE \(table)"),
            create[copyCreate.upperBound...].first.map({ $0.isWhitespace || $0 == "(" }) == true
        else {
            try db.execute(sql: "DELETE FROM \(table) WHERE \(partitionColumn) IN (SELECT p FROM \(touched))")
            try db.execute(sql: statement)
            return
        }
        let quotedTable = quoteIdentifier(table)
        let part = quoteIdentifier(partitionColumn)
        try db.execute(
            sql: """
                DROP TABLE IF EXISTS temp.mesh_rewrite_kept;
                CREATE TEMP TABLE mesh_rewrite_kept (p PRIMARY KEY);
                INSERT INTO temp.mesh_rewrite_kept
                SELECT t.p FROM \(touched) t WHERE EXISTS (SELECT 1 FROM main.\(quotedTable) f WHERE f.\(part) = t.p);
                DROP TABLE IF EXISTS temp.mesh_rewrite_new;
                CREATE TEMP TABLE mesh_rewrite_new (p PRIMARY KEY);
                INSERT INTO temp.mesh_rewrite_new
                SELECT p FROM \(touched) WHERE p NOT IN (SELECT p FROM temp.mesh_rewrite_kept);
                """)
        // New partitions: nothing to compare with.
        if try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM temp.mesh_rewrite_new)") == true {
            try db.execute(sql: try insert("temp.mesh_rewrite_new"))
        }
        guard try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM temp.mesh_rewrite_kept)") == true else { return }
        let rebuilt = "mesh_rewrite_rows"
        try db.execute(sql: "DROP TABLE IF EXISTS temp.\(rebuilt)")
        try db.execute(sql: create.replacingCharacters(in: copyCreate, with: "CREATE TEMP TABLE \(rebuilt)"))
        // The same INSERT over the kept partitions, into the copy (its prefix was checked above).
        let kept = try insert("temp.mesh_rewrite_kept")
        guard let into = kept.range(of: prefix) else {
            throw MeshError(
                .invalidDefinition, "\(table): its INSERT lost its `\(prefix)` prefix over other partitions")
        }
        try db.execute(sql: kept.replacingCharacters(in: into, with: "INSERT INTO temp.\(rebuilt)"))
        let same = names.map { "n.\(quoteIdentifier($0)) IS \(quotedTable).\(quoteIdentifier($0))" }
            .joined(separator: " AND ")
        let sameKey = key.map { "f.\(quoteIdentifier($0)) IS n.\(quoteIdentifier($0))" }.joined(separator: " AND ")
        try db.execute(
            sql: """
                DELETE FROM main.\(quotedTable) WHERE \(part) IN (SELECT p FROM temp.mesh_rewrite_kept)
                    AND NOT EXISTS (SELECT 1 FROM temp.\(rebuilt) n WHERE \(same));
                INSERT INTO main.\(quotedTable) SELECT * FROM temp.\(rebuilt) n
                WHERE NOT EXISTS (SELECT 1 FROM main.\(quotedTable) f WHERE \(sameKey));
                DROP TABLE temp.\(rebuilt);
                """)
    }
}
