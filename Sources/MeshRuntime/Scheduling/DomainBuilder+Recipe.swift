import Foundation
import GRDB
import Logging

extension DomainBuilder {
    /// Why a recipe stopped: the status the build ends in and the sentence that says why.
    struct StepFailure: Error {
        var status: RunStatus
        var message: String
    }

    /// Runs a recipe's steps in dependency order, independent ones concurrently; returns the first failure.
    func runRecipe(
        _ recipe: Recipe, prefix: String, context: StepContext, testContext: TestContext, tally: Tally
    ) async -> StepFailure? {
        var done = Set<StepID>()
        var started = Set<StepID>()
        var failure: StepFailure?
        await withTaskGroup(of: (StepID, StepFailure?).self) { group in
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
                let step = StepID(prefix + node.id.rawValue)
                tally.record("record the skipped step \(step) of \(domain.id)", file: store.path) {
                    try store.save(
                        StepRunRecord(
                            runID: runID, domain: domain.id, step: step, kind: node.step.kind, status: .skipped,
                            startedAt: now, durationMS: 0, rowsIn: 0, rowsOut: 0, message: "an earlier step failed"))
                }
            }
        }
        return failure
    }

    /// Runs one step (or a nested recipe), records it, then runs its tests.
    private func runNode(
        _ node: RecipeNode, prefix: String, context: StepContext, testContext: TestContext, tally: Tally
    ) async -> StepFailure? {
        let stepID = StepID(prefix + node.id.rawValue)
        let started = now
        let clock = ContinuousClock.now
        var report = StepReport()
        var failure: StepFailure?
        let stepContext = Self.context(for: stepID, from: context)
        if let nested = node.step as? NestedRecipe {
            failure = await runRecipe(
                nested.recipe, prefix: "\(stepID).", context: stepContext, testContext: testContext, tally: tally)
        } else {
            do {
                report = try await node.step.run(in: stepContext)
            } catch {
                failure = StepFailure(status: .error, message: "step \(stepID) failed: \(MeshError.describe(error))")
            }
        }
        tally.add(rowsIn: report.rowsIn)
        let elapsed = Int((ContinuousClock.now - clock) / .milliseconds(1))
        let stepRecord = StepRunRecord(
            runID: runID, domain: domain.id, step: stepID, kind: node.step.kind,
            status: failure?.status ?? .success,
            startedAt: started, durationMS: elapsed, rowsIn: report.rowsIn, rowsOut: report.rowsOut,
            message: failure?.message ?? report.message)
        // A step the history cannot record stops the build: what the history shows must be what was built.
        let recorded = tally.record("record step \(stepID) of \(domain.id)", file: store.path) {
            try store.save(stepRecord)
        }
        await emit(
            .stepFinished,
            payload: [
                "step": stepID.rawValue, "status": failure == nil ? "success" : "error", "duration_ms": "\(elapsed)",
            ])
        if failure != nil { return failure }
        if !recorded, let history = tally.historyFailure {
            return StepFailure(status: .error, message: "\(history.message); the previous version keeps serving")
        }
        guard !node.tests.isEmpty else { return nil }
        let results: [TestResult]
        do {
            results = try await context.database.read { db in
                node.tests.map { TestResult.evaluate($0, step: stepID, in: db, context: testContext) }
            }
        } catch {
            return StepFailure(status: .error, message: "tests of step \(stepID) could not run: \(error)")
        }
        await recordTests(results, step: stepID, tally: tally)
        if let blocking = results.first(where: \.isBlocking) {
            return StepFailure(
                status: .fail,
                message: "test \(blocking.test) after step \(stepID) \(blocking.status.rawValue): \(blocking.message)")
        }
        return nil
    }

    /// The context of one step: the recipe's, under the step's id and logger metadata.
    private static func context(for stepID: StepID, from context: StepContext) -> StepContext {
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
        return stepContext
    }

    /// Runs the domain's tests on its outputs; returns the sentence of the first blocking failure.
    ///
    /// On a build from the previous version, tests the previous version passed check only what changed, when
    /// the change set is known.
    func runDomainTests(_ workspace: Workspace, testContext: inout TestContext, tally: Tally) async throws -> String? {
        if workspace.startedFromPrevious, let previous {
            testContext.previouslyPassed = try recordingHistory(
                "read the tests v\(previous.version) of \(domain.id) passed"
            ) { try Self.passedTests(of: previous, domain: domain, parameters: parameters, store: store) }
            testContext.changes = workspace.inputChanges
            if let testCapture = workspace.testCapture {
                let captured = try await workspace.database.read { db in
                    try testCapture.targets.keys.compactMap { table in
                        try testCapture.relation(of: table, in: db).map { (table, $0) }
                    }
                }
                for (table, relation) in captured { testContext.changes[table] = relation }
            }
        }
        let domainTestContext = testContext
        let results = try await workspace.database.read { db in
            domain.tests.map { TestResult.evaluate($0, step: nil, in: db, context: domainTestContext) }
        }
        await recordTests(results, step: nil, tally: tally)
        return results.first(where: \.isBlocking).map {
            "test \($0.test) \($0.status.rawValue): \($0.message)"
        }
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

    /// Records test results in the run history and announces the ones that did not pass.
    private func recordTests(_ results: [TestResult], step: StepID?, tally: Tally) async {
        tally.add(results)
        let at = now
        let records = results.map {
            TestResultRecord(
                runID: runID, domain: domain.id, step: step?.rawValue ?? "", test: $0.test, severity: $0.severity,
                status: $0.status,
                failures: $0.failures, sample: $0.sample, message: $0.message, at: at, value: $0.value)
        }
        tally.record("record the test results of \(domain.id)", file: store.path) { try store.insert(records) }
        for result in results where result.status != .pass {
            await emit(
                result.status == .warn ? .testWarned : .testFailed,
                payload: [
                    "test": result.test, "step": step?.rawValue ?? "", "failures": "\(result.failures)",
                    "message": result.message,
                ])
        }
    }
}
