import Foundation
import GRDB
import GRDBSQLite

/// Brings a table of the working database to exactly the rows a step computed, writing only the rows that differ.
///
/// For a step that recomputes a whole table in memory (a matcher, a survivorship rule) on a build that
/// started from the previous version (`Domain.buildsOnPreviousVersion`): the rows that did not change are not
/// written again, so publication digests only the changed ones, the domain's change log carries only them, and
/// consumers that read the log read only them. The table's content ends as it would after dropping it and
/// inserting every row; the physical order of the rows may differ.
///
/// ```swift
/// var sync = try TableSync("customer", keyColumns: 1, in: db)
/// for golden in records { try sync.put([golden.id, golden.name, golden.status]) }
/// let changed = try sync.finish()  // deletes the rows no `put` named
/// ```
public struct TableSync {
    public let table: String
    private let keyCount: Int
    private let width: Int
    /// The table's rows as they were, one after another, each its key then its other values (encoded by
    /// `RowBytes`): one buffer, no allocation per row.
    private var buffer: [UInt8] = []
    /// Where row `i` starts in `buffer` (`starts[i]`), where its values after the key start (`splits[i]`), and
    /// where it ends (`starts[i + 1]`).
    private var starts: [Int] = [0]
    private var splits: [Int] = []
    /// An open-addressing hash index of the keys: row position + 1, 0 for an empty slot.
    private var slots: [Int32] = []
    private var mask = 0
    /// Which of the table's rows a `put` named.
    private var named: [Bool] = []
    /// The encoding of the row being put, reused from one `put` to the next.
    private var scratch: [UInt8] = []
    private let insert: Statement
    private let update: Statement
    private let delete: Statement
    public private(set) var inserted = 0
    public private(set) var updated = 0
    public private(set) var deleted = 0

    /// Reads the current rows of `main.table`, keyed by its first `keyColumns` columns (in table order), which
    /// must identify a row: give the table a primary key on them, so that a second `put` of a key is refused.
    public init(_ table: String, keyColumns: Int, in db: Database) throws {
        let columns = try db.columns(in: table, in: "main").map(\.name)
        guard keyColumns > 0, keyColumns <= columns.count else {
            throw MeshError(.stepFailed, "TableSync: \(table) has \(columns.count) columns, not a key of \(keyColumns)")
        }
        self.table = table
        keyCount = keyColumns
        width = columns.count
        let t = "main.\(quoteIdentifier(table))"
        let keys = columns.prefix(keyColumns).enumerated().map { "\(quoteIdentifier($1)) IS ?\($0 + 1)" }
            .joined(separator: " AND ")
        let values = columns.dropFirst(keyColumns).enumerated().map {
            "\(quoteIdentifier($1)) = ?\($0 + keyColumns + 1)"
        }
        insert = try db.makeStatement(
            sql: "INSERT INTO \(t) VALUES (\(columns.indices.map { "?\($0 + 1)" }.joined(separator: ", ")))")
        // A table of key columns only never needs an update; the statement then rewrites its key.
        update = try db.makeStatement(
            sql:
                "UPDATE \(t) SET \(values.isEmpty ? "\(quoteIdentifier(columns[0])) = ?1" : values.joined(separator: ", ")) WHERE \(keys)"
        )
        delete = try db.makeStatement(sql: "DELETE FROM \(t) WHERE \(keys)")
        // Rows are encoded straight from SQLite's column values: no `Row` or `DatabaseValue` per value.
        let select = try db.makeStatement(
            sql: "SELECT \(columns.map(quoteIdentifier).joined(separator: ", ")) FROM \(t)")
        let count = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM \(t)") ?? 0
        var capacity = 16
        while capacity < 2 * count { capacity <<= 1 }
        slots = [Int32](repeating: 0, count: capacity)
        mask = capacity - 1
        starts.reserveCapacity(count + 1)
        splits.reserveCapacity(count)
        let handle = select.sqliteStatement
        var code = sqlite3_step(handle)
        while code == SQLITE_ROW {
            let start = buffer.count
            for index in 0..<keyColumns { RowBytes.append(column: Int32(index), of: handle, to: &buffer) }
            let split = buffer.count
            let (slot, found) = find(buffer, start, split)
            guard found == nil else {
                sqlite3_reset(handle)
                throw MeshError(.stepFailed, "TableSync: two rows of \(table) share a key")
            }
            slots[slot] = Int32(splits.count + 1)
            for index in keyColumns..<columns.count { RowBytes.append(column: Int32(index), of: handle, to: &buffer) }
            splits.append(split)
            starts.append(buffer.count)
            code = sqlite3_step(handle)
        }
        named = [Bool](repeating: false, count: splits.count)
        sqlite3_reset(handle)
        guard code == SQLITE_DONE else { throw DatabaseError(resultCode: ResultCode(rawValue: code)) }
    }

