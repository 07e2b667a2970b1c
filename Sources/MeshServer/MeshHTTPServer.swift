import Foundation
import HTTPTypes
import Hummingbird
import Logging
import MeshRuntime
import NIOCore
import ServiceLifecycle

/// How the HTTP surface of a mesh is served.
public struct MeshServerConfiguration: Sendable {
    public var host: String
    /// 0 picks a free port (tests); the bound port is passed to `onRunning`.
    public var port: Int
    /// A query is stopped after this many seconds (by SQLite itself: its progress handler checks the clock).
    public var queryTimeout: TimeInterval
    /// A query returns at most this many rows (`truncated` says when it was cut); `?limit=` may ask for fewer.
    public var queryMaxRows: Int
    /// A query returns at most this many bytes of values (`truncated` again); see `QueryLimits.maxResultBytes`.
    public var queryMaxBytes: Int = 32 << 20
    /// The longest SQL text accepted.
    public var queryMaxLength: Int
    /// Queries that run at once, each on a thread of its own; one more is answered 503 with `Retry-After`
    /// at once, never queued. The default is the machine's core count.
    public var queryConcurrency: Int = MeshServerConfiguration.defaultQueryConcurrency
    /// Queries one token runs at once; one more is answered 429 with `Retry-After`. The default leaves a
    /// slot for other tokens: one less than `queryConcurrency` (at least 1).
    public var queryConcurrencyPerToken: Int? = nil
    /// How long SIGTERM or Ctrl-C waits for requests in flight (running queries are stopped at once) before
    /// the server stops regardless.
    public var shutdownGrace: Duration = .seconds(5)
    /// Called when the server has not stopped twice `shutdownGrace` after SIGTERM (a build asked for over
    /// HTTP that ignores cancellation, say): `serve` exits the process there. nil waits as long as it takes.
    public var shutdownOverdue: (@Sendable () -> Void)? = nil
    /// How often the event stream looks for new events in the run history (runs may happen in other processes).
    public var eventPollInterval: Duration
    /// A comment line keeps idle event streams open through proxies.
    public var eventHeartbeat: Duration
    /// Completes a run request before it runs: the composing program fills in what only it knows (for example
    /// the state of its external sources).
    public var prepareRun: @Sendable (RunRequest) async throws -> RunRequest
    /// The title of the pages.
    public var title: String
    /// How often the server looks for domains that missed their deadline (a `freshness.late` event each).
    public var freshnessInterval: Duration = .seconds(60)
    /// Opens the mesh afresh for each run started over HTTP, so that recipe changes promoted from a kitchen
    /// since the server started are what gets built; nil runs on the server's mesh.
    public var reopen: (@Sendable () throws -> Mesh)? = nil
    /// Development linkage over HTTP: the code's domains before any recipe change, and the source states a
    /// kitchen run reads; nil leaves the kitchen routes answering 404.
    package var kitchens: KitchenSupport? = nil

    public init(
        host: String = "127.0.0.1", port: Int = 8080, queryTimeout: TimeInterval = 10, queryMaxRows: Int = 10_000,
        queryMaxLength: Int = 20_000, eventPollInterval: Duration = .milliseconds(250),
        eventHeartbeat: Duration = .seconds(15),
        prepareRun: @escaping @Sendable (RunRequest) async throws -> RunRequest = { $0 }, title: String = "mesh"
    ) {
        self.host = host
        self.port = port
        self.queryTimeout = queryTimeout
        self.queryMaxRows = queryMaxRows
        self.queryMaxLength = queryMaxLength
        self.eventPollInterval = eventPollInterval
        self.eventHeartbeat = eventHeartbeat
        self.prepareRun = prepareRun
        self.title = title
    }

    /// The machine's cores (at least 1).
    public static var defaultQueryConcurrency: Int { max(1, ProcessInfo.processInfo.activeProcessorCount) }

    /// `queryConcurrencyPerToken`, or its default.
    var queriesPerToken: Int {
        max(1, min(queryConcurrency, queryConcurrencyPerToken ?? (queryConcurrency - 1)))
    }
}

