import GRDBSQLite
import SQLiteTuning

/// Process-wide SQLite settings, applied by the `SQLiteTuning` target when the program loads (before any
/// database opens: `sqlite3_config` only works before SQLite initialises).
public enum SQLiteSettings {
    /// True when SQLite keeps no memory statistics. With them on, every allocation SQLite makes takes one
    /// global mutex, which two builds on two threads contend for (`docs/benchmarks.md`, the demo, fourteenth
    /// session).
    public static var memoryStatisticsOff: Bool { pharma_mesh_sqlite_memstatus_result() == 0 }

    /// The bytes SQLite counts as allocated: always 0 while the statistics are off.
    public static var countedMemory: Int64 { sqlite3_memory_used() }
}
