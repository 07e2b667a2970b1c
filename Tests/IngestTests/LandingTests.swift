import FeedFormats
import Foundation
import GRDB
import MeshTestSupport
import Testing

@testable import Ingest
@testable import MeshRuntime

/// A tiny `KEY,VALUE` parser for loader tests: a line `!` rejects the batch, a non-numeric value is quarantined.
struct PairParser: FeedFileParser {
    func parse(file: URL, row: (Int, Int, [FieldValue]) throws -> Void, rejected: (QuarantinedRow) throws -> Void)
        throws
    {
        let lines = try String(contentsOf: file, encoding: .utf8).split(
            separator: "\n", omittingEmptySubsequences: false)
        for (index, line) in lines.enumerated() where !line.isEmpty {
            if line == "!" { throw IngestError(.missingColumn, "missing required column VALUE") }
            let parts = line.split(separator: ",", omittingEmptySubsequences: false)
            guard parts.count == 2, let value = Int(parts[1]) else {
                try rejected(
                    QuarantinedRow(
                        line: index + 1, column: "VALUE", rawValue: String(parts.last ?? ""), reason: "not a number"))
                continue
            }
            try row(0, index + 1, [.text(String(parts[0])), .integer(Int64(value))])
        }
    }
}

enum Batches {
    /// Writes `feeds/FEED/DATE/data.csv`.
    static func write(_ root: URL, feed: String, date: String, _ text: String) throws {
        let folder = root.appendingPathComponent("\(feed)/\(date)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try text.write(to: folder.appendingPathComponent("data.csv"), atomically: true, encoding: .utf8)
    }
}

struct LandingTests {
    @Test func landsOnceAndRefusesAChangedFolder() throws {
        let dir = try TemporaryDirectory("landing")
        defer { dir.remove() }
        let feeds = dir.url.appendingPathComponent("feeds")
        let home = dir.url.appendingPathComponent("home")
        try Batches.write(feeds, feed: "xponent", date: "2025-01-03", "a,1\n")
        try Batches.write(feeds, feed: "xponent", date: "2025-01-10", "a,2\n")
        try Batches.write(feeds, feed: "mystery", date: "2025-01-10", "x\n")
        try Batches.write(feeds, feed: "claims", date: "last-week", "x\n")

        let first = try Landing.land(feeds: feeds, home: home, asOf: LandingDate.parse("2025-01-05"))
        #expect(first.landed.map(\.id) == ["xponent/2025-01-03"])
        #expect(first.landed.map(\.bytes) == [4])
        #expect(first.problems.count == 2)
        #expect(first.problems.contains { $0.contains("mystery: not a known feed") })
        #expect(first.problems.contains { $0.contains("last-week: a batch folder must be named by its delivery date") })
        let stateBefore = try Landing.sourceStates(home: home)["xponent"]

        let second = try Landing.land(feeds: feeds, home: home)
        #expect(second.landed.map(\.id) == ["xponent/2025-01-10"])
        #expect(second.alreadyLanded == 1)
        #expect(try Landing.sourceStates(home: home)["xponent"] != stateBefore)
        #expect(try Landing.sourceStates(home: home)["claims"] == "empty")

        let again = try Landing.land(feeds: feeds, home: home)
        #expect(again.landed.isEmpty)
        #expect(again.alreadyLanded == 2)

        try Batches.write(feeds, feed: "xponent", date: "2025-01-03", "a,9\n")
        let changed = try Landing.land(feeds: feeds, home: home)
        #expect(changed.landed.isEmpty)
        #expect(
            changed.problems.contains {
                $0.contains("2025-01-03 changed since it was landed") && $0.contains("new dated folder")
            })
        // The landed copy is the original delivery.
        let kept = try String(
            contentsOf: home.appendingPathComponent("landing/xponent/2025-01-03/data.csv"), encoding: .utf8)
        #expect(kept == "a,1\n")
    }

