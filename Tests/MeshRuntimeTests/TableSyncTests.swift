import GRDB
import Testing

@testable import MeshRuntime

struct TableSyncTests {
    static func contents(_ db: Database) throws -> [String] {
        try Row.fetchAll(
            db, sql: "SELECT id, part, typeof(value), value, note FROM t ORDER BY id, part"
        ).map {
            "\($0[0] as Int64)|\($0[1] as String)|\($0[2] as String)|\($0[3] as DatabaseValue)|\($0[4] as DatabaseValue)"
        }
    }

    @Test func aTableEndsWithTheRowsPutWritingOnlyThoseThatDiffer() throws {
        let queue = try DatabaseQueue()
        let wanted: [[(any DatabaseValueConvertible)?]] = [
            [1, "a", 10, "same"],  // unchanged
            [1, "b", 2.5, nil],  // note changed to NULL
            [2, "a", 3.0, "was the integer 3"],  // same number, another storage class: a digest tells them apart
            [4, "a", 7, "new"],
        ]
        try queue.write { db in
            try db.execute(
                sql: """
                    CREATE TABLE t (id INTEGER NOT NULL, part TEXT NOT NULL, value, note TEXT, PRIMARY KEY (id, part));
                    INSERT INTO t VALUES (1, 'a', 10, 'same'), (1, 'b', 2.5, 'old'), (2, 'a', 3, 'was the integer 3'),
                        (3, 'a', 1, 'gone');
                    """)
            var sync = try TableSync("t", keyColumns: 2, in: db)
            for row in wanted { try sync.put(row) }
            #expect(try sync.finish() == 4)
            #expect((sync.inserted, sync.updated, sync.deleted) == (1, 2, 1))
            #expect(
                try Self.contents(db) == [
                    "1|a|integer|10|\"same\"", "1|b|real|2.5|NULL", "2|a|real|3.0|\"was the integer 3\"",
                    "4|a|integer|7|\"new\"",
                ])
            // The same rows again change nothing.
            var again = try TableSync("t", keyColumns: 2, in: db)
            for row in wanted { try again.put(row) }
            #expect(try again.finish() == 0)
            // A second row of one key is refused by the table's primary key.
            var twice = try TableSync("t", keyColumns: 2, in: db)
            try twice.put([9, "z", 1, nil])
            #expect(throws: DatabaseError.self) { try twice.put([9, "z", 2, nil]) }
            #expect(throws: MeshError.self) { try twice.put([9, "y"]) }
        }
    }
}
