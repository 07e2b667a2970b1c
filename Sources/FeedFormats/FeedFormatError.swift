import Foundation

/// The FeedFormats module's one error type: a batch-level problem with a file, for people to act on.
public struct FeedFormatError: Error, Sendable, CustomStringConvertible, LocalizedError {
    public enum Code: String, Sendable {
        case missingColumn, emptyFile, malformedXML, unreadable, unknownFeed
    }
    public var code: Code
    /// The file, as the caller named it.
    public var file: String
    public var line: Int?
    public var message: String

    public init(_ code: Code, file: String, line: Int? = nil, _ message: String) {
        self.code = code
        self.file = file
        self.line = line
        self.message = message
    }

    public var description: String { message }
    public var errorDescription: String? { message }
}

/// One problem with one row: where, which field, the raw text, and why. The row goes to quarantine.
public struct RowIssue: Error, Sendable, Hashable {
    public var line: Int
    public var column: String
    public var rawValue: String
    public var reason: String
    public init(line: Int, column: String, rawValue: String, reason: String) {
        self.line = line
        self.column = column
        self.rawValue = rawValue
        self.reason = reason
    }
}

/// A typed value of a row, in its table's column order.
public enum FieldValue: Sendable, Hashable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
}
