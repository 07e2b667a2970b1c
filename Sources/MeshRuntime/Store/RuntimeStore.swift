import Foundation
import GRDB

/// The runtime database in the mesh home: run history, versions, tests, logs, events.
///
/// A WAL-mode pool: readers (status, queries, the HTTP surface) never wait for a run that writes.
public final class RuntimeStore: Sendable {
    /// The database; other modules read the history through the typed queries (`RuntimeStore+Reports.swift`).
    let pool: DatabasePool
    /// The home whose writer lock tells a live run's `running` records from a dead process's; nil for a store
    /// opened by path.
    let home: URL?
    /// The runtime database's file, which messages about the run history name.
    let path: String

    /// The file of a mesh home's runtime database.
    public static func file(in home: URL) -> URL { home.appendingPathComponent("runtime.sqlite") }

    /// The runtime database of a mesh home.
    public convenience init(home: URL) throws { try self.init(path: Self.file(in: home).path, home: home) }

    public convenience init(path: String) throws { try self.init(path: path, home: nil) }

    init(path: String, home: URL?) throws {
        self.home = home
        self.path = path
        var configuration = Configuration()
        configuration.busyMode = .timeout(30)
        configuration.label = "runtime"
        // WAL with synchronous NORMAL: a commit is not fsynced (checkpoints are), so a power cut may lose the
        // last records but never corrupts the file; a killed process loses nothing. A run writes hundreds of
        // small records (steps, tests, logs, events), and an fsync each was a fifth of a small run's time.
        configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = NORMAL") }
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
            // GRDB reads which migrations are applied before it starts each one's transaction, so two processes
            // opening a new home together would both create the tables: the schema is set up under a lock file.
            let migrator = Self.migrator
            if try !pool.read({ try migrator.hasCompletedMigrations($0) }) {
                try HomeSetupLock.withLock(at: path + "-setup.lock") { try migrator.migrate(pool) }
            }
        } catch let error as MeshError {
            throw error
        } catch {
            throw MeshError(
                .storage,
                "cannot open the mesh's runtime database \(path): \(MeshError.describe(error)). "
                    + "Check that the disk has space and the file is readable and writable by this user.")
        }
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE mesh_run (
                        run_id TEXT PRIMARY KEY, started_at DATETIME NOT NULL, finished_at DATETIME, status TEXT NOT NULL,
                        variation TEXT NOT NULL, trigger TEXT NOT NULL, trigger_event_id INTEGER, request TEXT NOT NULL,
                        code_commit TEXT, message TEXT);
                    CREATE TABLE domain_run (
                        run_id TEXT NOT NULL, domain TEXT NOT NULL, status TEXT NOT NULL, reason TEXT NOT NULL,
                        started_at DATETIME NOT NULL, finished_at DATETIME, duration_ms INTEGER, version INTEGER,
                        input_versions TEXT NOT NULL, parameters TEXT NOT NULL, code_version TEXT NOT NULL,
                        rows_in INTEGER NOT NULL, rows_out INTEGER NOT NULL, message TEXT,
                        PRIMARY KEY (run_id, domain));
                    CREATE INDEX domain_run_by_domain ON domain_run(domain, started_at);
                    CREATE TABLE step_run (
                        run_id TEXT NOT NULL, domain TEXT NOT NULL, step TEXT NOT NULL, kind TEXT NOT NULL, status TEXT NOT NULL,
                        started_at DATETIME NOT NULL, duration_ms INTEGER NOT NULL, rows_in INTEGER NOT NULL,
                        rows_out INTEGER NOT NULL, message TEXT);
                    CREATE INDEX step_run_by_domain ON step_run(domain, run_id);
                    CREATE TABLE test_result (
                        run_id TEXT NOT NULL, domain TEXT NOT NULL, step TEXT NOT NULL, test TEXT NOT NULL,
                        severity TEXT NOT NULL, status TEXT NOT NULL, failures INTEGER NOT NULL, sample TEXT NOT NULL,
                        message TEXT NOT NULL, at DATETIME NOT NULL);
                    CREATE INDEX test_result_by_domain ON test_result(domain, at);
                    CREATE TABLE log_line (
                        run_id TEXT NOT NULL, domain TEXT, step TEXT, level TEXT NOT NULL, message TEXT NOT NULL, at DATETIME NOT NULL);
                    CREATE INDEX log_line_by_run ON log_line(run_id);
                    CREATE TABLE domain_version (
                        domain TEXT NOT NULL, version INTEGER NOT NULL, fingerprint TEXT NOT NULL, path TEXT NOT NULL,
                        run_id TEXT NOT NULL, published_at DATETIME NOT NULL, status TEXT NOT NULL, code_version TEXT NOT NULL,
                        code_commit TEXT, variation TEXT NOT NULL, parameters TEXT NOT NULL, input_versions TEXT NOT NULL,
                        upstream_versions TEXT NOT NULL, source_states TEXT NOT NULL, row_counts TEXT NOT NULL,
                        schema TEXT NOT NULL, retained BOOLEAN NOT NULL,
                        PRIMARY KEY (domain, version));
                    CREATE TABLE current_version (domain TEXT PRIMARY KEY, version INTEGER NOT NULL);
                    CREATE TABLE event (
                        id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, run_id TEXT, domain TEXT,
                        at DATETIME NOT NULL, payload TEXT NOT NULL);
                    CREATE TABLE event_delivery (
                        event_id INTEGER NOT NULL, subscriber TEXT NOT NULL, PRIMARY KEY (event_id, subscriber));
                    """)
        }
        migrator.registerMigration("v2: table digests") { db in
            // Versions published before this migration have no per-table digests: the next incremental
            // build of such a domain digests its tables fully.
            try db.execute(sql: "ALTER TABLE domain_version ADD COLUMN table_digests TEXT NOT NULL DEFAULT '{}'")
        }
        migrator.registerMigration("v3: version pins") { db in
            // A kitchen reads its parent's published files in place; a pin keeps retention off them.
            try db.execute(
                sql:
                    "CREATE TABLE version_pin (domain TEXT NOT NULL, version INTEGER NOT NULL, holder TEXT NOT NULL, PRIMARY KEY (domain, version, holder))"
            )
        }
        migrator.registerMigration("v4: problems and measured tests") { db in
            try db.execute(
                sql: """
                    CREATE TABLE problem (
                        id INTEGER PRIMARY KEY AUTOINCREMENT, domain TEXT NOT NULL, title TEXT NOT NULL, detail TEXT NOT NULL,
                        reported_by TEXT NOT NULL, reported_at DATETIME NOT NULL, status TEXT NOT NULL, closed_by TEXT,
                        closed_at DATETIME, resolution TEXT, fixed_by_run TEXT);
                    CREATE INDEX problem_by_domain ON problem(domain, status);
                    ALTER TABLE test_result ADD COLUMN value REAL;
                    """)
        }
        return migrator
    }

    /// Pins versions for a holder (a kitchen), replacing its earlier pins.
    public func pin(_ versions: [(DomainID, Int)], holder: String) throws {
        try pool.write { db in
            try db.execute(sql: "DELETE FROM version_pin WHERE holder = ?", arguments: [holder])
            for (domain, version) in versions {
                try db.execute(
                    sql: "INSERT OR IGNORE INTO version_pin (domain, version, holder) VALUES (?, ?, ?)",
                    arguments: [domain, version, holder])
            }
        }
    }

    public func unpin(holder: String) throws {
        try pool.write { db in try db.execute(sql: "DELETE FROM version_pin WHERE holder = ?", arguments: [holder]) }
    }

    /// The pinned version numbers of a domain.
    public func pinnedVersions(of domain: DomainID) throws -> Set<Int> {
        try pool.read { db in
            Set(try Int.fetchAll(db, sql: "SELECT version FROM version_pin WHERE domain = ?", arguments: [domain]))
        }
    }

    // MARK: Writing

    func insert(_ event: inout MeshEvent) throws {
        event = try pool.write { [event] db in
            var event = event
            try event.insert(db)
            return event
        }
    }

    /// Records a delivery; false when the subscriber already had the event.
    func markDelivered(eventID: Int64, to subscriber: String) throws -> Bool {
        try pool.write { db in
            try db.execute(
                sql: "INSERT OR IGNORE INTO event_delivery (event_id, subscriber) VALUES (?, ?)",
                arguments: [eventID, subscriber])
            return db.changesCount == 1
        }
    }

    func save<R: PersistableRecord & Sendable>(_ record: R) throws {
        try pool.write { db in try record.upsert(db) }
    }

    func insert<R: PersistableRecord & Sendable>(_ records: [R]) throws {
        guard !records.isEmpty else { return }
        try pool.write { db in for record in records { try record.insert(db) } }
    }

    /// Records a new version and makes it the serving one, in one transaction.
    func publish(_ version: VersionRecord, domainRun: DomainRunRecord) throws {
        try pool.write { db in
            try version.insert(db)
            try CurrentVersionRecord(domain: version.domain, version: version.version).upsert(db)
            try domainRun.upsert(db)
        }
    }

    /// Marks a version's record as not retained: its file is about to be removed.
    func markNotRetained(_ domain: DomainID, version: Int) throws {
        try pool.write { db in
            try db.execute(
                sql: "UPDATE domain_version SET retained = 0 WHERE domain = ? AND version = ?",
                arguments: [domain, version])
        }
    }

    // MARK: Reading

    /// The serving version of every domain, read in one transaction so that the set is consistent.
    public func currentVersions() throws -> [DomainID: VersionRecord] {
        try pool.read { db in
            let rows = try VersionRecord.fetchAll(
                db,
                sql: """
                    SELECT v.* FROM domain_version v JOIN current_version c ON c.domain = v.domain AND c.version = v.version
                    """)
            return Dictionary(uniqueKeysWithValues: rows.map { ($0.domain, $0) })
        }
    }

    /// The serving version number and file of each named domain, read in one transaction.
    public func currentFiles(of domains: [DomainID]) throws -> [DomainID: (version: Int, path: String)] {
        try pool.read { db in
            var result: [DomainID: (version: Int, path: String)] = [:]
            for row in try Row.fetchAll(
                db,
                sql: """
                    SELECT v.domain, v.version, v.path FROM domain_version v
                    JOIN current_version c ON c.domain = v.domain AND c.version = v.version
                    """)
            {
                let id = DomainID(row[0] as String)
                if domains.contains(id) { result[id] = (row[1], row[2]) }
            }
            return result
        }
    }

    public func currentVersion(of domain: DomainID) throws -> VersionRecord? {
        try pool.read { db in
            try VersionRecord.fetchOne(
                db,
                sql: """
                    SELECT v.* FROM domain_version v JOIN current_version c ON c.domain = v.domain AND c.version = v.version
                    WHERE v.domain = ?
                    """, arguments: [domain])
        }
    }

    public func versions(of domain: DomainID) throws -> [VersionRecord] {
        try pool.read { db in
            try VersionRecord.fetchAll(
                db, sql: "SELECT * FROM domain_version WHERE domain = ? ORDER BY version DESC", arguments: [domain])
        }
    }

    /// The highest version number a domain ever published (0 when none), without decoding the records.
    public func latestVersionNumber(of domain: DomainID) throws -> Int {
        try pool.read { db in
            try Int.fetchOne(db, sql: "SELECT MAX(version) FROM domain_version WHERE domain = ?", arguments: [domain])
                ?? 0
        }
    }

    /// The retained versions of a domain, newest first.
    public func retainedVersions(of domain: DomainID) throws -> [VersionRecord] {
        try pool.read { db in
            try VersionRecord.fetchAll(
                db, sql: "SELECT * FROM domain_version WHERE domain = ? AND retained = 1 ORDER BY version DESC",
                arguments: [domain])
        }
    }

    public func version(_ domain: DomainID, _ version: Int) throws -> VersionRecord? {
        try pool.read { db in try VersionRecord.fetchOne(db, key: ["domain": domain.rawValue, "version": version]) }
    }

    public func runs(limit: Int = 50) throws -> [MeshRunRecord] {
        try pool.read { db in
            try MeshRunRecord.fetchAll(
                db, sql: "SELECT * FROM mesh_run ORDER BY started_at DESC LIMIT ?", arguments: [limit])
        }.map(settled)
    }

    public func run(_ id: RunID) throws -> MeshRunRecord? {
        try pool.read { db in try MeshRunRecord.fetchOne(db, key: id.rawValue) }.map(settled)
    }

    /// Records still `running` with no process holding the writer lock belong to a process that died (killed,
    /// or stopped by a full disk before it could record the end): readers see them as interrupted at once,
    /// and the next run records them so (`Mesh.recover`).
    private var writerAlive: Bool { home.map(MeshLock.isHeld(home:)) ?? true }

    private func settled(_ run: MeshRunRecord) -> MeshRunRecord {
        guard run.status == .running, !writerAlive else { return run }
        var run = run
        run.status = .interrupted
        run.message = run.message ?? "the process stopped during the run"
        return run
    }

    private func settled(_ runs: [DomainRunRecord]) -> [DomainRunRecord] {
        guard runs.contains(where: { $0.status == .running }), !writerAlive else { return runs }
        return runs.map { run in
            guard run.status == .running else { return run }
            var run = run
            run.status = .interrupted
            run.message = "the process stopped during the build; the previous version kept serving"
            return run
        }
    }

    public func domainRuns(of domain: DomainID, limit: Int = 50) throws -> [DomainRunRecord] {
        try settled(
            pool.read { db in
                try DomainRunRecord.fetchAll(
                    db, sql: "SELECT * FROM domain_run WHERE domain = ? ORDER BY started_at DESC, rowid DESC LIMIT ?",
                    arguments: [domain, limit])
            })
    }

    /// A domain's runs, newest first, each with the mesh run it was part of (its trigger, variation and outcome).
    public func history(of domain: DomainID, limit: Int = 50) throws -> [(domain: DomainRunRecord, run: MeshRunRecord?)]
    {
        let runs = try domainRuns(of: domain, limit: limit)
        let ids = runs.map(\.runID.rawValue)
        let meshRuns = try pool.read { db in
            try MeshRunRecord.fetchAll(db, keys: ids)
        }.map(settled)
        let byID = Dictionary(meshRuns.map { ($0.runID, $0) }, uniquingKeysWith: { a, _ in a })
        return runs.map { ($0, byID[$0.runID]) }
    }

    /// Each domain's typical build time in milliseconds: the median of its last `builds` builds that did work
    /// (skipped and up-to-date domains record no duration). Domains never built are absent.
    public func typicalBuildDurations(builds: Int = 5) throws -> [DomainID: Int] {
        try pool.read { db in
            var durations: [DomainID: [Int]] = [:]
            let rows = try Row.fetchCursor(
                db,
                sql: """
                    SELECT domain, duration_ms FROM (
                        SELECT domain, duration_ms,
                               ROW_NUMBER() OVER (PARTITION BY domain ORDER BY started_at DESC, rowid DESC) AS n
                        FROM domain_run WHERE duration_ms > 0)
                    WHERE n <= ?
                    """, arguments: [builds])
            while let row = try rows.next() { durations[DomainID(row[0] as String), default: []].append(row[1]) }
            return durations.mapValues { $0.sorted()[$0.count / 2] }
        }
    }

    public func domainRuns(in run: RunID) throws -> [DomainRunRecord] {
        try settled(
            pool.read { db in
                try DomainRunRecord.fetchAll(
                    db, sql: "SELECT * FROM domain_run WHERE run_id = ? ORDER BY started_at, rowid", arguments: [run])
            })
    }

    public func steps(of domain: DomainID, in run: RunID) throws -> [StepRunRecord] {
        try pool.read { db in
            try StepRunRecord.fetchAll(
                db, sql: "SELECT * FROM step_run WHERE domain = ? AND run_id = ? ORDER BY started_at, rowid",
                arguments: [domain, run])
        }
    }

    public func testResults(of domain: DomainID, run: RunID? = nil, limit: Int = 500) throws -> [TestResultRecord] {
        try pool.read { db in
            if let run {
                return try TestResultRecord.fetchAll(
                    db, sql: "SELECT * FROM test_result WHERE domain = ? AND run_id = ? ORDER BY rowid",
                    arguments: [domain, run])
            }
            return try TestResultRecord.fetchAll(
                db, sql: "SELECT * FROM test_result WHERE domain = ? ORDER BY at DESC, rowid DESC LIMIT ?",
                arguments: [domain, limit])
        }
    }

    public func logs(of run: RunID, domain: DomainID? = nil) throws -> [LogLine] {
        try pool.read { db in
            if let domain {
                return try LogLine.fetchAll(
                    db, sql: "SELECT * FROM log_line WHERE run_id = ? AND domain = ? ORDER BY rowid",
                    arguments: [run, domain])
            }
            return try LogLine.fetchAll(
                db, sql: "SELECT * FROM log_line WHERE run_id = ? ORDER BY rowid", arguments: [run])
        }
    }

    /// The newest event's id (0 when none): it changes whenever the history does.
    public func latestEventID() throws -> Int64 {
        try pool.read { db in try Int64.fetchOne(db, sql: "SELECT MAX(id) FROM event") ?? 0 }
    }

    public func events(after id: Int64 = 0, limit: Int = 1000) throws -> [MeshEvent] {
        try pool.read { db in
            try MeshEvent.fetchAll(
                db, sql: "SELECT * FROM event WHERE id > ? ORDER BY id LIMIT ?", arguments: [id, limit])
        }
    }
}
