import GRDB

/// A fact table that rebuilds only the partitions (weeks, days, campaigns) its sources touched.
///
/// A fact is declared, not scripted: its table (the CREATE, whose primary key is its grain and starts with
/// the partition column), the source rows it is built from with the partition they land in, the lookups
/// they go through, the indexes of its inputs it needs, and one SELECT. The runtime does the rest.
///
/// A partition is rebuilt when the rows of a source that fall into it changed since the previous build
/// (a new batch, a restatement, a removed row), or when a lookup the fact's rows go through changed for a
/// source id that has rows in it (an id re-pointed to another key by a merge). Each source's partitions
/// carry a signature (row count, sum of line numbers, batch span); the lookups are kept as they were read.
/// Both are retained in `fact_partition_state` and `fact_mapping_state` (list them in the domain's
/// `retainedTables`).
///
/// When the build starts from an empty file (first build, full refresh), every partition is built. When it
/// starts from a copy of the previous version (the fact table and its state are already there), only the
/// touched partitions are rebuilt, so the result equals a full build's. The steps after it learn which
/// through `StepContext.touchedPartitions(of:)`.
///
/// The SELECT (an `INSERT INTO table SELECT …`) may write `{partition}` for the source's partition expression
/// under its alias, `{lookup:NAME}` for a lookup's JOIN, and must write `{partitions}` where the partition
/// filter goes (`1` on a full build):
///
/// ```swift
/// IncrementalFact(
///     table: "fact_orders_daily", partitionColumn: "day",
///     create: """
///         CREATE TABLE fact_orders_daily (day TEXT NOT NULL, account INTEGER NOT NULL, orders INTEGER NOT NULL,
///             PRIMARY KEY (day, account)) WITHOUT ROWID
///         """,
///     source: .init("raw_orders.orders", alias: "o", partition: .day(of: "ordered_at")),
///     lookups: [
///         Lookup("customer", table: "crm.account_xref", alias: "a", key: "source_id", value: "account_id",
///                input: "customer_id")
///     ],
///     indexes: [InputIndex("raw_orders.orders", .day(of: "ordered_at"))],
///     insert: """
///         INSERT INTO fact_orders_daily
///         SELECT {partition}, COALESCE(a.account_id, 0), COUNT(*) FROM raw_orders.orders o {lookup:customer}
///         WHERE {partitions} GROUP BY 1, 2
///         """)
/// ```
public struct IncrementalFact: EditableSQL, DeclaresInputIndexes {
    /// A table whose rows land in the fact's partitions.
    public struct Source: Sendable {
        /// The input table, `schema.table`.
        public var table: String
        /// The alias the SELECT reads it under (nil: none).
        public var alias: String?
        public var partition: Partition
        /// The rows of the table the fact uses (other audiences, say, are left out of its signature too),
        /// over its bare columns.
        public var filter: String
        public init(_ table: String, alias: String? = nil, partition: Partition, filter: String = "1") {
            self.table = table
            self.alias = alias
            self.partition = partition
            self.filter = filter
        }
    }

    public var table: String
    public var partitionColumn: String
    public var create: String
    /// The first source is the one the SELECT reads, its lookups go through and its partition filter is over.
    public var sources: [Source]
    public var lookups: [Lookup]
    public var inputIndexes: [InputIndex]
    /// The SELECT, as an `INSERT INTO table SELECT …` with its placeholders.
    public var insert: String

    public init(
        table: String, partitionColumn: String, create: String, source: Source, lookups: [Lookup] = [],
        indexes: [InputIndex] = [], insert: String
    ) {
        self.table = table
        self.partitionColumn = partitionColumn
        self.create = create
        self.sources = [source]
        self.lookups = lookups
        self.inputIndexes = indexes
        self.insert = insert
    }

    public var kind: String { "swift" }
    public var definition: String {
        (["incremental fact \(table) v2", create, insert]
            + sources.map { "source \($0.table) \($0.alias ?? "") \($0.partition.expression.template) \($0.filter)" }
            + lookups.map {
                "lookup \($0.name) \($0.mappingSQL) \($0.joinSQL(sourceAlias: nil)) \($0.logged ? "logged" : "")"
            })
            .joined(separator: "\n")
    }

    /// The SELECT with its lookups' joins in place, and its partition filter over the partitions in
    /// `touched` (a relation with a column `p`), or `1` when `touched` is nil (a full build).
    public func renderedInsert(touched: String?) throws -> String {
        let source = sources[0]
        let sql = joiningLookups(insert)
        if let unknown = sql.range(of: "{lookup:") {
            let name = sql[unknown.upperBound...].prefix { $0 != "}" }
            throw MeshError(
                .invalidDefinition,
                "\(table): its SELECT joins {lookup:\(name)}, which the fact does not declare; declare it in lookups")
        }
        let filter = touched.map { "(\(source.partition.sql(qualifiedBy: source.alias))) IN (SELECT p FROM \($0))" }
        return sql.replacingOccurrences(of: "{partitions}", with: filter ?? "1")
    }

    public func run(in context: StepContext) async throws -> StepReport {
        let fact = self
        let full = context.rebuildsInFull
        // Sources whose producer logged the rows it changed since the version the previous build read.
        // Likewise the tables of lookups that log their changes.
        let changes = Dictionary(
            (sources.map(\.table) + lookups.filter(\.logged).map(\.table)).compactMap { table in
                context.changes(of: table).map { (table, $0) }
            }
        ) { first, _ in first }
        return try await context.database.write { db in
            var build = FactBuild(fact: fact, changes: changes)
            let report = try build.run(db, forceFull: full)
            context.recordTouchedPartitions(build.touched, of: fact.table)
            return report
        }
    }
}

extension IncrementalFact {
    /// The SQL with `{partition}` and the declared lookups' joins in place.
    func joiningLookups(_ sql: String) -> String {
        let source = sources[0]
        var sql = sql.replacingOccurrences(of: "{partition}", with: source.partition.sql(qualifiedBy: source.alias))
        for lookup in lookups {
            sql = sql.replacingOccurrences(
                of: "{lookup:\(lookup.name)}", with: lookup.joinSQL(sourceAlias: source.alias))
        }
        return sql
    }
}

// The tables a fact reads are those its SELECT names once its lookups are joined (the lookups' tables).
extension IncrementalFact: DeclaresReads {
    public var writes: [String] { [table] }
    public func reads(writing table: String) -> [String] {
        table == self.table ? Mesh.references(ofSQL: joiningLookups(insert), writing: table) : []
    }
}

// A kitchen changes the SELECT of an incremental step; its partitions, sources and lookups stay as declared.
// `{partitions}` in the SQL is where the step puts its partition filter (`1` on a full build).
extension IncrementalFact {
    public var editableSQL: String { insert }
    public func replacingSQL(_ sql: String) -> IncrementalFact {
        var step = self
        step.insert = sql
        return step
    }
}

extension IncrementalFact {
    static func jsonArray(_ values: [String]) -> String {
        "["
            + values.map {
                "\"\($0.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\""))\""
            }
            .joined(separator: ",") + "]"
    }
}
