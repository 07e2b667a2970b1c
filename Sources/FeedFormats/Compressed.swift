import Foundation
import SystemZlib

/// How a delivered file is packed, told by its first bytes (not by its name).
enum Packing: Equatable {
    case plain
    case gzip
    case zip
    /// A compression the readers do not inflate (bzip2, xz, zstd, 7-Zip), by name.
    case unsupported(String)

    /// The packing of a file from its first bytes.
    static func of(_ head: [UInt8]) -> Packing {
        func starts(_ magic: [UInt8]) -> Bool { head.count >= magic.count && Array(head.prefix(magic.count)) == magic }
        if starts([0x1F, 0x8B]) { return .gzip }
        if starts([0x50, 0x4B, 0x03, 0x04]) || starts([0x50, 0x4B, 0x05, 0x06]) { return .zip }
        if starts([0x42, 0x5A, 0x68]) { return .unsupported("bzip2") }
        if starts([0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00]) { return .unsupported("xz") }
        if starts([0x28, 0xB5, 0x2F, 0xFD]) { return .unsupported("zstd") }
        if starts([0x37, 0x7A, 0xBC, 0xAF, 0x27, 0x1C]) { return .unsupported("7-Zip") }
        return .plain
    }
}

/// A deflate stream inflated as it is read: a whole `.gz` file (every member of a multi-member one), or one
/// zip member (raw deflate). Memory is the two 256 KiB buffers and zlib's 32 KiB window, whatever the size.
final class InflateInput: ByteInput {
    enum Mode { case gzip, rawDeflate }
    private var stream = z_stream()
    private let source: ByteInput
    private let mode: Mode
    private let name: String
    private let input: UnsafeMutablePointer<UInt8>
    private let inputCapacity = 256 << 10
    private var sourceAtEnd = false
    private var finished = false
    /// Compressed bytes handed to zlib so far, for messages.
    private var consumed = 0
    /// The CRC-32 of the output and the value it must reach (zip members: zlib checks gzip's own).
    private var crc: UInt = 0
    private let expectedCRC: UInt32?

    init(source: ByteInput, mode: Mode, name: String, expectedCRC: UInt32? = nil) throws {
        self.source = source
        self.mode = mode
        self.name = name
        self.expectedCRC = expectedCRC
        input = .allocate(capacity: inputCapacity)
        crc = crc32(0, nil, 0)
        let bits: Int32 = mode == .gzip ? 15 + 16 : -15
        let status = inflateInit2_(&stream, bits, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else {
            input.deallocate()
            throw FeedFormatError(.unreadable, file: name, "\(name): zlib could not start (error \(status)).")
        }
    }

    deinit {
        inflateEnd(&stream)
        input.deallocate()
    }

    private func damaged(_ detail: String) -> FeedFormatError {
        let what = mode == .gzip ? "gzip file" : "zip member"
        return FeedFormatError(
            .damagedArchive, file: name,
            "\(name): the \(what) is damaged (\(detail), after \(consumed) compressed bytes); the batch is rejected "
                + "whole. Ask the sender to compress it again and re-deliver.")
    }

    private func refill() throws {
        let count = try source.read(into: input, count: inputCapacity)
        if count == 0 { sourceAtEnd = true }
        stream.next_in = input
        stream.avail_in = UInt32(count)
        consumed += count
    }

    func read(into buffer: UnsafeMutablePointer<UInt8>, count: Int) throws -> Int {
        while !finished {
            if stream.avail_in == 0 && !sourceAtEnd { try refill() }
            stream.next_out = buffer
            stream.avail_out = UInt32(min(count, Int(UInt32.max)))
            let status = inflate(&stream, Z_NO_FLUSH)
            let produced = min(count, Int(UInt32.max)) - Int(stream.avail_out)
            if produced > 0, expectedCRC != nil { crc = crc32(crc, buffer, UInt32(produced)) }
            switch status {
            case Z_STREAM_END:
                if mode == .gzip {
                    // Another member may follow (`cat a.gz b.gz`); zero padding or anything else ends the file.
                    if stream.avail_in == 0 && !sourceAtEnd { try refill() }
                    if stream.avail_in > 0 && stream.next_in[0] == 0x1F {
                        inflateReset(&stream)
                    } else {
                        finished = true
                    }
                } else {
                    finished = true
                    if let expectedCRC, UInt32(truncatingIfNeeded: crc) != expectedCRC {
                        throw damaged("its CRC-32 does not match the archive's directory")
                    }
                }
            case Z_OK:
                break
            case Z_BUF_ERROR:
                if stream.avail_in == 0 && sourceAtEnd {
                    throw damaged("it ends before its end marker: cut short in transfer?")
                }
            default:
                let detail = stream.msg.map { String(cString: $0) } ?? "zlib error \(status)"
                throw damaged(detail)
            }
            if produced > 0 { return produced }
            if stream.avail_in == 0 && sourceAtEnd && !finished {
                throw damaged("it ends before its end marker: cut short in transfer?")
            }
        }
        return 0
    }
}

/// A stored (uncompressed) zip member, with its CRC-32 checked at the end.
final class CheckedInput: ByteInput {
    private let source: ByteInput
    private let expectedCRC: UInt32
    private let name: String
    private var crc: UInt = crc32(0, nil, 0)

