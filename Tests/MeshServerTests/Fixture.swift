import Foundation
import GRDB
import HTTPTypes
import Hummingbird
import MeshRuntime
import MeshServer
import MeshTestSupport
import NIOCore

/// A toy mesh (a source, a mart that reads it with a parameter, and a second mart no scoped token covers),
/// built once, served on a real socket.
struct ServerFixture {
    let directory: TemporaryDirectory
    let mesh: Mesh
    let server: MeshHTTPServer
    let owner: String
    let firstRun: RunID
    /// How many times the server opened the mesh again (`reopen`): runs over HTTP, promotions, engine changes.
    let reopened = Counter()

    static let orders: DomainID = "orders"
    static let mart: DomainID = "orders-mart"
    static let secret: DomainID = "secret-mart"

    /// `martSQL` and `martTests` change the mart's SQL and add tests to it (the pages' tests give it a long line
    /// and a test that warns).
    init(
        queryTimeout: TimeInterval = 10, queryMaxRows: Int = 1000, martSQL: String? = nil,
        martTests: [any DataTest] = [], configure: (inout MeshServerConfiguration) -> Void = { _ in }
    ) async throws {
        directory = try TemporaryDirectory("server")
        let home = directory.url
        let state = try ToyMesh.writeSource("orders", values: [1, 2, 3], home: home)
        var mart = ToyMesh.derived(
            Self.mart, from: [Self.orders],
            sql: martSQL ?? "CREATE TABLE items AS SELECT value * CAST(:factor AS INTEGER) AS value FROM orders.items",
            tests: [NotNull(table: "items", columns: ["value"], severity: .fail)] + martTests,
            parameters: ["factor": "1"])
        mart.outputs = [
            OutputPort(
                table: "items", description: "order values times the factor", grain: ["value"],
                columns: [ColumnContract("value", "INTEGER", "the value, multiplied by the factor parameter")])
        ]
        let secret = ToyMesh.derived(Self.secret, from: [Self.orders], sql: ToyMesh.union([Self.orders]))
        let domains = [ToyMesh.source(Self.orders, source: "orders"), mart, secret]
        mesh = try ToyMesh.mesh(domains, home: home)
        firstRun = try await mesh.run(RunRequest(sourceStates: ["orders": state])).runID
        var configuration = MeshServerConfiguration(
            port: 0, queryTimeout: queryTimeout, queryMaxRows: queryMaxRows,
            eventPollInterval: .milliseconds(50),
            prepareRun: { request in
                var request = request
                request.sourceStates = ["orders": state]
                return request
            }, title: "toy")
        let base = try DomainRegistry(domains)
        let kitchens = Kitchens(home: home)
        let meshConfiguration = mesh.configuration
        // As `serve` does: each HTTP run opens the mesh with the recipes promoted so far.
        let reopened = self.reopened
        configuration.reopen = {
            reopened.increment()
            return try Mesh(
                registry: kitchens.effectiveRegistry(for: nil, base: base), configuration: meshConfiguration)
        }
        configuration.kitchens = KitchenSupport(
            kitchens: kitchens, base: base, variations: VariationSet(), sourceStates: { ["orders": state] })
        configure(&configuration)
        server = try MeshHTTPServer(mesh: mesh, configuration: configuration)
        owner = try server.tokens.create(name: "owner", role: .owner, domains: ["*"]).secret
    }

    /// Runs the body against the server on a real socket (an ephemeral port on 127.0.0.1), then shuts the
    /// server down.
    func live<Value: Sendable>(_ body: @Sendable (LiveClient) async throws -> Value) async throws -> Value {
        let (ports, announce) = AsyncStream.makeStream(of: Int.self)
        let application = server.application(onRunning: { port in announce.yield(port) })
        return try await withThrowingTaskGroup(of: Value?.self) { group in
            group.addTask {
                try await application.runService(gracefulShutdownSignals: [])
                return nil
            }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next() else {
                throw LiveClient.Failure(description: "the server did not start")
            }
            let value = try await body(LiveClient(port: port))
            group.cancelAll()
            while let next = try? await group.next() { _ = next }
            return value
        }
    }

    func token(_ name: String, _ role: AccessRole, _ domains: [String], expires: Date? = nil) throws -> String {
        try server.tokens.create(name: name, role: role, domains: domains, expiresAt: expires).secret
    }
}

/// A count shared with the server's threads.
final class Counter: @unchecked Sendable {
    // @unchecked: `count` is only touched with `lock` held.
    private let lock = NSLock()
    private var count = 0
    func increment() { lock.withLock { count += 1 } }
    var value: Int { lock.withLock { count } }
}

/// A value shared between a test and the tasks or threads it starts.
final class Locked<Value>: @unchecked Sendable {
    // @unchecked: `stored` is only touched with `lock` held.
    private let lock = NSLock()
    private var stored: Value
    init(_ value: Value) { stored = value }
    var value: Value { lock.withLock { stored } }
    func mutate(_ change: (inout Value) -> Void) { lock.withLock { change(&stored) } }
}

extension LiveClient {
    /// GET with a bearer token (or none).
    func get(_ uri: String, token: String?, headers: HTTPFields = [:]) async throws -> TestResponse {
        var headers = headers
        if let token { headers[.authorization] = "Bearer \(token)" }
        return try await executeRequest(uri: uri, method: .get, headers: headers, body: nil)
    }

    /// Polls a run's URL until it leaves `queued` and `running` (10 s at most); returns its status.
    func waitForRun(_ url: String, token: String) async throws -> String {
        var state = ""
        for _ in 0..<200 {
            let polled = try await get(url, token: token)
            state =
                ((polled.json["run"] as? [String: Any])?["status"] as? String)
                ?? (polled.json["state"] as? String ?? "")
            if state != "queued" && state != "running" { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        return state
    }

    /// A form POST, as a browser sends it.
    func postForm(_ uri: String, _ fields: [(String, String)]) async throws -> TestResponse {
        let body = fields.map { "\(encoded($0.0))=\(encoded($0.1))" }.joined(separator: "&")
        return try await executeRequest(
            uri: uri, method: .post, headers: [.contentType: "application/x-www-form-urlencoded"],
            body: ByteBuffer(string: body))
    }

    func post(_ uri: String, token: String?, json: String) async throws -> TestResponse {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let token { headers[.authorization] = "Bearer \(token)" }
        return try await executeRequest(uri: uri, method: .post, headers: headers, body: ByteBuffer(string: json))
    }
}

extension TestResponse {
    var text: String { String(buffer: body) }
    /// The body as a JSON object (or array, as `["": array]`).
    var json: [String: Any] {
        let value = try? JSONSerialization.jsonObject(with: Data(buffer: body))
        if let object = value as? [String: Any] { return object }
        if let array = value as? [Any] { return ["": array] }
        return [:]
    }
    var array: [[String: Any]] { (json[""] as? [[String: Any]]) ?? [] }
    var errorMessage: String { ((json["error"] as? [String: Any])?["message"] as? String) ?? "" }
    var route: String? { headers[HTTPField.Name("x-mesh-route")!] }
}

/// `q` percent-encoded for a query string.
func encoded(_ text: String) -> String {
    text.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
}
