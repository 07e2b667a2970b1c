import Foundation
import GRDB
import MeshTestSupport
import Testing

@testable import MeshRuntime

/// An ad-hoc measurement, not part of the suite: `MESH_BENCH_ROWS=2000000 swift test --filter IncrementalBenchmark`.
struct IncrementalBenchmark {
    static let rows = Int(ProcessInfo.processInfo.environment["MESH_BENCH_ROWS"] ?? "") ?? 0
    static let batchRows = rows / 100

    /// `facts` holds `rows` rows; batch k (k ≥ 1) rewrites the ids of range k (`batchRows` rows each).
    static func domain() -> Domain {
        Domain(
            id: "bench", layer: "raw", owner: ToyMesh.owner, description: "benchmark facts",
            outputs: [
                OutputPort(
                    table: "facts", grain: ["id"],
                    columns: [
                        ColumnContract("id", "INTEGER"), ColumnContract("customer", "INTEGER"),
                        ColumnContract("amount", "REAL"), ColumnContract("note", "TEXT"),
                        ColumnContract("batch", "INTEGER"),
                    ])
            ],
            recipe: Recipe([
                .swift("load") { context in
                    let batch = Int(try context.parameter("batch"))!
                    let rows = Self.rows
                    let size = Self.batchRows
                    @Sendable func select(from lo: Int, to hi: Int) -> String {
                        """
                        WITH RECURSIVE n(id) AS (SELECT \(lo) UNION ALL SELECT id + 1 FROM n WHERE id < \(hi))
                        SELECT id, id % 1000, id * 0.25, 'note ' || (id % 5000),
                               CASE WHEN id / \(size) BETWEEN 1 AND \(batch) THEN id / \(size) ELSE 0 END FROM n
                        """
                    }
                    try await context.database.write { db in
                        if context.startedFromPrevious {
                            let (lo, hi) = (batch * size, (batch + 1) * size - 1)
                            try db.execute(sql: "DELETE FROM facts WHERE id BETWEEN \(lo) AND \(hi)")
                            try db.execute(sql: "INSERT INTO facts \(select(from: lo, to: hi))")
                        } else {
                            try db.execute(
                                sql: """
                                    CREATE TABLE facts (
                                        id INTEGER PRIMARY KEY, customer INTEGER, amount REAL, note TEXT, batch INTEGER)
                                    """)
                            try db.execute(sql: "INSERT INTO facts \(select(from: 0, to: rows - 1))")
                            try db.execute(sql: "CREATE INDEX facts_customer ON facts(customer)")
                        }
                    }
                    return StepReport()
                }
            ]),
            tests: [Unique(table: "facts", grain: ["id"])],
            parameters: ["batch": "0"], buildsOnPreviousVersion: true)
    }

    @Test(.enabled(if: rows > 0)) func incrementalVersusFullBuild() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let mesh = try ToyMesh.mesh([Self.domain()], home: dir.url)
        func timed(_ request: RunRequest) async throws -> (Int, RunSummary) {
            let summary = try await mesh.run(request)
            let run = try #require(try mesh.store.domainRuns(in: summary.runID).first)
            return (run.durationMS ?? -1, summary)
        }
        let (first, _) = try await timed(RunRequest())
        var lines = ["rows \(Self.rows), batch \(Self.batchRows) rows", "v1 full build: \(first) ms"]
        for batch in 1...2 {
            let (incremental, summary) = try await timed(RunRequest(parameters: ["bench": ["batch": "\(batch)"]]))
            let log = try mesh.store.logs(of: summary.runID, domain: "bench").map(\.message).joined(separator: " | ")
            lines.append("batch \(batch) incremental: \(incremental) ms (\(log))")
        }
        let (full, _) = try await timed(
            RunRequest(parameters: ["bench": ["batch": "2"]], force: ["bench"], fullRefresh: true))
        lines.append("batch 2 full refresh: \(full) ms")
        let versions = try mesh.store.versions(of: "bench")
        #expect(versions[0].fingerprint == versions[1].fingerprint)
        lines.append("fingerprints equal: \(versions[0].fingerprint == versions[1].fingerprint)")
        print(lines.joined(separator: "\n"))
    }
}
