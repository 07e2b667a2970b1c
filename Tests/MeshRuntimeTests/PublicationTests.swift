import Foundation
import GRDB
import MeshTestSupport
import Testing

@testable import MeshRuntime

#if canImport(Glibc)
    import Glibc
#endif

struct PublicationTests {
    @Test func aBuildKilledMidwayLeavesThePreviousVersionServingAndTheNextRunRecovers() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let home = dir.url
        // Version 1, built in this process.
        let state = try ToyMesh.writeSource("s", values: [1, 2, 3], home: home)
        let mesh = try ToyMesh.mesh([ToyMesh.source("slow", source: "s", delay: .seconds(60))], home: home)
        try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
        let quick = try ToyMesh.mesh([ToyMesh.source("slow", source: "s")], home: home)
        _ = try await quick.run(RunRequest(sourceStates: ["s": state]))
        let v1 = try #require(try mesh.store.currentVersion(of: "slow"))

        // A real process starts version 2 and is killed inside its step.
        try ToyMesh.writeSource("s", values: [1, 2, 3, 4], home: home)
        let fixture = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent(
            "mesh-fixture")
        let process = Process()
        process.executableURL = fixture
        process.arguments = [home.path]
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let marker = home.appendingPathComponent("slow.loading")
        let deadline = Date().addingTimeInterval(60)
        while !FileManager.default.fileExists(atPath: marker.path) && Date() < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(FileManager.default.fileExists(atPath: marker.path))
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        #expect(process.terminationReason == .uncaughtSignal)