    init(source: ByteInput, expectedCRC: UInt32, name: String) {
        self.source = source
        self.expectedCRC = expectedCRC
        self.name = name
    }

    func read(into buffer: UnsafeMutablePointer<UInt8>, count: Int) throws -> Int {
        let read = try source.read(into: buffer, count: count)
        if read > 0 {
            crc = crc32(crc, buffer, UInt32(read))
        } else if UInt32(truncatingIfNeeded: crc) != expectedCRC {
            throw FeedFormatError(
                .damagedArchive, file: name,
                "\(name): the zip member is damaged (its CRC-32 does not match the archive's directory); the batch "
                    + "is rejected whole. Ask the sender to zip it again and re-deliver.")
        }
        return read
    }
}

/// The directory of a zip archive (ZIP64 included), read from its end; members are then read one at a time.
struct ZipArchive {
    struct Member {
        /// The path inside the archive, as stored (`folder/npidata_pfile.csv`).
        var path: String
        var method: UInt16
        var flags: UInt16
        var crc: UInt32
        var compressedSize: Int64
        var size: Int64
        var localHeaderOffset: Int64
        var isDirectory: Bool { path.hasSuffix("/") }
        /// The last component of the path.
        var fileName: String { path.split(separator: "/").last.map(String.init) ?? path }
    }

    let file: FileInput
    let members: [Member]

    private static func u16(_ b: [UInt8], _ at: Int) -> UInt16 { UInt16(b[at]) | UInt16(b[at + 1]) << 8 }
    private static func u32(_ b: [UInt8], _ at: Int) -> UInt32 {
        UInt32(b[at]) | UInt32(b[at + 1]) << 8 | UInt32(b[at + 2]) << 16 | UInt32(b[at + 3]) << 24
    }
    private static func u64(_ b: [UInt8], _ at: Int) -> UInt64 {
        UInt64(u32(b, at)) | UInt64(u32(b, at + 4)) << 32
    }

    private static func broken(_ name: String, _ detail: String) -> FeedFormatError {
        FeedFormatError(
            .damagedArchive, file: name,
            "\(name): not a readable zip archive (\(detail)); the batch is rejected whole. Ask the sender to zip "
                + "it again and re-deliver (or to deliver the CSV, plain or gzipped).")
    }

