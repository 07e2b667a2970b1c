/// An SQL expression over the columns of one row, written once and rendered bare or qualified by an alias.
///
/// Columns are written in braces, so that the same declaration gives `date(fill_date, 'weekday 5')` where a
/// statement reads the table alone (change detection, an index) and `date(c.fill_date, 'weekday 5')` where it
/// reads it under an alias (the fact's SELECT). A literal without braces names one column.
///
/// ```swift
/// let key: RowExpression = "COALESCE({region}, '') || '|' || {store}"
/// key.sql                   // COALESCE(region, '') || '|' || store
/// key.sql(qualifiedBy: "o") // COALESCE(o.region, '') || '|' || o.store
/// ```
public struct RowExpression: Sendable, Hashable, ExpressibleByStringLiteral, CustomStringConvertible {
    /// The expression with its columns in braces.
    public var template: String

    public init(_ template: String) { self.template = template.contains("{") ? template : "{\(template)}" }
    public init(stringLiteral value: String) { self.init(value) }

    /// One column.
    public static func column(_ name: String) -> RowExpression { RowExpression("{\(name)}") }

    /// The expression over bare column names.
    public var sql: String { sql(qualifiedBy: nil) }
    public var description: String { sql }

    /// The expression with each column qualified by `alias` (bare when nil).
    public func sql(qualifiedBy alias: String?) -> String {
        var result = ""
        var rest = Substring(template)
        while let open = rest.firstIndex(of: "{"), let close = rest[open...].firstIndex(of: "}") {
            result += rest[..<open]
            let column = rest[rest.index(after: open)..<close]
            result += alias.map { "\($0).\(column)" } ?? String(column)
            rest = rest[rest.index(after: close)...]
        }
        return result + rest
    }
}

/// The day a week ends on, as SQLite's `date(x, 'weekday N')` counts it (0 Sunday … 6 Saturday).
public enum Weekday: Int, Sendable, Hashable {
    case sunday = 0, monday, tuesday, wednesday, thursday, friday, saturday
}

/// Which partition of an incremental table a source row lands in: declared once, it renders the SQL of the
/// fact's filter, its change detection and the index the producing domain builds for it, letter for letter
/// the same (SQLite uses an expression index only for the identical expression).
///
/// ```swift
/// Partition.column("week_ending")        // week_ending
/// Partition.day(of: "ts")                // substr(ts, 1, 10): the date of an ISO 8601 timestamp
/// Partition.week(of: "order_date")       // date(order_date, 'weekday 5'): the Friday ending its week
/// Partition.week(of: .day(of: "ts"))     // date(substr(ts, 1, 10), 'weekday 5')
/// ```
public struct Partition: Sendable, Hashable, CustomStringConvertible {
    public var expression: RowExpression

    public init(_ expression: RowExpression) { self.expression = expression }

    /// The value of one column.
    public static func column(_ name: String) -> Partition { Partition(.column(name)) }

    /// The date part (`YYYY-MM-DD`) of an ISO 8601 date or timestamp column, in the offset it carries.
    public static func day(of column: String) -> Partition { Partition(RowExpression("substr({\(column)}, 1, 10)")) }

    /// The last day (a Friday unless said otherwise) of the week of an ISO date column.
    public static func week(of column: String, endingOn weekday: Weekday = .friday) -> Partition {
        week(of: .column(column), endingOn: weekday)
    }

    /// The last day of the week of a date partition (say, the day of a timestamp).
    public static func week(of day: Partition, endingOn weekday: Weekday = .friday) -> Partition {
        Partition(RowExpression("date(\(day.expression.template), 'weekday \(weekday.rawValue)')"))
    }

    /// The expression over bare column names.
    public var sql: String { expression.sql }
    public var description: String { sql }

    /// The expression with each column qualified by `alias` (bare when nil).
    public func sql(qualifiedBy alias: String?) -> String { expression.sql(qualifiedBy: alias) }
}
