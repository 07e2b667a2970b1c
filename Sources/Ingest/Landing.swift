import Crypto
import FeedFormats
import Foundation
import GRDB
import MeshRuntime

/// A delivery date, `YYYY-MM-DD`, as batch folders are named.
public struct LandingDate: Comparable, Hashable, Sendable, CustomStringConvertible {
    public var year: Int
    public var month: Int
    public var day: Int

    /// Parses `YYYY-MM-DD`; nil for anything else (including impossible dates such as 2025-02-30).
    public static func parse(_ text: String) -> LandingDate? {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
            let y = Int(parts[0]), let m = Int(parts[1]), let d = Int(parts[2]), (1...12).contains(m), d >= 1
        else { return nil }
        let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
        let days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1]
        guard d <= days else { return nil }
        return LandingDate(year: y, month: m, day: d)
    }

    public var description: String { String(format: "%04d-%02d-%02d", year, month, day) }
    public static func < (a: LandingDate, b: LandingDate) -> Bool {
        (a.year, a.month, a.day) < (b.year, b.month, b.day)
    }
}

/// One landed batch: a delivery folder copied into the mesh home, immutable from then on.
public struct LandedBatch: Codable, Sendable, Hashable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "batch"
    public var feed: String
    /// The delivery date: the batch folder's name.
    public var delivery: String
    /// SHA-256 over the batch's file names and contents.
    public var fingerprint: String
    public var files: [String]
    public var bytes: Int
    public var landedAt: Date

    enum CodingKeys: String, CodingKey { case feed, delivery, fingerprint, files, bytes, landedAt = "landed_at" }

    /// `xponent/2025-03-07`.
    public var id: String { "\(feed)/\(delivery)" }
}

/// What one landing did.
public struct LandingReport: Sendable {
    public var landed: [LandedBatch] = []
    public var alreadyLanded = 0
    /// Folders that were not landed, each with what to do about it.
    public var problems: [String] = []
}

/// Lands raw deliveries into the mesh home: `HOME/landing/FEED/YYYY-MM-DD/`, fingerprinted and immutable.
///
/// Landing copies; it does not parse. The raw domains parse, validate and quarantine when they build, so a
/// bad batch is always kept as it came.
public enum Landing {
    /// The feeds of shared/spec/feeds.md: those with a layout, in the layouts' order.
    public static let feeds = FeedLayouts.all.map(\.feed)

    static func ledger(home: URL) throws -> DatabaseQueue {
        let directory = home.appendingPathComponent("landing")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var configuration = Configuration()
        configuration.busyMode = .timeout(30)
        let queue = try DatabaseQueue(
            path: directory.appendingPathComponent("ledger.sqlite").path, configuration: configuration)
        try queue.write { db in
            try db.execute(
                sql: """
                    CREATE TABLE IF NOT EXISTS batch (
                        feed TEXT NOT NULL, delivery TEXT NOT NULL, fingerprint TEXT NOT NULL, files TEXT NOT NULL,
                        bytes INTEGER NOT NULL, landed_at DATETIME NOT NULL, PRIMARY KEY (feed, delivery));
                    CREATE TABLE IF NOT EXISTS file_hash (
                        path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime REAL NOT NULL, sha256 TEXT NOT NULL);
                    CREATE TABLE IF NOT EXISTS folder_listing (
                        path TEXT PRIMARY KEY, mtime REAL NOT NULL, files TEXT NOT NULL);
                    """)
        }
        return queue
    }

