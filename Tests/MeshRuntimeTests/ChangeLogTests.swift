import Foundation
import GRDB
import MeshTestSupport
import Testing

@testable import MeshRuntime

/// Change logs (`Domain.changeLogs`) and the tests that check only what changed (`IncrementalTest`).
///
///     up (items, logged) ──▶ down (copy of items, applied from up's changes; refs)
struct ChangeLogTests {
    /// What `down` saw of up's changes in each build: nil when unknown, else "sign id value" lines.
    final class Seen: @unchecked Sendable {
        private let lock = NSLock()
        private var _values: [[String]?] = []
        func append(_ value: [String]?) { lock.withLock { _values.append(value) } }
        var values: [[String]?] { lock.withLock { _values } }
    }

    /// Item id → (value, ref).
    static func write(_ items: [Int: (Int, Int)], home: URL) throws -> [String: String] {
        let text = items.keys.sorted().map { "\($0) \(items[$0]!.0) \(items[$0]!.1)" }.joined(separator: "\n")
        try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
        try text.write(to: home.appendingPathComponent("items.txt"), atomically: true, encoding: .utf8)
        return ["items": Fingerprint.sha256Hex(text)]
    }

    static func up(depth: Int) -> Domain {
        var domain = Domain(
            id: "up", layer: "raw", owner: Owner(team: "t", contact: "t"), description: "items",
            inputs: [.source("items")],
            outputs: [OutputPort(table: "items", grain: ["id"], columns: [ColumnContract("id", "INTEGER")])],
            recipe: Recipe([
                .swift("load") { context in
                    let text = try String(contentsOf: context.home.appendingPathComponent("items.txt"), encoding: .utf8)
                    let rows = text.split(separator: "\n").map { $0.split(separator: " ").map { Int($0)! } }
                    try await context.database.write { db in
                        try db.execute(
                            sql:
                                "CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, value INTEGER NOT NULL, ref INTEGER)"
                        )
                        try db.execute(
                            sql: "CREATE TEMP TABLE new_items (id INTEGER PRIMARY KEY, value INTEGER, ref INTEGER)")
                        for row in rows {
                            try db.execute(
                                sql: "INSERT INTO new_items VALUES (?, ?, ?)", arguments: [row[0], row[1], row[2]])
                        }
                        // Only what differs is written, as a raw domain applies a batch.
                        try db.execute(
                            sql: """
                                DELETE FROM items WHERE id NOT IN (SELECT id FROM temp.new_items);
                                INSERT OR REPLACE INTO items SELECT * FROM temp.new_items EXCEPT SELECT * FROM items;
                                DROP TABLE temp.new_items;
                                """)
                    }
                    return StepReport(rowsOut: rows.count)
                }
            ]),
            buildsOnPreviousVersion: true)
        domain.changeLogs = ["items"]
        domain.changeLogDepth = depth
        return domain
    }

