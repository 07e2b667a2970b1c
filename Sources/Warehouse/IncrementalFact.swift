import GRDB
import MeshRuntime

/// A fact table that rebuilds only the partitions (weeks, days, campaigns) its sources touched.
///
/// A partition is rebuilt when the rows of a source that fall into it changed since the previous build
/// (a new batch, a restatement, a removed row), or when a mapping the fact's rows go through changed for a
/// source id that has rows in it (a prescriber re-pointed to another physician by a merge). Each source's
/// partitions carry a signature (row count, sum of line numbers, batch span); the mappings are kept as they
/// were read. Both are retained in `fact_partition_state` and `fact_mapping_state`.
///
/// When the build starts from an empty file (first build, full refresh), every partition is built. When it
/// starts from a copy of the previous version (the fact table and its state are already there), only the
/// touched partitions are deleted and inserted again, so the result equals a full build's.
///
/// ```swift
/// IncrementalFact(
///     table: "fact_daily", partitionColumn: "date_key",
///     create: "CREATE TABLE fact_daily (date_key INTEGER, n INTEGER, PRIMARY KEY (date_key)) WITHOUT ROWID",
///     sources: [.init("raw_orders.orders", partition: "CAST(strftime('%Y%m%d', day) AS INTEGER)")],
///     insert: "INSERT INTO fact_daily SELECT CAST(strftime('%Y%m%d', r.day) AS INTEGER), COUNT(*) FROM raw_orders.orders r WHERE {partitions} GROUP BY 1")
/// ```
struct IncrementalFact: EditableSQL {
    /// A table whose rows land in the fact's partitions.
    struct Source: Sendable {
        var table: String
        /// An SQL expression over the source row giving the fact partition it lands in.
        var partition: String
        /// Rows outside the fact (for example other audiences) are filtered out of the signature too.
        var filter: String
        init(_ table: String, partition: String, filter: String = "1") {
            self.table = table
            self.partition = partition
            self.filter = filter
        }
    }

    /// A lookup the fact's rows go through (source id → key).
    struct Mapping: Sendable {
        var name: String
        /// `SELECT source_id, target` (both columns, any types).
        var sql: String
        /// The source table whose rows use the mapping, and the expression of their source id.
        var table: String
        var key: String
        var partition: String
        /// The input table (`schema.table`, with a `source_id` column) the mapping reads, and the filter of its
        /// rows the mapping uses: when the input logs its changes, an incremental build compares only the ids
        /// of its changed rows instead of reading the whole mapping.
        var logged: (table: String, filter: String)? = nil
    }

    var table: String
    var partitionColumn: String
    var create: String
    var sources: [Source]
    var mappings: [Mapping] = []
    /// The INSERT; `{partitions}` is replaced by `1` on a full build, or by a filter on `temp.touched` over the
    /// partition expression `partitionOf` (default: the first source's) on an incremental one.
    var insert: String
    var partitionOf: String? = nil

    var kind: String { "swift" }
    var definition: String {
        (["incremental fact \(table) v1", create, insert]
            + sources.map { "source \($0.table) \($0.partition) \($0.filter)" }
            + mappings.map {
                "mapping \($0.name) \($0.sql) \($0.table) \($0.key) \($0.partition)"
                    + ($0.logged.map { " logged \($0.table) \($0.filter)" } ?? "")
            })
            .joined(separator: "\n")
    }

    func run(in context: StepContext) async throws -> StepReport {
        let fact = self
        let full = context.rebuildsInFull
        // Sources whose raw domain logged the rows it changed since the version the previous build read.
        // Likewise the inputs of mappings that log their changes (physician-master's cross-walk).
        let changes = Dictionary(
            (sources.map(\.table) + mappings.compactMap(\.logged?.table)).compactMap { table in
                context.changes(of: table).map { (table, $0) }
            }
        ) { first, _ in first }
        return try await context.database.write { db in try fact.build(db, forceFull: full, changes: changes) }
    }

