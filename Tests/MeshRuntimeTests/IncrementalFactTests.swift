import Foundation
import GRDB
import MeshTestSupport
import Testing

@testable import MeshRuntime

/// A toy raw domain (`rows` with batch and line, and a `map` of ids to targets) under an incremental fact.
///
///     toy-raw ──▶ toy-fact   (fact: week × target, rebuilt per touched week on a copy of its previous version)
struct IncrementalFactTests {
    struct SourceRow: Codable {
        var id: String
        var week: String
        var value: Int
        var batch: String
        var line: Int
    }
    struct World: Codable {
        var rows: [SourceRow]
        var map: [String: Int]
    }

    static func write(_ world: World, home: URL) throws -> [String: String] {
        let data = try JSONEncoder().encode(world)
        try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
        try data.write(to: home.appendingPathComponent("world.json"))
        return ["toy": Fingerprint.sha256Hex(String(decoding: data, as: UTF8.self))]
    }

    static let raw = Domain(
        id: "toy-raw", layer: "raw", owner: Owner(team: "t", contact: "t"), description: "toy rows",
        inputs: [.source("toy")],
        outputs: [
            OutputPort(table: "rows", columns: [ColumnContract("id", "TEXT")]),
            OutputPort(table: "map", columns: [ColumnContract("source_id", "TEXT")]),
        ],
        recipe: Recipe([
            .swift("load") { context in
                let world = try JSONDecoder().decode(
                    World.self, from: Data(contentsOf: context.home.appendingPathComponent("world.json")))
                try await context.database.write { db in
                    try db.execute(
                        sql: "CREATE TABLE rows (id TEXT, week TEXT, value INTEGER, batch TEXT, line INTEGER)")
                    try db.execute(sql: "CREATE TABLE map (source_id TEXT PRIMARY KEY, target INTEGER)")
                    for row in world.rows {
                        try db.execute(
                            sql: "INSERT INTO rows VALUES (?, ?, ?, ?, ?)",
                            arguments: [row.id, row.week, row.value, row.batch, row.line])
                    }
                    for (id, target) in world.map {
                        try db.execute(sql: "INSERT INTO map VALUES (?, ?)", arguments: [id, target])
                    }
                }
                return StepReport(rowsOut: world.rows.count)
            }
        ]))

    /// The toy's one lookup: a row's id to its target.
    static let idLookup = Lookup(
        "id", table: "toy_raw.map", alias: "m", key: "source_id", value: "target", input: "id")

    static let fact: Domain = {
        var domain = Domain(
            id: "toy-fact", layer: "integrated", owner: Owner(team: "t", contact: "t"), description: "toy fact",
            inputs: [.domain("toy-raw")],
            outputs: [OutputPort(table: "fact", grain: ["week", "target"], columns: [ColumnContract("week", "TEXT")])],
            recipe: Recipe([
                RecipeNode(
                    "fact",
                    step: IncrementalFact(
                        table: "fact", partitionColumn: "week",
                        create: """
                            CREATE TABLE fact (week TEXT NOT NULL, target INTEGER NOT NULL, total INTEGER NOT NULL,
                                PRIMARY KEY (week, target)) WITHOUT ROWID
                            """,
                        source: .init("toy_raw.rows", alias: "r", partition: .column("week")),
                        lookups: [idLookup],
                        insert: """
                            INSERT INTO fact SELECT {partition}, COALESCE(m.target, 0), SUM(r.value)
                            FROM toy_raw.rows r {lookup:id}
                            WHERE {partitions} GROUP BY 1, 2
                            """))
            ]),
            retainedTables: ["fact_partition_state", "fact_mapping_state"])
        domain.buildsOnPreviousVersion = true
        return domain
    }()

    static func fact(in mesh: Mesh) throws -> [String] {
        let (queue, _) = try mesh.snapshot(attaching: ["toy-fact"])
        return try queue.read { db in
            try GRDB.Row.fetchAll(db, sql: "SELECT week, target, total FROM toy_fact.fact ORDER BY 1, 2").map {
                "\($0["week"] as String) \($0["target"] as Int) \($0["total"] as Int)"
            }
        }
    }

