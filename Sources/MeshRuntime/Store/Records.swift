import Foundation
import GRDB

/// The end state of a domain within a run, or of a step.
public enum RunStatus: String, Sendable, Codable, Hashable, DatabaseValueConvertible {
    case running
    /// Built and published; every test passed.
    case success
    /// Built and published; some `warn` tests failed.
    case warn
    /// A `fail` test failed: nothing published.
    case fail
    /// A step threw: nothing published.
    case error
    /// Not built: an upstream failed, or the run was restricted. The cause is recorded.
    case skipped
    /// Nothing to do: inputs, code and parameters unchanged since the current version.
    case upToDate = "up_to_date"
    /// The process died during the build; found and cleaned up by the next run.
    case interrupted

    /// True for the statuses after which a new version serves.
    public var published: Bool { self == .success || self == .warn }
    /// True for the statuses that count as a failure of the run.
    public var failed: Bool { self == .fail || self == .error || self == .interrupted }
}

/// One mesh run.
public struct MeshRunRecord: Codable, Sendable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "mesh_run"
    public var runID: RunID
    public var startedAt: Date
    public var finishedAt: Date?
    public var status: RunStatus
    public var variation: String
    /// What asked for the run: `cli`, `http`, `event`, `kitchen:NAME`.
    public var trigger: String
    /// The event that triggered this run, for process linkage by events.
    public var triggerEventID: Int64?
    public var request: String
    public var codeCommit: String?
    public var message: String?

    enum CodingKeys: String, CodingKey {
        case runID = "run_id", startedAt = "started_at", finishedAt = "finished_at", status, variation, trigger
        case triggerEventID = "trigger_event_id", request, codeCommit = "code_commit", message
    }
}

/// One domain within a mesh run.
public struct DomainRunRecord: Codable, Sendable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "domain_run"
    public var runID: RunID
    public var domain: DomainID
    public var status: RunStatus
    /// Why the domain was built (`new`, `code changed`, `source changed: x`, `input changed: y v3`) or why skipped.
    public var reason: String
    public var startedAt: Date
    public var finishedAt: Date?
    public var durationMS: Int?
    public var version: Int?
    public var inputVersions: [String: Int]
    public var parameters: [String: String]
    public var codeVersion: String
    public var rowsIn: Int
    public var rowsOut: Int
    public var message: String?

    enum CodingKeys: String, CodingKey {
        case runID = "run_id", domain, status, reason, startedAt = "started_at", finishedAt = "finished_at"
        case durationMS = "duration_ms", version, inputVersions = "input_versions", parameters
        case codeVersion = "code_version", rowsIn = "rows_in", rowsOut = "rows_out", message
    }
}

/// One step of a domain build.
public struct StepRunRecord: Codable, Sendable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "step_run"
    public var runID: RunID
    public var domain: DomainID
    public var step: StepID
    public var kind: String
    public var status: RunStatus
    public var startedAt: Date
    public var durationMS: Int
    public var rowsIn: Int
    public var rowsOut: Int
    public var message: String?

    enum CodingKeys: String, CodingKey {
        case runID = "run_id", domain, step, kind, status, startedAt = "started_at", durationMS = "duration_ms"
        case rowsIn = "rows_in", rowsOut = "rows_out", message
    }
}

/// One test result as stored.
public struct TestResultRecord: Codable, Sendable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "test_result"
    public var runID: RunID
    public var domain: DomainID
    public var step: String
    public var test: String
    public var severity: Severity
    public var status: TestStatus
    public var failures: Int
    public var sample: [[String: String]]
    public var message: String
    public var at: Date
    /// What a measured test measured (a trend test's metric), so that it can be followed over time.
    public var value: Double? = nil

    enum CodingKeys: String, CodingKey {
        case runID = "run_id", domain, step, test, severity, status, failures, sample, message, at, value
    }
}

/// A log line of a run.
public struct LogLine: Codable, Sendable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "log_line"
    public var runID: RunID
    public var domain: DomainID?
    public var step: StepID?
    public var level: String
    public var message: String
    public var at: Date

    enum CodingKeys: String, CodingKey { case runID = "run_id", domain, step, level, message, at }
}