        // Readers still see version 1; the half-built database is there until recovery.
        #expect(try mesh.store.currentVersion(of: "slow")?.fingerprint == v1.fingerprint)
        #expect(try ToyMesh.values(of: "slow", in: mesh) == [1, 2, 3])
        let domainDirectory = home.appendingPathComponent("domains/slow")
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: domainDirectory.path).contains {
                $0.hasPrefix(".build-")
            })
        // No process holds the writer lock: readers see the dead build as interrupted before any run recovers.
        let interruptedRun = try #require(try mesh.store.domainRuns(of: "slow").first)
        #expect(interruptedRun.status == .interrupted)
        #expect(interruptedRun.message?.contains("the process stopped during the build") == true)
        #expect(try mesh.store.run(interruptedRun.runID)?.status == .interrupted)
        #expect(try mesh.status().first?.lastStatus == .interrupted)

        // The next run (the lock died with the process) recovers and builds version 2.
        let summary = try await quick.run(RunRequest(sourceStates: ["s": "after-kill"]))
        #expect(summary.outcomes["slow"]?.version == 2)
        #expect(try ToyMesh.values(of: "slow", in: mesh) == [1, 2, 3, 4])
        #expect(try mesh.store.domainRuns(in: interruptedRun.runID).first?.status == .interrupted)
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: domainDirectory.path).sorted() == [
                "v000001.sqlite", "v000002.sqlite",
            ])
    }

    @Test func aSecondWriterIsRefusedWithAClearMessageWhileReadersGoOn() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let mesh = try ToyMesh.mesh([ToyMesh.source("a", source: "s")], home: dir.url)
        _ = try await mesh.run(
            RunRequest(sourceStates: ["s": try ToyMesh.writeSource("s", values: [1], home: dir.url)]))
        let held = try MeshLock.acquire(home: dir.url, holder: "run r-test", wait: 0)
        let error = await #expect(throws: MeshError.self) { try await mesh.run(RunRequest()) }
        #expect(error?.code == .busy)
        #expect(error?.message.contains("run r-test") == true)
        #expect(error?.message.contains("--wait") == true)
        // Readers are not blocked by the writer lock.
        #expect(try mesh.status().first?.version == 1)
        #expect(try ToyMesh.values(of: "a", in: mesh) == [1])
        withExtendedLifetime(held) {}
    }

    @Test func aRunningRecordIsRunningOnlyWhileAWriterHoldsTheLock() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let mesh = try ToyMesh.mesh([ToyMesh.source("a", source: "s")], home: dir.url)
        let record = DomainRunRecord(
            runID: "r-live", domain: "a", status: .running, reason: "test", startedAt: Date(), finishedAt: nil,
            durationMS: nil, version: nil, inputVersions: [:], parameters: [:], codeVersion: "c", rowsIn: 0,
            rowsOut: 0, message: nil)
        try mesh.store.save(record)
        do {
            let held = try MeshLock.acquire(home: dir.url, holder: "run r-live", wait: 0)
            #expect(MeshLock.isHeld(home: dir.url))
            #expect(try mesh.store.domainRuns(of: "a").first?.status == .running)
            withExtendedLifetime(held) {}
        }
        #expect(!MeshLock.isHeld(home: dir.url))
        #expect(try mesh.store.domainRuns(of: "a").first?.status == .interrupted)
        // A probe never makes a writer that does not wait fail: it holds the lock for microseconds.
        let probes = Task.detached { for _ in 0..<2000 { _ = MeshLock.isHeld(home: dir.url) } }
        for _ in 0..<20 { withExtendedLifetime(try MeshLock.acquire(home: dir.url, holder: "w", wait: 0)) {} }
        await probes.value
    }

    @Test func sha256HexGivesTheStandardDigests() throws {
        // FIPS 180-2's examples, and a file streamed in chunks gives the same digest as its bytes.
        #expect(
            Fingerprint.sha256Hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(
            Fingerprint.sha256Hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(Fingerprint.hex([0x00, 0x0f, 0xa0, 0xff]) == "000fa0ff")
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let file = dir.url.appendingPathComponent("big.bin")
        let bytes = Data((0..<(3 << 19)).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        try bytes.write(to: file)
        #expect(try Fingerprint.sha256Hex(fileAt: file) == Fingerprint.sha256Hex(bytes))
    }

    @Test func fingerprintsDependOnContentNotOnInsertionOrder() async throws {
        var fingerprints: [String] = []
        for values in [[3, 1, 2], [1, 2, 3], [2, 3, 1]] {
            let dir = try TemporaryDirectory()
            defer { dir.remove() }
            let mesh = try ToyMesh.mesh([ToyMesh.source("a", source: "s")], home: dir.url)
            _ = try await mesh.run(
                RunRequest(sourceStates: ["s": try ToyMesh.writeSource("s", values: values, home: dir.url)]))
            fingerprints.append(try #require(try mesh.store.currentVersion(of: "a")).fingerprint)
        }
        #expect(Set(fingerprints).count == 1)

        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let mesh = try ToyMesh.mesh([ToyMesh.source("a", source: "s")], home: dir.url)
        _ = try await mesh.run(
            RunRequest(sourceStates: ["s": try ToyMesh.writeSource("s", values: [1, 2, 4], home: dir.url)]))
        let other = try #require(try mesh.store.currentVersion(of: "a"))
        #expect(other.fingerprint != fingerprints[0])
        #expect(other.rowCounts == ["items": 3])
        #expect(other.schema == ["items": ["value INTEGER"]])
    }

    @Test func onlyTheLastVersionsAreKeptButEveryRecordStays() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let mesh = try ToyMesh.mesh([ToyMesh.source("a", source: "s")], home: dir.url, keepVersions: 2)
        for n in 1...4 {
            _ = try await mesh.run(
                RunRequest(sourceStates: ["s": try ToyMesh.writeSource("s", values: Array(1...n), home: dir.url)]))
        }
        let files = try FileManager.default.contentsOfDirectory(
            atPath: dir.url.appendingPathComponent("domains/a").path
        ).sorted()
        #expect(files == ["v000003.sqlite", "v000004.sqlite"])
        let versions = try mesh.store.versions(of: "a")
        #expect(versions.map(\.version) == [4, 3, 2, 1])
        #expect(versions.map(\.retained) == [true, true, false, false])
    }

    @Test func workingTablesAreDroppedAndTheOutputContractIsChecked() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let good = Domain(
            id: "good", layer: "raw", owner: ToyMesh.owner, description: "",
            outputs: [OutputPort(table: "items", columns: [ColumnContract("value", "INTEGER")])],
            recipe: Recipe([
                .sql("stage", "CREATE TABLE stg_items AS SELECT 1 AS value"),
                .sql("publish", after: ["stage"], "CREATE TABLE items AS SELECT value FROM stg_items"),
            ]))
        let broken = Domain(
            id: "broken", layer: "raw", owner: ToyMesh.owner, description: "",
            outputs: [
                OutputPort(
                    table: "items", columns: [ColumnContract("value", "INTEGER"), ColumnContract("label", "TEXT")])
            ],
            recipe: Recipe([.sql("publish", "CREATE TABLE items AS SELECT 1 AS value")]))
        let mesh = try ToyMesh.mesh([good, broken], home: dir.url)
        let summary = try await mesh.run(RunRequest())
        #expect(summary.outcomes["good"]?.status == .success)
        let (queue, _) = try mesh.snapshot(attaching: ["good"])
        let tables = try await queue.read { db in
            try String.fetchAll(
                db, sql: "SELECT name FROM good.sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        }
        #expect(tables == ["items"])
        #expect(summary.outcomes["broken"]?.status == .error)
        #expect(summary.outcomes["broken"]?.message?.contains("lacks column label") == true)
    }

    @Test func publishedVersionsCannotBeWrittenThroughASnapshot() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let mesh = try ToyMesh.mesh([ToyMesh.source("a", source: "s")], home: dir.url)
        _ = try await mesh.run(
            RunRequest(sourceStates: ["s": try ToyMesh.writeSource("s", values: [1], home: dir.url)]))
        let (queue, _) = try mesh.snapshot(attaching: ["a"])
        #expect(throws: DatabaseError.self) {
            try queue.writeWithoutTransaction { db in try db.execute(sql: "DELETE FROM a.items") }
        }
        #expect(try ToyMesh.values(of: "a", in: mesh) == [1])
    }

    @Test func aVersionRecordReadsBackAsItWasPublished() throws {
        let dir = try TemporaryDirectory("version-record")
        defer { dir.remove() }
        let store = try RuntimeStore(home: dir.url)
        let published = Date(timeIntervalSince1970: 1_796_000_000.125)
        var record = VersionRecord(
            domain: "orders-mart", version: 3, fingerprint: "f00d", path: "domains/orders-mart/v000003.sqlite",
            runID: RunID("r1"), publishedAt: published, status: .warn, codeVersion: "c0de", codeCommit: nil,
            variation: "default", parameters: ["window": "13", "quote": "a \"b\" \\ é"],
            inputVersions: ["orders": 7], upstreamVersions: ["orders": 7, "landing": 2], sourceStates: ["s": "abc"],
            rowCounts: ["items": 3, "empty": 0], schema: ["items": ["id INTEGER", "name TEXT"], "empty": []],
            retained: true, tableDigests: ["items": "d1", "empty": "d0"])
        let run = DomainRunRecord(
            runID: RunID("r1"), domain: "orders-mart", status: .warn, reason: "test", startedAt: published,
            finishedAt: published, durationMS: 1, version: 3, inputVersions: ["orders": 7], parameters: [:],
            codeVersion: "c0de", rowsIn: 0, rowsOut: 3, message: nil)
        try store.publish(record, domainRun: run)
        // A second record of the same schema text, to read through the cache of decoded columns.
        record.version = 4
        record.rowCounts["items"] = 4
        try store.publish(record, domainRun: run)
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        encoder.dateEncodingStrategy = .millisecondsSince1970
        for version in [3, 4, 3] {
            var expected = record
            expected.version = version
            expected.rowCounts["items"] = version
            let read = try #require(try store.version("orders-mart", version))
            #expect(try encoder.encode(read) == encoder.encode(expected))
        }
        #expect(try store.currentVersion(of: "orders-mart")?.version == 4)
    }
}
