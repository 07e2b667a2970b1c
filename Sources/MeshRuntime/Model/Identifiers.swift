import Foundation
import GRDB

/// A typed identifier: the id of a domain, a step, a run or a variation.
///
/// Identifiers are plain strings on the wire and in the runtime database, but typed in code so that a
/// step id can never be passed where a domain id is expected.
public protocol MeshIdentifier: RawRepresentable, Hashable, Comparable, Sendable, Codable,
    ExpressibleByStringLiteral, CustomStringConvertible
where RawValue == String {
    init(_ rawValue: String)
}

extension MeshIdentifier {
    public init(rawValue: String) { self.init(rawValue) }
    public init(stringLiteral value: String) { self.init(value) }
    public var description: String { rawValue }
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
    public init(from decoder: any Decoder) throws {
        self.init(try decoder.singleValueContainer().decode(String.self))
    }
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}

/// The id of a domain, such as `orders-mart`. Lower-case letters, digits and `-`.
public struct DomainID: MeshIdentifier {
    public let rawValue: String
    public init(_ rawValue: String) { self.rawValue = rawValue }

    /// The SQL schema name under which the domain's published version is attached: `-` becomes `_`.
    public var schemaName: String { rawValue.replacingOccurrences(of: "-", with: "_") }
}

/// The id of a step inside a recipe. Nested recipes give dotted paths such as `stage.orders`.
public struct StepID: MeshIdentifier {
    public let rawValue: String
    public init(_ rawValue: String) { self.rawValue = rawValue }
}

/// The id of one mesh run, shared by every domain the run touches.
public struct RunID: MeshIdentifier {
    public let rawValue: String
    public init(_ rawValue: String) { self.rawValue = rawValue }

    /// A new run id: the start time, then a random suffix (`r20261201T101500-3fa2b1c0`).
    public static func make(at date: Date) -> RunID {
        let stamp = ISO8601DateFormatter.runStamp.string(from: date)
        return RunID("r\(stamp)-\(String(format: "%08x", UInt32.random(in: 0...UInt32.max)))")
    }
}

extension DomainID: DatabaseValueConvertible {
    public var databaseValue: DatabaseValue { rawValue.databaseValue }
    public static func fromDatabaseValue(_ dbValue: DatabaseValue) -> DomainID? {
        String.fromDatabaseValue(dbValue).map(Self.init)
    }
}

extension StepID: DatabaseValueConvertible {
    public var databaseValue: DatabaseValue { rawValue.databaseValue }
    public static func fromDatabaseValue(_ dbValue: DatabaseValue) -> StepID? {
        String.fromDatabaseValue(dbValue).map(Self.init)
    }
}

extension RunID: DatabaseValueConvertible {
    public var databaseValue: DatabaseValue { rawValue.databaseValue }
    public static func fromDatabaseValue(_ dbValue: DatabaseValue) -> RunID? {
        String.fromDatabaseValue(dbValue).map(Self.init)
    }
}