    /// The step's message in the last run: how many partitions it rebuilt.
    static func message(in mesh: Mesh) throws -> String {
        let run = try #require(try mesh.store.runs(limit: 1).first)
        return try mesh.store.steps(of: "toy-fact", in: run.runID).first?.message ?? ""
    }

    @Test func onlyTouchedPartitionsRebuildAndTheResultEqualsAFullBuild() async throws {
        let dir = try TemporaryDirectory("incremental-fact")
        defer { dir.remove() }
        let mesh = try ToyMesh.mesh([Self.raw, Self.fact], home: dir.url)
        var world = World(
            rows: [
                SourceRow(id: "a", week: "w1", value: 1, batch: "b1", line: 1),
                SourceRow(id: "b", week: "w1", value: 2, batch: "b1", line: 2),
                SourceRow(id: "a", week: "w2", value: 4, batch: "b1", line: 3),
                SourceRow(id: "c", week: "w3", value: 8, batch: "b1", line: 4),
            ],
            map: ["a": 10, "b": 20])
        _ = try await mesh.run(RunRequest(sourceStates: try Self.write(world, home: dir.url)))
        #expect(try Self.fact(in: mesh) == ["w1 10 1", "w1 20 2", "w2 10 4", "w3 0 8"])
        #expect(try Self.message(in: mesh) == "fact: full build")

        // A restatement of w3 by a new batch and a new week w4: only those two rebuild.
        world.rows[3] = SourceRow(id: "c", week: "w3", value: 16, batch: "b2", line: 1)
        world.rows.append(SourceRow(id: "b", week: "w4", value: 32, batch: "b2", line: 2))
        _ = try await mesh.run(RunRequest(sourceStates: try Self.write(world, home: dir.url)))
        #expect(try Self.fact(in: mesh) == ["w1 10 1", "w1 20 2", "w2 10 4", "w3 0 16", "w4 20 32"])
        #expect(try Self.message(in: mesh) == "fact: 2 partition(s) rebuilt on the previous version")

        // A merge re-points id a: the weeks a has rows in (w1, w2) rebuild although no row changed; a row
        // deleted from the source (b in w4) empties its partition.
        world.map["a"] = 20
        world.rows.removeLast()
        _ = try await mesh.run(RunRequest(sourceStates: try Self.write(world, home: dir.url)))
        #expect(try Self.fact(in: mesh) == ["w1 20 3", "w2 20 4", "w3 0 16"])
        #expect(try Self.message(in: mesh) == "fact: 3 partition(s) rebuilt on the previous version")

        // c, unmapped so far, gets a target: its week moves from the unknown member.
        world.map["c"] = 30
        _ = try await mesh.run(RunRequest(sourceStates: try Self.write(world, home: dir.url)))
        #expect(try Self.fact(in: mesh) == ["w1 20 3", "w2 20 4", "w3 30 16"])
        let incremental = try #require(try mesh.store.currentVersion(of: "toy-fact"))

        _ = try await mesh.run(RunRequest(only: ["toy-fact"], force: ["toy-fact"], fullRefresh: true))
        let full = try #require(try mesh.store.currentVersion(of: "toy-fact"))
        #expect(full.version == incremental.version + 1)
        #expect(full.fingerprint == incremental.fingerprint)
        #expect(try Self.message(in: mesh) == "fact: full build")
    }
}

