import Foundation
import GRDB

/// The run history's totals by domain, as metrics report them.
package struct HistoryTotals: Sendable {
    /// Domain runs by outcome (`RunStatus` raw values).
    package var runs: [(domain: DomainID, status: String, count: Int)] = []
    /// Time spent building each domain, and its last build's duration (nil when it never recorded one).
    package var durations: [(domain: DomainID, totalMS: Int, lastMS: Int?)] = []
    /// Rows published by each domain's successful builds.
    package var rowsPublished: [(domain: DomainID, rows: Int)] = []
    /// Test results by outcome (`TestStatus` raw values).
    package var tests: [(domain: DomainID, status: String, count: Int)] = []
}

extension RuntimeStore {
    /// The history's totals by domain, read in one transaction, each list ordered by domain (then status).
    package func totals() throws -> HistoryTotals {
        try pool.read { db in
            var totals = HistoryTotals()
            for row in try Row.fetchAll(
                db, sql: "SELECT domain, status, COUNT(*) FROM domain_run GROUP BY 1, 2 ORDER BY 1, 2")
            {
                totals.runs.append((DomainID(row[0] as String), row[1], row[2]))
            }
            for row in try Row.fetchAll(
                db,
                sql:
                    "SELECT domain, COALESCE(SUM(duration_ms), 0), (SELECT d2.duration_ms FROM domain_run d2 WHERE d2.domain = d.domain AND d2.duration_ms IS NOT NULL ORDER BY d2.started_at DESC LIMIT 1) FROM domain_run d GROUP BY 1 ORDER BY 1"
            ) {
                totals.durations.append((DomainID(row[0] as String), row[1], row[2]))
            }
            for row in try Row.fetchAll(
                db,
                sql:
                    "SELECT domain, COALESCE(SUM(rows_out), 0) FROM domain_run WHERE status IN ('success', 'warn') GROUP BY 1 ORDER BY 1"
            ) {
                totals.rowsPublished.append((DomainID(row[0] as String), row[1]))
            }
            for row in try Row.fetchAll(
                db, sql: "SELECT domain, status, COUNT(*) FROM test_result GROUP BY 1, 2 ORDER BY 1, 2")
            {
                totals.tests.append((DomainID(row[0] as String), row[1], row[2]))
            }
            return totals
        }
    }

    /// A domain's test results run by run, oldest first: the newest `limit`, of one test or of all.
    package func testHistory(of domain: DomainID, test: String?, limit: Int) throws -> [TestResultRecord] {
        try pool.read { db in
            try TestResultRecord.fetchAll(
                db,
                sql: """
                    SELECT * FROM (SELECT * FROM test_result
                    WHERE domain = ? AND (? IS NULL OR test = ?) ORDER BY at DESC LIMIT ?) ORDER BY at
                    """, arguments: [domain, test, test, limit])
        }
    }

    /// The events after `id`, up to `last`, of the given kinds, in order.
    package func events(after id: Int64, through last: Int64, kinds: [EventKind]) throws -> [MeshEvent] {
        guard !kinds.isEmpty else { return [] }
        return try pool.read { db in
            var arguments: StatementArguments = [id, last]
            for kind in kinds { arguments += [kind.rawValue] }
            return try MeshEvent.fetchAll(
                db,
                sql: """
                    SELECT * FROM event WHERE id > ? AND id <= ? AND kind IN (\(databaseQuestionMarks(count: kinds.count)))
                    ORDER BY id
                    """,
                arguments: arguments)
        }
    }
}
