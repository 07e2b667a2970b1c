import Crypto
import Foundation
import GRDB
import GRDBSQLite

/// Content fingerprints: SHA-256 for text and files, and an order-independent digest of table contents.
public enum Fingerprint {
    public static func sha256Hex(_ text: String) -> String { sha256Hex(Data(text.utf8)) }

    public static func sha256Hex(_ data: Data) -> String { hex(SHA256.hash(data: data)) }

    /// Lower-case hexadecimal of bytes (`String(format: "%02x")` per byte cost a Foundation format call each:
    /// 64 of them per hash, on every batch of every landing).
    public static func hex<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(bytes.underestimatedCount * 2)
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// SHA-256 of a file, streamed in 1 MiB chunks.
    public static func sha256Hex(fileAt url: URL) throws -> String {
        let handle = try FileHandle(forReadingFrom: url)
        // Best-effort: closing a file only read cannot lose anything.
        defer { try? handle.close() }
        var hasher = SHA256()
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty { hasher.update(data: chunk) }
        return hex(hasher.finalize())
    }

    /// What a published table is: its ordered columns, row count, and a digest of its rows.
    public struct TableDigest: Sendable, Hashable {
        public var columns: [String]
        public var rowCount: Int
        public var digest: String
        public init(columns: [String], rowCount: Int, digest: String) {
            self.columns = columns
            self.rowCount = rowCount
            self.digest = digest
        }
    }

    /// Digests rows read from elsewhere (another engine's copy of a table) exactly as ``digest(table:in:)``
    /// digests a SQLite table, so that the two digests are equal when the rows and their value types are.
    ///
    /// ```swift
    /// var digester = Fingerprint.TableDigester()
    /// digester.integer(42); digester.text(Array("Smith".utf8)); digester.endRow()
    /// let text = digester.digest
    /// ```
    public struct TableDigester: Sendable {
        private var sumA: UInt64 = 0
        private var sumB: UInt64 = 0
        private var row = RowHasher()
        public private(set) var rowCount = 0
        public init() {}
        public mutating func null() { row.null() }
        public mutating func integer(_ value: Int64) { row.integer(value) }
        public mutating func real(_ value: Double) { row.real(value) }
        public mutating func text(_ bytes: UnsafeBufferPointer<UInt8>) {
            row.text(bytes.baseAddress, count: bytes.count)
        }
        public mutating func blob(_ bytes: UnsafeBufferPointer<UInt8>) {
            row.blob(bytes.baseAddress.map(UnsafeRawPointer.init), count: bytes.count)
        }
        /// Ends the current row and starts the next.
        public mutating func endRow() {
            let (a, b) = row.finish()
            sumA &+= a
            sumB &+= b
            rowCount += 1
            row = RowHasher()
        }
        /// The digest text of the rows so far, comparable with `TableDigest.digest`.
        public var digest: String { Fingerprint.digestText(sumA, sumB) }
    }

    /// Digests a table's rows independently of their physical order: each row is hashed (two 64-bit FNV-1a
    /// lanes over typed values) and the row hashes are summed, so the same multiset of rows always gives
    /// the same digest, whatever order the build inserted them in.
    public static func digest(table: String, in db: Database) throws -> TableDigest {
        let columns = try db.columns(in: table).map { "\($0.name) \($0.type.uppercased())" }
        let sums = try rowSums(sql: "SELECT * FROM \(quoteQualified(table))", arguments: [], in: db)
        return TableDigest(columns: columns, rowCount: sums.count, digest: digestText(sums.a, sums.b))
    }

    /// Rows above which ``digest(table:in:file:)`` reads a table over two connections.
    public static let parallelDigestRows = 250_000

