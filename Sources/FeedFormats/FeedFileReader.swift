import Foundation

/// Reads one file of a feed, streaming, into typed rows and rejected rows.
///
/// The reader never holds the file in memory: delimited and JSON Lines files are read in 256 KiB chunks and split
/// on bytes (fields are parsed straight from the chunk), the formulary XML is parsed by `XMLParser` from a
/// stream. Columns are picked from the header **by name** (case and surrounding blanks ignored), so extra
/// columns and any column order are fine; a missing required column rejects the whole file.
///
/// Per data record the reader calls exactly one of `row` (a typed row, values in the order of the table's
/// ``TableLayout/outputColumns``) or `rejected` (the record's first problem). Whole-file problems throw
/// ``FeedFormatError``. The values array handed to `row` is reused for the next row: keep it if you like (it is
/// copied on write), but copying it per row costs an allocation.
///
/// ```swift
/// let reader = FeedFileReader(layout: FeedLayouts.layout(for: "xponent")!)
/// var rows = 0
/// try reader.read(
///     file: URL(fileURLWithPath: "landing/xponent/2025-03-10/xponent.csv"), name: "xponent/2025-03-10/xponent.csv",
///     row: { table, line, values in rows += 1 },          // values[0] == .text("XP00000001"), ...
///     rejected: { issue in print(issue) })                 // xponent/2025-03-10/xponent.csv, line 7, TRX: not a number: "n/a"
/// ```
public struct FeedFileReader: Sendable {
    public let layout: FeedLayout

    public init(layout: FeedLayout) { self.layout = layout }

    /// The reader of a feed named in shared/spec/feeds.md (`xponent`, `nppes`, ...).
    public init(feed: String) throws {
        guard let layout = FeedLayouts.layout(for: feed) else {
            throw FeedFormatError(
                .unknownFeed, file: feed,
                "\(feed): not a known feed; known feeds are \(FeedLayouts.all.map(\.feed).joined(separator: ", ")).")
        }
        self.layout = layout
    }

    /// Calls `row(table, line, values)` for every valid row and `rejected` for every row that fails.
    ///
    /// - Parameters:
    ///   - file: The file to read.
    ///   - name: How messages name the file (default: its last path component), e.g. the path in the batch folder.
    ///   - row: The table's index in ``FeedLayout/tables``, the 1-based line the record starts on, and the values.
    ///   - rejected: The record's first problem, for quarantine.
    /// - Throws: ``FeedFormatError`` when the whole file is unusable (unreadable, empty, a missing required
    ///   column, malformed XML), and whatever `row` or `rejected` throw.
    public func read(
        file: URL, name: String? = nil, row: (Int, Int, [FieldValue]) throws -> Void,
        rejected: (RowIssue) throws -> Void
    ) throws {
        let name = name ?? file.lastPathComponent
        switch layout.format {
        case .delimited(let delimiter, let quoted):
            let source = try ByteSource(url: file, name: name)
            try readDelimited(
                source: source, fileName: file.lastPathComponent, delimiter: delimiter, quoted: quoted, row: row,
                rejected: rejected)
        case .jsonLines:
            let source = try ByteSource(url: file, name: name)
            try readJSONLines(source: source, fileName: file.lastPathComponent, row: row, rejected: rejected)
        case .formularyXML:
            try FormularyReader(layout: layout).read(file: file, name: name, row: row, rejected: rejected)
        }
    }

    /// Calls `body` with every data record of the file: a typed row or a rejection, with its table and line.
    ///
    /// ```swift
    /// try FeedFileReader(feed: "formulary").forEach(file: url) { record in
    ///     switch record.content {
    ///     case .row(let values): insert(values, into: FeedLayouts.formulary.tables[record.table].name)
    ///     case .rejected(let issue): quarantine(issue)
    ///     }
    /// }
    /// ```
    public func forEach(file: URL, name: String? = nil, _ body: (FeedRecord) throws -> Void) throws {
        try read(
            file: file, name: name,
            row: { table, line, values in try body(FeedRecord(table: table, line: line, content: .row(values))) },
            rejected: { issue in
                try body(FeedRecord(table: tableIndex(of: issue), line: issue.line, content: .rejected(issue)))
            })
    }

