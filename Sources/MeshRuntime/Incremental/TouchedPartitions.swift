import Foundation
import GRDB

/// What a step of the current build did to a partitioned table, for the steps after it: rebuilt it whole, or
/// rebuilt only some partitions (none, when nothing it reads changed).
public enum TouchedPartitions: Sendable, Equatable {
    /// Built from nothing (a first build, a full refresh, a changed definition): every partition is new.
    case all
    /// Rebuilt these partitions on the previous version's rows (their values, as the table stores them).
    case only([DatabaseValue])

    /// True when the table was built on the previous version.
    public var isIncremental: Bool { if case .only = self { true } else { false } }
}

/// The tables' touched partitions of one build, shared by its steps (which run concurrently).
final class TouchedPartitionLog: @unchecked Sendable {
    // Safe: every access to `tables` holds `lock`.
    private let lock = NSLock()
    private var tables: [String: TouchedPartitions] = [:]

    func record(_ touched: TouchedPartitions, of table: String) { lock.withLock { tables[table] = touched } }
    func touched(_ table: String) -> TouchedPartitions? { lock.withLock { tables[table] } }
}

extension StepContext {
    /// What an earlier step of this build did to `table`, or nil when no step recorded it.
    ///
    /// ```swift
    /// switch context.touchedPartitions(of: "fact_orders_daily") {
    /// case .only(let days): // rebuild the summary rows of these days
    /// case .all, nil: // rebuild the summary whole
    /// }
    /// ```
    public func touchedPartitions(of table: String) -> TouchedPartitions? { touchedLog.touched(table) }

    /// Records what this step did to `table`, for the steps after it (`touchedPartitions(of:)`).
    public func recordTouchedPartitions(_ touched: TouchedPartitions, of table: String) {
        touchedLog.record(touched, of: table)
    }

    /// Whether an incremental step must build everything: a full refresh, or a definition (SQL, parameters)
    /// other than the one the previous version was built with, whose rows the step would otherwise keep.
    public var rebuildsInFull: Bool { fullRefresh || (startedFromPrevious && !previousDefinitionUnchanged) }
}

extension TouchedPartitions {
    /// Reads the partitions of a relation with one column `p` (say, `temp.touched`).
    static func reading(_ relation: String, in db: Database) throws -> TouchedPartitions {
        .only(try DatabaseValue.fetchAll(db, sql: "SELECT p FROM \(relation)"))
    }

    /// Inserts `expression` over each partition `p` into `relation` (a TEMP table with a column `p`).
    static func insert(_ partitions: [DatabaseValue], as expression: String, into relation: String, in db: Database)
        throws
    {
        let statement = try db.makeStatement(
            sql: "INSERT OR IGNORE INTO \(relation) SELECT \(expression) FROM (SELECT ? AS p)")
        for partition in partitions { try statement.execute(arguments: [partition]) }
    }
}
