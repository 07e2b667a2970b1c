import Foundation
import GRDB
import Logging
import MeshRuntime

/// The server's mesh, opened again when the run history shows a kitchen promotion or an engine change, so
/// that a running server serves the new recipes, SQL, code versions and engine list without a restart.
///
/// Cheap per request: `refresh` reads the newest event id (the event table's largest rowid); only when it
/// moved does it look at the events since the last look, and only a promotion (`domain.published` from a
/// kitchen) or an `engine.changed` event opens the mesh again (`MeshServerConfiguration.reopen`).
final class MeshHolder: @unchecked Sendable {
    // @unchecked: `mesh` and `seen` are read and written with `lock` held.
    private let lock = NSLock()
    private var mesh: Mesh
    private var seen: Int64
    private let reopen: (@Sendable () throws -> Mesh)?
    private let logger: Logger

    init(_ mesh: Mesh, reopen: (@Sendable () throws -> Mesh)?, logger: Logger) throws {
        self.mesh = mesh
        self.reopen = reopen
        self.logger = logger
        seen = try mesh.store.latestEventID()
    }

    var current: Mesh { lock.withLock { mesh } }

    /// Opens the mesh again when a promotion or an engine change was recorded since the last call; returns
    /// the mesh to answer from and the newest event id (the stamp of cached answers).
    func refresh() throws -> (mesh: Mesh, latestEvent: Int64) {
        // Read outside the lock: requests do not queue behind each other's read, only behind a reopening.
        let latest = try current.store.latestEventID()
        lock.lock()
        defer { lock.unlock() }
        guard latest > seen else { return (mesh, max(latest, seen)) }
        let since = seen
        seen = latest
        guard let reopen else { return (mesh, latest) }
        let changes = try mesh.store.events(after: since, through: latest, kinds: [.domainPublished, .engineChanged])
        let reason = changes.first {
            $0.kind == .engineChanged || $0.payload["from"]?.hasPrefix("kitchen:") == true
        }
        guard let reason else { return (mesh, latest) }
        do {
            mesh = try reopen()
            logger.info(
                "mesh opened again after \(reason.kind.rawValue) (event \(reason.id ?? 0))",
                metadata: ["mesh.domain": "\(reason.domain?.rawValue ?? "-")"])
        } catch {
            // The old mesh keeps serving; the next promotion or engine change tries again.
            logger.error("could not open the mesh again after \(reason.kind.rawValue): \(error)")
        }
        return (mesh, latest)
    }
}