    /// The table a rejected record belongs to: the formulary names it in the issue's column (`table.attribute`).
    private func tableIndex(of issue: RowIssue) -> Int {
        guard layout.tables.count > 1, let dot = issue.column.firstIndex(of: ".") else { return 0 }
        let table = issue.column[..<dot]
        return layout.tables.firstIndex { $0.name == table } ?? 0
    }

    static let truncatedHint = " (the file's last line has no line end: truncated delivery?)"

    // MARK: Delimited

    private func readDelimited(
        source: ByteSource, fileName: String, delimiter: UInt8, quoted: Bool,
        row: (Int, Int, [FieldValue]) throws -> Void, rejected: (RowIssue) throws -> Void
    ) throws {
        let name = source.name
        var builder = RowBuilder(table: layout.tables[0], fileName: fileName, name: name)
        let rules = builder.rules
        let columnCount = rules.count
        var positions: [Int] = []
        var headerNames: [String] = []
        var sawHeader = false
        try DelimitedTokenizer(delimiter: delimiter, quoted: quoted).forEachRecord(in: source) { record in
            guard sawHeader else {
                sawHeader = true
                headerNames = (0..<record.count).map { record.string($0).trimmingCharacters(in: .whitespaces) }
                positions = try Self.positions(
                    of: builder.table, in: headerNames, name: name, line: record.line)
                return
            }
            let hint = record.lastWithoutNewline ? Self.truncatedHint : ""
            func rejectRecord(_ reason: String) throws {
                try rejected(
                    RowIssue(
                        file: name, line: record.line, column: "(row)", rawValue: record.text(delimiter: delimiter),
                        reason: reason + hint))
            }
            if record.unterminatedQuote {
                return try rejectRecord("a quoted field is not closed before the end of the file")
            }
            if record.count != headerNames.count {
                // Trailing empty fields (a delimiter at the end of the line) are harmless; anything else shifts.
                let harmless =
                    record.count > headerNames.count
                    && (headerNames.count..<record.count).allSatisfy { record.rawField($0).isEmpty }
                if !harmless {
                    return try rejectRecord(
                        "the row has \(record.count) fields, the header has \(headerNames.count)")
                }
            }
            if let stray = record.strayTextAfterQuote {
                try rejected(
                    RowIssue(
                        file: name, line: record.line,
                        column: stray < headerNames.count ? headerNames[stray] : "(row)",
                        rawValue: record.string(stray),
                        reason:
                            "text after the closing quote of a quoted field (a quote inside a value must be doubled)"
                            + hint))
                return
            }
            for c in 0..<columnCount {
                let position = positions[c]
                guard position >= 0 else {
                    builder.values[c] = .null
                    continue
                }
                switch record.withField(position, { rules[c].parse($0) }) {
                case .success(let value):
                    builder.values[c] = value
                case .failure(let problem):
                    try rejected(
                        RowIssue(
                            file: name, line: record.line, column: headerNames[position],
                            rawValue: record.string(position), reason: problem.description + hint))
                    return
                }
            }
            if let issue = builder.finish(line: record.line) {
                try rejected(issue)
            } else {
                try row(0, record.line, builder.values)
            }
        }
        if !sawHeader {
            throw FeedFormatError(
                .emptyFile, file: name, line: 1,
                "\(name): the file is empty (no header line); the batch is rejected. Ask the sender to re-deliver it.")
        }
    }

    /// Where each of the table's columns sits in the header (-1 when absent and optional).
    static func positions(of table: TableLayout, in header: [String], name: String, line: Int) throws -> [Int] {
        let lowered = header.map { $0.lowercased() }
        let positions = table.columns.map { lowered.firstIndex(of: $0.source.lowercased()) ?? -1 }
        let missing = zip(table.columns, positions).filter { $0.0.required && $0.1 < 0 }.map(\.0.source)
        guard missing.isEmpty else {
            let list = missing.map { "\"\($0)\"" }.joined(separator: ", ")
            throw FeedFormatError(
                .missingColumn, file: name, line: line,
                "\(name): missing required column\(missing.count == 1 ? "" : "s") \(list) in the header on line "
                    + "\(line); the batch is rejected whole. Ask the sender for a re-delivery with the "
                    + "column\(missing.count == 1 ? "" : "s") (the header has \(header.count) columns; "
                    + "names are matched ignoring case).")
        }
        return positions
    }

