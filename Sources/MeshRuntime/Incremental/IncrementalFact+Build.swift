import GRDB

/// One build of an incremental fact: finds the touched partitions, rebuilds them, keeps the state.
///
/// The working tables are TEMP tables of the build's connection: `touched` (the partitions to rebuild),
/// `signature_now` (each compared source's partition signatures) and `mapping_now` (each lookup's rows).
struct FactBuild {
    let fact: IncrementalFact
    /// Input table → the relation of its logged changes since the previous build read it.
    let changes: [String: String]
    /// Sources whose changes are read from their log (incremental builds only).
    private(set) var logged: [IncrementalFact.Source] = []
    /// Lookups compared only for the ids their table's log names (incremental builds only).
    private(set) var narrowed: Set<String> = []
    private(set) var touched: TouchedPartitions = .all

    init(fact: IncrementalFact, changes: [String: String]) {
        self.fact = fact
        self.changes = changes
    }

    var table: String { fact.table }
    var loggedTables: Set<String> { Set(logged.map(\.table)) }

    mutating func run(_ db: Database, forceFull: Bool) throws -> StepReport {
        let fact = self.fact
        try Self.createState(in: db)
        let exists = try db.tableExists(table, in: "main")
        let incremental = !forceFull && exists
        // On an incremental build, a source with a change log names its touched partitions itself: the
        // partitions of its changed rows, old and new. The others compare signatures of every partition.
        logged = incremental ? fact.sources.filter { changes[$0.table] != nil } : []
        narrowed = Set(incremental ? fact.lookups.filter { $0.logged && changes[$0.table] != nil }.map(\.name) : [])
        try computeSignatures(db)
        try readLookups(db)
        let before = db.totalChangesCount
        if incremental {
            try touchFromLogs(db)
            try touchFromSignatures(db)
            for lookup in fact.lookups { try touchFromLookup(lookup, db) }
            try PartitionRewrite.apply(
                table: table, create: fact.create, partitionColumn: fact.partitionColumn, touched: "temp.touched",
                insert: { try fact.renderedInsert(touched: $0) }, in: db)
        } else {
            if exists { try db.execute(sql: "DROP TABLE \(table)") }
            try db.execute(sql: fact.create)
            try db.execute(sql: fact.renderedInsert(touched: nil))
        }
        let rowsChanged = db.totalChangesCount - before
        try saveState(db, incremental: incremental)
        touched = .all
        if incremental { touched = try TouchedPartitions.reading("temp.touched", in: db) }
        let text = try message(db, incremental: incremental)
        return StepReport(rowsOut: rowsChanged, message: text)
    }

    /// The state tables (retained across versions) and this build's working tables.
    static func createState(in db: Database) throws {
        // Partition and id columns of the working tables carry no type: a declared type gives them an affinity
        // (ANY is NUMERIC), which turned an id like `00071455010` into 71455010 (no longer equal to the raw text)
        // and kept `col IN (SELECT p FROM temp.touched)` from seeking the fact's key (it scanned the whole table).
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
    }

    /// The partition signatures of every source not read from its log.
    func computeSignatures(_ db: Database) throws {
        for source in fact.sources where !loggedTables.contains(source.table) {
            try db.execute(
                sql: """
                    INSERT INTO temp.signature_now
                    SELECT ?, \(source.partition.sql) AS p,
                           COUNT(*) || ':' || TOTAL(line) || ':' || MIN(batch) || ':' || MAX(batch) || ':' || COUNT(DISTINCT batch)
                    FROM \(source.table) WHERE \(source.filter) GROUP BY p
                    """, arguments: [source.table])
        }
    }

    /// Every lookup's rows now; a narrowed lookup reads only the ids its table's changed rows name.
    func readLookups(_ db: Database) throws {
        for lookup in fact.lookups {
            if narrowed.contains(lookup.name), let log = changes[lookup.table] {
                try db.execute(
                    sql: """
                        DROP TABLE IF EXISTS temp.mapping_candidates;
                        CREATE TEMP TABLE mapping_candidates (source_id PRIMARY KEY);
                        INSERT OR IGNORE INTO temp.mapping_candidates
                        SELECT \(lookup.key) FROM \(log) WHERE \(lookup.rowFilter);
                        INSERT INTO temp.mapping_now SELECT ?, m.* FROM (\(lookup.mappingSQL)) m
                        WHERE m.\(lookup.key) IN (SELECT source_id FROM temp.mapping_candidates);
                        """, arguments: [lookup.name])
            } else {
                try db.execute(
                    sql: "INSERT INTO temp.mapping_now SELECT ?, m.* FROM (\(lookup.mappingSQL)) m",
                    arguments: [lookup.name])
            }
        }
    }

