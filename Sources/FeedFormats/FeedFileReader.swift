import Foundation

#if canImport(FoundationXML)
    import FoundationXML
#endif

/// Reads one file of a feed into typed rows and rejected rows.
///
/// ```swift
/// let reader = FeedFileReader(layout: FeedLayouts.layout(for: "xponent")!)
/// try reader.read(file: url, name: "xponent/2025-03-10/xponent.csv",
///                 row: { table, line, values in /* insert */ },
///                 rejected: { issue in /* quarantine */ })
/// ```
public struct FeedFileReader: Sendable {
    public let layout: FeedLayout
    public init(layout: FeedLayout) { self.layout = layout }

    /// Calls `row(table, line, values)` for every valid row (values in the table's `outputColumns` order)
    /// and `rejected` for every row that fails, with the first problem found. Throws `FeedFormatError` when
    /// the whole file is unusable (a missing required column, malformed XML, an empty file).
    public func read(
        file: URL, name: String? = nil, row: (Int, Int, [FieldValue]) throws -> Void,
        rejected: (RowIssue) throws -> Void
    ) throws {
        let name = name ?? file.lastPathComponent
        switch layout.format {
        case .delimited(let delimiter, let quoted):
            try readDelimited(
                file: file, name: name, delimiter: delimiter, quoted: quoted, row: row, rejected: rejected)
        case .jsonLines:
            try readJSONLines(file: file, name: name, row: row, rejected: rejected)
        case .formularyXML:
            try FormularyReader(layout: layout).read(file: file, name: name, row: row, rejected: rejected)
        }
    }

    /// Finishes a row: checks the table's rule and appends derived columns.
    static func complete(
        _ values: [FieldValue], table: TableLayout, line: Int, fileName: String
    ) -> Result<[FieldValue], RowIssue> {
        if let rule = table.rowRule, let problem = rule(values) {
            let index = table.index(of: problem.column)
            let raw = index.map { describe(values[$0]) } ?? ""
            return .failure(RowIssue(line: line, column: problem.column, rawValue: raw, reason: problem.reason))
        }
        guard !table.derived.isEmpty else { return .success(values) }
        var complete = values
        complete.reserveCapacity(values.count + table.derived.count)
        for derived in table.derived { complete.append(derived.compute(values, fileName)) }
        return .success(complete)
    }

    static func describe(_ value: FieldValue) -> String {
        switch value {
        case .null: return ""
        case .integer(let v): return String(v)
        case .real(let v): return String(v)
        case .text(let v): return v
        }
    }

    // MARK: Delimited