    private func build(_ db: Database, forceFull: Bool, changes: [String: String]) throws -> StepReport {
        // Partition and id columns of the working tables carry no type: a declared type gives them an affinity
        // (ANY is NUMERIC), which turned NDC `00071455010` into 71455010 (no longer equal to the raw text) and
        // kept `col IN (SELECT p FROM temp.touched)` from seeking the fact's key (it scanned the whole table).
        if try String.fetchOne(
            db, sql: "SELECT type FROM pragma_table_info('fact_mapping_state', 'main') WHERE name = 'source_id'")
            == "ANY"
        {
            try db.execute(sql: "DROP TABLE main.fact_mapping_state")  // every mapped id then counts as new, once
        }
        try db.execute(
            sql: """
                CREATE TABLE IF NOT EXISTS fact_partition_state (fact TEXT NOT NULL, source TEXT NOT NULL, partition ANY,
                    signature TEXT NOT NULL, PRIMARY KEY (fact, source, partition));
                CREATE TABLE IF NOT EXISTS fact_mapping_state (fact TEXT NOT NULL, mapping TEXT NOT NULL, source_id,
                    target, PRIMARY KEY (fact, mapping, source_id));
                DROP TABLE IF EXISTS temp.touched;
                CREATE TEMP TABLE touched (p PRIMARY KEY);
                DROP TABLE IF EXISTS temp.signature_now;
                CREATE TEMP TABLE signature_now (source TEXT, partition ANY, signature TEXT, PRIMARY KEY (source, partition));
                DROP TABLE IF EXISTS temp.mapping_now;
                CREATE TEMP TABLE mapping_now (mapping TEXT, source_id, target, PRIMARY KEY (mapping, source_id));
                """)
        let exists = try db.tableExists(table, in: "main")
        let incremental = !forceFull && exists
        // On an incremental build, a source with a change log names its touched partitions itself: the
        // partitions of its changed rows, old and new. The others compare signatures of every partition.
        let logged = incremental ? sources.filter { changes[$0.table] != nil } : []
        let loggedTables = Set(logged.map(\.table))
        for source in sources where !loggedTables.contains(source.table) {
            try db.execute(
                sql: """
                    INSERT INTO temp.signature_now
                    SELECT ?, \(source.partition) AS p,
                           COUNT(*) || ':' || TOTAL(line) || ':' || MIN(batch) || ':' || MAX(batch) || ':' || COUNT(DISTINCT batch)
                    FROM \(source.table) WHERE \(source.filter) GROUP BY p
                    """, arguments: [source.table])
        }
        // A logged mapping on an incremental build reads only the ids its input's changed rows name.
        let narrowed = Set(
            incremental ? mappings.filter { $0.logged.map { changes[$0.table] != nil } ?? false }.map(\.name) : [])
        for mapping in mappings {
            if narrowed.contains(mapping.name), let logged = mapping.logged {
                try db.execute(
                    sql: """
                        DROP TABLE IF EXISTS temp.mapping_candidates;
                        CREATE TEMP TABLE mapping_candidates (source_id PRIMARY KEY);
                        INSERT OR IGNORE INTO temp.mapping_candidates
                        SELECT source_id FROM \(changes[logged.table]!) WHERE \(logged.filter);
                        INSERT INTO temp.mapping_now SELECT ?, m.* FROM (\(mapping.sql)) m
                        WHERE m.source_id IN (SELECT source_id FROM temp.mapping_candidates);
                        """, arguments: [mapping.name])
            } else {
                try db.execute(
                    sql: "INSERT INTO temp.mapping_now SELECT ?, m.* FROM (\(mapping.sql)) m", arguments: [mapping.name]
                )
            }
        }
        let before = db.totalChangesCount
        if incremental {
            for source in logged {
                try db.execute(
                    sql: """
                        INSERT OR IGNORE INTO temp.touched
                        SELECT DISTINCT \(source.partition) FROM \(changes[source.table]!) WHERE \(source.filter)
                        """)
            }
            try db.execute(
                sql: """
                    INSERT OR IGNORE INTO temp.touched
                    SELECT partition FROM (
                        SELECT source, partition, signature FROM temp.signature_now
                        EXCEPT SELECT source, partition, signature FROM fact_partition_state
                               WHERE fact = ?1 AND source NOT IN (SELECT value FROM json_each(?2)))
                    UNION
                    SELECT partition FROM (
                        SELECT source, partition, signature FROM fact_partition_state
                        WHERE fact = ?1 AND source NOT IN (SELECT value FROM json_each(?2))
                        EXCEPT SELECT source, partition, signature FROM temp.signature_now)
                    """, arguments: [table, Self.jsonArray(loggedTables.sorted())])
            for mapping in mappings {
                // Source ids whose target changed, appeared or vanished: their rows move between keys.
                try db.execute(
                    sql: """
                        DROP TABLE IF EXISTS temp.changed_ids;
                        CREATE TEMP TABLE changed_ids (source_id PRIMARY KEY);
                        """)
                // Key lookups on both sides (each is keyed on the source id), not two sorted EXCEPTs.
                // A narrowed mapping compares only its candidates: every other id is unchanged.
                let scope =
                    narrowed.contains(mapping.name)
                    ? " AND s.source_id IN (SELECT source_id FROM temp.mapping_candidates)" : ""
                try db.execute(
                    sql: """
                        INSERT OR IGNORE INTO temp.changed_ids
                        SELECT s.source_id FROM fact_mapping_state s
                        WHERE s.fact = ?1 AND s.mapping = ?2\(scope) AND NOT EXISTS (
                            SELECT 1 FROM temp.mapping_now n
                            WHERE n.mapping = ?2 AND n.source_id IS s.source_id AND n.target IS s.target)
                        UNION ALL
                        SELECT n.source_id FROM temp.mapping_now n
                        WHERE n.mapping = ?2 AND NOT EXISTS (
                            SELECT 1 FROM fact_mapping_state s
                            WHERE s.fact = ?1 AND s.mapping = ?2 AND s.source_id IS n.source_id AND s.target IS n.target)
                        """, arguments: [table, mapping.name])
                guard try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM temp.changed_ids") ?? 0 > 0 else { continue }
                // The kept mapping changes by the same ids only.
                try db.execute(
                    sql: """
                        DELETE FROM fact_mapping_state
                        WHERE fact = ?1 AND mapping = ?2 AND source_id IN (SELECT source_id FROM temp.changed_ids)
                        """, arguments: [table, mapping.name])
                try db.execute(
                    sql: """
                        INSERT INTO fact_mapping_state SELECT ?1, mapping, source_id, target FROM temp.mapping_now
                        WHERE mapping = ?2 AND source_id IN (SELECT source_id FROM temp.changed_ids)
                        """, arguments: [table, mapping.name])
                try db.execute(
                    sql: """
                        INSERT OR IGNORE INTO temp.touched
                        SELECT DISTINCT \(mapping.partition) FROM \(mapping.table)
                        WHERE \(mapping.key) IN (SELECT source_id FROM temp.changed_ids)
                        """)
            }
            let partition = partitionOf ?? sources[0].partition
            try PartitionRewrite.apply(
                table: table, create: create, partitionColumn: partitionColumn, touched: "temp.touched",
                insert: {
                    insert.replacingOccurrences(of: "{partitions}", with: "(\(partition)) IN (SELECT p FROM \($0))")
                },
                in: db)
        } else {
            if exists { try db.execute(sql: "DROP TABLE \(table)") }
            try db.execute(sql: create)
            try db.execute(sql: insert.replacingOccurrences(of: "{partitions}", with: "1"))
        }
        let rowsChanged = db.totalChangesCount - before
        // Signatures of the sources compared in full are replaced. A logged source's signatures are kept but
        // for its touched partitions, which are forgotten: were a later build to compare signatures again
        // (its log no longer reaching back), those partitions would be rebuilt, the others found unchanged.
        let compared = Self.jsonArray(sources.map(\.table).filter { !loggedTables.contains($0) })
        let loggedList = Self.jsonArray(loggedTables.sorted())
        for (statement, arguments) in [
            (
                "DELETE FROM fact_partition_state WHERE fact = ? AND source IN (SELECT value FROM json_each(?))",
                [table, compared]
            ),
            (
                "INSERT INTO fact_partition_state SELECT ?, source, partition, signature FROM temp.signature_now",
                [table]
            ),
            (
                """
                DELETE FROM fact_partition_state WHERE fact = ? AND source IN (SELECT value FROM json_each(?))
                    AND partition IN (SELECT p FROM temp.touched)
                """, [table, loggedList]
            ),
        ]
            + (incremental
                ? []  // brought up to date mapping by mapping above
                : [
                    ("DELETE FROM fact_mapping_state WHERE fact = ?", [table]),
                    (
                        "INSERT INTO fact_mapping_state SELECT ?, mapping, source_id, target FROM temp.mapping_now",
                        [table]
                    ),
                ])
        {
            try db.execute(sql: statement, arguments: StatementArguments(arguments))
        }
        // Later steps of the build (derived tables) rebuild the partitions this fact touched.
        try DerivedTable.record(table, incremental: incremental, touched: "SELECT p FROM temp.touched", in: db)
        let touched = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM temp.touched") ?? 0
        return StepReport(
            rowsOut: rowsChanged,
            message: incremental
                ? "\(table): \(touched) partition(s) rebuilt on the previous version"
                    + (logged.isEmpty
                        ? "" : " (changes of \(loggedTables.sorted().joined(separator: ", ")) read from their log)")
                    + (narrowed.isEmpty
                        ? ""
                        : "; mapping \(narrowed.sorted().joined(separator: ", ")) compared for the ids its input's log names")
                : "\(table): full build")
    }

