import Foundation
import GRDB
import Logging
import MeshRuntime
import MeshTestSupport
import Testing

/// A clock the test moves by hand.
final class TestClock: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Date
    init(_ iso: String) { value = ISO8601DateFormatter().date(from: iso)! }
    var now: Date { lock.withLock { value } }
    func set(_ iso: String) { lock.withLock { value = ISO8601DateFormatter().date(from: iso)! } }
}

@Suite("Service levels, trends, problems and OpenLineage")
struct ObservabilityTests {
    static func mesh(_ domains: [Domain], home: URL, clock: TestClock) throws -> Mesh {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        return try Mesh(
            registry: DomainRegistry(domains),
            configuration: MeshConfiguration(home: home, now: { clock.now }, logger: logger))
    }

    @Test("a weekly service level: on time, then late (one event per missed deadline), then stale; consumers see it")
    func lateDomainFromAFixedClock() async throws {
        let dir = try TemporaryDirectory("freshness")
        defer { dir.remove() }
        let clock = TestClock("2026-11-30T08:00:00Z")  // a Monday
        var source = ToyMesh.source("orders", source: "orders")
        source.freshness = FreshnessSLA(.weekly(weekday: 2), hour: 9, description: "by Monday 09:00 UTC")
        let consumer = ToyMesh.derived("orders-mart", from: ["orders"], sql: ToyMesh.union(["orders"]))
        let mesh = try Self.mesh([source, consumer], home: dir.url, clock: clock)
        let state = try ToyMesh.writeSource("orders", values: [1], home: dir.url)
        _ = try await mesh.run(RunRequest(sourceStates: ["orders": state]))

        clock.set("2026-11-30T09:30:00Z")
        var verdict = try #require(try mesh.freshness()["orders"])
        #expect(verdict.state == .onTime)
        #expect(try mesh.freshness()["orders-mart"]?.state == .noLevel)

        clock.set("2026-12-08T10:00:00Z")  // the Monday 7 December deadline passed without a new version
        verdict = try #require(try mesh.freshness()["orders"])
        #expect(verdict.state == .late)
        #expect(verdict.deadline == ISO8601DateFormatter().date(from: "2026-12-07T09:00:00Z"))
        #expect(verdict.lateBySeconds == 25 * 3600)
        #expect(try mesh.freshness()["orders-mart"]?.lateUpstream == ["orders"])
        #expect(try mesh.status().first { $0.domain == "orders" }?.freshness.state == .late)
        #expect(try await mesh.announceLateDomains() == ["orders"])
        #expect(try await mesh.announceLateDomains() == [])
        let events = try mesh.store.events().filter { $0.kind == .freshnessLate }
        #expect(events.count == 1)
        #expect(events.first?.payload["deadline"] == "2026-12-07T09:00:00Z")

        #expect(verdict.overdue == "overdue since 2026-12-07 09:00 (1 d 1 h)")

        // A week later it is stale, and still overdue since the first deadline it missed, not the latest one.
        clock.set("2026-12-15T10:00:00Z")
        verdict = try #require(try mesh.freshness()["orders"])
        #expect(verdict.state == .stale)
        #expect(verdict.overdueSince == ISO8601DateFormatter().date(from: "2026-12-07T09:00:00Z"))
        #expect(verdict.lateBySeconds == 8 * 86_400 + 3600)
        #expect(verdict.overdue == "overdue since 2026-12-07 09:00 (8 d 1 h)")
        #expect(FreshnessVerdict.span(45) == "45 s" && FreshnessVerdict.span(3 * 3600 + 12 * 60) == "3 h 12 min")
        // A new version puts it back on time.
        let next = try ToyMesh.writeSource("orders", values: [1, 2], home: dir.url)
        _ = try await mesh.run(RunRequest(sourceStates: ["orders": next]))
        #expect(try mesh.freshness()["orders"]?.state == .onTime)
        #expect(try mesh.freshness()["orders-mart"]?.lateUpstream == [])
    }

