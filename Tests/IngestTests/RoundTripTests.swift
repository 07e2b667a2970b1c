import FeedGenerator
import Foundation
import GRDB
import MeshRuntime
import MeshTestSupport
import Testing

@testable import Ingest

struct RoundTripTests {
    /// Generate a small world, ingest every feed, and compare the typed row counts with what the generator wrote.
    @Test func generatedFeedsIngestToTheExpectedCounts() async throws {
        let dir = try TemporaryDirectory("roundtrip")
        defer { dir.remove() }
        _ = try FeedGenerator.generate(
            GeneratorOptions(scale: .sample, seed: 3, outputDirectory: dir.url, physicianCount: 150))
        let mesh = try ToyMesh.mesh(IngestDomains.all(), home: dir.url.appendingPathComponent("home"))
        _ = try Landing.land(feeds: dir.url.appendingPathComponent("feeds"), home: mesh.home)
        let summary = try await mesh.run(RunRequest(sourceStates: try Landing.sourceStates(home: mesh.home)))
        #expect(
            summary.failed.isEmpty,
            "\(summary.outcomes.values.filter { $0.status.failed }.map { "\($0.domain): \($0.message ?? "")" })")
        let expected =
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: dir.url.appendingPathComponent("truth/expected_counts.json")))
            as! [String: [String: Int]]
        let mainTable = ["formulary": "formulary_coverage"]
        for (feed, counts) in expected.sorted(by: { $0.key < $1.key }) {
            let domain = DomainID("raw-\(feed)")
            let version = try #require(try mesh.store.currentVersion(of: domain), "\(feed)")
            #expect(version.rowCounts[mainTable[feed] ?? feed] == counts["distinct_keys"], "\(feed)")
            #expect(version.rowCounts["quarantine"] == counts["invalid_rows"], "\(feed)")
            #expect(version.rowCounts["batches"] == counts["batches"], "\(feed)")
        }
        // The staged incident: quarantined and warned, then fixed by the re-delivery (the keys are all there).
        #expect(summary.outcomes["raw-claims"]?.status == .warn)
    }

    @Test func everyBrokenBatchHasItsDefinedOutcome() async throws {
        let dir = try TemporaryDirectory("broken")
        defer { dir.remove() }
        for broken in try FeedGenerator.writeBrokenBatches(to: dir.url.appendingPathComponent("batches")) {
            let home = dir.url.appendingPathComponent("home-\(broken.name)")
            let mesh = try ToyMesh.mesh(IngestDomains.all(), home: home)
            _ = try Landing.land(feeds: broken.feedsRoot, home: home)
            let summary = try await mesh.run(
                RunRequest(only: [DomainID("raw-\(broken.feed)")], sourceStates: try Landing.sourceStates(home: home)))
            let domain = DomainID("raw-\(broken.feed)")
            let (queue, _) = try mesh.snapshot(attaching: [domain])
            let schema = domain.schemaName
            let batch = try await queue.read { db in
                try Row.fetchOne(db, sql: "SELECT status, message, rows_loaded FROM \(schema).batches")
            }
            let quarantine = try await queue.read { db in
                try Row.fetchAll(db, sql: "SELECT line, \"column\", reason FROM \(schema).quarantine ORDER BY line")
            }
            let label = "\(broken.name): \(broken.expectedOutcome)"
            if broken.expectedOutcome.hasPrefix("reject") {
                #expect(batch?["status"] == "rejected", "\(label)")
                let message: String = batch?["message"] ?? ""
                #expect(message.contains(broken.file), "\(label): \(message)")
                for column in broken.badColumns { #expect(message.contains(column), "\(label): \(message)") }
                #expect(summary.outcomes[domain]?.status == .warn, "\(label)")
            } else {
                #expect(quarantine.map { $0["line"] as Int } == broken.badLines, "\(label)")
                #expect(quarantine.map { $0["column"] as String } == broken.badColumns, "\(label)")
                let table = broken.feed == "formulary" ? "formulary_coverage" : broken.feed
                #expect(try mesh.store.currentVersion(of: domain)?.rowCounts[table] == broken.goodRows, "\(label)")
                #expect(summary.outcomes[domain]?.status == (broken.badLines.isEmpty ? .success : .warn), "\(label)")
            }
        }
    }
}
