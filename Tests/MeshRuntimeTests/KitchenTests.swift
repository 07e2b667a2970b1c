import Foundation
import GRDB
import Logging
import MeshTestSupport
import Testing

@testable import MeshRuntime

/// A production mesh of two domains (a source and a keyed mart) and helpers to work in its kitchens.
struct KitchenFixture {
    let directory: TemporaryDirectory
    let registry: DomainRegistry
    let configuration: MeshConfiguration
    let kitchens: Kitchens
    var state: String

    var home: URL { directory.url }

    init(keepVersions: Int = 5) throws {
        directory = try TemporaryDirectory("kitchen")
        state = try ToyMesh.writeSource("orders", values: [1, 2, 3, 4], home: directory.url)
        let mart = Domain(
            id: "orders-mart", layer: "integrated", owner: ToyMesh.owner, description: "orders doubled",
            inputs: [.domain("orders")],
            outputs: [
                OutputPort(
                    table: "items", grain: ["id"],
                    columns: [ColumnContract("id", "INTEGER"), ColumnContract("doubled", "INTEGER")])
            ],
            recipe: Recipe([
                .sql("build", "CREATE TABLE items AS SELECT value AS id, value * 2 AS doubled FROM orders.items")
            ]),
            tests: [NotNull(table: "items", columns: ["doubled"], severity: .fail)], parameters: ["scale": "1"])
        registry = try DomainRegistry([ToyMesh.source("orders", source: "orders"), mart])
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        configuration = MeshConfiguration(home: directory.url, keepVersions: keepVersions, logger: logger)
        kitchens = Kitchens(home: directory.url)
    }

    func production() throws -> Mesh {
        try Mesh(registry: try kitchens.effectiveRegistry(for: nil, base: registry), configuration: configuration)
    }

    @discardableResult
    func runProduction() async throws -> RunSummary {
        try await production().run(RunRequest(sourceStates: ["orders": state]))
    }

    @discardableResult
    func runKitchen(_ name: String) async throws -> RunSummary {
        let manifest = try kitchens.manifest(name)
        try kitchens.refresh(manifest)
        let mesh = try kitchens.mesh(name, base: registry, configuration: configuration)
        return try await mesh.run(kitchens.runRequest(manifest, sourceStates: ["orders": state]))
    }

    func editSQL(_ name: String, _ sql: String) throws {
        try sql.write(
            to: kitchens.home(of: name).appendingPathComponent("recipes/orders-mart/build.sql"), atomically: true,
            encoding: .utf8)
    }

    /// Everything production has: its history rows and its published files.
    func productionFingerprint() throws -> String {
        let store = try production().store
        let history = try store.pool.read { db in
            try ["mesh_run", "domain_run", "domain_version", "current_version", "test_result", "step_run"].map {
                "\($0)=\(try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM \($0)") ?? 0)"
            }
        }
        let files = try FileManager.default.subpathsOfDirectory(atPath: home.appendingPathComponent("domains").path)
            .sorted()
        return (history + files).joined(separator: " ")
    }

    func mart(in mesh: Mesh) throws -> [[Int]] {
        try mesh.query("SELECT id, doubled FROM orders_mart.items ORDER BY id").rows.map { row in
            row.map { if case .integer(let v) = $0 { return Int(v) } else { return -1 } }
        }
    }
}

@Suite("Kitchens")
struct KitchenTests {
    @Test("create, run with a changed recipe, diff, promote and delete; production untouched until the promotion")
    func createRunDiffPromoteDelete() async throws {
        let f = try KitchenFixture()
        defer { f.directory.remove() }
        try await f.runProduction()
        let before = try f.productionFingerprint()

        let manifest = try f.kitchens.create("triple", domains: ["orders-mart"], registry: f.registry)
        #expect(manifest.from == "production")
        let exported = try String(
            contentsOf: f.kitchens.home(of: "triple").appendingPathComponent("recipes/orders-mart/build.sql"),
            encoding: .utf8)
        #expect(exported.contains("value * 2"))
        // Nothing copied: the kitchen has no published file until it builds.
        #expect(
            !FileManager.default.fileExists(
                atPath: f.kitchens.home(of: "triple").appendingPathComponent("domains").path))
        // Unchanged code: nothing to build.
        #expect(try await f.runKitchen("triple").outcomes["orders-mart"]?.status == .upToDate)

