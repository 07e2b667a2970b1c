import Foundation
import Logging
import MeshPostgres
import MeshRuntime
import PostgresNIO

/// The PostgreSQL server the tests use: `$PHARMA_MESH_TEST_POSTGRES_URL` (scripts/test starts one with
/// scripts/postgres and sets it), else the local default. Each test gets a database of its own.
enum TestServer {
    static var adminURL: String {
        ProcessInfo.processInfo.environment["PHARMA_MESH_TEST_POSTGRES_URL"]
            ?? "postgres://mesh:mesh@127.0.0.1:5432/postgres"
    }

    /// A new, empty database; `drop()` removes it.
    struct Database: Sendable {
        let name: String
        let url: String

        func settings(layers: [String] = ["integrated"], domains: [String] = []) -> PostgresSettings {
            PostgresSettings(url: url, domains: domains, layers: layers)
        }

        func engine(layers: [String] = ["integrated"], domains: [String] = []) throws -> PostgresEngine {
            try PostgresEngine(settings: settings(layers: layers, domains: domains))
        }

        func drop() async {
            _ = try? await TestServer.admin().withConnection { connection in
                try await connection.query(
                    PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \"\(name)\" WITH (FORCE)"), logger: logger)
            }
        }
    }

    static let logger = Logger(label: "test.postgres")

    static func admin() throws -> PostgresEngine {
        try PostgresEngine(settings: PostgresSettings(url: adminURL))
    }

    static func database() async throws -> Database {
        let name = "mesh_test_\(UUID().uuidString.prefix(8).lowercased())"
        do {
            try await admin().withConnection { connection in
                try await connection.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \"\(name)\""), logger: logger)
            }
        } catch {
            throw PostgresEngineError(
                "\(error) — the PostgreSQL tests need a server: run `scripts/postgres start` (scripts/test does) or "
                    + "set PHARMA_MESH_TEST_POSTGRES_URL")
        }
        var components = URLComponents(string: adminURL)!
        components.path = "/\(name)"
        return Database(name: name, url: components.string!)
    }

    /// Rows of a query on the server, as text, for assertions.
    static func rows(_ sql: String, in engine: PostgresEngine) async throws -> [[String]] {
        try await engine.query(sql).rows.map { $0.map(\.description) }
    }
}
