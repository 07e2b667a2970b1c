import Foundation
import GRDB

/// Whether a domain's current version was built from the current versions of its inputs.
public struct SyncVerdict: Codable, Sendable, Hashable {
    public enum State: String, Codable, Sendable { case inSync = "in_sync", stale, neverBuilt = "never_built" }
    public var state: State
    /// What lags, in words: `built from orders-master@v3, which is now at v4`.
    public var details: [String]
}

/// Test outcomes of one build, counted.
public struct TestTally: Codable, Sendable, Hashable {
    public var passed = 0
    public var warned = 0
    public var failed = 0
    public init() {}
}

/// One line of `status`: a domain's current version, last run, tests, inputs and sync verdict.
public struct DomainStatus: Codable, Sendable {
    public var domain: DomainID
    public var layer: String
    public var owner: Owner
    public var description: String
    public var version: Int?
    public var fingerprint: String?
    public var builtAt: Date?
    /// The status of the last run that built or tried to build the domain.
    public var lastStatus: RunStatus?
    public var lastRun: RunID?
    public var lastMessage: String?
    public var tests: TestTally
    public var inputVersions: [String: Int]
    public var rowCounts: [String: Int]
    public var sync: SyncVerdict
    public var freshness: FreshnessVerdict
    /// Problems consumers reported that the owner has not closed.
    public var openProblems: Int
}

extension Mesh {
    /// The status of every registered domain, read from one consistent set of versions.
    public func status() throws -> [DomainStatus] {
        let current = try store.currentVersions()
        let freshness = freshness(current: current)
        let problems = try store.openProblemCounts()
        return try registry.ids.map { id in
            let domain = registry[id]!
            let version = current[id]
            let lastRun = try store.domainRuns(of: id, limit: 3).first { $0.status != .upToDate }
            var tally = TestTally()
            if let run = version?.runID {
                for result in try store.testResults(of: id, run: run) {
                    switch result.status {
                    case .pass: tally.passed += 1
                    case .warn: tally.warned += 1
                    case .fail, .error: tally.failed += 1
                    }
                }
            }
            return DomainStatus(
                domain: id, layer: domain.layer, owner: domain.owner, description: domain.description,
                version: version?.version,
                fingerprint: version?.fingerprint, builtAt: version?.publishedAt, lastStatus: lastRun?.status,
                lastRun: lastRun?.runID,
                lastMessage: lastRun?.message, tests: tally, inputVersions: version?.inputVersions ?? [:],
                rowCounts: version?.rowCounts ?? [:], sync: syncVerdict(of: domain, current: current),
                freshness: freshness[id]!, openProblems: problems[id] ?? 0)
        }
    }

    /// In sync when the current version was built from every input's current version.
    public func syncVerdict(of domain: Domain, current: [DomainID: VersionRecord]) -> SyncVerdict {
        guard let version = current[domain.id] else { return SyncVerdict(state: .neverBuilt, details: []) }
        var details: [String] = []
        for input in domain.upstreamDomains {
            let now = current[input]?.version
            let used = version.inputVersions[input.rawValue]
            if now != used {
                details.append(
                    "built from \(input)@v\(used.map(String.init) ?? "-"), which is now at v\(now.map(String.init) ?? "-")"
                )
            }
        }
        return SyncVerdict(state: details.isEmpty ? .inSync : .stale, details: details)
    }

    /// One node of a lineage graph: a domain version and what it was built from or feeds.
    public struct LineageNode: Codable, Sendable {
        public var domain: DomainID
        public var version: Int?
        public var tables: [String]
        public var upstream: [LineageNode]
    }

    /// Where a domain's current version came from, down to the external sources.
    public func lineage(of id: DomainID) throws -> LineageNode {
        guard registry[id] != nil else {
            throw MeshError(
                .unknownDomain,
                "unknown domain '\(id)'\(MeshRun.suggestion(for: id.rawValue, among: registry.ids.map(\.rawValue)))")
        }
        func node(_ id: DomainID, version: Int?) throws -> LineageNode {
            let domain = registry[id]
            let record = try version.flatMap { try store.version(id, $0) }
            let upstream = try (domain?.upstreamDomains ?? []).map { input in
                try node(input, version: record?.inputVersions[input.rawValue])
            }
            let sources = (domain?.sources ?? []).map {
                LineageNode(
                    domain: DomainID("source:\($0)"), version: nil,
                    tables: [record?.sourceStates[$0] ?? ""].filter { !$0.isEmpty }, upstream: [])
            }
            return LineageNode(
                domain: id, version: version, tables: domain?.outputs.map(\.table) ?? [], upstream: upstream + sources)
        }
        return try node(id, version: try store.currentVersion(of: id)?.version)
    }

    /// The domains that read this one, with the version of it their current versions were built from.
    public func consumers(of id: DomainID) throws -> [(domain: DomainID, version: Int?, builtFrom: Int?)] {
        let current = try store.currentVersions()
        return (dependents[id] ?? []).map { consumer in
            (consumer, current[consumer]?.version, current[consumer]?.inputVersions[id.rawValue])
        }
    }

    /// A read-only connection with the current version of each named domain attached under its schema name.
    ///
    /// The versions are read in one transaction, so a query sees one consistent set even while a run
    /// publishes. SQLite attaches at most 10 databases to one connection; name the domains a query needs.
    public func snapshot(attaching domains: [DomainID]) throws -> (DatabaseQueue, [DomainID: VersionRecord]) {
        let current = try store.currentVersions().filter { domains.contains($0.key) }
        let queue = try attach(domains, files: current.mapValues { ($0.version, $0.path) })
        return (queue, current)
    }

    private func attach(_ domains: [DomainID], files: [DomainID: (version: Int, path: String)]) throws -> DatabaseQueue
    {
        guard domains.count <= 10 else {
            throw MeshError(
                .query, "a query can read at most 10 domains at once (SQLite's attach limit); it names \(domains.count)"
            )
        }
        var configuration = Configuration()
        configuration.readonly = false  // the in-memory main database; every attached version is read-only
        let queue = try DatabaseQueue(configuration: configuration)
        try queue.writeWithoutTransaction { db in
            for id in domains {
                guard let file = files[id] else {
                    throw MeshError(.notFound, "domain \(id) has no published version yet; run the mesh first")
                }
                try db.execute(
                    sql: "ATTACH DATABASE ? AS \(quoteQualified(id.schemaName))",
                    arguments: [DomainBuilder.readOnlyURI(home.appendingPathComponent(file.path))])
            }
            try db.execute(sql: "PRAGMA query_only = 1")
        }
        return queue
    }
}
