import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A buffered file writer: appends text, flushes in 1 MiB blocks.
final class FileWriter {
    private let handle: FileHandle
    private var buffer = Data()
    private(set) var bytes = 0
    private(set) var lines = 0

    init(_ url: URL) throws {
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        // A plain open(2): FileManager.createFile writes atomically (temporary file, rename), which costs more than
        // the small files of a daily feed are worth.
        let fd = open(url.path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: url.path]) }
        handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        buffer.reserveCapacity(1 << 16)  // grows to the 1 MiB flush size only for big files
    }

    func line(_ text: String) {
        buffer.append(contentsOf: text.utf8)
        buffer.append(10)
        lines += 1
        if buffer.count >= 1 << 20 { flush() }
    }

    func raw(_ bytes: [UInt8]) { buffer.append(contentsOf: bytes) }

    func flush() {
        bytes += buffer.count
        handle.write(buffer)
        buffer.removeAll(keepingCapacity: true)
    }

    func close() {
        flush()
        try? handle.close()
    }
}
