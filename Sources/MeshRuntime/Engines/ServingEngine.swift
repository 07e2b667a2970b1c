import Foundation

/// A second engine that serves the published versions of chosen domains (a server database shared by many
/// analysts, say) beside the embedded SQLite files, which stay the build engine and the record.
///
/// The builder hands each finished build to every engine that serves its domain in two phases, so that a
/// failure anywhere leaves the previous version serving in both places:
/// 1. ``stage(_:)`` loads the build, invisible to readers, and checks that the engine holds exactly what the
///    build holds. A failure fails the domain's run; nothing is published anywhere.
/// 2. ``makeCurrent(_:)`` switches readers to it in one transaction, just before the runtime records the
///    version. A failure fails the run too, and the runtime does not record the version.
///
/// ```swift
/// var configuration = MeshConfiguration(home: home)
/// configuration.servingEngines = [myEngine]
/// ```
public protocol ServingEngine: Sendable {
    /// A short name for logs and messages: `postgresql`.
    var name: String { get }
    /// Whether this engine serves the domain's published versions.
    func serves(_ domain: Domain) -> Bool
    /// Loads a finished build, not yet visible to readers, and checks it against the build's digests.
    func stage(_ build: StagedBuild) async throws
    /// Makes a staged build the version readers see, in one transaction.
    func makeCurrent(_ build: StagedBuild) async throws
    /// Removes a staged build that will not be published (best effort).
    func discard(_ build: StagedBuild) async
    /// How a person connects to a served domain there (no secrets), for the domain's "where".
    func location(of domain: Domain) -> String?
}

extension ServingEngine {
    public func location(of domain: Domain) -> String? { nil }
}

/// A finished build on its way to publication, as a serving engine sees it.
public struct StagedBuild: Sendable {
    public var domain: Domain
    /// The version number it will be published as.
    public var version: Int
    /// The finished, closed SQLite file of the build (read it, never change it).
    public var file: URL
    /// Each output table's digest, as the runtime computed it on the file.
    public var digests: [String: Fingerprint.TableDigest]
    /// The version record the runtime is about to publish; set before ``ServingEngine/makeCurrent(_:)``.
    public var record: VersionRecord?
    /// Versions an engine keeps per domain, besides the current one.
    public var keepVersions: Int
    public var runID: RunID
    /// Records a line in the run history under the domain.
    public var log: @Sendable (String) -> Void

    public init(
        domain: Domain, version: Int, file: URL, digests: [String: Fingerprint.TableDigest],
        record: VersionRecord? = nil, keepVersions: Int, runID: RunID, log: @escaping @Sendable (String) -> Void
    ) {
        self.domain = domain
        self.version = version
        self.file = file
        self.digests = digests
        self.record = record
        self.keepVersions = keepVersions
        self.runID = runID
        self.log = log
    }
}

extension Mesh {
    /// The builds of the current versions of the domains an engine serves, for loading an engine that
    /// joined an existing mesh (or catching one up after it was unreachable).
    public func currentBuilds(for engine: any ServingEngine) throws -> [StagedBuild] {
        let current = try store.currentVersions()
        return registry.ids.compactMap { id -> StagedBuild? in
            guard let domain = registry[id], engine.serves(domain), let record = current[id], record.retained
            else { return nil }
            var digests: [String: Fingerprint.TableDigest] = [:]
            for (table, columns) in record.schema {
                guard let digest = record.tableDigests[table], let rows = record.rowCounts[table] else { continue }
                digests[table] = Fingerprint.TableDigest(columns: columns, rowCount: rows, digest: digest)
            }
            return StagedBuild(
                domain: domain, version: record.version, file: path(of: record), digests: digests, record: record,
                keepVersions: configuration.keepVersions, runID: record.runID,
                log: { [configuration] in configuration.logger.info("\($0)") })
        }
    }
}
