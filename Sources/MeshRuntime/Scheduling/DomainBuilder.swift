import Foundation
import GRDB
import Logging

/// Builds one domain into a fresh working database, runs its recipe and tests, and publishes a new
/// immutable version only when every step and every `fail` test passed.
///
/// The coordinator is here; its parts sit beside it: the working database (`DomainBuilder+Workspace.swift`),
/// the recipe runner (`+Recipe`), publication (`+Publication`), retention (`+Retention`) and the file
/// primitives publication relies on (`+Files`). Every write to the run history is checked: a build whose
/// history cannot be recorded ends in `error` and publishes nothing.
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

    var store: RuntimeStore { mesh.store }
    var now: Date { mesh.configuration.now() }
    var inputVersions: [String: Int] {
        Dictionary(uniqueKeysWithValues: inputs.map { ($0.key.rawValue, $0.value.version) })
    }

    /// How a build ended, before the end is recorded.
    enum Ending {
        /// Nothing published: a step failed or threw, a `fail` test failed, or publication could not finish.
        case failed(RunStatus, String)
        /// The file is in place as `version`; `finish` records it and makes it the serving one.
        case published(VersionRecord, status: RunStatus, rowsOut: Int)
    }

    func build() async -> DomainOutcome {
        let clock = ContinuousClock.now
        var domainLogger = logger
        domainLogger[metadataKey: "mesh.domain"] = "\(domain.id)"
        domainLogger.info("building: \(reason)")
        let tally = Tally()
        var record = DomainRunRecord(
            runID: runID, domain: domain.id, status: .running, reason: reason, startedAt: now, finishedAt: nil,
            durationMS: nil,
            version: nil, inputVersions: inputVersions, parameters: parameters, codeVersion: domain.codeVersion,
            rowsIn: 0, rowsOut: 0,
            message: nil)
        do {
            try recordingHistory("record the start of the build of \(domain.id)") { try store.save(record) }
        } catch {
            // Nothing was built: a build whose start is not recorded could not record its end either.
            record.status = .error
            record.message = "\(MeshError.describe(error)); the previous version keeps serving"
            domainLogger.error("\(record.message!)")
            return outcome(of: record, tally: tally)
        }
        await emit(.domainStarted, payload: ["reason": reason])

        let buildDirectory = mesh.home.appendingPathComponent("domains").appendingPathComponent(domain.id.rawValue)
            .appendingPathComponent(".build-\(runID)")
        // Best-effort: a build folder left behind is removed by the next run's recovery (`Mesh.recover`).
        defer { try? FileManager.default.removeItem(at: buildDirectory) }
        let ending: Ending
        do {
            ending = try await buildAndPublish(in: buildDirectory, tally: tally, logger: domainLogger)
        } catch {
            let work = buildDirectory.appendingPathComponent("work.sqlite").path
            ending = .failed(.error, "\(MeshError.describe(error, file: work)); the previous version keeps serving")
        }
        return await finish(ending, record: record, clock: clock, tally: tally, logger: domainLogger)
    }

    /// The build proper: the working database, the recipe with its step tests, the domain tests, publication.
    private func buildAndPublish(in directory: URL, tally: Tally, logger: Logger) async throws -> Ending {
        let workspace = try await makeWorkspace(in: directory)
        let context = stepContext(for: workspace, logger: logger, tally: tally)
        var testContext = TestContext(domain: domain.id, parameters: parameters, hasPrevious: previous != nil)
        if let failure = await runRecipe(
            domain.recipe, prefix: "", context: context, testContext: testContext, tally: tally)
        {
            // Best-effort: the working file is thrown away with its folder.
            try? workspace.database.close()
            return .failed(failure.status, failure.message)
        }
        // Tests on the outputs, then the output contract (in publication).
        var phases = Phases()
        if let blocking = try await runDomainTests(workspace, testContext: &testContext, tally: tally) {
            try? workspace.database.close()  // best-effort, as above
            return .failed(.fail, blocking)
        }
        phases.lap("domain tests")
        return try await publish(workspace, copies: context.copies, phases: &phases, tally: tally, logger: logger)
    }

    /// Records how the build ended (a new version with its record and the serving switch in one transaction),
    /// then announces it and starts the domain's after-publication work.
    ///
    /// A write to the history that failed during the build (a step's record, a test result, a log line) makes
    /// the build an error even when its file is ready: the new version is not recorded, its file is removed,
    /// and the previous version keeps serving.
    private func finish(
        _ ending: Ending, record: DomainRunRecord, clock: ContinuousClock.Instant, tally: Tally, logger: Logger
    ) async -> DomainOutcome {
        var record = record
        record.finishedAt = now
        record.durationMS = Int((ContinuousClock.now - clock) / .milliseconds(1))
        // Steps that load external sources count what they read; a domain over other domains read the rows
        // of its inputs' versions.
        record.rowsIn =
            tally.rowsIn > 0 ? tally.rowsIn : inputs.values.reduce(0) { $0 + $1.rowCounts.values.reduce(0, +) }
        record.version = previous?.version
        record.rowsOut = 0
        var published: VersionRecord?
        switch ending {
        case .failed(let status, let message):
            record.status = status
            record.message = message
        case .published(let version, let status, let rowsOut):
            record.status = status
            record.message = status == .warn ? "published with warnings" : nil
            record.rowsOut = rowsOut
            record.version = version.version
            published = version
        }
        if let failure = tally.historyFailure, record.message?.contains(failure.message) != true {
            if let version = published { discard(version) }
            let earlier = record.status.failed ? record.message.map { "\($0); " } ?? "" : ""
            published = nil
            record.status = .error
            record.version = previous?.version
            record.rowsOut = 0
            record.message = "\(earlier)\(failure.message); the previous version keeps serving"
        }
        if let version = published {
            do { try store.publish(version, domainRun: record) } catch {
                record.status = .error
                record.version = previous?.version
                record.rowsOut = 0
                record.message =
                    "\(MeshError.history("record the new version v\(version.version) of \(domain.id)", error, file: store.path).message); the previous version keeps serving"
                discard(version)
                published = nil
                saveEnd(&record)
            }
        } else {
            saveEnd(&record)
        }
        await emit(.domainFinished, payload: ["status": record.status.rawValue, "message": record.message ?? ""])
        if let version = published, record.status.published {
            await emit(
                .domainPublished, payload: ["version": "\(version.version)", "fingerprint": version.fingerprint])
            startAfterPublication(of: version, logger: logger)
        }
        logger.log(
            level: record.status.failed ? .error : .info,
            "\(record.status.rawValue)\(record.message.map { ": \($0)" } ?? "")")
        return outcome(of: record, tally: tally)
    }

    /// Records the end of a build that published nothing; when the history cannot take it, the outcome says so
    /// and becomes an error.
    private func saveEnd(_ record: inout DomainRunRecord) {
        do {
            try recordingHistory("record the outcome of the build of \(domain.id)") { try store.save(record) }
        } catch {
            record.status = .error
            record.message = (record.message.map { "\($0); " } ?? "") + MeshError.describe(error)
        }
    }

    /// Removes the file of a version whose record could not be written: nothing reads an unrecorded file.
    private func discard(_ version: VersionRecord) {
        // Best-effort: the next run's recovery removes version files that have no record.
        try? FileManager.default.removeItem(at: mesh.path(of: version))
    }

    private func outcome(of record: DomainRunRecord, tally: Tally) -> DomainOutcome {
        DomainOutcome(
            domain: domain.id, status: record.status, reason: reason, version: record.version,
            message: record.message, tests: tally.tests, inputVersions: inputVersions)
    }

    /// Removing old files and the domain's hook are not on the readers' path: they run beside the run, which
    /// waits for them and fails when they could not record what they did.
    private func startAfterPublication(of version: VersionRecord, logger: Logger) {
        hooks.add(
            Task { [self] in
                do { try applyRetention() } catch { hooks.report(MeshError.describe(error)) }
            })
        guard let hook = domain.afterPublish else { return }
        let hookTally = Tally()
        let published = PublishedVersion(
            domain: domain.id, record: version, file: mesh.home.appendingPathComponent(version.path),
            home: mesh.home, runID: runID, log: { [self] message in log(message, logger: logger, tally: hookTally) })
        hooks.add(
            Task { [self] in
                do { try await hook(published) } catch {
                    log("warning: after publication: \(error)", logger: logger, tally: hookTally)
                }
                if let failure = hookTally.historyFailure { hooks.report(failure.message) }
            })
    }

    // MARK: The run history

    /// Runs a write to (or a read of) the run history; a failure becomes a `MeshError` naming runtime.sqlite.
    func recordingHistory<T>(_ what: String, _ body: () throws -> T) throws -> T {
        do { return try body() } catch { throw MeshError.history(what, error, file: store.path) }
    }

    /// Records a line of the build in the run history (and the process log); a failure is kept in `tally`.
    func log(_ message: String, logger: Logger, tally: Tally) {
        logger.info("\(message)")
        let line = LogLine(runID: runID, domain: domain.id, step: nil, level: "info", message: message, at: now)
        tally.record("record a log line of \(domain.id)", file: store.path) { try store.insert([line]) }
    }

    func emit(_ kind: EventKind, payload: [String: String]) async {
        await mesh.events.publish(MeshEvent(kind: kind, runID: runID, domain: domain.id, at: now, payload: payload))
    }
}