    static func jsonArray(_ values: [String]) -> String {
        "["
            + values.map {
                "\"\($0.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\""))\""
            }
            .joined(separator: ",") + "]"
    }
}

/// A table derived from incremental facts of the same build (a share, a reconciliation): it rebuilds the
/// partitions its facts rebuilt, or everything when a fact was built in full or a `fullWhen` query finds a
/// reason (a changed alignment, say).
struct DerivedTable: EditableSQL {
    var table: String
    var partitionColumn: String
    var create: String
    var facts: [String]
    /// SQL over a fact partition `p` giving this table's partition.
    var partitionOfFact = "p"
    /// Statements run before `fullWhen` on incremental builds (say, a TEMP table both of its queries read).
    var prepare: [String] = []
    /// Queries returning a row when the whole table must be rebuilt (run only on incremental builds).
    var fullWhen: [String] = []
    /// The input tables `prepare` and `fullWhen` read, each with the filter of the rows they use. When every one
    /// is unchanged since the previous build read it (the same digest, or a change log without such a row) and
    /// the definition is the same, those queries are skipped: their answer was no on the previous build.
    var fullWhenReads: [(table: String, filter: String)] = []
    /// Queries returning more partitions to rebuild (for example the weeks of a physician who moved territory).
    var alsoTouched: [String] = []
    /// Optional query of the partitions that can have rows at all; touched partitions outside it are skipped.
    var possible: String? = nil
    /// The INSERT; `{partitions}` becomes `1`, or `(partitionOf) IN (SELECT p FROM temp.derived_touched)`.
    var insert: String
    var partitionOf: String

