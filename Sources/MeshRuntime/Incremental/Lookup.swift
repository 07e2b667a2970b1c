/// A lookup a fact's rows go through (a source id to a key), declared once: the fact's SELECT joins it where
/// it writes `{lookup:NAME}`, and the fact's change detection compares what it maps, so that a re-pointed id
/// rebuilds the partitions it has rows in. The join and the comparison cannot drift apart.
///
/// ```swift
/// // LEFT JOIN crm.account_xref a ON a.system = 'web' AND a.source_id = o.customer_id
/// Lookup(
///     "customer", table: "crm.account_xref", alias: "a", key: "source_id", value: "account_id",
///     filter: "{system} = 'web'", input: "customer_id")
/// ```
///
/// The SELECT reads the looked-up value through the alias (`COALESCE(a.account_id, 0)`).
public struct Lookup: Sendable {
    /// How the fact's rows meet the lookup.
    public enum Join: String, Sendable {
        /// Rows without a match stay (their value is NULL).
        case left = "LEFT JOIN"
        /// Rows without a match are dropped.
        case inner = "JOIN"
    }

    /// A second table the lookup's value goes through (an id the first table gives, then its key).
    public struct Through: Sendable {
        public var table: String
        public var alias: String
        /// The column of `table` matched with `matches` of the lookup's first table.
        public var key: String
        public var matches: String
        public init(_ table: String, alias: String, key: String, matches: String) {
            self.table = table
            self.alias = alias
            self.key = key
            self.matches = matches
        }
    }

    /// The name the SELECT refers to (`{lookup:NAME}`) and the state of the fact keeps it under.
    public var name: String
    /// The table looked up (`schema.table`), or a parenthesised subquery.
    public var table: String
    /// The alias the SELECT reads the lookup's columns through.
    public var alias: String
    /// The column of `table` a fact row's `input` is matched with.
    public var key: String
    /// What a key maps to, over the columns of `table`, or of `through`'s table when there is one.
    public var value: RowExpression
    /// The rows of `table` the lookup uses, over its columns (nil: all of them).
    public var filter: RowExpression?
    /// The expression over the fact's source row that is looked up.
    public var input: RowExpression
    public var join: Join
    public var through: Through?
    /// True when `table` is an input that logs its changes (`Domain.changeLogs`): an incremental build then
    /// compares only the ids its changed rows name (`key` must be a column of the log) instead of every id.
    public var logged: Bool

    public init(
        _ name: String, table: String, alias: String, key: String, value: RowExpression, filter: RowExpression? = nil,
        input: RowExpression, join: Join = .left, through: Through? = nil, logged: Bool = false
    ) {
        self.name = name
        self.table = table
        self.alias = alias
        self.key = key
        self.value = value
        self.filter = filter
        self.input = input
        self.join = join
        self.through = through
        self.logged = logged
    }

    /// `SELECT key, value` of every row the lookup maps: what change detection compares between builds.
    public var mappingSQL: String {
        guard let through else {
            return "SELECT \(key), \(value.sql) FROM \(table)" + (filter.map { " WHERE \($0.sql)" } ?? "")
        }
        return """
            SELECT \(alias).\(key), \(value.sql(qualifiedBy: through.alias)) FROM \(table) \(alias)
            LEFT JOIN \(through.table) \(through.alias) ON \(through.alias).\(through.key) = \(alias).\(through.matches)
            """ + (filter.map { " WHERE \($0.sql(qualifiedBy: alias))" } ?? "")
    }

    /// The JOIN of the lookup in a SELECT that reads the fact's source under `sourceAlias`.
    public func joinSQL(sourceAlias: String?) -> String {
        let condition =
            (filter.map { [$0.sql(qualifiedBy: alias)] } ?? [])
            + ["\(alias).\(key) = \(input.sql(qualifiedBy: sourceAlias))"]
        var sql = "\(join.rawValue) \(table) \(alias) ON \(condition.joined(separator: " AND "))"
        if let through {
            sql += """

                LEFT JOIN \(through.table) \(through.alias) ON \(through.alias).\(through.key) = \(alias).\(through.matches)
                """
        }
        return sql
    }

    /// The filter of the lookup's rows as a WHERE condition over the bare columns of `table` (or of its log).
    var rowFilter: String { filter?.sql ?? "1" }
}
