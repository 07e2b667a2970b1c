import Foundation
import Logging
import MeshRuntime
import PostgresNIO

/// One domain test evaluated on both engines.
public struct EngineTestComparison: Sendable, Codable {
    public var domain: DomainID
    public var version: Int
    public var test: String
    /// The outcome recorded when the build was tested on SQLite.
    public var sqlite: String?
    public var sqliteFailures: Int?
    /// The outcome on PostgreSQL's copy; nil when the test cannot run there.
    public var postgresql: String?
    public var postgresqlFailures: Int?
    /// Why the test did not run on PostgreSQL, or what went wrong there.
    public var note: String?

    /// The engines agree (or the test does not apply to PostgreSQL).
    public var agrees: Bool {
        postgresql == nil || (sqlite == postgresql && sqliteFailures == postgresqlFailures)
    }
}

extension PostgresEngine {
    /// Runs the tests of every served domain on PostgreSQL's copy of its served version, and sets each
    /// outcome beside the one recorded when the build was tested on SQLite.
    ///
    /// A test that reads a schema PostgreSQL does not serve (a reconciliation with the raw layer, say) or the
    /// previous version is reported as not applicable: it checked the build, and the digests checked at
    /// loading prove the served rows are the rows it checked.
    public func checkTests(_ mesh: Mesh) async throws -> [EngineTestComparison] {
        let served = try await served()
        let servedSchemas = Set(served.keys.map(\.schemaName))
        let otherSchemas = Set(mesh.registry.ids.map(\.schemaName)).subtracting(servedSchemas).union(["previous"])
        return try await withConnection { connection in
            try await compare(mesh, served: served, otherSchemas: otherSchemas, on: connection)
        }
    }

    private func compare(
        _ mesh: Mesh, served: [DomainID: VersionRecord], otherSchemas: Set<String>, on connection: PostgresConnection
    ) async throws -> [EngineTestComparison] {
        var comparisons: [EngineTestComparison] = []
        for id in mesh.registry.ids {
            guard let domain = mesh.registry[id], let record = served[id] else { continue }
            let recorded = try mesh.store.testResults(of: id, run: record.runID).filter { $0.step.isEmpty }
            let context = TestContext(domain: id, parameters: record.parameters, hasPrevious: false)
            for test in domain.tests {
                var comparison = EngineTestComparison(
                    domain: id, version: record.version, test: test.name)
                if let result = recorded.first(where: { $0.test == test.name }) {
                    comparison.sqlite = result.status.rawValue
                    comparison.sqliteFailures = result.failures
                }
                guard let sql = try test.offendingRowsSQL(context, dialect: .postgresql) else {
                    comparison.note = "not applicable"
                    comparisons.append(comparison)
                    continue
                }
                let lowered = sql.lowercased()
                if let other = otherSchemas.sorted().first(where: { Self.mentions(lowered, schema: $0) }) {
                    comparison.note = "reads \(other), which PostgreSQL does not serve"
                    comparisons.append(comparison)
                    continue
                }
                do {
                    let failures = try await countOffendingRows(
                        sql, parameters: record.parameters, schema: id.schemaName, on: connection)
                    comparison.postgresqlFailures = failures
                    comparison.postgresql =
                        failures == 0 ? TestStatus.pass.rawValue : (test.severity == .fail ? "fail" : "warn")
                } catch {
                    comparison.postgresql = TestStatus.error.rawValue
                    comparison.postgresqlFailures = 0
                    comparison.note = PostgresEngineError.describe(error)
                }
                comparisons.append(comparison)
            }
        }
        return comparisons
    }

    /// Whether SQL names `schema.` as a qualifier (not as the end of a longer name).
    static func mentions(_ sql: String, schema: String) -> Bool {
        var searchRange = sql.startIndex..<sql.endIndex
        while let found = sql.range(of: schema + ".", range: searchRange) {
            if found.lowerBound == sql.startIndex { return true }
            let before = sql[sql.index(before: found.lowerBound)]
            if !(before.isLetter || before.isNumber || before == "_") { return true }
            searchRange = found.upperBound..<sql.endIndex
        }
        return false
    }

    /// Counts a test's offending rows in the domain's schema, in a read-only transaction rolled back after;
    /// `:name` parameters become literals.
    func countOffendingRows(
        _ sql: String, parameters: [String: String], schema: String, on connection: PostgresConnection
    ) async throws -> Int {
        var text = sql
        for (key, value) in parameters.sorted(by: { $0.key.count > $1.key.count }) {
            text = text.replacingOccurrences(of: ":\(key)", with: quoteLiteral(value))
        }
        try await Self.execute("BEGIN TRANSACTION READ ONLY", on: connection, logger: logger)
        do {
            try await Self.execute(
                "SET LOCAL search_path TO \(quoteIdentifier(schema))", on: connection, logger: logger)
            var count = 0
            let rows = try await connection.query(
                PostgresQuery(unsafeSQL: "SELECT COUNT(*) FROM (\(text)) AS offending"), logger: logger)
            for try await value in rows.decode(Int.self) { count = value }
            try await Self.execute("ROLLBACK", on: connection, logger: logger)
            return count
        } catch {
            _ = try? await Self.execute("ROLLBACK", on: connection, logger: logger)
            throw error
        }
    }
}
