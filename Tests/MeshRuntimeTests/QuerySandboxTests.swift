import Foundation
import MeshTestSupport
import Testing

@testable import MeshRuntime

/// The query sandbox against the escapes a hostile reader tries: each statement is written as an attacker
/// would hide it (comments before the verb, line comments, odd case and spacing, a second statement after a
/// harmless one), and each must be refused without touching a file.
struct QuerySandboxTests {
    /// `orders` (values 1, 2, 3), published once.
    private func mesh(_ dir: TemporaryDirectory) async throws -> Mesh {
        let mesh = try ToyMesh.mesh([ToyMesh.source("orders", source: "s")], home: dir.url)
        _ = try await mesh.run(
            RunRequest(sourceStates: ["s": try ToyMesh.writeSource("s", values: [1, 2, 3], home: dir.url)]))
        return mesh
    }

    /// The escapes; `{path}` is a file that must never be created.
    static let escapes: [String] = [
        // ATTACH creates an empty database file wherever the server may write; hidden behind comments.
        "/**/ATTACH DATABASE '{path}' AS x",
        "--x\nattach database '{path}' as x",
        "  /* one */ -- two\n\t AtTaCh   '{path}'   aS   x",
        "ATTACH 'file:{path}?mode=rwc' AS x",
        // VACUUM INTO writes a copy of a database to any path (SQLite treats it as an ATTACH).
        "VACUUM INTO '{path}'",
        "/**/vacuum orders into '{path}' /* orders.items */",
        "VACUUM",
        "DETACH orders",
        "/**/DETACH DATABASE orders",
        // PRAGMAs that change the connection or the file.
        "/**/PRAGMA writable_schema = 1",
        "pragma/**/writable_schema=ON",
        "PRAGMA query_only = 0",
        "  --\n PRAGMA orders.journal_mode = DELETE",
        "PRAGMA trusted_schema = 1",
        "SELECT * FROM pragma_database_list",
        "select file from pragma_database_list where name = 'orders'",
        // Pointers and extensions.
        "select fts3_tokenizer('simple')",
        "SELECT FTS3_TOKENIZER('simple', x'0000000000000000')",
        "select hex(fts3_tokenizer('porter'))",
        "select load_extension('{path}')",
        "SELECT /**/ Load_Extension('libevil', 'init')",
        // A second statement after a harmless one.
        "SELECT 1; DELETE FROM orders.items",
        "select 1;/**/delete from orders.items",
        "SELECT 1 -- a comment\n; ATTACH '{path}' AS y",
        "SELECT 'a'; SELECT 'b'",
        "SELECT 1; garbage that does not parse",
        // Writes, transactions and the rest.
        "DELETE FROM orders.items",
        "/* */ insert into orders.items values (9)",
        "UPDATE orders.items SET value = 0",
        "WITH x AS (SELECT 1) DELETE FROM orders.items",
        "REPLACE INTO orders.items VALUES (4)",
        "CREATE TABLE x (a)",
        "create temp table t as select 1",
        "CREATE TEMP VIEW v AS SELECT 1",
        "DROP TABLE orders.items",
        "ALTER TABLE orders.items RENAME TO gone",
        "BEGIN",
        "begin immediate",
        "COMMIT",
        "SAVEPOINT s",
        "RELEASE s",
        "ANALYZE orders.items",
        "REINDEX",
    ]

    @Test(arguments: escapes)
    func anEscapeIsRefusedAndNoFileChanges(template: String) async throws {
        let dir = try TemporaryDirectory("sandbox")
        defer { dir.remove() }
        let mesh = try await mesh(dir)
        let published = try #require(try mesh.store.currentVersion(of: "orders"))
        let file = dir.url.appendingPathComponent(published.path)
        let before = try Fingerprint.sha256Hex(fileAt: file)
        let target = dir.url.appendingPathComponent("escape-\(UUID().uuidString.prefix(6)).sqlite")
        let sql = template.replacingOccurrences(of: "{path}", with: target.path)

        let error = #expect(throws: MeshError.self) { try mesh.query(sql) }
        #expect(error?.code == .readOnly, "\(sql): \(error?.message ?? "no error")")
        #expect(error?.message.hasPrefix("refused: ") == true, "\(error?.message ?? "")")
        #expect(!FileManager.default.fileExists(atPath: target.path), "\(sql) created \(target.path)")
        #expect(try Fingerprint.sha256Hex(fileAt: file) == before, "\(sql) changed the published file")
        #expect(try mesh.query("SELECT COUNT(*) FROM orders.items").rows == [[.integer(3)]])
    }