        try f.editSQL(
            "triple", "CREATE TABLE items AS SELECT value AS id, value * 3 AS doubled FROM orders.items WHERE value > 1"
        )
        let run = try await f.runKitchen("triple")
        #expect(run.outcomes["orders-mart"]?.status == .success)
        #expect(run.outcomes["orders"] == nil)
        let kitchenMesh = try f.kitchens.mesh("triple", base: f.registry, configuration: f.configuration)
        #expect(try f.mart(in: kitchenMesh) == [[2, 6], [3, 9], [4, 12]])
        #expect(try f.mart(in: f.production()) == [[1, 2], [2, 4], [3, 6], [4, 8]])
        #expect(try f.productionFingerprint() == before)

        let diff = try f.kitchens.diff("triple", registry: f.registry)
        let table = try #require(diff.domains.first?.tables.first)
        #expect(diff.domains.first?.codeChanged == true)
        #expect(table.table == "items" && table.parentRows == 4 && table.kitchenRows == 3)
        #expect(table.removedRows == 1 && table.addedRows == 0 && table.changedRows == 3)
        #expect(table.sample.first == ["key": "id=2", "parent": "doubled=4", "kitchen": "doubled=6"])
        #expect(diff.domains.first?.tests.first?.parent == "pass")
        #expect(diff.domains.first?.tests.first?.kitchen == "pass")

        let report = try await f.kitchens.promote("triple", base: f.registry, variations: VariationSet())
        #expect(report.promoted.map(\.version) == [2])
        let runID = try #require(report.runID)
        #expect(report.recipeFiles == ["recipes/orders-mart/build.sql"])
        let production = try f.production()
        #expect(try f.mart(in: production) == [[2, 6], [3, 9], [4, 12]])
        let promoted = try #require(try production.store.currentVersion(of: "orders-mart"))
        #expect(promoted.runID == runID && promoted.inputVersions == ["orders": 1])
        #expect(try production.store.run(runID)?.trigger == "kitchen:triple")
        #expect(try production.store.testResults(of: "orders-mart", run: runID).map(\.status) == [.pass])
        #expect(try production.status().first { $0.domain == "orders-mart" }?.sync.state == .inSync)
        // Production now builds the promoted code: its next run has nothing to do.
        #expect(try await f.runProduction().outcomes["orders-mart"]?.status == .upToDate)