/// An immutable published version of a domain.
public struct VersionRecord: Codable, Sendable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "domain_version"
    public var domain: DomainID
    public var version: Int
    /// SHA-256 over the output tables' schemas, row counts and contents.
    public var fingerprint: String
    /// The file, relative to the mesh home.
    public var path: String
    public var runID: RunID
    public var publishedAt: Date
    public var status: RunStatus
    public var codeVersion: String
    public var codeCommit: String?
    public var variation: String
    public var parameters: [String: String]
    /// The versions of the direct inputs.
    public var inputVersions: [String: Int]
    /// The version of every upstream domain, direct or not, this version was built from.
    public var upstreamVersions: [String: Int]
    /// The state of each external source read (for example a fingerprint of its landed batches).
    public var sourceStates: [String: String]
    public var rowCounts: [String: Int]
    /// Output table → ordered `column TYPE` list.
    public var schema: [String: [String]]
    /// False once the file is removed by retention (the record stays for lineage).
    public var retained: Bool
    /// Output table → its content digest (`Fingerprint.TableDigest.digest`), so that the next build on top of
    /// this version can update digests incrementally. Empty for versions recorded before digests were kept.
    public var tableDigests: [String: String] = [:]

    enum CodingKeys: String, CodingKey {
        case domain, version, fingerprint, path, runID = "run_id", publishedAt = "published_at", status
        case codeVersion = "code_version", codeCommit = "code_commit", variation, parameters
        case inputVersions = "input_versions", upstreamVersions = "upstream_versions", sourceStates = "source_states"
        case rowCounts = "row_counts", schema, retained, tableDigests = "table_digests"
    }

    /// The label used everywhere a version is shown: `orders-mart@v3`.
    public var label: String { "\(domain)@v\(version)" }
}

extension VersionRecord {
    /// Decoded by hand, not through `Decodable`: a mesh run reads hundreds of version records (every build
    /// reads its inputs' and its own), and `JSONDecoder` on each of their seven JSON columns was 5 % of the
    /// demo's CPU. The columns' texts repeat (a domain's schema is the same from version to version, and one
    /// version is read many times), so each distinct text is decoded once (`JSONColumnCache`). Written as
    /// `Encodable` writes them.
    public init(row: Row) throws {
        guard let domain = row["domain"] as String?, let status = RunStatus(rawValue: row["status"] ?? ""),
            let publishedAt = row["published_at"] as Date?
        else {
            throw MeshError(.storage, "a domain_version row without its domain, status or publication time")
        }
        self.domain = DomainID(domain)
        version = row["version"]
        fingerprint = row["fingerprint"]
        path = row["path"]
        runID = RunID(row["run_id"] as String)
        self.publishedAt = publishedAt
        self.status = status
        codeVersion = row["code_version"]
        codeCommit = row["code_commit"]
        variation = row["variation"]
        retained = row["retained"]
        let cache = JSONColumnCache.shared
        parameters = try cache.decode(row["parameters"])
        inputVersions = try cache.decode(row["input_versions"])
        upstreamVersions = try cache.decode(row["upstream_versions"])
        sourceStates = try cache.decode(row["source_states"])
        rowCounts = try cache.decode(row["row_counts"])
        schema = try cache.decode(row["schema"])
        tableDigests = try cache.decode(row["table_digests"] ?? "{}")
    }
}

/// JSON column texts already decoded, by type and text: decoding is a pure function of both.
final class JSONColumnCache: @unchecked Sendable {
    static let shared = JSONColumnCache()
    // Guarded by `lock`: stores are read from many threads.
    private let lock = NSLock()
    private var decoded: [ObjectIdentifier: [String: Any]] = [:]
    private var count = 0

    func decode<T: Decodable>(_ text: String) throws -> T {
        let type = ObjectIdentifier(T.self)
        if let known = lock.withLock({ decoded[type]?[text] }) as? T { return known }
        let value = try JSONDecoder().decode(T.self, from: Data(text.utf8))
        lock.withLock {
            // A bound, so that a long-lived server does not keep every version it ever read.
            if count >= 20_000 {
                decoded.removeAll(keepingCapacity: true)
                count = 0
            }
            decoded[type, default: [:]][text] = value
            count += 1
        }
        return value
    }
}

/// Which version of each domain is serving.
struct CurrentVersionRecord: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "current_version"
    var domain: DomainID
    var version: Int
}
