import Foundation
import GRDB
import Logging

/// What a step reports when it finishes.
public struct StepReport: Sendable {
    /// Rows the step read, when it knows.
    public var rowsIn: Int
    /// Rows the step wrote.
    public var rowsOut: Int
    public var message: String?
    public init(rowsIn: Int = 0, rowsOut: Int = 0, message: String? = nil) {
        self.rowsIn = rowsIn
        self.rowsOut = rowsOut
        self.message = message
    }
}

/// Everything a step may use while it runs.
public struct StepContext: Sendable {
    public let runID: RunID
    public let domain: DomainID
    public let step: StepID
    /// The domain's working database. Every input domain's published version is attached read-only under
    /// its schema name; the domain's previous published version, if any, under `previous`.
    public let database: DatabaseQueue
    /// The resolved parameters of this build.
    public let parameters: [String: String]
    /// The published version of each input domain this build reads.
    public let inputVersions: [DomainID: Int]
    /// The version this build replaces, if any.
    public let previousVersion: Int?
    /// A scratch directory of the build, deleted with it.
    public let workDirectory: URL
    /// The mesh home, for steps that read state the caller keeps there (landed batches, for example).
    public let home: URL
    public let logger: Logger
    let sink: @Sendable (LogLine) -> Void
    let progressSink: @Sendable (String) -> Void
    /// True when the run asked for a full refresh: incremental steps must not build on the previous version.
    public var fullRefresh = false
    /// True when the working database started as a copy of the previous published version (the domain
    /// sets `buildsOnPreviousVersion`): the outputs are already there, and the steps apply only what changed.
    /// False when the database started empty and the steps build everything.
    public var startedFromPrevious = false
    /// Input table (`schema.table`) → an SQL relation of its rows that changed since the input version this
    /// domain's previous version read (`mesh_sign` 1 inserted, −1 deleted, then the table's columns). Only
    /// for inputs that keep a change log (`Domain.changeLogs`) reaching back that far, on builds that
    /// started from the previous version.
    public internal(set) var inputChanges: [String: String] = [:]

    /// The relation of an input table's changes since the previous build read it, or nil when unknown (the
    /// step must then compare everything).
    public func changes(of table: String) -> String? { inputChanges[table] }
    /// Input tables (`schema.table`) whose content digest equals that of the input version this domain's
    /// previous version read: on a build that started from the previous version, what the step derived from
    /// them is already in place.
    public internal(set) var unchangedInputTables: Set<String> = []

    /// True when the build started from the previous version and the domain's definition and parameters are
    /// those the previous version was built with.
    public internal(set) var definitionUnchanged = false

    /// True when a previous version exists and was built by the domain's current definition and parameters
    /// (whether or not the build started from a copy of it), and the run did not ask for a full refresh.
    public internal(set) var previousDefinitionUnchanged = false

    /// True when an input table is known to be the one the previous build read (same content digest).
    public func inputTableUnchanged(_ table: String) -> Bool { unchangedInputTables.contains(table) }

    /// Input tables copied verbatim by `copyInputTable(_:in:)`, whose digest publication takes from the input.
    internal(set) var copies = CopiedTables()
    /// What the steps of this build did to their partitioned tables (`touchedPartitions(of:)`).
    internal(set) var touchedLog = TouchedPartitionLog()
    /// The indexes consumers asked this domain to build (`servedIndexes(on:)`).
    internal(set) var indexesToServe: [ServedIndex] = []

    /// Copies an input table (`schema.table`) into the build under its own name, with the input's definition
    /// and indexes, replacing any table of that name. While nothing writes to the copy afterwards, publication
    /// takes its digest from the input version instead of reading every row again. Returns false, copying
    /// nothing, when the build already holds the same definition and the input table is unchanged since the
    /// previous build read it (the copy the build started from is then already right).
    @discardableResult
    public func copyInputTable(_ source: String, in db: Database) throws -> Bool {
        let parts = source.split(separator: ".", maxSplits: 1).map(String.init)
        guard parts.count == 2 else {
            throw MeshError(.stepFailed, "copyInputTable needs schema.table, not \(source)")
        }
        let (schema, table) = (parts[0], parts[1])
        let definition = try CopiedTables.definition(of: table, in: schema, db: db)
        guard !definition.isEmpty else {
            throw MeshError(.stepFailed, "input table \(source) does not exist")
        }
        if startedFromPrevious, !fullRefresh, inputTableUnchanged(source),
            try CopiedTables.definition(of: table, in: "main", db: db) == definition
        {
            return false
        }
        try copy(table, from: schema, definition: definition, in: db)
        return true
    }

