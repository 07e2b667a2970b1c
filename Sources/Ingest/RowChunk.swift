import FeedFormats
import Foundation

/// Parsed rows handed from the reader thread to the inserting thread, encoded in one byte buffer.
///
/// The reader thread does everything that allocates: it encodes each typed row into the chunk's buffer and
/// sorts the chunk by the table's key. The inserting thread, the bottleneck of a load, then binds values in
/// place from the buffer and steps them into SQLite, with no Swift object traffic per row.
///
/// The sort is stable and only changes the order of rows with different keys, so the latest (or first) of
/// several rows with one key still wins; it lets the clustered table take each chunk in key order, which
/// SQLite inserts markedly faster than file order (docs/benchmarks.md).
struct RowChunk: Sendable {
    /// Rows per chunk at most (the first chunks of a load are smaller): about 4 MB of an Xponent file, so memory
    /// stays bounded whatever the file's size.
    static let capacity = 32_768

    /// Where a table's key columns are among its values, and which value types each may hold for the
    /// sort to agree with SQLite on which keys are equal.
    struct SortKey: Sendable {
        enum Affinity: Sendable { case text, numeric, none }
        let positions: [Int]
        let affinities: [Affinity]

        init(table: RawTable) {
            let names = table.columns.map { $0.name.lowercased() }
            var positions: [Int] = []
            var affinities: [Affinity] = []
            for column in table.key {
                guard let position = names.firstIndex(of: column.lowercased()) else { continue }
                positions.append(position)
                // SQLite's rules for a declared type's affinity (section 3.1 of "Datatypes In SQLite").
                let type = table.columns[position].type.uppercased()
                if type.contains("INT") {
                    affinities.append(.numeric)
                } else if type.contains("CHAR") || type.contains("CLOB") || type.contains("TEXT") {
                    affinities.append(.text)
                } else if type.contains("BLOB") || type.isEmpty {
                    affinities.append(.none)
                } else {
                    affinities.append(.numeric)
                }
            }
            self.positions = positions
            self.affinities = affinities
        }
    }

    /// One value as the inserting thread binds it; text points into the chunk's buffer.
    enum Value {
        case null
        case integer(Int64)
        case real(Double)
        case text(UnsafePointer<CChar>, Int32)
    }

    /// One encoded row: its table, its line in the file, and its values in the table's column order.
    struct Row {
        fileprivate let base: UnsafeRawPointer
        var table: Int { Int(base.load(as: UInt8.self)) }
        var line: Int { Int(base.loadUnaligned(fromByteOffset: 1, as: Int64.self)) }

        @inline(__always)
        func forEachValue(_ body: (Value) throws -> Void) rethrows {
            let count = Int(base.loadUnaligned(fromByteOffset: 9, as: UInt16.self))
            var offset = 11
            for _ in 0..<count {
                let tag = base.load(fromByteOffset: offset, as: UInt8.self)
                offset += 1
                switch tag {
                case 1:
                    try body(.integer(base.loadUnaligned(fromByteOffset: offset, as: Int64.self)))
                    offset += 8
                case 2:
                    try body(.real(base.loadUnaligned(fromByteOffset: offset, as: Double.self)))
                    offset += 8
                case 3:
                    let length = base.loadUnaligned(fromByteOffset: offset, as: UInt32.self)
                    offset += 4
                    try body(.text((base + offset).assumingMemoryBound(to: CChar.self), Int32(length)))
                    offset += Int(length)
                default:
                    try body(.null)
                }
            }
        }
    }

    private let keys: [SortKey]
    // A chunk is filled by one thread and then handed over whole; it is not copied while it is being filled.
    private let bytes = ByteBuffer(capacity: 1 << 16)
    private var rowOffsets: [Int] = []
    private let keyBytes = ByteBuffer(capacity: 1 << 14)
    private var keyOffsets: [Int] = []
    /// The order rows are inserted in: file order until ``sorted()``.
    private var order: [Int32] = []
    /// False once a key value's type could make the sort disagree with SQLite about equal keys.
    private var sortable = true
    /// Rows the reader rejected, with the index of their file in the batch.
    private(set) var rejected: [(Int, QuarantinedRow)] = []

    init(keys: [SortKey]) {
        self.keys = keys
    }

    var rowCount: Int { rowOffsets.count }
    var isEmpty: Bool { rowOffsets.isEmpty && rejected.isEmpty }

    mutating func reject(file: Int, _ row: QuarantinedRow) { rejected.append((file, row)) }

    mutating func append(table: Int, line: Int, values: [FieldValue]) {
        rowOffsets.append(bytes.count)
        bytes.append(UInt8(truncatingIfNeeded: table))
        bytes.append(Int64(line))
        bytes.append(UInt16(truncatingIfNeeded: values.count))
        for value in values {
            switch value {
            case .null: bytes.append(UInt8(0))
            case .integer(let v):
                bytes.append(UInt8(1))
                bytes.append(v)
            case .real(let v):
                bytes.append(UInt8(2))
                bytes.append(v)
            case .text(var text):
                bytes.append(UInt8(3))
                text.withUTF8 { utf8 in
                    bytes.append(UInt32(utf8.count))
                    bytes.append(UnsafeRawBufferPointer(utf8))
                }
            }
        }
        guard sortable else { return }
        keyOffsets.append(keyBytes.count)
        keyBytes.append(UInt8(truncatingIfNeeded: table))
        let key = keys[table]
        for (position, affinity) in zip(key.positions, key.affinities) {
            switch values[position] {
            case .null: keyBytes.append(UInt8(0))
            case .integer(let v):
                guard affinity != .text else {
                    sortable = false
                    return
                }
                appendSortable(Double(v))
            case .real(let v):
                guard affinity != .text, !v.isNaN else {
                    sortable = false
                    return
                }
                appendSortable(v)
            case .text(var text):
                guard affinity != .numeric else {
                    sortable = false
                    return
                }
                keyBytes.append(UInt8(3))
                text.withUTF8 { keyBytes.append(UnsafeRawBufferPointer($0)) }
                keyBytes.append(UInt8(0))
            }
        }
    }

