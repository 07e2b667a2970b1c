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
    /// The file may be plain, gzipped, or a zip archive (told by its first bytes): a gzip file is inflated as it
    /// is read, and of an archive every member ``FeedLayout/isDataFile(_:)`` accepts is read in turn, inflated
    /// as it goes (messages name it `ARCHIVE/MEMBER`); the others are listed in the report. Nothing is ever
    /// decompressed whole, in memory or on disk.
    ///
    /// - Parameters:
    ///   - file: The file to read.
    ///   - name: How messages name the file (default: its last path component), e.g. the path in the batch folder.
    ///   - row: The table's index in ``FeedLayout/tables``, the 1-based line the record starts on, and the values.
    ///   - rejected: The record's first problem, for quarantine.
    /// - Returns: What was read and what was left: the file itself when it is no data file (a PDF, a CMS
    ///   `_fileheader.csv`), the members of an archive that are not.
    /// - Throws: ``FeedFormatError`` when the whole file is unusable (unreadable, empty, a missing or duplicated
    ///   required column, malformed XML, a damaged archive or one without a data file), and whatever `row` or
    ///   `rejected` throw.
    @discardableResult
    public func read(
        file: URL, name: String? = nil, row: (Int, Int, [FieldValue]) throws -> Void,
        rejected: (RowIssue) throws -> Void
    ) throws -> FileReport {
        let name = name ?? file.lastPathComponent
        let input = try FileInput(path: file.path, name: name)
        let fileName = file.lastPathComponent
        var report = FileReport()
        switch Packing.of(try input.bytes(at: 0, count: 8)) {
        case .plain:
            guard layout.isDataFile(fileName) else {
                report.ignored.append(fileName)
                return report
            }
            if case .formularyXML = layout.format {
                try FormularyReader(layout: layout).read(file: file, name: name, row: row, rejected: rejected)
            } else {
                try read(input: input, fileName: fileName, name: name, row: row, rejected: rejected)
            }
            report.read.append(fileName)
        case .gzip:
            let inner = Self.withoutCompressionSuffix(fileName)
            guard layout.isDataFile(inner) else {
                report.ignored.append(fileName)
                return report
            }
            let inflated = try InflateInput(source: input, mode: .gzip, name: name)
            try read(input: inflated, fileName: inner, name: name, row: row, rejected: rejected)
            report.read.append(fileName)
        case .zip:
            let archive = try ZipArchive(file: input)
            for member in archive.members where !member.isDirectory {
                guard layout.isDataFile(member.path) else {
                    report.ignored.append(member.path)
                    continue
                }
                let memberName = "\(name)/\(member.path)"
                try read(
                    input: try archive.input(for: member, name: memberName), fileName: member.fileName,
                    name: memberName, row: row, rejected: rejected)
                report.read.append(member.path)
            }
            if report.read.isEmpty {
                let held = report.ignored.isEmpty ? "nothing" : report.ignored.joined(separator: ", ")
                throw FeedFormatError(
                    .noDataFile, file: name,
                    "\(name): the zip archive holds no \(layout.feed) data file (it holds \(held)); the batch is "
                        + "rejected. Ask the sender for the archive with the data file, or drop the file itself "
                        + "into the batch folder.")
            }
        case .unsupported(let kind):
            throw FeedFormatError(
                .unsupportedCompression, file: name,
                "\(name): the file is compressed with \(kind), which the mesh does not read; the batch is rejected. "
                    + "Deliver it uncompressed, gzipped (.gz) or zipped (.zip).")
        }
        return report
    }

    /// `npidata.csv.gz` → `npidata.csv`: the name the data year and the file checks see.
    static func withoutCompressionSuffix(_ fileName: String) -> String {
        for suffix in [".gz", ".gzip", ".GZ"] where fileName.hasSuffix(suffix) {
            return String(fileName.dropLast(suffix.count))
        }
        return fileName
    }

    private func read(
        input: ByteInput, fileName: String, name: String, row: (Int, Int, [FieldValue]) throws -> Void,
        rejected: (RowIssue) throws -> Void
    ) throws {
        switch layout.format {
        case .delimited(let delimiter, let quoted):
            let source = try ByteSource(input: input, name: name)
            try readDelimited(
                source: source, fileName: fileName, delimiter: delimiter, quoted: quoted, row: row,
                rejected: rejected)
        case .jsonLines:
            let source = try ByteSource(input: input, name: name)
            try readJSONLines(source: source, fileName: fileName, row: row, rejected: rejected)
        case .formularyXML:
            throw FeedFormatError(
                .unsupportedCompression, file: name,
                "\(name): the formulary XML is read only uncompressed; the batch is rejected. Deliver the XML "
                    + "document itself.")
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

    /// The reason for a field's byte that is not text.
    static func notText(_ problem: TextCheck.Problem, fileOffset: Int, encoding: TextEncoding) -> String {
        let advice =
            encoding == .utf8
            ? "; the feed is read as UTF-8: if the sender writes another encoding, its layout must say so"
            : ""
        return "\(problem.description) at byte offset \(fileOffset) of the file (byte \(problem.index + 1) of the "
            + "value)\(problem.description.hasPrefix("bytes") ? advice : "")"
    }

    // MARK: Delimited

    private func readDelimited(
        source: ByteSource, fileName: String, delimiter: UInt8, quoted: Bool,
        row: (Int, Int, [FieldValue]) throws -> Void, rejected: (RowIssue) throws -> Void
    ) throws {
        let name = source.name
        let encoding = layout.encoding
        var builder = RowBuilder(table: layout.tables[0], fileName: fileName, name: name, encoding: encoding)
        let rules = builder.rules
        let columnCount = rules.count
        var positions: [Int] = []
        var slots: [[(value: Int, flag: Int)]] = []
        let flagValues = builder.table.columns.map { Array(($0.slots?.flagValue ?? "").utf8) }
        var headerNames: [String] = []
        var sawHeader = false
        try DelimitedTokenizer(delimiter: delimiter, quoted: quoted).forEachRecord(in: source) { record in
            guard sawHeader else {
                sawHeader = true
                headerNames = (0..<record.count).map {
                    record.string($0, encoding: encoding).trimmingCharacters(in: .whitespaces)
                }
                positions = try Self.positions(
                    of: builder.table, in: headerNames, name: name, line: record.line)
                slots = try Self.slotPositions(of: builder.table, in: headerNames, name: name, line: record.line)
                if let rule = builder.table.fileRule {
                    let present = Set(zip(builder.table.columns, positions).filter { $0.1 >= 0 }.map(\.0.name))
                    if let problem = rule(fileName, { present.contains($0) }) {
                        throw FeedFormatError(
                            .fileRule, file: name, line: record.line,
                            "\(name): \(problem); the batch is rejected whole.")
                    }
                }
                return
            }
            let hint = record.lastWithoutNewline ? Self.truncatedHint : ""
            func rejectRecord(_ reason: String, column: String = "(row)") throws {
                try rejected(
                    RowIssue(
                        file: name, line: record.line, column: column,
                        rawValue: record.text(delimiter: delimiter, encoding: encoding), reason: reason + hint))
            }
            if let (field, at) = record.unclosedQuote {
                let column = field < headerNames.count ? headerNames[field] : "(row)"
                let offset = record.fileOffset + at
                return try rejectRecord(
                    record.unterminatedQuote
                        ? "the quote that opens this field at byte offset \(offset) of the file is not closed "
                            + "before the end of the file"
                        : "the quote that opens this field at byte offset \(offset) of the file is not closed on "
                            + "its line (a quote inside a value must be doubled); the line is quarantined alone "
                            + "and reading resumes on the next line",
                    column: column)
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
                        rawValue: record.string(stray, encoding: encoding),
                        reason:
                            "text after the closing quote of a quoted field (a quote inside a value must be doubled)"
                            + hint))
                return
            }
            for c in 0..<columnCount {
                var position = positions[c]
                if !slots[c].isEmpty {
                    // The flagged slot (compared as bytes, blanks around ignored), else the first.
                    for slot in slots[c]
                    where slot.value >= 0 && slot.flag >= 0 && slot.value < record.count
                        && slot.flag < record.count
                    {
                        if FieldParsing.trimmedEqual(record.rawField(slot.flag), flagValues[c])
                            && !FieldParsing.trimmedEqual(record.rawField(slot.value), [])
                        {
                            position = slot.value
                            break
                        }
                    }
                }
                guard position >= 0 else {
                    builder.values[c] = .null
                    continue
                }
                let raw = record.rawField(position)
                if let problem = TextCheck.problem(raw, encoding: encoding) {
                    let offset = record.fileOffset + record.spans[2 * position] + problem.index
                    try rejected(
                        RowIssue(
                            file: name, line: record.line, column: headerNames[position],
                            rawValue: record.string(position, encoding: encoding),
                            reason: Self.notText(problem, fileOffset: offset, encoding: encoding) + hint))
                    return
                }
                switch record.withField(position, { rules[c].parse($0) }) {
                case .success(let value):
                    builder.values[c] = value
                case .failure(let problem):
                    try rejected(
                        RowIssue(
                            file: name, line: record.line, column: headerNames[position],
                            rawValue: record.string(position, encoding: encoding), reason: problem.description + hint))
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
        try positions(
            of: table.columns.map { [$0.source] + $0.aliases }, table: table, in: header, name: name, line: line)
    }

    /// Where each column's slots and their flags sit (-1 when absent), for the columns with ``ColumnLayout/slots``.
    static func slotPositions(of table: TableLayout, in header: [String], name: String, line: Int) throws
        -> [[(value: Int, flag: Int)]]
    {
        try table.columns.map { column in
            guard let slots = column.slots else { return [] }
            let values = try positions(of: slots.sources.map { [$0] }, table: nil, in: header, name: name, line: line)
            let flags = try positions(of: slots.flags.map { [$0] }, table: nil, in: header, name: name, line: line)
            return Array(zip(values, flags)).map { (value: $0.0, flag: $0.1) }
        }
    }

    /// Where each list of names is in the header; a name found twice rejects the file, and so does a missing
    /// required column of `table`.
    private static func positions(
        of columns: [[String]], table: TableLayout?, in header: [String], name: String, line: Int
    ) throws -> [Int] {
        let lowered = header.map { $0.lowercased() }
        var positions: [Int] = []
        for names in columns {
            let names = Set(names.map { $0.lowercased() })
            let found = lowered.indices.filter { names.contains(lowered[$0]) }
            if found.count > 1 {
                let places = found.map { String($0 + 1) }.joined(separator: " and ")
                throw FeedFormatError(
                    .duplicateColumn, file: name, line: line,
                    "\(name): the header on line \(line) names the column \"\(header[found[0]])\" \(found.count) "
                        + "times (columns \(places)); the batch is rejected whole, since either could be the one "
                        + "meant. Ask the sender for a re-delivery with the column once.")
            }
            positions.append(found.first ?? -1)
        }
        guard let table else { return positions }
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
        let encoding = layout.encoding
        var builder = RowBuilder(table: layout.tables[0], fileName: fileName, name: name, encoding: encoding)
        let rules = builder.rules
        let columns = builder.table.columns
        let scanner = JSONLineScanner(keys: columns.map(\.source))
        var slots = [JSONSlot](repeating: JSONSlot(), count: columns.count)
        var sawLine = false
        let empty = UnsafeBufferPointer<UInt8>(start: nil, count: 0)
        try source.forEachLine { bytes, line, lineOffset, last in
            sawLine = true
            let hint = last ? Self.truncatedHint : ""
            do throws(JSONSyntaxError) {
                try scanner.scan(bytes, into: &slots)
            } catch {
                let text = TextCheck.shown(bytes, encoding: encoding)
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
                func notText(_ checked: UnsafeBufferPointer<UInt8>, escaped: Bool) throws -> Bool {
                    guard let problem = TextCheck.problem(checked, encoding: encoding) else { return false }
                    // An escape (`\u0000`) has no byte of its own: name the string's first byte then.
                    let offset = lineOffset + slot.start + (escaped ? 0 : problem.index)
                    try rejected(
                        RowIssue(
                            file: name, line: line, column: columns[c].source,
                            rawValue: TextCheck.shown(checked, encoding: encoding),
                            reason: Self.notText(problem, fileOffset: offset, encoding: encoding) + hint))
                    return true
                }
                let result: Result<FieldValue, FieldProblem>
                switch slot.kind {
                case .absent, .null: result = rules[c].parse(empty)
                case .string, .literal:
                    if try notText(value, escaped: false) { return }
                    result = rules[c].parse(value)
                case .escapedString:
                    let unescaped = JSONLineScanner.unescape(value)
                    if try unescaped.withUnsafeBufferPointer({ try notText($0, escaped: true) }) { return }
                    result = unescaped.withUnsafeBufferPointer(rules[c].parse)
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
                        ? JSONLineScanner.unescape(value).withUnsafeBufferPointer {
                            TextCheck.shown($0, encoding: encoding)
                        }
                        : TextCheck.shown(value, encoding: encoding)
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

/// What ``FeedFileReader/read(file:name:row:rejected:)`` read of a file, and what it left.
public struct FileReport: Sendable, Hashable {
    /// The files read: the file itself, or the members of its zip archive (paths inside it).
    public var read: [String] = []
    /// The files left unread because the layout reads no such file: the file itself (a PDF, a CMS
    /// `_fileheader.csv`), or members of its archive.
    public var ignored: [String] = []
    public init(read: [String] = [], ignored: [String] = []) {
        self.read = read
        self.ignored = ignored
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
    /// Per read column with a ``FileNameDefault``: its index, the value the file's name gives, and the reason
    /// for rows that have neither.
    private let defaults: [(column: Int, value: FieldValue, missing: String)]

    init(table: TableLayout, fileName: String, name: String, encoding: TextEncoding = .utf8) {
        self.table = table
        rules = table.columns.map { FieldRule($0, encoding: encoding) }
        derived = table.derived
        rowRule = table.rowRule
        self.fileName = fileName
        self.name = name
        values = Array(repeating: .null, count: table.columns.count + table.derived.count)
        defaults = table.fileNameDefaults.compactMap { d in
            table.columns.firstIndex { $0.name == d.column }.map { ($0, d.value(fileName), d.missingReason) }
        }
    }

    /// Fills empty columns from the file's name, checks the table's row rule over the read values and computes
    /// the derived ones; the first problem, if any.
    mutating func finish(line: Int) -> RowIssue? {
        for d in defaults {
            guard case .null = values[d.column] else { continue }
            if case .null = d.value {
                return RowIssue(
                    file: name, line: line, column: table.columns[d.column].source, rawValue: "", reason: d.missing)
            }
            values[d.column] = d.value
        }
        if let rowRule, let problem = rowRule(values) {
            let raw = table.index(of: problem.column).map { FeedFileReader.describe(values[$0]) } ?? ""
            return RowIssue(file: name, line: line, column: problem.column, rawValue: raw, reason: problem.reason)
        }
        let readCount = rules.count
        for k in 0..<derived.count {
            values[readCount + k] = derived[k].compute(values, fileName)
        }
        return nil
    }
}