    /// Replaces `main.table` by a verbatim copy of `schema.table` made with its `definition` (the table's
    /// CREATE statement, then its indexes'), and records it for publication.
    private func copy(_ table: String, from schema: String, definition: [String], in db: Database) throws {
        let t = quoteIdentifier(table)
        try db.execute(sql: "DROP TABLE IF EXISTS main.\(t)")
        // Unqualified CREATE statements make the table and its indexes in main.
        for statement in definition { try db.execute(sql: statement) }
        try db.execute(sql: "INSERT INTO main.\(t) SELECT * FROM \(quoteIdentifier(schema)).\(t)")
        try copies.record(table, from: schema, create: definition[0], in: db)
    }

    /// Copies a table of the previous version verbatim, with its definition and indexes, when that version was
    /// built by the domain's current definition and parameters (`previousDefinitionUnchanged`): for a table that
    /// depends on the definition alone, such as a calendar, which the step then need not compute again.
    /// Publication takes the copy's digest from the previous version while nothing writes to it. Returns false,
    /// copying nothing, when there is no such version or it lacks the table: the step builds the table itself.
    public func copyPreviousTable(_ table: String, in db: Database) throws -> Bool {
        guard previousDefinitionUnchanged else { return false }
        let definition = try CopiedTables.definition(of: table, in: "previous", db: db)
        guard !definition.isEmpty else { return false }
        // A build on a copy of the previous version already holds the table as it was.
        if startedFromPrevious, try CopiedTables.definition(of: table, in: "main", db: db) == definition { return true }
        try copy(table, from: "previous", definition: definition, in: db)
        return true
    }

    /// Records a log line in the run history (and the process log).
    public func log(_ message: String, level: Logger.Level = .info) {
        logger.log(level: level, "\(message)")
        sink(LogLine(runID: runID, domain: domain, step: step, level: level.rawValue, message: message, at: Date()))
    }

    /// Reports progress of long work (shown live by the command line; not persisted as a log line).
    public func progress(_ message: String) {
        progressSink(message)
    }

    /// A parameter, or a user-facing error naming the domain when it is missing.
    public func parameter(_ name: String) throws -> String {
        guard let value = parameters[name] else {
            throw MeshError(
                .invalidDefinition, "domain \(domain) step \(step) needs parameter '\(name)', which no variation sets")
        }
        return value
    }
}

/// One unit of work in a recipe. Conform to add a new kind of step.
///
/// ```swift
/// struct CountRows: Step {
///     var kind: String { "swift" }
///     var definition: String { "CountRows v1" }
///     func run(in context: StepContext) async throws -> StepReport {
///         let n = try await context.database.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM t") ?? 0 }
///         return StepReport(rowsIn: n)
///     }
/// }
/// ```
public protocol Step: Sendable {
    /// `sql`, `swift`, `command` or `recipe`.
    var kind: String { get }
    /// The text that defines the step, hashed into the domain's code version: SQL text, command line, or a
    /// name and version for Swift steps (bump it when the code changes behaviour).
    var definition: String { get }
    func run(in context: StepContext) async throws -> StepReport
}

/// A SQL script run in the working database. Parameters are bound as named arguments (`:name`).
public struct SQLStep: Step {
    public var sql: String
    /// Input tables (`schema.table`) that the script reads, every one of them, when its `keeps` tables may be
    /// kept as the previous version published them while those inputs are unchanged (same content digest as
    /// what the previous build read, same definition and parameters): a table rebuilt whole from unchanged
    /// monthly files would come out the same.
    public var keptWhenUnchanged: (reads: [String], keeps: [String])?
    public init(_ sql: String, keptWhenUnchanged: (reads: [String], keeps: [String])? = nil) {
        self.sql = sql
        self.keptWhenUnchanged = keptWhenUnchanged
    }
    public var kind: String { "sql" }
    public var definition: String {
        sql
            + (keptWhenUnchanged.map {
                "\nkept when unchanged: \($0.reads.joined(separator: ",")) keeps \($0.keeps.joined(separator: ","))"
            } ?? "")
    }

