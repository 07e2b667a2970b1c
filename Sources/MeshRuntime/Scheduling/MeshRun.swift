import Foundation
import GRDB
import Logging

/// One mesh run: plans which domains to consider, builds them in dependency order (independent ones
/// concurrently), enforces the sync check, and records everything under one run id.
actor MeshRun {
    let mesh: Mesh
    let request: RunRequest
    let runID: RunID
    private var variationName = ""
    private var variation = Variation()
    private var tasks: [DomainID: Task<DomainOutcome, Never>] = [:]
    private let semaphore: AsyncSemaphore
    /// Who holds, waits for and is handed the build slots; the semaphore does the waiting.
    private var slots: SlotLedger
    /// After-publication hooks (exports) of the domains built, run beside the rest of the run.
    private let hooks = HookTasks()

    init(mesh: Mesh, request: RunRequest) {
        self.mesh = mesh
        self.request = request
        self.runID = request.runID ?? RunID.make(at: mesh.configuration.now())
        let candidates = request.only ?? Set(mesh.registry.ids)
        // No ancestor in the run, not only no input: such a domain's task never waits for another of the run.
        let edges = mesh.registry.domains.mapValues(\.upstreamDomains)
        let roots = candidates.filter { id in
            edges[id] != nil && GraphAlgorithms.upstreamClosure(of: [id], edges: edges).isDisjoint(with: candidates)
        }
        self.semaphore = AsyncSemaphore(mesh.configuration.maxConcurrentDomains, expecting: roots.count)
        // Best-effort: durations only order the waiting domains; without them every domain has the same priority.
        let priorities = mesh.criticalPaths(durations: (try? mesh.store.typicalBuildDurations()) ?? [:])
        self.slots = SlotLedger(priorities: priorities, readers: mesh.dependents, roots: roots)
    }

    var logger: Logger {
        var logger = mesh.configuration.logger
        logger[metadataKey: "mesh.run"] = "\(runID)"
        return logger
    }

    func execute() async throws -> RunSummary {
        try mesh.validateGraph()
        let registry = mesh.registry
        if let only = request.only {
            for id in only.sorted() where registry[id] == nil {
                throw MeshError(
                    .unknownDomain,
                    "unknown domain '\(id)'\(Self.suggestion(for: id.rawValue, among: registry.ids.map(\.rawValue)))")
            }
        }
        (variationName, variation) = try mesh.configuration.variations.variation(named: request.variation)
        let requestText = String(decoding: try JSONEncoder.sorted.encode(request), as: UTF8.self)
        try recording("start") {
            try mesh.store.save(
                MeshRunRecord(
                    runID: runID, startedAt: mesh.configuration.now(), finishedAt: nil, status: .running,
                    variation: variationName,
                    trigger: request.trigger, triggerEventID: request.triggerEventID, request: requestText,
                    codeCommit: mesh.configuration.codeCommit, message: nil))
        }
        let planned = request.only?.count ?? registry.ids.count
        await emit(
            .runStarted, payload: ["variation": variationName, "trigger": request.trigger, "domains": "\(planned)"])
        logger.info("run started")

        let candidates = request.only ?? Set(registry.ids)
        let order = GraphAlgorithms.topologicalOrder(
            nodes: registry.ids, edges: registry.domains.mapValues(\.upstreamDomains)
        )
        .filter(candidates.contains)
        for id in order {
            tasks[id] = Task {
                let outcome = await self.process(id)
                await self.taskFinished(id)
                return outcome
            }
        }
        var outcomes: [DomainID: DomainOutcome] = [:]
        for id in order { outcomes[id] = await tasks[id]!.value }
        // Lagging inputs brought up to date by the sync check ran in this run too.
        for (id, task) in tasks where outcomes[id] == nil { outcomes[id] = await task.value }
        // A run ends with its exports written: whoever reads them after the run finds the new version's files.
        await hooks.waitForAll()
        // What the history could not record after publication (retention, hooks' log lines) or as events fails
        // the run: its record must not read as complete.
        let unrecorded = hooks.problems + (await mesh.events.takeUnrecorded())

        let status: RunStatus =
            outcomes.values.contains { $0.status.failed } || !unrecorded.isEmpty
            ? .fail
            : outcomes.values.contains { $0.status == .warn } ? .warn : .success
        let counts = Dictionary(grouping: outcomes.values, by: \.status).mapValues(\.count)
        var message = counts.keys.sorted { $0.rawValue < $1.rawValue }.map { "\(counts[$0]!) \($0.rawValue)" }.joined(
            separator: ", ")
        if !unrecorded.isEmpty {
            message += "; not recorded: " + unrecorded.joined(separator: "; ")
            logger.error("\(message)")
        }
        let finishedAt = mesh.configuration.now()
        try recording("outcome (\(status.rawValue): \(message))") {
            try mesh.store.pool.write { [runID] db in
                try db.execute(
                    sql: "UPDATE mesh_run SET status = ?, finished_at = ?, message = ? WHERE run_id = ?",
                    arguments: [status, finishedAt, message, runID])
            }
        }
        await emit(.runFinished, payload: ["status": status.rawValue, "summary": message])
        logger.info("run finished: \(status.rawValue) (\(message))")
        return RunSummary(runID: runID, status: status, outcomes: outcomes, triggeredRuns: [])
    }

    /// Runs a write to the run history; a failure is the run's error, in words that name the database. A run
    /// whose end is not recorded shows as interrupted (no live process holds the lock) and is recorded so by
    /// the next run.
    private func recording(_ what: String, _ write: () throws -> Void) throws {
        do { try write() } catch {
            let file = RuntimeStore.file(in: mesh.home).path
            throw MeshError(
                .storage,
                "run \(runID) could not record its \(what) in the run history: \(MeshError.describe(error, file: file)). "
                    + "Published versions are unchanged and keep serving; run again once this is fixed.")
        }
    }

    /// Waits for the domain's inputs in this run, then builds it if anything it depends on changed.
    private func process(_ id: DomainID) async -> DomainOutcome {
        let domain = mesh.registry[id]!
        for input in domain.upstreamDomains {
            guard let task = tasks[input] else { continue }
            let upstream = await task.value
            if upstream.status.failed || upstream.status == .skipped {
                let cause =
                    upstream.status == .skipped
                    ? "was skipped (\(upstream.reason))"
                    : "failed (\(upstream.status.rawValue): \(upstream.message ?? upstream.reason))"
                return await skip(domain, because: "upstream \(input) \(cause)")
            }
        }
        return await buildIfNeeded(domain, syncFor: nil)
    }

    /// Brings a domain outside the run's plan up to date, for the sync check of a consumer.
    private func ensureFresh(_ id: DomainID, for consumer: DomainID) async -> DomainOutcome {
        if let task = tasks[id] { return await task.value }
        let task = Task { () -> DomainOutcome in
            let outcome = await self.freshen(id, for: consumer)
            await self.taskFinished(id)
            return outcome
        }
        tasks[id] = task
        return await task.value
    }

    private func freshen(_ id: DomainID, for consumer: DomainID) async -> DomainOutcome {
        let domain = mesh.registry[id]!
        for input in domain.upstreamDomains {
            let upstream = await ensureFresh(input, for: id)
            if upstream.status.failed || upstream.status == .skipped {
                return await skip(domain, because: "upstream \(input) \(upstream.status.rawValue)")
            }
        }
        return await buildIfNeeded(domain, syncFor: consumer)
    }

    private func buildIfNeeded(_ domain: Domain, syncFor consumer: DomainID?) async -> DomainOutcome {
        let id = domain.id
        do {
            var inputs = try currentInputs(of: domain)
            if let missing = domain.upstreamDomains.first(where: { inputs[$0] == nil }) {
                return await skip(domain, because: "input \(missing) has no published version yet")
            }
            if let violation = try await checkSync(of: domain, inputs: &inputs) { return violation }
            let current = try mesh.store.currentVersion(of: id)
            let parameters = VariationSet.resolve(
                domain: domain, variation: variation, overrides: request.parameters[id] ?? [:])
            var reasons = dirtyReasons(domain, current: current, inputs: inputs, parameters: parameters)
            if let consumer, !reasons.isEmpty {
                reasons.insert("brought up to date for the sync check of \(consumer)", at: 0)
            }
            guard !reasons.isEmpty else {
                await mesh.events.deliverTransient(
                    MeshEvent(kind: .domainUpToDate, runID: runID, domain: id, at: mesh.configuration.now()))
                return DomainOutcome(
                    domain: id, status: .upToDate, reason: "inputs, code and parameters unchanged",
                    version: current?.version,
                    message: nil, tests: [], inputVersions: current?.inputVersions ?? [:])
            }
            if !slots.takeHandoff(id) {
                slots.willWait(id)
                await semaphore.wait(priority: slots.priority(of: id))
            }
            let outcome = await DomainBuilder(
                mesh: mesh, runID: runID, domain: domain, reason: reasons.joined(separator: "; "), inputs: inputs,
                previous: current, parameters: parameters, variation: variationName,
                sourceStates: current?.sourceStates.merging(
                    request.sourceStates.filter { domain.sources.contains($0.key) }
                ) { $1 }
                    ?? request.sourceStates.filter { domain.sources.contains($0.key) },
                fullRefresh: request.fullRefresh, logger: logger, hooks: hooks
            ).build()
            slots.finished.insert(id)
            await passSlot(from: id)
            return outcome
        } catch {
            return await finishWithoutBuild(
                domain, status: .error, reason: "runtime error", message: "\(error)", inputs: [:])
        }
    }

    /// Frees the build slot of a domain that finished. A reader of it that is now ready to build (every input
    /// of it in this run finished) and leads a slower chain than any domain waiting takes the slot at once:
    /// signalled, the slot would go to a waiting domain before the reader, still reading its inputs' versions,
    /// asks for one.
    private func passSlot(from id: DomainID) async {
        // Asked first: no suspension may come between choosing the reader and recording the handoff, or a
        // second choice of the same reader would lose a slot.
        let waiting = await semaphore.highestWaitingPriority() ?? Int.min
        let registry = mesh.registry
        let handed = slots.handOff(
            from: id, waiting: waiting, inRun: { tasks[$0] != nil }, inputs: { registry[$0]!.upstreamDomains })
        if !handed { await semaphore.signal() }
    }

    /// A domain's task ended: a slot handed to it and not used (it was up to date, skipped or failed) moves on.
    private func taskFinished(_ id: DomainID) async {
        slots.finished.insert(id)
        if slots.isRootThatNeverWaited(id) { await semaphore.notComing() }
        if slots.takeHandoff(id) { await passSlot(from: id) }
    }

    /// The sync check: never build on inputs that disagree on a shared upstream. With `resolveSync`, the
    /// lagging inputs are brought up to date first. Returns the domain's outcome when it cannot be built.
    private func checkSync(of domain: Domain, inputs: inout [DomainID: VersionRecord]) async throws -> DomainOutcome? {
        let id = domain.id
        var conflicts = SyncCheck.conflicts(among: inputs)
        guard !conflicts.isEmpty else { return nil }
        let text = conflicts.map(\.description).joined(separator: "; ")
        await emit(.syncViolation, domain: id, payload: ["conflicts": text])
        logger.warning("sync: \(id): \(text)")
        if request.resolveSync {
            // Bringing an input up to date needs a build slot: one handed to this domain is freed first,
            // and a root stops counting as one the first slots wait for.
            if slots.stopsCountingAsRoot(id) { await semaphore.notComing() }
            if slots.takeHandoff(id) { await semaphore.signal() }
            for lagging in Set(conflicts.flatMap(\.lagging)).sorted() {
                _ = await ensureFresh(lagging, for: id)
            }
            inputs = try currentInputs(of: domain)
            conflicts = SyncCheck.conflicts(among: inputs)
            if conflicts.isEmpty {
                await emit(.syncResolved, domain: id, payload: ["resolved": text])
                return nil
            }
        }
        let message =
            "cannot build \(id) on inputs that disagree: \(conflicts.map(\.description).joined(separator: "; "))"
            + (request.resolveSync ? "; bringing the lagging input up to date did not succeed" : "")
        return await finishWithoutBuild(
            domain, status: .fail, reason: "sync violation", message: message, inputs: inputs)
    }

    private func currentInputs(of domain: Domain) throws -> [DomainID: VersionRecord] {
        var result: [DomainID: VersionRecord] = [:]
        for input in domain.upstreamDomains { result[input] = try mesh.store.currentVersion(of: input) }
        return result
    }

    /// Why a domain must be rebuilt; empty when its current version is still right.
    private func dirtyReasons(
        _ domain: Domain, current: VersionRecord?, inputs: [DomainID: VersionRecord], parameters: [String: String]
    ) -> [String] {
        guard let current else { return ["first build"] }
        var reasons: [String] = []
        if request.force.contains(domain.id) { reasons.append("requested") }
        if current.codeVersion != domain.codeVersion {
            reasons.append("code changed (\(current.codeVersion) → \(domain.codeVersion))")
        }
        if current.parameters != parameters { reasons.append("parameters changed") }
        for source in domain.sources.sorted() {
            if let state = request.sourceStates[source], state != current.sourceStates[source] {
                reasons.append("source \(source) changed")
            }
        }
        for (input, version) in inputs.sorted(by: { $0.key < $1.key })
        where current.inputVersions[input.rawValue] != version.version {
            reasons.append(
                "input \(input) v\(current.inputVersions[input.rawValue].map(String.init) ?? "-") → v\(version.version)"
            )
        }
        return reasons
    }

    private func skip(_ domain: Domain, because reason: String) async -> DomainOutcome {
        await finishWithoutBuild(domain, status: .skipped, reason: reason, message: nil, inputs: [:])
    }

    private func finishWithoutBuild(
        _ domain: Domain, status: RunStatus, reason: String, message: String?, inputs: [DomainID: VersionRecord]
    ) async -> DomainOutcome {
        let now = mesh.configuration.now()
        var status = status
        var message = message
        let file = mesh.store.path
        // A failure to read or record here makes the domain's outcome an error that says so.
        func failed(_ error: MeshError) {
            status = .error
            message = (message.map { "\($0); " } ?? "") + error.message
        }
        var current: VersionRecord?
        do { current = try mesh.store.currentVersion(of: domain.id) } catch {
            failed(MeshError.history("read the serving version of \(domain.id)", error, file: file))
        }
        let inputVersions = Dictionary(uniqueKeysWithValues: inputs.map { ($0.key.rawValue, $0.value.version) })
        do {
            try mesh.store.save(
                DomainRunRecord(
                    runID: runID, domain: domain.id, status: status, reason: reason, startedAt: now, finishedAt: now,
                    durationMS: 0,
                    version: current?.version, inputVersions: inputVersions, parameters: [:],
                    codeVersion: domain.codeVersion,
                    rowsIn: 0, rowsOut: 0, message: message))
        } catch {
            failed(MeshError.history("record the outcome of \(domain.id) (\(status.rawValue))", error, file: file))
        }
        await emit(
            status == .skipped ? .domainSkipped : .domainFinished, domain: domain.id,
            payload: ["status": status.rawValue, "reason": reason, "message": message ?? ""])
        logger.log(
            level: status == .skipped ? .notice : .error, "\(domain.id): \(status.rawValue): \(message ?? reason)")
        return DomainOutcome(
            domain: domain.id, status: status, reason: reason, version: current?.version, message: message, tests: [],
            inputVersions: inputVersions)
    }

    private func emit(_ kind: EventKind, domain: DomainID? = nil, payload: [String: String] = [:]) async {
        await mesh.events.publish(
            MeshEvent(kind: kind, runID: runID, domain: domain, at: mesh.configuration.now(), payload: payload))
    }

    static func suggestion(for name: String, among names: [String]) -> String {
        let close = names.filter { $0.contains(name) || name.contains($0) || Levenshtein.distance($0, name) <= 3 }
        return close.isEmpty
            ? "; the domains are: \(names.joined(separator: ", "))" : "; did you mean \(close.joined(separator: ", "))?"
    }
}

extension ISO8601DateFormatter {
    /// `20261125T063012` style stamps for run ids.
    static var runStamp: ISO8601DateFormatter {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withYear, .withMonth, .withDay, .withTime]
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter
    }
}

extension JSONEncoder {
    static var sorted: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }
}