/// The URL surface of a mesh: every domain's four W's and an H, runs, tests, lineage, versions, catalog,
/// the event stream, process linkage and read-only SQL, as JSON, and as pages where a browser asks.
///
/// ```swift
/// let server = try MeshHTTPServer(mesh: mesh, configuration: MeshServerConfiguration(port: 8080))
/// try await server.application().runService()
/// ```
public final class MeshHTTPServer: Sendable {
    public let tokens: AccessTokens
    public let configuration: MeshServerConfiguration
    let meshes: MeshHolder
    let launcher: RunLauncher
    let logger: Logger
    let cache = ResponseCache(capacity: 512)
    let metrics = ServerMetrics()
    let queries: QueryWorkers

    public init(mesh: Mesh, configuration: MeshServerConfiguration, tokens: AccessTokens? = nil) throws {
        self.configuration = configuration
        self.tokens = try tokens ?? AccessTokens(home: mesh.home)
        self.launcher = RunLauncher(mesh: mesh, reopen: configuration.reopen, prepare: configuration.prepareRun)
        var logger = Logger(label: "mesh-server")
        logger.logLevel = mesh.configuration.logger.logLevel
        self.logger = logger
        self.meshes = try MeshHolder(mesh, reopen: configuration.reopen, logger: logger)
        self.queries = QueryWorkers(
            limit: max(1, configuration.queryConcurrency), perCaller: configuration.queriesPerToken)
    }

    /// The mesh the server answers from: the one it started with, or the one opened again after a kitchen
    /// promotion or an engine change (`MeshHolder`).
    public var mesh: Mesh { meshes.current }

    /// The application, ready to run; `onRunning` receives the bound port.
    public func application(onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) -> some ApplicationProtocol {
        let (router, _) = buildRouter()
        let meshes = self.meshes
        return Application(
            router: router,
            configuration: ApplicationConfiguration(
                address: .hostname(configuration.host, port: configuration.port), serverName: "pharma-mesh"),
            services: [FreshnessWatcher(mesh: { meshes.current }, interval: configuration.freshnessInterval)],
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? 0) },
            logger: logger)
    }

    /// Serves until SIGTERM or SIGINT, then stops within `shutdownGrace`: running queries are stopped at
    /// once (each query's handler is told of the shutdown), requests in flight get that long to finish,
    /// then whatever still runs is cancelled, and `shutdownOverdue` is called if even that has not ended
    /// it after as long again.
    public func run(onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        // Services shut down in reverse order: the watchdog hears of the shutdown first, starts its clock
        // and ends, then the application shuts down.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: application(onRunning: onRunning))
        ]
        if let overdue = configuration.shutdownOverdue {
            services.append(.init(service: ShutdownWatchdog(after: configuration.shutdownGrace * 2, overdue: overdue)))
        }
        var group = ServiceGroupConfiguration(
            services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        group.maximumGracefulShutdownDuration = configuration.shutdownGrace
        try await ServiceGroup(configuration: group).run()
    }

    /// Waits until every run started over HTTP has finished (tests, shutdown).
    public func drainRuns() async { await launcher.drain() }

    /// Every route the router serves, as `METHOD /path/{parameter}`, in registration order.
    public var routes: [String] { buildRouter().1.map(\.description) }
}

/// Calls `overdue` on a thread of its own once `after` has passed since the graceful shutdown began.
struct ShutdownWatchdog: Service {
    let after: Duration
    let overdue: @Sendable () -> Void

    func run() async throws {
        do { try await gracefulShutdown() } catch { return }  // cancelled: the group is ending anyway
        let seconds = Double(after.components.seconds) + Double(after.components.attoseconds) / 1e18
        let overdue = self.overdue
        Thread {
            Thread.sleep(forTimeInterval: seconds)
            overdue()
        }.start()
    }
}

/// What the kitchen routes need from the program that composes the mesh.
package struct KitchenSupport: Sendable {
    package var kitchens: Kitchens
    /// The domains as the code defines them (before any recipe change).
    package var base: DomainRegistry
    package var variations: VariationSet
    /// The state of the external sources, for a kitchen run.
    package var sourceStates: @Sendable () throws -> [String: String]
    package init(
        kitchens: Kitchens, base: DomainRegistry, variations: VariationSet,
        sourceStates: @escaping @Sendable () throws -> [String: String]
    ) {
        self.kitchens = kitchens
        self.base = base
        self.variations = variations
        self.sourceStates = sourceStates
    }
}