    public func run(in context: StepContext) async throws -> StepReport {
        if let rule = keptWhenUnchanged, context.definitionUnchanged, !context.fullRefresh,
            rule.reads.allSatisfy(context.inputTableUnchanged)
        {
            let present = try await context.database.read { db in
                try rule.keeps.allSatisfy { try db.tableExists($0, in: "main") }
            }
            if present { return StepReport(message: "kept: what it reads is unchanged since the previous version") }
        }
        // A script that reads no input (a calendar) gives what the previous version of the same definition holds:
        // on a build from an empty file, its tables are copied from there.
        if let rule = keptWhenUnchanged, rule.reads.isEmpty, !context.startedFromPrevious,
            context.previousDefinitionUnchanged
        {
            let copied = try await context.database.write { db in
                guard try rule.keeps.allSatisfy({ try db.tableExists($0, in: "previous") }) else { return false }
                for table in rule.keeps { _ = try context.copyPreviousTable(table, in: db) }
                return true
            }
            if copied { return StepReport(message: "copied from the previous version: it reads no input") }
        }
        let sql = self.sql
        let parameters = context.parameters
        let changes = try await context.database.write { db -> Int in
            let before = db.totalChangesCount
            var arguments = StatementArguments()
            let statements = try db.allStatements(sql: sql)
            while let statement = try statements.next() {
                arguments = StatementArguments(
                    Dictionary(
                        uniqueKeysWithValues: parameters.compactMap {
                            key, value -> (String, (any DatabaseValueConvertible)?)? in
                            statement.sql.contains(":\(key)") ? (key, value) : nil
                        }))
                try statement.execute(arguments: arguments)
            }
            return db.totalChangesCount - before
        }
        return StepReport(rowsOut: changes)
    }
}

/// A step written in Swift as a closure over the context.
public struct SwiftStep: Step {
    public var name: String
    public var version: String
    let body: @Sendable (StepContext) async throws -> StepReport
    /// - Parameters:
    ///   - name: what the step does, shown in history.
    ///   - version: bump it when the behaviour changes, so that the domain's code version changes.
    public init(
        _ name: String, version: String = "1", _ body: @escaping @Sendable (StepContext) async throws -> StepReport
    ) {
        self.name = name
        self.version = version
        self.body = body
    }
    public var kind: String { "swift" }
    public var definition: String { "swift \(name) v\(version)" }
    public func run(in context: StepContext) async throws -> StepReport { try await body(context) }
}

/// An external program, for tools a domain team brings.
///
/// The program runs with the working directory set to the build's scratch directory and these variables:
/// `MESH_DATABASE` (the working database path), `MESH_DOMAIN`, `MESH_RUN`, `MESH_HOME`, and `MESH_PARAM_<NAME>`
/// for each parameter. Arguments may contain `{param}` placeholders. A non-zero exit fails the step, and
/// the program's last lines of standard error are kept in the log.
public struct CommandStep: Step {
    public var executable: String
    public var arguments: [String]
    public var environment: [String: String]
    public init(_ executable: String, _ arguments: [String] = [], environment: [String: String] = [:]) {
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
    }
    public var kind: String { "command" }
    public var definition: String { ([executable] + arguments).joined(separator: " ") }

