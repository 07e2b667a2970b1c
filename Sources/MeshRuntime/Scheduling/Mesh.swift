import Foundation
import GRDB
import Logging

/// How a mesh is kept and run.
public struct MeshConfiguration: Sendable {
    /// The mesh home: landed batches, published versions, the runtime database, kitchens.
    public var home: URL
    /// Published versions kept per domain; older files are removed (their records stay for lineage).
    public var keepVersions: Int
    /// Domains built at the same time.
    public var maxConcurrentDomains: Int
    public var variations: VariationSet
    /// The git commit of the code, recorded with every version when known.
    public var codeCommit: String?
    /// Seconds a run waits for another run on the same home before giving up.
    public var lockWait: TimeInterval
    /// The clock; tests fix it.
    public var now: @Sendable () -> Date
    public var logger: Logger
    /// Engines that serve the published versions of some domains besides the SQLite files (PostgreSQL, say).
    public var servingEngines: [any ServingEngine] = []
    /// The kitchen this mesh is, if it is one (`Kitchens.mesh`): only a kitchen builds a variation marked
    /// `kitchen`.
    public var kitchen: String? = nil
    /// The program running the mesh, as messages and OpenLineage events name it.
    public var product = ProductIdentity.generic
    /// Prints every statement of a build that takes this many milliseconds or more on standard error, to find
    /// where a build's time goes; nil prints none.
    public var slowStatementTrace: Double? = nil

    public init(
        home: URL, keepVersions: Int = 5,
        maxConcurrentDomains: Int = max(2, ProcessInfo.processInfo.activeProcessorCount),
        variations: VariationSet = VariationSet(), codeCommit: String? = nil, lockWait: TimeInterval = 0,
        now: @escaping @Sendable () -> Date = { Date() }, logger: Logger = Logger(label: "mesh")
    ) {
        self.home = home
        self.keepVersions = keepVersions
        self.maxConcurrentDomains = maxConcurrentDomains
        self.variations = variations
        self.codeCommit = codeCommit
        self.lockWait = lockWait
        self.now = now
        self.logger = logger
    }
}

/// A mesh: registered domains, a home, and the runtime that builds, tests, publishes and records them.
///
/// ```swift
/// let mesh = try Mesh(registry: registry, configuration: MeshConfiguration(home: home))
/// let summary = try await mesh.run(RunRequest(sourceStates: ["orders": "batch-2026-11-01"]))
/// print(summary.status, summary.built)
/// ```
public final class Mesh: Sendable {
    public let registry: DomainRegistry
    public let configuration: MeshConfiguration
    public let store: RuntimeStore
    public let events: EventBus
    let triggers: TriggerQueue

    public init(registry: DomainRegistry, configuration: MeshConfiguration) throws {
        self.registry = registry
        self.configuration = configuration
        try FileManager.default.createDirectory(at: configuration.home, withIntermediateDirectories: true)
        store = try RuntimeStore(home: configuration.home)
        events = EventBus(store: store)
        triggers = TriggerQueue()
    }

    public var home: URL { configuration.home }

    /// Registers process linkage by events: a matching event queues a run of the trigger's domain.
    public func addTrigger(_ trigger: Trigger) async {
        let queue = triggers
        await events.subscribe(
            Subscription("trigger:\(trigger.name)", filter: trigger.on) { event in
                await queue.enqueue(trigger, event: event)
            })
    }

    /// Runs the mesh: rebuilds exactly the affected domains in dependency order, then any runs that events
    /// triggered meanwhile.
    ///
    /// `prepare` runs first, under the writer lock, before anything is planned: what it lands and the source
    /// states it sets are seen by this run alone, and a second process waits (or stops with the lock message)
    /// from its first byte, never half-way through another's landing.
    public func run(
        _ request: RunRequest, prepare: @Sendable (inout RunRequest) async throws -> Void = { _ in }
    ) async throws -> RunSummary {
        let (variationName, variation) = try configuration.variations.variation(named: request.variation)
        if variation.kitchen && configuration.kitchen == nil {
            throw MeshError(
                .invalid,
                "the variation \(variationName) builds in a kitchen of its own, never over this mesh: run it in a kitchen (the command line's `run --variation \(variationName)` makes kitchen \(variationName) and builds there)"
            )
        }
        return try await exclusively(holder: "run") {
            try recover()
            var request = request
            try await prepare(&request)
            return try await runHoldingLock(request)
        }
    }