    init(file: FileInput) throws {
        self.file = file
        let name = file.name
        let size = try file.size()
        // The end-of-central-directory record: 22 bytes plus a comment of at most 65,535.
        let tailLength = Int(min(size, 22 + 65_535))
        let tail = try file.bytes(at: size - Int64(tailLength), count: tailLength)
        guard tail.count >= 22,
            let end = stride(from: tail.count - 22, through: 0, by: -1).first(where: {
                Self.u32(tail, $0) == 0x0605_4B50
            })
        else { throw Self.broken(name, "no end-of-directory record: the file is cut short or not a zip") }
        var count = UInt64(Self.u16(tail, end + 10))
        var directorySize = UInt64(Self.u32(tail, end + 12))
        var directoryOffset = UInt64(Self.u32(tail, end + 16))
        guard Self.u16(tail, end + 4) == 0 || Self.u16(tail, end + 4) == 0xFFFF else {
            throw Self.broken(name, "an archive split over several files")
        }
        // ZIP64: a locator just before the record points at the 64-bit directory record.
        let endOffset = size - Int64(tailLength) + Int64(end)
        if endOffset >= 20 {
            let locator = try file.bytes(at: endOffset - 20, count: 20)
            if locator.count == 20 && Self.u32(locator, 0) == 0x0706_4B50 {
                let recordOffset = Int64(Self.u64(locator, 8))
                let record = try file.bytes(at: recordOffset, count: 56)
                guard record.count == 56, Self.u32(record, 0) == 0x0606_4B50 else {
                    throw Self.broken(name, "a ZIP64 locator that points at no ZIP64 directory record")
                }
                count = Self.u64(record, 32)
                directorySize = Self.u64(record, 40)
                directoryOffset = Self.u64(record, 48)
            }
        }
        guard directoryOffset + directorySize <= UInt64(size), directorySize < 1 << 30 else {
            throw Self.broken(name, "its directory lies outside the file")
        }
        let directory = try file.bytes(at: Int64(directoryOffset), count: Int(directorySize))
        var members: [Member] = []
        var at = 0
        for _ in 0..<count {
            guard at + 46 <= directory.count, Self.u32(directory, at) == 0x0201_4B50 else {
                throw Self.broken(name, "a damaged directory entry")
            }
            let nameLength = Int(Self.u16(directory, at + 28))
            let extraLength = Int(Self.u16(directory, at + 30))
            let commentLength = Int(Self.u16(directory, at + 32))
            guard at + 46 + nameLength + extraLength + commentLength <= directory.count else {
                throw Self.broken(name, "a damaged directory entry")
            }
            let path = String(decoding: directory[(at + 46)..<(at + 46 + nameLength)], as: UTF8.self)
            var compressed = UInt64(Self.u32(directory, at + 20))
            var uncompressed = UInt64(Self.u32(directory, at + 24))
            var offset = UInt64(Self.u32(directory, at + 42))
            // ZIP64 extra field: the 64-bit values of the fields set to all ones, in this order.
            var extra = at + 46 + nameLength
            let extraEnd = extra + extraLength
            while extra + 4 <= extraEnd {
                let id = Self.u16(directory, extra)
                let length = Int(Self.u16(directory, extra + 2))
                if id == 0x0001 {
                    var field = extra + 4
                    func next() -> UInt64? {
                        guard field + 8 <= extra + 4 + length else { return nil }
                        defer { field += 8 }
                        return Self.u64(directory, field)
                    }
                    if uncompressed == 0xFFFF_FFFF, let v = next() { uncompressed = v }
                    if compressed == 0xFFFF_FFFF, let v = next() { compressed = v }
                    if offset == 0xFFFF_FFFF, let v = next() { offset = v }
                }
                extra += 4 + length
            }
            members.append(
                Member(
                    path: path, method: Self.u16(directory, at + 10), flags: Self.u16(directory, at + 8),
                    crc: Self.u32(directory, at + 16), compressedSize: Int64(compressed), size: Int64(uncompressed),
                    localHeaderOffset: Int64(offset)))
            at += 46 + nameLength + extraLength + commentLength
        }
        self.members = members
    }

    /// The member's bytes, inflated as they are read and checked against its CRC-32.
    func input(for member: Member, name: String) throws -> ByteInput {
        if member.flags & 1 != 0 {
            throw FeedFormatError(
                .damagedArchive, file: name,
                "\(name): the zip member is encrypted; the batch is rejected whole. Ask the sender for an archive "
                    + "without a password (or for the file itself).")
        }
        guard member.method == 0 || member.method == 8 else {
            let known: [UInt16: String] = [9: "Deflate64", 12: "bzip2", 14: "LZMA", 93: "Zstandard", 95: "xz"]
            let method = known[member.method].map { "\($0), method \(member.method)" } ?? "method \(member.method)"
            throw FeedFormatError(
                .unsupportedCompression, file: name,
                "\(name): the zip member is compressed with \(method), which the mesh does not read; the batch is "
                    + "rejected whole. Ask the sender to zip it with standard Deflate (or to deliver it gzipped).")
        }
        let header = try file.bytes(at: member.localHeaderOffset, count: 30)
        guard header.count == 30, Self.u32(header, 0) == 0x0403_4B50 else {
            throw Self.broken(name, "a member's local header is missing")
        }
        let dataOffset =
            member.localHeaderOffset + 30 + Int64(Self.u16(header, 26)) + Int64(Self.u16(header, 28))
        let range = FileInput(sharing: file, offset: dataOffset, length: member.compressedSize)
        if member.method == 0 { return CheckedInput(source: range, expectedCRC: member.crc, name: name) }
        return try InflateInput(source: range, mode: .rawDeflate, name: name, expectedCRC: member.crc)
    }
}
