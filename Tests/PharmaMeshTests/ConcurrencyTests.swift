import Foundation
import MeshTestSupport
import Testing

/// A `pharma-mesh` process started in the background; its output goes to files, so that a chatty process never
/// blocks on a full pipe while the test waits for another.
final class BackgroundMesh {
    let process = Process()
    private let out: URL
    private let err: URL

    init(_ arguments: [String], in directory: URL, label: String) throws {
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            .appendingPathComponent("pharma-mesh")
        out = directory.appendingPathComponent("\(label).out")
        err = directory.appendingPathComponent("\(label).err")
        FileManager.default.createFile(atPath: out.path, contents: nil)
        FileManager.default.createFile(atPath: err.path, contents: nil)
        process.executableURL = binary
        process.arguments = arguments
        process.standardOutput = try FileHandle(forWritingTo: out)
        process.standardError = try FileHandle(forWritingTo: err)
    }

    func start() throws { try process.run() }

    func finish() -> (code: Int32, out: String, err: String) {
        process.waitUntilExit()
        return (
            process.terminationStatus, (try? String(contentsOf: out, encoding: .utf8)) ?? "",
            (try? String(contentsOf: err, encoding: .utf8)) ?? ""
        )
    }
}

/// Two writers on one home, settings that belong to the home, and read-only commands on a home with no mesh.
@Suite(.serialized) struct ConcurrencyTests {
    static let header = "PRESCRIBER_ID,NPI,ME_NUMBER,PRODUCT_NDC11,WEEK_ENDING,NRX,TRX,NQTY,TQTY\n"

    /// Weekly Xponent batches, two prescribers each, from `first` on.
    @discardableResult
    static func xponentFeeds(in dir: URL, weeks: Int, from first: Int = 0) throws -> URL {
        let feeds = dir.appendingPathComponent("feeds")
        var day = DateComponents(calendar: Calendar(identifier: .gregorian), year: 2024, month: 3, day: 1).date!
        day.addTimeInterval(Double(first) * 7 * 86_400)
        let format = DateFormatter()
        format.dateFormat = "yyyy-MM-dd"
        format.timeZone = TimeZone(identifier: "UTC")
        for _ in 0..<weeks {
            let date = format.string(from: day)
            let folder = feeds.appendingPathComponent("xponent/\(date)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try (header + "P1,,,12345678901,\(date),1,2,3,4\nP2,,,12345678901,\(date),2,3,4,5\n").write(
                to: folder.appendingPathComponent("xponent.csv"), atomically: true, encoding: .utf8)
            day.addTimeInterval(7 * 86_400)
        }
        return feeds
    }

    /// The landed batches and raw rows of a home, read back through the query command.
    static func loaded(home: String) throws -> (batches: Int, rows: Int, status: String) {
        let query = try pharmaMesh([
            "query", "--format", "csv", "--home", home,
            "SELECT (SELECT COUNT(DISTINCT batch) FROM raw_xponent.xponent), (SELECT COUNT(*) FROM raw_xponent.xponent)",
        ])
        let cells = query.out.split(whereSeparator: \.isNewline).last?.split(separator: ",") ?? []
        let status = try pharmaMesh(["status", "--json", "--home", home])
        let parsed = try JSONSerialization.jsonObject(with: Data(status.out.utf8)) as? [[String: Any]]
        let raw = parsed?.first { $0["domain"] as? String == "raw-xponent" }
        return (
            cells.count == 2 ? Int(cells[0]) ?? -1 : -1, cells.count == 2 ? Int(cells[1]) ?? -1 : -1,
            raw?["lastStatus"] as? String ?? "\(raw ?? [:])"
        )
    }

