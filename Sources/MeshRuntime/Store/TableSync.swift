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
/// var sync = try TableSync("physician", keyColumns: 1, in: db)
/// for golden in records { try sync.put([golden.id, golden.name, golden.status]) }
/// let changed = try sync.finish()  // deletes the rows no `put` named
/// ```
public struct TableSync {
    public let table: String
    private let keyCount: Int
    private let width: Int
    /// Key → position in `rows` of the table's row of that key (encoded by `RowBytes`, without the key).
    /// Entries are marked in `named`, never removed: removal from a large dictionary costs more than the lookup.
    private var existing: [RowBytes: Int] = [:]
    private var rowKeys: [RowBytes] = []
    private var rows: [RowBytes] = []
    /// Which of the table's rows a `put` named.
    private var named: [Bool] = []
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
        existing.reserveCapacity(count)
        rowKeys.reserveCapacity(count)
        rows.reserveCapacity(count)
        let handle = select.sqliteStatement
        var code = sqlite3_step(handle)
        while code == SQLITE_ROW {
            var key = RowBytes()
            for index in 0..<keyColumns { key.append(column: Int32(index), of: handle) }
            var row = RowBytes()
            for index in keyColumns..<columns.count { row.append(column: Int32(index), of: handle) }
            guard existing.updateValue(rowKeys.count, forKey: key) == nil else {
                sqlite3_reset(handle)
                throw MeshError(.stepFailed, "TableSync: two rows of \(table) share a key")
            }
            rowKeys.append(key)
            rows.append(row)
            code = sqlite3_step(handle)
        }
        named = [Bool](repeating: false, count: rowKeys.count)
        sqlite3_reset(handle)
        guard code == SQLITE_DONE else { throw DatabaseError(resultCode: ResultCode(rawValue: code)) }
    }

    /// One row of the table as it must be, in table column order. Writes it only when it is new or differs from
    /// the row of its key (values compare by storage class too: 1 and 1.0 differ, as they do in a digest).
    public mutating func put(_ values: [DatabaseValue]) throws {
        guard values.count == width else {
            throw MeshError(.stepFailed, "TableSync: a row of \(values.count) values for \(table) of \(width) columns")
        }
        var key = RowBytes()
        for value in values.prefix(keyCount) { key.append(value) }
        // A key named twice goes to the INSERT, which the table's primary key refuses.
        if let position = existing[key], !named[position] {
            named[position] = true
            var row = RowBytes()
            for value in values.dropFirst(keyCount) { row.append(value) }
            guard row != rows[position] else { return }
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
        for key in rowKeys.indices.filter({ !named[$0] }).map({ rowKeys[$0] }).sorted() {
            try delete.execute(arguments: StatementArguments(key.values(count: keyCount)))
            deleted += 1
        }
        existing = [:]
        rowKeys = []
        rows = []
        named = []
        return inserted + updated + deleted
    }
}

/// Values encoded as bytes (a type tag, then 8 bytes or a length and the bytes), so that rows hash and compare
/// as flat byte strings: by storage class and content, as the table digest sees them.
struct RowBytes: Hashable, Comparable {
    private(set) var bytes: [UInt8] = []

    static func < (a: RowBytes, b: RowBytes) -> Bool { a.bytes.lexicographicallyPrecedes(b.bytes) }

    func hash(into hasher: inout Hasher) {
        bytes.withUnsafeBytes { hasher.combine(bytes: $0) }
    }

    private mutating func append(tag: UInt8, _ value: UInt64) {
        bytes.append(tag)
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    private mutating func append(tag: UInt8, _ pointer: UnsafeRawPointer?, count: Int) {
        append(tag: tag, UInt64(count))
        if let pointer, count > 0 { bytes.append(contentsOf: UnsafeRawBufferPointer(start: pointer, count: count)) }
    }

    mutating func append(column index: Int32, of statement: OpaquePointer?) {
        switch sqlite3_column_type(statement, index) {
        case SQLITE_NULL: bytes.append(0)
        case SQLITE_INTEGER: append(tag: 1, UInt64(bitPattern: sqlite3_column_int64(statement, index)))
        case SQLITE_FLOAT: append(tag: 2, sqlite3_column_double(statement, index).bitPattern)
        case SQLITE_TEXT:
            let text = sqlite3_column_text(statement, index)
            append(tag: 3, text, count: Int(sqlite3_column_bytes(statement, index)))
        default:
            let blob = sqlite3_column_blob(statement, index)
            append(tag: 4, blob, count: Int(sqlite3_column_bytes(statement, index)))
        }
    }

    mutating func append(_ value: DatabaseValue) {
        switch value.storage {
        case .null: bytes.append(0)
        case .int64(let v): append(tag: 1, UInt64(bitPattern: v))
        case .double(let v): append(tag: 2, v.bitPattern)
        case .string(var v): v.withUTF8 { append(tag: 3, $0.baseAddress, count: $0.count) }
        case .blob(let v): v.withUnsafeBytes { append(tag: 4, $0.baseAddress, count: $0.count) }
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
