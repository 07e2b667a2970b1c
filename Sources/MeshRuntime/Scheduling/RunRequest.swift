import Foundation

/// What a mesh run is asked to do.
public struct RunRequest: Sendable, Codable {
    /// The variation whose parameters apply; nil for the mesh's default.
    public var variation: String?
    /// Restrict the run to these domains (and to the lagging inputs the sync check must bring up to date).
    public var only: Set<DomainID>?
    /// The state of each external source (for example a fingerprint of its landed batches). A domain whose
    /// source state differs from the one its current version recorded is rebuilt. Sources not named here
    /// count as unchanged.
    public var sourceStates: [String: String]
    /// Parameters for single domains (process linkage: "you start, here are the parameters").
    public var parameters: [DomainID: [String: String]]
    /// Rebuild these even when they are up to date.
    public var force: Set<DomainID>
    /// Rebuild from scratch: incremental steps ignore the previous version (`StepContext.fullRefresh`).
    public var fullRefresh: Bool
    /// When inputs disagree on a shared upstream, bring the lagging input up to date (true) or fail (false).
    public var resolveSync: Bool
    /// What asked for the run: `cli`, `http`, `event`, `kitchen:NAME`.
    public var trigger: String
    public var triggerEventID: Int64?
    /// The run's id, when the caller must know it before the run starts (an HTTP request that returns the
    /// run's URL at once); nil lets the runtime make one.
    public var runID: RunID?

    public init(
        variation: String? = nil, only: Set<DomainID>? = nil, sourceStates: [String: String] = [:],
        parameters: [DomainID: [String: String]] = [:], force: Set<DomainID> = [], fullRefresh: Bool = false,
        resolveSync: Bool = true, trigger: String = "cli", triggerEventID: Int64? = nil, runID: RunID? = nil
    ) {
        self.runID = runID
        self.fullRefresh = fullRefresh
        self.variation = variation
        self.only = only
        self.sourceStates = sourceStates
        self.parameters = parameters
        self.force = force
        self.resolveSync = resolveSync
        self.trigger = trigger
        self.triggerEventID = triggerEventID
    }
}

/// How one domain ended in a run.
public struct DomainOutcome: Sendable, Hashable {
    public var domain: DomainID
    public var status: RunStatus
    /// Why it was built, or why it was skipped.
    public var reason: String
    /// The version published by this run, or the one still serving.
    public var version: Int?
    public var message: String?
    public var tests: [TestResult]
    public var inputVersions: [String: Int]
}

/// The result of a mesh run.
public struct RunSummary: Sendable {
    public var runID: RunID
    public var status: RunStatus
    public var outcomes: [DomainID: DomainOutcome]
    /// Runs started by events during this one (process linkage), in order.
    public var triggeredRuns: [RunSummary]

    /// Domains that published a new version.
    public var built: [DomainID] { outcomes.values.filter { $0.status.published }.map(\.domain).sorted() }
    public var skipped: [DomainID] { outcomes.values.filter { $0.status == .skipped }.map(\.domain).sorted() }
    public var failed: [DomainID] { outcomes.values.filter { $0.status.failed }.map(\.domain).sorted() }
}