    /// Starts two runs at once and checks that exactly one wrote, the other said so in words, and every batch was
    /// loaded exactly once.
    static func race(feeds: URL, home: String, in dir: URL, wait: Bool, label: String) throws -> [String] {
        var arguments = ["run", "--feeds", feeds.path, "--home", home]
        if wait { arguments += ["--wait", "120"] }
        let a = try BackgroundMesh(arguments, in: dir, label: "\(label)-a")
        let b = try BackgroundMesh(arguments, in: dir, label: "\(label)-b")
        try a.start()
        try b.start()
        let results = [a.finish(), b.finish()]
        for result in results where result.code != 0 {
            #expect(result.code == 2, "\(result.err)")
            #expect(result.err.contains("another run is writing to the mesh at"), "\(result.err)")
            #expect(!result.err.contains("SQLite error"), "\(result.err)")
        }
        #expect(results.contains { $0.code == 0 }, "\(results.map(\.err))")
        if wait { #expect(results.allSatisfy { $0.code == 0 }, "\(results.map(\.err))") }
        return results.map { $0.out + $0.err }
    }

    @Test func twoRunsStartedTogetherOnAFreshHomeLandEveryBatchExactlyOnce() throws {
        let dir = try TemporaryDirectory("race")
        defer { dir.remove() }
        let feeds = try Self.xponentFeeds(in: dir.url, weeks: 6)
        for attempt in 0..<4 {
            let home = dir.url.appendingPathComponent("home-\(attempt)").path
            let outputs = try Self.race(
                feeds: feeds, home: home, in: dir.url, wait: attempt % 2 == 1, label: "fresh-\(attempt)")
            let loaded = try Self.loaded(home: home)
            #expect(loaded.batches == 6, "\(outputs)")
            #expect(loaded.rows == 12, "\(outputs)")
            // No batch was rejected because the other process moved its files.
            #expect(loaded.status == "success" || loaded.status == "warn", "\(outputs)")
            #expect(!outputs.joined().contains("cannot be read"), "\(outputs)")
            // The next run finds nothing new: nothing was lost to be found later.
            let again = try pharmaMesh(["run", "--feeds", feeds.path, "--home", home])
            #expect(again.code == 0)
            #expect(!again.out.contains("landed"), "\(again.out)")
        }
    }

    @Test func twoRunsStartedTogetherOnAnExistingHomeLandTheNewBatchesOnce() throws {
        let dir = try TemporaryDirectory("race")
        defer { dir.remove() }
        for attempt in 0..<2 {
            let home = dir.url.appendingPathComponent("home-\(attempt)").path
            let early = try Self.xponentFeeds(in: dir.url.appendingPathComponent("early-\(attempt)"), weeks: 2)
            let first = try pharmaMesh(["run", "--feeds", early.path, "--home", home])
            #expect(first.code == 0, "\(first.err)")
            let all = try Self.xponentFeeds(in: dir.url.appendingPathComponent("all-\(attempt)"), weeks: 5)
            let outputs = try Self.race(
                feeds: all, home: home, in: dir.url, wait: attempt == 1, label: "existing-\(attempt)")
            let loaded = try Self.loaded(home: home)
            #expect(loaded.batches == 5, "\(outputs)")
            #expect(loaded.rows == 10, "\(outputs)")
        }
    }

    @Test func aRunFromAnotherFolderUsesTheHomesSettingsAndRebuildsNothing() throws {
        let dir = try TemporaryDirectory("settings")
        defer { dir.remove() }
        let feeds = try Self.xponentFeeds(in: dir.url, weeks: 2)
        let home = dir.url.appendingPathComponent("home").path
        // The package root, where config/ holds the repository's variations and steward overrides.
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let first = try pharmaMesh(["run", "--feeds", feeds.path, "--home", home], in: root)
        #expect(first.code == 0, "\(first.err)")
        #expect(first.err.contains("copied into"), "\(first.err)")
        let settings = URL(fileURLWithPath: home).appendingPathComponent("config")
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: settings.path).sorted() == [
                "steward-overrides.csv", "variations.json",
            ])

        // Elsewhere: no config/ there, yet the variations are the home's and nothing is rebuilt.
        let elsewhere = dir.url.appendingPathComponent("elsewhere")
        try FileManager.default.createDirectory(at: elsewhere, withIntermediateDirectories: true)
        let again = try pharmaMesh(["run", "--feeds", feeds.path, "--home", home], in: elsewhere)
        #expect(again.code == 0, "\(again.err)")
        #expect(again.out.contains("(24 up to date)"), "\(again.out)")
        let variation = try pharmaMesh(
            ["run", "--feeds", feeds.path, "--home", home, "--variation", "quintiles", "--only", "raw-xponent"],
            in: elsewhere)
        #expect(variation.code == 0, "\(variation.err)")
    }

    @Test func readOnlyCommandsRefuseAHomeWithNoMesh() throws {
        let dir = try TemporaryDirectory("nohome")
        defer { dir.remove() }
        let missing = dir.url.appendingPathComponent("typo").path
        for arguments in [
            ["status"], ["history", "raw-xponent"], ["tests", "raw-xponent"], ["lineage", "raw-xponent"],
            ["query", "SELECT 1"], ["serve", "--port", "0"],
        ] {
            let result = try pharmaMesh(arguments + ["--home", missing])
            #expect(result.code == 2, "\(arguments): \(result.err)")
            #expect(result.err.contains("\(missing) does not exist"), "\(arguments): \(result.err)")
            #expect(result.err.contains("pharma-mesh run --feeds DIR --home"), "\(arguments): \(result.err)")
            #expect(!FileManager.default.fileExists(atPath: missing), "\(arguments) created the home")
        }
        // An existing folder that holds no mesh is refused too, and left as it was.
        let empty = dir.url.appendingPathComponent("empty")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        let status = try pharmaMesh(["status", "--home", empty.path])
        #expect(status.code == 2)
        #expect(status.err.contains("holds no mesh"), "\(status.err)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: empty.path).isEmpty)
    }
}