    /// The slot of a key (`bytes[from..<to]`): the row that holds it, or the empty slot where it would go.
    private func find(_ bytes: [UInt8], _ from: Int, _ to: Int) -> (slot: Int, row: Int?) {
        // FNV-1a: keys are a few dozen bytes, and a seeded `Hasher` per key cost more than the lookup.
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        bytes.withUnsafeBufferPointer { key in
            for byte in key[from..<to] { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        }
        var slot = Int(truncatingIfNeeded: hash ^ (hash >> 29)) & mask
        while true {
            let entry = Int(slots[slot])
            if entry == 0 { return (slot, nil) }
            let row = entry - 1
            if stored(starts[row], splits[row], equal: bytes, from, to) { return (slot, row) }
            slot = (slot + 1) & mask
        }
    }

    /// Whether `buffer[start..<end]` holds the same bytes as `bytes[from..<to]`.
    private func stored(_ start: Int, _ end: Int, equal bytes: [UInt8], _ from: Int, _ to: Int) -> Bool {
        let length = to - from
        guard end - start == length else { return false }
        guard length > 0 else { return true }
        return bytes.withUnsafeBufferPointer { mine in
            buffer.withUnsafeBufferPointer { rows in
                memcmp(mine.baseAddress! + from, rows.baseAddress! + start, length) == 0
            }
        }
    }

    /// One row of the table as it must be, in table column order. Writes it only when it is new or differs from
    /// the row of its key (values compare by storage class too: 1 and 1.0 differ, as they do in a digest).
    public mutating func put(_ values: [DatabaseValue]) throws {
        guard values.count == width else {
            throw MeshError(.stepFailed, "TableSync: a row of \(values.count) values for \(table) of \(width) columns")
        }
        scratch.removeAll(keepingCapacity: true)
        for value in values.prefix(keyCount) { RowBytes.append(value, to: &scratch) }
        let split = scratch.count
        // A key named twice goes to the INSERT, which the table's primary key refuses.
        if let row = find(scratch, 0, split).row, !named[row] {
            named[row] = true
            for value in values.dropFirst(keyCount) { RowBytes.append(value, to: &scratch) }
            guard !stored(splits[row], starts[row + 1], equal: scratch, split, scratch.count) else { return }
            try update.execute(arguments: StatementArguments(values))
            updated += 1
        } else {
            try insert.execute(arguments: StatementArguments(values))
            inserted += 1
        }
    }

    public mutating func put(_ values: [(any DatabaseValueConvertible)?]) throws {
        try put(values.map { $0?.databaseValue ?? .null })
    }

    /// Deletes the rows no `put` named, and returns how many rows were inserted, updated or deleted.
    @discardableResult
    public mutating func finish() throws -> Int {
        let gone = named.indices.filter { !named[$0] }.map { RowBytes(Array(buffer[starts[$0]..<splits[$0]])) }
        for key in gone.sorted() {
            try delete.execute(arguments: StatementArguments(key.values(count: keyCount)))
            deleted += 1
        }
        buffer = []
        starts = [0]
        splits = []
        slots = []
        named = []
        return inserted + updated + deleted
    }
}

/// Values encoded as bytes (a type tag, then 8 bytes or a length and the bytes), so that rows hash and compare
/// as flat byte strings: by storage class and content, as the table digest sees them.
struct RowBytes: Comparable {
    private(set) var bytes: [UInt8] = []

    init(_ bytes: [UInt8] = []) { self.bytes = bytes }

    static func < (a: RowBytes, b: RowBytes) -> Bool { a.bytes.lexicographicallyPrecedes(b.bytes) }

    private static func append(tag: UInt8, _ value: UInt64, to bytes: inout [UInt8]) {
        bytes.append(tag)
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    private static func append(tag: UInt8, _ pointer: UnsafeRawPointer?, count: Int, to bytes: inout [UInt8]) {
        append(tag: tag, UInt64(count), to: &bytes)
        if let pointer, count > 0 { bytes.append(contentsOf: UnsafeRawBufferPointer(start: pointer, count: count)) }
    }

    static func append(column index: Int32, of statement: OpaquePointer?, to bytes: inout [UInt8]) {
        switch sqlite3_column_type(statement, index) {
        case SQLITE_NULL: bytes.append(0)
        case SQLITE_INTEGER: append(tag: 1, UInt64(bitPattern: sqlite3_column_int64(statement, index)), to: &bytes)
        case SQLITE_FLOAT: append(tag: 2, sqlite3_column_double(statement, index).bitPattern, to: &bytes)
        case SQLITE_TEXT:
            let text = sqlite3_column_text(statement, index)
            append(tag: 3, text, count: Int(sqlite3_column_bytes(statement, index)), to: &bytes)
        default:
            let blob = sqlite3_column_blob(statement, index)
            append(tag: 4, blob, count: Int(sqlite3_column_bytes(statement, index)), to: &bytes)
        }
    }

    static func append(_ value: DatabaseValue, to bytes: inout [UInt8]) {
        switch value.storage {
        case .null: bytes.append(0)
        case .int64(let v): append(tag: 1, UInt64(bitPattern: v), to: &bytes)
        case .double(let v): append(tag: 2, v.bitPattern, to: &bytes)
        case .string(var v): v.withUTF8 { append(tag: 3, $0.baseAddress, count: $0.count, to: &bytes) }
        case .blob(let v): v.withUnsafeBytes { append(tag: 4, $0.baseAddress, count: $0.count, to: &bytes) }
        }
    }

    /// Decodes the first `count` values (the key, for a delete).
    func values(count: Int) -> [DatabaseValue] {
        var result: [DatabaseValue] = []
        var offset = 0
        func word() -> UInt64 {
            var value: UInt64 = 0
            for shift in 0..<8 { value |= UInt64(bytes[offset + shift]) << (8 * UInt64(shift)) }
            offset += 8
            return value
        }
        while result.count < count, offset < bytes.count {
            let tag = bytes[offset]
            offset += 1
            switch tag {
            case 0: result.append(.null)
            case 1: result.append(Int64(bitPattern: word()).databaseValue)
            case 2: result.append(Double(bitPattern: word()).databaseValue)
            default:
                let length = Int(word())
                let slice = bytes[offset..<(offset + length)]
                offset += length
                result.append(
                    tag == 3 ? String(decoding: slice, as: UTF8.self).databaseValue : Data(slice).databaseValue)
            }
        }
        return result
    }
}