    var kind: String { "swift" }
    var definition: String {
        (["derived table \(table) v1", create, insert, partitionOf, partitionOfFact, possible ?? ""] + facts + prepare
            + fullWhen + alsoTouched + fullWhenReads.map { "\($0.table) \($0.filter)" })
            .joined(separator: "\n")
    }

    func run(in context: StepContext) async throws -> StepReport {
        let step = self
        let forceFull = context.rebuildsInFull
        // Each input fullWhen reads: known unchanged, or the relation of its logged changes (nil: unknown).
        let reads: [(filter: String, unchanged: Bool, changes: String?)]? =
            context.definitionUnchanged && !fullWhenReads.isEmpty
            ? fullWhenReads.map { ($0.filter, context.inputTableUnchanged($0.table), context.changes(of: $0.table)) }
            : nil
        return try await context.database.write { db in
            var unchanged = false
            if let reads {
                unchanged = try reads.allSatisfy { read in
                    if read.unchanged { return true }
                    guard let changes = read.changes else { return false }
                    return try Bool.fetchOne(
                        db, sql: "SELECT NOT EXISTS (SELECT 1 FROM \(changes) WHERE \(read.filter))") ?? false
                }
            }
            return try step.build(db, forceFull: forceFull, readsUnchanged: unchanged)
        }
    }

