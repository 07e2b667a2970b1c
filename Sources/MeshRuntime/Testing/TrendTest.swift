import Foundation
import GRDB

/// A test that also measures a number on every build (recorded with the result, so it can be followed).
public protocol MeasuredTest: DataTest {
    /// A SELECT of one number over the new build.
    func valueSQL(_ context: TestContext) throws -> String?
}

/// Compares a metric of the new build with the same metric of the previous published version, for example
/// "fail when the unmatched share rises by more than 2 points". The metric is one SELECT returning one
/// number; write `{schema}` before every table name (it becomes `previous.` for the previous version).
///
/// ```swift
/// TrendTest("unmatched_share_trend", metric: "SELECT AVG(physician_id IS NULL) FROM {schema}physician_xref",
///           maxIncrease: 0.02, severity: .fail)
/// ```
public struct TrendTest: MeasuredTest {
    public var name: String
    public var metric: String
    public var maxIncrease: Double?
    public var maxDecrease: Double?
    public var severity: Severity

    public init(
        _ name: String, metric: String, maxIncrease: Double? = nil, maxDecrease: Double? = nil,
        severity: Severity = .warn
    ) {
        self.name = name
        self.metric = metric
        self.maxIncrease = maxIncrease
        self.maxDecrease = maxDecrease
        self.severity = severity
    }

    public var definition: String {
        "\(name) [\(severity.rawValue)]: \(metric); rise at most \(maxIncrease.map { "\($0)" } ?? "any"), fall at most \(maxDecrease.map { "\($0)" } ?? "any")"
    }

    func metric(on schema: String) -> String { metric.replacingOccurrences(of: "{schema}", with: schema) }

    public func valueSQL(_ context: TestContext) throws -> String? { metric(on: "") }

    public func offendingRowsSQL(_ context: TestContext) throws -> String? {
        guard context.hasPrevious else { return nil }
        var conditions: [String] = []
        if let maxIncrease { conditions.append("current - previous > \(maxIncrease)") }
        if let maxDecrease { conditions.append("previous - current > \(maxDecrease)") }
        guard !conditions.isEmpty else { return nil }
        return "SELECT current, previous, current - previous AS change FROM (SELECT (\(metric(on: ""))) AS current, "
            + "(\(metric(on: "previous."))) AS previous) WHERE \(conditions.joined(separator: " OR "))"
    }
}
