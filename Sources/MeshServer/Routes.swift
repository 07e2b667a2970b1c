import Foundation
import GRDB
import HTTPTypes
import Hummingbird
import MeshRuntime
import NIOCore

extension MeshHTTPServer {
    typealias Handler = @Sendable (Request, BasicRequestContext, Caller) async throws -> Response

    /// The router, and every route it serves: the OpenAPI document is checked against this list.
    func buildRouter() -> (Router<BasicRequestContext>, [RouteKey]) {
        let router = Router()
        var keys: [RouteKey] = []
        func add(
            _ method: HTTPRequest.Method, _ path: String, open: Bool = false, cached: Bool = false,
            _ handler: @escaping Handler
        ) {
            let key = RouteKey(method: method.rawValue, path: path)
            keys.append(key)
            let routerPath = path.split(separator: "/").map { segment in
                segment.hasPrefix("{") ? ":" + segment.dropFirst().dropLast() : segment
            }.joined(separator: "/")
            router.on(RouterPath("/" + routerPath), method: method) { request, context in
                await self.handle(request, context, key: key, open: open, cached: cached, handler)
            }
        }

        add(.get, "/health", open: true) { _, _, _ in
            try Respond.json(["status": "ok", "domains": "\(self.mesh.registry.ids.count)"])
        }
        add(.get, "/openapi.json", open: true) { _, _, _ in
            Respond.text(try OpenAPI.document(title: self.configuration.title), type: "application/json")
        }
        add(.get, "/login", open: true) { request, _, caller in try self.login(caller.query["token"], caller) }
        add(.post, "/login", open: true) { request, _, caller in
            let body = try await request.body.collect(upTo: 4096)
            return try self.login(parseQuery(String(buffer: body))["token"], caller)
        }
        add(.get, "/", cached: true) { _, _, caller in try self.meshOverview(caller) }
        add(.get, "/mesh.svg", cached: true) { _, _, caller in
            _ = try caller.require()
            return Respond.text(try MeshGraph.svg(mesh: self.mesh), type: "image/svg+xml")
        }
        add(.get, "/domains", cached: true) { _, _, caller in try self.meshOverview(caller) }
        add(.get, "/domains/{domain}", cached: true) { _, context, caller in
            let domain = try self.domain(context, caller)
            // One status read serves the description and the page's lineage graph.
            let statuses = try self.mesh.status()
            let detail = try DomainDetail.make(domain, mesh: self.mesh, statuses: statuses)
            if caller.wantsHTML { return Respond.html(try Page.domain(detail, mesh: self.mesh, statuses: statuses)) }
            return try Respond.json(detail)
        }
        add(.get, "/domains/{domain}/runs") { _, context, caller in
            let domain = try self.domain(context, caller)
            let limit = try caller.integer("limit", default: 50, max: 1000)
            return try Respond.json(try self.mesh.store.domainRuns(of: domain.id, limit: limit))
        }
        add(.post, "/domains/{domain}/runs") { request, context, caller in
            try await self.startRun(request, context, caller)
        }
        add(.get, "/domains/{domain}/runs/{run}") { _, context, caller in
            let domain = try self.domain(context, caller)
            let runID = try self.runID(context)
            guard let run = try self.mesh.store.domainRuns(in: runID).first(where: { $0.domain == domain.id }) else {
                if let pending = await self.launcher.status(of: runID), pending.domain == domain.id {
                    return try Respond.json(pending)
                }
                throw APIError(.notFound, "\(domain.id) took no part in run \(runID)")
            }
            let store = self.mesh.store
            return try Respond.json(
                DomainRunDetail(
                    run: run, steps: try store.steps(of: domain.id, in: runID),
                    tests: try store.testResults(of: domain.id, run: runID),
                    logs: try store.logs(of: runID, domain: domain.id)))
        }
        add(.get, "/domains/{domain}/tests") { _, context, caller in
            let domain = try self.domain(context, caller)
            if let run = caller.query["run"] {
                return try Respond.json(try self.mesh.store.testResults(of: domain.id, run: RunID(run)))
            }
            let limit = try caller.integer("limit", default: 500, max: 5000)
            return try Respond.json(try self.mesh.store.testResults(of: domain.id, limit: limit))
        }
        add(.get, "/domains/{domain}/lineage", cached: true) { _, context, caller in
            let domain = try self.domain(context, caller)
            return try Respond.json(
                LineageAnswer(
                    lineage: try self.mesh.lineage(of: domain.id),
                    consumers: try self.mesh.consumers(of: domain.id).map {
                        .init(domain: $0.domain, version: $0.version, builtFrom: $0.builtFrom)
                    }))
        }
        add(.get, "/domains/{domain}/lineage.svg", cached: true) { _, context, caller in
            let domain = try self.domain(context, caller)
            return Respond.text(try MeshGraph.lineageSVG(of: domain.id, mesh: self.mesh), type: "image/svg+xml")
        }
        add(.get, "/domains/{domain}/versions", cached: true) { _, context, caller in
            let domain = try self.domain(context, caller)
            return try Respond.json(try self.mesh.store.versions(of: domain.id))
        }
        add(.get, "/domains/{domain}/catalog", cached: true) { _, context, caller in
            let domain = try self.domain(context, caller)
            return try Respond.json(try Catalog.make(domain, mesh: self.mesh))
        }
        add(.get, "/runs") { _, _, caller in
            let token = try caller.require()
            let limit = try caller.integer("limit", default: 50, max: 1000)
            return try Respond.json(
                try self.mesh.store.runs(limit: limit).map { run in
                    RunDetail(
                        run: run,
                        domains: try self.mesh.store.domainRuns(in: run.runID).filter { token.covers($0.domain) })
                })
        }
        add(.get, "/runs/{run}") { _, context, caller in
            let token = try caller.require()
            let runID = try self.runID(context)
            guard let run = try self.mesh.store.run(runID) else {
                if let pending = await self.launcher.status(of: runID) { return try Respond.json(pending) }
                throw APIError(.notFound, "no run \(runID) in this mesh's history")
            }
            let detail = RunDetail(
                run: run, domains: try self.mesh.store.domainRuns(in: runID).filter { token.covers($0.domain) })
            if caller.wantsHTML { return Respond.html(try Page.run(detail, mesh: self.mesh)) }
            return try Respond.json(detail)
        }
        add(.get, "/domains/{domain}/tests/history") { _, context, caller in
            let domain = try self.domain(context, caller)
            let limit = try caller.integer("limit", default: 200, max: 5000)
            return try Respond.json(try self.testHistory(domain.id, test: caller.query["test"], limit: limit))
        }
        add(.get, "/domains/{domain}/problems") { _, context, caller in
            let domain = try self.domain(context, caller)
            return try Respond.json(
                try self.mesh.store.problems(of: domain.id, includeClosed: caller.query["open"] != "1"))
        }
        add(.post, "/domains/{domain}/problems") { request, context, caller in
            let domain = try self.domain(context, caller)
            struct Body: Decodable {
                var title: String
                var detail: String?
            }
            let body: Body = try await Self.decode(
                request, example: #"{"title": "TRx doubled for territory T012", "detail": "…"}"#)
            let problem = try await self.mesh.reportProblem(
                domain: domain.id, title: body.title, detail: body.detail ?? "", by: try caller.require().name)
            var response = try Respond.json(problem, status: .created)
            response.headers[.location] = "/domains/\(domain.id)/problems"
            return response
        }
        add(.post, "/domains/{domain}/problems/{problem}/close") { request, context, caller in
            let domain = try self.domain(context, caller, role: .owner)
            guard let id = Int64(context.parameters.get("problem") ?? ""),
                let problem = try self.mesh.store.problem(id),
                problem.domain == domain.id
            else { throw APIError(.notFound, "\(domain.id) has no such problem") }
            struct Body: Decodable {
                var resolution: String?
                var fixedByRun: String?
                enum CodingKeys: String, CodingKey { case resolution, fixedByRun = "fixed_by_run" }
            }
            let body: Body = try await Self.decode(
                request, example: #"{"resolution": "restated", "fixed_by_run": "r20261201T101500-3fa2b1c0"}"#)
            return try Respond.json(
                try await self.mesh.closeProblem(
                    id, by: try caller.require().name, resolution: body.resolution ?? "",
                    fixedBy: body.fixedByRun.map(RunID.init)))
        }
        add(.get, "/domains/{domain}/openlineage") { _, context, caller in
            let domain = try self.domain(context, caller)
            let limit = try caller.integer("limit", default: 200, max: 5000)
            return try Respond.jsonObject(
                try OpenLineage.recorded(home: self.mesh.home, domain: domain.id, limit: limit))
        }
        add(.get, "/openlineage") { _, _, caller in
            let token = try caller.require()
            let limit = try caller.integer("limit", default: 500, max: 10000)
            let events = try OpenLineage.recorded(
                home: self.mesh.home, run: try caller.query["run"].map { try self.checkedRunID($0) }, limit: limit)
            return try Respond.jsonObject(
                events.filter { event in
                    ((event["job"] as? [String: Any])?["name"] as? String).map { token.covers(DomainID($0)) } ?? false
                })
        }
        add(.get, "/metrics") { _, _, caller in
            _ = try caller.require()
            return Respond.text(
                try self.metrics.exposition(mesh: self.mesh), type: "text/plain; version=0.0.4; charset=utf-8")
        }
        addKitchenRoutes { method, path, handler in add(method, path, handler) }
        add(.get, "/events") { request, _, caller in try self.eventStream(request, caller) }
        add(.get, "/query") { _, _, caller in try await self.query(caller) }
        return (router, keys)
    }

    /// Authenticates, runs the handler, and turns every error into an answer for people.
    func handle(
        _ request: Request, _ context: BasicRequestContext, key: RouteKey, open: Bool, cached: Bool,
        _ handler: Handler
    ) async -> Response {
        let query = parseQuery(request.uri.query)
        let accept = request.headers[.accept] ?? ""
        let wantsHTML = query["format"] == "html" || (query["format"] == nil && accept.contains("text/html"))
        var caller = Caller(token: nil, query: query, wantsHTML: wantsHTML)
        var response: Response
        let started = ContinuousClock.now
        defer { metrics.request(route: key.description, status: response.status.code, duration: .now - started) }
        do {
            let secret = Self.bearer(request) ?? Self.cookie(request, "mesh_token")
            if open {
                caller.token = secret.flatMap { try? tokens.authenticate($0) }
            } else {
                caller.token = try tokens.authenticate(secret)
            }
            if cached, let token = caller.token {
                // Metadata changes only with the run history (every change comes with an event) or the clock
                // (freshness): the stamp is the newest event id and the minute.
                let stamp =
                    "\(try mesh.store.latestEventID())-\(Int(mesh.configuration.now().timeIntervalSince1970 / 60))"
                let cacheKey = "\(request.uri.string)|\(token.id)|\(wantsHTML)"
                if let hit = cache.get(cacheKey, stamp: stamp) {
                    response = hit
                } else {
                    response = try await handler(request, context, caller)
                    if response.status == .ok { cache.put(cacheKey, stamp: stamp, response) }
                }
            } else {
                response = try await handler(request, context, caller)
            }
        } catch let denied as AccessDenied {
            response = Respond.error(.init(code: denied.status), denied.message, html: wantsHTML)
            if denied.status == 401 { response.headers[.wwwAuthenticate] = "Bearer realm=\"mesh\"" }
        } catch let error as APIError {
            response = Respond.error(error.status, error.message, html: wantsHTML)
        } catch let error as MeshError {
            let status: HTTPResponse.Status
            switch error.code {
            case .unknownDomain, .notFound: status = .notFound
            case .forbidden: status = .forbidden
            case .busy: status = .conflict
            case .query, .readOnly, .invalid, .invalidDefinition, .cycle: status = .badRequest
            case .stepFailed, .syncViolation, .storage: status = .internalServerError
            }
            response = Respond.error(status, error.message, html: wantsHTML)
        } catch {
            logger.error("\(key): \(error)")
            response = Respond.error(.internalServerError, "the server failed: \(error)", html: wantsHTML)
        }
        response.headers[HTTPField.Name("x-mesh-route")!] = key.description
        return response
    }

    static func bearer(_ request: Request) -> String? {
        guard let value = request.headers[.authorization] else { return nil }
        let parts = value.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return String(value) }
        return String(parts[1]).trimmingCharacters(in: .whitespaces)
    }

    static func cookie(_ request: Request, _ name: String) -> String? {
        for header in request.headers[values: .cookie] {
            for pair in header.split(separator: ";") {
                let parts = pair.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
                if parts.count == 2, parts[0] == name { return String(parts[1]) }
            }
        }
        return nil
    }

    /// The domain named in the path, which the caller's token must cover.
    func domain(_ context: BasicRequestContext, _ caller: Caller, role: AccessRole = .reader) throws -> Domain {
        let name = context.parameters.get("domain") ?? ""
        guard let domain = mesh.registry[DomainID(name)] else {
            throw APIError(
                .notFound,
                "no domain '\(name)'; the domains are: \(mesh.registry.ids.map(\.rawValue).joined(separator: ", "))")
        }
        _ = try caller.require(role, on: domain.id)
        return domain
    }

    func runID(_ context: BasicRequestContext) throws -> RunID {
        try checkedRunID(context.parameters.get("run") ?? "")
    }

    func checkedRunID(_ raw: String) throws -> RunID {
        guard !raw.isEmpty, raw.count <= 80, raw.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" }) else {
            throw APIError(.notFound, "'\(raw)' is not a run id (they look like r20261201T101500-3fa2b1c0)")
        }
        return RunID(raw)
    }