    static func down(seen: Seen) -> Domain {
        Domain(
            id: "down", layer: "integrated", owner: Owner(team: "t", contact: "t"), description: "copy",
            inputs: [.domain("up")],
            outputs: [
                OutputPort(table: "copy", grain: ["id"], columns: [ColumnContract("id", "INTEGER")]),
                OutputPort(table: "refs", grain: ["id"], columns: [ColumnContract("id", "INTEGER")]),
            ],
            recipe: Recipe([
                .swift("copy") { context in
                    let changes = context.changes(of: "up.items")
                    try await context.database.write { db in
                        seen.append(
                            try changes.map { relation in
                                try Row.fetchAll(
                                    db,
                                    sql: "SELECT mesh_sign, id, value FROM \(relation) ORDER BY mesh_seq, id, mesh_sign"
                                ).map { "\($0[0] as Int) \($0[1] as Int) \($0[2] as Int)" }
                            })
                        if context.startedFromPrevious, let changes {
                            try db.execute(
                                sql: """
                                    DELETE FROM copy WHERE id IN (SELECT id FROM \(changes));
                                    INSERT INTO copy SELECT * FROM up.items WHERE id IN (SELECT id FROM \(changes));
                                    """)
                        } else {
                            try db.execute(
                                sql: """
                                    DROP TABLE IF EXISTS copy;
                                    CREATE TABLE copy (id INTEGER PRIMARY KEY, value INTEGER NOT NULL, ref INTEGER);
                                    INSERT INTO copy SELECT * FROM up.items;
                                    CREATE TABLE IF NOT EXISTS refs (id INTEGER PRIMARY KEY);
                                    INSERT OR IGNORE INTO refs VALUES (1), (2), (3);
                                    """)
                        }
                    }
                    return StepReport()
                }
            ]),
            tests: [
                Relationship(table: "copy", column: "ref", references: "refs", column: "id"),
                CustomSQLTest(
                    "copy_sums_to_up",
                    sql: """
                        SELECT c.total, u.total FROM (SELECT TOTAL(value) AS total FROM copy) c,
                            (SELECT TOTAL(value) AS total FROM up.items) u WHERE c.total <> u.total
                        """,
                    incremental: """
                        SELECT c.change, u.change FROM (SELECT TOTAL(mesh_sign * value) AS change FROM {changes:copy}) c,
                            (SELECT TOTAL(mesh_sign * value) AS change FROM {changes:up.items}) u WHERE c.change <> u.change
                        """),
            ],
            buildsOnPreviousVersion: true)
    }

    static func results(_ mesh: Mesh) throws -> [String: TestResultRecord] {
        let run = try #require(try mesh.store.runs(limit: 1).first)
        return Dictionary(
            try mesh.store.testResults(of: "down", run: run.runID).map { ($0.test, $0) }, uniquingKeysWith: { $1 })
    }

    static func copy(_ mesh: Mesh) throws -> [String] {
        let (queue, _) = try mesh.snapshot(attaching: ["down"])
        return try queue.read { db in
            try Row.fetchAll(db, sql: "SELECT id, value, ref FROM down.copy ORDER BY id").map {
                "\($0[0] as Int) \($0[1] as Int) \($0[2] as Int)"
            }
        }
    }

    @Test func aConsumerReadsTheLoggedChangesSinceItsPreviousBuildAndTestsCheckOnlyThose() async throws {
        let dir = try TemporaryDirectory("change-log")
        defer { dir.remove() }
        let seen = Seen()
        let mesh = try ToyMesh.mesh([Self.up(depth: 2), Self.down(seen: seen)], home: dir.url)
        var items: [Int: (Int, Int)] = [1: (10, 1), 2: (20, 2), 3: (30, 3)]
        _ = try await mesh.run(RunRequest(sourceStates: try Self.write(items, home: dir.url)))
        #expect(seen.values.count == 1 && seen.values[0] == nil)  // a first build has nothing to compare
        #expect(try Self.results(mesh)["copy_sums_to_up"]?.message == "ok")

        // One change, one new item: up logs the old row −1, the new rows +1; down reads exactly those.
        items[2] = (21, 2)
        items[4] = (40, 1)
        _ = try await mesh.run(RunRequest(sourceStates: try Self.write(items, home: dir.url)))
        #expect(seen.values.last == ["-1 2 20", "1 2 21", "1 4 40"])
        #expect(try Self.copy(mesh) == ["1 10 1", "2 21 2", "3 30 3", "4 40 1"])
        let scoped = try Self.results(mesh)
        #expect(scoped["copy_sums_to_up"]?.message.contains("rows changed since the previous version") == true)
        #expect(scoped["relationship(copy.ref → refs.id)"]?.message.contains("rows changed") == true)

        // Two builds of up alone: down then reads both steps of the chain.
        items[1] = nil
        _ = try await mesh.run(RunRequest(only: ["up"], sourceStates: try Self.write(items, home: dir.url)))
        items[3] = (31, 3)
        _ = try await mesh.run(RunRequest(only: ["up"], sourceStates: try Self.write(items, home: dir.url)))
        _ = try await mesh.run(RunRequest(only: ["down"], sourceStates: try Self.write(items, home: dir.url)))
        #expect(seen.values.last == ["-1 1 10", "-1 3 30", "1 3 31"])
        #expect(try Self.copy(mesh) == ["2 21 2", "3 31 3", "4 40 1"])

        // Three builds of up with a depth of two: the log no longer reaches back, and down copies everything.
        for value in [50, 51, 52] {
            items[5] = (value, 2)
            _ = try await mesh.run(RunRequest(only: ["up"], sourceStates: try Self.write(items, home: dir.url)))
        }
        _ = try await mesh.run(RunRequest(sourceStates: try Self.write(items, home: dir.url)))
        #expect(seen.values.last == .some(nil))
        #expect(try Self.copy(mesh) == ["2 21 2", "3 31 3", "4 40 1", "5 52 2"])
        #expect(try Self.results(mesh)["copy_sums_to_up"]?.message == "ok")

        // An orphan reference in a changed row fails the scoped relationship test; nothing is published.
        let published = try #require(try mesh.store.currentVersion(of: "down"))
        items[6] = (60, 99)
        let outcome = try await mesh.run(RunRequest(sourceStates: try Self.write(items, home: dir.url)))
        let failed = try #require(try Self.results(mesh)["relationship(copy.ref → refs.id)"])
        #expect(failed.status == .fail)
        #expect(failed.message == "1 offending row among the rows changed since the previous version")
        #expect(outcome.outcomes["down"]?.status == .fail)
        #expect(try mesh.store.currentVersion(of: "down")?.version == published.version)
    }

