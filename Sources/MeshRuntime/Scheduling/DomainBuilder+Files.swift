import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The file primitives of publication: a copy that skips the page cache, and an fsync-then-rename.
extension DomainBuilder {
    /// Copies a file in 4 MiB chunks, without syncing it.
    ///
    /// On Linux the copy is written with `O_DIRECT`, past the page cache: publication has to put every byte
    /// on disk anyway, and filling the page cache with a fresh copy of a large version can cost more than
    /// writing it out (measured in docs/benchmarks.md, "The copy a build starts from is written with
    /// `O_DIRECT`"). Where the file system refuses
    /// `O_DIRECT`, or for a tail that is not a whole number of blocks, the copy is written through the cache.
    static func copyFile(from source: String, to destination: String) throws {
        let input = open(source, O_RDONLY)
        guard input >= 0 else {
            throw MeshError(.storage, "cannot read \(source): \(String(cString: strerror(errno)))")
        }
        defer { close(input) }
        var direct = directFlag != 0
        var output = direct ? open(destination, O_WRONLY | O_CREAT | O_TRUNC | directFlag, 0o644) : -1
        if output < 0 {
            direct = false
            output = open(destination, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        }
        guard output >= 0 else {
            throw MeshError(.storage, "cannot create \(destination): \(String(cString: strerror(errno)))")
        }
        defer { close(output) }
        let chunk = 4 << 20
        let block = 4096
        var raw: UnsafeMutableRawPointer?
        guard posix_memalign(&raw, block, chunk) == 0, let buffer = raw else {
            throw MeshError(.storage, "cannot copy \(source): out of memory")
        }
        defer { free(buffer) }
        while true {
            // Fill the chunk, so that every direct write is a whole number of blocks.
            var count = 0
            while count < chunk {
                let got = try retryingInterrupts("cannot copy \(source)") { read(input, buffer + count, chunk - count) }
                if got == 0 { break }
                count += got
            }
            if count == 0 { break }
            if direct, count % block != 0 {
                _ = fcntl(output, F_SETFL, fcntl(output, F_GETFL) & ~directFlag)
                direct = false
            }
            var offset = 0
            while offset < count {
                offset += try retryingInterrupts("cannot copy to \(destination)") {
                    write(output, buffer + offset, count - offset)
                }
            }
            if count < chunk { break }
        }
    }

    /// A `read` or `write`, called again when a signal interrupted it; an error names what failed and why.
    private static func retryingInterrupts(_ what: String, _ call: () -> Int) throws -> Int {
        while true {
            let result = call()
            if result >= 0 { return result }
            if errno != EINTR { throw MeshError(.storage, "\(what): \(String(cString: strerror(errno)))") }
        }
    }

    /// Linux's `O_DIRECT`, which Swift's Glibc module does not export (0 elsewhere: no direct copy).
    static let directFlag: Int32 = {
        #if os(Linux) && arch(x86_64)
            return 0o40000
        #elseif os(Linux) && arch(arm64)
            return 0o200000
        #else
            return 0
        #endif
    }()

    /// fsyncs the finished file, then renames it into place (an atomic step on one file system).
    static func durablyMove(_ source: URL, to destination: URL) throws {
        let fd = open(source.path, O_RDONLY)
        if fd >= 0 {
            fsync(fd)
            close(fd)
        }
        if FileManager.default.fileExists(atPath: destination.path) {
            try FileManager.default.removeItem(at: destination)
        }
        guard rename(source.path, destination.path) == 0 else {
            throw MeshError(.storage, "cannot publish \(destination.path): \(String(cString: strerror(errno)))")
        }
        let directory = open(destination.deletingLastPathComponent().path, O_RDONLY)
        if directory >= 0 {
            fsync(directory)
            close(directory)
        }
    }
}
