import Foundation
import GRDB

/// How much a failing test matters.
public enum Severity: String, Sendable, Codable, Hashable {
    /// Recorded and published with the version.
    case warn
    /// Stops the domain: nothing is published and downstream domains are skipped.
    case fail
}

/// The outcome of one test evaluation.
public enum TestStatus: String, Sendable, Codable, Hashable {
    case pass, warn, fail
    /// The test itself could not run (bad SQL, missing table): treated as `fail`.
    case error
}

/// What a test sees: the working database (or a published version), and whether a previous version exists.
public struct TestContext: Sendable {
    public var domain: DomainID
    public var parameters: [String: String]
    /// True when the domain's previous published version is attached as `previous`.
    public var hasPrevious: Bool
    /// Table (an output's name, or an input's `schema.table`) → an SQL relation of the rows this build changed
    /// since the previous version (`mesh_sign` 1 inserted, −1 deleted, then the table's columns), where known.
    public var changes: [String: String]
    /// Domain tests that passed on the previous version, built by the same definition and parameters: an
    /// `IncrementalTest` among them checks only the changes.
    public var previouslyPassed: Set<String>
    public init(
        domain: DomainID, parameters: [String: String] = [:], hasPrevious: Bool = false,
        changes: [String: String] = [:], previouslyPassed: Set<String> = []
    ) {
        self.domain = domain
        self.parameters = parameters
        self.hasPrevious = hasPrevious
        self.changes = changes
        self.previouslyPassed = previouslyPassed
    }
}

/// A test that can check only what a build changed, when the previous version passed it: the invariant held
/// on the previous rows, so only the changed rows (and what they reference) can break it. A full refresh,
/// a changed definition or parameters, or an unknown change set run the whole query.
///
/// ```swift
/// struct PositiveAmounts: IncrementalTest {
///     var name: String { "positive_amounts" }
///     var severity: Severity { .fail }
///     var changeTables: [String] { ["orders"] }
///     func offendingRowsSQL(_ context: TestContext) -> String? { "SELECT * FROM orders WHERE amount <= 0" }
///     func changedRowsSQL(_ context: TestContext) -> String? {
///         context.changes["orders"].map { "SELECT * FROM \($0) WHERE mesh_sign = 1 AND amount <= 0" }
///     }
/// }
/// ```
public protocol IncrementalTest: DataTest {
    /// The tables whose changes the scoped query reads: outputs of the domain, or inputs' `schema.table`.
    var changeTables: [String] { get }
    /// The offending rows among the changes in `context.changes`, or nil to run the whole query.
    func changedRowsSQL(_ context: TestContext) throws -> String?
}

/// A data test: a query that returns the offending rows. No rows means the test passes.
///
/// The same test value serves as a functional test while a domain is developed (in a kitchen) and as a
/// monitoring test on every production build.
///
/// ```swift
/// struct PositiveAmounts: DataTest {
///     var name: String { "positive_amounts" }
///     var severity: Severity { .warn }
///     func offendingRowsSQL(_ context: TestContext) -> String? { "SELECT * FROM orders WHERE amount <= 0" }
/// }
/// ```
public protocol DataTest: Sendable {
    var name: String { get }
    var severity: Severity { get }
    /// The text hashed into the domain's code version.
    var definition: String { get }
    /// A SELECT returning one row per offence, or nil when the test does not apply (say, no previous version).
    func offendingRowsSQL(_ context: TestContext) throws -> String?
}

/// The SQL dialect a test's query is written for: the build engine's (SQLite), or a serving engine's.
public enum SQLDialect: String, Sendable, Codable {
    case sqlite, postgresql
}

extension DataTest {
    public var definition: String { "\(name) [\(severity.rawValue)]" }

    /// The test's query in a dialect: the one place where a test that is not plain SQL says how it reads on
    /// another engine. By default the same text as for SQLite (most tests are standard SQL).
    public func offendingRowsSQL(_ context: TestContext, dialect: SQLDialect) throws -> String? {
        if dialect != .sqlite, let dialectal = self as? any DialectalTest {
            return try dialectal.offendingRowsSQL(context, in: dialect)
        }
        return try offendingRowsSQL(context)
    }
}

/// A test whose query differs by dialect.
public protocol DialectalTest: DataTest {
    /// The query in `dialect` (never `.sqlite`, which is `offendingRowsSQL(_:)`); nil when it does not apply.
    func offendingRowsSQL(_ context: TestContext, in dialect: SQLDialect) throws -> String?
}

/// One recorded test result.
public struct TestResult: Sendable, Codable, Hashable {
    public var test: String
    public var step: StepID?
    public var severity: Severity
    public var status: TestStatus
    /// How many rows offended.
    public var failures: Int
    /// Up to five offending rows, as column → value text.
    public var sample: [[String: String]]
    public var message: String
    /// What a measured test measured on this build.
    public var value: Double? = nil