    /// A re-run reads a settled batch folder's file names from the ledger while the folder's time is unchanged;
    /// a file added to the folder or removed from it changes that time, and the folder is listed again.
    @Test func aFileAddedToOrRemovedFromALandedFolderIsSeen() throws {
        let dir = try TemporaryDirectory("landing")
        defer { dir.remove() }
        let feeds = dir.url.appendingPathComponent("feeds")
        let home = dir.url.appendingPathComponent("home")
        try Batches.write(feeds, feed: "xponent", date: "2025-01-03", "a,1\n")
        let folder = feeds.appendingPathComponent("xponent/2025-01-03")
        let settled = Date(timeIntervalSinceNow: -3600)
        try FileManager.default.setAttributes([.modificationDate: settled], ofItemAtPath: folder.path)
        #expect(try Landing.land(feeds: feeds, home: home).landed.count == 1)
        let listings = try Landing.ledger(home: home).read { db in
            try String.fetchAll(db, sql: "SELECT files FROM folder_listing WHERE path = ?", arguments: [folder.path])
        }
        #expect(listings == ["data.csv"])
        let again = try Landing.land(feeds: feeds, home: home)
        #expect(again.alreadyLanded == 1 && again.problems.isEmpty)

        try "b,2\n".write(to: folder.appendingPathComponent("more.csv"), atomically: true, encoding: .utf8)
        let added = try Landing.land(feeds: feeds, home: home)
        #expect(added.problems.contains { $0.contains("2025-01-03 changed since it was landed") }, "\(added.problems)")

        try FileManager.default.removeItem(at: folder.appendingPathComponent("more.csv"))
        try FileManager.default.setAttributes([.modificationDate: settled], ofItemAtPath: folder.path)
        #expect(try Landing.land(feeds: feeds, home: home).problems.isEmpty)
        try FileManager.default.removeItem(at: folder.appendingPathComponent("data.csv"))
        try "a,1\n".write(to: folder.appendingPathComponent("renamed.csv"), atomically: true, encoding: .utf8)
        let renamed = try Landing.land(feeds: feeds, home: home)
        #expect(renamed.problems.contains { $0.contains("2025-01-03 changed since it was landed") })
    }

    @Test func aFolderAboveTheFeedsIsAnErrorThatNamesTheFeedsFolder() throws {
        let dir = try TemporaryDirectory("landing")
        defer { dir.remove() }
        let data = dir.url.appendingPathComponent("sample-data")
        try Batches.write(data.appendingPathComponent("feeds"), feed: "xponent", date: "2025-01-03", "a,1\n")
        try FileManager.default.createDirectory(
            at: data.appendingPathComponent("truth"), withIntermediateDirectories: true)
        let home = dir.url.appendingPathComponent("home")
        let error = try #require(throws: IngestError.self) { try Landing.land(feeds: data, home: home) }
        #expect(error.message.contains("sample-data holds no feed folder (feeds, truth)"))
        #expect(error.message.hasSuffix("its folder feeds does: use \(data.appendingPathComponent("feeds").path)"))
        // Nothing was landed, and the feeds folder itself lands.
        #expect(try Landing.batches(of: "xponent", home: home).isEmpty)
        #expect(try Landing.land(feeds: data.appendingPathComponent("feeds"), home: home).landed.count == 1)
        // A folder of unrelated folders says what it expected.
        let other = dir.url.appendingPathComponent("other")
        try FileManager.default.createDirectory(
            at: other.appendingPathComponent("misc"), withIntermediateDirectories: true)
        let plain = try #require(throws: IngestError.self) { try Landing.land(feeds: other, home: home) }
        #expect(plain.message.contains("expected FEED/YYYY-MM-DD/ batch folders, FEED one of "))
    }

    @Test func landingDatesAreStrict() {
        #expect(LandingDate.parse("2024-02-29")?.description == "2024-02-29")
        #expect(LandingDate.parse("2025-02-29") == nil)
        #expect(LandingDate.parse("2025-1-05") == nil)
        #expect(LandingDate.parse("20250105") == nil)
    }
}

struct RawLoaderTests {
    static let feed = RawFeed(
        feed: "xponent", description: "test feed",
        tables: [RawTable(name: "pairs", columns: [("key", "TEXT"), ("value", "INTEGER")], key: ["key"])],
        parser: PairParser())

    private func mesh(_ home: URL, feed: RawFeed = feed) throws -> Mesh {
        try ToyMesh.mesh([feed.domain], home: home)
    }

    private func run(_ mesh: Mesh, feeds: URL) async throws -> RunSummary {
        _ = try Landing.land(feeds: feeds, home: mesh.home)
        return try await mesh.run(RunRequest(sourceStates: try Landing.sourceStates(home: mesh.home)))
    }

