import Foundation
import GRDB
import Logging

/// The working database of one build, and what was set up in it before the first step.
struct Workspace: Sendable {
    /// The build's folder, removed when the build ends.
    var directory: URL
    /// The working SQLite file, which publication moves into place.
    var path: String
    var database: DatabaseQueue
    /// True when the file started as a byte copy of the previous version.
    var startedFromPrevious = false
    /// The time the copy took.
    var copyTime = Duration.zero
    /// The time before the first step: the copy, then attaching the inputs and installing the triggers.
    var setupTime = Duration.zero
    /// Tracks the rows the steps change in the copied outputs, to digest them from their changes.
    var tracker: IncrementalDigest?
    /// The schema of the copy, to tell whether the steps changed a table or index definition.
    var schemaAtStart = ""
    /// The change log the domain keeps for its readers, and its sequence number.
    var logCapture: ChangeCapture?
    var logSequence = 1
    /// The changes the domain's incremental tests check.
    var testCapture: ChangeCapture?
    /// Input table → the relation of its rows changed since the previous build read it.
    var inputChanges: [String: String] = [:]
    /// Input tables whose content equals what the previous build read.
    var unchangedInputTables = Set<String>()
}

extension DomainBuilder {
    /// Creates the working database: a byte copy of the previous version for a build on it (else an empty
    /// file), with the settings of a throwaway file, the inputs attached and the change tracking installed.
    func makeWorkspace(in directory: URL) async throws -> Workspace {
        let fm = FileManager.default
        try fm.createDirectory(at: directory, withIntermediateDirectories: true)
        let path = directory.appendingPathComponent("work.sqlite").path
        // An incremental build starts from a byte copy of the previous version (not fsynced: the working
        // file is fsynced once, when it is published).
        var startedFromPrevious = false
        let setupStart = ContinuousClock.now
        var copyTime = Duration.zero
        if domain.buildsOnPreviousVersion, !fullRefresh, let previous, previous.retained {
            let previousFile = mesh.path(of: previous)
            if fm.fileExists(atPath: previousFile.path) {
                try Self.copyFile(from: previousFile.path, to: path)
                startedFromPrevious = true
                copyTime = ContinuousClock.now - setupStart
            }
        }
        let database = try DatabaseQueue(path: path, configuration: workingConfiguration())
        var workspace = Workspace(
            directory: directory, path: path, database: database, startedFromPrevious: startedFromPrevious,
            copyTime: copyTime)
        try await attachInputs(to: database)
        if startedFromPrevious, let previous { try await installChangeTracking(since: previous, in: &workspace) }
        workspace.setupTime = ContinuousClock.now - setupStart
        return workspace
    }

    /// The working database's settings: no durability, and the statement trace when the program asked for it.
    private func workingConfiguration() -> Configuration {
        var configuration = Configuration()
        configuration.label = "build.\(domain.id)"
        configuration.journalMode = .default
        let slowStatements = mesh.configuration.slowStatementTrace
        let traceLabel = domain.id.rawValue
        configuration.prepareDatabase { db in
            if let slowStatements {
                // Every statement of a build that takes `slowStatements` milliseconds or more, on standard
                // error, to find where a build's time goes.
                db.trace(options: .profile) { event in
                    guard case let .profile(statement, duration) = event, duration * 1000 >= slowStatements
                    else { return }
                    let text = statement.sql.split(whereSeparator: \.isNewline)
                        .map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
                    FileHandle.standardError.write(
                        Data(
                            String(
                                format: "sql %@ %7.1f ms  %@\n", traceLabel, duration * 1000,
                                String(text.prefix(300))
                            ).utf8))
                }
            }
            // The working database is thrown away if anything fails, so durability is not needed here;
            // publication fsyncs the finished file before it is renamed into place. On a copied version
            // the page size stays that of the copy (the pragma only applies to an empty file).
            try db.execute(
                sql:
                    "PRAGMA page_size = 16384; PRAGMA journal_mode = MEMORY; PRAGMA synchronous = OFF; PRAGMA cache_size = -262144"
            )
        }
        return configuration
    }

    /// Attaches every input's published version read-only under its schema name, and the previous version
    /// as `previous`.
    private func attachInputs(to database: DatabaseQueue) async throws {
        let attachments =
            inputs.map { ($0.key.schemaName, mesh.path(of: $0.value)) }
            + (previous.map { [("previous", mesh.path(of: $0))] } ?? [])
        try await database.writeWithoutTransaction { db in
            for (schema, url) in attachments {
                try db.execute(
                    sql: "ATTACH DATABASE ? AS \(quoteQualified(schema))", arguments: [Self.readOnlyURI(url)])
            }
        }
    }

