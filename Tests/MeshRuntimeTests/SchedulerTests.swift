import Foundation
import GRDB
import Logging
import MeshTestSupport
import Testing

@testable import MeshRuntime

struct SchedulerTests {
    //   s ─▶ a ─▶ b ─▶ c
    @Test func chainBuildsInOrderThenOnlyWhatChanged() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let home = dir.url
        let mesh = try ToyMesh.mesh(
            [
                ToyMesh.source("a", source: "s"),
                ToyMesh.derived("b", from: ["a"], sql: "CREATE TABLE items AS SELECT value * 10 AS value FROM a.items"),
                ToyMesh.derived("c", from: ["b"], sql: "CREATE TABLE items AS SELECT value + 1 AS value FROM b.items"),
            ], home: home)
        let state1 = try ToyMesh.writeSource("s", values: [1, 2], home: home)
        let first = try await mesh.run(RunRequest(sourceStates: ["s": state1]))
        #expect(first.status == .success)
        #expect(first.built == ["a", "b", "c"])
        #expect(try ToyMesh.values(of: "c", in: mesh) == [11, 21])

        let second = try await mesh.run(RunRequest(sourceStates: ["s": state1]))
        #expect(second.built.isEmpty)
        #expect(second.outcomes.values.allSatisfy { $0.status == .upToDate })