    private func rows(_ mesh: Mesh, _ sql: String) throws -> [Row] {
        let (queue, _) = try mesh.snapshot(attaching: ["raw-xponent"])
        return try queue.read { db in try Row.fetchAll(db, sql: sql) }
    }

    @Test func latestDeliveryWinsAndBadRowsAreQuarantinedNotLost() async throws {
        let dir = try TemporaryDirectory("raw")
        defer { dir.remove() }
        let feeds = dir.url.appendingPathComponent("feeds")
        let mesh = try mesh(dir.url.appendingPathComponent("home"))
        try Batches.write(feeds, feed: "xponent", date: "2025-01-03", "a,1\nb,2\nc,x3\n")
        let first = try await run(mesh, feeds: feeds)
        #expect(first.outcomes["raw-xponent"]?.status == .warn)
        #expect(
            try rows(mesh, "SELECT key, value, batch FROM raw_xponent.pairs ORDER BY key").map {
                "\($0[0]!)=\($0[1]!)@\($0[2]!)"
            } == ["a=1@2025-01-03", "b=2@2025-01-03"])
        let quarantined = try rows(mesh, "SELECT * FROM raw_xponent.quarantine")
        #expect(quarantined.count == 1)
        #expect(quarantined[0]["file"] == "xponent/2025-01-03/data.csv")
        #expect(quarantined[0]["line"] == 3)
        #expect(quarantined[0]["column"] == "VALUE")
        #expect(quarantined[0]["raw_value"] == "x3")
        #expect(quarantined[0]["reason"] == "not a number")