    /// The partitions of the logged sources' changed rows, old and new.
    func touchFromLogs(_ db: Database) throws {
        for source in logged {
            try db.execute(
                sql: """
                    INSERT OR IGNORE INTO temp.touched
                    SELECT DISTINCT \(source.partition.sql) FROM \(changes[source.table]!) WHERE \(source.filter)
                    """)
        }
    }

    /// The partitions whose signature differs from the previous build's, in either direction.
    func touchFromSignatures(_ db: Database) throws {
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
                """, arguments: [table, IncrementalFact.jsonArray(loggedTables.sorted())])
    }

    /// The partitions of source ids whose target changed, appeared or vanished: their rows move between keys.
    /// The kept lookup state changes by the same ids only.
    func touchFromLookup(_ lookup: Lookup, _ db: Database) throws {
        try db.execute(
            sql: """
                DROP TABLE IF EXISTS temp.changed_ids;
                CREATE TEMP TABLE changed_ids (source_id PRIMARY KEY);
                """)
        // Key lookups on both sides (each is keyed on the source id), not two sorted EXCEPTs.
        // A narrowed lookup compares only its candidates: every other id is unchanged.
        let scope =
            narrowed.contains(lookup.name) ? " AND s.source_id IN (SELECT source_id FROM temp.mapping_candidates)" : ""
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
                """, arguments: [table, lookup.name])
        guard try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM temp.changed_ids") ?? 0 > 0 else { return }
        try db.execute(
            sql: """
                DELETE FROM fact_mapping_state
                WHERE fact = ?1 AND mapping = ?2 AND source_id IN (SELECT source_id FROM temp.changed_ids)
                """, arguments: [table, lookup.name])
        try db.execute(
            sql: """
                INSERT INTO fact_mapping_state SELECT ?1, mapping, source_id, target FROM temp.mapping_now
                WHERE mapping = ?2 AND source_id IN (SELECT source_id FROM temp.changed_ids)
                """, arguments: [table, lookup.name])
        let source = fact.sources[0]
        try db.execute(
            sql: """
                INSERT OR IGNORE INTO temp.touched
                SELECT DISTINCT \(source.partition.sql) FROM \(source.table)
                WHERE \(lookup.input.sql) IN (SELECT source_id FROM temp.changed_ids)
                """)
    }

    /// Signatures of the sources compared in full are replaced. A logged source's signatures are kept but for
    /// its touched partitions, which are forgotten: were a later build to compare signatures again (its log no
    /// longer reaching back), those partitions would be rebuilt, the others found unchanged.
    func saveState(_ db: Database, incremental: Bool) throws {
        let compared = IncrementalFact.jsonArray(fact.sources.map(\.table).filter { !loggedTables.contains($0) })
        let loggedList = IncrementalFact.jsonArray(loggedTables.sorted())
        try db.execute(
            sql: "DELETE FROM fact_partition_state WHERE fact = ? AND source IN (SELECT value FROM json_each(?))",
            arguments: [table, compared])
        try db.execute(
            sql: "INSERT INTO fact_partition_state SELECT ?, source, partition, signature FROM temp.signature_now",
            arguments: [table])
        try db.execute(
            sql: """
                DELETE FROM fact_partition_state WHERE fact = ? AND source IN (SELECT value FROM json_each(?))
                    AND partition IN (SELECT p FROM temp.touched)
                """, arguments: [table, loggedList])
        // An incremental build brought the lookups' state up to date lookup by lookup.
        guard !incremental else { return }
        try db.execute(sql: "DELETE FROM fact_mapping_state WHERE fact = ?", arguments: [table])
        try db.execute(
            sql: "INSERT INTO fact_mapping_state SELECT ?, mapping, source_id, target FROM temp.mapping_now",
            arguments: [table])
    }

    func message(_ db: Database, incremental: Bool) throws -> String {
        guard incremental else { return "\(table): full build" }
        let count = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM temp.touched") ?? 0
        return "\(table): \(count) partition(s) rebuilt on the previous version"
            + (logged.isEmpty
                ? "" : " (changes of \(loggedTables.sorted().joined(separator: ", ")) read from their log)")
            + (narrowed.isEmpty
                ? ""
                : "; mapping \(narrowed.sorted().joined(separator: ", ")) compared for the ids its input's log names")
    }
}