    public func run(in context: StepContext) async throws -> StepReport {
        let databasePath = context.database.path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable.hasPrefix("/") ? executable : "/usr/bin/env")
        let resolved = arguments.map { argument in
            context.parameters.reduce(argument) { $0.replacingOccurrences(of: "{\($1.key)}", with: $1.value) }
        }
        process.arguments = executable.hasPrefix("/") ? resolved : [executable] + resolved
        var env = ProcessInfo.processInfo.environment
        env.merge(environment) { $1 }
        env["MESH_DATABASE"] = databasePath
        env["MESH_DOMAIN"] = context.domain.rawValue
        env["MESH_RUN"] = context.runID.rawValue
        env["MESH_HOME"] = context.home.path
        for (key, value) in context.parameters {
            env["MESH_PARAM_\(key.uppercased().replacingOccurrences(of: "-", with: "_"))"] = value
        }
        process.environment = env
        process.currentDirectoryURL = context.workDirectory
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        // Drain both pipes concurrently so a chatty program cannot block on a full pipe.
        async let out = Task.detached { stdout.fileHandleForReading.readDataToEndOfFile() }.value
        async let err = Task.detached { stderr.fileHandleForReading.readDataToEndOfFile() }.value
        let (outData, errData) = await (out, err)
        process.waitUntilExit()
        let output = String(decoding: outData, as: UTF8.self)
        let errors = String(decoding: errData, as: UTF8.self)
        for line in output.split(separator: "\n").suffix(20) { context.log(String(line)) }
        for line in errors.split(separator: "\n").suffix(20) { context.log(String(line), level: .warning) }
        guard process.terminationStatus == 0 else {
            throw MeshError(
                .stepFailed,
                "command '\(definition)' exited with status \(process.terminationStatus)"
                    + (errors.isEmpty ? "" : ": \(errors.split(separator: "\n").last ?? "")"))
        }
        return StepReport(message: output.split(separator: "\n").last.map(String.init))
    }
}

/// The tables a build copied verbatim from its inputs (`StepContext.copyInputTable`), and TEMP triggers that
/// flag any later write to them.
final class CopiedTables: @unchecked Sendable {
    struct Copy {
        var schema: String
        var create: String
        var triggers: [String]
    }
    private let lock = NSLock()
    private var copies: [String: Copy] = [:]

    /// The table's CREATE statement, then those of its indexes, in `schema`.
    static func definition(of table: String, in schema: String, db: Database) throws -> [String] {
        try String.fetchAll(
            db,
            sql: """
                SELECT sql FROM \(quoteIdentifier(schema)).sqlite_master
                WHERE tbl_name = ? AND type IN ('table', 'index') AND sql IS NOT NULL
                ORDER BY type = 'index', name
                """, arguments: [table])
    }

    func record(_ table: String, from schema: String, create: String, in db: Database) throws {
        let t = quoteIdentifier(table)
        let names = ["insert", "update", "delete"].map { "mesh_copy_\(table)_\($0)" }
        try db.execute(sql: "CREATE TEMP TABLE IF NOT EXISTS mesh_copy_written (tbl TEXT PRIMARY KEY)")
        try db.execute(sql: "DELETE FROM temp.mesh_copy_written WHERE tbl = ?", arguments: [table])
        for (name, event) in zip(names, ["INSERT", "UPDATE", "DELETE"]) {
            try db.execute(
                sql: """
                    DROP TRIGGER IF EXISTS temp.\(quoteIdentifier(name));
                    CREATE TEMP TRIGGER \(quoteIdentifier(name)) AFTER \(event) ON main.\(t) BEGIN
                        INSERT OR IGNORE INTO mesh_copy_written VALUES (\(quoteLiteral(table)));
                    END;
                    """)
        }
        lock.withLock { copies[table] = Copy(schema: schema, create: create, triggers: names) }
    }

    /// The input schema a table is still a verbatim copy of: copied, not written since, with its triggers
    /// and definition in place. Nil otherwise.
    func unmodifiedSource(of table: String, in db: Database) throws -> String? {
        guard let copy = lock.withLock({ copies[table] }) else { return nil }
        guard try IncrementalDigest.triggers(copy.triggers, stillOn: table, in: db),
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM temp.mesh_copy_written WHERE tbl = ?", arguments: [table])
                == 0,
            try CopiedTables.definition(of: table, in: "main", db: db).first == copy.create
        else { return nil }
        return copy.schema
    }

    /// Drops the triggers (and the TEMP table they write to).
    func uninstall(in db: Database) throws {
        for copy in lock.withLock({ Array(copies.values) }) {
            for name in copy.triggers { try db.execute(sql: "DROP TRIGGER IF EXISTS temp.\(quoteIdentifier(name))") }
        }
        try db.execute(sql: "DROP TABLE IF EXISTS temp.mesh_copy_written")
    }
}