/// Answers of metadata routes, kept while the run history has not changed.
final class ResponseCache: @unchecked Sendable {
    private let lock = NSLock()
    private var entries: [String: (stamp: String, response: Response)] = [:]
    private let capacity: Int
    init(capacity: Int) { self.capacity = capacity }

    func get(_ key: String, stamp: String) -> Response? {
        lock.withLock { entries[key].flatMap { $0.stamp == stamp ? $0.response : nil } }
    }

    func put(_ key: String, stamp: String, _ response: Response) {
        lock.withLock {
            if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            entries[key] = (stamp, response)
        }
    }
}

/// One registered route, as the OpenAPI document names it.
struct RouteKey: Hashable, CustomStringConvertible {
    var method: String
    var path: String
    var description: String { "\(method) \(path)" }
}

/// An error a handler returns to the caller, with the HTTP status, a sentence for people, and any
/// headers the answer needs (`Retry-After`).
struct APIError: Error {
    var status: HTTPResponse.Status
    var message: String
    var headers: HTTPFields
    init(_ status: HTTPResponse.Status, _ message: String, headers: HTTPFields = [:]) {
        self.status = status
        self.message = message
        self.headers = headers
    }
}

/// The caller of one request: who it is (when a token was given) and what it asked for.
struct Caller: Sendable {
    var token: AccessToken?
    var query: [String: String]
    var wantsHTML: Bool

    /// The token, or the reason there is none.
    func require() throws -> AccessToken {
        guard let token else { throw AccessDenied.missing }
        return token
    }

    func require(_ role: AccessRole, on domain: DomainID) throws -> AccessToken {
        let token = try require()
        guard token.covers(domain) else {
            throw AccessDenied.forbidden("the token \(token.name) does not cover \(domain)")
        }
        guard token.role >= role else {
            throw AccessDenied.forbidden(
                "the token \(token.name) is a \(token.role.rawValue); this needs the \(role.rawValue) role on \(domain)"
            )
        }
        return token
    }
}

/// Parses `a=1&b=x+y` (form encoding: `+` is a space).
func parseQuery(_ query: String?) -> [String: String] {
    var result: [String: String] = [:]
    for pair in (query ?? "").split(separator: "&") {
        let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        func decode(_ s: Substring) -> String {
            let spaced = s.replacingOccurrences(of: "+", with: " ")
            return spaced.removingPercentEncoding ?? spaced
        }
        let key = decode(parts[0])
        if result[key] == nil { result[key] = parts.count > 1 ? decode(parts[1]) : "" }
    }
    return result
}

enum Respond {
    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }()

    static func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) throws -> Response {
        let data = try encoder.encode(value)
        return Response(
            status: status, headers: [.contentType: "application/json; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// JSON of plain objects (OpenLineage events).
    static func jsonObject(_ value: Any) throws -> Response {
        let data = try JSONSerialization.data(
            withJSONObject: value, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        return Response(
            status: .ok, headers: [.contentType: "application/json; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func text(_ text: String, type: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: type], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func html(_ html: String, status: HTTPResponse.Status = .ok) -> Response {
        text(html, type: "text/html; charset=utf-8", status: status)
    }

    static func error(_ status: HTTPResponse.Status, _ message: String, html: Bool) -> Response {
        if html {
            return Self.html(
                Page.document(
                    title: "\(status.code) \(status.reasonPhrase)",
                    body:
                        "<h1>\(status.code) \(Page.escape(status.reasonPhrase))</h1><p class=\"error\">\(Page.escape(message))</p>"
                        + (status.code == 401
                            ? "<form method=\"post\" action=\"/login\"><label>Token <input name=\"token\" type=\"password\" size=\"60\"></label> <button>Sign in</button></form>"
                            : "")), status: status)
        }
        struct Body: Encodable {
            struct Inner: Encodable {
                var status: Int
                var message: String
            }
            var error: Inner
        }
        return (try? json(Body(error: .init(status: status.code, message: message)), status: status))
            ?? text(message, type: "text/plain", status: status)
    }
}
