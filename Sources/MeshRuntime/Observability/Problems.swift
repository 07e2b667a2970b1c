import Foundation
import GRDB

/// A problem a consumer reported against a domain; open until the domain's owner closes it.
public struct ProblemRecord: Codable, Sendable, Hashable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "problem"
    public var id: Int64?
    public var domain: DomainID
    public var title: String
    public var detail: String
    public var reportedBy: String
    public var reportedAt: Date
    public var status: String
    public var closedBy: String?
    public var closedAt: Date?
    public var resolution: String?
    /// The run that fixed it, when the owner names one.
    public var fixedByRun: RunID?

    enum CodingKeys: String, CodingKey {
        case id, domain, title, detail, reportedBy = "reported_by", reportedAt = "reported_at", status
        case closedBy = "closed_by", closedAt = "closed_at", resolution, fixedByRun = "fixed_by_run"
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

extension Mesh {
    /// Records a problem against a domain and publishes `problem.reported`.
    public func reportProblem(domain: DomainID, title: String, detail: String = "", by reporter: String) async throws
        -> ProblemRecord
    {
        guard registry[domain] != nil else {
            throw MeshError(
                .unknownDomain,
                "unknown domain '\(domain)'\(MeshRun.suggestion(for: domain.rawValue, among: registry.ids.map(\.rawValue)))"
            )
        }
        let title = title.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !title.isEmpty, title.count <= 200, detail.count <= 10_000 else {
            throw MeshError(.invalid, "a problem needs a title (at most 200 characters) and at most 10,000 of detail")
        }
        var problem = ProblemRecord(
            id: nil, domain: domain, title: title, detail: detail, reportedBy: reporter,
            reportedAt: configuration.now(),
            status: "open", closedBy: nil, closedAt: nil, resolution: nil, fixedByRun: nil)
        problem = try await store.pool.write { [problem] db in
            var copy = problem
            try copy.insert(db)
            return copy
        }
        await events.publish(
            MeshEvent(
                kind: .problemReported, domain: domain, at: configuration.now(),
                payload: ["problem": "\(problem.id ?? 0)", "title": title, "by": reporter]))
        return problem
    }

    /// Closes a problem, optionally naming the run that fixed it (which must exist).
    public func closeProblem(_ id: Int64, by owner: String, resolution: String = "", fixedBy run: RunID? = nil)
        async throws -> ProblemRecord
    {
        guard var problem = try store.problem(id) else { throw MeshError(.notFound, "no problem #\(id)") }
        guard problem.status == "open" else {
            throw MeshError(.invalid, "problem #\(id) was closed already by \(problem.closedBy ?? "someone")")
        }
        if let run, try store.run(run) == nil {
            throw MeshError(.notFound, "no run \(run) in the history: name the run that fixed the problem")
        }
        problem.status = "closed"
        problem.closedBy = owner
        problem.closedAt = configuration.now()
        problem.resolution = resolution
        problem.fixedByRun = run
        try await store.pool.write { [problem] db in try problem.update(db) }
        await events.publish(
            MeshEvent(
                kind: .problemClosed, runID: run, domain: problem.domain, at: configuration.now(),
                payload: ["problem": "\(id)", "by": owner, "resolution": resolution]))
        return problem
    }
}

extension RuntimeStore {
    public func problems(of domain: DomainID? = nil, includeClosed: Bool = true) throws -> [ProblemRecord] {
        try pool.read { db in
            var request = ProblemRecord.order(Column("id").desc)
            if let domain { request = request.filter(Column("domain") == domain) }
            if !includeClosed { request = request.filter(Column("status") == "open") }
            return try request.fetchAll(db)
        }
    }

    public func problem(_ id: Int64) throws -> ProblemRecord? {
        try pool.read { db in try ProblemRecord.fetchOne(db, key: id) }
    }

    /// Open problems per domain.
    public func openProblemCounts() throws -> [DomainID: Int] {
        try pool.read { db in
            var counts: [DomainID: Int] = [:]
            for row in try Row.fetchAll(
                db, sql: "SELECT domain, COUNT(*) FROM problem WHERE status = 'open' GROUP BY 1")
            {
                counts[DomainID(row[0] as String)] = row[1]
            }
            return counts
        }
    }
}
