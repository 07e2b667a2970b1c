import ArgumentParser
import Foundation
import Hummingbird
import Ingest
import MeshRuntime
import MeshServer

/// `serve`: the HTTP surface of the mesh.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the mesh over HTTP: domains, runs, tests, lineage, events, process linkage and read-only SQL.",
        discussion: """
            Every route but /health, /openapi.json and /login needs a token (`pharma-mesh token create`), sent as
            `Authorization: Bearer TOKEN`; a browser signs in once at /login. SIGTERM or Ctrl-C stops the server
            after the requests in flight, stopping running queries at once (and everything after --shutdown-grace).
            Queries run on threads of their own, at most --query-concurrency at once (one token at most
            --query-concurrency-per-token); one more is answered 503 (429 for the token) with Retry-After.
            """)

    @OptionGroup var mesh: MeshOptions
    @Option(help: "The port to listen on (0: any free port).") var port = 8080
    @Option(help: "The address to listen on; 0.0.0.0 for every interface.") var host = "127.0.0.1"
    @Option(help: "Seconds after which a query is stopped.") var queryTimeout: Double = 10
    @Option(help: "The most rows a query returns.") var queryMaxRows = 10_000
    @Option(help: "Queries that run at once (default: the number of cores); one more is answered 503.")
    var queryConcurrency = MeshServerConfiguration.defaultQueryConcurrency
    @Option(help: "Queries one token runs at once (default: one less than --query-concurrency, at least 1).")
    var queryConcurrencyPerToken: Int?
    @Option(help: "Seconds SIGTERM or Ctrl-C waits for requests in flight before the server stops regardless.")
    var shutdownGrace: Double = 5

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port \(port) is not a port (0 to 65535)") }
        guard queryTimeout > 0, queryMaxRows > 0 else {
            throw ValidationError("--query-timeout and --query-max-rows must be positive")
        }
        guard queryConcurrency > 0, (queryConcurrencyPerToken ?? 1) > 0 else {
            throw ValidationError("--query-concurrency and --query-concurrency-per-token must be at least 1")
        }
        guard shutdownGrace >= 0, shutdownGrace <= 3600 else {
            throw ValidationError("--shutdown-grace takes seconds from 0 to 3600")
        }
    }

    func run() async throws {
        // A run asked for over HTTP waits for one started from the command line instead of failing.
        let mesh = try self.mesh.open(lockWait: 3600, access: .read)
        let home = mesh.home
        var configuration = MeshServerConfiguration(
            host: host, port: port, queryTimeout: queryTimeout, queryMaxRows: queryMaxRows,
            prepareRun: { request in
                var request = request
                request.sourceStates = try Landing.sourceStates(home: home)
                return request
            }, title: "pharma-mesh")
        configuration.queryConcurrency = queryConcurrency
        configuration.queryConcurrencyPerToken = queryConcurrencyPerToken
        configuration.shutdownGrace = .milliseconds(Int64(shutdownGrace * 1000))
        let grace = shutdownGrace
        configuration.shutdownOverdue = {
            Console.error(
                "the server was still busy \(String(format: "%g", 2 * grace)) s after it was asked to stop; stopping now (a build it left unfinished is redone by the next run)"
            )
            Foundation.exit(1)
        }
        // Each run asked for over HTTP opens the mesh again, and so does the server after a promotion or an
        // engine change: recipe changes promoted meanwhile are built and served.
        let options = self.mesh
        configuration.reopen = { try options.open(lockWait: 3600, access: .read) }
        configuration.kitchens = KitchenSupport(
            kitchens: options.kitchens, base: try options.baseRegistry(),
            variations: mesh.configuration.variations, sourceStates: { try Landing.sourceStates(home: home) })
        let server = try MeshHTTPServer(mesh: mesh, configuration: configuration)
        let tokens = try server.tokens.list().filter { $0.revokedAt == nil }.count
        let host = self.host
        try await server.run(onRunning: { port in
            print("serving \(mesh.registry.ids.count) domains of \(home.path) on http://\(host):\(port)/")
            if tokens == 0 {
                print(
                    "no token yet: create one with `pharma-mesh token create --name NAME --role reader` (in another terminal)"
                )
            }
            fflush(nil)
        })
    }
}

