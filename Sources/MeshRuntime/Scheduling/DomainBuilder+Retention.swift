import Foundation

extension DomainBuilder {
    /// Keeps the newest `keepVersions` files of the domain (and every pinned one); older records stay, marked
    /// not retained, for lineage.
    ///
    /// Each record is marked before its file goes: a record that says retained always has its file. A failure
    /// stops retention with an error naming what could not be done; the run fails with it.
    func applyRetention() throws {
        let keep = mesh.configuration.keepVersions
        guard keep > 0 else { return }
        let (versions, pinned) = try recordingHistory("read the retained versions of \(domain.id)") {
            (try store.retainedVersions(of: domain.id), try store.pinnedVersions(of: domain.id))
        }
        let fm = FileManager.default
        for old in versions.dropFirst(keep) where !pinned.contains(old.version) {
            try recordingHistory("record that v\(old.version) of \(domain.id) is no longer retained") {
                try store.markNotRetained(domain.id, version: old.version)
            }
            let file = mesh.path(of: old)
            do {
                if fm.fileExists(atPath: file.path) { try fm.removeItem(at: file) }
            } catch {
                throw MeshError(
                    .storage,
                    "could not remove the old version file \(file.path): \(MeshError.describe(error, file: file.path))")
            }
        }
    }
}
