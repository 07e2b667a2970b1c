import Foundation

/// How a feed's files are written.
///
/// Text is UTF-8 unless the layout declares another ``TextEncoding``; a byte-order mark is skipped, CRLF and LF
/// both end lines. Any file may come gzipped or in a zip archive (told by its first bytes, not its name).
public enum FileFormat: Sendable, Hashable {
    /// Delimited text with a header row; `quoted` when fields may be enclosed in double quotes (RFC 4180).
    case delimited(delimiter: UInt8, quoted: Bool)
    /// One JSON object per line.
    case jsonLines
    /// The formulary XML document.
    case formularyXML
}

/// The character encoding of a feed's text.
public enum TextEncoding: String, Sendable, Hashable {
    /// UTF-8: a byte sequence that is not UTF-8 quarantines its row.
    case utf8
    /// Windows-1252 (what some vendors' Windows exports write): read into UTF-8; its five unassigned bytes
    /// (0x81, 0x8D, 0x8F, 0x90, 0x9D) quarantine their row.
    case windows1252
}

/// The type of a column, and how its text is read.
public enum ColumnType: Sendable, Hashable {
    case text
    case integer
    /// A decimal with up to `places` places, read exactly as an integer count of 10^-places (more places are
    /// rounded half away from zero), delivered as the `Double` nearest to that count / 10^places (a REAL).
    case decimal(places: Int)
    /// A date written as `format`, stored as ISO `YYYY-MM-DD`.
    case date(DateFormat)
    /// An ISO 8601 timestamp with offset, stored in UTC as `YYYY-MM-DDTHH:MM:SSZ`.
    case timestamp
    /// A flag (`Y`/`N`, `Y`/empty, `1`/`0`, `true`/`false`, `yes`/`no`, any case), stored as 1 or 0; empty is 0.
    case flag

    /// The SQLite column type for the value: INTEGER, REAL or TEXT.
    public var sqlType: String {
        switch self {
        case .integer, .flag: return "INTEGER"
        case .decimal: return "REAL"
        default: return "TEXT"
        }
    }
}

/// How a date column is written in the vendor's file; every date is delivered as ISO `YYYY-MM-DD`.
public enum DateFormat: String, Sendable, Hashable {
    /// `YYYY-MM-DD`
    case iso
    /// `MM/DD/YYYY`
    case monthDayYear
    /// `YYYYMMDD`
    case compact
}

/// One column: the vendor's header name, our column name, its type and rules.
///
/// ```swift
/// ColumnLayout("Entity Type Code", "entity_type_code", .integer, nullable: false, accepted: ["1", "2"])
/// ```
public struct ColumnLayout: Sendable, Hashable {
    /// The header name in the vendor file (or the JSON key, or the XML attribute).
    public var source: String
    /// The snake_case column name in the raw table.
    public var name: String
    public var type: ColumnType
    /// Whether the header must carry the column (a batch without it is rejected).
    public var required: Bool
    /// Whether an empty value is allowed (it is delivered as `.null`; an empty flag is 0).
    public var nullable: Bool
    /// The values allowed, when the spec lists them, compared with the trimmed text before typing.
    public var accepted: [String]?
    /// Exactly this many characters, when set (NPI 10, NDC11 11).
    public var length: Int?
    /// Digits only, when set.
    public var digits: Bool
    /// Other header names the column goes by (compared like `source`, ignoring case).
    public var aliases: [String]
    /// When set, the value comes from one of several slots of the header: the first whose flag column holds
    /// the flag value (and which is not empty), else `source` (NPPES's primary taxonomy, in 15 slots).
    public var slots: Slots?

    /// Columns of a header that hold the same field several times, one of them flagged as the one to take:
    /// `Healthcare Provider Taxonomy Code_N` and `Healthcare Provider Primary Taxonomy Switch_N`. Only the chosen
    /// slot is typed and checked; the flags are compared as bytes.
    public struct Slots: Sendable, Hashable {
        public var sources: [String]
        public var flags: [String]
        public var flagValue: String
        public init(sources: [String], flags: [String], flagValue: String) {
            self.sources = sources
            self.flags = flags
            self.flagValue = flagValue
        }
    }

    public init(
        _ source: String, _ name: String, _ type: ColumnType = .text, required: Bool = true, nullable: Bool = true,
        accepted: [String]? = nil, length: Int? = nil, digits: Bool = false, aliases: [String] = [],
        slots: Slots? = nil
    ) {
        self.source = source
        self.name = name
        self.type = type
        self.required = required
        self.nullable = nullable
        self.accepted = accepted
        self.length = length
        self.digits = digits
        self.aliases = aliases
        self.slots = slots
    }
}

/// A column computed from the others of the row (a flag such as `npi_valid`) or from the file's name.
///
/// Derived columns carry per-row flags that are not rejections: the row loads and the flag says what is odd
/// about it (`trx_lt_nrx`, `npi_valid`). `compute` gets the read values (in column order) and the file's name
/// (a zip member's, or a gzip file's without `.gz`).
public struct DerivedColumn: Sendable {
    public var name: String
    public var type: ColumnType
    public var compute: @Sendable (_ row: [FieldValue], _ fileName: String) -> FieldValue
    public init(_ name: String, _ type: ColumnType, compute: @escaping @Sendable ([FieldValue], String) -> FieldValue) {
        self.name = name
        self.type = type
        self.compute = compute
    }
}

