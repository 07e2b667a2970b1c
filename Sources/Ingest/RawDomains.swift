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
    /// Index expressions (each a comma list of columns or expressions, `EXPRESSION WHERE PREDICATE` for a
    /// partial index) the feed needs itself, say for its own tests. Consumers declare theirs
    /// (`InputIndex`), which the load builds after these. Built after a full load, kept up to date by
    /// incremental ones.
    public var indexes: [String]
    /// Rows that restate only part of an earlier row (see ``PartialRows``), under the latest-wins policy.
    public var partialRows: PartialRows?
    public init(
        name: String, columns: [(name: String, type: String)], key: [String], indexes: [String] = [],
        partialRows: PartialRows? = nil
    ) {
        self.name = name
        self.columns = columns
        self.key = key
        self.indexes = indexes
        self.partialRows = partialRows
    }
}

/// Later rows that carry only some of a key's columns: they update those and keep the earlier row's others.
///
/// CMS empties every field of a deactivated NPI but the NPI and the deactivation date: replacing the earlier
/// row would lose the physician's name, taxonomy and address, so such a row sets the deactivation and keeps the
/// rest. A row that is not partial replaces the earlier one whole, as under ``ConflictPolicy/latestWins``.
public struct PartialRows: Sendable {
    /// SQL over the new row (`excluded.COLUMN`) that is true for a partial row.
    public var condition: String
    /// The columns a partial row always sets, empty or not (the others keep the earlier value when it is empty).
    public var replaced: [String]
    public init(condition: String, replaced: [String]) {
        self.condition = condition
        self.replaced = replaced
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
    /// The file as the quarantine names it, when it is not the batch's file itself (a member of a zip archive:
    /// `nppes/2025-09-10/NPPES.zip/npidata_pfile.csv`).
    public var file: String?
    public init(line: Int, column: String, rawValue: String, reason: String, file: String? = nil) {
        self.line = line
        self.column = column
        self.rawValue = rawValue
        self.reason = reason
        self.file = file
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

    /// As ``parse(file:row:rejected:)``, and returns what of the file was left unread: the file itself when it
    /// is no data file (a PDF), or members of its zip archive. By default nothing is.
    func parseReporting(
        file: URL, row: (Int, Int, [FieldValue]) throws -> Void, rejected: (QuarantinedRow) throws -> Void
    ) throws -> FileReport
}

extension FeedFileParser {
    public func parseReporting(
        file: URL, row: (Int, Int, [FieldValue]) throws -> Void, rejected: (QuarantinedRow) throws -> Void
    ) throws -> FileReport {
        try parse(file: file, row: row, rejected: rejected)
        return FileReport(read: [file.lastPathComponent])
    }
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
    /// The feed's own indexes, as part of the loader's version (empty when there are none). The consumers'
    /// are part of the domain's code version (`Domain.servedIndexes`).
    var indexSignature: String { Self.indexSignature(tables.map { ($0.name, $0.indexes) }) }

    /// Every index of each table, the feed's own then the consumers': their numbers name them.
    func indexes(in context: StepContext) -> [(table: String, expressions: [String])] {
        tables.map { ($0.name, $0.indexes + context.servedIndexes(on: $0.name)) }
    }

    static func indexSignature(_ indexes: [(table: String, expressions: [String])]) -> String {
        let all = indexes.flatMap { table in table.expressions.map { "\(table.table)(\($0))" } }
        return all.isEmpty ? "" : " indexes " + all.joined(separator: " ")
    }

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
        var domain = Domain(
            id: domainID, layer: "raw",
            owner: Owner(team: "data engineering: ingest", contact: "ingest@pharma-mesh.example"),
            description: description, inputs: [.source(feed)], outputs: outputs,
            recipe: Recipe([
                .swift("load", version: loaderVersion + indexSignature, tests: keyTests) { context in
                    try await loader.load(context)
                }
            ]),
            tests: batchTests + tests, retainedTables: ["ingest_state"],
            // A new batch costs its own rows: the build starts from a copy of the previous version's file
            // (and digests only the rows that changed) instead of copying every row of every earlier batch.
            buildsOnPreviousVersion: true)
        // The marts read the rows a new batch changed (added, restated, re-marked) instead of every row.
        domain.changeLogs = tables.map(\.name)
        return domain
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
        // Every index, the consumers' too: a changed expression under the same number reloads (and reindexes).
        let indexes = feed.indexes(in: context)
        let signature =
            "\(feed.loaderVersion)\(RawFeed.indexSignature(indexes))|"
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
            // The rows the step wrote (as a SQL step counts them), not a count of the tables: counting a raw table
            // reads all of it, and publication records each table's row count anyway.
            let changesBefore = db.totalChangesCount
            let rowsIn = try Self.loadBatches(
                batches.filter { !loaded.contains($0.delivery) }, feed: feed, home: home, db: db, context: context)
            if let finish = feed.finish { try db.execute(sql: finish) }
            // After the rows on a full load (one sort, not a b-tree kept up to date row by row); an incremental
            // load found them in the previous version's file and kept them up to date.
            for table in indexes {
                for (number, expression) in table.expressions.enumerated() {
                    // `EXPRESSION WHERE PREDICATE`: a partial index.
                    let parts = expression.components(separatedBy: " WHERE ")
                    let predicate = parts.count > 1 ? " WHERE \(parts[1...].joined(separator: " WHERE "))" : ""
                    try db.execute(
                        sql:
                            "CREATE INDEX IF NOT EXISTS \(table.table)_index_\(number + 1) ON \(table.table) (\(parts[0]))\(predicate)"
                    )
                }
            }
            let rowsOut = db.totalChangesCount - changesBefore
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

    /// Rows one INSERT statement carries: SQLite runs a statement's program once for all of them (one cursor,
    /// one seek from where the previous row went), instead of once per row.
    static let rowsPerStatement = 256

    /// The INSERT of `rows` rows into `table`; the batch is parameter 1, shared by every row, and row `r`'s
    /// values and line are parameters `2 + r * (columns + 1)` onwards.
    ///
    /// Every other parameter is a bare `?` (numbered in order after `?1`): SQLite looks each numbered `?NNN`
    /// up in a list of the statement's parameters when it compiles the statement, so 2,560 numbered ones cost
    /// a quadratic prepare (11 % of the demo's CPU, `perf`, when every parameter was numbered).
    static func insertSQL(_ table: RawTable, verb: String, rows: Int) -> String {
        let names = ["batch"] + table.columns.map { "\"\($0.name)\"" } + ["line"]
        let tuple = "(?1" + String(repeating: ", ?", count: table.columns.count + 1) + ")"
        let tuples = Array(repeating: tuple, count: rows)
        guard let partial = table.partialRows, verb == "INSERT OR REPLACE" else {
            return
                "\(verb) INTO \(table.name) (\(names.joined(separator: ", "))) VALUES \(tuples.joined(separator: ", "))"
        }
        // An upsert: a partial row keeps the earlier row's value of each column it leaves empty.
        let key = Set(table.key)
        let always = Set(partial.replaced)
        let sets =
            table.columns.map(\.name).filter { !key.contains($0) }.map { column in
                let c = "\"\(column)\""
                return always.contains(column)
                    ? "\(c) = excluded.\(c)"
                    : "\(c) = CASE WHEN \(partial.condition) THEN COALESCE(excluded.\(c), \(c)) ELSE excluded.\(c) END"
            } + ["batch = excluded.batch", "line = excluded.line"]
        return "INSERT INTO \(table.name) (\(names.joined(separator: ", "))) VALUES \(tuples.joined(separator: ", ")) "
            + "ON CONFLICT (\(table.key.map { "\"\($0)\"" }.joined(separator: ", "))) DO UPDATE SET "
            + sets.joined(separator: ", ")
    }

    /// Binds encoded rows and steps them through SQLite's C interface in one statement: the hot path of every
    /// load. Text is bound in place from the chunk's buffer (`SQLITE_STATIC`: the buffer outlives the step),
    /// so a row costs no allocation on this thread.
    static func insert(_ rows: ArraySlice<RowChunk.Row>, into statement: Statement, db: Database) throws {
        let handle = statement.sqliteStatement
        sqlite3_reset(handle)
        var index: Int32 = 2
        for row in rows {
            row.forEachValue { value in
                switch value {
                case .null: sqlite3_bind_null(handle, index)
                case .integer(let v): sqlite3_bind_int64(handle, index, v)
                case .real(let v): sqlite3_bind_double(handle, index, v)
                case .text(let pointer, let length): sqlite3_bind_text(handle, index, pointer, length, nil)
                }
                index += 1
            }
            sqlite3_bind_int64(handle, index, Int64(row.line))
            index += 1
        }
        let code = sqlite3_step(handle)
        guard code == SQLITE_DONE else {
            throw DatabaseError(
                resultCode: ResultCode(rawValue: code), message: String(cString: sqlite3_errmsg(db.sqliteConnection)),
                sql: statement.sql)
        }
    }

    /// The sentence a batch is rejected with when SQLite refused one of its rows: a value the layout let through
    /// broke a constraint of the raw table. No data problem reaches a user as SQLite's bare message.
    static func refusal(_ error: DatabaseError, batch: LandedBatch) -> String {
        let detail = error.message ?? "\(error.resultCode)"
        return "\(batch.id): a row of the batch breaks a rule of the raw table (SQLite: \(detail)); the batch is "
            + "rejected whole and kept as it came. A value the feed's layout should have refused got through: "
            + "report it to the ingest team (ingest@pharma-mesh.example) with the batch; a re-delivery of the "
            + "corrected file as a new batch loads."
    }

    /// Loads batches in delivery order, each in one transaction; returns the rows read.
    ///
    /// Two stages on the two cores: one reader thread parses, types, encodes and sorts the rows of every batch in
    /// turn (it reads ahead into the next batch while this thread inserts the last rows of the previous one), and
    /// this thread inserts them.
    static func loadBatches(_ batches: [LandedBatch], feed: RawFeed, home: URL, db: Database, context: StepContext)
        throws -> Int
    {
        guard !batches.isEmpty else { return 0 }
        let verb = feed.policy == .latestWins ? "INSERT OR REPLACE" : "INSERT OR IGNORE"
        // Per table: a statement for full groups of rows and one for single rows (a group's remainder).
        let inserts = try feed.tables.map { table -> (many: Statement, one: Statement) in
            (
                try db.makeStatement(sql: insertSQL(table, verb: verb, rows: rowsPerStatement)),
                try db.makeStatement(sql: insertSQL(table, verb: verb, rows: 1))
            )
        }
        let quarantine = try db.makeStatement(sql: "INSERT INTO quarantine VALUES (?, ?, ?, ?, ?, ?)")
        let files = batches.map { batch in
            batch.files.map {
                (
                    home.appendingPathComponent("landing/\(batch.feed)/\(batch.delivery)/\($0)"),
                    "\(batch.feed)/\(batch.delivery)/\($0)"
                )
            }
        }
        let pipe = RowChunkPipe(capacity: 4)
        defer { pipe.cancel() }
        let parser = feed.parser
        let keys = feed.tables.map(RowChunk.SortKey.init(table:))
        Thread.detachNewThread {
            // Small chunks first, so that the inserter starts at once, then larger ones for the sort's locality.
            var limit = 1_024
            for (batch, files) in zip(batches, files) {
                var chunk = RowChunk(keys: keys)
                var ignored: [String] = []
                var readAny = false
                do {
                    for (fileIndex, (url, name)) in files.enumerated() {
                        let report = try parser.parseReporting(
                            file: url,
                            row: { table, line, values in
                                chunk.append(table: table, line: line, values: values)
                                if chunk.rowCount == limit {
                                    limit = min(2 * limit, RowChunk.capacity)
                                    pipe.push(.rows(chunk.sorted()))
                                    chunk = RowChunk(keys: keys)
                                }
                            },
                            rejected: { chunk.reject(file: fileIndex, $0) })
                        pipe.push(.rows(chunk.sorted()))
                        chunk = RowChunk(keys: keys)
                        readAny = readAny || !report.read.isEmpty
                        // A zip's members are named inside it; a loose file that is no data by its own name.
                        let wholeFile = report.read.isEmpty && report.ignored == [url.lastPathComponent]
                        ignored += report.ignored.map { wholeFile ? name : "\(name)/\($0)" }
                    }
                    if !readAny {
                        pipe.push(
                            .end(
                                "\(batch.id): the batch holds no file the \(batch.feed) layout reads (ignored: "
                                    + "\(ignored.joined(separator: ", "))); it is rejected. Deliver the data file "
                                    + "(CSV, plain, gzipped or zipped) as a new batch.", []))
                    } else {
                        pipe.push(.end(nil, ignored))
                    }
                } catch {
                    let name = files.first.map(\.1) ?? batch.id
                    pipe.push(
                        .end("\(error)".hasPrefix(batch.feed) ? "\(error)" : "\(name): \(error)", []))
                }
                if pipe.isCancelled { return }
            }
        }
        var read = 0
        for (batch, files) in zip(batches, files) {
            for statement in inserts.flatMap({ [$0.many, $0.one] }) {
                // A statement takes new bindings only once reset after its last step.
                sqlite3_reset(statement.sqliteStatement)
                sqlite3_bind_text(
                    statement.sqliteStatement, 1, batch.delivery, -1,
                    unsafeBitCast(-1, to: sqlite3_destructor_type.self))
            }
            var batchRead = 0
            var loaded = 0
            var quarantined = 0
            var rejection: String?
            func insertChunk(_ chunk: RowChunk) throws {
                for (fileIndex, row) in chunk.rejected {
                    quarantined += 1
                    try quarantine.execute(arguments: [
                        batch.delivery, row.file ?? files[fileIndex].1, row.line, row.column, row.rawValue, row.reason,
                    ])
                }
                try chunk.withRows { rows in
                    // Runs of one table (a chunk is sorted by table first), in groups of `rowsPerStatement`.
                    var start = rows.startIndex
                    while start < rows.endIndex {
                        let table = rows[start].table
                        var end = start + 1
                        while end < rows.endIndex && end - start < rowsPerStatement && rows[end].table == table {
                            end += 1
                        }
                        if end - start == rowsPerStatement {
                            try Self.insert(rows[start..<end], into: inserts[table].many, db: db)
                        } else {
                            for single in start..<end {
                                try Self.insert(rows[single...single], into: inserts[table].one, db: db)
                            }
                        }
                        start = end
                    }
                }
                loaded += chunk.rowCount
                batchRead += chunk.rowCount + chunk.rejected.count
                let before = read
                read += chunk.rowCount + chunk.rejected.count
                if read / 250_000 != before / 250_000 { context.progress("\(batch.delivery): \(read) rows") }
            }
            try db.inSavepoint {
                while case .rows(let chunk) = pipe.pop() {
                    // After a refused row, the rest of the batch's chunks are only drained: it is rolled back.
                    if rejection != nil { continue }
                    do {
                        try insertChunk(chunk)
                    } catch let error as DatabaseError
                        where error.resultCode == .SQLITE_CONSTRAINT || error.resultCode == .SQLITE_MISMATCH
                        || error.resultCode == .SQLITE_TOOBIG
                    {
                        rejection = Self.refusal(error, batch: batch)
                    }
                }
                if let message = pipe.lastEnd.rejection ?? rejection {
                    rejection = message
                    return .rollback
                }
                return .commit
            }
            if let rejection {
                // The whole batch is rejected: nothing of it loads, and the batch stays landed for a re-delivery
                // to fix.
                read -= batchRead
                try db.execute(
                    sql: "INSERT OR REPLACE INTO batches VALUES (?, ?, ?, 'rejected', 0, 0, 0, ?, 1)",
                    arguments: [batch.delivery, batch.fingerprint, batch.files.joined(separator: ","), rejection])
                context.log("batch \(batch.id) rejected: \(rejection)", level: .warning)
                continue
            }
            let status = quarantined > 0 ? "loaded_with_quarantine" : "loaded"
            var notes: [String] = []
            if quarantined > 0 { notes.append("\(quarantined) row(s) quarantined; see quarantine") }
            let ignored = pipe.lastEnd.ignored
            if !ignored.isEmpty {
                notes.append("not data, not read: \(ignored.joined(separator: ", "))")
                context.log("batch \(batch.id): ignored \(ignored.joined(separator: ", "))", level: .info)
            }
            try db.execute(
                sql: "INSERT OR REPLACE INTO batches VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1)",
                arguments: [
                    batch.delivery, batch.fingerprint, batch.files.joined(separator: ","), status, batchRead, loaded,
                    quarantined, notes.isEmpty ? nil : notes.joined(separator: "; "),
                ])
            if quarantined > 0 {
                context.log("batch \(batch.id): \(quarantined) row(s) quarantined", level: .warning)
            }
        }
        return read
    }
}