extension DomainBuilder {
    /// Accumulates what the steps did, and the first write to the run history that failed.
    final class Tally: @unchecked Sendable {
        // Guarded by `lock`; steps of one recipe may finish concurrently.
        private let lock = NSLock()
        private var _rowsIn = 0
        private var _tests: [TestResult] = []
        private var _historyFailure: MeshError?
        func add(rowsIn: Int) { lock.withLock { _rowsIn += rowsIn } }
        func add(_ results: [TestResult]) { lock.withLock { _tests += results } }
        var rowsIn: Int { lock.withLock { _rowsIn } }
        var tests: [TestResult] { lock.withLock { _tests } }
        /// The first write to the run history that failed; the build ends in error with it.
        var historyFailure: MeshError? { lock.withLock { _historyFailure } }

        /// Runs a write to the run history that the build does not stop for at once (log lines, test results);
        /// a failure is kept, and fails the build before it publishes. Returns whether the write went through.
        @discardableResult
        func record(_ what: String, file: String, _ write: () throws -> Void) -> Bool {
            do {
                try write()
                return true
            } catch {
                let failure = MeshError.history(what, error, file: file)
                lock.withLock { if _historyFailure == nil { _historyFailure = failure } }
                return false
            }
        }
    }

    /// The phases of a publication, each with the time since the previous one, for its log line.
    struct Phases {
        private var start = ContinuousClock.now
        private(set) var laps: [String] = []

