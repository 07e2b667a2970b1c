import Foundation
import GRDB
import MeshTestSupport
import Testing

@testable import MeshRuntime

/// `StepContext.copyInputTable`: a verbatim copy of an input table keeps the input's definition and takes its
/// digest at publication; a copy written to afterwards is digested from its rows; an unchanged input is kept
/// on a build that starts from the previous version.
struct CopyInputTableTests {
    /// `copy`: copies `raw_a.items`, then (when `touch` is set) inserts one more row into the copy.
    static func copier(_ id: DomainID, touch: Bool, copied: IncrementalBuildTests.Flags) -> Domain {
        var domain = Domain(
            id: id, layer: "integrated", owner: ToyMesh.owner, description: "copies raw-a's items",
            inputs: [.domain("raw-a")],
            outputs: [OutputPort(table: "items", columns: [ColumnContract("value", "INTEGER")])],
            recipe: Recipe([
                .swift("copy") { context in
                    try await context.database.write { db in
                        copied.append(try context.copyInputTable("raw_a.items", in: db))
                        if touch { try db.execute(sql: "INSERT INTO items VALUES (-1)") }
                    }
                    return StepReport()
                }
            ]))
        domain.buildsOnPreviousVersion = true
        return domain
    }

    @Test func aVerbatimCopyTakesItsInputsDigestAndAWrittenOneIsDigestedFromItsRows() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let copied = IncrementalBuildTests.Flags()
        let mesh = try ToyMesh.mesh(
            [
                ToyMesh.source("raw-a", source: "a"), Self.copier("verbatim", touch: false, copied: copied),
                Self.copier("written", touch: true, copied: copied),
            ], home: dir.url)
        let first = try ToyMesh.writeSource("a", values: Array(1...50), home: dir.url)
        #expect(try await mesh.run(RunRequest(sourceStates: ["a": first])).failed.isEmpty)
        let raw = try #require(try mesh.store.currentVersion(of: "raw-a"))
        for id: DomainID in ["verbatim", "written"] {
            let version = try #require(try mesh.store.currentVersion(of: id))
            // The published digest is the one a full read of the published file gives.
            let file = try DatabaseQueue(path: mesh.path(of: version).path)
            let read = try await file.read { try Fingerprint.digest(table: "items", in: $0) }
            let definition = try await file.read {
                try String.fetchOne($0, sql: "SELECT sql FROM sqlite_master WHERE name = 'items'")
            }
            try file.close()
            #expect(version.tableDigests["items"] == read.digest && version.rowCounts["items"] == read.rowCount)
            #expect(version.schema["items"] == read.columns)
            // The input's definition, not one derived from a SELECT.
            #expect(definition == "CREATE TABLE items (value INTEGER)")
            if id == "verbatim" {
                #expect(version.tableDigests["items"] == raw.tableDigests["items"])
            } else {
                #expect(version.rowCounts["items"] == 51 && version.tableDigests["items"] != raw.tableDigests["items"])
            }
        }
        #expect(copied.values == [true, true])

        // The input unchanged: the copy the build started from is kept. Then a new input is copied again.
        _ = try await mesh.run(RunRequest(sourceStates: ["a": first], force: ["verbatim"]))
        #expect(copied.values == [true, true, false])
        let second = try ToyMesh.writeSource("a", values: Array(1...60), home: dir.url)
        let run = try await mesh.run(RunRequest(only: ["raw-a", "verbatim"], sourceStates: ["a": second]))
        #expect(copied.values == [true, true, false, true])
        let lines = try mesh.store.logs(of: run.runID, domain: "verbatim").map(\.message)
        #expect(lines.contains { $0.hasSuffix("digested fully: none; digests of their inputs: items") }, "\(lines)")
        let rawNow = try #require(try mesh.store.currentVersion(of: "raw-a"))
        #expect(try mesh.store.currentVersion(of: "verbatim")?.tableDigests["items"] == rawNow.tableDigests["items"])
        #expect(try ToyMesh.values(of: "verbatim", in: mesh) == Array(1...60))
    }
}