    private func build(_ db: Database, forceFull: Bool, readsUnchanged: Bool) throws -> StepReport {
        var incremental = try !forceFull && db.tableExists(table, in: "main")
        if incremental {
            let modes = try Row.fetchAll(
                db,
                sql:
                    "SELECT fact, incremental FROM temp.fact_mode WHERE fact IN (\(facts.map { "'\($0)'" }.joined(separator: ", ")))"
            )
            incremental = modes.count == facts.count && modes.allSatisfy { ($0["incremental"] as Int) == 1 }
        }
        if incremental && !readsUnchanged {
            for statement in prepare { try db.execute(sql: statement) }
            for query in fullWhen where try Row.fetchOne(db, sql: query) != nil {
                incremental = false
                break
            }
        }
        let before = db.totalChangesCount
        if incremental {
            try db.execute(
                sql: """
                    DROP TABLE IF EXISTS temp.derived_touched;
                    CREATE TEMP TABLE derived_touched (p PRIMARY KEY);
                    INSERT OR IGNORE INTO temp.derived_touched
                    SELECT \(partitionOfFact) FROM temp.fact_touched
                    WHERE fact IN (\(facts.map { "'\($0)'" }.joined(separator: ", ")));
                    """)
            for query in alsoTouched {
                try db.execute(sql: "INSERT OR IGNORE INTO temp.derived_touched \(query)")
            }
            if let possible {
                try db.execute(sql: "DELETE FROM temp.derived_touched WHERE p NOT IN (\(possible))")
            }
            let touched = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM temp.derived_touched") ?? 0
            if touched > 0 {
                try PartitionRewrite.apply(
                    table: table, create: create, partitionColumn: partitionColumn, touched: "temp.derived_touched",
                    insert: { Self.filter(insert, partitionOf: partitionOf, full: false, touched: $0) }, in: db)
            }
            try Self.record(table, incremental: true, touched: "SELECT p FROM temp.derived_touched", in: db)
            return StepReport(
                rowsOut: db.totalChangesCount - before,
                message: "\(table): \(touched) partition(s) rebuilt on the previous version"
                    + (readsUnchanged
                        ? "; \(fullWhenReads.map(\.table).joined(separator: " and ")) unchanged for it since then" : "")
            )
        }
        try db.execute(sql: "DROP TABLE IF EXISTS main.\(table)")
        try db.execute(sql: create)
        try db.execute(sql: Self.filter(insert, partitionOf: partitionOf, full: true))
        try Self.record(table, incremental: false, touched: nil, in: db)
        return StepReport(rowsOut: db.totalChangesCount - before, message: "\(table): full build")
    }

    /// Records what a table's step did in this build, as facts do, for the steps after it.
    static func record(_ table: String, incremental: Bool, touched: String?, in db: Database) throws {
        try db.execute(
            sql: """
                CREATE TEMP TABLE IF NOT EXISTS fact_touched (fact TEXT NOT NULL, p, PRIMARY KEY (fact, p));
                CREATE TEMP TABLE IF NOT EXISTS fact_mode (fact TEXT PRIMARY KEY, incremental INTEGER NOT NULL);
                """)
        try db.execute(sql: "DELETE FROM temp.fact_touched WHERE fact = ?", arguments: [table])
        if let touched {
            try db.execute(sql: "INSERT INTO temp.fact_touched SELECT ?, p FROM (\(touched))", arguments: [table])
        }
        try db.execute(
            sql: "INSERT OR REPLACE INTO temp.fact_mode VALUES (?, ?)", arguments: [table, incremental ? 1 : 0])
    }

    /// Replaces `{partitions}` (over `partitionOf`) and `{partitions:EXPR}` (over EXPR) with `1` on a full build,
    /// or with a filter on the touched partitions (`SELECT p FROM touched`).
    static func filter(
        _ sql: String, partitionOf: String, full: Bool, touched: String = "temp.derived_touched"
    ) -> String {
        var result = ""
        var rest = Substring(sql)
        while let open = rest.range(of: "{partitions") {
            result += rest[..<open.lowerBound]
            let tail = rest[open.upperBound...]
            guard let close = tail.firstIndex(of: "}") else { break }
            let spec = tail[..<close]
            let expression = spec.hasPrefix(":") ? String(spec.dropFirst()) : partitionOf
            result += full ? "1" : "(\(expression)) IN (SELECT p FROM \(touched))"
            rest = tail[tail.index(after: close)...]
        }
        return result + rest
    }
}