    /// On a copy of the previous version: the digest tracker of its outputs, the change logs and test captures,
    /// and what changed in the inputs since the previous build read them.
    private func installChangeTracking(since previous: VersionRecord, in workspace: inout Workspace) async throws {
        let tables = domain.outputs.map(\.table).filter { previous.tableDigests[$0] != nil }
        let outputs = Set(domain.outputs.map(\.table))
        let tested = Set(domain.tests.compactMap { $0 as? any IncrementalTest }.flatMap(\.changeTables))
            .filter(outputs.contains).sorted()
        let logged = domain.changeLogs
        let read = try recordingHistory("read the input versions v\(previous.version) of \(domain.id) was built from") {
            try Self.inputRecords(read: previous, store: store)
        }
        let since = read.mapValues(\.fingerprint)
        for (input, version) in inputs {
            guard let before = read[input.rawValue] else { continue }
            for (table, digest) in version.tableDigests where before.tableDigests[table] == digest {
                workspace.unchangedInputTables.insert("\(input.schemaName).\(table)")
            }
        }
        let inputs = self.inputs
        let installed = try await workspace.database.writeWithoutTransaction { db in
            let sequence = try ChangeCapture.nextSequence(in: db)
            var changes: [String: String] = [:]
            for (input, version) in inputs {
                guard let before = since[input.rawValue] else { continue }
                changes.merge(
                    try ChangeCapture.inputChanges(
                        schema: input.schemaName, tables: Array(version.schema.keys), since: before,
                        current: version.fingerprint, in: db)
                ) { $1 }
            }
            return (
                try IncrementalDigest.install(tables: tables, in: db), try Self.schemaText(db),
                logged.isEmpty
                    ? nil : try ChangeCapture.install(tables: logged, sequence: sequence, in: db),
                tested.isEmpty ? nil : try ChangeCapture.install(tables: tested, sequence: nil, in: db),
                changes, sequence
            )
        }
        workspace.tracker = installed.0
        workspace.schemaAtStart = installed.1
        workspace.logCapture = installed.2
        workspace.testCapture = installed.3
        workspace.inputChanges = installed.4
        workspace.logSequence = installed.5
    }

    /// The context every step of the build starts from; log lines go to the run history through `tally`.
    func stepContext(for workspace: Workspace, logger: Logger, tally: Tally) -> StepContext {
        let file = store.path
        var context = StepContext(
            runID: runID, domain: domain.id, step: "", database: workspace.database, parameters: parameters,
            inputVersions: inputs.mapValues(\.version), previousVersion: previous?.version,
            workDirectory: workspace.directory,
            home: mesh.home, logger: logger,
            sink: { [store, domain] line in
                tally.record("record a log line of \(domain.id)", file: file) { try store.insert([line]) }
            },
            progressSink: { [mesh, runID, domain] message in
                let event = MeshEvent(
                    kind: .stepProgress, runID: runID, domain: domain.id, payload: ["message": message])
                Task { await mesh.events.deliverTransient(event) }
            })
        context.fullRefresh = fullRefresh
        context.startedFromPrevious = workspace.startedFromPrevious
        context.inputChanges = workspace.inputChanges
        context.unchangedInputTables = workspace.unchangedInputTables
        context.indexesToServe = domain.servedIndexes
        context.previousDefinitionUnchanged =
            !fullRefresh && previous?.codeVersion == domain.codeVersion && previous?.parameters == parameters
        context.definitionUnchanged = workspace.startedFromPrevious && context.previousDefinitionUnchanged
        return context
    }

    /// The input versions that `previous` was built from, by domain id.
    static func inputRecords(read previous: VersionRecord, store: RuntimeStore) throws -> [String: VersionRecord] {
        var result: [String: VersionRecord] = [:]
        for (input, version) in previous.inputVersions {
            if let record = try store.version(DomainID(input), version) { result[input] = record }
        }
        return result
    }

    /// The schema of the main database, to tell whether a build changed any table or index definition.
    static func schemaText(_ db: Database) throws -> String {
        try String.fetchAll(
            db, sql: "SELECT type || ' ' || name || ' ' || IFNULL(sql, '') FROM main.sqlite_master ORDER BY 1"
        )
        .joined(separator: "\n")
    }

    /// A read-only, immutable SQLite URI for a published file.
    static func readOnlyURI(_ url: URL) -> String {
        let path =
            url.standardizedFileURL.path.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? url.path
        return "file:\(path)?mode=ro&immutable=1"
    }
}