        let state2 = try ToyMesh.writeSource("s", values: [1, 2, 3], home: home)
        let third = try await mesh.run(RunRequest(sourceStates: ["s": state2]))
        #expect(third.built == ["a", "b", "c"])
        #expect(third.outcomes["a"]?.reason == "source s changed")
        #expect(third.outcomes["b"]?.reason == "input a v1 → v2")
        #expect(third.outcomes["c"]?.inputVersions == ["b": 2])
        #expect(try ToyMesh.values(of: "c", in: mesh) == [11, 21, 31])
        // Every domain of one run shares the run id.
        let runs = try mesh.store.domainRuns(in: third.runID)
        #expect(runs.filter { $0.status == .success }.map(\.domain).sorted() == ["a", "b", "c"])
    }

    //   s ─▶ a (slow export) ─▶ b
    //        └──▶ c (failing export)
    @Test func afterPublicationHooksRunBesideTheRunWhichWaitsForThem() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let marker = dir.url.appendingPathComponent("exported.txt")
        var a = ToyMesh.source("a", source: "s")
        a.afterPublish = { published in
            try await Task.sleep(for: .milliseconds(400))
            try "v\(published.record.version) \(Date().timeIntervalSince1970)".write(
                to: marker, atomically: true, encoding: .utf8)
        }
        var c = ToyMesh.derived("c", from: ["a"], sql: "CREATE TABLE items AS SELECT value FROM a.items")
        c.afterPublish = { _ in throw MeshError(.storage, "the export folder is read-only") }
        let mesh = try ToyMesh.mesh(
            [a, ToyMesh.derived("b", from: ["a"], sql: "CREATE TABLE items AS SELECT value FROM a.items"), c],
            home: dir.url)
        let state = try ToyMesh.writeSource("s", values: [1, 2], home: dir.url)
        let summary = try await mesh.run(RunRequest(sourceStates: ["s": state]))
        #expect(summary.status == .success)
        // The run returned once the export was written, ...
        let written = try String(contentsOf: marker, encoding: .utf8).split(separator: " ")
        #expect(written.first == "v1")
        let exportedAt = try #require(Double(written.last ?? ""))
        // ... but b, a reader of a, did not wait for it: b's build started before the export ended.
        let b = try #require(try mesh.store.domainRuns(in: summary.runID).first { $0.domain == "b" })
        #expect(b.startedAt.timeIntervalSince1970 < exportedAt)
        // A failing export is a warning in c's log; c's version stays published.
        #expect(try mesh.store.currentVersion(of: "c")?.version == 1)
        let logs = try mesh.store.logs(of: summary.runID, domain: "c").map(\.message)
        #expect(logs.contains { $0.contains("warning: after publication") && $0.contains("read-only") }, "\(logs)")
    }

    //        ┌─▶ left ──┐
    //   s ─▶ a          ├─▶ join
    //        └─▶ right ─┘
    @Test func diamondJoinsOneVersionOfTheSharedUpstream() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let mesh = try ToyMesh.mesh(
            [
                ToyMesh.source("a", source: "s"),
                ToyMesh.derived(
                    "left", from: ["a"], sql: "CREATE TABLE items AS SELECT value FROM a.items WHERE value % 2 = 0"),
                ToyMesh.derived(
                    "right", from: ["a"], sql: "CREATE TABLE items AS SELECT value FROM a.items WHERE value % 2 = 1"),
                ToyMesh.derived("join", from: ["left", "right"], sql: ToyMesh.union(["left", "right"])),
            ], home: dir.url)
        for round in 1...2 {
            let state = try ToyMesh.writeSource("s", values: Array(1...(4 * round)), home: dir.url)
            let summary = try await mesh.run(RunRequest(sourceStates: ["s": state]))
            #expect(summary.built == ["a", "join", "left", "right"])
            let join = try #require(try mesh.store.currentVersion(of: "join"))
            #expect(join.upstreamVersions == ["a": round, "left": round, "right": round])
            #expect(try ToyMesh.values(of: "join", in: mesh) == Array(1...(4 * round)))
        }
    }

    //   s ─▶ a ─▶ b (fail test) ─▶ c
    //        └──▶ d ─▶ e
    @Test func failureStopsItsBranchOnlyAndKeepsThePreviousVersionServing() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let mesh = try ToyMesh.mesh(
            [
                ToyMesh.source("a", source: "s"),
                ToyMesh.derived(
                    "b", from: ["a"], sql: "CREATE TABLE items AS SELECT value FROM a.items",
                    tests: [CustomSQLTest("no_negative", sql: "SELECT * FROM items WHERE value < 0")]),
                ToyMesh.derived("c", from: ["b"], sql: "CREATE TABLE items AS SELECT value FROM b.items"),
                ToyMesh.derived("d", from: ["a"], sql: "CREATE TABLE items AS SELECT value FROM a.items"),
                ToyMesh.derived("e", from: ["d"], sql: "CREATE TABLE items AS SELECT value FROM d.items"),
            ], home: dir.url)
        _ = try await mesh.run(
            RunRequest(sourceStates: ["s": try ToyMesh.writeSource("s", values: [1], home: dir.url)]))
        let summary = try await mesh.run(
            RunRequest(sourceStates: ["s": try ToyMesh.writeSource("s", values: [1, -5], home: dir.url)]))
        #expect(summary.status == .fail)
        #expect(summary.outcomes["b"]?.status == .fail)
        #expect(summary.outcomes["b"]?.message?.contains("no_negative") == true)
        #expect(summary.outcomes["c"]?.status == .skipped)
        #expect(summary.outcomes["c"]?.reason.hasPrefix("upstream b failed") == true)
        #expect(summary.built == ["a", "d", "e"])
        #expect(try ToyMesh.values(of: "e", in: mesh) == [-5, 1])
        // b and c still serve version 1, built from the old data.
        #expect(try mesh.store.currentVersion(of: "b")?.version == 1)
        #expect(try ToyMesh.values(of: "c", in: mesh) == [1])
        let failed = try mesh.store.testResults(of: "b", run: summary.runID)
        #expect(failed.first?.status == .fail)
        #expect(failed.first?.sample.first?["value"] == "-5")
        let skippedEvents = try mesh.store.events().filter { $0.kind == .domainSkipped && $0.runID == summary.runID }
        #expect(skippedEvents.map(\.domain) == ["c"])
    }

    @Test func warnPublishesWithTheVersionButFailDoesNot() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let mesh = try ToyMesh.mesh(
            [
                ToyMesh.source("a", source: "s"),
                ToyMesh.derived(
                    "warned", from: ["a"], sql: "CREATE TABLE items AS SELECT value FROM a.items",
                    tests: [RowCountBounds(table: "items", min: 5, severity: .warn)]),
                ToyMesh.derived(
                    "failed", from: ["a"], sql: "CREATE TABLE items AS SELECT value FROM a.items",
                    tests: [RowCountBounds(table: "items", min: 5, severity: .fail)]),
            ], home: dir.url)
        let summary = try await mesh.run(
            RunRequest(sourceStates: ["s": try ToyMesh.writeSource("s", values: [1, 2], home: dir.url)]))
        #expect(summary.outcomes["warned"]?.status == .warn)
        #expect(try mesh.store.currentVersion(of: "warned")?.status == .warn)
        #expect(summary.outcomes["failed"]?.status == .fail)
        #expect(try mesh.store.currentVersion(of: "failed") == nil)
        #expect(summary.status == .fail)
        let events = try mesh.store.events().filter { $0.runID == summary.runID }
        #expect(events.contains { $0.kind == .testWarned && $0.domain == "warned" })
        #expect(events.contains { $0.kind == .testFailed && $0.domain == "failed" })
    }

    //   s ─▶ m ─▶ x ─┐
    //        └─▶ y ──┴─▶ z
    @Test func syncCheckRefusesInputsBuiltFromDifferentVersionsThenResolvesThem() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let mesh = try ToyMesh.mesh(
            [
                ToyMesh.source("m", source: "s"),
                ToyMesh.derived("x", from: ["m"], sql: "CREATE TABLE items AS SELECT value FROM m.items"),
                ToyMesh.derived(
                    "y", from: ["m"], sql: "CREATE TABLE items AS SELECT value + 100 AS value FROM m.items"),
                ToyMesh.derived("z", from: ["x", "y"], sql: ToyMesh.union(["x", "y"])),
            ], home: dir.url)
        _ = try await mesh.run(
            RunRequest(sourceStates: ["s": try ToyMesh.writeSource("s", values: [1], home: dir.url)]))
        // A master update reaches x but not y.
        let state2 = try ToyMesh.writeSource("s", values: [1, 2], home: dir.url)
        let partial = try await mesh.run(RunRequest(only: ["m", "x"], sourceStates: ["s": state2]))
        #expect(partial.built == ["m", "x"])
        #expect(try mesh.status().first { $0.domain == "y" }?.sync.state == .stale)

        let refused = try await mesh.run(RunRequest(only: ["z"], resolveSync: false))
        let message = try #require(refused.outcomes["z"]?.message)
        #expect(refused.outcomes["z"]?.status == .fail)
        #expect(message.contains("inputs disagree on m"))
        #expect(message.contains("x was built from m@v2"))
        #expect(message.contains("y was built from m@v1"))
        #expect(try mesh.store.currentVersion(of: "z")?.version == 1)

        let resolved = try await mesh.run(RunRequest(only: ["z"]))
        #expect(resolved.outcomes["y"]?.status == .success)
        #expect(resolved.outcomes["y"]?.reason.contains("sync check of z") == true)
        #expect(resolved.outcomes["z"]?.status == .success)
        #expect(try mesh.store.currentVersion(of: "z")?.upstreamVersions == ["m": 2, "x": 2, "y": 2])
        #expect(try ToyMesh.values(of: "z", in: mesh) == [1, 2, 101, 102])
        let kinds = try mesh.store.events().filter { $0.runID == resolved.runID }.map(\.kind)
        #expect(kinds.contains(.syncViolation) && kinds.contains(.syncResolved))
    }

    @Test func anEventTriggersARunWithParameters() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let mesh = try ToyMesh.mesh(
            [
                ToyMesh.source("a", source: "s"),
                ToyMesh.derived(
                    "report", from: ["a"],
                    sql: "CREATE TABLE items AS SELECT value * CAST(:factor AS INTEGER) AS value FROM a.items",
                    parameters: ["factor": "1"]),
            ], home: dir.url)
        await mesh.addTrigger(
            Trigger(
                name: "scale-report", on: { $0.kind == .domainPublished && $0.domain == "a" }, run: "report",
                parameters: ["factor": "7"]))
        let summary = try await mesh.run(
            RunRequest(only: ["a"], sourceStates: ["s": try ToyMesh.writeSource("s", values: [2], home: dir.url)]))
        #expect(summary.built == ["a"])
        let triggered = try #require(summary.triggeredRuns.first)
        #expect(summary.triggeredRuns.count == 1)
        #expect(triggered.built == ["report"])
        #expect(try ToyMesh.values(of: "report", in: mesh) == [14])
        let record = try #require(try mesh.store.run(triggered.runID))
        let published = try mesh.store.events().first { $0.kind == .domainPublished && $0.domain == "a" }
        #expect(record.triggerEventID == published?.id)
        #expect(record.trigger == "event:scale-report")
        #expect(try mesh.store.currentVersion(of: "report")?.parameters == ["factor": "7"])
        // Delivered once: publishing the same event again does not queue another run.
        var again = try #require(published)
        again.id = nil
        _ = try mesh.store.markDelivered(eventID: published!.id!, to: "trigger:scale-report")
        #expect(try mesh.store.markDelivered(eventID: published!.id!, to: "trigger:scale-report") == false)
    }

    //   a ─▶ b ─▶ c ─▶ a
    @Test func aCycleIsRejectedByName() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let mesh = try ToyMesh.mesh(
            [
                ToyMesh.derived("a", from: ["c"], sql: "CREATE TABLE items (value INTEGER)"),
                ToyMesh.derived("b", from: ["a"], sql: "CREATE TABLE items (value INTEGER)"),
                ToyMesh.derived("c", from: ["b"], sql: "CREATE TABLE items (value INTEGER)"),
            ], home: dir.url)
        let error = await #expect(throws: MeshError.self) { try await mesh.run(RunRequest()) }
        #expect(error?.code == .cycle)
        #expect(error?.message.contains("a → b → c → a") == true)
    }

    @Test func unknownDomainsAreNamedWithSuggestions() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let mesh = try ToyMesh.mesh([ToyMesh.source("orders", source: "s")], home: dir.url)
        let error = await #expect(throws: MeshError.self) { try await mesh.run(RunRequest(only: ["order"])) }
        #expect(error?.message == "unknown domain 'order'; did you mean orders?")
    }
}

