import Foundation
import MeshPostgres
import MeshRuntime
import MeshTestSupport
import PostgresNIO
import Testing

/// The PostgreSQL engine on small meshes: loading, switching, retention, and every way a publication can
/// fail leaving the previous version serving in both engines.
@Suite(.serialized)
struct PostgresEngineTests {
    static let totals = ToyMesh.derived(
        "totals", from: ["raw-a"], sql: "CREATE TABLE items AS SELECT value * 2 AS value FROM raw_a.items",
        tests: [CustomSQLTest("small_values", sql: "SELECT * FROM items WHERE value > 1000")])

    static func mesh(home: URL, engine: (any ServingEngine)?, keepVersions: Int = 5, extra: [Domain] = []) throws
        -> Mesh
    {
        let base = try ToyMesh.mesh(
            [ToyMesh.source("raw-a", source: "a"), totals] + extra, home: home, keepVersions: keepVersions)
        var configuration = base.configuration
        configuration.servingEngines = engine.map { [$0] } ?? []
        return try Mesh(registry: base.registry, configuration: configuration)
    }

    static func run(_ mesh: Mesh, values: [Int]) async throws -> RunSummary {
        let state = try ToyMesh.writeSource("a", values: values, home: mesh.home)
        return try await mesh.run(RunRequest(sourceStates: ["a": state]))
    }