    /// Runs a test against a database.
    public static func evaluate(_ test: any DataTest, step: StepID?, in db: Database, context: TestContext)
        -> TestResult
    {
        var result = evaluateRows(test, step: step, in: db, context: context)
        if let measured = test as? any MeasuredTest, result.status != .error {
            do {
                if let sql = try measured.valueSQL(context) {
                    result.value = try Double.fetchOne(db, sql: sql)
                    if let value = result.value {
                        result.message += "; measured \(String(format: "%.4g", value))"
                    }
                }
            } catch {
                result.status = .error
                result.message = "the measure could not run: \(error)"
            }
        }
        return result
    }

    static func evaluateRows(_ test: any DataTest, step: StepID?, in db: Database, context: TestContext)
        -> TestResult
    {
        do {
            // A shortcut: when the key cannot be inspected, the test reads the rows as any other.
            if let keyed = test as? any KeyEnforcedTest, (try? keyed.isEnforcedByKey(in: db)) == true {
                return TestResult(
                    test: test.name, step: step, severity: test.severity, status: .pass, failures: 0, sample: [],
                    message: keyed.enforcedBy)
            }
            guard let full = try test.offendingRowsSQL(context) else {
                return TestResult(
                    test: test.name, step: step, severity: test.severity, status: .pass, failures: 0, sample: [],
                    message: "not applicable")
            }
            // Parameters are bound by name, as in SQL steps (`:max_share`).
            func arguments(_ sql: String) -> StatementArguments {
                var values: [String: (any DatabaseValueConvertible)?] = [:]
                for (key, value) in context.parameters where sql.contains(":\(key)") { values[key] = value }
                return StatementArguments(values)
            }
            func countRows(_ sql: String) throws -> Int {
                try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM (\(sql))", arguments: arguments(sql)) ?? 0
            }
            var sql = full
            var scoped = false
            var count: Int
            if let incremental = test as? any IncrementalTest, context.previouslyPassed.contains(test.name),
                incremental.changeTables.allSatisfy({ context.changes[$0] != nil }),
                let changed = try incremental.changedRowsSQL(context)
            {
                // A scoped query that cannot run (a table the previous version lacked, say) falls back to the
                // whole query.
                do {
                    count = try countRows(changed)
                    sql = changed
                    scoped = true
                } catch {
                    count = try countRows(full)
                }
            } else {
                count = try countRows(full)
            }
            guard count > 0 else {
                return TestResult(
                    test: test.name, step: step, severity: test.severity, status: .pass, failures: 0, sample: [],
                    message: scoped ? "ok (checked the rows changed since the previous version, which passed)" : "ok")
            }
            let rows = try Row.fetchAll(db, sql: "SELECT * FROM (\(sql)) LIMIT 5", arguments: arguments(sql))
            let sample = rows.map { row in
                Dictionary(row.columnNames.enumerated().map { ($1, row[$0].map { "\($0)" } ?? "NULL") }) { first, _ in
                    first
                }
            }
            let status: TestStatus = test.severity == .fail ? .fail : .warn
            return TestResult(
                test: test.name, step: step, severity: test.severity, status: status, failures: count, sample: sample,
                message:
                    "\(count) offending row\(count == 1 ? "" : "s")\(scoped ? " among the rows changed since the previous version" : "")"
            )
        } catch {
            return TestResult(
                test: test.name, step: step, severity: test.severity, status: .error, failures: 0, sample: [],
                message: "the test could not run: \(error)")
        }
    }

    /// True when this result stops the domain.
    public var isBlocking: Bool { status == .fail || status == .error }
}

/// A test that a table's constraints can guarantee without reading its rows (checked before the query runs).
protocol KeyEnforcedTest: DataTest {
    /// True when the database's schema already enforces what the test checks.
    func isEnforcedByKey(in db: Database) throws -> Bool
    /// The result's message when it does.
    var enforcedBy: String { get }
}

/// Quotes an SQL identifier, keeping a `schema.table` prefix apart.
func quoteQualified(_ name: String) -> String {
    name.split(separator: ".").map { quoteIdentifier(String($0)) }.joined(separator: ".")
}

/// Quotes one SQL identifier (a table or column name).
public func quoteIdentifier(_ name: String) -> String { "\"\(doubling(UInt8(ascii: "\""), in: name))\"" }

/// Quotes an SQL string literal.
public func quoteLiteral(_ value: String) -> String { "'\(doubling(UInt8(ascii: "'"), in: value))'" }

/// `text` with every `quote` doubled. Most names hold none: then the text itself, without Foundation's
/// `replacingOccurrences` (which bridges through NSString on Linux; 1 % of the demo's CPU once).
private func doubling(_ quote: UInt8, in text: String) -> String {
    guard text.utf8.contains(quote) else { return text }
    var bytes: [UInt8] = []
    bytes.reserveCapacity(text.utf8.count + 2)
    for byte in text.utf8 {
        bytes.append(byte)
        if byte == quote { bytes.append(quote) }
    }
    return String(decoding: bytes, as: UTF8.self)
}
