import GRDB

/// A table derived from incremental facts of the same build (a share, a reconciliation): it rebuilds the
/// partitions its facts rebuilt (`StepContext.touchedPartitions(of:)`), or everything when a fact was built in
/// full or a `fullWhen` query finds a reason (a changed alignment, say).
///
/// ```swift
/// DerivedTable(
///     table: "mart_orders_monthly", partitionColumn: "month",
///     create: "CREATE TABLE mart_orders_monthly (month TEXT NOT NULL, orders INTEGER NOT NULL, PRIMARY KEY (month))",
///     facts: ["fact_orders_daily"], partitionOfFact: "substr(p, 1, 7)",
///     insert: """
///         INSERT INTO mart_orders_monthly SELECT substr(day, 1, 7), SUM(orders) FROM fact_orders_daily
///         WHERE {partitions} GROUP BY 1
///         """, partitionOf: "substr(day, 1, 7)")
/// ```
public struct DerivedTable: EditableSQL {
    public var table: String
    public var partitionColumn: String
    public var create: String
    public var facts: [String]
    /// SQL over a fact partition `p` giving this table's partition.
    public var partitionOfFact: String
    /// Statements run before `fullWhen` on incremental builds (say, a TEMP table both of its queries read).
    public var prepare: [String]
    /// Queries returning a row when the whole table must be rebuilt (run only on incremental builds).
    public var fullWhen: [String]
    /// The input tables `prepare` and `fullWhen` read, each with the filter of the rows they use. When every one
    /// is unchanged since the previous build read it (the same digest, or a change log without such a row) and
    /// the definition is the same, those queries are skipped: their answer was no on the previous build.
    public var fullWhenReads: [(table: String, filter: String)]
    /// Queries returning more partitions to rebuild (for example the weeks of a key that moved group).
    public var alsoTouched: [String]
    /// Optional query of the partitions that can have rows at all; touched partitions outside it are skipped.
    public var possible: String?
    /// The INSERT; `{partitions}` becomes `1`, or `(partitionOf) IN (SELECT p FROM temp.derived_touched)`, and
    /// `{partitions:EXPR}` the same over EXPR.
    public var insert: String
    public var partitionOf: String

    public init(
        table: String, partitionColumn: String, create: String, facts: [String], partitionOfFact: String = "p",
        prepare: [String] = [], fullWhen: [String] = [], fullWhenReads: [(table: String, filter: String)] = [],
        alsoTouched: [String] = [], possible: String? = nil, insert: String, partitionOf: String
    ) {
        self.table = table
        self.partitionColumn = partitionColumn
        self.create = create
        self.facts = facts
        self.partitionOfFact = partitionOfFact
        self.prepare = prepare
        self.fullWhen = fullWhen
        self.fullWhenReads = fullWhenReads
        self.alsoTouched = alsoTouched
        self.possible = possible
        self.insert = insert
        self.partitionOf = partitionOf
    }

    public var kind: String { "swift" }
    public var definition: String {
        (["derived table \(table) v1", create, insert, partitionOf, partitionOfFact, possible ?? ""] + facts + prepare
            + fullWhen + alsoTouched + fullWhenReads.map { "\($0.table) \($0.filter)" })
            .joined(separator: "\n")
    }

    public func run(in context: StepContext) async throws -> StepReport {
        let step = self
        let forceFull = context.rebuildsInFull
        // Each input fullWhen reads: known unchanged, or the relation of its logged changes (nil: unknown).
        let reads: [(filter: String, unchanged: Bool, changes: String?)]? =
            context.definitionUnchanged && !fullWhenReads.isEmpty
            ? fullWhenReads.map { ($0.filter, context.inputTableUnchanged($0.table), context.changes(of: $0.table)) }
            : nil
        // The facts' touched partitions, when every one of them was built on the previous version.
        let touched = facts.map { context.touchedPartitions(of: $0) }
        let factPartitions: [DatabaseValue]? =
            touched.allSatisfy { $0?.isIncremental == true }
            ? touched.flatMap { entry -> [DatabaseValue] in if case .only(let values)? = entry { values } else { [] } }
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
            let (report, result) = try step.build(
                db, forceFull: forceFull, factPartitions: factPartitions, readsUnchanged: unchanged)
            context.recordTouchedPartitions(result, of: step.table)
            return report
        }
    }

    private func build(
        _ db: Database, forceFull: Bool, factPartitions: [DatabaseValue]?, readsUnchanged: Bool
    ) throws -> (StepReport, TouchedPartitions) {
        var incremental = try !forceFull && db.tableExists(table, in: "main") && factPartitions != nil
        if incremental && !readsUnchanged {
            for statement in prepare { try db.execute(sql: statement) }
            for query in fullWhen where try Row.fetchOne(db, sql: query) != nil {
                incremental = false
                break
            }
        }
        let before = db.totalChangesCount
        if incremental, let factPartitions {
            try db.execute(
                sql: """
                    DROP TABLE IF EXISTS temp.derived_touched;
                    CREATE TEMP TABLE derived_touched (p PRIMARY KEY);
                    """)
            try TouchedPartitions.insert(
                factPartitions, as: partitionOfFact, into: "temp.derived_touched", in: db)
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
            let report = StepReport(
                rowsOut: db.totalChangesCount - before,
                message: "\(table): \(touched) partition(s) rebuilt on the previous version"
                    + (readsUnchanged
                        ? "; \(fullWhenReads.map(\.table).joined(separator: " and ")) unchanged for it since then" : "")
            )
            let touchedPartitions = try TouchedPartitions.reading("temp.derived_touched", in: db)
            return (report, touchedPartitions)
        }
        try db.execute(sql: "DROP TABLE IF EXISTS main.\(table)")
        try db.execute(sql: create)
        try db.execute(sql: Self.filter(insert, partitionOf: partitionOf, full: true))
        return (StepReport(rowsOut: db.totalChangesCount - before, message: "\(table): full build"), .all)
    }

    /// Replaces `{partitions}` (over `partitionOf`) and `{partitions:EXPR}` (over EXPR) with `1` on a full build,
    /// or with a filter on the touched partitions (`SELECT p FROM touched`).
    public static func filter(
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

extension DerivedTable {
    public var editableSQL: String { insert }
    public func replacingSQL(_ sql: String) -> DerivedTable {
        var step = self
        step.insert = sql
        return step
    }
}
