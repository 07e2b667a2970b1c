import Foundation
import GRDB
import GRDBSQLite
import Logging
import MeshRuntime
import NIOCore
import PostgresNIO

/// Moves one published table from a SQLite file into PostgreSQL, and digests PostgreSQL's copy the way the
/// runtime digests the SQLite table, so that the two can be compared value for value.
public enum TableCopy {
    /// One value read back from PostgreSQL, typed as SQLite would hold it.
    static func value(_ cell: PostgresCell) throws -> QueryValue {
        guard var bytes = cell.bytes else { return .null }
        if cell.format == .text { return .text(bytes.readString(length: bytes.readableBytes) ?? "") }
        switch cell.dataType {
        case .int8: return .integer(try cell.decode(Int64.self))
        case .int4: return .integer(Int64(try cell.decode(Int32.self)))
        case .int2: return .integer(Int64(try cell.decode(Int16.self)))
        case .bool: return .integer(try cell.decode(Bool.self) ? 1 : 0)
        case .float8: return .real(try cell.decode(Double.self))
        case .float4: return .real(Double(try cell.decode(Float.self)))
        case .numeric:
            // SUM and AVG of bigint give numeric: whole numbers read back as integers, as SQLite gives them.
            let text = try cell.decode(Decimal.self).description
            if let whole = Int64(text) { return .integer(whole) }
            return .real(Double(text) ?? .nan)
        case .bytea: return .blob(Data(bytes.readBytes(length: bytes.readableBytes) ?? []))
        case .text, .varchar, .bpchar, .name: return .text(bytes.readString(length: bytes.readableBytes) ?? "")
        default: return .text((try? cell.decode(String.self)) ?? "(\(cell.dataType))")
        }
    }

    /// The PostgreSQL type of each column: from the types its values have in SQLite (one scan): every
    /// integer → bigint, real (with or without integers) → double precision, text → text, blob → bytea. A
    /// column with no values takes the type of its contract, else its declared type, so that an empty first
    /// version has the types later ones will have.
    static func columnTypes(of table: String, in db: Database, contract: OutputPort) throws -> [(
        name: String, type: String
    )] {
        let columns = try db.columns(in: table)
        guard !columns.isEmpty else { return [] }
        let probes = columns.map { column -> String in
            let c = quoteIdentifier(column.name)
            return
                "MAX(typeof(\(c)) = 'integer'), MAX(typeof(\(c)) = 'real'), MAX(typeof(\(c)) = 'text'), MAX(typeof(\(c)) = 'blob')"
        }
        let row = try Row.fetchOne(db, sql: "SELECT \(probes.joined(separator: ", ")) FROM \(quoteIdentifier(table))")
        return columns.enumerated().map { index, column in
            let has = { (offset: Int) -> Bool in (row?[index * 4 + offset] as Int64?) == 1 }
            if has(3) { return (column.name, "bytea") }
            if has(2) { return (column.name, "text") }
            if has(1) { return (column.name, "double precision") }
            if has(0) { return (column.name, "bigint") }
            let declared =
                contract.columns.first { $0.name.lowercased() == column.name.lowercased() }?.type.uppercased()
                ?? column.type.uppercased()
            if declared.contains("INT") { return (column.name, "bigint") }
            if declared.contains("REAL") || declared.contains("FLOA") || declared.contains("DOUB") {
                return (column.name, "double precision")
            }
            if declared.contains("BLOB") { return (column.name, "bytea") }
            return (column.name, "text")
        }
    }

