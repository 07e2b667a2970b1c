import Foundation

/// How a feed's files are written.
public enum FileFormat: Sendable, Hashable {
    /// Delimited text with a header row; `quoted` when fields may be enclosed in double quotes (RFC 4180).
    case delimited(delimiter: UInt8, quoted: Bool)
    /// One JSON object per line.
    case jsonLines
    /// The formulary XML document.
    case formularyXML
}

/// The type of a column, and how its text is read.
public enum ColumnType: Sendable, Hashable {
    case text
    case integer
    /// A decimal with up to `places` places, read exactly and stored as a REAL of that precision.
    case decimal(places: Int)
    /// A date written as `format`, stored as ISO `YYYY-MM-DD`.
    case date(DateFormat)
    /// An ISO 8601 timestamp with offset, stored in UTC as `YYYY-MM-DDTHH:MM:SSZ`.
    case timestamp
    /// A flag (`Y`/`N`, `Y`/empty, `1`/`0`, `true`/`false`), stored as 1 or 0.
    case flag

    public var sqlType: String {
        switch self {
        case .integer, .flag: return "INTEGER"
        case .decimal: return "REAL"
        default: return "TEXT"
        }
    }
}

public enum DateFormat: String, Sendable, Hashable {
    /// `YYYY-MM-DD`
    case iso
    /// `MM/DD/YYYY`
    case monthDayYear
    /// `YYYYMMDD`
    case compact
}

/// One column: the vendor's header name, our column name, its type and rules.
public struct ColumnLayout: Sendable, Hashable {
    /// The header name in the vendor file (or the JSON key, or the XML attribute).
    public var source: String
    /// The snake_case column name in the raw table.
    public var name: String
    public var type: ColumnType
    /// Whether the header must carry the column (a batch without it is rejected).
    public var required: Bool
    /// Whether an empty value is allowed.
    public var nullable: Bool
    /// The values allowed, when the spec lists them.
    public var accepted: [String]?
    /// Exactly this many characters, when set (NPI 10, NDC11 11).
    public var length: Int?
    /// Digits only, when set.
    public var digits: Bool

    public init(
        _ source: String, _ name: String, _ type: ColumnType = .text, required: Bool = true, nullable: Bool = true,
        accepted: [String]? = nil, length: Int? = nil, digits: Bool = false
    ) {
        self.source = source
        self.name = name
        self.type = type
        self.required = required
        self.nullable = nullable
        self.accepted = accepted
        self.length = length
        self.digits = digits
    }
}

/// A column computed from the others of the row (a flag such as `npi_valid`) or from the file's name.
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

/// A table a feed loads into: its columns in order (read ones, then derived ones) and its natural key.
public struct TableLayout: Sendable {
    public var name: String
    public var columns: [ColumnLayout]
    public var derived: [DerivedColumn]
    public var key: [String]
    /// A rule over a typed row; a message rejects the row (naming the column).
    public var rowRule: (@Sendable ([FieldValue]) -> (column: String, reason: String)?)?

    public init(
        name: String, columns: [ColumnLayout], derived: [DerivedColumn] = [], key: [String],
        rowRule: (@Sendable ([FieldValue]) -> (column: String, reason: String)?)? = nil
    ) {
        self.name = name
        self.columns = columns
        self.derived = derived
        self.key = key
        self.rowRule = rowRule
    }

    /// Every output column: name and SQLite type, in value order.
    public var outputColumns: [(name: String, type: String)] {
        columns.map { ($0.name, $0.type.sqlType) } + derived.map { ($0.name, $0.type.sqlType) }
    }

    /// The index of a column among the read ones.
    public func index(of name: String) -> Int? { columns.firstIndex { $0.name == name || $0.source == name } }
}

/// A feed: its format and the tables it loads into.
public struct FeedLayout: Sendable {
    public var feed: String
    public var format: FileFormat
    public var tables: [TableLayout]
    /// True when a later row with the key of an earlier one replaces it (restatements); false when the
    /// first one stays (duplicate deliveries of the same event).
    public var latestWins: Bool
    public init(feed: String, format: FileFormat, tables: [TableLayout], latestWins: Bool = true) {
        self.feed = feed
        self.format = format
        self.tables = tables
        self.latestWins = latestWins
    }
}
