import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The writer lock of a mesh home: one run at a time writes, readers never take it.
///
/// An advisory `flock` on `run.lock`: the kernel releases it when the process dies, so a killed run
/// never leaves the mesh locked. A run takes it before it lands anything and keeps it until its record is
/// written, so landing, the ledger and the run history are one critical section.
package final class MeshLock: Sendable {
    private let descriptor: Int32
    let path: String

    private init(descriptor: Int32, path: String) {
        self.descriptor = descriptor
        self.path = path
    }

    /// The lock file of a home.
    static func file(in home: URL) -> String { home.appendingPathComponent("run.lock").path }

    /// How long a run that was asked not to wait still waits: a probe by `status` (which holds the lock for a
    /// few microseconds to see whether a writer is alive) must never make a run fail.
    static let minimumWait: TimeInterval = 0.5

    /// Takes the lock, waiting up to `wait` seconds; throws `busy` naming the holder otherwise.
    static func acquire(home: URL, holder: String, wait: TimeInterval) throws -> MeshLock {
        let path = file(in: home)
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o644)
        guard fd >= 0 else {
            throw MeshError(
                .storage,
                "cannot open the mesh's lock file \(path): \(String(cString: strerror(errno))). "
                    + "Check that the home exists and is writable by this user.")
        }
        let deadline = Date().addingTimeInterval(max(wait, minimumWait))
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            if Date() >= deadline {
                var buffer = [UInt8](repeating: 0, count: 512)
                let n = pread(fd, &buffer, 511, 0)
                let current = n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self) : "another process"
                close(fd)
                throw MeshError(
                    .busy,
                    "another run is writing to the mesh at \(home.path) (\(current.trimmingCharacters(in: .whitespacesAndNewlines))). "
                        + "Wait for it to finish, or pass --wait SECONDS to queue behind it.")
            }
            usleep(20_000)
        }
        let text = "\(holder), pid \(getpid())\n"
        _ = ftruncate(fd, 0)
        _ = text.withCString { pwrite(fd, $0, strlen($0), 0) }
        return MeshLock(descriptor: fd, path: path)
    }

    /// Whether a process holds the writer lock of `home` now. A reader asks before it calls a `running` record
    /// interrupted: only a live writer's records are really running.
    static func isHeld(home: URL) -> Bool {
        let fd = open(file(in: home), O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        // A shared lock conflicts only with a writer's exclusive one, and is dropped at once.
        guard flock(fd, LOCK_SH | LOCK_NB) == 0 else { return errno == EWOULDBLOCK }
        flock(fd, LOCK_UN)
        return false
    }

    deinit {
        _ = ftruncate(descriptor, 0)
        flock(descriptor, LOCK_UN)
        close(descriptor)
    }
}

/// A short exclusive section shared by every process that opens a home, for work that must not interleave
/// across processes but is not a run: creating or upgrading the runtime database's schema.
enum HomeSetupLock {
    static func withLock<T>(at path: String, _ body: () throws -> T) throws -> T {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o644)
        guard fd >= 0 else {
            throw MeshError(
                .storage,
                "cannot open \(path): \(String(cString: strerror(errno))). Check that the mesh home is writable by this user."
            )
        }
        defer { close(fd) }
        while flock(fd, LOCK_EX) != 0 && errno == EINTR {}
        defer { flock(fd, LOCK_UN) }
        return try body()
    }
}