    @Test func publishesEachVersionInItsSchemaAndSwitchesTheViews() async throws {
        let dir = try TemporaryDirectory("pg-publish")
        defer { dir.remove() }
        let database = try await TestServer.database()
        let engine = try database.engine()
        let mesh = try Self.mesh(home: dir.url, engine: engine, keepVersions: 2)

        #expect(try await Self.run(mesh, values: [1, 2, 3]).failed.isEmpty)
        #expect(
            try await TestServer.rows("SELECT value FROM totals.items ORDER BY 1", in: engine) == [["2"], ["4"], ["6"]])
        // Raw domains are not served: only the layer chosen.
        #expect(
            try await TestServer.rows(
                "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'raw_a%'", in: engine) == [["0"]])

        #expect(try await Self.run(mesh, values: [1, 2, 3, 4]).failed.isEmpty)
        #expect(try await Self.run(mesh, values: [5]).failed.isEmpty)
        #expect(try await TestServer.rows("SELECT value FROM totals.items", in: engine) == [["10"]])
        // The catalog says what is served, with the version record the sync check reads.
        let served = try await engine.served()
        let current = try mesh.store.currentVersions()
        #expect(served["totals"]?.version == 3)
        #expect(served["totals"]?.fingerprint == current["totals"]?.fingerprint)
        #expect(served["totals"]?.inputVersions == ["raw-a": 3])
        // Version schemas beyond the two newest are dropped; the switches are logged.
        #expect(
            try await TestServer.rows(
                "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'totals\\_\\_v%' ORDER BY 1", in: engine)
                == [["totals__v000002"], ["totals__v000003"]])
        #expect(
            try await TestServer.rows(
                "SELECT version FROM mesh_catalog.publication WHERE domain = 'totals' ORDER BY switched_at", in: engine)
                == [["1"], ["2"], ["3"]])
        // A query names the served versions it read, as on SQLite.
        let result = try await engine.query("SELECT SUM(value) AS total FROM totals.items")
        #expect(result.versions == ["totals": 3])
        #expect(result.rows == [[.integer(10)]])
        await database.drop()
    }

    @Test func aFailedTestLeavesThePreviousVersionServingInBothEngines() async throws {
        let dir = try TemporaryDirectory("pg-fail")
        defer { dir.remove() }
        let database = try await TestServer.database()
        let engine = try database.engine()
        let mesh = try Self.mesh(home: dir.url, engine: engine)
        #expect(try await Self.run(mesh, values: [1, 2]).failed.isEmpty)

        let summary = try await Self.run(mesh, values: [1, 2, 900])  // 1800 > 1000: small_values fails
        #expect(summary.outcomes["totals"]?.status == .fail)
        #expect(try mesh.store.currentVersions()["totals"]?.version == 1)
        #expect(try await engine.served()["totals"]?.version == 1)
        #expect(try await TestServer.rows("SELECT value FROM totals.items ORDER BY 1", in: engine) == [["2"], ["4"]])
        // Nothing half-loaded is left behind.
        #expect(
            try await TestServer.rows(
                "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'totals\\_\\_v%'", in: engine) == [["1"]])
        await database.drop()
    }

    @Test func anUnreachableServerFailsTheDomainAndPublishesNothing() async throws {
        let dir = try TemporaryDirectory("pg-down")
        defer { dir.remove() }
        let engine = try PostgresEngine(
            settings: PostgresSettings(url: "postgres://mesh@127.0.0.1:1/nowhere", layers: ["integrated"]))
        let mesh = try Self.mesh(home: dir.url, engine: engine)
        let summary = try await Self.run(mesh, values: [1])
        let outcome = try #require(summary.outcomes["totals"])
        #expect(outcome.status == .error)
        #expect(
            outcome.message?.contains("cannot connect to PostgreSQL at postgres://mesh@127.0.0.1:1/nowhere") == true)
        // The raw domain, which the engine does not serve, published; the served one did not, anywhere.
        let current = try mesh.store.currentVersions()
        #expect(current["raw-a"]?.version == 1)
        #expect(current["totals"] == nil)
        let files = try FileManager.default.contentsOfDirectory(
            atPath: dir.url.appendingPathComponent("domains/totals").path)
        #expect(files.filter { $0.hasSuffix(".sqlite") }.isEmpty)
    }

    @Test func aSwitchThatFailsMidwayChangesNothing() async throws {
        let dir = try TemporaryDirectory("pg-switch")
        defer { dir.remove() }
        let database = try await TestServer.database()
        let engine = try database.engine()
        let mesh = try Self.mesh(home: dir.url, engine: engine)
        #expect(try await Self.run(mesh, values: [1, 2]).failed.isEmpty)
        // An analyst's view on the served view: a new version whose column type changes must replace the
        // served view, which PostgreSQL refuses while the analyst's view depends on it.
        try await engine.withConnection { connection in
            try await connection.query(
                "CREATE VIEW public.my_totals AS SELECT value FROM totals.items", logger: TestServer.logger)
        }
        let changed = ToyMesh.derived(
            "totals", from: ["raw-a"], sql: "CREATE TABLE items AS SELECT value * 2.5 AS value FROM raw_a.items")
        let remade = try Self.mesh(home: dir.url, engine: engine, extra: [])
        let registry = try DomainRegistry([ToyMesh.source("raw-a", source: "a"), changed])
        let mesh2 = try Mesh(registry: registry, configuration: remade.configuration)
        let summary = try await Self.run(mesh2, values: [1, 2])
        let outcome = try #require(summary.outcomes["totals"])
        #expect(outcome.status == .error)
        #expect(outcome.message?.contains("could not switch postgresql") == true)
        #expect(outcome.message?.contains("depend") == true)
        // Readers still see version 1, whole, and the history agrees.
        #expect(try await TestServer.rows("SELECT value FROM totals.items ORDER BY 1", in: engine) == [["2"], ["4"]])
        #expect(try await engine.served()["totals"]?.version == 1)
        #expect(try mesh2.store.currentVersions()["totals"]?.version == 1)
        #expect(
            !FileManager.default.fileExists(
                atPath: dir.url.appendingPathComponent("domains/totals/v000002.sqlite").path))
        await database.drop()
    }

    @Test func aCopyThatDiffersFromTheBuildIsRefused() async throws {
        let dir = try TemporaryDirectory("pg-digest")
        defer { dir.remove() }
        let database = try await TestServer.database()
        let engine = try database.engine()
        // SQLite keeps 2 as an integer and 2.5 as a real in one column; PostgreSQL's column is double
        // precision, so 2 comes back as 2.0: not the same value, and the digest says so.
        let mixed = ToyMesh.derived(
            "totals", from: ["raw-a"],
            sql: "CREATE TABLE items AS SELECT value AS value FROM raw_a.items UNION ALL SELECT 2.5")
        let base = try ToyMesh.mesh([ToyMesh.source("raw-a", source: "a"), mixed], home: dir.url)
        var configuration = base.configuration
        configuration.servingEngines = [engine]
        let mesh = try Mesh(registry: base.registry, configuration: configuration)
        let summary = try await Self.run(mesh, values: [2])
        let outcome = try #require(summary.outcomes["totals"])
        #expect(outcome.status == .error)
        #expect(outcome.message?.contains("the copy of totals.items in PostgreSQL differs from the build") == true)
        #expect(try mesh.store.currentVersions()["totals"] == nil)
        #expect(try await engine.served()["totals"] == nil)
        await database.drop()
    }

    /// Two large versions staged at once: each table's reader blocks on SQLite while COPY drains it, and must
    /// never starve the tasks that drain (a first version ran the readers on the concurrency pool and hung).
    @Test(.timeLimit(.minutes(2))) func largeVersionsStageConcurrently() async throws {
        let dir = try TemporaryDirectory("pg-large")
        defer { dir.remove() }
        let database = try await TestServer.database()
        let engine = try database.engine()
        // About 12 MB of COPY text per domain: more than the reader's buffer of 8 chunks of 1 MiB.
        let sql = """
            CREATE TABLE items AS WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 400000)
            SELECT i + (SELECT COUNT(*) FROM raw_a.items) AS value, printf('%024d', i) AS label FROM n
            """
        let left = ToyMesh.derived("alpha", from: ["raw-a"], sql: sql)
        let right = ToyMesh.derived("beta", from: ["raw-a"], sql: sql)
        let mesh = try Self.mesh(home: dir.url, engine: engine, extra: [left, right])
        let summary = try await Self.run(mesh, values: [1])
        #expect(summary.failed.isEmpty, "\(summary.outcomes.values.compactMap(\.message))")
        #expect(
            try await TestServer.rows("SELECT COUNT(*), MAX(label) FROM alpha.items", in: engine) == [
                ["400000", String(format: "%024d", 400000)]
            ])
        #expect(try await TestServer.rows("SELECT COUNT(*) FROM beta.items", in: engine) == [["400000"]])
        await database.drop()
    }

    @Test func anExistingMeshCatchesUp() async throws {
        let dir = try TemporaryDirectory("pg-catchup")
        defer { dir.remove() }
        let database = try await TestServer.database()
        let engine = try database.engine()
        let plain = try Self.mesh(home: dir.url, engine: nil)
        #expect(try await Self.run(plain, values: [3, 4]).failed.isEmpty)
        #expect(try await engine.served().isEmpty)

        #expect(try await engine.catchUp(plain) == ["totals@v1"])
        #expect(try await TestServer.rows("SELECT value FROM totals.items ORDER BY 1", in: engine) == [["6"], ["8"]])
        #expect(try await engine.catchUp(plain).isEmpty)
        // Kitchens never publish to production's server.
        let kitchens = Kitchens(home: dir.url)
        try kitchens.create("k", domains: ["totals"], registry: plain.registry)
        var configuration = plain.configuration
        configuration.servingEngines = [engine]
        let kitchenMesh = try kitchens.mesh("k", base: plain.registry, configuration: configuration)
        #expect(kitchenMesh.configuration.servingEngines.isEmpty)
        await database.drop()
    }
}