    @Test func theLogKeepsItsDepthAndAFullBuildEmptiesIt() async throws {
        let dir = try TemporaryDirectory("change-log-depth")
        defer { dir.remove() }
        let mesh = try ToyMesh.mesh([Self.up(depth: 2)], home: dir.url)
        var items: [Int: (Int, Int)] = [1: (1, 1)]
        func log() throws -> (steps: [String], rows: Int) {
            let version = try #require(try mesh.store.currentVersion(of: "up"))
            let queue = try DatabaseQueue(path: mesh.path(of: version).path)
            defer { try? queue.close() }
            return try queue.read { db in
                (
                    try Row.fetchAll(db, sql: "SELECT seq, before, after FROM mesh_change_log ORDER BY seq").map {
                        "\($0[0] as Int) \(($0[1] as String).prefix(6))→\(($0[2] as String).prefix(6))"
                    },
                    try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM mesh_changes_items") ?? -1
                )
            }
        }
        var fingerprints: [String] = []
        for value in 1...4 {
            items[1] = (value, 1)
            _ = try await mesh.run(RunRequest(sourceStates: try Self.write(items, home: dir.url)))
            fingerprints.append(try #require(try mesh.store.currentVersion(of: "up")).fingerprint)
        }
        // Builds 2, 3 and 4 logged one step each; a depth of two keeps the last two, chained.
        let kept = try log()
        #expect(
            kept.steps == [
                "2 \(fingerprints[1].prefix(6))→\(fingerprints[2].prefix(6))",
                "3 \(fingerprints[2].prefix(6))→\(fingerprints[3].prefix(6))",
            ])
        #expect(kept.rows == 4)
        _ = try await mesh.run(RunRequest(only: ["up"], force: ["up"], fullRefresh: true))
        #expect(try log().steps.isEmpty && log().rows == 0)
    }

