import Foundation
import MeshRuntime
import PostgresNIO

/// Where a mesh's PostgreSQL engine is and which domains it serves: `HOME/engine.json`.
///
/// ```json
/// {"engine": "postgresql", "url": "postgres://mesh@db.example.com:5432/marts", "layers": ["integrated"]}
/// ```
/// The password may be in the URL or, better, in `$PGPASSWORD`; the file is written readable by its owner only.
public struct PostgresSettings: Codable, Sendable, Equatable {
    public var engine = "postgresql"
    /// `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=disable|prefer|require]`, or a Unix socket
    /// directory as `postgres://USER@/DATABASE?host=/var/run/postgresql`.
    public var url: String
    /// Domains served, besides those of `layers`.
    public var domains: [String] = []
    /// Every domain of these layers is served.
    public var layers: [String] = []
    /// Read every loaded table back and compare its digest with the build's before switching to it.
    public var verify = true
    /// Connections that load a version's tables at once.
    public var loadConnections = 2

    public init(
        url: String, domains: [String] = [], layers: [String] = [], verify: Bool = true, loadConnections: Int = 2
    ) {
        self.url = url
        self.domains = domains
        self.layers = layers
        self.verify = verify
        self.loadConnections = loadConnections
    }

    enum CodingKeys: String, CodingKey {
        case engine, url, domains, layers, verify, loadConnections = "load_connections"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        engine = try container.decodeIfPresent(String.self, forKey: .engine) ?? "postgresql"
        url = try container.decode(String.self, forKey: .url)
        domains = try container.decodeIfPresent([String].self, forKey: .domains) ?? []
        layers = try container.decodeIfPresent([String].self, forKey: .layers) ?? []
        verify = try container.decodeIfPresent(Bool.self, forKey: .verify) ?? true
        loadConnections = max(1, try container.decodeIfPresent(Int.self, forKey: .loadConnections) ?? 2)
    }

    public static func file(in home: URL) -> URL { home.appendingPathComponent("engine.json") }

    /// The settings of the mesh at `home`, or nil when it uses SQLite alone.
    public static func load(home: URL) throws -> PostgresSettings? {
        let file = file(in: home)
        guard FileManager.default.fileExists(atPath: file.path) else { return nil }
        do {
            let settings = try JSONDecoder().decode(PostgresSettings.self, from: Data(contentsOf: file))
            guard settings.engine == "postgresql" else {
                throw PostgresEngineError("\(file.path): engine '\(settings.engine)' is not known; use postgresql")
            }
            _ = try settings.connection()
            return settings
        } catch let error as PostgresEngineError {
            throw error
        } catch {
            throw PostgresEngineError("\(file.path) is not a valid engine file: \(error)")
        }
    }

    public func save(home: URL) throws {
        try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
        let file = Self.file(in: home)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(self).write(to: file, options: .atomic)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: file.path)
    }

    public static func remove(home: URL) throws {
        let file = file(in: home)
        if FileManager.default.fileExists(atPath: file.path) { try FileManager.default.removeItem(at: file) }
    }

    /// The URL without its password, for messages and the `where` of a domain.
    public var displayURL: String {
        guard var components = URLComponents(string: url), components.password != nil else { return url }
        components.password = "***"
        return components.string ?? url
    }

    /// The database name, for messages.
    public var database: String { (try? connection().database) ?? "" }

    /// The connection configuration the URL describes.
    public func connection() throws -> PostgresConnection.Configuration {
        guard let components = URLComponents(string: url),
            components.scheme == "postgres" || components.scheme == "postgresql"
        else {
            throw PostgresEngineError(
                "'\(displayURL)' is not a PostgreSQL URL: write postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE")
        }
        let environment = ProcessInfo.processInfo.environment
        let user = components.user?.removingPercentEncoding ?? environment["PGUSER"] ?? "postgres"
        let password = components.password?.removingPercentEncoding ?? environment["PGPASSWORD"]
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        let database = path.isEmpty ? user : path
        let query = Dictionary(
            (components.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { $1 })
        if let socketDirectory = query["host"], socketDirectory.hasPrefix("/") {
            let port = components.port ?? 5432
            return PostgresConnection.Configuration(
                unixSocketPath: "\(socketDirectory)/.s.PGSQL.\(port)", username: user, password: password,
                database: database)
        }
        guard let host = components.host, !host.isEmpty else {
            throw PostgresEngineError("'\(displayURL)' names no host: write postgres://USER@HOST:PORT/DATABASE")
        }
        let tls: PostgresConnection.Configuration.TLS
        switch query["sslmode"] ?? "disable" {
        case "disable": tls = .disable
        case "prefer", "allow": tls = .prefer(try .init(configuration: .makeClientConfiguration()))
        case "require", "verify-ca", "verify-full": tls = .require(try .init(configuration: .makeClientConfiguration()))
        case let other:
            throw PostgresEngineError("sslmode '\(other)' is not supported: use disable, prefer or require")
        }
        return PostgresConnection.Configuration(
            host: host, port: components.port ?? 5432, username: user, password: password, database: database,
            tls: tls)
    }

    /// Whether the settings serve a domain.
    public func serves(_ domain: Domain) -> Bool {
        domains.contains(domain.id.rawValue) || layers.contains(domain.layer)
    }
}

/// An error of the PostgreSQL engine, with a sentence a person can act on.
public struct PostgresEngineError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }

    /// What went wrong, from a postgres-nio error (whose own description hides everything on purpose).
    static func describe(_ error: any Error) -> String {
        if let error = error as? PostgresEngineError { return error.description }
        if let error = error as? PSQLError {
            if let info = error.serverInfo, let message = info[.message] {
                var text = message
                if let detail = info[.detail] { text += " (\(detail))" }
                if let hint = info[.hint] { text += "; hint: \(hint)" }
                if let state = info[.sqlState] { text += " [SQLSTATE \(state)]" }
                return text
            }
            if let underlying = error.underlying { return "\(error.code): \(underlying)" }
            return "\(error.code)"
        }
        if let error = error as? PostgresDecodingError { return String(reflecting: error) }
        return "\(error)"
    }
}