extension IncrementalFactTests {
    /// Versions built before the state tables lost their column types (`ANY`, whose NUMERIC affinity turned
    /// NDC-like ids into numbers) still build: incrementally (the state is recreated once, so every mapped
    /// partition rebuilds) and as a full refresh (which must not touch the previous version's table).
    @Test func aPreviousVersionWithTypedStateStillBuildsBothWays() async throws {
        let dir = try TemporaryDirectory("incremental-fact-typed")
        defer { dir.remove() }
        let mesh = try ToyMesh.mesh([Self.raw, Self.fact], home: dir.url)
        var world = World(
            rows: [
                SourceRow(id: "007", week: "w1", value: 1, batch: "b1", line: 1),
                SourceRow(id: "8", week: "w2", value: 2, batch: "b1", line: 2),
            ],
            map: ["007": 10, "8": 20])
        _ = try await mesh.run(RunRequest(sourceStates: try Self.write(world, home: dir.url)))
        // Rewrite the published state as the old code declared it.
        let published = try #require(try mesh.store.currentVersion(of: "toy-fact"))
        let queue = try DatabaseQueue(path: mesh.path(of: published).path)
        try await queue.write { db in
            try db.execute(
                sql: """
                    CREATE TABLE old_state AS SELECT * FROM fact_mapping_state;
                    DROP TABLE fact_mapping_state;
                    CREATE TABLE fact_mapping_state (fact TEXT NOT NULL, mapping TEXT NOT NULL, source_id ANY,
                        target ANY, PRIMARY KEY (fact, mapping, source_id));
                    INSERT INTO fact_mapping_state SELECT * FROM old_state;
                    DROP TABLE old_state;
                    """)
            // The old affinity made "007" the number 7.
            #expect(try Int.fetchOne(db, sql: "SELECT source_id FROM fact_mapping_state WHERE target = 10") == 7)
        }
        try queue.close()

        world.map["007"] = 30
        _ = try await mesh.run(RunRequest(sourceStates: try Self.write(world, home: dir.url)))
        #expect(try Self.fact(in: mesh) == ["w1 30 1", "w2 20 2"])
        let incremental = try #require(try mesh.store.currentVersion(of: "toy-fact"))
        let outcome = try await mesh.run(RunRequest(only: ["toy-fact"], force: ["toy-fact"], fullRefresh: true))
        #expect(outcome.outcomes["toy-fact"]?.status == .success)
        #expect(try mesh.store.currentVersion(of: "toy-fact")?.fingerprint == incremental.fingerprint)
    }
}

extension IncrementalFactTests {
    /// The toy fact with a change log, so that the rows each build wrote can be read back.
    static let loggedFact: Domain = {
        var domain = fact
        domain.changeLogs = ["fact"]
        return domain
    }()

    /// The rows the newest build of the toy fact wrote (`-` deleted, `+` inserted), from its change log.
    static func written(in mesh: Mesh) throws -> [String] {
        let published = try #require(try mesh.store.currentVersion(of: "toy-fact"))
        let queue = try DatabaseQueue(path: mesh.path(of: published).path)
        defer { try? queue.close() }
        return try queue.read { db in
            try GRDB.Row.fetchAll(
                db,
                sql: """
                    SELECT mesh_sign, week, target, total FROM mesh_changes_fact
                    WHERE mesh_seq = (SELECT MAX(mesh_seq) FROM mesh_changes_fact) ORDER BY 2, 3, 1
                    """
            ).map { "\(($0[0] as Int) > 0 ? "+" : "-")\($0[1] as String) \($0[2] as Int) \($0[3] as Int)" }
        }
    }

    /// A restated partition is rewritten by difference: rows that come out the same are not written again (each
    /// written row passes the digest and capture triggers), while a changed, a vanished and a new row in it,
    /// and a new partition, are, and the result is still a full build's.
    @Test func aRestatedPartitionWritesOnlyTheRowsThatDiffer() async throws {
        let dir = try TemporaryDirectory("incremental-fact-difference")
        defer { dir.remove() }
        let mesh = try ToyMesh.mesh([Self.raw, Self.loggedFact], home: dir.url)
        var world = World(
            rows: [
                SourceRow(id: "a", week: "w1", value: 1, batch: "b1", line: 1),
                SourceRow(id: "b", week: "w1", value: 2, batch: "b1", line: 2),
                SourceRow(id: "c", week: "w1", value: 4, batch: "b1", line: 3),
                SourceRow(id: "d", week: "w1", value: 8, batch: "b1", line: 4),
                SourceRow(id: "a", week: "w2", value: 16, batch: "b1", line: 5),
            ],
            map: ["a": 10, "b": 20, "c": 30, "d": 40, "e": 50])
        _ = try await mesh.run(RunRequest(sourceStates: try Self.write(world, home: dir.url)))
        #expect(try Self.fact(in: mesh) == ["w1 10 1", "w1 20 2", "w1 30 4", "w1 40 8", "w2 10 16"])

        // Batch b2 restates all of w1: a and d as they were, b changed, c gone, e new; and starts w3.
        world.rows = [
            SourceRow(id: "a", week: "w1", value: 1, batch: "b2", line: 1),
            SourceRow(id: "b", week: "w1", value: 3, batch: "b2", line: 2),
            SourceRow(id: "d", week: "w1", value: 8, batch: "b2", line: 3),
            SourceRow(id: "e", week: "w1", value: 5, batch: "b2", line: 4),
            SourceRow(id: "a", week: "w2", value: 16, batch: "b1", line: 5),
            SourceRow(id: "b", week: "w3", value: 32, batch: "b2", line: 5),
        ]
        _ = try await mesh.run(RunRequest(sourceStates: try Self.write(world, home: dir.url)))
        #expect(try Self.message(in: mesh) == "fact: 2 partition(s) rebuilt on the previous version")
        #expect(try Self.fact(in: mesh) == ["w1 10 1", "w1 20 3", "w1 40 8", "w1 50 5", "w2 10 16", "w3 20 32"])
        #expect(
            try Self.written(in: mesh) == ["-w1 20 2", "+w1 20 3", "-w1 30 4", "+w1 50 5", "+w3 20 32"])
        let incremental = try #require(try mesh.store.currentVersion(of: "toy-fact"))

