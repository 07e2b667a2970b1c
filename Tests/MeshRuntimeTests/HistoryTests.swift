import Foundation
import GRDB
import MeshTestSupport
import Testing

@testable import MeshRuntime

/// A run whose history cannot be written fails, says so naming the runtime database, and publishes nothing:
/// the previous version keeps serving.
struct HistoryTests {
    /// A raw domain whose step writes a log line long enough to need pages of its own in the runtime database.
    static func chatty(_ id: DomainID) -> Domain {
        Domain(
            id: id, layer: "raw", owner: ToyMesh.owner, description: "a step that logs at length",
            inputs: [.source("s")],
            outputs: [OutputPort(table: "items", grain: ["value"], columns: [ColumnContract("value", "INTEGER")])],
            recipe: Recipe([
                .swift("load") { context in
                    context.log(String(repeating: "a long line of the build ", count: 800))
                    let values = try String(
                        contentsOf: context.home.appendingPathComponent("sources/s.txt"), encoding: .utf8
                    ).split(separator: "\n").compactMap { Int($0) }
                    try await context.database.write { db in
                        try db.execute(sql: "CREATE TABLE items (value INTEGER)")
                        for value in values { try db.execute(sql: "INSERT INTO items VALUES (?)", arguments: [value]) }
                    }
                    return StepReport(rowsIn: values.count, rowsOut: values.count)
                }
            ]))
    }

    /// Version 1 of `a`, built and serving.
    static func firstVersion(home: URL) async throws -> Mesh {
        let mesh = try ToyMesh.mesh([chatty("a")], home: home)
        let state = try ToyMesh.writeSource("s", values: [1, 2, 3], home: home)
        let summary = try await mesh.run(RunRequest(sourceStates: ["s": state]))
        #expect(summary.outcomes["a"]?.version == 1)
        try ToyMesh.writeSource("s", values: [1, 2, 3, 4], home: home)
        return mesh
    }

    /// What a run that could not record everything said: the domain's message, or the run's error.
    static func failure(of mesh: Mesh) async throws -> String {
        do {
            let summary = try await mesh.run(RunRequest(force: ["a"]))
            #expect(summary.status == .fail)
            let outcome = try #require(summary.outcomes["a"])
            #expect(outcome.status == .error)
            #expect(outcome.version == 1)
            return outcome.message ?? ""
        } catch let error as MeshError {
            return error.message
        }
    }

    /// Version 1 still serves, with its rows, and no file of a version 2 is left.
    static func expectFirstVersionServing(_ mesh: Mesh, home: URL) throws {
        let reader = try RuntimeStore(home: home)
        #expect(try reader.currentVersion(of: "a")?.version == 1)
        #expect(try ToyMesh.values(of: "a", in: mesh) == [1, 2, 3])
        #expect(!FileManager.default.fileExists(atPath: home.appendingPathComponent("domains/a/v000002.sqlite").path))
    }

    @Test func aRuntimeDatabaseThatCannotGrowFailsTheRunAndThePreviousVersionKeepsServing() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let mesh = try await Self.firstVersion(home: dir.url)
        // SQLite answers SQLITE_FULL when the file may not grow, as on a full disk. The limit is a setting of
        // the connection: the pool's one writer keeps it for the next run.
        try await mesh.store.pool.write { db in
            let pages = try #require(try Int.fetchOne(db, sql: "PRAGMA page_count"))
            try db.execute(sql: "PRAGMA max_page_count = \(pages)")
        }
        let message = try await Self.failure(of: mesh)
        #expect(message.contains("run history"), "\(message)")
        #expect(message.contains("the disk is full"), "\(message)")
        #expect(message.contains(RuntimeStore.file(in: dir.url).path), "\(message)")
        try Self.expectFirstVersionServing(mesh, home: dir.url)
    }

    @Test func aStepTheHistoryCannotRecordStopsTheBuild() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let mesh = try await Self.firstVersion(home: dir.url)
        try await mesh.store.pool.write { db in
            try db.execute(
                sql: "CREATE TRIGGER refuse_steps BEFORE INSERT ON step_run BEGIN SELECT RAISE(ABORT, 'no room'); END")
        }
        let message = try await Self.failure(of: mesh)
        #expect(message.hasPrefix("the run history could not record step load of a: "), "\(message)")
        #expect(message.contains(RuntimeStore.file(in: dir.url).path), "\(message)")
        #expect(message.hasSuffix("the previous version keeps serving"), "\(message)")
        #expect(try mesh.store.domainRuns(of: "a").first?.status == .error)
        try Self.expectFirstVersionServing(mesh, home: dir.url)
    }

    @Test func aVersionTheHistoryCannotRecordIsNotPublishedAndItsFileGoes() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let mesh = try await Self.firstVersion(home: dir.url)
        try await mesh.store.pool.write { db in
            try db.execute(
                sql:
                    "CREATE TRIGGER refuse_versions BEFORE INSERT ON domain_version BEGIN SELECT RAISE(ABORT, 'no room'); END"
            )
        }
        let message = try await Self.failure(of: mesh)
        #expect(message.hasPrefix("the run history could not record the new version v2 of a: "), "\(message)")
        #expect(message.contains(RuntimeStore.file(in: dir.url).path), "\(message)")
        #expect(try mesh.store.domainRuns(of: "a").first?.status == .error)
        try Self.expectFirstVersionServing(mesh, home: dir.url)
    }

    @Test func retentionThatCannotBeRecordedFailsTheRunAndKeepsTheFile() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let home = dir.url
        let mesh = try ToyMesh.mesh([Self.chatty("a")], home: home, keepVersions: 1)
        let state = try ToyMesh.writeSource("s", values: [1], home: home)
        _ = try await mesh.run(RunRequest(sourceStates: ["s": state]))
        try await mesh.store.pool.write { db in
            try db.execute(
                sql:
                    "CREATE TRIGGER refuse_retention BEFORE UPDATE OF retained ON domain_version BEGIN SELECT RAISE(ABORT, 'no room'); END"
            )
        }
        let summary = try await mesh.run(RunRequest(force: ["a"]))
        // Version 2 is published; retention could not record that version 1 goes, so its file stays.
        #expect(summary.outcomes["a"]?.version == 2)
        #expect(summary.status == .fail)
        let run = try #require(try mesh.store.run(summary.runID))
        #expect(run.status == .fail)
        #expect(
            run.message?.contains("the run history could not record that v1 of a is no longer retained") == true,
            "\(run.message ?? "")")
        #expect(FileManager.default.fileExists(atPath: home.appendingPathComponent("domains/a/v000001.sqlite").path))
        #expect(try mesh.store.version("a", 1)?.retained == true)
    }
}