/// A read column's value for the rows that leave it empty (or a file whose header lacks it), taken from the
/// file's name once per file: Part D's data year.
public struct FileNameDefault: Sendable {
    /// The column (its `name`).
    public var column: String
    public var value: @Sendable (_ fileName: String) -> FieldValue
    /// Why a row is rejected when neither the row nor the name gives a value.
    public var missingReason: String
    public init(
        column: String, missingReason: String, value: @escaping @Sendable (_ fileName: String) -> FieldValue
    ) {
        self.column = column
        self.missingReason = missingReason
        self.value = value
    }
}

/// A table a feed loads into: its columns in order (read ones, then derived ones) and its natural key.
public struct TableLayout: Sendable {
    public var name: String
    public var columns: [ColumnLayout]
    public var derived: [DerivedColumn]
    public var key: [String]
    /// A rule over a typed row (read values, in column order); a result rejects the row, naming the vendor's
    /// column (its `source`) and the reason.
    public var rowRule: (@Sendable ([FieldValue]) -> (column: String, reason: String)?)?
    /// A rule over a whole file, given its name and whether the header carries each column (by `name`): a result
    /// is the reason the file cannot be read (it rejects the batch), e.g. Part D without a data year.
    public var fileRule: (@Sendable (_ fileName: String, _ hasColumn: (String) -> Bool) -> String?)?
    /// Values from the file's name for rows that leave a column empty.
    public var fileNameDefaults: [FileNameDefault]

    public init(
        name: String, columns: [ColumnLayout], derived: [DerivedColumn] = [], key: [String],
        rowRule: (@Sendable ([FieldValue]) -> (column: String, reason: String)?)? = nil,
        fileRule: (@Sendable (String, (String) -> Bool) -> String?)? = nil, fileNameDefaults: [FileNameDefault] = []
    ) {
        self.name = name
        self.columns = columns
        self.derived = derived
        self.key = key
        self.rowRule = rowRule
        self.fileRule = fileRule
        self.fileNameDefaults = fileNameDefaults
    }

    /// Every output column: name and SQLite type, in value order (read columns, then derived ones).
    public var outputColumns: [(name: String, type: String)] {
        columns.map { ($0.name, $0.type.sqlType) } + derived.map { ($0.name, $0.type.sqlType) }
    }

    /// The index of a column among the read ones.
    public func index(of name: String) -> Int? { columns.firstIndex { $0.name == name || $0.source == name } }
}

/// A feed of shared/spec/feeds.md: its format and the tables it loads into (one, except the formulary's five).
///
/// ```swift
/// let xponent = FeedLayouts.layout(for: "xponent")!
/// xponent.tables[0].outputColumns.map(\.name)
/// // ["prescriber_id", "npi", "me_number", "ndc11", "week_ending", "nrx", "trx", "nqty", "tqty",
/// //  "npi_valid", "trx_lt_nrx"]
/// ```
public struct FeedLayout: Sendable {
    public var feed: String
    public var format: FileFormat
    public var tables: [TableLayout]
    /// True when a later row with the key of an earlier one replaces it (restatements); false when the
    /// first one stays (duplicate deliveries of the same event).
    public var latestWins: Bool
    /// The encoding of the feed's text.
    public var encoding: TextEncoding
    /// Names (lower case, last path component) of files that come with the data but are not data: CMS's
    /// NPPES archive holds `endpoint_pfile_…`, `othername_pfile_…` and `pl_pfile_…` besides `npidata_pfile_…`.
    /// Matched as prefixes; see ``isDataFile(_:)`` for the files no feed reads.
    public var otherFilePrefixes: [String]

    public init(
        feed: String, format: FileFormat, tables: [TableLayout], latestWins: Bool = true,
        encoding: TextEncoding = .utf8, otherFilePrefixes: [String] = []
    ) {
        self.feed = feed
        self.format = format
        self.tables = tables
        self.latestWins = latestWins
        self.encoding = encoding
        self.otherFilePrefixes = otherFilePrefixes
    }

    /// Extensions of the documents that travel with data files (a PDF read-me, a spreadsheet of definitions).
    static let documentExtensions: Set<String> = [
        "pdf", "doc", "docx", "xls", "xlsx", "rtf", "htm", "html", "md", "png", "jpg", "zip", "gz", "tar", "7z",
    ]

    /// Whether a file of a delivery (or a member of its zip archive) is one this feed reads: not a CMS header
    /// file (`…_fileheader.csv`), not a document (`.pdf` and the like, nested archives), not a read-me, not one
    /// of the layout's ``otherFilePrefixes``, not hidden (`.DS_Store`, `__MACOSX/…`).
    public func isDataFile(_ path: String) -> Bool {
        guard !path.hasSuffix("/"),
            !path.split(separator: "/").contains(where: { $0.hasPrefix(".") || $0 == "__MACOSX" })
        else { return false }
        let name = (path.split(separator: "/").last.map(String.init) ?? path).lowercased()
        let stem = name.split(separator: ".").first.map(String.init) ?? name
        let ext = name.contains(".") ? String(name.split(separator: ".").last!) : ""
        if stem.hasSuffix("_fileheader") || stem.hasPrefix("readme") || Self.documentExtensions.contains(ext) {
            return false
        }
        return !otherFilePrefixes.contains { name.hasPrefix($0) }
    }
}