    /// The digest of ``digest(table:in:)``, read over two connections at once when the table is large: the
    /// rows on either side of the median of its leading key go to this connection and to a read-only one
    /// on `file` (the database `db` has open, with no write pending), and the two sums add up to the same
    /// digest, since a digest does not depend on the order of rows.
    public static func digest(
        table: String, in db: Database, file: String, minimumRows: Int = parallelDigestRows
    ) throws -> TableDigest {
        guard let (schema, name, withoutRowid) = try tableShape(table, in: db), schema == "main" else {
            return try digest(table: table, in: db)
        }
        let columns = try db.columns(in: table)
        let key: String
        if withoutRowid {
            guard
                let leading = try Row.fetchAll(db, sql: "PRAGMA table_info(\(quoteIdentifier(name)))")
                    .first(where: { ($0["pk"] as Int) == 1 })?["name"] as String?
            else { return try digest(table: table, in: db) }
            key = quoteIdentifier(leading)
        } else {
            // A column named like the rowid would hide it.
            guard !columns.contains(where: { ["rowid", "_rowid_", "oid"].contains($0.name.lowercased()) }) else {
                return try digest(table: table, in: db)
            }
            key = "rowid"
        }
        let quoted = quoteIdentifier(name)
        let rows = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM \(quoted)") ?? 0
        guard rows >= max(minimumRows, 2),
            let median = try DatabaseValue.fetchOne(
                db, sql: "SELECT \(key) FROM \(quoted) ORDER BY \(key) LIMIT 1 OFFSET ?", arguments: [rows / 2])
        else { return try digest(table: table, in: db) }
        let upper = SecondHalf()
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            upper.result = Result {
                var configuration = Configuration()
                configuration.readonly = true
                configuration.label = "digest"
                let reader = try DatabaseQueue(path: file, configuration: configuration)
                // Best-effort: a read-only connection has nothing to lose on close.
                defer { try? reader.close() }
                return try reader.read { db in
                    try rowSums(
                        sql: "SELECT * FROM \(quoted) WHERE \(key) >= ?", arguments: [median], in: db)
                }
            }
            done.signal()
        }
        let lower = Result { try rowSums(sql: "SELECT * FROM \(quoted) WHERE \(key) < ?", arguments: [median], in: db) }
        done.wait()
        let (a, b) = (try lower.get(), try upper.result!.get())
        return TableDigest(
            columns: columns.map { "\($0.name) \($0.type.uppercased())" }, rowCount: a.count + b.count,
            digest: digestText(a.a &+ b.a, a.b &+ b.b))
    }

    /// The other thread's share of a parallel digest; written before the semaphore is signalled, read after.
    private final class SecondHalf: @unchecked Sendable {
        var result: Result<(a: UInt64, b: UInt64, count: Int), any Error>?
    }

    /// The summed row hashes of a query's rows.
    private static func rowSums(sql: String, arguments: StatementArguments, in db: Database) throws -> (
        a: UInt64, b: UInt64, count: Int
    ) {
        var sumA: UInt64 = 0
        var sumB: UInt64 = 0
        var count = 0
        // SQLite's C interface directly: this reads every published row, so it must be cheap per value.
        let statement = try db.makeStatement(sql: sql)
        try statement.setArguments(arguments)
        let handle = statement.sqliteStatement
        let width = sqlite3_column_count(handle)
        while true {
            let code = sqlite3_step(handle)
            if code == SQLITE_DONE { break }
            guard code == SQLITE_ROW else {
                throw DatabaseError(
                    resultCode: ResultCode(rawValue: code),
                    message: String(cString: sqlite3_errmsg(db.sqliteConnection)))
            }
            var hasher = RowHasher()
            for index in 0..<width {
                switch sqlite3_column_type(handle, index) {
                case SQLITE_NULL: hasher.null()
                case SQLITE_INTEGER: hasher.integer(sqlite3_column_int64(handle, index))
                case SQLITE_FLOAT: hasher.real(sqlite3_column_double(handle, index))
                case SQLITE_TEXT:
                    hasher.text(sqlite3_column_text(handle, index), count: Int(sqlite3_column_bytes(handle, index)))
                default:
                    hasher.blob(sqlite3_column_blob(handle, index), count: Int(sqlite3_column_bytes(handle, index)))
                }
            }
            let (rowA, rowB) = hasher.finish()
            sumA &+= rowA
            sumB &+= rowB
            count += 1
        }
        return (sumA, sumB, count)
    }

    /// The fingerprint of a version: SHA-256 over every output table's name, schema, row count and digest.
    public static func version(of digests: [String: TableDigest]) -> String {
        var text = ""
        for name in digests.keys.sorted() {
            let digest = digests[name]!
            text += "\(name)|\(digest.columns.joined(separator: ","))|\(digest.rowCount)|\(digest.digest)\n"
        }
        return sha256Hex(text)
    }

    /// The text form of a table digest: the two 64-bit sums in hex.
    static func digestText(_ sumA: UInt64, _ sumB: UInt64) -> String { String(format: "%016llx%016llx", sumA, sumB) }

    /// The two 64-bit sums of a digest text, or nil when it is not one.
    static func digestSums(_ text: String) -> (UInt64, UInt64)? {
        guard text.utf8.count == 32, let a = UInt64(text.prefix(16), radix: 16),
            let b = UInt64(text.suffix(16), radix: 16)
        else { return nil }
        return (a, b)
    }
}

/// The hash of one row: two 64-bit FNV-1a lanes over the typed values, each finished by splitmix64.
///
/// Shared by the full table digest (values read with `sqlite3_column_*`) and the incremental one (values
/// handed to a SQL function by triggers), so that both hash a row identically.
struct RowHasher {
    private var a: UInt64 = 0xcbf2_9ce4_8422_2325
    private var b: UInt64 = 0x8422_2325_cbf2_9ce4

    @inline(__always) private mutating func mix(_ byte: UInt8) {
        a = (a ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
        b = (b ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 &+ 0x9e37_79b9
    }

    @inline(__always) private mutating func mix64(_ value: UInt64) {
        var v = value
        for _ in 0..<8 {
            mix(UInt8(truncatingIfNeeded: v))
            v >>= 8
        }
    }

    @inline(__always) mutating func null() { mix(0) }

    @inline(__always) mutating func integer(_ value: Int64) {
        mix(1)
        mix64(UInt64(bitPattern: value))
    }

    @inline(__always) mutating func real(_ value: Double) {
        mix(2)
        mix64(value.bitPattern)
    }

    @inline(__always) mutating func text(_ bytes: UnsafePointer<UInt8>?, count: Int) {
        mix(3)
        if let bytes { for i in 0..<count { mix(bytes[i]) } }
        mix(0xff)
    }

    @inline(__always) mutating func blob(_ pointer: UnsafeRawPointer?, count: Int) {
        mix(4)
        if let pointer {
            let bytes = pointer.assumingMemoryBound(to: UInt8.self)
            for i in 0..<count { mix(bytes[i]) }
        }
        mix(0xff)
    }

    /// The row's two finished lanes.
    @inline(__always) func finish() -> (UInt64, UInt64) { (Self.splitmix(a), Self.splitmix(b)) }

    private static func splitmix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9e37_79b9_7f4a_7c15
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}