    /// Runs `body` holding the home's writer lock (waiting `lockWait` seconds for it): what a run does first,
    /// for work that must not interleave with another process's run, such as landing batches.
    public func exclusively<T>(holder: String, _ body: () async throws -> T) async throws -> T {
        let lock = try MeshLock.acquire(
            home: home, holder: "\(holder) started \(ISO8601DateFormatter().string(from: Date()))",
            wait: configuration.lockWait)
        defer { withExtendedLifetime(lock) {} }
        return try await body()
    }

    private func runHoldingLock(_ request: RunRequest) async throws -> RunSummary {
        var summary = try await MeshRun(mesh: self, request: request).execute()
        recordLineage(summary.runID)
        // Triggered runs go after the run that caused them, one at a time, each with its own run id.
        while let (trigger, event) = await triggers.next() {
            let triggered = RunRequest(
                variation: request.variation, only: [trigger.domain], sourceStates: request.sourceStates,
                parameters: [trigger.domain: trigger.parameters], force: [trigger.domain],
                trigger: "event:\(trigger.name)",
                triggerEventID: event.id)
            let triggeredSummary = try await MeshRun(mesh: self, request: triggered).execute()
            recordLineage(triggeredSummary.runID)
            summary.triggeredRuns.append(triggeredSummary)
        }
        // A run is when lateness shows first: announce the deadlines missed so far.
        do { _ = try await announceLateDomains() } catch {
            // The run's own record is complete; the announcement is made again by the next run or status check.
            configuration.logger.warning(
                "late domains not announced after \(summary.runID): \(MeshError.describe(error))")
        }
        for failure in await events.takeUnrecorded() { configuration.logger.warning("\(failure)") }
        return summary
    }

    /// Writes the run's OpenLineage events; a failure to write them is logged and never fails the run.
    func recordLineage(_ runID: RunID) {
        do { try OpenLineage.record(runID, mesh: self) } catch {
            configuration.logger.warning("OpenLineage events of \(runID) not written: \(error)")
        }
    }

    /// Cleans up after a process that died mid-run: marks its runs interrupted and removes half-built files
    /// and version files that were never recorded. The previous versions keep serving throughout.
    func recover() throws {
        let now = configuration.now()
        try store.pool.write { db in
            try db.execute(
                sql:
                    "UPDATE domain_run SET status = 'interrupted', finished_at = ?, message = 'the process stopped during the build; the previous version kept serving' WHERE status = 'running'",
                arguments: [now])
            try db.execute(
                sql:
                    "UPDATE mesh_run SET status = 'interrupted', finished_at = ?, message = 'the process stopped during the run' WHERE status = 'running'",
                arguments: [now])
        }
        let domainsDirectory = home.appendingPathComponent("domains")
        let fm = FileManager.default
        guard fm.fileExists(atPath: domainsDirectory.path) else { return }
        let domainNames = try fm.contentsOfDirectory(atPath: domainsDirectory.path)
        let recorded = try store.pool.read { db in try Set(String.fetchAll(db, sql: "SELECT path FROM domain_version"))
        }
        for name in domainNames {
            let directory = domainsDirectory.appendingPathComponent(name)
            // An entry that is not a folder holds no versions: nothing to clean there.
            for file in (try? fm.contentsOfDirectory(atPath: directory.path)) ?? [] {
                let relative = "domains/\(name)/\(file)"
                if file.hasPrefix(".build-")
                    || (file.hasPrefix("v") && file.hasSuffix(".sqlite") && !recorded.contains(relative))
                {
                    configuration.logger.info("recovery: removing \(relative)")
                    // A file left is never read (it has no record) and the next recovery tries again.
                    do { try fm.removeItem(at: directory.appendingPathComponent(file)) } catch {
                        configuration.logger.warning("recovery: could not remove \(relative): \(error)")
                    }
                }
            }
        }
    }

    /// The absolute path of a published version's file.
    public func path(of version: VersionRecord) -> URL { home.appendingPathComponent(version.path) }

