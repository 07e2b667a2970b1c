import Foundation
import GRDB
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// Builds one domain into a fresh working database, runs its recipe and tests, and publishes a new
/// immutable version only when every step and every `fail` test passed.
struct DomainBuilder: Sendable {
    let mesh: Mesh
    let runID: RunID
    let domain: Domain
    let reason: String
    let inputs: [DomainID: VersionRecord]
    let previous: VersionRecord?
    let parameters: [String: String]
    let variation: String
    let sourceStates: [String: String]
    var fullRefresh = false
    let logger: Logger
    /// Where the run collects the domain's after-publication hook, to run beside the rest of the run (the
    /// domain's readers need its published version, not the hook's files).
    let hooks: HookTasks

    private var store: RuntimeStore { mesh.store }
    private var now: Date { mesh.configuration.now() }
    private var inputVersions: [String: Int] {
        Dictionary(uniqueKeysWithValues: inputs.map { ($0.key.rawValue, $0.value.version) })
    }

    /// Accumulates what the steps did.
    private final class Tally: @unchecked Sendable {
        // Guarded by `lock`; steps of one recipe may finish concurrently.
        private let lock = NSLock()
        private var _rowsIn = 0
        private var _tests: [TestResult] = []
        func add(rowsIn: Int) { lock.withLock { _rowsIn += rowsIn } }
        func add(_ results: [TestResult]) { lock.withLock { _tests += results } }
        var rowsIn: Int { lock.withLock { _rowsIn } }
        var tests: [TestResult] { lock.withLock { _tests } }
    }

