import FeedFormats
import Foundation
import GRDB
import GRDBSQLite
import MeshRuntime

/// One table a feed loads into.
public struct RawTable: Sendable {
    public var name: String
    /// Column name and SQLite type, in the order the reader yields values.
    public var columns: [(name: String, type: String)]
    /// The natural key; rows with the same key are de-duplicated.
    public var key: [String]
    public init(name: String, columns: [(name: String, type: String)], key: [String]) {
        self.name = name
        self.columns = columns
        self.key = key
    }
}

/// What happens when a later row has the key of an earlier one.
public enum ConflictPolicy: Sendable {
    /// The latest delivery wins (restatements, monthly refreshes).
    case latestWins
    /// The first occurrence wins (duplicate event ids of the same event).
    case firstWins
}

/// A row the reader rejected: it goes to quarantine with where and why.
public struct QuarantinedRow: Sendable, Hashable {
    public var line: Int
    public var column: String
    public var rawValue: String
    public var reason: String
    public init(line: Int, column: String, rawValue: String, reason: String) {
        self.line = line
        self.column = column
        self.rawValue = rawValue
        self.reason = reason
    }
}

/// Reads one feed file: yields typed rows (into one of the feed's tables) and rejected rows.
public protocol FeedFileParser: Sendable {
    /// Calls `row` for each typed row (table index, line, values in the table's column order) and
    /// `rejected` for each row that fails validation. Throws a batch-level problem (a missing required column,
    /// malformed XML) as an error whose description names the file and what to do.
    func parse(
        file: URL, row: (Int, Int, [FieldValue]) throws -> Void, rejected: (QuarantinedRow) throws -> Void
    ) throws
}

/// The declaration of a raw feed: its tables, how duplicates resolve, how to parse its files, and any
/// post-load restatement SQL.
public struct RawFeed: Sendable {
    public var feed: String
    public var description: String
    public var tables: [RawTable]
    public var policy: ConflictPolicy
    public var parser: any FeedFileParser
    /// SQL run after every load (for example, marking reversed claims).
    public var finish: String?
    public var tests: [any DataTest]
    /// Bump when parsing or loading changes behaviour: the next build starts again from every batch.
    public var loaderVersion: String

    public init(
        feed: String, description: String, tables: [RawTable], policy: ConflictPolicy = .latestWins,
        parser: any FeedFileParser,
        finish: String? = nil, tests: [any DataTest] = [], loaderVersion: String = "1"
    ) {
        self.feed = feed
        self.description = description
        self.tables = tables
        self.policy = policy
        self.parser = parser
        self.finish = finish
        self.tests = tests
        self.loaderVersion = loaderVersion
    }

    public var domainID: DomainID { DomainID("raw-\(feed)") }
}