    /// Lands every batch in `feeds` delivered on or before `asOf` that is not landed yet. Re-landing the
    /// same batch is a no-op; a landed batch whose folder changed since is refused (deliver a new folder).
    public static func land(feeds directory: URL, home: URL, asOf: LandingDate? = nil) throws -> LandingReport {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: directory.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw IngestError(
                .unreadable, "\(directory.path) is not a folder of feeds (expected FEED/YYYY-MM-DD/ batch folders)")
        }
        let ledger = try ledger(home: home)
        // Plain rows, not Codable records: this runs on every mesh run over every batch ever landed.
        let known = try ledger.read { db in
            try Dictionary(
                uniqueKeysWithValues: Row.fetchAll(db, sql: "SELECT feed, delivery, fingerprint FROM batch").map {
                    ("\($0[0] as String)/\($0[1] as String)", $0[2] as String)
                })
        }
        var report = LandingReport()
        // File hashes by path, size and modification time: a re-run does not re-read unchanged deliveries.
        var cache = try ledger.read { db in
            try Dictionary(
                Row.fetchAll(db, sql: "SELECT path, size, mtime, sha256 FROM file_hash").map {
                    ("\($0[0] as String)|\($0[1] as Int64)|\($0[2] as Double)", $0[3] as String)
                }
            ) { a, _ in a }
        }
        let cached = Set(cache.keys)
        // Each batch folder's file names by the folder's modification time (which adding, removing or renaming
        // a file changes): a re-run stats the folders delivered so far instead of listing every one of them.
        var listings = try ledger.read { db in
            try Dictionary(
                Row.fetchAll(db, sql: "SELECT path, mtime, files FROM folder_listing").map {
                    (
                        $0[0] as String,
                        (mtime: $0[1] as Double, files: ($0[2] as String).split(separator: "/").map(String.init))
                    )
                }
            ) { a, _ in a }
        }
        var listed: Set<String> = []
        // What this landing learnt goes to the ledger in one transaction, also when a batch fails to land: one
        // commit per batch cost more than the landing itself (the ledger syncs every commit). A batch moved into
        // place but not recorded (a crash before the commit) is landed again by the next run.
        var landed: [LandedBatch] = []
        func record() throws {
            let added = cache.filter { !cached.contains($0.key) }
            guard !landed.isEmpty || !added.isEmpty || !listed.isEmpty else { return }
            try ledger.write { db in
                for batch in landed { try batch.insert(db) }
                for (key, sha) in added.sorted(by: { $0.key < $1.key }) {
                    let parts = key.split(separator: "|", omittingEmptySubsequences: false)
                    try db.execute(
                        sql: "INSERT OR REPLACE INTO file_hash VALUES (?, ?, ?, ?)",
                        arguments: [
                            parts.dropLast(2).joined(separator: "|"), Int64(parts[parts.count - 2]),
                            Double(parts[parts.count - 1]), sha,
                        ])
                }
                for path in listed.sorted() {
                    guard let listing = listings[path] else { continue }
                    try db.execute(
                        sql: "INSERT OR REPLACE INTO folder_listing VALUES (?, ?, ?)",
                        arguments: [path, listing.mtime, listing.files.joined(separator: "/")])
                }
            }
        }
        let entries = try fm.contentsOfDirectory(atPath: directory.path).sorted().filter { !$0.hasPrefix(".") }
        if !entries.isEmpty && !entries.contains(where: Self.feeds.contains) {
            // Folders but no feed among them: most likely the folder above the feeds (sample-data, not
            // sample-data/feeds). Landing nothing here would look like a run with no new deliveries.
            let inner = entries.filter { entry in
                let children = (try? fm.contentsOfDirectory(atPath: directory.appendingPathComponent(entry).path)) ?? []
                return children.contains(where: Self.feeds.contains)
            }
            throw IngestError(
                .unreadable,
                "\(directory.path) holds no feed folder (\(entries.prefix(5).joined(separator: ", "))\(entries.count > 5 ? ", …" : "")); "
                    + (inner.isEmpty
                        ? "expected FEED/YYYY-MM-DD/ batch folders, FEED one of \(Self.feeds.joined(separator: ", "))"
                        : "its folder \(inner[0]) does: use \(directory.appendingPathComponent(inner[0]).path)"))
        }
        do {
            for feed in entries {
                if let kind = refusedKind(directory.path + "/" + feed, expected: S_IFDIR), Self.feeds.contains(feed) {
                    report.problems.append(
                        "\(directory.path)/\(feed): \(kind), not a folder; not landed. The mesh lands only what is "
                            + "inside the feeds folder: put the feed's batch folders there themselves")
                    continue
                }
                guard Self.feeds.contains(feed) else {
                    report.problems.append(
                        "\(directory.path)/\(feed): not a known feed, ignored (the feeds are: \(Self.feeds.joined(separator: ", ")))"
                    )
                    continue
                }
                // Plain path strings, not URLs: this walks every batch folder delivered so far on every run, and
                // building and parsing a URL per folder and file cost more than the stat(2) calls.
                let feedDirectory = directory.path + "/" + feed
                for delivery in try fm.contentsOfDirectory(atPath: feedDirectory).sorted()
                where !delivery.hasPrefix(".") {
                    let sourcePath = feedDirectory + "/" + delivery
                    if let kind = refusedKind(sourcePath, expected: S_IFDIR), LandingDate.parse(delivery) != nil {
                        report.problems.append(
                            "\(sourcePath): \(kind), not a batch folder; not landed. The mesh lands only what is "
                                + "inside the feeds folder (a link could point anywhere, and what it points at could "
                                + "change): copy the delivery into a folder of its own")
                        continue
                    }
                    guard let date = LandingDate.parse(delivery) else {
                        report.problems.append(
                            "\(sourcePath): a batch folder must be named by its delivery date, YYYY-MM-DD; not landed")
                        continue
                    }
                    if let asOf, asOf < date { continue }
                    let files: [String]
                    let mtime = status(of: sourcePath)?.mtime
                    if let mtime, let listing = listings[sourcePath], listing.mtime == mtime {
                        files = listing.files
                    } else {
                        files = try fm.contentsOfDirectory(atPath: sourcePath).filter { !$0.hasPrefix(".") }.sorted()
                        // Only a settled folder's listing is kept: on a file system with coarse times, a file added
                        // in the same tick as the listing would not change the folder's time.
                        if let mtime, mtime < Date().timeIntervalSince1970 - 2 {
                            listings[sourcePath] = (mtime, files)
                            listed.insert(sourcePath)
                        }
                    }
                    guard !files.isEmpty else {
                        report.problems.append("\(sourcePath): the batch folder is empty; not landed")
                        continue
                    }
                    let fingerprint: String
                    do {
                        fingerprint = try batchFingerprint(sourcePath, files: files, cache: &cache)
                    } catch let refusal as LandingRefusal {
                        report.problems.append(
                            known["\(feed)/\(delivery)"] == nil
                                ? refusal.message
                                : "\(refusal.message) (the batch was landed before: its landed copy stands)")
                        continue
                    }
                    if let earlier = known["\(feed)/\(delivery)"] {
                        if earlier == fingerprint {
                            report.alreadyLanded += 1
                        } else {
                            report.problems.append(
                                "\(sourcePath) changed since it was landed (fingerprint \(earlier.prefix(12)) → \(fingerprint.prefix(12))); "
                                    + "landed batches are immutable: deliver the correction as a new dated folder")
                        }
                        continue
                    }
                    let batch = try landBatch(
                        feed: feed, delivery: delivery, from: URL(fileURLWithPath: sourcePath, isDirectory: true),
                        files: files, fingerprint: fingerprint, home: home)
                    landed.append(batch)
                }
            }
        } catch {
            try? record()
            throw error
        }
        try record()
        report.landed = landed
        return report
    }

    /// A batch folder's file that is not landed: a link, a folder, a device. The batch waits for a fixed one.
    struct LandingRefusal: Error {
        var message: String
    }

    /// What the entry at `path` is when it is not of the `expected` type (`S_IFDIR`, `S_IFREG`), by lstat(2):
    /// nil when it is, or when it does not exist.
    static func refusedKind(_ path: String, expected: mode_t) -> String? {
        var status = stat()
        guard lstat(path, &status) == 0 else { return nil }
        let type = status.st_mode & S_IFMT
        if type == expected { return nil }
        switch type {
        case S_IFLNK: return "a symbolic link"
        case S_IFDIR: return "a folder"
        case S_IFREG: return "a file"
        default: return "a device, pipe or socket"
        }
    }

    private static func batchFingerprint(_ folder: String, files: [String], cache: inout [String: String]) throws
        -> String
    {
        var lines = ""
        for file in files {
            let path = folder + "/" + file
            if let kind = refusedKind(path, expected: S_IFREG) {
                throw LandingRefusal(
                    message: "\(path): \(kind), not a file; the batch is not landed. A batch folder holds the "
                        + "delivered files themselves: the mesh copies their bytes and never follows a link (it "
                        + "could point outside the feeds folder, and what it points at could change after landing). "
                        + "Replace it by the file and run again")
            }
            guard let (size, mtime) = status(of: path) else {
                throw CocoaError(.fileReadNoSuchFile, userInfo: [NSFilePathErrorKey: path])
            }
            let key = "\(path)|\(size)|\(mtime)"
            let sha = try cache[key] ?? Fingerprint.sha256Hex(fileAt: URL(fileURLWithPath: path))
            cache[key] = sha
            lines += "\(file) \(sha)\n"
        }
        return Fingerprint.sha256Hex(lines)
    }

    /// A file's or folder's size and modification time, by stat(2) directly: Foundation's attributesOfItem
    /// also resolves the owner's name, reading /etc/passwd and /etc/group for every file of every batch on
    /// every run.
    private static func status(of path: String) -> (size: Int64, mtime: Double)? {
        var status = stat()
        guard stat(path, &status) == 0 else { return nil }
        return (Int64(status.st_size), Double(status.st_mtim.tv_sec) + Double(status.st_mtim.tv_nsec) / 1e9)
    }

    private static func landBatch(
        feed: String, delivery: String, from source: URL, files: [String], fingerprint: String, home: URL
    ) throws -> LandedBatch {
        let fm = FileManager.default
        let target = home.appendingPathComponent("landing/\(feed)/\(delivery)")
        let staging = home.appendingPathComponent("landing/\(feed)/.\(delivery).landing")
        try? fm.removeItem(at: staging)
        try fm.createDirectory(at: staging, withIntermediateDirectories: true)
        var bytes = 0
        var lines = ""
        for file in files {
            let (size, sha) = try copyBytes(
                from: source.path + "/" + file, to: staging.appendingPathComponent(file).path)
            bytes += size
            lines += "\(file) \(sha)\n"
        }
        // The fingerprint of the bytes copied, then the copy moved into place (`land` records it): a crash in
        // between leaves only staging.
        guard Fingerprint.sha256Hex(lines) == fingerprint else {
            try? fm.removeItem(at: staging)
            throw IngestError(
                .unreadable,
                "\(source.path) changed while it was being landed; land it again once the delivery is complete")
        }
        try? fm.removeItem(at: target)
        try fm.moveItem(at: staging, to: target)
        return LandedBatch(
            feed: feed, delivery: delivery, fingerprint: fingerprint, files: files, bytes: bytes, landedAt: Date())
    }

    /// Copies a file's bytes into a new read-only file and returns its size and SHA-256, computed from the bytes
    /// written. A link is refused (O_NOFOLLOW), and the copy is never a link: what was landed cannot change
    /// behind the mesh's back when the delivered file does.
    private static func copyBytes(from source: String, to target: String) throws -> (Int, String) {
        func failure(_ path: String, _ what: String) -> IngestError {
            let reason = errno == ELOOP ? "it is a symbolic link" : String(cString: strerror(errno))
            return IngestError(.unreadable, "\(path): \(what) failed (\(reason)); the batch is not landed")
        }
        let input = open(source, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard input >= 0 else { throw failure(source, "opening the delivered file") }
        defer { close(input) }
        var status = stat()
        guard fstat(input, &status) == 0, status.st_mode & S_IFMT == S_IFREG else {
            throw IngestError(.unreadable, "\(source): not a file; the batch is not landed")
        }
        let output = open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o444)
        guard output >= 0 else { throw failure(target, "creating the landed copy") }
        defer { close(output) }
        var hasher = SHA256()
        let capacity = 1 << 20
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        defer { buffer.deallocate() }
        var total = 0
        while true {
            let count = read(input, buffer, capacity)
            if count < 0 {
                if errno == EINTR { continue }
                throw failure(source, "reading the delivered file")
            }
            if count == 0 { break }
            hasher.update(bufferPointer: UnsafeRawBufferPointer(start: buffer, count: count))
            var written = 0
            while written < count {
                let n = write(output, buffer + written, count - written)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw failure(target, "writing the landed copy")
                }
                written += n
            }
            total += count
        }
        return (total, Fingerprint.hex(hasher.finalize()))
    }

    /// The landed batches of a feed, in delivery order.
    public static func batches(of feed: String, home: URL) throws -> [LandedBatch] {
        try ledger(home: home).read { db in
            try LandedBatch.fetchAll(db, sql: "SELECT * FROM batch WHERE feed = ? ORDER BY delivery", arguments: [feed])
        }
    }

    /// Each feed's state: a fingerprint over its landed batches. The mesh rebuilds a raw domain when it changes.
    public static func sourceStates(home: URL) throws -> [String: String] {
        let batches = try ledger(home: home).read { db in
            try Row.fetchAll(db, sql: "SELECT feed, delivery, fingerprint FROM batch ORDER BY feed, delivery").map {
                (feed: $0[0] as String, delivery: $0[1] as String, fingerprint: $0[2] as String)
            }
        }
        var states: [String: String] = [:]
        for feed in feeds {
            let lines = batches.filter { $0.feed == feed }.map { "\($0.delivery) \($0.fingerprint)" }.joined(
                separator: "\n")
            states[feed] = lines.isEmpty ? "empty" : Fingerprint.sha256Hex(lines)
        }
        return states
    }
}

/// The Ingest module's one error type.
public struct IngestError: Error, Sendable, CustomStringConvertible, LocalizedError {
    public enum Code: String, Sendable { case unreadable, missingColumn, rejectedBatch }
    public var code: Code
    public var message: String
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
    public var description: String { message }
    public var errorDescription: String? { message }
}
