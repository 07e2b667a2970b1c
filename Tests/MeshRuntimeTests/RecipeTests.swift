import Foundation
import GRDB
import MeshTestSupport
import Testing

@testable import MeshRuntime

struct RecipeTests {
    //   stage ─▶ transform { clean ─▶ enrich } ─▶ publish
    //     └──▶ export (command) ──────────────────┘
    @Test func nestedRecipesAndCommandsRunStepByStepWithTheirTests() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let transform = Recipe([
            .sql("clean", "CREATE TABLE clean AS SELECT value FROM stage WHERE value IS NOT NULL"),
            .sql(
                "enrich", after: ["clean"], tests: [NotNull(table: "enriched", columns: ["label"])],
                "CREATE TABLE enriched AS SELECT value, 'n' || value AS label FROM clean"),
        ])
        let domain = Domain(
            id: "recipe", layer: "integrated", owner: ToyMesh.owner, description: "",
            outputs: [
                OutputPort(
                    table: "items", columns: [ColumnContract("value", "INTEGER"), ColumnContract("label", "TEXT")])
            ],
            recipe: Recipe([
                .sql("stage", "CREATE TABLE stage AS SELECT 1 AS value UNION ALL SELECT NULL UNION ALL SELECT 3"),
                .recipe("transform", after: ["stage"], transform),
                .command(
                    "export", after: ["stage"], "/bin/sh",
                    ["-c", "echo \"$MESH_DOMAIN {greeting}\" > out.txt && cat out.txt"]),
                .sql(
                    "publish", after: ["transform", "export"], "CREATE TABLE items AS SELECT value, label FROM enriched"
                ),
            ]),
            parameters: ["greeting": "hello"])
        let mesh = try ToyMesh.mesh([domain], home: dir.url)
        let summary = try await mesh.run(RunRequest())
        #expect(summary.outcomes["recipe"]?.status == .success)
        let steps = try mesh.store.steps(of: "recipe", in: summary.runID)
        #expect(
            Set(steps.map(\.step.rawValue)) == [
                "stage", "transform.clean", "transform.enrich", "transform", "export", "publish",
            ])
        #expect(steps.last?.step == "publish")
        let logs = try mesh.store.logs(of: summary.runID, domain: "recipe")
        #expect(logs.contains { $0.message == "recipe hello" && $0.step == "export" })
        let tests = try mesh.store.testResults(of: "recipe", run: summary.runID)
        #expect(tests.map(\.step) == ["transform.enrich"])
        #expect(
            domain.recipe.allStepIDs.map(\.rawValue) == [
                "stage", "transform", "transform.clean", "transform.enrich", "export", "publish",
            ])
    }

    @Test func aFailingStepTestStopsTheRecipeAndLaterStepsAreSkipped() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let domain = Domain(
            id: "stops", layer: "raw", owner: ToyMesh.owner, description: "",
            outputs: [OutputPort(table: "items", columns: [ColumnContract("value", "INTEGER")])],
            recipe: Recipe([
                .sql(
                    "stage", tests: [Unique(table: "stage", grain: ["value"])],
                    "CREATE TABLE stage AS SELECT 1 AS value UNION ALL SELECT 1"),
                .sql("publish", after: ["stage"], "CREATE TABLE items AS SELECT DISTINCT value FROM stage"),
            ]))
        let mesh = try ToyMesh.mesh([domain], home: dir.url)
        let summary = try await mesh.run(RunRequest())
        #expect(summary.outcomes["stops"]?.status == .fail)
        #expect(
            summary.outcomes["stops"]?.message == "test unique(stage: value) after step stage fail: 1 offending row")
        let steps = try mesh.store.steps(of: "stops", in: summary.runID)
        #expect(steps.map(\.status) == [.success, .skipped])
        #expect(
            try mesh.store.testResults(of: "stops", run: summary.runID).first?.sample == [
                ["value": "1", "copies": "2"]
            ])
    }

    @Test func aThrowingCommandIsAnErrorNamingTheCommand() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let domain = Domain(
            id: "cmd", layer: "raw", owner: ToyMesh.owner, description: "",
            outputs: [OutputPort(table: "items", columns: [ColumnContract("value", "INTEGER")])],
            recipe: Recipe([.command("tool", "/bin/sh", ["-c", "echo 'bad input on line 3' >&2; exit 4"])]))
        let mesh = try ToyMesh.mesh([domain], home: dir.url)
        let summary = try await mesh.run(RunRequest())
        #expect(summary.outcomes["cmd"]?.status == .error)
        #expect(summary.outcomes["cmd"]?.message?.contains("exited with status 4: bad input on line 3") == true)
    }

    @Test func aRecipeWithACycleOrAnUnknownStepIsRejectedAtRegistration() throws {
        let cyclic = Domain(
            id: "cyclic", layer: "raw", owner: ToyMesh.owner, description: "", outputs: [],
            recipe: Recipe([.sql("a", after: ["b"], "SELECT 1"), .sql("b", after: ["a"], "SELECT 1")]))
        #expect(throws: MeshError.self) { try DomainRegistry([cyclic]) }
        let dangling = Domain(
            id: "dangling", layer: "raw", owner: ToyMesh.owner, description: "", outputs: [],
            recipe: Recipe([.sql("a", after: ["missing"], "SELECT 1")]))
        do {
            _ = try DomainRegistry([dangling])
            Issue.record("expected an error")
        } catch let error as MeshError {
            #expect(error.message == "domain dangling: step a runs after missing, which is not a step of the recipe")
        }
    }

    @Test func variationsResolveParametersAndEveryRunRecordsThem() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let file = dir.url.appendingPathComponent("variations.json")
        try #"""
        { "default": "prod",
          "variations": {
            "prod": { "parameters": { "limit": "3" } },
            "dev":  { "parameters": { "limit": "1", "unrelated": "x" }, "domains": { "limited": { "offset": "1" } } } } }
        """#.write(to: file, atomically: true, encoding: .utf8)
        let variations = try VariationSet.load(from: file)
        let domain = ToyMesh.derived(
            "limited", from: ["a"],
            sql: "CREATE TABLE items AS SELECT value FROM a.items ORDER BY value LIMIT :limit OFFSET :offset",
            parameters: ["limit": "10", "offset": "0"])
        let mesh = try ToyMesh.mesh([ToyMesh.source("a", source: "s"), domain], home: dir.url, variations: variations)
        let state = try ToyMesh.writeSource("s", values: [1, 2, 3, 4, 5], home: dir.url)
        _ = try await mesh.run(RunRequest(sourceStates: ["s": state]))
        #expect(try ToyMesh.values(of: "limited", in: mesh) == [1, 2, 3])
        let dev = try await mesh.run(RunRequest(variation: "dev", sourceStates: ["s": state]))
        #expect(dev.outcomes["limited"]?.reason == "parameters changed")
        #expect(try ToyMesh.values(of: "limited", in: mesh) == [2])
        let version = try #require(try mesh.store.currentVersion(of: "limited"))
        #expect(version.parameters == ["limit": "1", "offset": "1"])
        #expect(version.variation == "dev")
        #expect(try mesh.store.run(dev.runID)?.variation == "dev")
        let error = await #expect(throws: MeshError.self) { try await mesh.run(RunRequest(variation: "canary")) }
        #expect(error?.message == "unknown variation 'canary'; the variations are: dev, prod")
    }

    @Test func changingTheRecipeChangesTheCodeVersionAndRebuilds() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let v1 = ToyMesh.derived("d", from: [], sql: "CREATE TABLE items AS SELECT 1 AS value")
        let v2 = ToyMesh.derived("d", from: [], sql: "CREATE TABLE items AS SELECT 2 AS value")
        #expect(v1.codeVersion != v2.codeVersion)
        _ = try await ToyMesh.mesh([v1], home: dir.url).run(RunRequest())
        let summary = try await ToyMesh.mesh([v2], home: dir.url).run(RunRequest())
        #expect(summary.outcomes["d"]?.reason == "code changed (\(v1.codeVersion) → \(v2.codeVersion))")
    }
}