extension RawFeed {
    /// The raw domain of this feed: lands nothing itself, loads every landed batch not yet loaded.
    public var domain: Domain {
        let outputs =
            tables.map { table in
                OutputPort(
                    table: table.name, description: "\(feed) rows, one per key, restatements applied", grain: table.key,
                    columns: table.columns.map { ColumnContract($0.name, $0.type) } + [
                        ColumnContract("batch", "TEXT", "the delivery (YYYY-MM-DD) the row came from"),
                        ColumnContract("line", "INTEGER", "the row's line in its file"),
                    ])
            } + [
                OutputPort(
                    table: "quarantine", description: "rows that failed validation, with where and why",
                    columns: ["batch", "file", "line", "column", "raw_value", "reason"].map {
                        ColumnContract($0, $0 == "line" ? "INTEGER" : "TEXT")
                    }),
                OutputPort(
                    table: "batches", description: "every landed batch and what loading it did", grain: ["batch"],
                    columns: [
                        ColumnContract("batch", "TEXT"), ColumnContract("fingerprint", "TEXT"),
                        ColumnContract("files", "TEXT"),
                        ColumnContract("status", "TEXT", "loaded, loaded_with_quarantine, or rejected"),
                        ColumnContract("rows_read", "INTEGER"), ColumnContract("rows_loaded", "INTEGER"),
                        ColumnContract("rows_quarantined", "INTEGER"), ColumnContract("message", "TEXT"),
                        ColumnContract("new_in_build", "INTEGER", "1 when this version loaded the batch"),
                    ]),
            ]
        let keyTests: [any DataTest] = tables.flatMap { table -> [any DataTest] in
            [Unique(table: table.name, grain: table.key), NotNull(table: table.name, columns: table.key)]
        }
        let batchTests: [any DataTest] = [
            CustomSQLTest(
                "rows_quarantined_in_new_batches", severity: .warn,
                sql: "SELECT q.* FROM quarantine q JOIN batches b ON b.batch = q.batch WHERE b.new_in_build = 1"),
            CustomSQLTest(
                "new_batches_rejected", severity: .warn,
                sql: "SELECT batch, message FROM batches WHERE status = 'rejected' AND new_in_build = 1"),
        ]
        let loader = RawLoader(feed: self)
        return Domain(
            id: domainID, layer: "raw",
            owner: Owner(team: "data engineering: ingest", contact: "ingest@pharma-mesh.example"),
            description: description, inputs: [.source(feed)], outputs: outputs,
            recipe: Recipe([
                .swift("load", version: loaderVersion, tests: keyTests) { context in try await loader.load(context) }
            ]),
            tests: batchTests + tests, retainedTables: ["ingest_state"],
            // A new batch costs its own rows: the build starts from a copy of the previous version's file
            // (and digests only the rows that changed) instead of copying every row of every earlier batch.
            buildsOnPreviousVersion: true)
    }
}

/// Loads landed batches into a raw domain's working database: incrementally on top of the previous
/// version when the loader is unchanged, else from every batch.
struct RawLoader: Sendable {
    let feed: RawFeed

