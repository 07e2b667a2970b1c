import Foundation
import GRDB
import MeshTestSupport
import Testing

@testable import MeshRuntime

/// Library errors reach people in words that say what happened, where, and what to do.
struct MeshErrorTests {
    @Test func aFullDatabaseIsDescribedAsAFullDiskNamingTheFile() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.url.appendingPathComponent("small.sqlite").path
        let queue = try DatabaseQueue(path: path)
        // SQLite answers SQLITE_FULL when a file may not grow, as it does when the disk has no space left.
        let error = try #require(
            throws: DatabaseError.self,
            performing: {
                try queue.write { db in
                    try db.execute(sql: "CREATE TABLE t (x TEXT); PRAGMA max_page_count = 3")
                    for _ in 0..<100 { try db.execute(sql: "INSERT INTO t VALUES (randomblob(4000))") }
                }
            })
        #expect(MeshError.isDiskFull(error))
        let text = MeshError.describe(error, file: path)
        #expect(text.contains("the disk is full"))
        #expect(text.contains(path))
        #expect(text.contains("free space"))
        #expect(!text.contains("SQLite error"))
    }

    @Test func otherErrorsKeepTheirDetailInsideASentence() throws {
        let queue = try DatabaseQueue()
        let error = try #require(
            throws: DatabaseError.self,
            performing: { try queue.read { db in try db.execute(sql: "SELECT nope FROM sqlite_master") } })
        let text = MeshError.describe(error, file: "x.sqlite")
        #expect(text.hasPrefix("SQLite refused a statement (x.sqlite): no such column: nope"))
        #expect(text.contains("SELECT nope FROM sqlite_master"))
        let missing = CocoaError(.fileReadNoSuchFile, userInfo: [NSFilePathErrorKey: "/feeds/a.csv"])
        #expect(MeshError.describe(missing) == "/feeds/a.csv: no such file")
        #expect(MeshError.describe(MeshError(.query, "as it was")) == "as it was")
    }
}