    /// The chunk with its rows in key order (stable: rows with one key keep their file order).
    func sorted() -> RowChunk {
        var chunk = self
        chunk.order = (0..<Int32(rowCount)).map { $0 }
        guard sortable, rowCount > 1 else { return chunk }
        chunk.keyOffsets.append(keyBytes.count)
        let offsets = chunk.keyOffsets
        let base = keyBytes.base
        chunk.order.withUnsafeMutableBufferPointer { order in
            order.sort { a, b in
                let startA = offsets[Int(a)]
                let startB = offsets[Int(b)]
                let lengthA = offsets[Int(a) + 1] - startA
                let lengthB = offsets[Int(b) + 1] - startB
                let compared = memcmp(base + startA, base + startB, min(lengthA, lengthB))
                if compared != 0 { return compared < 0 }
                if lengthA != lengthB { return lengthA < lengthB }
                return a < b
            }
        }
        return chunk
    }

    /// Calls `body` with every row, in insertion order; the rows are valid only inside `body`.
    func withRows(_ body: ([Row]) throws -> Void) rethrows {
        let base = UnsafeRawPointer(bytes.base)
        let rows =
            order.count == rowOffsets.count
            ? order.map { Row(base: base + rowOffsets[Int($0)]) } : rowOffsets.map { Row(base: base + $0) }
        try withExtendedLifetime(bytes) { try body(rows) }
    }

    /// A number as bytes that compare (memcmp) in numeric order; integers and reals of equal value are equal.
    private func appendSortable(_ value: Double) {
        let bits = (value == 0 ? 0 : value).bitPattern
        let ordered = bits & (1 << 63) != 0 ? ~bits : bits | (1 << 63)
        keyBytes.append(UInt8(1))
        keyBytes.append(ordered.bigEndian)
    }
}

/// A growable byte buffer written with unaligned stores: cheaper per small value than `[UInt8].append`.
final class ByteBuffer: @unchecked Sendable {
    private(set) var base: UnsafeMutableRawPointer
    private(set) var count = 0
    private var capacity: Int

    init(capacity: Int) {
        base = .allocate(byteCount: capacity, alignment: 8)
        self.capacity = capacity
    }

    deinit { base.deallocate() }

    @inline(__always) func append<T: BitwiseCopyable>(_ value: T) {
        let size = MemoryLayout<T>.size
        if count + size > capacity { grow(to: count + size) }
        (base + count).storeBytes(of: value, as: T.self)
        count += size
    }

    @inline(__always) func append(_ bytes: UnsafeRawBufferPointer) {
        guard let source = bytes.baseAddress, !bytes.isEmpty else { return }
        if count + bytes.count > capacity { grow(to: count + bytes.count) }
        (base + count).copyMemory(from: source, byteCount: bytes.count)
        count += bytes.count
    }

    private func grow(to needed: Int) {
        let grown = max(needed, 2 * capacity)
        let larger = UnsafeMutableRawPointer.allocate(byteCount: grown, alignment: 8)
        larger.copyMemory(from: base, byteCount: count)
        base.deallocate()
        base = larger
        capacity = grown
    }
}

/// A bounded hand-over of row chunks from the reader thread to the inserting thread: each batch's chunks,
/// then the end of the batch with the reason it was rejected, if it was.
final class RowChunkPipe: @unchecked Sendable {
    enum Item {
        case rows(RowChunk)
        /// The end of a batch: a message when the batch is rejected whole, and the files it left unread.
        case end(String?, [String])
    }
    // Every stored property is read and written under `condition`'s lock.
    private let condition = NSCondition()
    private var items: [Item] = []
    private var cancelled = false
    private var endMessage: (rejection: String?, ignored: [String]) = (nil, [])
    private let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    /// Waits for room; returns at once, dropping the item, once the inserting side has gone.
    func push(_ item: Item) {
        if case .rows(let chunk) = item, chunk.isEmpty { return }
        condition.lock()
        while items.count >= capacity && !cancelled { condition.wait() }
        if !cancelled { items.append(item) }
        condition.broadcast()
        condition.unlock()
    }

    /// The next item; an end also sets ``lastEnd``.
    func pop() -> Item {
        condition.lock()
        defer { condition.unlock() }
        while items.isEmpty { condition.wait() }
        let item = items.removeFirst()
        if case .end(let message, let ignored) = item { endMessage = (message, ignored) }
        condition.broadcast()
        return item
    }

    /// The last batch end taken: its rejection (nil when the batch was read whole) and the files it left unread.
    var lastEnd: (rejection: String?, ignored: [String]) {
        condition.lock()
        defer { condition.unlock() }
        return endMessage
    }

    /// The inserting side stops taking items (it failed, or finished): the reader stops at its next push.
    func cancel() {
        condition.lock()
        cancelled = true
        items.removeAll()
        condition.broadcast()
        condition.unlock()
    }

    var isCancelled: Bool {
        condition.lock()
        defer { condition.unlock() }
        return cancelled
    }
}