        _ = try await mesh.run(RunRequest(only: ["toy-fact"], force: ["toy-fact"], fullRefresh: true))
        #expect(try mesh.store.currentVersion(of: "toy-fact")?.fingerprint == incremental.fingerprint)
    }
}

extension IncrementalFactTests {
    /// A kitchen's edit of the fact's SELECT (a recipe file over the code's step) keeps the step's partitions
    /// and lookups, and the first build with it rebuilds every partition: rows built by the old SELECT never
    /// stay. The next build is incremental again.
    @Test func anEditedSelectRebuildsEveryPartitionOnceThenIncrementally() async throws {
        let dir = try TemporaryDirectory("incremental-fact-edit")
        defer { dir.remove() }
        var world = World(
            rows: [
                SourceRow(id: "a", week: "w1", value: 1, batch: "b1", line: 1),
                SourceRow(id: "b", week: "w2", value: 2, batch: "b1", line: 2),
            ],
            map: ["a": 10, "b": 20])
        let before = try ToyMesh.mesh([Self.raw, Self.fact], home: dir.url)
        _ = try await before.run(RunRequest(sourceStates: try Self.write(world, home: dir.url)))
        #expect(try Self.fact(in: before) == ["w1 10 1", "w2 20 2"])

        // The recipe file a kitchen writes for the step, edited to count each value ten times.
        let recipes = dir.url.appendingPathComponent("recipes")
        let steps = DomainRegistry.sqlSteps(of: Self.fact.recipe)
        #expect(steps.map(\.0) == ["fact"])
        let edited = try #require(steps.first?.1).replacingOccurrences(of: "SUM(r.value)", with: "10 * SUM(r.value)")
        try FileManager.default.createDirectory(
            at: recipes.appendingPathComponent("toy-fact"), withIntermediateDirectories: true)
        try edited.write(to: recipes.appendingPathComponent("toy-fact/fact.sql"), atomically: true, encoding: .utf8)
        let registry = try DomainRegistry([Self.raw, Self.fact]).applyingRecipeOverrides(from: recipes)
        // Unedited, the override gives the code's definition; edited, only the SELECT differs.
        #expect(registry["toy-fact"]!.codeVersion != Self.fact.codeVersion)
        let after = try Mesh(registry: registry, configuration: before.configuration)

        world.rows.append(SourceRow(id: "a", week: "w3", value: 4, batch: "b2", line: 1))
        _ = try await after.run(RunRequest(sourceStates: try Self.write(world, home: dir.url)))
        #expect(try Self.fact(in: after) == ["w1 10 10", "w2 20 20", "w3 10 40"])
        #expect(try Self.message(in: after) == "fact: full build")

        world.rows.append(SourceRow(id: "b", week: "w4", value: 8, batch: "b3", line: 1))
        _ = try await after.run(RunRequest(sourceStates: try Self.write(world, home: dir.url)))
        #expect(try Self.fact(in: after) == ["w1 10 10", "w2 20 20", "w3 10 40", "w4 20 80"])
        #expect(try Self.message(in: after) == "fact: 1 partition(s) rebuilt on the previous version")
    }
}
