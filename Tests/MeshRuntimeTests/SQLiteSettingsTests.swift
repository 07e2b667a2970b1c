import GRDB
import Testing

@testable import MeshRuntime

struct SQLiteSettingsTests {
    /// The statistics' global mutex is what two concurrent builds contended for; the setting must be in force
    /// in every program that links the runtime, before its first database opens.
    @Test func sqliteKeepsNoMemoryStatisticsOnceDatabasesAreOpen() throws {
        #expect(SQLiteSettings.memoryStatisticsOff)
        let queue = try DatabaseQueue()
        let rows = try queue.write { db in
            try db.execute(
                sql: """
                    CREATE TABLE t (x TEXT);
                    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000)
                    INSERT INTO t SELECT hex(randomblob(64)) FROM n;
                    """)
            return try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM t")
        }
        #expect(rows == 1000)
        // With the statistics on, the open connection's schema, page cache and statements are counted here.
        #expect(SQLiteSettings.countedMemory == 0)
    }
}