@Suite("Critical path first")
struct CriticalPathTests {
    @Test("chain lengths count the longest chain of readers below each domain")
    func chainLengths() throws {
        let dir = try TemporaryDirectory("chains")
        defer { dir.remove() }
        // a → b → c → d, and a → e: a heads a chain of four.
        let mesh = try ToyMesh.mesh(
            [
                ToyMesh.source("a", source: "a"), ToyMesh.derived("b", from: ["a"], sql: ToyMesh.union(["a"])),
                ToyMesh.derived("c", from: ["b"], sql: ToyMesh.union(["b"])),
                ToyMesh.derived("d", from: ["c"], sql: ToyMesh.union(["c"])),
                ToyMesh.derived("e", from: ["a"], sql: ToyMesh.union(["a"])),
            ], home: dir.url)
        #expect(mesh.chainLengths == ["a": 4, "b": 3, "c": 2, "d": 1, "e": 1])
    }

    @Test("critical paths weigh each domain by its typical build time")
    func weightedPaths() throws {
        let dir = try TemporaryDirectory("paths")
        defer { dir.remove() }
        // a → b → c, and a → e: with e slow, a's slowest chain goes through e.
        let mesh = try ToyMesh.mesh(
            [
                ToyMesh.source("a", source: "a"), ToyMesh.derived("b", from: ["a"], sql: ToyMesh.union(["a"])),
                ToyMesh.derived("c", from: ["b"], sql: ToyMesh.union(["b"])),
                ToyMesh.derived("e", from: ["a"], sql: ToyMesh.union(["a"])),
            ], home: dir.url)
        #expect(mesh.criticalPaths(durations: [:]) == ["a": 3, "b": 2, "c": 1, "e": 1])
        #expect(
            mesh.criticalPaths(durations: ["a": 10, "b": 20, "c": 30, "e": 100]) == [
                "a": 110, "b": 50, "c": 30, "e": 100,
            ])
    }

    /// With one build slot, `slow` (a reader of `a`) and two quick sources. The history says `slow` takes far
    /// the longest (recorded here, so that the machine's speed cannot reorder the chains). When `a` finishes,
    /// at least one quick source is waiting (one slot, three domains asking at once), yet `slow`, which only
    /// then becomes ready, takes the slot: it leads the slowest chain.
    @Test("a finished domain hands its slot to the reader on the slowest chain")
    func theSlowReaderTakesTheFreedSlot() async throws {
        let dir = try TemporaryDirectory("handoff")
        defer { dir.remove() }
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let mesh = try Mesh(
            registry: DomainRegistry([
                ToyMesh.source("a", source: "a"), ToyMesh.derived("slow", from: ["a"], sql: ToyMesh.union(["a"])),
                ToyMesh.source("c", source: "c"), ToyMesh.source("d", source: "d"),
            ]),
            configuration: MeshConfiguration(home: dir.url, maxConcurrentDomains: 1, logger: logger))
        var states: [String: String] = [:]
        for name in ["a", "c", "d"] { states[name] = try ToyMesh.writeSource(name, values: [1], home: dir.url) }
        let first = try await mesh.run(RunRequest(sourceStates: states))
        #expect(first.status == .success)
        let later = Date().addingTimeInterval(3600)
        // Five builds each: the typical duration is the median of a domain's last five.
        for run in 1...5 {
            for domain in ["a", "slow", "c", "d"] {
                try mesh.store.save(
                    DomainRunRecord(
                        runID: RunID("r-history-\(run)"), domain: DomainID(domain), status: .success,
                        reason: "history", startedAt: later.addingTimeInterval(Double(run)), finishedAt: later,
                        durationMS: domain == "slow" ? 10_000 : 5, version: 1, inputVersions: [:], parameters: [:],
                        codeVersion: "1", rowsIn: 0, rowsOut: 0, message: nil))
            }
        }
        #expect(try mesh.store.typicalBuildDurations() == ["a": 5, "slow": 10_000, "c": 5, "d": 5])
        let second = try await mesh.run(RunRequest(sourceStates: states, force: ["a", "slow", "c", "d"]))
        #expect(second.status == .success)
        let order = try mesh.store.domainRuns(in: second.runID).sorted { $0.startedAt < $1.startedAt }.map(\.domain)
        // The first slot waits for the three sources to ask: it goes to `a`, which leads the slowest chain,
        // whichever source asked first; `slow` follows it.
        #expect(order.count == 4 && Array(order.prefix(2)) == ["a", "slow"], "\(order)")
    }

    @Test("the first slots go by priority once every expected task has asked or will not")
    func theFirstSlotsGoByPriority() async throws {
        let semaphore = AsyncSemaphore(1, expecting: 4)
        let granted = Granted()
        var tasks: [Task<Void, Never>] = []
        for priority in [1, 3, 2] {
            tasks.append(
                Task {
                    await semaphore.wait(priority: priority)
                    await granted.add(priority)
                    try? await Task.sleep(for: .milliseconds(20))
                    await semaphore.signal()
                })
            try await Task.sleep(for: .milliseconds(30))
        }
        // Three of four expected asked: nothing is given yet.
        #expect(await granted.order.isEmpty)
        await semaphore.notComing()
        for task in tasks { await task.value }
        #expect(await granted.order == [3, 2, 1])
        // Once open, it is an ordinary semaphore: a free slot is taken at once.
        await semaphore.wait()
        await semaphore.signal()
    }
}

private actor Granted {
    var order: [Int] = []
    func add(_ priority: Int) { order.append(priority) }
}