    func build() async -> DomainOutcome {
        let started = now
        let clock = ContinuousClock.now
        var domainLogger = logger
        domainLogger[metadataKey: "mesh.domain"] = "\(domain.id)"
        domainLogger.info("building: \(reason)")
        var record = DomainRunRecord(
            runID: runID, domain: domain.id, status: .running, reason: reason, startedAt: started, finishedAt: nil,
            durationMS: nil,
            version: nil, inputVersions: inputVersions, parameters: parameters, codeVersion: domain.codeVersion,
            rowsIn: 0, rowsOut: 0,
            message: nil)
        try? store.save(record)
        await emit(.domainStarted, payload: ["reason": reason])

        let fm = FileManager.default
        let domainDirectory = mesh.home.appendingPathComponent("domains").appendingPathComponent(domain.id.rawValue)
        let buildDirectory = domainDirectory.appendingPathComponent(".build-\(runID)")
        defer { try? fm.removeItem(at: buildDirectory) }
        let tally = Tally()

        func finish(_ status: RunStatus, message: String?, version: VersionRecord? = nil, rowsOut: Int = 0) async
            -> DomainOutcome
        {
            record.status = status
            record.finishedAt = now
            record.durationMS = Int((ContinuousClock.now - clock) / .milliseconds(1))
            record.message = message
            // Steps that load external sources count what they read; a domain over other domains read the rows
            // of its inputs' versions.
            record.rowsIn =
                tally.rowsIn > 0 ? tally.rowsIn : inputs.values.reduce(0) { $0 + $1.rowCounts.values.reduce(0, +) }
            record.rowsOut = rowsOut
            record.version = version?.version ?? previous?.version
            if let version {
                do { try store.publish(version, domainRun: record) } catch {
                    record.status = .error
                    record.message =
                        "could not record the new version: \(MeshError.describe(error, file: RuntimeStore.file(in: mesh.home).path)); the previous version keeps serving"
                    try? store.save(record)
                }
            } else {
                try? store.save(record)
            }
            await emit(.domainFinished, payload: ["status": record.status.rawValue, "message": record.message ?? ""])
            if let version, record.status.published {
                await emit(
                    .domainPublished, payload: ["version": "\(version.version)", "fingerprint": version.fingerprint])
                // Removing old files is not on the readers' path: it runs beside the run, which waits for it.
                hooks.add(Task { [self] in applyRetention() })
                if let hook = domain.afterPublish {
                    let hookLogger = domainLogger
                    let published = PublishedVersion(
                        domain: domain.id, record: version, file: mesh.home.appendingPathComponent(version.path),
                        home: mesh.home, runID: runID, log: { [self] message in log(message, logger: hookLogger) })
                    hooks.add(
                        Task { [self] in
                            do { try await hook(published) } catch {
                                log("warning: after publication: \(error)", logger: hookLogger)
                            }
                        })
                }
            }
            domainLogger.log(
                level: record.status.failed ? .error : .info,
                "\(record.status.rawValue)\(record.message.map { ": \($0)" } ?? "")")
            return DomainOutcome(
                domain: domain.id, status: record.status, reason: reason, version: record.version,
                message: record.message,
                tests: tally.tests, inputVersions: inputVersions)
        }

        do {
            try fm.createDirectory(at: buildDirectory, withIntermediateDirectories: true)
            let workPath = buildDirectory.appendingPathComponent("work.sqlite").path
            // An incremental build starts from a byte copy of the previous version (not fsynced: the working
            // file is fsynced once, when it is published).
            var startedFromPrevious = false
            let setupStart = ContinuousClock.now
            var copyTime = Duration.zero
            if domain.buildsOnPreviousVersion, !fullRefresh, let previous, previous.retained {
                let previousFile = mesh.path(of: previous)
                if fm.fileExists(atPath: previousFile.path) {
                    try Self.copyFile(from: previousFile.path, to: workPath)
                    startedFromPrevious = true
                    copyTime = ContinuousClock.now - setupStart
                }
            }
            var configuration = Configuration()
            configuration.label = "build.\(domain.id)"
            configuration.journalMode = .default
            let slowStatements = Self.slowStatementThreshold
            let traceLabel = domain.id.rawValue
            configuration.prepareDatabase { db in
                if let slowStatements {
                    // PHARMA_MESH_TRACE_SQL=MS: every statement of a build that takes MS milliseconds or more, on
                    // standard error, to find where a build's time goes.
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
            let database = try DatabaseQueue(path: workPath, configuration: configuration)
            try await attachInputs(to: database)
            var tracker: IncrementalDigest?
            var schemaAtStart = ""
            var logCapture: ChangeCapture?
            var testCapture: ChangeCapture?
            var inputChanges: [String: String] = [:]
            var logSequence = 1
            var unchangedInputTables = Set<String>()
            if startedFromPrevious, let previous {
                let tables = domain.outputs.map(\.table).filter { previous.tableDigests[$0] != nil }
                let outputs = Set(domain.outputs.map(\.table))
                let tested = Set(domain.tests.compactMap { $0 as? any IncrementalTest }.flatMap(\.changeTables))
                    .filter(outputs.contains).sorted()
                let logged = domain.changeLogs
                let read = try Self.inputRecords(read: previous, store: store)
                let since = read.mapValues(\.fingerprint)
                for (input, version) in self.inputs {
                    guard let before = read[input.rawValue] else { continue }
                    for (table, digest) in version.tableDigests where before.tableDigests[table] == digest {
                        unchangedInputTables.insert("\(input.schemaName).\(table)")
                    }
                }
                let inputs = self.inputs
                (tracker, schemaAtStart, logCapture, testCapture, inputChanges, logSequence) =
                    try await database.writeWithoutTransaction { db in
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
            }

            // The time before the first step: the copy, then attaching the inputs and installing the triggers.
            let setupTime = ContinuousClock.now - setupStart
            var context = StepContext(
                runID: runID, domain: domain.id, step: "", database: database, parameters: parameters,
                inputVersions: inputs.mapValues(\.version), previousVersion: previous?.version,
                workDirectory: buildDirectory,
                home: mesh.home, logger: domainLogger, sink: { [store] line in try? store.insert([line]) },
                progressSink: { [mesh, runID, domain] message in
                    let event = MeshEvent(
                        kind: .stepProgress, runID: runID, domain: domain.id, payload: ["message": message])
                    Task { await mesh.events.deliverTransient(event) }
                })
            context.fullRefresh = fullRefresh
            context.startedFromPrevious = startedFromPrevious
            context.inputChanges = inputChanges
            context.unchangedInputTables = unchangedInputTables
            context.indexesToServe = domain.servedIndexes
            context.previousDefinitionUnchanged =
                !fullRefresh && previous?.codeVersion == domain.codeVersion && previous?.parameters == parameters
            context.definitionUnchanged = startedFromPrevious && context.previousDefinitionUnchanged
            var testContext = TestContext(domain: domain.id, parameters: parameters, hasPrevious: previous != nil)

            if let failure = await runRecipe(
                domain.recipe, prefix: "", context: context, testContext: testContext, tally: tally)
            {
                try? database.close()
                return await finish(failure.status, message: failure.message)
            }

            // Tests on the outputs, then the output contract.
            var phase = ContinuousClock.now
            var phases: [String] = []
            func lap(_ name: String) {
                let next = ContinuousClock.now
                phases.append("\(name) \(Self.seconds(next - phase))")
                phase = next
            }
            if startedFromPrevious, let previous {
                // Tests the previous version passed check only what changed, when the change set is known.
                testContext.previouslyPassed = try Self.passedTests(
                    of: previous, domain: domain, parameters: parameters, store: store)
                testContext.changes = inputChanges
                if let testCapture {
                    let captured = try await database.read { db in
                        try testCapture.targets.keys.compactMap { table in
                            try testCapture.relation(of: table, in: db).map { (table, $0) }
                        }
                    }
                    for (table, relation) in captured { testContext.changes[table] = relation }
                }
            }
            let domainTestContext = testContext
            let results = try await database.read { db in
                domain.tests.map { TestResult.evaluate($0, step: nil, in: db, context: domainTestContext) }
            }
            await recordTests(results, step: nil, tally: tally)
            if let blocking = results.first(where: \.isBlocking) {
                try? database.close()
                return await finish(
                    .fail, message: "test \(blocking.test) \(blocking.status.rawValue): \(blocking.message)")
            }
            lap("domain tests")
            let (digests, incrementallyDigested, copiedTables, finalizePhases) = try await finalize(
                database, file: workPath, tracker: tracker, schemaAtStart: schemaAtStart,
                captures: [logCapture, testCapture].compactMap { $0 }, logCapture: logCapture,
                logSequence: logSequence, startedFromPrevious: startedFromPrevious, copies: context.copies)
            phases += finalizePhases
            phase = ContinuousClock.now
            if startedFromPrevious, let previous {
                let full = digests.keys.filter { !incrementallyDigested.contains($0) && !copiedTables.contains($0) }
                    .sorted()
                log(
                    "built on a copy of v\(previous.version); digested from changed rows: "
                        + "\(incrementallyDigested.sorted().joined(separator: ", ").nonEmpty ?? "none"); "
                        + "digested fully: \(full.joined(separator: ", ").nonEmpty ?? "none")"
                        + (copiedTables.isEmpty
                            ? "" : "; digests of their inputs: \(copiedTables.sorted().joined(separator: ", "))"),
                    logger: domainLogger)
            }
            try database.close()

            let versionNumber = ((try? store.latestVersionNumber(of: domain.id)) ?? 0) + 1
            let relativePath = "domains/\(domain.id.rawValue)/v\(String(format: "%06d", versionNumber)).sqlite"
            // Serving engines load the build before anything is published: a failure there publishes nothing.
            let engines = mesh.configuration.servingEngines.filter { $0.serves(domain) }
            var staged = StagedBuild(
                domain: domain, version: versionNumber, file: URL(fileURLWithPath: workPath), digests: digests,
                keepVersions: mesh.configuration.keepVersions, runID: runID,
                log: { [self, domainLogger] message in log(message, logger: domainLogger) })
            for (index, engine) in engines.enumerated() {
                do { try await engine.stage(staged) } catch {
                    for loaded in engines[...index] { await loaded.discard(staged) }
                    return await finish(.error, message: "could not load the build into \(engine.name): \(error)")
                }
            }
            if !engines.isEmpty { lap("serving engines") }
            try Self.durablyMove(URL(fileURLWithPath: workPath), to: mesh.home.appendingPathComponent(relativePath))
            lap("fsync and rename")
            // With the time before the first step, which a build on the previous version spends mostly copying it.
            let setup =
                "; before the steps \(Self.seconds(setupTime))"
                + (startedFromPrevious ? " (the copy \(Self.seconds(copyTime)))" : "")
            log("publication: \(phases.joined(separator: ", "))\(setup)", logger: domainLogger)

            var upstream: [String: Int] = [:]
            for (input, version) in inputs {
                upstream.merge(version.upstreamVersions) { max($0, $1) }
                upstream[input.rawValue] = version.version
            }
            let warned = tally.tests.contains { $0.status == .warn }
            let version = VersionRecord(
                domain: domain.id, version: versionNumber, fingerprint: Fingerprint.version(of: digests),
                path: relativePath,
                runID: runID, publishedAt: now, status: warned ? .warn : .success, codeVersion: domain.codeVersion,
                codeCommit: mesh.configuration.codeCommit, variation: variation, parameters: parameters,
                inputVersions: inputVersions, upstreamVersions: upstream, sourceStates: sourceStates,
                rowCounts: digests.mapValues(\.rowCount), schema: digests.mapValues(\.columns), retained: true,
                tableDigests: digests.mapValues(\.digest))
            staged.record = version
            staged.file = mesh.home.appendingPathComponent(relativePath)
            for (index, engine) in engines.enumerated() {
                do { try await engine.makeCurrent(staged) } catch {
                    // Engines switched before this one keep the new version: the next publication, or
                    // `currentBuilds(for:)`, puts them back in line; the runtime does not record it.
                    for pending in engines[index...] { await pending.discard(staged) }
                    try? FileManager.default.removeItem(at: staged.file)
                    return await finish(.error, message: "could not switch \(engine.name) to the new version: \(error)")
                }
            }
            return await finish(
                warned ? .warn : .success, message: warned ? "published with warnings" : nil, version: version,
                rowsOut: digests.values.map(\.rowCount).reduce(0, +))
        } catch {
            return await finish(
                .error,
                message:
                    "\(MeshError.describe(error, file: buildDirectory.appendingPathComponent("work.sqlite").path)); the previous version keeps serving"
            )
        }
    }

    // MARK: Recipe

    private struct Failure: Error {
        var status: RunStatus
        var message: String
    }

    /// Runs a recipe's steps in dependency order, independent ones concurrently; returns the first failure.
    private func runRecipe(
        _ recipe: Recipe, prefix: String, context: StepContext, testContext: TestContext, tally: Tally
    ) async -> Failure? {
        var done = Set<StepID>()
        var started = Set<StepID>()
        var failure: Failure?
        await withTaskGroup(of: (StepID, Failure?).self) { group in
            var running = 0
            func startReady() {
                guard failure == nil else { return }
                for node in recipe.nodes where !started.contains(node.id) && node.after.allSatisfy(done.contains) {
                    started.insert(node.id)
                    running += 1
                    group.addTask {
                        (
                            node.id,
                            await self.runNode(
                                node, prefix: prefix, context: context, testContext: testContext, tally: tally)
                        )
                    }
                }
            }
            startReady()
            while running > 0, let (id, nodeFailure) = await group.next() {
                running -= 1
                done.insert(id)
                if let nodeFailure, failure == nil { failure = nodeFailure }
                startReady()
            }
        }
        if failure != nil {
            for node in recipe.nodes where !started.contains(node.id) {
                try? store.save(
                    StepRunRecord(
                        runID: runID, domain: domain.id, step: StepID(prefix + node.id.rawValue), kind: node.step.kind,
                        status: .skipped,
                        startedAt: now, durationMS: 0, rowsIn: 0, rowsOut: 0, message: "an earlier step failed"))
            }
        }
        return failure
    }

    private func runNode(
        _ node: RecipeNode, prefix: String, context: StepContext, testContext: TestContext, tally: Tally
    ) async -> Failure? {
        let stepID = StepID(prefix + node.id.rawValue)
        let started = now
        let clock = ContinuousClock.now
        var stepLogger = context.logger
        stepLogger[metadataKey: "mesh.step"] = "\(stepID)"
        var stepContext = StepContext(
            runID: context.runID, domain: context.domain, step: stepID, database: context.database,
            parameters: context.parameters,
            inputVersions: context.inputVersions, previousVersion: context.previousVersion,
            workDirectory: context.workDirectory,
            home: context.home, logger: stepLogger, sink: context.sink, progressSink: context.progressSink,
            fullRefresh: context.fullRefresh, startedFromPrevious: context.startedFromPrevious)
        stepContext.inputChanges = context.inputChanges
        stepContext.unchangedInputTables = context.unchangedInputTables
        stepContext.definitionUnchanged = context.definitionUnchanged
        stepContext.previousDefinitionUnchanged = context.previousDefinitionUnchanged
        stepContext.copies = context.copies
        stepContext.touchedLog = context.touchedLog
        stepContext.indexesToServe = context.indexesToServe
        var report = StepReport()
        var failure: Failure?
        if let nested = node.step as? NestedRecipe {
            failure = await runRecipe(
                nested.recipe, prefix: "\(stepID).", context: stepContext, testContext: testContext, tally: tally)
        } else {
            do {
                report = try await node.step.run(in: stepContext)
            } catch {
                failure = Failure(status: .error, message: "step \(stepID) failed: \(MeshError.describe(error))")
            }
        }
        tally.add(rowsIn: report.rowsIn)
        let elapsed = Int((ContinuousClock.now - clock) / .milliseconds(1))
        try? store.save(
            StepRunRecord(
                runID: runID, domain: domain.id, step: stepID, kind: node.step.kind,
                status: failure == nil ? .success : failure!.status,
                startedAt: started, durationMS: elapsed, rowsIn: report.rowsIn, rowsOut: report.rowsOut,
                message: failure?.message ?? report.message))
        await emit(
            .stepFinished,
            payload: [
                "step": stepID.rawValue, "status": failure == nil ? "success" : "error", "duration_ms": "\(elapsed)",
            ])
        if failure != nil { return failure }
        guard !node.tests.isEmpty else { return nil }
        let results: [TestResult]
        do {
            results = try await context.database.read { db in
                node.tests.map { TestResult.evaluate($0, step: stepID, in: db, context: testContext) }
            }
        } catch {
            return Failure(status: .error, message: "tests of step \(stepID) could not run: \(error)")
        }
        await recordTests(results, step: stepID, tally: tally)
        if let blocking = results.first(where: \.isBlocking) {
            return Failure(
                status: .fail,
                message: "test \(blocking.test) after step \(stepID) \(blocking.status.rawValue): \(blocking.message)")
        }
        return nil
    }

    private func recordTests(_ results: [TestResult], step: StepID?, tally: Tally) async {
        tally.add(results)
        let at = now
        try? store.insert(
            results.map {
                TestResultRecord(
                    runID: runID, domain: domain.id, step: step?.rawValue ?? "", test: $0.test, severity: $0.severity,
                    status: $0.status,
                    failures: $0.failures, sample: $0.sample, message: $0.message, at: at, value: $0.value)
            })
        for result in results where result.status != .pass {
            await emit(
                result.status == .warn ? .testWarned : .testFailed,
                payload: [
                    "test": result.test, "step": step?.rawValue ?? "", "failures": "\(result.failures)",
                    "message": result.message,
                ])
        }
    }

    // MARK: Publication

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

    /// A duration as the publication line writes it: seconds, two decimals.
    static func seconds(_ time: Duration) -> String {
        String(format: "%.2f s", Double(time / .milliseconds(1)) / 1000)
    }

    /// `PHARMA_MESH_TRACE_SQL`: the duration in milliseconds from which a build's statements are printed.
    static let slowStatementThreshold: Double? = ProcessInfo.processInfo.environment["PHARMA_MESH_TRACE_SQL"]
        .flatMap(Double.init)

    /// A read-only, immutable SQLite URI for a published file.
    static func readOnlyURI(_ url: URL) -> String {
        let path =
            url.standardizedFileURL.path.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? url.path
        return "file:\(path)?mode=ro&immutable=1"
    }

    /// Drops working tables, checks the output contract, and digests the outputs.
    ///
    /// With a `tracker` (the build started from a copy of the previous version), a table changed in place is
    /// digested from its changed rows only, and statistics are refreshed cheaply (or kept when nothing changed).
    /// Returns the digests, the tables digested from their changed rows, and those that took an input's digest (verbatim
    /// copies, `StepContext.copyInputTable`).
    private func finalize(
        _ database: DatabaseQueue, file: String, tracker: IncrementalDigest?, schemaAtStart: String,
        captures: [ChangeCapture], logCapture: ChangeCapture?, logSequence: Int, startedFromPrevious: Bool,
        copies: CopiedTables
    ) async throws -> ([String: Fingerprint.TableDigest], Set<String>, Set<String>, [String]) {
        let outputs = Set(domain.outputs.map(\.table))
        let keep = outputs.union(domain.retainedTables).union(
            domain.changeLogs.isEmpty
                ? [] : [ChangeCapture.logTable] + domain.changeLogs.map(ChangeCapture.changesTable(of:)))
        let previousFingerprint = startedFromPrevious ? previous?.fingerprint : nil
        return try await database.writeWithoutTransaction { db in
            let started = ContinuousClock.now
            let unchanged = try tracker.map { try !$0.hasChanges(in: db) && Self.schemaText(db) == schemaAtStart }
            // Each DDL statement makes GRDB reload the schema before its next lookup: one batch each.
            let attached = Set(try Row.fetchAll(db, sql: "PRAGMA database_list").map { $0["name"] as String })
            let detach = (["previous"] + inputs.keys.map(\.schemaName).sorted()).filter(attached.contains)
                .map { "DETACH DATABASE \(quoteQualified($0));" }
            if !detach.isEmpty { try db.execute(sql: detach.joined(separator: "\n")) }
            let objects = try Row.fetchAll(
                db,
                sql: "SELECT type, name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%'"
            )
            var drops: [String] = []
            for object in objects.sorted(by: { ($0["type"] as String) > ($1["type"] as String) }) {  // views first
                let name: String = object["name"]
                guard !keep.contains(name) else { continue }
                drops.append("DROP \((object["type"] as String) == "view" ? "VIEW" : "TABLE") \(quoteQualified(name));")
            }
            if !drops.isEmpty { try db.execute(sql: drops.joined(separator: "\n")) }
            var digests: [String: Fingerprint.TableDigest] = [:]
            var incremental = Set<String>()
            var copied = Set<String>()
            for output in domain.outputs {
                guard try db.tableExists(output.table) || db.viewExists(output.table) else {
                    throw MeshError(.stepFailed, "output contract: the recipe did not create table \(output.table)")
                }
                let present = Set(try db.columns(in: output.table).map { $0.name.lowercased() })
                let missing = output.columns.map(\.name).filter { !present.contains($0.lowercased()) }
                guard missing.isEmpty else {
                    throw MeshError(
                        .stepFailed,
                        "output contract: table \(output.table) lacks column\(missing.count == 1 ? "" : "s") \(missing.joined(separator: ", "))"
                    )
                }
                if let tracker, let previous, let digest = previous.tableDigests[output.table],
                    let rowCount = previous.rowCounts[output.table], let columns = previous.schema[output.table],
                    let updated = try tracker.digest(
                        of: output.table,
                        previous: Fingerprint.TableDigest(columns: columns, rowCount: rowCount, digest: digest), in: db)
                {
                    digests[output.table] = updated
                    incremental.insert(output.table)
                } else if let schema = try copies.unmodifiedSource(of: output.table, in: db),
                    let input = schema == "previous"
                        ? previous : inputs.first(where: { $0.key.schemaName == schema })?.value,
                    let digest = input.tableDigests[output.table], let rowCount = input.rowCounts[output.table],
                    let columns = input.schema[output.table]
                {
                    // A verbatim copy of an input table has the input's digest: no need to read it again.
                    digests[output.table] = Fingerprint.TableDigest(
                        columns: columns, rowCount: rowCount, digest: digest)
                    copied.insert(output.table)
                } else {
                    digests[output.table] = try Fingerprint.digest(table: output.table, in: db, file: file)
                }
            }
            let digested = ContinuousClock.now
            if !domain.changeLogs.isEmpty {
                try ChangeCapture.commit(
                    logCapture, tables: domain.changeLogs, sequence: logSequence, before: previousFingerprint,
                    after: Fingerprint.version(of: digests), depth: domain.changeLogDepth, in: db)
            }
            for capture in captures { try capture.uninstall(in: db) }
            try copies.uninstall(in: db)
            if let tracker {
                try tracker.uninstall(in: db)
                // The copy carries the previous statistics: keep them when nothing changed, else refresh them
                // from a bounded sample of each index instead of a full scan.
                if unchanged != true { try db.execute(sql: "PRAGMA analysis_limit = 400; ANALYZE") }
            } else {
                try db.execute(sql: "PRAGMA analysis_limit = 1000; ANALYZE")
            }
            return (
                digests, incremental, copied,
                [
                    "digest \(Self.seconds(digested - started))",
                    "statistics \(Self.seconds(ContinuousClock.now - digested))",
                ]
            )
        }
    }

    /// The input versions that `previous` was built from, by domain id.
    private static func inputRecords(read previous: VersionRecord, store: RuntimeStore) throws -> [String:
        VersionRecord]
    {
        var result: [String: VersionRecord] = [:]
        for (input, version) in previous.inputVersions {
            if let record = try store.version(DomainID(input), version) { result[input] = record }
        }
        return result
    }

    /// The domain tests that passed when `previous` was built, if it was built by the same definition and
    /// parameters (else none: a changed test must read everything once).
    private static func passedTests(
        of previous: VersionRecord, domain: Domain, parameters: [String: String], store: RuntimeStore
    ) throws -> Set<String> {
        guard previous.codeVersion == domain.codeVersion, previous.parameters == parameters else { return [] }
        return Set(
            try store.testResults(of: domain.id, run: previous.runID, limit: 100_000)
                .filter { $0.step.isEmpty && $0.status == .pass }.map(\.test))
    }

    /// Records a line of the build in the run history (and the process log).
    private func log(_ message: String, logger: Logger) {
        logger.info("\(message)")
        try? store.insert([
            LogLine(runID: runID, domain: domain.id, step: nil, level: "info", message: message, at: now)
        ])
    }

    /// The schema of the main database, to tell whether a build changed any table or index definition.
    private static func schemaText(_ db: Database) throws -> String {
        try String.fetchAll(
            db, sql: "SELECT type || ' ' || name || ' ' || IFNULL(sql, '') FROM main.sqlite_master ORDER BY 1"
        )
        .joined(separator: "\n")
    }

    /// Copies a file in 4 MiB chunks, without syncing it.
    ///
    /// On Linux the copy is written with `O_DIRECT`, past the page cache: publication has to put every byte
    /// on disk anyway, and filling the page cache with a fresh copy of a large version can cost more than
    /// writing it out (1.4 s against 0.4 s for a 445 MB file on the benchmark machine when the cache had to
    /// take fresh pages; about level when it could reuse freed ones). Where the file system refuses
    /// `O_DIRECT`, or for a tail that is not a whole number of blocks, the copy is written through the cache.
    static func copyFile(from source: String, to destination: String) throws {
        let input = open(source, O_RDONLY)
        guard input >= 0 else {
            throw MeshError(.storage, "cannot read \(source): \(String(cString: strerror(errno)))")
        }
        defer { close(input) }
        var direct = directFlag != 0
        var output = direct ? open(destination, O_WRONLY | O_CREAT | O_TRUNC | directFlag, 0o644) : -1
        if output < 0 {
            direct = false
            output = open(destination, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        }
        guard output >= 0 else {
            throw MeshError(.storage, "cannot create \(destination): \(String(cString: strerror(errno)))")
        }
        defer { close(output) }
        let chunk = 4 << 20
        let block = 4096
        var raw: UnsafeMutableRawPointer?
        guard posix_memalign(&raw, block, chunk) == 0, let buffer = raw else {
            throw MeshError(.storage, "cannot copy \(source): out of memory")
        }
        defer { free(buffer) }
        while true {
            // Fill the chunk, so that every direct write is a whole number of blocks.
            var count = 0
            while count < chunk {
                let got = try retryingInterrupts("cannot copy \(source)") { read(input, buffer + count, chunk - count) }
                if got == 0 { break }
                count += got
            }
            if count == 0 { break }
            if direct, count % block != 0 {
                _ = fcntl(output, F_SETFL, fcntl(output, F_GETFL) & ~directFlag)
                direct = false
            }
            var offset = 0
            while offset < count {
                offset += try retryingInterrupts("cannot copy to \(destination)") {
                    write(output, buffer + offset, count - offset)
                }
            }
            if count < chunk { break }
        }
    }

    /// A `read` or `write`, called again when a signal interrupted it; an error names what failed and why.
    private static func retryingInterrupts(_ what: String, _ call: () -> Int) throws -> Int {
        while true {
            let result = call()
            if result >= 0 { return result }
            if errno != EINTR { throw MeshError(.storage, "\(what): \(String(cString: strerror(errno)))") }
        }
    }

    /// Linux's `O_DIRECT`, which Swift's Glibc module does not export (0 elsewhere: no direct copy).
    static let directFlag: Int32 = {
        #if os(Linux) && arch(x86_64)
            return 0o40000
        #elseif os(Linux) && arch(arm64)
            return 0o200000
        #else
            return 0
        #endif
    }()

    /// fsyncs the finished file, then renames it into place (an atomic step on one file system).
    static func durablyMove(_ source: URL, to destination: URL) throws {
        let fd = open(source.path, O_RDONLY)
        if fd >= 0 {
            fsync(fd)
            close(fd)
        }
        if FileManager.default.fileExists(atPath: destination.path) {
            try FileManager.default.removeItem(at: destination)
        }
        guard rename(source.path, destination.path) == 0 else {
            throw MeshError(.storage, "cannot publish \(destination.path): \(String(cString: strerror(errno)))")
        }
        let directory = open(destination.deletingLastPathComponent().path, O_RDONLY)
        if directory >= 0 {
            fsync(directory)
            close(directory)
        }
    }

    /// Keeps the newest `keepVersions` files of the domain; older records stay, marked not retained.
    private func applyRetention() {
        let keep = mesh.configuration.keepVersions
        guard keep > 0, let versions = try? store.retainedVersions(of: domain.id) else { return }
        let pinned = (try? store.pinnedVersions(of: domain.id)) ?? []
        for old in versions.dropFirst(keep) where !pinned.contains(old.version) {
            try? FileManager.default.removeItem(at: mesh.path(of: old))
            try? store.pool.write { db in
                try db.execute(
                    sql: "UPDATE domain_version SET retained = 0 WHERE domain = ? AND version = ?",
                    arguments: [old.domain, old.version])
            }
        }
    }

    private func emit(_ kind: EventKind, payload: [String: String]) async {
        await mesh.events.publish(MeshEvent(kind: kind, runID: runID, domain: domain.id, at: now, payload: payload))
    }
}

extension String {
    fileprivate var nonEmpty: String? { isEmpty ? nil : self }
}

/// The after-publication hooks a mesh run started, which it waits for before it finishes.
final class HookTasks: @unchecked Sendable {
    // Guarded by `lock`: domains of one run finish concurrently.
    private let lock = NSLock()
    private var tasks: [Task<Void, Never>] = []

    func add(_ task: Task<Void, Never>) { lock.withLock { tasks.append(task) } }

    /// Waits for every hook started so far, and for any a finishing hook's domain started meanwhile.
    func waitForAll() async {
        while let next = lock.withLock({ tasks.popLast() }) { await next.value }
    }
}