    private func readDelimited(
        file: URL, name: String, delimiter: UInt8, quoted: Bool, row: (Int, Int, [FieldValue]) throws -> Void,
        rejected: (RowIssue) throws -> Void
    ) throws {
        let table = layout.tables[0]
        var positions: [Int?] = []
        var headerCount = 0
        var sawHeader = false
        var values = [FieldValue](repeating: .null, count: table.columns.count)
        let fileName = file.lastPathComponent
        try DelimitedTokenizer(url: file, delimiter: delimiter, quoted: quoted).forEachRecord { record in
            guard sawHeader else {
                sawHeader = true
                headerCount = record.count
                let header = (0..<record.count).map {
                    record.string($0).trimmingCharacters(in: .whitespaces).lowercased()
                }
                positions = table.columns.map { column in header.firstIndex(of: column.source.lowercased()) }
                let missing = zip(table.columns, positions).filter { $0.0.required && $0.1 == nil }.map(\.0.source)
                guard missing.isEmpty else {
                    throw FeedFormatError(
                        .missingColumn, file: name, line: record.line,
                        "\(name): missing required column\(missing.count == 1 ? "" : "s") \(missing.map { "\"\($0)\"" }.joined(separator: ", ")) "
                            + "in the header on line \(record.line); the batch is rejected whole. Ask the sender for a re-delivery with the column."
                    )
                }
                return
            }
            let truncatedHint =
                record.lastWithoutNewline ? " (the file's last line has no line end: truncated delivery?)" : ""
            if record.unterminatedQuote {
                try rejected(
                    RowIssue(
                        line: record.line, column: "(row)", rawValue: record.text(delimiter: delimiter),
                        reason: "a quoted field is not closed before the end of the file\(truncatedHint)"))
                return
            }
            guard record.count == headerCount else {
                try rejected(
                    RowIssue(
                        line: record.line, column: "(row)", rawValue: record.text(delimiter: delimiter),
                        reason: "the row has \(record.count) fields, the header has \(headerCount)\(truncatedHint)"))
                return
            }
            for (index, column) in table.columns.enumerated() {
                guard let position = positions[index] else {
                    values[index] = .null
                    continue
                }
                switch FieldParsing.value(record.field(position), as: column) {
                case .success(let value):
                    values[index] = value
                case .failure(let reason):
                    try rejected(
                        RowIssue(
                            line: record.line, column: column.source, rawValue: record.string(position),
                            reason: reason.description + truncatedHint))
                    return
                }
            }
            switch Self.complete(values, table: table, line: record.line, fileName: fileName) {
            case .success(let complete): try row(0, record.line, complete)
            case .failure(let issue): try rejected(issue)
            }
        }
        if !sawHeader {
            throw FeedFormatError(
                .emptyFile, file: name, "\(name): the file is empty (no header); the batch is rejected")
        }
    }

    // MARK: JSON Lines

    private func readJSONLines(
        file: URL, name: String, row: (Int, Int, [FieldValue]) throws -> Void, rejected: (RowIssue) throws -> Void
    ) throws {
        let table = layout.tables[0]
        var sawLine = false
        // JSON Lines never quote newlines, so the tokenizer with an impossible delimiter splits lines for us.
        try DelimitedTokenizer(url: file, delimiter: 0, quoted: false).forEachRecord { record in
            sawLine = true
            let bytes = record.field(0)
            let text = record.string(0)
            let object: [String: Any]
            do {
                guard let parsed = try JSONSerialization.jsonObject(with: Data(buffer: bytes)) as? [String: Any] else {
                    try rejected(
                        RowIssue(
                            line: record.line, column: "(line)", rawValue: String(text.prefix(200)),
                            reason: "not a JSON object"))
                    return
                }
                object = parsed
            } catch {
                let hint =
                    record.lastWithoutNewline ? " (the file's last line has no line end: truncated delivery?)" : ""
                try rejected(
                    RowIssue(
                        line: record.line, column: "(line)", rawValue: String(text.prefix(200)),
                        reason: "invalid JSON\(hint)"))
                return
            }
            var values: [FieldValue] = []
            values.reserveCapacity(table.columns.count)
            for column in table.columns {
                let raw = Self.jsonText(object[column.source])
                let result =
                    raw.utf8.withContiguousStorageIfAvailable { FieldParsing.value($0, as: column) }
                    ?? Array(raw.utf8).withUnsafeBufferPointer { FieldParsing.value($0, as: column) }
                switch result {
                case .success(let value): values.append(value)
                case .failure(let reason):
                    try rejected(
                        RowIssue(line: record.line, column: column.source, rawValue: raw, reason: reason.description))
                    return
                }
            }
            switch Self.complete(values, table: table, line: record.line, fileName: file.lastPathComponent) {
            case .success(let complete): try row(0, record.line, complete)
            case .failure(let issue): try rejected(issue)
            }
        }
        if !sawLine {
            throw FeedFormatError(.emptyFile, file: name, "\(name): the file is empty; the batch is rejected")
        }
    }

    static func jsonText(_ value: Any?) -> String {
        guard let value, !(value is NSNull) else { return "" }
        if let string = value as? String { return string }
        if type(of: value) == Bool.self, let bool = value as? Bool { return bool ? "true" : "false" }
        if let int = value as? Int { return String(int) }
        if let double = value as? Double { return String(double) }
        if let number = value as? NSNumber { return number.stringValue }
        return "\(value)"
    }
}