    @Test func aSQLStepKeepsItsTableWhileWhatItReadsIsUnchanged() async throws {
        let dir = try TemporaryDirectory("kept-sql")
        defer { dir.remove() }
        let summary = Domain(
            id: "summary", layer: "integrated", owner: Owner(team: "t", contact: "t"), description: "total",
            inputs: [.domain("up")],
            outputs: [OutputPort(table: "total", columns: [ColumnContract("total", "INTEGER")])],
            recipe: Recipe([
                .sql(
                    "total", reads: ["up.items"], keeps: ["total"],
                    "DROP TABLE IF EXISTS main.total; CREATE TABLE total AS SELECT SUM(value) AS total FROM up.items")
            ]),
            buildsOnPreviousVersion: true)
        let mesh = try ToyMesh.mesh([Self.up(depth: 2), summary], home: dir.url)
        func total() throws -> (Int, String) {
            let run = try #require(try mesh.store.runs(limit: 1).first)
            let message = try mesh.store.steps(of: "summary", in: run.runID).first?.message ?? ""
            let (queue, _) = try mesh.snapshot(attaching: ["summary"])
            return (try queue.read { try Int.fetchOne($0, sql: "SELECT total FROM summary.total") ?? -1 }, message)
        }
        var items: [Int: (Int, Int)] = [1: (10, 1)]
        _ = try await mesh.run(RunRequest(sourceStates: try Self.write(items, home: dir.url)))
        #expect(try total() == (10, ""))
        _ = try await mesh.run(RunRequest(only: ["summary"], force: ["summary"]))
        #expect(try total() == (10, "kept: what it reads is unchanged since the previous version"))
        items[2] = (5, 1)
        _ = try await mesh.run(RunRequest(sourceStates: try Self.write(items, home: dir.url)))
        #expect(try total() == (15, ""))
        _ = try await mesh.run(RunRequest(only: ["summary"], force: ["summary"], fullRefresh: true))
        let refreshed = try total()
        #expect(refreshed == (15, ""), "\(refreshed)")
    }

    @Test func aScriptThatReadsNoInputIsCopiedFromThePreviousVersionOfItsDefinition() async throws {
        let dir = try TemporaryDirectory("kept-calendar")
        defer { dir.remove() }
        func calendar(last: Int) -> Domain {
            Domain(
                id: "calendar", layer: "integrated", owner: Owner(team: "t", contact: "t"), description: "days",
                inputs: [.domain("up")],
                outputs: [
                    OutputPort(table: "day", columns: [ColumnContract("n", "INTEGER")]),
                    OutputPort(table: "total", columns: [ColumnContract("total", "INTEGER")]),
                ],
                recipe: Recipe([
                    .sql(
                        "day", reads: [], keeps: ["day"],
                        """
                        CREATE TABLE day (n INTEGER PRIMARY KEY, label TEXT);
                        WITH RECURSIVE d(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM d WHERE n < \(last))
                        INSERT INTO day SELECT n, 'day ' || n FROM d;
                        """),
                    .sql("total", "CREATE TABLE total AS SELECT SUM(value) AS total FROM up.items"),
                ]))
        }
        var mesh = try ToyMesh.mesh([Self.up(depth: 2), calendar(last: 5)], home: dir.url)
        func build() throws -> (message: String, days: Int, digest: String?) {
            let run = try #require(try mesh.store.runs(limit: 1).first)
            let message =
                try mesh.store.steps(of: "calendar", in: run.runID).first { $0.step == "day" }?.message ?? ""
            let current = try #require(try mesh.store.currentVersion(of: "calendar"))
            let (queue, _) = try mesh.snapshot(attaching: ["calendar"])
            let days = try queue.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM calendar.day") ?? -1 }
            return (message, days, current.tableDigests["day"])
        }
        var items: [Int: (Int, Int)] = [1: (10, 1)]
        _ = try await mesh.run(RunRequest(sourceStates: try Self.write(items, home: dir.url)))
        let first = try build()
        #expect(first.message == "" && first.days == 5)
        // A new input: the domain is rebuilt from an empty file, and the calendar is copied, digest and all.
        items[2] = (5, 1)
        _ = try await mesh.run(RunRequest(sourceStates: try Self.write(items, home: dir.url)))
        let second = try build()
        #expect(second.message == "copied from the previous version: it reads no input")
        #expect(second.days == 5 && second.digest == first.digest)
        // A full refresh computes it again, to the same digest.
        _ = try await mesh.run(RunRequest(only: ["calendar"], force: ["calendar"], fullRefresh: true))
        let refreshed = try build()
        #expect(refreshed.message == "" && refreshed.digest == first.digest)
        // Another definition computes it again.
        mesh = try ToyMesh.mesh([Self.up(depth: 2), calendar(last: 7)], home: dir.url)
        _ = try await mesh.run(RunRequest())
        let changed = try build()
        #expect(changed.message == "" && changed.days == 7 && changed.digest != first.digest)
    }
}
