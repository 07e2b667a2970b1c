import Foundation
import MeshRuntime

/// Starts runs asked for over HTTP, one at a time, and answers for them until the run history does.
///
/// A POST returns at once with the run's id and URL; the run itself waits for the mesh's writer lock (a
/// run from the command line may hold it) and then goes into the run history like any other run.
actor RunLauncher {
    struct Pending: Codable, Sendable {
        var runID: RunID
        var domain: DomainID
        var state: String
        var requestedAt: Date
        var requestedBy: String
        var parameters: [String: String]
        var message: String?
        enum CodingKeys: String, CodingKey {
            case runID = "run_id", domain, state, requestedAt = "requested_at", requestedBy = "requested_by"
            case parameters, message
        }
    }

    let mesh: Mesh
    let prepare: @Sendable (RunRequest) async throws -> RunRequest
    let reopen: (@Sendable () throws -> Mesh)?
    private var pending: [RunID: Pending] = [:]
    private var chain: Task<Void, Never>?

    init(
        mesh: Mesh, reopen: (@Sendable () throws -> Mesh)?,
        prepare: @escaping @Sendable (RunRequest) async throws -> RunRequest
    ) {
        self.mesh = mesh
        self.reopen = reopen
        self.prepare = prepare
    }

    /// Queues the run and returns what the caller can poll.
    func launch(_ request: RunRequest, domain: DomainID, by token: String) -> Pending {
        let runID = request.runID ?? RunID.make(at: Date())
        var request = request
        request.runID = runID
        let entry = Pending(
            runID: runID, domain: domain, state: "queued", requestedAt: Date(), requestedBy: token,
            parameters: request.parameters[domain] ?? [:])
        pending[runID] = entry
        let previous = chain
        chain = Task {
            await previous?.value
            await self.execute(request)
        }
        return entry
    }

    private func execute(_ request: RunRequest) async {
        guard let runID = request.runID else { return }
        pending[runID]?.state = "running"
        do {
            let mesh = try reopen?() ?? self.mesh
            let prepare = self.prepare
            let summary = try await mesh.run(request) { request in request = try await prepare(request) }
            pending[runID]?.state = summary.status.rawValue
        } catch {
            // The run never reached the history (bad request, the lock): keep the reason for whoever polls.
            pending[runID]?.state = "error"
            pending[runID]?.message = "\(error)"
        }
    }

    /// What is known of a run the history may not have yet.
    func status(of runID: RunID) -> Pending? { pending[runID] }

    /// Waits for every queued run (tests, shutdown).
    func drain() async { await chain?.value }
}