    @Test func theRefusalNamesWhatWasRefused() async throws {
        let dir = try TemporaryDirectory("sandbox")
        defer { dir.remove() }
        let mesh = try await mesh(dir)
        func message(_ sql: String) -> String {
            (#expect(throws: MeshError.self) { try mesh.query(sql) })?.message ?? ""
        }
        #expect(message("/**/ATTACH DATABASE 'x' AS x").contains("(ATTACH) would change state"))
        #expect(message("--\ndelete from orders.items").contains("(DELETE) would change state"))
        #expect(message("/**/PRAGMA writable_schema = 1").contains("PRAGMA writable_schema is not one of"))
        #expect(message("SELECT fts3_tokenizer('simple')").contains("may not call fts3_tokenizer()"))
        #expect(message("SELECT 1; SELECT 2").contains("a query is one statement"))
        #expect(message("VACUUM").contains("would change state"))
        #expect(message("SAVEPOINT s").contains("(SAVEPOINT) would change state"))
    }

    /// What SQLite refuses by itself before asking the authorizer (the schema table in defensive mode), and
    /// functions a build of SQLite may lack (the shell's file functions): refused or unknown, never run.
    @Test(arguments: [
        "SELECT readfile('/etc/passwd')", "SELECT writefile('{path}', 'x')", "SELECT edit('x', 'vi')",
        "SELECT * FROM fsdir('/')", "SELECT * FROM zipfile('{path}')", "UPDATE sqlite_master SET sql = ''",
        "DELETE FROM orders.sqlite_master",
    ])
    func fileFunctionsNeverRun(template: String) async throws {
        let dir = try TemporaryDirectory("sandbox")
        defer { dir.remove() }
        let mesh = try await mesh(dir)
        let target = dir.url.appendingPathComponent("written.txt")
        let error = #expect(throws: MeshError.self) {
            try mesh.query(template.replacingOccurrences(of: "{path}", with: target.path))
        }
        let message = error?.message ?? ""
        #expect(
            error?.code == .readOnly || message.contains("no such") || message.contains("may not be modified"),
            "\(message)")
        #expect(!FileManager.default.fileExists(atPath: target.path))
    }

    @Test(arguments: [
        ("SELECT 'a;DELETE b'", [[QueryValue.text("a;DELETE b")]] as [[QueryValue]]?),
        ("select 'x' /* ; drop table orders.items */ -- ; attach\n", [[.text("x")]]),
        ("SELECT 1;", [[.integer(1)]]),
        ("SELECT 1; -- and a comment after", [[.integer(1)]]),
        ("SELECT 1 ;; ; /* */ ;", [[.integer(1)]]),
        ("/* leading */ -- comment\nSELECT COUNT(*) FROM orders.items", [[.integer(3)]]),
        (
            "SELECT p.name FROM orders.sqlite_master m, pragma_table_info(m.name, 'orders') p WHERE m.name = 'items'",
            [[.text("value")]]
        ),
        (
            "PRAGMA orders.table_info(items)",
            [[.integer(0), .text("value"), .text("INTEGER"), .integer(0), .null, .integer(0)]]
        ),
        ("SELECT value FROM json_each('[7]')", [[.integer(7)]]),
        ("SELECT type, name FROM orders.sqlite_master WHERE name = 'items'", [[.text("table"), .text("items")]]),
        ("VALUES (1), (2)", [[.integer(1)], [.integer(2)]]),
        ("EXPLAIN QUERY PLAN SELECT * FROM orders.items", nil),
        (
            "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT COUNT(*) FROM r",
            [[.integer(5)]]
        ),
        ("SELECT sqlite_version() IS NOT NULL, abs(-2), upper('a')", [[.integer(1), .integer(2), .text("A")]]),
    ])
    func readsAreAccepted(sql: String, rows: [[QueryValue]]?) async throws {
        let dir = try TemporaryDirectory("sandbox")
        defer { dir.remove() }
        let mesh = try await mesh(dir)
        let result = try mesh.query(sql)
        if let rows { #expect(result.rows == rows) } else { #expect(!result.rows.isEmpty) }
    }

    @Test func aQueryIsCancelledFromAnotherThread() async throws {
        let dir = try TemporaryDirectory("sandbox")
        defer { dir.remove() }
        let mesh = try ToyMesh.mesh([ToyMesh.source("a", source: "s")], home: dir.url)
        let cancellation = QueryCancellation()
        let endless = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT COUNT(*) FROM n"
        Thread {
            Thread.sleep(forTimeInterval: 0.2)
            cancellation.cancel()
        }.start()
        let started = Date()
        let error = #expect(throws: MeshError.self) {
            try mesh.query(endless, limits: QueryLimits(timeout: 600), cancellation: cancellation)
        }
        #expect(error?.message.contains("stopped before it finished") == true, "\(error?.message ?? "")")
        #expect(Date().timeIntervalSince(started) < 10)
        // A cancelled query never starts again.
        let again = #expect(throws: MeshError.self) {
            try mesh.query("SELECT 1", limits: QueryLimits(), cancellation: cancellation)
        }
        #expect(again?.message.contains("stopped before it finished") == true)
    }

    @Test func valuesAndResultsAreBounded() async throws {
        let dir = try TemporaryDirectory("sandbox")
        defer { dir.remove() }
        let mesh = try await mesh(dir)
        let tooLong = #expect(throws: MeshError.self) {
            try mesh.query("SELECT length(randomblob(2000000))", limits: QueryLimits(maxValueBytes: 1 << 20))
        }
        #expect(tooLong?.message.contains("longer than 1 MiB") == true, "\(tooLong?.message ?? "")")
        let concatenated = #expect(throws: MeshError.self) {
            try mesh.query(
                """
                WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 300000)
                SELECT length(group_concat(printf('%08d', n), '')) FROM r
                """, limits: QueryLimits(maxValueBytes: 1 << 20))
        }
        #expect(concatenated?.message.contains("longer than 1 MiB") == true, "\(concatenated?.message ?? "")")
        // 1000 rows of 1000 bytes: a 100 kB cap keeps fewer than 100 of them and says why.
        let big = try mesh.query(
            "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 1000) SELECT printf('%1000d', n) FROM r",
            limits: QueryLimits(maxResultBytes: 100_000))
        #expect(big.truncated && big.cut == .bytes)
        #expect(big.rows.count < 100 && big.rows.count > 90)
        let rows = try mesh.query("SELECT value FROM orders.items", limits: QueryLimits(maxRows: 2))
        #expect(rows.truncated && rows.cut == .rows && rows.rows.count == 2)
    }

    /// A sort larger than the query's cache spills to temporary files: they are in the home's `tmp/query`,
    /// never in the system's temporary folder, and gone when the query ends.
    @Test func temporaryFilesStayInTheHome() async throws {
        let dir = try TemporaryDirectory("sandbox")
        defer { dir.remove() }
        let mesh = try await mesh(dir)
        let folder = mesh.queryTemporaryFolder.standardizedFileURL.path
        let seen = Locked<Set<String>>([])
        let done = Locked(false)
        let watcher = Thread {
            while !done.value {
                for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? [] {
                    if let target = try? FileManager.default.destinationOfSymbolicLink(
                        atPath: "/proc/self/fd/\(entry)"),
                        target.contains("/sqlite-")
                    {
                        seen.mutate { $0.insert(target) }
                    }
                }
                Thread.sleep(forTimeInterval: 0.005)
            }
        }
        watcher.start()
        let sorted = try mesh.query(
            """
            WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 200000)
            SELECT n FROM r ORDER BY hex(randomblob(24))
            """, limits: QueryLimits(maxRows: 1, cacheKiB: 64))
        done.mutate { $0 = true }
        #expect(sorted.rows.count == 1)
        // Other tests run in this process at the same time: their query files are in their own homes.
        let paths = seen.value.filter { $0.contains("/sqlite-") && $0.contains(".tmp") }
        #expect(paths.contains { $0.hasPrefix(folder + "/sqlite-") }, "the sort did not spill: nothing to check")
        for path in paths { #expect(path.contains("/tmp/query/sqlite-"), "a query's temporary file at \(path)") }
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder).isEmpty)
    }
}

/// A value shared between a test and a thread it starts.
final class Locked<Value>: @unchecked Sendable {
    // @unchecked: `stored` is only touched with `lock` held.
    private let lock = NSLock()
    private var stored: Value
    init(_ value: Value) { stored = value }
    var value: Value { lock.withLock { stored } }
    func mutate(_ change: (inout Value) -> Void) { lock.withLock { change(&stored) } }
}