/// `token create|list|revoke`: who may read, run or own which domains over HTTP.
struct TokenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token", abstract: "Create, list and revoke the tokens of the HTTP surface.",
        subcommands: [Create.self, List.self, Revoke.self])

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a token; its secret is printed once (only a hash is kept).")
        @OptionGroup var mesh: MeshOptions
        @Option(help: "A name for the token: who or what uses it.") var name: String
        @Option(help: "reader (read and query), runner (also start runs), owner (everything).") var role: String
        @Option(help: "The domains it covers, comma-separated, or * for all.") var domains = "*"
        @Option(help: "It expires after this long: 90d, 12h, 30m; or on a date (YYYY-MM-DD). Default: never.")
        var expiresIn: String?

        func run() throws {
            guard let role = AccessRole(rawValue: role) else {
                throw ValidationError("--role \(role): choose reader, runner or owner")
            }
            let mesh = try self.mesh.open()
            let list = domains.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            for name in list where name != "*" { try mesh.requireDomain(DomainID(name)) }
            let expiry = try expiresIn.map(Self.expiry)
            let (secret, token) = try AccessTokens(home: mesh.home).create(
                name: name, role: role, domains: list, expiresAt: expiry)
            print(secret)
            Console.error(
                "created \(token.id) '\(token.name)': \(token.role.rawValue) of \(token.domains.joined(separator: ", "))"
                    + (expiry.map { ", expires \(Console.date($0))" } ?? "")
                    + ". The secret above is shown once: keep it.")
        }

        static func expiry(_ text: String) throws -> Date {
            if let date = LandingDate.parse(text) {
                var calendar = Calendar(identifier: .gregorian)
                calendar.timeZone = TimeZone(identifier: "UTC")!
                return calendar.date(from: DateComponents(year: date.year, month: date.month, day: date.day))!
            }
            let units: [Character: Double] = ["d": 86400, "h": 3600, "m": 60]
            guard let unit = text.last.flatMap({ units[$0] }), let count = Double(text.dropLast()), count > 0 else {
                throw ValidationError("--expires-in \(text): write 90d, 12h, 30m or a date YYYY-MM-DD")
            }
            return Date().addingTimeInterval(count * unit)
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every token (never the secrets).")
        @OptionGroup var mesh: MeshOptions
        @Flag(help: "Print JSON instead of a table.") var json = false
        func run() throws {
            let tokens = try AccessTokens(home: mesh.homeURL).list()
            if json {
                print(
                    try JSON.string(
                        tokens.map { t in
                            [
                                "id": t.id, "name": t.name, "role": t.role.rawValue,
                                "domains": t.domains.joined(separator: ","),
                                "expires_at": t.expiresAt.map(Console.date) ?? "",
                                "revoked_at": t.revokedAt.map(Console.date) ?? "",
                            ]
                        }))
                return
            }
            let now = Date()
            print(
                Console.table(
                    ["ID", "NAME", "ROLE", "DOMAINS", "CREATED", "EXPIRES", "STATE"],
                    tokens.map { t in
                        [
                            t.id, t.name, t.role.rawValue, t.domains.joined(separator: ","), Console.date(t.createdAt),
                            t.expiresAt.map(Console.date) ?? "never",
                            t.revokedAt != nil
                                ? "revoked" : (t.expiresAt.map { $0 <= now } ?? false) ? "expired" : "live",
                        ]
                    }))
        }
    }

    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke a token by name or id; it stops working at once.")
        @OptionGroup var mesh: MeshOptions
        @Argument(help: "The token's name or id.") var token: String
        func run() throws {
            guard try AccessTokens(home: mesh.homeURL).revoke(token) else {
                throw ValidationError("no live token named \(token); see `pharma-mesh token list`")
            }
            print("revoked \(token)")
        }
    }
}