        try f.kitchens.delete("triple")
        #expect(!FileManager.default.fileExists(atPath: f.kitchens.home(of: "triple").path))
        #expect(try f.mart(in: f.production()) == [[2, 6], [3, 9], [4, 12]])
    }

    @Test("a promotion is refused when the last kitchen run failed a test, or production moved on; nothing changes")
    func promotionRefusals() async throws {
        var f = try KitchenFixture()
        defer { f.directory.remove() }
        try await f.runProduction()
        try f.kitchens.create("wip", domains: ["orders-mart"], registry: f.registry)
        // Unedited, the kitchen builds what production builds: nothing to promote, and nothing changes.
        let untouched = try f.productionFingerprint()
        let noop = try await f.kitchens.promote("wip", base: f.registry, variations: VariationSet())
        #expect(noop.nothingToPromote)
        #expect(noop.unchanged == ["orders-mart"])
        #expect(try f.productionFingerprint() == untouched)
        try f.editSQL("wip", "CREATE TABLE items AS SELECT value AS id, value * 5 AS doubled FROM orders.items")
        try await f.runKitchen("wip")
        try f.editSQL("wip", "CREATE TABLE items AS SELECT value AS id, NULL AS doubled FROM orders.items")
        #expect(try await f.runKitchen("wip").outcomes["orders-mart"]?.status == .fail)
        let before = try f.productionFingerprint()
        do {
            _ = try await f.kitchens.promote("wip", base: f.registry, variations: VariationSet())
            Issue.record("a kitchen whose last run failed was promoted")
        } catch let error as MeshError {
            #expect(error.message.contains("ended in fail"))
            #expect(error.message.contains("not_null(items.doubled)") || error.message.contains("doubled"))
        }
        #expect(try f.productionFingerprint() == before)

        // Fixed in the kitchen, but production's input moved on meanwhile: the sync check refuses.
        try f.editSQL("wip", "CREATE TABLE items AS SELECT value AS id, value * 5 AS doubled FROM orders.items")
        try await f.runKitchen("wip")
        f.state = try ToyMesh.writeSource("orders", values: [1, 2, 3, 4, 5], home: f.home)
        try await f.runProduction()
        let moved = try f.productionFingerprint()
        do {
            _ = try await f.kitchens.promote("wip", base: f.registry, variations: VariationSet())
            Issue.record("a kitchen built from an old input was promoted")
        } catch let error as MeshError {
            #expect(error.message.contains("orders@v1") && error.message.contains("now v2"), "\(error.message)")
        }
        #expect(try f.productionFingerprint() == moved)
        // Run again (it reads production's current versions), and the promotion goes through.
        try await f.runKitchen("wip")
        let report = try await f.kitchens.promote("wip", base: f.registry, variations: VariationSet())
        #expect(report.promoted.first?.version == 3)
        #expect(try f.mart(in: f.production()).last == [5, 25])
    }

    @Test("two kitchens side by side, one made from the other; pins keep retention off the files they read")
    func kitchensSideBySide() async throws {
        let f = try KitchenFixture(keepVersions: 1)
        defer { f.directory.remove() }
        try await f.runProduction()
        try f.kitchens.create("a", domains: ["orders-mart"], registry: f.registry)
        try f.kitchens.create("b", domains: ["orders-mart"], registry: f.registry)
        try f.editSQL("a", "CREATE TABLE items AS SELECT value AS id, value * 10 AS doubled FROM orders.items")
        try f.editSQL("b", "CREATE TABLE items AS SELECT value AS id, value * 100 AS doubled FROM orders.items")
        try await f.runKitchen("a")
        try await f.runKitchen("b")
        let meshA = try f.kitchens.mesh("a", base: f.registry, configuration: f.configuration)
        let meshB = try f.kitchens.mesh("b", base: f.registry, configuration: f.configuration)
        #expect(try f.mart(in: meshA).first == [1, 10])
        #expect(try f.mart(in: meshB).first == [1, 100])
        #expect(try f.mart(in: f.production()).first == [1, 2])

        // A kitchen made from kitchen a starts from a's code and version.
        try f.kitchens.create(
            "c", from: "a", domains: ["orders-mart"], registry: f.kitchens.effectiveRegistry(for: "a", base: f.registry)
        )
        let meshC = try f.kitchens.mesh("c", base: f.registry, configuration: f.configuration)
        #expect(try f.mart(in: meshC).first == [1, 10])
        #expect(throws: MeshError.self) { try f.kitchens.delete("a") }

        // Production rebuilds with one version kept, but the file the kitchens read stays while they live.
        let pinned = try #require(try f.production().store.currentVersion(of: "orders"))
        let state = try ToyMesh.writeSource("orders", values: [7], home: f.home)
        _ = try await f.production().run(RunRequest(sourceStates: ["orders": state]))
        #expect(FileManager.default.fileExists(atPath: f.home.appendingPathComponent(pinned.path).path))
        #expect(try f.mart(in: meshB).first == [1, 100])
        // a and b move on to production's new version; c (made from a) still reads the old file, which
        // production pinned for c itself, so another production build keeps it.
        try await f.runKitchen("a")
        try await f.runKitchen("b")
        let third = try ToyMesh.writeSource("orders", values: [9], home: f.home)
        _ = try await f.production().run(RunRequest(sourceStates: ["orders": third]))
        #expect(FileManager.default.fileExists(atPath: f.home.appendingPathComponent(pinned.path).path))
        #expect(try f.mart(in: meshC).first == [1, 10])
        try f.kitchens.delete("c")
        try f.kitchens.delete("a")
        try f.kitchens.delete("b")
        let again = try ToyMesh.writeSource("orders", values: [8], home: f.home)
        _ = try await f.production().run(RunRequest(sourceStates: ["orders": again]))
        #expect(!FileManager.default.fileExists(atPath: f.home.appendingPathComponent(pinned.path).path))
        #expect(try f.kitchens.list().isEmpty)
    }

    @Test("bad kitchen names and unknown domains are refused with what to do")
    func badInput() throws {
        let f = try KitchenFixture()
        defer { f.directory.remove() }
        for name in ["", "../escape", "production", "a/b", "-x"] {
            #expect(throws: MeshError.self) {
                try f.kitchens.create(name, domains: ["orders-mart"], registry: f.registry)
            }
        }
        #expect(
            !FileManager.default.fileExists(
                atPath: f.home.deletingLastPathComponent().appendingPathComponent("escape").path))
        do {
            try f.kitchens.create("k", domains: ["orders-mrt"], registry: f.registry)
        } catch let error as MeshError {
            #expect(error.message.contains("orders-mart"))
        }
        do {
            _ = try f.kitchens.manifest("nope")
        } catch let error as MeshError {
            #expect(error.message.contains("no kitchen nope"))
        }
    }
}
