import Foundation

/// The runtime's one error type: a code to branch on and a sentence for people.
public struct MeshError: Error, Sendable, CustomStringConvertible, LocalizedError {
    public enum Code: String, Sendable {
        case invalidDefinition
        case cycle
        case unknownDomain
        case busy
        case stepFailed
        case syncViolation
        case storage
        case readOnly
        case query
        case notFound
        /// A request the caller can fix: a bad name, a bad parameter.
        case invalid
        /// The caller may not read or run this.
        case forbidden
    }
    public var code: Code
    public var message: String
    /// Why a kitchen's promotion was refused, one refusal each, for a program to word its own way.
    package var refusals: [KitchenRefusal] = []
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
    public var description: String { message }
    public var errorDescription: String? { message }
}
