import Foundation
import GRDB
import MeshTestSupport
import Testing

@testable import MeshRuntime

struct IncrementalBuildTests {
    /// What the steps saw, appended from build tasks.
    final class Flags: @unchecked Sendable {
        private let lock = NSLock()
        private var _values: [Bool] = []
        func append(_ value: Bool) { lock.withLock { _values.append(value) } }
        var values: [Bool] { lock.withLock { _values } }
    }

    /// A deterministic generator, so that a failure can be replayed.
    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9e37_79b9_7f4a_7c15
            var z = state
            z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
            z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
            return z ^ (z >> 31)
        }
    }

    static func randomValue(_ kind: Int, using random: inout SplitMix) -> DatabaseValue {
        if Int.random(in: 0..<6, using: &random) == 0 { return .null }
        switch (kind + Int.random(in: 0..<8, using: &random) / 7) % 5 {  // mostly the column's own kind
        case 0: return Int64.random(in: -1_000_000...1_000_000, using: &random).databaseValue
        case 1:
            return [0.0, -0.0, 1.5, -2.25e300, .pi, Double(Int.random(in: 0...9, using: &random))].randomElement(
                using: &random)!.databaseValue
        case 2:
            return ["", "a", "héllo", "line\nbreak", "12", "x\(Int.random(in: 0...99, using: &random))"].randomElement(
                using: &random)!.databaseValue
        case 3:
            return Data(
                (0..<Int.random(in: 0...12, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            )
            .databaseValue
        default: return Int64.random(in: 0...3, using: &random).databaseValue
        }
    }

    static let tableSQL = """
        CREATE TABLE facts (
            id INTEGER PRIMARY KEY, i INTEGER, r REAL, t TEXT, b BLOB, n NUMERIC, x, u INTEGER UNIQUE)
        """

    static func randomRow(id: Int64, using random: inout SplitMix) -> [DatabaseValue] {
        [id.databaseValue] + (0..<6).map { randomValue($0 % 5, using: &random) }
            + [Int64.random(in: 0...400, using: &random).databaseValue]
    }

    /// Writes a version-like file with `rows` random rows and returns its full digest.
    static func makeVersion(at path: String, rows: Int, using random: inout SplitMix) throws -> Fingerprint.TableDigest
    {
        let queue = try DatabaseQueue(path: path)
        let digest = try queue.write { db in
            try db.execute(sql: tableSQL)
            for id in 0..<Int64(rows) {
                try db.execute(
                    sql: "INSERT OR IGNORE INTO facts VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    arguments: StatementArguments(randomRow(id: id, using: &random)))
            }
            return try Fingerprint.digest(table: "facts", in: db)
        }
        try queue.close()
        return digest
    }

    @Test func aDigestReadOverTwoConnectionsEqualsTheSingleRead() throws {
        let dir = try TemporaryDirectory("digest")
        defer { dir.remove() }
        let path = dir.url.appendingPathComponent("v.sqlite").path
        var random = SplitMix(state: 7)
        _ = try Self.makeVersion(at: path, rows: 3_000, using: &random)
        let queue = try DatabaseQueue(path: path)
        try queue.writeWithoutTransaction { db in
            // A clustered key whose leading column mixes types, with many rows on the median's value.
            try db.execute(
                sql: """
                    CREATE TABLE clustered (k, j INTEGER, v, PRIMARY KEY (k, j)) WITHOUT ROWID;
                    INSERT INTO clustered SELECT CASE id % 4 WHEN 0 THEN 'w' || (id % 9) WHEN 1 THEN id % 5
                        WHEN 2 THEN (id % 7) / 2.0 ELSE x'0a' END, id, t FROM facts;
                    CREATE VIEW recent AS SELECT * FROM facts WHERE id > 100;
                    """)
            for table in ["facts", "clustered", "recent"] {
                let single = try Fingerprint.digest(table: table, in: db)
                let split = try Fingerprint.digest(table: table, in: db, file: path, minimumRows: 1)
                #expect(split == single, "\(table)")
                #expect(split.rowCount > 250, "\(table)")
            }
            // Below the threshold it is the single read.
            #expect(
                try Fingerprint.digest(table: "facts", in: db, file: path)
                    == Fingerprint.digest(table: "facts", in: db))
        }
        try queue.close()
    }

    @Test func theFullDigestOfAKnownTableIsUnchanged() throws {
        let queue = try DatabaseQueue()
        let digest = try queue.write { db in
            try db.execute(sql: "CREATE TABLE t (i, r, s, b, n)")
            try db.execute(sql: "INSERT INTO t VALUES (1, 2.5, 'héllo', x'00ff', NULL), (-7, -0.0, '', x'', NULL)")
            return try Fingerprint.digest(table: "t", in: db)
        }
        // Computed independently (a Python transcription of the digest as it was before incremental digests).
        #expect(digest.digest == "61c8effe15a482d77ea7154801b86dc8")
        #expect(digest.rowCount == 2)
    }

    /// The copy a build starts from is byte for byte the previous version, whatever its size: whole 4 MiB
    /// chunks (written past the page cache on Linux), a tail that is not a whole number of blocks, and an
    /// empty file; a copy over an existing longer file truncates it.
    @Test(arguments: [0, 1, 4095, 4096, 4 << 20, (4 << 20) + 4096, (9 << 20) + 123])
    func aCopiedFileIsByteForByteTheOriginal(size: Int) throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        var random = SplitMix(state: UInt64(size))
        var bytes: [UInt8] = []
        while bytes.count < size {
            withUnsafeBytes(of: random.next()) { bytes.append(contentsOf: $0.prefix(size - bytes.count)) }
        }
        let original = dir.url.appendingPathComponent("v1.sqlite")
        let copy = dir.url.appendingPathComponent("work.sqlite")
        try Data(bytes).write(to: original)
        try Data(repeating: 7, count: size + 10_000).write(to: copy)
        try DomainBuilder.copyFile(from: original.path, to: copy.path)
        #expect(try Data(contentsOf: copy) == Data(bytes))
    }

    @Test(arguments: [1, 2, 3, 4])
    func randomChangesOnACopyGiveTheSameDigestAsAFullRead(seed: UInt64) throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        var random = SplitMix(state: seed)
        let original = dir.url.appendingPathComponent("v1.sqlite").path
        let copy = dir.url.appendingPathComponent("work.sqlite").path
        let previous = try Self.makeVersion(at: original, rows: 300, using: &random)
        try DomainBuilder.copyFile(from: original, to: copy)

        let queue = try DatabaseQueue(path: copy)
        let tracker = try queue.writeWithoutTransaction { db in
            try IncrementalDigest.install(tables: ["facts"], in: db)
        }
        #expect(try queue.read { try !tracker.hasChanges(in: $0) })
        try queue.write { db in
            for _ in 0..<400 {
                let id = Int64.random(in: 0..<500, using: &random)
                switch Int.random(in: 0..<7, using: &random) {
                case 0, 1:
                    try db.execute(
                        sql: "INSERT OR IGNORE INTO facts VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        arguments: StatementArguments(Self.randomRow(id: id, using: &random)))
                case 2:
                    // REPLACE deletes conflicting rows (on the primary key or on u).
                    try db.execute(
                        sql: "INSERT OR REPLACE INTO facts VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        arguments: StatementArguments(Self.randomRow(id: id, using: &random)))
                case 3:
                    try db.execute(sql: "DELETE FROM facts WHERE id BETWEEN ? AND ?", arguments: [id, id + 3])
                case 4:
                    try db.execute(
                        sql: "UPDATE OR IGNORE facts SET r = ?, t = ?, b = ?, x = ? WHERE id % 17 = ?",
                        arguments: [
                            Self.randomValue(1, using: &random), Self.randomValue(2, using: &random),
                            Self.randomValue(3, using: &random), Self.randomValue(4, using: &random), id % 17,
                        ])
                case 5:
                    try db.execute(
                        sql: """
                            INSERT INTO facts VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                            ON CONFLICT (id) DO UPDATE SET i = excluded.i, n = excluded.n ON CONFLICT DO NOTHING
                            """, arguments: StatementArguments(Self.randomRow(id: id, using: &random)))
                default:
                    // Work undone by a rolled-back savepoint must leave no trace in the digest.
                    try db.inSavepoint {
                        try db.execute(sql: "DELETE FROM facts WHERE id % 5 = ?", arguments: [id % 5])
                        try db.execute(sql: "UPDATE facts SET i = i + 1 WHERE id % 3 = 0")
                        return .rollback
                    }
                }
            }
            // Integers stored in a REAL column read back as reals; text in an INTEGER column is converted.
            try db.execute(sql: "INSERT OR REPLACE INTO facts (id, i, r, u) VALUES (1000, '42', 7, 999)")
        }
        try queue.read { db in
            #expect(try tracker.hasChanges(in: db))
            let incremental = try #require(try tracker.digest(of: "facts", previous: previous, in: db))
            let full = try Fingerprint.digest(table: "facts", in: db)
            #expect(incremental == full)
        }
        try queue.close()
    }

    @Test func aTableDroppedOrAlteredDuringTheBuildIsDigestedFully() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        var random = SplitMix(state: 9)
        let original = dir.url.appendingPathComponent("v1.sqlite").path
        let previous = try Self.makeVersion(at: original, rows: 50, using: &random)
        for change in [
            "DROP TABLE facts; \(Self.tableSQL); INSERT INTO facts (id) VALUES (1)",
            "ALTER TABLE facts ADD COLUMN extra TEXT DEFAULT 'x'",
            "ALTER TABLE facts RENAME TO old_facts; \(Self.tableSQL)",
        ] {
            let copy = dir.url.appendingPathComponent("work.sqlite").path
            try? FileManager.default.removeItem(atPath: copy)
            try DomainBuilder.copyFile(from: original, to: copy)
            let queue = try DatabaseQueue(path: copy)
            let tracker = try queue.writeWithoutTransaction { try IncrementalDigest.install(tables: ["facts"], in: $0) }
            try queue.write { try $0.execute(sql: change) }
            let digest = try queue.read { db in try tracker.digest(of: "facts", previous: previous, in: db) }
            #expect(digest == nil, "\(change)")
            try queue.close()
        }
    }

    /// A domain that publishes `items(value)` from a source file, incrementally when it can.
    static func incrementalSource(_ id: DomainID, source: String, startedFromPrevious: Flags) -> Domain {
        Domain(
            id: id, layer: "raw", owner: ToyMesh.owner, description: "incremental toy source",
            inputs: [.source(source)],
            outputs: [
                OutputPort(
                    table: "items", grain: ["value"],
                    columns: [ColumnContract("value", "INTEGER"), ColumnContract("label", "TEXT")])
            ],
            recipe: Recipe([
                .swift("load") { context in
                    startedFromPrevious.append(context.startedFromPrevious)
                    let url = context.home.appendingPathComponent("sources/\(source).txt")
                    let text = (try? String(contentsOf: url, encoding: .utf8)) ?? ""
                    let values = text.split(separator: "\n").compactMap { Int($0) }
                    try await context.database.write { db in
                        try db.execute(
                            sql: "CREATE TABLE IF NOT EXISTS items (value INTEGER PRIMARY KEY, label TEXT NOT NULL)")
                        try db.execute(sql: "CREATE TEMP TABLE wanted (value INTEGER PRIMARY KEY)")
                        for value in values {
                            try db.execute(sql: "INSERT OR IGNORE INTO wanted VALUES (?)", arguments: [value])
                        }
                        if context.startedFromPrevious {
                            try db.execute(sql: "DELETE FROM items WHERE value NOT IN (SELECT value FROM wanted)")
                        }
                        try db.execute(
                            sql: "INSERT OR IGNORE INTO items SELECT value, 'v' || value FROM wanted")
                        try db.execute(sql: "DROP TABLE temp.wanted")
                    }
                    return StepReport(rowsIn: values.count)
                }
            ]),
            tests: [Unique(table: "items", grain: ["value"])],
            buildsOnPreviousVersion: true)
    }

    @Test func anIncrementalBuildPublishesTheSameFingerprintAsAFullRefresh() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let started = Flags()
        let mesh = try ToyMesh.mesh(
            [Self.incrementalSource("inc", source: "s", startedFromPrevious: started)], home: dir.url)
        let first = try ToyMesh.writeSource("s", values: Array(1...200), home: dir.url)
        _ = try await mesh.run(RunRequest(sourceStates: ["s": first]))
        let second = try ToyMesh.writeSource("s", values: Array(5...180) + [500, 501], home: dir.url)
        let incremental = try await mesh.run(RunRequest(sourceStates: ["s": second]))
        #expect(incremental.outcomes["inc"]?.version == 2)
        let refreshed = try await mesh.run(RunRequest(sourceStates: ["s": second], force: ["inc"], fullRefresh: true))
        #expect(refreshed.outcomes["inc"]?.version == 3)
        #expect(started.values == [false, true, false])

        let v2 = try #require(try mesh.store.version("inc", 2))
        let v3 = try #require(try mesh.store.version("inc", 3))
        #expect(v2.fingerprint == v3.fingerprint)
        #expect(v2.tableDigests == v3.tableDigests)
        #expect(v2.rowCounts["items"] == 178)
        let lines = try mesh.store.logs(of: incremental.runID, domain: "inc").map(\.message)
        #expect(
            lines.contains(
                "built on a copy of v1; digested from changed rows: items; digested fully: none"))
        #expect(try ToyMesh.values(of: "inc", in: mesh) == Array(5...180) + [500, 501])
        // The copy keeps the page size the builder gives new files.
        let file = try DatabaseQueue(path: mesh.path(of: v2).path)
        let pageSize = try await file.read { try Int.fetchOne($0, sql: "PRAGMA page_size") }
        #expect(pageSize == 16384)
        try file.close()

        // Nothing changed: the copy is published as it was, with the same fingerprint.
        let unchanged = try await mesh.run(RunRequest(force: ["inc"]))
        #expect(unchanged.outcomes["inc"]?.version == 4)
        #expect(try mesh.store.version("inc", 4)?.fingerprint == v3.fingerprint)
        #expect(started.values == [false, true, false, true])
    }

    @Test func aVersionWithoutStoredDigestsIsDigestedFully() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let started = Flags()
        let mesh = try ToyMesh.mesh(
            [Self.incrementalSource("inc", source: "s", startedFromPrevious: started)], home: dir.url)
        _ = try await mesh.run(
            RunRequest(sourceStates: ["s": try ToyMesh.writeSource("s", values: [1, 2, 3], home: dir.url)]))
        // As recorded before per-table digests were kept.
        try await mesh.store.pool.write { try $0.execute(sql: "UPDATE domain_version SET table_digests = '{}'") }
        let state = try ToyMesh.writeSource("s", values: [2, 3, 4], home: dir.url)
        _ = try await mesh.run(RunRequest(sourceStates: ["s": state]))
        _ = try await mesh.run(RunRequest(sourceStates: ["s": state], force: ["inc"], fullRefresh: true))
        #expect(started.values == [false, true, false])
        #expect(try mesh.store.version("inc", 2)?.fingerprint == mesh.store.version("inc", 3)?.fingerprint)
        #expect(try mesh.store.version("inc", 2)?.tableDigests["items"] != nil)
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/sqlite3")))
    func rowsWrittenByAnotherProcessAreDigestedFully() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        // A command step writes through its own connection: its rows pass no trigger of the builder.
        let domain = Domain(
            id: "cmd", layer: "raw", owner: ToyMesh.owner, description: "command writer",
            outputs: [OutputPort(table: "items", columns: [ColumnContract("value", "INTEGER")])],
            recipe: Recipe([
                .command(
                    "write", "sh",
                    [
                        "-c",
                        "sqlite3 \"$MESH_DATABASE\" 'CREATE TABLE IF NOT EXISTS items (value INTEGER); INSERT INTO items VALUES ({v})'",
                    ])
            ]),
            parameters: ["v": "1"], buildsOnPreviousVersion: true)
        let mesh = try ToyMesh.mesh([domain], home: dir.url)
        _ = try await mesh.run(RunRequest())
        let second = try await mesh.run(RunRequest(parameters: ["cmd": ["v": "2"]]))
        #expect(second.outcomes["cmd"]?.version == 2)
        #expect(try ToyMesh.values(of: "cmd", in: mesh) == [1, 2])
        let lines = try mesh.store.logs(of: second.runID, domain: "cmd").map(\.message)
        #expect(lines.contains("built on a copy of v1; digested from changed rows: none; digested fully: items"))
        // The same rows built in one go give the same fingerprint.
        let reference = try ToyMesh.mesh(
            [
                ToyMesh.derived(
                    "cmd", from: [], sql: "CREATE TABLE items (value INTEGER); INSERT INTO items VALUES (1), (2)")
            ],
            home: dir.url.appendingPathComponent("reference"))
        _ = try await reference.run(RunRequest())
        #expect(try reference.store.version("cmd", 1)?.fingerprint == mesh.store.version("cmd", 2)?.fingerprint)
    }
}
