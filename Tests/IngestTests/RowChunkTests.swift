import FeedFormats
import Foundation
import Testing

@testable import Ingest

/// The reader's chunks: sorted by table and key for the clustered insert, without changing which row wins.
struct RowChunkTests {
    static let textKey = RawTable(name: "t", columns: [("k", "TEXT"), ("v", "INTEGER")], key: ["k"])
    static let numberKey = RawTable(name: "n", columns: [("k", "REAL"), ("v", "INTEGER")], key: ["k"])

    /// The lines of a chunk's rows in insertion order, with the table index when there are several.
    static func lines(_ chunk: RowChunk) -> [Int] {
        var lines: [Int] = []
        chunk.withRows { rows in lines = rows.map(\.line) }
        return lines
    }

    @Test func rowsOfOneKeyKeepTheirFileOrder() {
        var chunk = RowChunk(keys: [RowChunk.SortKey(table: Self.textKey)])
        for (line, key) in ["b", "a", "b", "c", "a"].enumerated() {
            chunk.append(table: 0, line: line + 1, values: [.text(key), .integer(Int64(line))])
        }
        #expect(Self.lines(chunk) == [1, 2, 3, 4, 5])
        #expect(Self.lines(chunk.sorted()) == [2, 5, 1, 3, 4])
    }

    @Test func tablesSortFirstAndValuesReadBackAsWritten() {
        var chunk = RowChunk(keys: [RowChunk.SortKey(table: Self.textKey), RowChunk.SortKey(table: Self.numberKey)])
        chunk.append(table: 1, line: 1, values: [.real(2.5), .null])
        chunk.append(table: 0, line: 2, values: [.text("zé"), .integer(-7)])
        chunk.append(table: 0, line: 3, values: [.text(""), .integer(Int64.max)])
        var seen: [String] = []
        chunk.sorted().withRows { rows in
            for row in rows {
                var values: [String] = []
                row.forEachValue { value in
                    switch value {
                    case .null: values.append("null")
                    case .integer(let v): values.append("\(v)")
                    case .real(let v): values.append("\(v)")
                    case .text(let pointer, let length):
                        values.append(
                            "'"
                                + String(
                                    decoding: UnsafeRawBufferPointer(start: pointer, count: Int(length)),
                                    as: UTF8.self) + "'")
                    }
                }
                seen.append("\(row.table):\(row.line) \(values.joined(separator: " "))")
            }
        }
        #expect(seen == ["0:3 '' \(Int64.max)", "0:2 'zé' -7", "1:1 2.5 null"])
    }

    @Test func numbersSortByValueAndEqualNumbersOfEitherTypeStayInOrder() {
        var chunk = RowChunk(keys: [RowChunk.SortKey(table: Self.numberKey)])
        let keys: [FieldValue] = [
            .real(10), .integer(-3), .real(1.0), .integer(1), .real(-0.5), .real(-0.0), .integer(0),
        ]
        for (line, key) in keys.enumerated() { chunk.append(table: 0, line: line + 1, values: [key, .null]) }
        // 1.0 and 1 are one key to SQLite, as are -0.0 and 0: their file order decides the winner.
        #expect(Self.lines(chunk.sorted()) == [2, 5, 6, 7, 3, 4, 1])
    }

    @Test func aKeyValueSQLiteWouldConvertLeavesTheChunkInFileOrder() {
        // Text in a numeric key column: SQLite's affinity may turn "1" into 1, so no order is assumed.
        var chunk = RowChunk(keys: [RowChunk.SortKey(table: Self.numberKey)])
        chunk.append(table: 0, line: 1, values: [.integer(2), .null])
        chunk.append(table: 0, line: 2, values: [.text("1"), .null])
        chunk.append(table: 0, line: 3, values: [.integer(1), .null])
        #expect(Self.lines(chunk.sorted()) == [1, 2, 3])
    }
}