        mutating func lap(_ name: String) {
            let next = ContinuousClock.now
            laps.append("\(name) \(DomainBuilder.seconds(next - start))")
            start = next
        }

        /// Phases timed elsewhere; the next lap starts now.
        mutating func append(_ entries: [String]) {
            laps += entries
            start = ContinuousClock.now
        }
    }

    /// A duration as the publication line writes it: seconds, two decimals.
    static func seconds(_ time: Duration) -> String {
        String(format: "%.2f s", Double(time / .milliseconds(1)) / 1000)
    }
}

extension String {
    var nonEmpty: String? { isEmpty ? nil : self }
}

/// The after-publication work a mesh run started (retention, hooks), which it waits for before it finishes.
final class HookTasks: @unchecked Sendable {
    // Guarded by `lock`: domains of one run finish concurrently.
    private let lock = NSLock()
    private var tasks: [Task<Void, Never>] = []
    private var _problems: [String] = []

    func add(_ task: Task<Void, Never>) { lock.withLock { tasks.append(task) } }

    /// Keeps a write to the run history that after-publication work could not make; the run fails with it.
    func report(_ problem: String) { lock.withLock { _problems.append(problem) } }

    /// What after-publication work could not record, in the order reported.
    var problems: [String] { lock.withLock { _problems } }

    /// Waits for every hook started so far, and for any a finishing hook's domain started meanwhile.
    func waitForAll() async {
        while let next = lock.withLock({ tasks.popLast() }) { await next.value }
    }
}
