import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The writer lock of a mesh home: one run at a time writes, readers never take it.
///
/// An advisory `flock` on `run.lock`: the kernel releases it when the process dies, so a killed run
/// never leaves the mesh locked.
final class MeshLock: Sendable {
    private let descriptor: Int32
    let path: String

    private init(descriptor: Int32, path: String) {
        self.descriptor = descriptor
        self.path = path
    }

    /// Takes the lock, waiting up to `wait` seconds; throws `busy` naming the holder otherwise.
    static func acquire(home: URL, holder: String, wait: TimeInterval) throws -> MeshLock {
        let path = home.appendingPathComponent("run.lock").path
        let fd = open(path, O_RDWR | O_CREAT, 0o644)
        guard fd >= 0 else { throw MeshError(.storage, "cannot open \(path): \(String(cString: strerror(errno)))") }
        let deadline = Date().addingTimeInterval(wait)
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
            usleep(50_000)
        }
        let text = "\(holder), pid \(getpid())\n"
        _ = ftruncate(fd, 0)
        _ = text.withCString { pwrite(fd, $0, strlen($0), 0) }
        return MeshLock(descriptor: fd, path: path)
    }

    deinit {
        _ = ftruncate(descriptor, 0)
        flock(descriptor, LOCK_UN)
        close(descriptor)
    }
}
