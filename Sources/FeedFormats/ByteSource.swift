import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Where a ``ByteSource`` takes its bytes from: a file, a gzip stream, one member of a zip archive.
protocol ByteInput: AnyObject {
    /// Reads up to `count` bytes into `buffer`; 0 at the end of the input.
    func read(into buffer: UnsafeMutablePointer<UInt8>, count: Int) throws -> Int
}

/// read(2), under a name that the `read` methods below do not shadow.
private func systemRead(_ descriptor: Int32, _ buffer: UnsafeMutablePointer<UInt8>, _ count: Int) -> Int {
    read(descriptor, buffer, count)
}

/// A file (or a range of one) read with read(2)/pread(2). Never follows a symbolic link at the last component.
final class FileInput: ByteInput {
    let descriptor: Int32
    /// The file as messages name it.
    let name: String
    private let ownsDescriptor: Bool
    /// The next offset to read, and the end of the range, when reading a range (a stored zip member).
    private var offset: Int64
    private let limit: Int64?

    init(path: String, name: String) throws {
        self.name = name
        descriptor = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard descriptor >= 0 else {
            let reason = errno == ELOOP ? "it is a symbolic link" : String(cString: strerror(errno))
            throw FeedFormatError(.unreadable, file: name, "\(name): the file cannot be read (\(reason)).")
        }
        ownsDescriptor = true
        offset = -1
        limit = nil
    }

    /// The bytes `[offset, offset + length)` of an open file, read without moving its file position.
    init(sharing file: FileInput, offset: Int64, length: Int64) {
        name = file.name
        descriptor = file.descriptor
        ownsDescriptor = false
        self.offset = offset
        limit = offset + length
    }

    deinit { if ownsDescriptor { close(descriptor) } }

    func read(into buffer: UnsafeMutablePointer<UInt8>, count: Int) throws -> Int {
        var count = count
        if let limit { count = Int(min(Int64(count), limit - offset)) }
        guard count > 0 else { return 0 }
        while true {
            let read =
                offset >= 0 ? pread(descriptor, buffer, count, off_t(offset)) : systemRead(descriptor, buffer, count)
            if read >= 0 {
                if offset >= 0 { offset += Int64(read) }
                return read
            }
            if errno == EINTR { continue }
            let reason = String(cString: strerror(errno))
            throw FeedFormatError(.unreadable, file: name, "\(name): reading the file failed (\(reason)).")
        }
    }

    /// Reads exactly `count` bytes at `at` (for archive directories); fewer only at the end of the file.
    func bytes(at: Int64, count: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var got = 0
        while got < count {
            let read = out.withUnsafeMutableBufferPointer { buffer in
                pread(descriptor, buffer.baseAddress! + got, count - got, off_t(at + Int64(got)))
            }
            if read < 0 {
                if errno == EINTR { continue }
                let reason = String(cString: strerror(errno))
                throw FeedFormatError(.unreadable, file: name, "\(name): reading the file failed (\(reason)).")
            }
            if read == 0 { break }
            got += read
        }
        return Array(out.prefix(got))
    }

    /// The file's size in bytes.
    func size() throws -> Int64 {
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            let reason = String(cString: strerror(errno))
            throw FeedFormatError(.unreadable, file: name, "\(name): the file cannot be read (\(reason)).")
        }
        return Int64(status.st_size)
    }
}

/// A file read in chunks into one growable buffer: the window `[start, end)` holds bytes not yet consumed.
///
/// Memory stays flat with file size: the buffer starts at 256 KiB and only grows when one record is longer
/// than the whole buffer. A UTF-8 byte-order mark at the start of the file is skipped (its bytes still count
/// in ``offset(of:)``, so offsets are those of the file as delivered, or as decompressed).
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
    /// The bytes dropped from the front of the buffer so far: buffer index `i` is file offset `discarded + i`.
    private(set) var discarded = 0
    private let input: ByteInput
    /// The file's name for messages.
    let name: String

    init(input: ByteInput, name: String, capacity: Int = 256 << 10) throws {
        self.name = name
        self.input = input
        self.capacity = capacity
        base = .allocate(capacity: capacity)
        try fill()
        if end - start >= 3 && base[0] == 0xEF && base[1] == 0xBB && base[2] == 0xBF { start = 3 }
    }

    convenience init(url: URL, name: String, capacity: Int = 256 << 10) throws {
        try self.init(input: FileInput(path: url.path, name: name), name: name, capacity: capacity)
    }

    deinit { base.deallocate() }

    /// The offset in the file (0-based) of the buffer's byte `index`.
    @inline(__always) func offset(of index: Int) -> Int { discarded + index }

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
            discarded += moved
        }
        if end == capacity {
            let bigger = UnsafeMutablePointer<UInt8>.allocate(capacity: capacity * 2)
            bigger.update(from: base, count: end)
            base.deallocate()
            base = bigger
            capacity *= 2
        }
        let count = try input.read(into: base + end, count: capacity - end)
        if count > 0 {
            end += count
            return (true, moved)
        }
        atEOF = true
        return (false, moved)
    }
}
