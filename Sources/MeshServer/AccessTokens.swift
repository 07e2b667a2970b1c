import Crypto
import Foundation
import GRDB
import MeshRuntime

/// What a token may do. Each role includes the ones before it.
public enum AccessRole: String, Sendable, Codable, CaseIterable, Comparable {
    /// Reads metadata, results and data (read-only SQL) of its domains.
    case reader
    /// Also starts runs of its domains (process linkage).
    case runner
    /// Also administers its domains.
    case owner

    var rank: Int { Self.allCases.firstIndex(of: self)! }
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rank < rhs.rank }
}

/// A token as stored: never the secret, only its SHA-256.
public struct AccessToken: Sendable, Codable, Hashable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "access_token"
    /// The public part of the token (`pmt_` and 8 characters), shown in lists and logs.
    public var id: String
    public var name: String
    public var role: AccessRole
    /// The domains it covers; `*` covers every domain.
    public var domains: [String]
    public var secretHash: String
    public var createdAt: Date
    public var expiresAt: Date?
    public var revokedAt: Date?

    enum CodingKeys: String, CodingKey {
        case id, name, role, domains, secretHash = "secret_hash", createdAt = "created_at", expiresAt = "expires_at"
        case revokedAt = "revoked_at"
    }

    /// True when the token covers the domain.
    public func covers(_ domain: DomainID) -> Bool { domains.contains("*") || domains.contains(domain.rawValue) }

    /// True when the token has at least this role on the domain.
    public func allows(_ role: AccessRole, on domain: DomainID) -> Bool { self.role >= role && covers(domain) }
}

/// Why a token was not accepted; the message says what to do.
public enum AccessDenied: Error, Sendable, Equatable {
    case missing
    case unknown
    case expired(name: String, at: Date)
    case revoked(name: String)
    case forbidden(String)

    public var message: String {
        switch self {
        case .missing:
            return
                "no token: send `Authorization: Bearer TOKEN` (create one with `pharma-mesh token create --name NAME --role reader`)"
        case .unknown:
            return "the token is not known to this mesh; check it, or create one with `pharma-mesh token create`"
        case .expired(let name, let at):
            return
                "the token \(name) expired on \(ISO8601DateFormatter().string(from: at)); create a new one with `pharma-mesh token create`"
        case .revoked(let name): return "the token \(name) was revoked; ask the mesh owner for a new one"
        case .forbidden(let why): return why
        }
    }

    /// 401 when the caller is not identified, 403 when it is but may not do this.
    public var status: Int {
        if case .forbidden = self { return 403 }
        return 401
    }
}

/// The tokens of a mesh home, in `access.sqlite` beside the run history. Secrets are shown once, at creation.
///
/// ```swift
/// let tokens = try AccessTokens(home: home)
/// let (secret, token) = try tokens.create(name: "field-team", role: .reader, domains: ["field-extracts"])
/// let who = try tokens.authenticate(secret)   // the token, or AccessDenied
/// ```
public final class AccessTokens: Sendable {
    let queue: DatabaseQueue
    let now: @Sendable () -> Date

    public init(home: URL, now: @escaping @Sendable () -> Date = { Date() }) throws {
        try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
        let path = home.appendingPathComponent("access.sqlite").path
        queue = try DatabaseQueue(path: path)
        self.now = now
        // Only the owner of the home reads the hashes.
        chmod(path, 0o600)
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE access_token (
                        id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, role TEXT NOT NULL, domains TEXT NOT NULL,
                        secret_hash TEXT NOT NULL UNIQUE, created_at DATETIME NOT NULL, expires_at DATETIME,
                        revoked_at DATETIME)
                    """)
        }
        try migrator.migrate(queue)
    }

    /// Creates a token; returns the secret (shown once) and the stored record.
    public func create(name: String, role: AccessRole, domains: [String], expiresAt: Date? = nil) throws -> (
        secret: String, token: AccessToken
    ) {
        guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || "-_.@".contains($0) }) else {
            throw MeshError(.invalid, "a token name is letters, digits and - _ . @; '\(name)' is not")
        }
        guard !domains.isEmpty else { throw MeshError(.invalid, "a token covers at least one domain (or *)") }
        var random = SystemRandomNumberGenerator()
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        let publicPart = String((0..<8).map { _ in alphabet[Int(random.next() % UInt64(alphabet.count))] })
        let secretPart = String((0..<40).map { _ in alphabet[Int(random.next() % UInt64(alphabet.count))] })
        let secret = "pmt_\(publicPart)_\(secretPart)"
        let token = AccessToken(
            id: "pmt_\(publicPart)", name: name, role: role, domains: domains.sorted(),
            secretHash: Self.hash(secret), createdAt: now(), expiresAt: expiresAt, revokedAt: nil)
        try queue.write { db in
            if try AccessToken.filter(Column("name") == name).fetchCount(db) > 0 {
                throw MeshError(.invalid, "a token named \(name) exists already; revoke it or choose another name")
            }
            try token.insert(db)
        }
        return (secret, token)
    }

    /// Every token, newest first (revoked ones included, so the record stays).
    public func list() throws -> [AccessToken] {
        try queue.read { db in try AccessToken.order(Column("created_at").desc).fetchAll(db) }
    }

    /// Revokes by name or public id; returns false when there is no such live token.
    @discardableResult
    public func revoke(_ nameOrID: String) throws -> Bool {
        try queue.write { db in
            try db.execute(
                sql: "UPDATE access_token SET revoked_at = ? WHERE (name = ? OR id = ?) AND revoked_at IS NULL",
                arguments: [now(), nameOrID, nameOrID])
            return db.changesCount > 0
        }
    }

    /// The token a secret belongs to, when it is live.
    public func authenticate(_ secret: String?) throws -> AccessToken {
        guard let secret, !secret.isEmpty else { throw AccessDenied.missing }
        let hash = Self.hash(secret)
        guard let token = try queue.read({ db in try AccessToken.filter(Column("secret_hash") == hash).fetchOne(db) })
        else { throw AccessDenied.unknown }
        if token.revokedAt != nil { throw AccessDenied.revoked(name: token.name) }
        if let expiry = token.expiresAt, expiry <= now() { throw AccessDenied.expired(name: token.name, at: expiry) }
        return token
    }

    static func hash(_ secret: String) -> String {
        Fingerprint.hex(SHA256.hash(data: Data(secret.utf8)))
    }
}