    @Test("deadlines of daily, weekly and monthly levels")
    func deadlines() {
        let f = ISO8601DateFormatter()
        let at = f.date(from: "2026-12-01T05:00:00Z")!  // a Tuesday
        #expect(
            f.string(from: FreshnessSLA(.daily, hour: 6, description: "").deadline(atOrBefore: at))
                == "2026-11-30T06:00:00Z")
        #expect(
            f.string(from: FreshnessSLA(.weekly(weekday: 2), hour: 9, description: "").deadline(atOrBefore: at))
                == "2026-11-30T09:00:00Z")
        #expect(
            f.string(from: FreshnessSLA(.monthly(day: 5), hour: 9, description: "").deadline(atOrBefore: at))
                == "2026-11-05T09:00:00Z")
        #expect(
            f.string(
                from: FreshnessSLA(.monthly(day: 5), hour: 9, description: "").deadline(
                    before: f.date(from: "2026-03-05T09:00:00Z")!))
                == "2026-02-05T09:00:00Z")
    }

    @Test(
        "a trend test fails when its metric rises too much over the last published version; the history keeps the values"
    )
    func trendTestFails() async throws {
        let dir = try TemporaryDirectory("trend")
        defer { dir.remove() }
        let clock = TestClock("2026-11-30T08:00:00Z")
        let share = TrendTest(
            "big_share_trend", metric: "SELECT AVG(value > 10) FROM {schema}items", maxIncrease: 0.02, severity: .fail)
        let source = ToyMesh.source("orders", source: "orders", tests: [share])
        let mesh = try Self.mesh([source], home: dir.url, clock: clock)
        var state = try ToyMesh.writeSource("orders", values: [1, 2, 3, 50], home: dir.url)
        #expect(try await mesh.run(RunRequest(sourceStates: ["orders": state])).status == .success)
        state = try ToyMesh.writeSource("orders", values: [1, 2, 3, 50, 60], home: dir.url)  // 25% → 40%
        let failed = try await mesh.run(RunRequest(sourceStates: ["orders": state]))
        #expect(failed.outcomes["orders"]?.status == .fail)
        #expect(try mesh.store.currentVersion(of: "orders")?.version == 1)
        let offending = try #require(failed.outcomes["orders"]?.tests.first { $0.test == "big_share_trend" })
        #expect(offending.status == .fail)
        #expect(offending.sample.first?["previous"] == "0.25")
        state = try ToyMesh.writeSource("orders", values: [1, 2, 3, 50, 4], home: dir.url)  // 25% → 20%: fine
        #expect(try await mesh.run(RunRequest(sourceStates: ["orders": state])).outcomes["orders"]?.status == .success)
        let history = try mesh.store.testResults(of: "orders", limit: 100).filter { $0.test == "big_share_trend" }
            .reversed().map { $0.value ?? -1 }
        #expect(history == [0.25, 0.4, 0.2])
    }

    @Test("a reported problem through its life: open, shown in status, closed with the run that fixed it")
    func problemLifecycle() async throws {
        let dir = try TemporaryDirectory("problems")
        defer { dir.remove() }
        let clock = TestClock("2026-11-30T08:00:00Z")
        let mesh = try Self.mesh([ToyMesh.source("orders", source: "orders")], home: dir.url, clock: clock)
        let run = try await mesh.run(RunRequest(sourceStates: ["orders": "a"])).runID
        await #expect(throws: MeshError.self) { try await mesh.reportProblem(domain: "ordres", title: "x", by: "me") }
        await #expect(throws: MeshError.self) { try await mesh.reportProblem(domain: "orders", title: "  ", by: "me") }
        let problem = try await mesh.reportProblem(
            domain: "orders", title: "values doubled", detail: "since Monday", by: "analyst")
        #expect(problem.id == 1 && problem.status == "open")
        #expect(try mesh.status().first?.openProblems == 1)
        await #expect(throws: MeshError.self) { try await mesh.closeProblem(1, by: "owner", fixedBy: "r-nope") }
        let closed = try await mesh.closeProblem(1, by: "owner", resolution: "restated", fixedBy: run)
        #expect(closed.status == "closed" && closed.fixedByRun == run && closed.closedBy == "owner")
        #expect(try mesh.status().first?.openProblems == 0)
        await #expect(throws: MeshError.self) { try await mesh.closeProblem(1, by: "owner") }
        let kinds = try mesh.store.events().map(\.kind)
        #expect(kinds.contains(.problemReported) && kinds.contains(.problemClosed))
        #expect(try mesh.store.problems(of: "orders").count == 1)
        #expect(try mesh.store.problems(of: "orders", includeClosed: false).isEmpty)
    }

    @Test("every domain run emits OpenLineage events that the RunEvent schema accepts")
    func openLineageEventsValidate() async throws {
        let dir = try TemporaryDirectory("openlineage")
        defer { dir.remove() }
        let clock = TestClock("2026-11-30T08:00:00Z")
        let broken = ToyMesh.derived(
            "broken-mart", from: ["orders"], sql: "CREATE TABLE items AS SELECT NULL AS value FROM orders.items",
            tests: [NotNull(table: "items", columns: ["value"], severity: .fail)])
        let mesh = try Self.mesh(
            [
                ToyMesh.source("orders", source: "orders"),
                ToyMesh.derived("orders-mart", from: ["orders"], sql: ToyMesh.union(["orders"])), broken,
            ], home: dir.url, clock: clock)
        let state = try ToyMesh.writeSource("orders", values: [1, 2, 3], home: dir.url)
        let run = try await mesh.run(RunRequest(sourceStates: ["orders": state])).runID
        let file = dir.url.appendingPathComponent("openlineage/\(run).jsonl")
        let lines = try String(contentsOf: file, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 6)
        let events = try lines.map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
        let byJob = Dictionary(grouping: events) { (($0["job"] as? [String: Any])?["name"] as? String) ?? "" }
        #expect(byJob["orders-mart"]?.map { $0["eventType"] as? String } == ["START", "COMPLETE"])
        #expect(byJob["broken-mart"]?.map { $0["eventType"] as? String } == ["START", "FAIL"])
        let complete = try #require(byJob["orders-mart"]?.last)
        let output = try #require((complete["outputs"] as? [[String: Any]])?.first)
        #expect(output["name"] as? String == "orders-mart.items")
        #expect(
            ((output["outputFacets"] as? [String: Any])?["outputStatistics"] as? [String: Any])?["rowCount"] as? Int
                == 3)
        let input = try #require((complete["inputs"] as? [[String: Any]])?.first)
        #expect(
            ((input["facets"] as? [String: Any])?["version"] as? [String: Any])?["datasetVersion"] as? String == "1")
        #expect(OpenLineage.runUUID(run, "orders-mart") == (complete["run"] as? [String: Any])?["runId"] as? String)
        // The lines are the JSON `JSONEncoder` gives, also for text that must be escaped.
        var recorded = try OpenLineage.events(of: run, mesh: mesh)
        recorded[0].eventType = "quote \" backslash \\ slash / newline \n tab \t bell \u{07} é ☃"
        let encoder = JSONEncoder()
        let written = String(decoding: OpenLineage.jsonLines(recorded), as: UTF8.self).split(separator: "\n")
        #expect(written.count == recorded.count)
        for (line, event) in zip(written, recorded) {
            let ours = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? NSDictionary
            let theirs = try JSONSerialization.jsonObject(with: encoder.encode(event)) as? NSDictionary
            #expect(ours != nil && ours == theirs)
        }
        #expect(written.dropFirst().map(String.init) == lines.dropFirst().map(String.init))

        // Validated by Python's jsonschema against the RunEvent schema.
        let schema = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("OpenLineageSchema/run-event.schema.json")
        let script = """
            import json, sys, jsonschema
            schema = json.load(open(sys.argv[1]))
            validator = jsonschema.Draft202012Validator(schema)
            bad = 0
            for n, line in enumerate(open(sys.argv[2]), 1):
                for error in validator.iter_errors(json.loads(line)):
                    bad += 1
                    print(f"line {n}: {error.message} at {list(error.absolute_path)}")
            # The schema must also refuse a broken event.
            broken = json.loads(open(sys.argv[2]).readline())
            broken["run"]["runId"] = "not-a-uuid"
            del broken["producer"]
            print("refused" if list(validator.iter_errors(broken)) else "accepted a broken event")
            sys.exit(1 if bad else 0)
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, schema.path, file.path]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = out
        try process.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(text)")
        #expect(text.contains("refused"), "\(text)")
        #expect(try OpenLineage.recorded(home: dir.url, domain: "orders-mart").count == 2)
    }
}