    /// A JSON body, or a 400 that shows what to send.
    /// `whenEmpty` answers for a request without a body, where the route allows one.
    static func decode<T: Decodable>(_ request: Request, example: String, whenEmpty: T? = nil) async throws -> T {
        let body = try await request.body.collect(upTo: 64 * 1024)
        if body.readableBytes == 0, let whenEmpty { return whenEmpty }
        do {
            return try JSONDecoder().decode(T.self, from: Data(buffer: body))
        } catch {
            throw APIError(
                .badRequest, "the body is not what this route takes: send JSON such as \(example) (\(error))")
        }
    }

    /// A test's results run by run, oldest first, with what it measured.
    func testHistory(_ domain: DomainID, test: String?, limit: Int) throws -> [[String: String]] {
        try mesh.store.pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT * FROM (SELECT run_id, at, step, test, status, failures, value FROM test_result
                    WHERE domain = ? AND (? IS NULL OR test = ?) ORDER BY at DESC LIMIT ?) ORDER BY at
                    """, arguments: [domain, test, test, limit]
            ).map { row in
                var entry: [String: String] = [
                    "run_id": row["run_id"], "at": row["at"], "step": row["step"], "test": row["test"],
                    "status": row["status"], "failures": "\(row["failures"] as Int)",
                ]
                if let value = row["value"] as Double? { entry["value"] = "\(value)" }
                return entry
            }
        }
    }

    /// `/login?token=…&next=/path`: keeps the token in an HTTP-only cookie so that pages work in a browser.
    func login(_ secret: String?, _ caller: Caller) throws -> Response {
        guard let secret, !secret.isEmpty else {
            return Respond.html(
                Page.document(
                    title: "Sign in",
                    body:
                        "<h1>Sign in</h1><form method=\"post\" action=\"/login\"><label>Token <input name=\"token\" type=\"password\" size=\"60\"></label> <button>Sign in</button></form>"
                ))
        }
        let token = try tokens.authenticate(secret)
        // Only a path of this server: never an absolute URL (no open redirect).
        var next = caller.query["next"] ?? "/"
        if !next.hasPrefix("/") || next.hasPrefix("//") || next.contains("\\") { next = "/" }
        var response = Response(status: .seeOther)
        response.headers[.location] = next
        response.headers[.setCookie] = "mesh_token=\(secret); Path=/; HttpOnly; SameSite=Strict"
        response.headers[.contentType] = "text/plain; charset=utf-8"
        response.body = .init(byteBuffer: ByteBuffer(string: "signed in as \(token.name) (\(token.role.rawValue))"))
        return response
    }

    func meshOverview(_ caller: Caller) throws -> Response {
        let token = try caller.require()
        let all = try mesh.status()
        let summaries = all.filter { token.covers($0.domain) }.map(DomainSummary.init)
        if caller.wantsHTML {
            return Respond.html(try Page.mesh(summaries, mesh: mesh, title: configuration.title, statuses: all))
        }
        return try Respond.json(summaries)
    }

    /// Process linkage: "I am done, you start, here are the parameters".
    func startRun(_ request: Request, _ context: BasicRequestContext, _ caller: Caller) async throws -> Response {
        let domain = try self.domain(context, caller, role: .runner)
        let token = try caller.require()
        struct Body: Decodable {
            var parameters: [String: String]?
            var variation: String?
            var force: Bool?
            var fullRefresh: Bool?
            enum CodingKeys: String, CodingKey { case parameters, variation, force, fullRefresh = "full_refresh" }
        }
        let parsed: Body = try await Self.decode(
            request, example: #"{"parameters": {"name": "value"}, "variation": "NAME", "force": true}"#,
            whenEmpty: Body())
        let parameters = parsed.parameters ?? [:]
        let known = Set(domain.parameters.keys).union(
            mesh.configuration.variations.variations.values.flatMap {
                Array(($0.domains[domain.id.rawValue] ?? [:]).keys)
            })
        for (name, value) in parameters {
            guard known.contains(name) else {
                throw APIError(
                    .badRequest,
                    "\(domain.id) has no parameter '\(name)'"
                        + (known.isEmpty
                            ? "; it takes none" : "; its parameters are: \(known.sorted().joined(separator: ", "))"))
            }
            guard value.count <= 1000, !value.contains(where: { $0.isNewline || $0.asciiValue.map { $0 < 32 } == true })
            else {
                throw APIError(.badRequest, "the value of parameter '\(name)' is too long or holds control characters")
            }
        }
        if let variation = parsed.variation, mesh.configuration.variations.variations[variation] == nil {
            throw APIError(
                .badRequest,
                "no variation '\(variation)'; the variations are: \(mesh.configuration.variations.variations.keys.sorted().joined(separator: ", "))"
            )
        }
        let runRequest = RunRequest(
            variation: parsed.variation, only: [domain.id],
            parameters: parameters.isEmpty ? [:] : [domain.id: parameters],
            force: (parsed.force ?? false) || (parsed.fullRefresh ?? false) ? [domain.id] : [],
            fullRefresh: parsed.fullRefresh ?? false, trigger: "http:\(token.name)")
        let pending = await launcher.launch(runRequest, domain: domain.id, by: token.name)
        struct Accepted: Encodable {
            var runID: RunID
            var state: String
            var url: String
            var domainURL: String
            enum CodingKeys: String, CodingKey { case runID = "run_id", state, url, domainURL = "domain_url" }
        }
        var response = try Respond.json(
            Accepted(
                runID: pending.runID, state: pending.state, url: "/runs/\(pending.runID)",
                domainURL: "/domains/\(domain.id)/runs/\(pending.runID)"), status: .accepted)
        response.headers[.location] = "/runs/\(pending.runID)"
        return response
    }

    /// Read-only SQL over the published domains the token covers, with a time and a row limit.
    func query(_ caller: Caller) async throws -> Response {
        let token = try caller.require()
        guard let sql = caller.query["sql"], !sql.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw APIError(
                .badRequest,
                "give the SQL as ?sql=..., for example /query?sql=SELECT%20COUNT(*)%20FROM%20physician_master.physician"
            )
        }
        guard sql.utf8.count <= configuration.queryMaxLength else {
            throw APIError(.contentTooLarge, "the SQL is longer than \(configuration.queryMaxLength) bytes")
        }
        let maxRows = try caller.integer("limit", default: configuration.queryMaxRows, max: configuration.queryMaxRows)
        let mesh = self.mesh
        let timeout = configuration.queryTimeout
        let started = ContinuousClock.now
        // Off the server's threads: a long query must not hold up other requests.
        let result: QueryResult = try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(
                    with: Result {
                        try mesh.query(sql, maxRows: maxRows, timeout: timeout, allowed: { token.covers($0) })
                    })
            }
        }
        let elapsed = ContinuousClock.now - started
        if caller.query["format"] == "csv" {
            var csv = result.columns.map(CSV.field).joined(separator: ",") + "\r\n"
            for row in result.rows { csv += row.map { CSV.field($0.description) }.joined(separator: ",") + "\r\n" }
            var response = Respond.text(csv, type: "text/csv; charset=utf-8")
            if result.truncated { response.headers[HTTPField.Name("x-mesh-truncated")!] = "true" }
            return response
        }
        struct Answer: Encodable {
            var columns: [String]
            var rows: [[QueryValue]]
            var rowCount: Int
            var truncated: Bool
            var versions: [String: Int]
            var elapsedMS: Double
            enum CodingKeys: String, CodingKey {
                case columns, rows, rowCount = "row_count", truncated, versions, elapsedMS = "elapsed_ms"
            }
        }
        return try Respond.json(
            Answer(
                columns: result.columns, rows: result.rows, rowCount: result.rows.count, truncated: result.truncated,
                versions: Dictionary(uniqueKeysWithValues: result.versions.map { ($0.key.rawValue, $0.value) }),
                elapsedMS: Double(elapsed.components.attoseconds / 1_000_000_000_000) / 1000
                    + Double(elapsed.components.seconds) * 1000))
    }
}

extension Caller {
    /// An integer query parameter between 1 and `max`.
    func integer(_ name: String, default value: Int, max: Int) throws -> Int {
        guard let raw = query[name] else { return value }
        guard let number = Int(raw), number >= 1 else {
            throw APIError(.badRequest, "?\(name)= takes a whole number from 1 to \(max); '\(raw)' is not one")
        }
        return Swift.min(number, max)
    }
}

enum CSV {
    static func field(_ value: String) -> String {
        value.contains(where: { $0 == "," || $0 == "\"" || $0.isNewline })
            ? "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : value
    }
}