/// SQL over tables of the same build that reruns only when what it reads changed (a summary over a derived
/// table): when every table it `reads` was built incrementally and rebuilt no partition, and the table it
/// `writesInto` was not rebuilt in full (which would have dropped its rows), the published rows are already
/// right.
struct DerivedSummary: EditableSQL {
    var name: String
    var reads: [String]
    var writesInto: String
    var sql: String

    var kind: String { "swift" }
    var definition: String { (["derived summary \(name)", sql, writesInto] + reads).joined(separator: "\n") }

    func run(in context: StepContext) async throws -> StepReport {
        let step = self
        return try await context.database.write { db in
            let list = (step.reads + [step.writesInto]).map(quoteLiteral).joined(separator: ", ")
            let reads = step.reads.map(quoteLiteral).joined(separator: ", ")
            let incremental = try Int.fetchOne(
                db, sql: "SELECT COUNT(*) FROM temp.fact_mode WHERE fact IN (\(list)) AND incremental = 1")
            let touched = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM temp.fact_touched WHERE fact IN (\(reads))")
            let unchanged = !context.rebuildsInFull && incremental == step.reads.count + 1 && touched == 0
            guard !unchanged else { return StepReport(message: "nothing it reads changed") }
            let before = db.totalChangesCount
            try db.execute(sql: step.sql)
            return StepReport(rowsOut: db.totalChangesCount - before)
        }
    }
}

/// Rebuilds the touched partitions of a table in place, writing only the rows that differ.
///
/// A partition that had rows is computed into a TEMP copy of the table first; then the published rows that
/// the copy does not hold identically are deleted, and the copy's rows whose key is no longer published are
/// inserted. A restated Xponent week changes a few percent of its rows, and every row written passes the
/// digest and capture triggers: deleting and inserting the five touched weeks of `fact_rx_weekly` wrote
/// 208k rows for 32k that differ. A partition that had no rows (a new week) is inserted directly.
///
/// This applies when the INSERT is one `INSERT INTO <table> SELECT …` statement and the table's primary key
/// includes the partition column (so the copy's keys cannot meet rows of other partitions); otherwise the
/// partitions are deleted and inserted again.
enum PartitionRewrite {
    /// Deletes and reinserts the partitions listed in `touched` (a TEMP table with a column `p`).
    /// `insert(relation)` is the INSERT with its partition filter over `SELECT p FROM <relation>`.
    static func apply(
        table: String, create: String, partitionColumn: String, touched: String,
        insert: (_ relation: String) -> String, in db: Database
    ) throws {
        let statement = insert(touched)
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
            try db.execute(sql: insert("temp.mesh_rewrite_new"))
        }
        guard try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM temp.mesh_rewrite_kept)") == true else { return }
        let rebuilt = "mesh_rewrite_rows"
        try db.execute(sql: "DROP TABLE IF EXISTS temp.\(rebuilt)")
        try db.execute(sql: create.replacingCharacters(in: copyCreate, with: "CREATE TEMP TABLE \(rebuilt)"))
        // The same INSERT over the kept partitions, into the copy (its prefix was checked above).
        let kept = insert("temp.mesh_rewrite_kept")
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

// A kitchen changes the SELECT of an incremental step; its partitions, sources and lookups stay as declared.
// `{partitions}` in the SQL is where the step puts its partition filter (`1` on a full build).
extension IncrementalFact {
    var editableSQL: String { insert }
    func replacingSQL(_ sql: String) -> IncrementalFact {
        var step = self
        step.insert = sql
        return step
    }
}

extension DerivedTable {
    var editableSQL: String { insert }
    func replacingSQL(_ sql: String) -> DerivedTable {
        var step = self
        step.insert = sql
        return step
    }
}

extension DerivedSummary {
    var editableSQL: String { sql }
    func replacingSQL(_ sql: String) -> DerivedSummary {
        var step = self
        step.sql = sql
        return step
    }
}

extension StepContext {
    /// Whether an incremental step must build everything: a full refresh, or a definition (SQL, parameters)
    /// other than the one the previous version was built with, whose rows the step would otherwise keep.
    var rebuildsInFull: Bool { fullRefresh || (startedFromPrevious && !previousDefinitionUnchanged) }
}
