import Foundation

/// The FeedFormats module's one error type: a problem with a whole file, which rejects its batch.
///
/// Its `description` is a sentence a person can act on: it names the file (as the caller named it, e.g.
/// `xponent/2025-03-10/xponent.csv`), the line and, when known, the column or character, and says what to do.
/// Problems with single rows are not errors but ``RowIssue`` values: the row is quarantined, the rest loads.
///
/// ```swift
/// do {
///     try reader.read(file: url, name: "xponent/2025-03-10/xponent.csv", row: { _, _, _ in }, rejected: { _ in })
/// } catch let error as FeedFormatError where error.code == .missingColumn {
///     print(error)  // xponent/2025-03-10/xponent.csv: missing required column "WEEK_ENDING" in the header on line 1; ...
/// }
/// ```
public struct FeedFormatError: Error, Sendable, CustomStringConvertible, LocalizedError {
    /// What went wrong, for programs.
    public enum Code: String, Sendable {
        /// The header (or the XML root) lacks a required column (attribute).
        case missingColumn
        /// The file holds no header, no line or no document.
        case emptyFile
        /// The XML is not well-formed; `line` and `column` are where the parser stopped.
        case malformedXML
        /// The file cannot be opened or read.
        case unreadable
        /// No layout is declared for the feed.
        case unknownFeed
        /// One record is longer than any real one can be (an unclosed quote swallowing the file).
        case recordTooLong
        /// The header names a column the layout reads more than once.
        case duplicateColumn
        /// A gzip file or zip archive is damaged, cut short, encrypted or split.
        case damagedArchive
        /// The file (or a zip member) is compressed in a way the readers do not inflate.
        case unsupportedCompression
        /// A zip archive holds no file the feed's layout reads.
        case noDataFile
        /// A rule over the whole file fails (its name and header): Part D without a data year.
        case fileRule
    }
    public var code: Code
    /// The file, as the caller named it.
    public var file: String
    /// The 1-based line, when the problem has one.
    public var line: Int?
    /// The 1-based character within the line, when known (XML errors).
    public var column: Int?
    /// The whole sentence, file and position included.
    public var message: String

    public init(_ code: Code, file: String, line: Int? = nil, column: Int? = nil, _ message: String) {
        self.code = code
        self.file = file
        self.line = line
        self.column = column
        self.message = message
    }

    public var description: String { message }
    public var errorDescription: String? { message }
}

/// One problem with one row: where, which field, the raw text, and why. The row goes to quarantine.
///
/// `column` is the vendor's name for the field (`TRX`, `Entity Type Code`, `formulary_coverage.tier` for the
/// XML), or `(row)` when the record as a whole is broken (wrong field count), or `(line)` when a JSON line is not
/// a JSON object. `reason` quotes the offending value for field problems, e.g. `not a number: "12a"`; bytes that
/// are no text (a NUL, invalid UTF-8, an unclosed quote) are named with their byte offset in the file. Only the
/// first problem of a row is reported: one quarantine row per rejected line.
public struct RowIssue: Error, Sendable, Hashable, CustomStringConvertible {
    /// The file, as the caller named it.
    public var file: String
    /// The 1-based physical line the row starts on.
    public var line: Int
    public var column: String
    /// The field's text (or the record's, cut at 200 characters, for `(row)` and `(line)`).
    public var rawValue: String
    public var reason: String

    public init(file: String = "", line: Int, column: String, rawValue: String, reason: String) {
        self.file = file
        self.line = line
        self.column = column
        self.rawValue = rawValue
        self.reason = reason
    }

    /// `file, line N, column C: reason`.
    public var description: String { "\(file), line \(line), \(column): \(reason)" }
}

/// A typed value of a row, in its table's column order (see ``TableLayout/outputColumns``).
///
/// Integers, flags (0/1) and whole counts are `.integer`; decimals are `.real`, computed from the exact
/// integer count of 10^-places (`Double(thousandths) / 1000`), so `(value * 1000).rounded()` gives the exact
/// count back; dates and timestamps are ISO `.text`.
public enum FieldValue: Sendable, Hashable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
}

/// One data record of a file, for ``FeedFileReader/forEach(file:name:_:)``.
public struct FeedRecord: Sendable {
    /// What the record became.
    public enum Content: Sendable {
        /// A typed row, values in the order of the table's ``TableLayout/outputColumns``.
        case row([FieldValue])
        /// The record's first problem: it goes to quarantine.
        case rejected(RowIssue)
    }
    /// The index of the record's table in ``FeedLayout/tables`` (always 0 except for the formulary).
    public var table: Int
    /// The 1-based physical line the record starts on.
    public var line: Int
    public var content: Content
}
