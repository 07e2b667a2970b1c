import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// A file read in chunks into one growable buffer: the window `[start, end)` holds bytes not yet consumed.
///
/// Memory stays flat with file size: the buffer starts at 256 KiB and only grows when one record is longer
/// than the whole buffer. A UTF-8 byte-order mark at the start of the file is skipped.
///
/// `@unchecked Sendable` is not claimed: the source is used by one reader on one thread, then closed.
final class ByteSource {
    private(set) var base: UnsafeMutablePointer<UInt8>
    private(set) var capacity: Int
    /// The first unconsumed byte.
    var start = 0
    /// One past the last byte read.
    private(set) var end = 0
    /// True once `read` returned 0.
    private(set) var atEOF = false
    private let descriptor: Int32
    /// The file's name for messages.
    let name: String

    init(url: URL, name: String, capacity: Int = 256 << 10) throws {
        self.name = name
        descriptor = open(url.path, O_RDONLY)
        guard descriptor >= 0 else {
            let reason = String(cString: strerror(errno))
            throw FeedFormatError(.unreadable, file: name, "\(name): the file cannot be read (\(reason)).")
        }
        self.capacity = capacity
        base = .allocate(capacity: capacity)
        try fill()
        if end - start >= 3 && base[0] == 0xEF && base[1] == 0xBB && base[2] == 0xBF { start = 3 }
    }

    deinit {
        base.deallocate()
        close(descriptor)
    }

    /// Keeps the unconsumed bytes, moving them to the front (growing the buffer when they fill it), and reads
    /// more. Returns false at end of file. Offsets into the old window shift by the returned `moved` amount.
    @discardableResult
    func fill() throws -> (more: Bool, moved: Int) {
        if atEOF { return (false, 0) }
        let moved = start
        if start > 0 {
            let pending = end - start
            if pending > 0 { memmove(base, base + start, pending) }
            end = pending
            start = 0
        }
        if end == capacity {
            let bigger = UnsafeMutablePointer<UInt8>.allocate(capacity: capacity * 2)
            bigger.update(from: base, count: end)
            base.deallocate()
            base = bigger
            capacity *= 2
        }
        while true {
            let count = read(descriptor, base + end, capacity - end)
            if count > 0 {
                end += count
                return (true, moved)
            }
            if count == 0 {
                atEOF = true
                return (false, moved)
            }
            if errno == EINTR { continue }
            let reason = String(cString: strerror(errno))
            throw FeedFormatError(.unreadable, file: name, "\(name): reading the file failed (\(reason)).")
        }
    }
}