    func load(_ context: StepContext) async throws -> StepReport {
        let batches = try Landing.batches(of: feed.feed, home: context.home)
        let feed = self.feed
        let home = context.home
        let signature =
            "\(feed.loaderVersion)|"
            + feed.tables.map { "\($0.name):\($0.columns.map(\.name).joined(separator: ","))" }.joined(separator: ";")
        let tables = feed.tables.map(\.name) + ["quarantine", "batches", "ingest_state"]
        return try await context.database.writeWithoutTransaction { db -> StepReport in
            var loaded = Set<String>()
            var incremental = false
            if context.startedFromPrevious {
                // The working file is a copy of the previous version: load only the new batches into it, unless
                // the loader changed since (then start again from every batch).
                incremental =
                    try db.tableExists("ingest_state")
                    && String.fetchOne(db, sql: "SELECT signature FROM ingest_state") == signature
                if !incremental {
                    for table in tables { try db.execute(sql: "DROP TABLE IF EXISTS main.\(table)") }
                    try Self.createTables(feed, in: db)
                    try db.execute(sql: "INSERT INTO ingest_state VALUES (?)", arguments: [signature])
                }
            } else {
                try Self.createTables(feed, in: db)
                incremental =
                    try !context.fullRefresh && context.previousVersion != nil
                    && db.tableExists("ingest_state", in: "previous")
                    && String.fetchOne(db, sql: "SELECT signature FROM previous.ingest_state") == signature
                if incremental {
                    for table in feed.tables.map(\.name) + ["quarantine", "batches"] {
                        try db.execute(sql: "INSERT INTO \(table) SELECT * FROM previous.\(table)")
                    }
                }
                try db.execute(sql: "INSERT INTO ingest_state VALUES (?)", arguments: [signature])
            }
            if incremental {
                try db.execute(sql: "UPDATE batches SET new_in_build = 0 WHERE new_in_build <> 0")
                loaded = try Set(String.fetchAll(db, sql: "SELECT batch FROM batches"))
            }
            var rowsIn = 0
            for batch in batches where !loaded.contains(batch.delivery) {
                rowsIn += try Self.loadBatch(batch, feed: feed, home: home, db: db, context: context)
            }
            if let finish = feed.finish { try db.execute(sql: finish) }
            let rowsOut = try feed.tables.map { try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM \($0.name)") ?? 0 }
                .reduce(0, +)
            return StepReport(
                rowsIn: rowsIn, rowsOut: rowsOut,
                message:
                    "\(batches.count - loaded.count) new batch(es) of \(batches.count)\(incremental ? ", on top of the previous version" : "")"
            )
        }
    }

    static func createTables(_ feed: RawFeed, in db: Database) throws {
        for table in feed.tables {
            let columns =
                table.columns.map { "\"\($0.name)\" \($0.type)" } + ["batch TEXT NOT NULL", "line INTEGER NOT NULL"]
            let key = table.key.map { "\"\($0)\"" }.joined(separator: ", ")
            // Clustered on the key (WITHOUT ROWID): one b-tree, and vendor files sorted by the key's leading
            // columns (week, then prescriber) insert near its end.
            try db.execute(
                sql:
                    "CREATE TABLE \(table.name) (\(columns.joined(separator: ", ")), PRIMARY KEY (\(key))) WITHOUT ROWID"
            )
        }
        try db.execute(
            sql: """
                CREATE TABLE quarantine (batch TEXT NOT NULL, file TEXT NOT NULL, line INTEGER NOT NULL, "column" TEXT NOT NULL,
                                         raw_value TEXT, reason TEXT NOT NULL);
                CREATE TABLE batches (batch TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, files TEXT NOT NULL, status TEXT NOT NULL,
                                      rows_read INTEGER NOT NULL, rows_loaded INTEGER NOT NULL, rows_quarantined INTEGER NOT NULL,
                                      message TEXT, new_in_build INTEGER NOT NULL);
                CREATE TABLE ingest_state (signature TEXT NOT NULL);
                """)
    }

    /// Binds and steps one row through SQLite's C interface: the hot path of every load.
    static func insert(_ values: [FieldValue], batch: String, line: Int, into statement: Statement, db: Database) throws
    {
        let handle = statement.sqliteStatement
        sqlite3_reset(handle)
        let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
        for (offset, value) in values.enumerated() {
            let index = Int32(offset + 1)
            switch value {
            case .null: sqlite3_bind_null(handle, index)
            case .integer(let v): sqlite3_bind_int64(handle, index, v)
            case .real(let v): sqlite3_bind_double(handle, index, v)
            case .text(let v): sqlite3_bind_text(handle, index, v, -1, transient)
            }
        }
        // The batch parameter was bound once for the whole batch (bindings survive sqlite3_reset).
        sqlite3_bind_int64(handle, Int32(values.count + 2), Int64(line))
        let code = sqlite3_step(handle)
        guard code == SQLITE_DONE else {
            throw DatabaseError(
                resultCode: ResultCode(rawValue: code), message: String(cString: sqlite3_errmsg(db.sqliteConnection)),
                sql: statement.sql)
        }
    }

    /// Loads one batch in one transaction; returns the rows read.
    static func loadBatch(_ batch: LandedBatch, feed: RawFeed, home: URL, db: Database, context: StepContext) throws
        -> Int
    {
        let folder = home.appendingPathComponent("landing/\(batch.feed)/\(batch.delivery)")
        let verb = feed.policy == .latestWins ? "INSERT OR REPLACE" : "INSERT OR IGNORE"
        let inserts = try feed.tables.map { table -> Statement in
            let names = table.columns.map { "\"\($0.name)\"" } + ["batch", "line"]
            return try db.makeStatement(
                sql:
                    "\(verb) INTO \(table.name) (\(names.joined(separator: ", "))) VALUES (\(Array(repeating: "?", count: names.count).joined(separator: ", ")))"
            )
        }
        let quarantine = try db.makeStatement(sql: "INSERT INTO quarantine VALUES (?, ?, ?, ?, ?, ?)")
        for (table, statement) in zip(feed.tables, inserts) {
            sqlite3_bind_text(
                statement.sqliteStatement, Int32(table.columns.count + 1), batch.delivery, -1,
                unsafeBitCast(-1, to: sqlite3_destructor_type.self))
        }
        var read = 0
        var loaded = 0
        var quarantined = 0
        var rejection: String?
        // Two stages on the two cores: a reader thread parses and types rows, this thread inserts them.
        let pipe = ParsedRowPipe(capacity: 8)
        let parser = feed.parser
        let files = batch.files.map { (folder.appendingPathComponent($0), "\(batch.feed)/\(batch.delivery)/\($0)") }
        Thread.detachNewThread {
            var chunk: [ParsedRowPipe.Item] = []
            chunk.reserveCapacity(4096)
            do {
                for (fileIndex, (url, _)) in files.enumerated() {
                    try parser.parse(
                        file: url,
                        row: { table, line, values in
                            chunk.append(.row(table, line, values))
                            if chunk.count == 4096 {
                                pipe.push(chunk)
                                chunk.removeAll(keepingCapacity: true)
                            }
                        },
                        rejected: { chunk.append(.rejected(fileIndex, $0)) })
                    pipe.push(chunk)
                    chunk.removeAll(keepingCapacity: true)
                }
                pipe.finish(error: nil)
            } catch {
                let name = files.first.map(\.1) ?? batch.id
                pipe.finish(
                    error: error is DatabaseError
                        ? error
                        : IngestError(
                            .rejectedBatch, "\(error)".hasPrefix(batch.feed) ? "\(error)" : "\(name): \(error)"))
            }
        }
        try db.inSavepoint {
            while let items = pipe.pop() {
                for item in items {
                    read += 1
                    switch item {
                    case .row(let tableIndex, let line, let values):
                        try Self.insert(values, batch: batch.delivery, line: line, into: inserts[tableIndex], db: db)
                        loaded += 1
                        if read % 250_000 == 0 { context.progress("\(batch.delivery): \(read) rows") }
                    case .rejected(let fileIndex, let row):
                        quarantined += 1
                        try quarantine.execute(arguments: [
                            batch.delivery, files[fileIndex].1, row.line, row.column, row.rawValue, row.reason,
                        ])
                    }
                }
            }
            if let error = pipe.error {
                if error is DatabaseError { throw error }
                rejection = (error as? IngestError)?.message ?? "\(error)"
                return .rollback
            }
            return .commit
        }
        if let rejection {
            // The whole batch is rejected: nothing of it loads, and the batch stays landed for a re-delivery to fix.
            try db.execute(
                sql: "INSERT OR REPLACE INTO batches VALUES (?, ?, ?, 'rejected', 0, 0, 0, ?, 1)",
                arguments: [batch.delivery, batch.fingerprint, batch.files.joined(separator: ","), rejection])
            context.log("batch \(batch.id) rejected: \(rejection)", level: .warning)
            return 0
        }
        let status = quarantined > 0 ? "loaded_with_quarantine" : "loaded"
        try db.execute(
            sql: "INSERT OR REPLACE INTO batches VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1)",
            arguments: [
                batch.delivery, batch.fingerprint, batch.files.joined(separator: ","), status, read, loaded,
                quarantined,
                quarantined > 0 ? "\(quarantined) row(s) quarantined; see quarantine" : nil,
            ])
        if quarantined > 0 { context.log("batch \(batch.id): \(quarantined) row(s) quarantined", level: .warning) }
        return read
    }
}

/// A bounded hand-over of parsed rows from the reader thread to the inserting thread.
final class ParsedRowPipe: @unchecked Sendable {
    // Every stored property is read and written under `condition`'s lock.
    enum Item {
        case row(Int, Int, [FieldValue])
        case rejected(Int, QuarantinedRow)
    }
    private let condition = NSCondition()
    private var chunks: [[Item]] = []
    private var done = false
    private var failure: (any Error)?
    private let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    func push(_ chunk: [Item]) {
        guard !chunk.isEmpty else { return }
        condition.lock()
        while chunks.count >= capacity { condition.wait() }
        chunks.append(chunk)
        condition.broadcast()
        condition.unlock()
    }

    func finish(error: (any Error)?) {
        condition.lock()
        done = true
        failure = error
        condition.broadcast()
        condition.unlock()
    }

    /// The next chunk, or nil once the reader finished and everything was taken.
    func pop() -> [Item]? {
        condition.lock()
        defer { condition.unlock() }
        while chunks.isEmpty && !done { condition.wait() }
        guard !chunks.isEmpty else { return nil }
        let chunk = chunks.removeFirst()
        condition.broadcast()
        return chunk
    }

    var error: (any Error)? {
        condition.lock()
        defer { condition.unlock() }
        return failure
    }
}