    // MARK: JSON Lines

    private func readJSONLines(
        source: ByteSource, fileName: String, row: (Int, Int, [FieldValue]) throws -> Void,
        rejected: (RowIssue) throws -> Void
    ) throws {
        let name = source.name
        var builder = RowBuilder(table: layout.tables[0], fileName: fileName, name: name)
        let rules = builder.rules
        let columns = builder.table.columns
        let scanner = JSONLineScanner(keys: columns.map(\.source))
        var slots = [JSONSlot](repeating: JSONSlot(), count: columns.count)
        var sawLine = false
        let empty = UnsafeBufferPointer<UInt8>(start: nil, count: 0)
        try source.forEachLine { bytes, line, last in
            sawLine = true
            let hint = last ? Self.truncatedHint : ""
            do throws(JSONSyntaxError) {
                try scanner.scan(bytes, into: &slots)
            } catch {
                let text = String(decoding: bytes, as: UTF8.self)
                try rejected(
                    RowIssue(
                        file: name, line: line, column: "(line)",
                        rawValue: text.count > 200 ? String(text.prefix(200)) + "…" : text,
                        reason: error.description + hint))
                return
            }
            for c in 0..<rules.count {
                let slot = slots[c]
                let value = UnsafeBufferPointer(rebasing: bytes[slot.start..<slot.end])
                let result: Result<FieldValue, FieldProblem>
                switch slot.kind {
                case .absent, .null: result = rules[c].parse(empty)
                case .string, .literal: result = rules[c].parse(value)
                case .escapedString: result = JSONLineScanner.unescape(value).withUnsafeBufferPointer(rules[c].parse)
                case .object, .array:
                    result = .failure(
                        "expected a string, number, true, false or null, found a JSON \(slot.kind == .object ? "object" : "array")"
                    )
                }
                switch result {
                case .success(let typed):
                    builder.values[c] = typed
                case .failure(let problem):
                    let raw =
                        slot.kind == .escapedString
                        ? String(decoding: JSONLineScanner.unescape(value), as: UTF8.self)
                        : String(decoding: value, as: UTF8.self)
                    try rejected(
                        RowIssue(
                            file: name, line: line, column: columns[c].source, rawValue: raw,
                            reason: problem.description + hint))
                    return
                }
            }
            if let issue = builder.finish(line: line) {
                try rejected(issue)
            } else {
                try row(0, line, builder.values)
            }
        }
        if !sawLine {
            throw FeedFormatError(
                .emptyFile, file: name, line: 1,
                "\(name): the file is empty (no JSON line); the batch is rejected. Ask the sender to re-deliver it.")
        }
    }

    static func describe(_ value: FieldValue) -> String {
        switch value {
        case .null: return ""
        case .integer(let v): return String(v)
        case .real(let v): return String(v)
        case .text(let v): return v
        }
    }
}

/// A table's compiled rules and the row being built: read values first, then derived ones, in one reused array.
struct RowBuilder {
    let table: TableLayout
    let rules: [FieldRule]
    let derived: [DerivedColumn]
    let rowRule: (@Sendable ([FieldValue]) -> (column: String, reason: String)?)?
    /// The file's last path component, for derived columns (partd's data year).
    let fileName: String
    /// The file as messages name it.
    let name: String
    var values: [FieldValue]

    init(table: TableLayout, fileName: String, name: String) {
        self.table = table
        rules = table.columns.map(FieldRule.init)
        derived = table.derived
        rowRule = table.rowRule
        self.fileName = fileName
        self.name = name
        values = Array(repeating: .null, count: table.columns.count + table.derived.count)
    }

    /// Checks the table's row rule over the read values and computes the derived ones; the rule's problem, if any.
    mutating func finish(line: Int) -> RowIssue? {
        if let rowRule, let problem = rowRule(values) {
            let raw = table.index(of: problem.column).map { FeedFileReader.describe(values[$0]) } ?? ""
            return RowIssue(file: name, line: line, column: problem.column, rawValue: raw, reason: problem.reason)
        }
        let readCount = rules.count
        for k in 0..<derived.count {
            let value = derived[k].compute(values, fileName)
            values[readCount + k] = value
        }
        return nil
    }
}