    /// Validates the domain graph: every input domain is registered and there is no cycle.
    public func validateGraph() throws {
        for domain in registry.domains.values {
            for input in domain.upstreamDomains where registry[input] == nil {
                throw MeshError(.unknownDomain, "domain \(domain.id) reads \(input), which is not a registered domain")
            }
        }
        let edges = registry.domains.mapValues(\.upstreamDomains)
        if let cycle = GraphAlgorithms.findCycle(nodes: registry.ids, edges: edges) {
            throw MeshError(
                .cycle,
                "the domain graph has a cycle: \(cycle.map(\.rawValue).joined(separator: " → ")); a domain cannot read its own output"
            )
        }
    }

    /// For each domain, the number of domains on the longest chain that starts at it and follows its readers
    /// (1 for a domain nobody reads): the critical paths of a mesh without build history.
    public var chainLengths: [DomainID: Int] { criticalPaths(durations: [:]) }

    /// For each domain, the expected time of the longest chain that starts at it and follows its readers, each
    /// domain weighted by its typical build time in milliseconds (at least 1, so a mesh without history orders
    /// by chain length): the scheduler gives a free build slot to the domain that leads the slowest chain, so the
    /// inputs of a slow master are loaded before feeds only a quick mart reads.
    public func criticalPaths(durations: [DomainID: Int]) -> [DomainID: Int] {
        let dependents = self.dependents
        var lengths: [DomainID: Int] = [:]
        // Readers before what they read: walk the topological order backwards.
        let order = GraphAlgorithms.topologicalOrder(
            nodes: registry.ids, edges: registry.domains.mapValues(\.upstreamDomains))
        for id in order.reversed() {
            lengths[id] = max(1, durations[id] ?? 1) + ((dependents[id] ?? []).compactMap { lengths[$0] }.max() ?? 0)
        }
        return lengths
    }

    /// Who reads each domain.
    public var dependents: [DomainID: [DomainID]] {
        var result: [DomainID: [DomainID]] = [:]
        for domain in registry.domains.values {
            for input in domain.upstreamDomains { result[input, default: []].append(domain.id) }
        }
        return result.mapValues { $0.sorted() }
    }
}

/// Runs queued by events, waiting for the run that caused them to finish.
actor TriggerQueue {
    private var pending: [(Trigger, MeshEvent)] = []
    func enqueue(_ trigger: Trigger, event: MeshEvent) { pending.append((trigger, event)) }
    func next() -> (Trigger, MeshEvent)? { pending.isEmpty ? nil : pending.removeFirst() }
}

/// A counting semaphore for async tasks; a freed slot goes to the waiter with the highest priority, the
/// earliest among equals.
///
/// With `expecting`, no slot is given until that many tasks have asked for one or said they will not
/// (`notComing`): the first slots then go by priority too, not to whichever tasks asked first.
actor AsyncSemaphore {
    private struct Waiter {
        var priority: Int
        var continuation: CheckedContinuation<Void, Never>
    }
    private var available: Int
    private var waiters: [Waiter] = []
    private var expecting: Int
    init(_ count: Int, expecting: Int = 0) {
        available = count
        self.expecting = expecting
    }

    func wait(priority: Int = 0) async {
        if expecting > 0 {
            expecting -= 1
            await withCheckedContinuation { continuation in
                waiters.append(Waiter(priority: priority, continuation: continuation))
                if expecting == 0 { releaseAvailable() }
            }
            return
        }
        if available > 0 {
            available -= 1
            return
        }
        await withCheckedContinuation { waiters.append(Waiter(priority: priority, continuation: $0)) }
    }

    /// One of the expected tasks will not ask for a slot.
    func notComing() {
        guard expecting > 0 else { return }
        expecting -= 1
        if expecting == 0 { releaseAvailable() }
    }

    private func releaseAvailable() {
        while available > 0 && !waiters.isEmpty {
            available -= 1
            resumeMostUrgent()
        }
    }
    /// The priority of the most urgent waiter, nil when none waits.
    func highestWaitingPriority() -> Int? { waiters.map(\.priority).max() }

    func signal() {
        guard !waiters.isEmpty else {
            available += 1
            return
        }
        resumeMostUrgent()
    }

    /// Resumes the waiter with the highest priority, the earliest among equals.
    private func resumeMostUrgent() {
        var best = 0
        for index in waiters.indices where waiters[index].priority > waiters[best].priority { best = index }
        waiters.remove(at: best).continuation.resume()
    }
}