        // A restatement: the later delivery replaces the key; the next build is incremental and clean.
        try Batches.write(feeds, feed: "xponent", date: "2025-01-10", "b,20\nc,3\n")
        let second = try await run(mesh, feeds: feeds)
        #expect(second.outcomes["raw-xponent"]?.status == .success)
        #expect(
            try rows(mesh, "SELECT key, value FROM raw_xponent.pairs ORDER BY key").map { "\($0[0]!)=\($0[1]!)" } == [
                "a=1", "b=20", "c=3",
            ])
        let batches = try rows(
            mesh,
            "SELECT batch, status, rows_read, rows_quarantined, new_in_build FROM raw_xponent.batches ORDER BY batch")
        #expect(
            batches.map { "\($0[0]!) \($0[1]!) \($0[2]!) \($0[3]!) \($0[4]!)" } == [
                "2025-01-03 loaded_with_quarantine 3 1 0", "2025-01-10 loaded 2 0 1",
            ])
        let steps = try mesh.store.steps(of: "raw-xponent", in: second.runID)
        #expect(steps.first?.message == "1 new batch(es) of 2, on top of the previous version")
        // The quarantined row of the first batch is still there.
        #expect(try rows(mesh, "SELECT COUNT(*) FROM raw_xponent.quarantine")[0][0] == 1)
    }

    @Test func aBatchMissingARequiredColumnIsRejectedWholeAndKept() async throws {
        let dir = try TemporaryDirectory("raw")
        defer { dir.remove() }
        let feeds = dir.url.appendingPathComponent("feeds")
        let mesh = try mesh(dir.url.appendingPathComponent("home"))
        try Batches.write(feeds, feed: "xponent", date: "2025-01-03", "a,1\n")
        try Batches.write(feeds, feed: "xponent", date: "2025-01-10", "b,2\n!\n")
        let summary = try await run(mesh, feeds: feeds)
        #expect(summary.outcomes["raw-xponent"]?.status == .warn)
        #expect(try rows(mesh, "SELECT key FROM raw_xponent.pairs").map { $0[0] as String } == ["a"])
        let rejected = try rows(mesh, "SELECT status, message FROM raw_xponent.batches WHERE batch = '2025-01-10'")
        #expect(rejected[0]["status"] == "rejected")
        #expect(rejected[0]["message"] == "xponent/2025-01-10/data.csv: missing required column VALUE")
        let tests = try mesh.store.testResults(of: "raw-xponent", run: summary.runID)
        #expect(tests.first { $0.test == "new_batches_rejected" }?.status == .warn)
        // The rejected batch stays landed, as it came.
        #expect(
            FileManager.default.fileExists(
                atPath: mesh.home.appendingPathComponent("landing/xponent/2025-01-10/data.csv").path))
    }

    @Test func anAbsentFeedGivesAnEmptyRawDomain() async throws {
        let dir = try TemporaryDirectory("raw")
        defer { dir.remove() }
        let feeds = dir.url.appendingPathComponent("feeds")
        try FileManager.default.createDirectory(at: feeds, withIntermediateDirectories: true)
        let mesh = try mesh(dir.url.appendingPathComponent("home"))
        let summary = try await run(mesh, feeds: feeds)
        #expect(summary.outcomes["raw-xponent"]?.status == .success)
        #expect(
            try mesh.store.currentVersion(of: "raw-xponent")?.rowCounts == ["pairs": 0, "quarantine": 0, "batches": 0])
    }

    @Test func aNewLoaderVersionReloadsEveryBatch() async throws {
        let dir = try TemporaryDirectory("raw")
        defer { dir.remove() }
        let feeds = dir.url.appendingPathComponent("feeds")
        let home = dir.url.appendingPathComponent("home")
        try Batches.write(feeds, feed: "xponent", date: "2025-01-03", "a,1\n")
        _ = try await run(try mesh(home), feeds: feeds)
        var changed = Self.feed
        changed.loaderVersion = "2"
        let mesh = try mesh(home, feed: changed)
        let summary = try await run(mesh, feeds: feeds)
        #expect(summary.outcomes["raw-xponent"]?.reason.hasPrefix("code changed") == true)
        #expect(try mesh.store.steps(of: "raw-xponent", in: summary.runID).first?.message == "1 new batch(es) of 1")
    }

    @Test func aFullRefreshReloadsEveryBatchAndGivesTheSameContent() async throws {
        let dir = try TemporaryDirectory("raw")
        defer { dir.remove() }
        let feeds = dir.url.appendingPathComponent("feeds")
        let mesh = try mesh(dir.url.appendingPathComponent("home"))
        try Batches.write(feeds, feed: "xponent", date: "2025-01-03", "a,1\nb,2\n")
        _ = try await run(mesh, feeds: feeds)
        try Batches.write(feeds, feed: "xponent", date: "2025-01-10", "b,20\n")
        _ = try await run(mesh, feeds: feeds)
        let incremental = try #require(try mesh.store.currentVersion(of: "raw-xponent"))
        let refreshed = try await mesh.run(RunRequest(force: ["raw-xponent"], fullRefresh: true))
        #expect(try mesh.store.steps(of: "raw-xponent", in: refreshed.runID).first?.message == "2 new batch(es) of 2")
        // Incremental and full builds publish the same content (the batches' new_in_build flags aside).
        let full = try #require(try mesh.store.currentVersion(of: "raw-xponent"))
        #expect(full.rowCounts == incremental.rowCounts)
        #expect(
            try rows(mesh, "SELECT key, value, batch FROM raw_xponent.pairs ORDER BY key").map {
                "\($0[0]!)=\($0[1]!)@\($0[2]!)"
            } == ["a=1@2025-01-03", "b=20@2025-01-10"])
        #expect(full.tableDigests["pairs"] == incremental.tableDigests["pairs"])
    }

    @Test func theLatestRowOfAKeyWinsAcrossChunksOfOneFile() async throws {
        let dir = try TemporaryDirectory("raw")
        defer { dir.remove() }
        let feeds = dir.url.appendingPathComponent("feeds")
        let mesh = try mesh(dir.url.appendingPathComponent("home"))
        // Every key twice, the second time more than a chunk later, in descending key order within each half.
        let half = RowChunk.capacity / 2 + 7
        let lines = (0..<(2 * half)).map { i in "k\(String(format: "%06d", half - 1 - i % half)),\(i)" }
        try Batches.write(feeds, feed: "xponent", date: "2025-01-03", lines.joined(separator: "\n") + "\n")
        let summary = try await run(mesh, feeds: feeds)
        #expect(summary.outcomes["raw-xponent"]?.status == .success)
        let loaded = try rows(mesh, "SELECT COUNT(*), MIN(value), SUM(line = value + 1) FROM raw_xponent.pairs")[0]
        #expect(loaded[0] == half)
        #expect(loaded[1] == half)
        #expect(loaded[2] == half)
    }
}