    /// Creates the table in `schema`, streams its rows with `COPY … FROM STDIN`, indexes its grain and
    /// writes the data dictionary as comments. Returns the rows loaded.
    static func load(
        _ port: OutputPort, from source: DatabaseQueue, into schema: String, on connection: PostgresConnection,
        domain: DomainID, logger: Logger
    ) async throws -> Int {
        let table = port.table
        let columns = try await source.read { db in try columnTypes(of: table, in: db, contract: port) }
        guard !columns.isEmpty else {
            throw PostgresEngineError("\(domain): the build has no table \(table) to load")
        }
        try await PostgresEngine.execute(
            "CREATE TABLE \(quoteIdentifier(schema)).\(quoteIdentifier(table)) ("
                + columns.map { "\(quoteIdentifier($0.name)) \($0.type)" }.joined(separator: ", ") + ")",
            on: connection, logger: logger)
        try await PostgresEngine.execute(
            "SET search_path TO \(quoteIdentifier(schema))", on: connection, logger: logger)
        // Rows go through a bounded buffer: a reader thread fills it from SQLite while COPY drains it, so memory
        // stays flat whatever the table's size. The reader blocks (SQLite is synchronous), so it runs on a
        // thread of its own, never on the concurrency pool that COPY's writer needs.
        let (stream, continuation) = AsyncThrowingStream.makeStream(
            of: ByteBuffer.self, bufferingPolicy: .bufferingOldest(8))
        let reader = ReaderState()
        Thread.detachNewThread {
            do {
                try source.read { db in
                    try encodeRows(of: table, columns: columns.count, in: db) { chunk in
                        // Wait while COPY is behind.
                        while true {
                            if case .enqueued = continuation.yield(chunk) { return }
                            if reader.cancelled { throw CancellationError() }
                            usleep(200)
                        }
                    } counted: {
                        reader.rows = $0
                    }
                }
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        do {
            try await connection.copyFrom(table: table, columns: columns.map(\.name), logger: logger) { writer in
                for try await chunk in stream { try await writer.write(chunk) }
            }
        } catch {
            reader.cancelled = true
            throw PostgresEngineError(
                "loading \(domain).\(table) into PostgreSQL failed: \(PostgresEngineError.describe(error))")
        }
        try await PostgresEngine.execute("RESET search_path", on: connection, logger: logger)
        let grain = port.grain.filter { name in columns.contains { $0.name == name } }
        if !grain.isEmpty {
            try await PostgresEngine.execute(
                "CREATE INDEX ON \(quoteIdentifier(schema)).\(quoteIdentifier(table)) (\(grain.map(quoteIdentifier).joined(separator: ", ")))",
                on: connection, logger: logger)
        }
        if !port.description.isEmpty {
            try await PostgresEngine.execute(
                "COMMENT ON TABLE \(quoteIdentifier(schema)).\(quoteIdentifier(table)) IS \(quoteLiteral(port.description))",
                on: connection,
                logger: logger)
        }
        for column in port.columns
        where !column.description.isEmpty && columns.contains(where: { $0.name == column.name }) {
            try await PostgresEngine.execute(
                "COMMENT ON COLUMN \(quoteIdentifier(schema)).\(quoteIdentifier(table)).\(quoteIdentifier(column.name)) IS \(quoteLiteral(column.description))",
                on: connection, logger: logger)
        }
        return reader.rows
    }

    /// What the reader thread and the COPY task share.
    final class ReaderState: @unchecked Sendable {
        // Both properties are read and written under `lock`.
        private let lock = NSLock()
        private var _rows = 0
        private var _cancelled = false
        /// Rows the reader encoded (set before it finishes the stream).
        var rows: Int {
            get { lock.withLock { _rows } }
            set { lock.withLock { _rows = newValue } }
        }
        /// Set when COPY failed: the reader stops.
        var cancelled: Bool {
            get { lock.withLock { _cancelled } }
            set { lock.withLock { _cancelled = newValue } }
        }
    }

    /// Encodes a table's rows in COPY's text format, in chunks of about 1 MiB.
    static func encodeRows(
        of table: String, columns: Int, in db: Database, chunk emit: (ByteBuffer) throws -> Void,
        counted: (Int) -> Void
    ) throws {
        let statement = try db.makeStatement(sql: "SELECT * FROM \(quoteIdentifier(table))")
        let handle = statement.sqliteStatement
        var buffer = ByteBufferAllocator().buffer(capacity: 1 << 20 + 4096)
        var rows = 0
        while true {
            let code = sqlite3_step(handle)
            if code == SQLITE_DONE { break }
            guard code == SQLITE_ROW else {
                throw PostgresEngineError("reading \(table): \(String(cString: sqlite3_errmsg(db.sqliteConnection)))")
            }
            for index in 0..<Int32(columns) {
                if index > 0 { buffer.writeInteger(UInt8(ascii: "\t")) }
                switch sqlite3_column_type(handle, index) {
                case SQLITE_NULL:
                    buffer.writeStaticString("\\N")
                case SQLITE_INTEGER:
                    buffer.writeString(String(sqlite3_column_int64(handle, index)))
                case SQLITE_FLOAT:
                    let value = sqlite3_column_double(handle, index)
                    // Swift prints the shortest text that reads back as the same double.
                    buffer.writeString(
                        value.isNaN ? "NaN" : value.isInfinite ? (value < 0 ? "-Infinity" : "Infinity") : "\(value)")
                case SQLITE_TEXT:
                    let count = Int(sqlite3_column_bytes(handle, index))
                    if let text = sqlite3_column_text(handle, index) {
                        for offset in 0..<count { writeEscaped(text[offset], to: &buffer) }
                    }
                default:
                    let count = Int(sqlite3_column_bytes(handle, index))
                    buffer.writeStaticString("\\\\x")
                    if let blob = sqlite3_column_blob(handle, index) {
                        let bytes = blob.assumingMemoryBound(to: UInt8.self)
                        buffer.writeString(Fingerprint.hex(UnsafeBufferPointer(start: bytes, count: count)))
                    }
                }
            }
            buffer.writeInteger(UInt8(ascii: "\n"))
            rows += 1
            if buffer.readableBytes >= 1 << 20 {
                try emit(buffer)
                buffer = ByteBufferAllocator().buffer(capacity: 1 << 20 + 4096)
            }
        }
        if buffer.readableBytes > 0 { try emit(buffer) }
        counted(rows)
    }

    @inline(__always) static func writeEscaped(_ byte: UInt8, to buffer: inout ByteBuffer) {
        switch byte {
        case UInt8(ascii: "\\"): buffer.writeStaticString("\\\\")
        case UInt8(ascii: "\t"): buffer.writeStaticString("\\t")
        case UInt8(ascii: "\n"): buffer.writeStaticString("\\n")
        case UInt8(ascii: "\r"): buffer.writeStaticString("\\r")
        default: buffer.writeInteger(byte)
        }
    }

    /// The columns of a table in a schema, in order, as `name type`.
    static func columns(of table: String, in schema: String, on connection: PostgresConnection, logger: Logger)
        async throws -> [String]
    {
        let rows = try await connection.query(
            """
            SELECT a.attname || ' ' || format_type(a.atttypid, a.atttypmod) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = \(schema) AND c.relname = \(table) AND a.attnum > 0 AND NOT a.attisdropped
            ORDER BY a.attnum
            """, logger: logger)
        var names: [String] = []
        for try await name in rows.decode(String.self) { names.append(name) }
        return names
    }

    /// Digests PostgreSQL's copy of a table exactly as `Fingerprint.digest(table:in:)` digests SQLite's.
    public static func digest(
        table: String, in schema: String, on connection: PostgresConnection, logger: Logger
    ) async throws -> (rowCount: Int, digest: String) {
        var digester = Fingerprint.TableDigester()
        let rows = try await connection.query(
            PostgresQuery(unsafeSQL: "SELECT * FROM \(quoteIdentifier(schema)).\(quoteIdentifier(table))"),
            logger: logger)
        for try await row in rows {
            for cell in row {
                guard let bytes = cell.bytes else {
                    digester.null()
                    continue
                }
                switch (cell.format, cell.dataType) {
                case (.binary, .int8):
                    digester.integer(bytes.getInteger(at: bytes.readerIndex, as: Int64.self) ?? 0)
                case (.binary, .float8):
                    digester.real(Double(bitPattern: bytes.getInteger(at: bytes.readerIndex, as: UInt64.self) ?? 0))
                case (_, .bytea):
                    bytes.withUnsafeReadableBytes { digester.blob($0.bindMemory(to: UInt8.self)) }
                default:
                    bytes.withUnsafeReadableBytes { digester.text($0.bindMemory(to: UInt8.self)) }
                }
            }
            digester.endRow()
        }
        return (digester.rowCount, digester.digest)
    }
}
