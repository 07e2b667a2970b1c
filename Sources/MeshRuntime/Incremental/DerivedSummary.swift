import GRDB

/// SQL over tables of the same build that reruns only when what it reads changed (a summary over a derived
/// table): when every table it `reads` was built incrementally and rebuilt no partition, and the table it
/// `writesInto` was not rebuilt in full (which would have dropped its rows), the published rows are already
/// right.
///
/// ```swift
/// DerivedSummary(
///     name: "totals v1", reads: ["mart_orders_monthly"], writesInto: "mart_totals",
///     sql: "DELETE FROM mart_totals; INSERT INTO mart_totals SELECT SUM(orders) FROM mart_orders_monthly")
/// ```
public struct DerivedSummary: EditableSQL {
    public var name: String
    public var reads: [String]
    public var writesInto: String
    public var sql: String

    public init(name: String, reads: [String], writesInto: String, sql: String) {
        self.name = name
        self.reads = reads
        self.writesInto = writesInto
        self.sql = sql
    }

    public var kind: String { "swift" }
    public var definition: String { (["derived summary \(name)", sql, writesInto] + reads).joined(separator: "\n") }

    public func run(in context: StepContext) async throws -> StepReport {
        let step = self
        let unchanged =
            !context.rebuildsInFull && context.touchedPartitions(of: writesInto)?.isIncremental == true
            && reads.allSatisfy { context.touchedPartitions(of: $0) == .only([]) }
        guard !unchanged else { return StepReport(message: "nothing it reads changed") }
        return try await context.database.write { db in
            let before = db.totalChangesCount
            try db.execute(sql: step.sql)
            return StepReport(rowsOut: db.totalChangesCount - before)
        }
    }
}

extension DerivedSummary {
    public var editableSQL: String { sql }
    public func replacingSQL(_ sql: String) -> DerivedSummary {
        var step = self
        step.sql = sql
        return step
    }
}
