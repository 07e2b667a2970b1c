import Foundation
import GRDB
import HTTPTypes
import Hummingbird
import MeshRuntime
import NIOCore
import ServiceLifecycle

extension MeshHTTPServer {
    typealias Handler = @Sendable (Request, BasicRequestContext, Caller) async throws -> Response

    /// The router, and every route it serves: the OpenAPI document is checked against this list.
    func buildRouter() -> (Router<BasicRequestContext>, [RouteKey]) {
        let routes = RouteTable()
        addSessionRoutes(routes)
        addDomainRoutes(routes)
        addRunRoutes(routes)
        addQualityRoutes(routes)
        addLineageRoutes(routes)
        routes.add(.get, "/metrics") { _, _, caller in
            let token = try caller.require()
            return Respond.text(
                try self.metrics.exposition(mesh: self.mesh, queries: self.queries, covers: token.covers),
                type: "text/plain; version=0.0.4; charset=utf-8")
        }
        addKitchenRoutes(routes)
        routes.add(.get, "/events") { request, _, caller in try self.eventStream(request, caller) }
        routes.add(.get, "/query") { _, _, caller in try await self.query(caller) }
        let router = Router()
        for route in routes.routes {
            let routerPath = route.key.path.split(separator: "/").map { segment in
                segment.hasPrefix("{") ? ":" + segment.dropFirst().dropLast() : segment
            }.joined(separator: "/")
            router.on(RouterPath("/" + routerPath), method: route.method) { request, context in
                await self.handle(
                    request, context, key: route.key, open: route.open, cached: route.cached, route.handler)
            }
        }
        return (router, routes.routes.map(\.key))
    }

    /// Health, the OpenAPI document and signing in: the routes open to everyone.
    private func addSessionRoutes(_ routes: RouteTable) {
        routes.add(.get, "/health", open: true) { _, _, caller in
            try self.answer(["status": "ok", "domains": "\(self.mesh.registry.ids.count)"], caller, title: "health")
        }
        routes.add(.get, "/openapi.json", open: true) { _, _, _ in
            Respond.text(try OpenAPI.document(title: self.configuration.title), type: "application/json")
        }
        routes.add(.get, "/login", open: true) { _, _, caller in
            // A token in a URL ends up in histories, logs and Referer headers: it never signs in.
            if caller.query["token"] != nil {
                return Self.signInForm(
                    next: caller.query["next"], status: .badRequest,
                    error:
                        "a token in the URL is not accepted: send it in the form below (a POST body) or as an Authorization header"
                )
            }
            return Self.signInForm(next: caller.query["next"])
        }
        routes.add(.post, "/login", open: true) { request, _, caller in
            let body = try await request.body.collect(upTo: 4096)
            let form = parseQuery(String(buffer: body))
            return try self.login(form["token"], next: form["next"] ?? caller.query["next"])
        }
    }

    /// The mesh overview and each domain's description, runs, tests, lineage, versions and catalog.
    private func addDomainRoutes(_ routes: RouteTable) {
        routes.add(.get, "/", cached: true) { _, _, caller in try self.meshOverview(caller) }
        routes.add(.get, "/mesh.svg", cached: true) { _, _, caller in
            _ = try caller.require()
            return Respond.text(try MeshGraph.svg(mesh: self.mesh), type: "image/svg+xml")
        }
        routes.add(.get, "/domains", cached: true) { _, _, caller in try self.meshOverview(caller) }
        routes.add(.get, "/domains/{domain}", cached: true) { _, context, caller in
            let domain = try self.domain(context, caller)
            // One status read serves the description and the page's lineage graph.
            let statuses = try self.mesh.status()
            let detail = try DomainDetail.make(domain, mesh: self.mesh, statuses: statuses)
            if caller.wantsHTML { return Respond.html(try Page.domain(detail, mesh: self.mesh, statuses: statuses)) }
            return try Respond.json(detail)
        }
        routes.add(.get, "/domains/{domain}/runs") { _, context, caller in
            let domain = try self.domain(context, caller)
            let limit = try caller.integer("limit", default: 50, max: 1000)
            let runs = try self.mesh.store.domainRuns(of: domain.id, limit: limit)
            return try self.answer(runs, caller, title: "\(domain.id) runs") { Page.domainRuns(domain.id, runs) }
        }
        routes.add(.post, "/domains/{domain}/runs") { request, context, caller in
            try await self.startRun(request, context, caller)
        }
        routes.add(.get, "/domains/{domain}/runs/{run}") { _, context, caller in
            let domain = try self.domain(context, caller)
            let runID = try self.runID(context)
            guard let run = try self.mesh.store.domainRuns(in: runID).first(where: { $0.domain == domain.id }) else {
                if let pending = await self.launcher.status(of: runID), pending.domain == domain.id {
                    return try self.answer(pending, caller, title: "run \(runID) of \(domain.id)")
                }
                throw APIError(.notFound, "\(domain.id) took no part in run \(runID)")
            }
            let store = self.mesh.store
            let detail = DomainRunDetail(
                run: run, steps: try store.steps(of: domain.id, in: runID),
                tests: try store.testResults(of: domain.id, run: runID),
                logs: try store.logs(of: runID, domain: domain.id))
            return try self.answer(detail, caller, title: "run \(runID) of \(domain.id)") { Page.domainRun(detail) }
        }
        routes.add(.get, "/domains/{domain}/tests") { _, context, caller in
            let domain = try self.domain(context, caller)
            let results: [TestResultRecord]
            if let run = caller.query["run"] {
                results = try self.mesh.store.testResults(of: domain.id, run: RunID(run))
            } else {
                let limit = try caller.integer("limit", default: 500, max: 5000)
                results = try self.mesh.store.testResults(of: domain.id, limit: limit)
            }
            return try self.answer(results, caller, title: "\(domain.id) tests") { Page.tests(domain.id, results) }
        }
        routes.add(.get, "/domains/{domain}/lineage", cached: true) { _, context, caller in
            let domain = try self.domain(context, caller)
            let answer = LineageAnswer(
                lineage: try self.mesh.lineage(of: domain.id),
                consumers: try self.mesh.consumers(of: domain.id).map {
                    .init(domain: $0.domain, version: $0.version, builtFrom: $0.builtFrom)
                })
            return try self.answer(answer, caller, title: "\(domain.id) lineage") {
                Page.lineage(
                    domain.id, answer,
                    tables: try domain.outputs.map { try self.mesh.lineage(of: domain.id, table: $0.table) },
                    svg: try MeshGraph.lineageSVG(of: domain.id, mesh: self.mesh))
            }
        }
        routes.add(.get, "/domains/{domain}/lineage.svg", cached: true) { _, context, caller in
            let domain = try self.domain(context, caller)
            return Respond.text(try MeshGraph.lineageSVG(of: domain.id, mesh: self.mesh), type: "image/svg+xml")
        }
        routes.add(.get, "/domains/{domain}/versions", cached: true) { _, context, caller in
            let domain = try self.domain(context, caller)
            let versions = try self.mesh.store.versions(of: domain.id)
            return try self.answer(versions, caller, title: "\(domain.id) versions") {
                Page.versions(domain.id, versions)
            }
        }
        routes.add(.get, "/domains/{domain}/catalog", cached: true) { _, context, caller in
            let domain = try self.domain(context, caller)
            let catalog = try Catalog.make(domain, mesh: self.mesh)
            return try self.answer(catalog, caller, title: "\(domain.id) catalog") { Page.catalog(catalog) }
        }
    }

    /// The mesh runs.
    private func addRunRoutes(_ routes: RouteTable) {
        routes.add(.get, "/runs") { _, _, caller in
            let token = try caller.require()
            let limit = try caller.integer("limit", default: 50, max: 1000)
            let runs = try self.mesh.store.runs(limit: limit).map { run in
                RunDetail(
                    run: run, domains: try self.mesh.store.domainRuns(in: run.runID).filter { token.covers($0.domain) })
            }
            return try self.answer(runs, caller, title: "runs") { Page.runs(runs) }
        }
        routes.add(.get, "/runs/{run}") { _, context, caller in
            let token = try caller.require()
            let runID = try self.runID(context)
            guard let run = try self.mesh.store.run(runID) else {
                if let pending = await self.launcher.status(of: runID) {
                    return try self.answer(pending, caller, title: "run \(runID)")
                }
                throw APIError(.notFound, "no run \(runID) in this mesh's history")
            }
            let detail = RunDetail(
                run: run, domains: try self.mesh.store.domainRuns(in: runID).filter { token.covers($0.domain) })
            if caller.wantsHTML { return Respond.html(try Page.run(detail, mesh: self.mesh)) }
            return try Respond.json(detail)
        }
    }

    /// A domain's test history and the problems reported on it.
    private func addQualityRoutes(_ routes: RouteTable) {
        routes.add(.get, "/domains/{domain}/tests/history") { _, context, caller in
            let domain = try self.domain(context, caller)
            let limit = try caller.integer("limit", default: 200, max: 5000)
            return try self.answer(
                try self.testHistory(domain.id, test: caller.query["test"], limit: limit), caller,
                title: "\(domain.id) tests over time")
        }
        routes.add(.get, "/domains/{domain}/problems") { _, context, caller in
            let domain = try self.domain(context, caller)
            return try self.answer(
                try self.mesh.store.problems(of: domain.id, includeClosed: caller.query["open"] != "1"), caller,
                title: "\(domain.id) problems")
        }
        routes.add(.post, "/domains/{domain}/problems") { request, context, caller in
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
        routes.add(.post, "/domains/{domain}/problems/{problem}/close") { request, context, caller in
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
    }

    /// The recorded OpenLineage events.
    private func addLineageRoutes(_ routes: RouteTable) {
        routes.add(.get, "/domains/{domain}/openlineage") { _, context, caller in
            let domain = try self.domain(context, caller)
            let limit = try caller.integer("limit", default: 200, max: 5000)
            return try self.answerObject(
                try OpenLineage.recorded(home: self.mesh.home, domain: domain.id, limit: limit), caller,
                title: "\(domain.id) OpenLineage events")
        }
        routes.add(.get, "/openlineage") { _, _, caller in
            let token = try caller.require()
            let limit = try caller.integer("limit", default: 500, max: 10000)
            let events = try OpenLineage.recorded(
                home: self.mesh.home, run: try caller.query["run"].map { try self.checkedRunID($0) }, limit: limit)
            return try self.answerObject(
                events.filter { event in
                    ((event["job"] as? [String: Any])?["name"] as? String).map { token.covers(DomainID($0)) } ?? false
                }, caller, title: "OpenLineage events")
        }
    }

    /// Authenticates, runs the handler, and turns every error into an answer for people.
    func handle(
        _ request: Request, _ context: BasicRequestContext, key: RouteKey, open: Bool, cached: Bool,
        _ handler: Handler
    ) async -> Response {
        let query = parseQuery(request.uri.query)
        let accept = request.headers[.accept] ?? ""
        let wantsHTML = query["format"] == "html" || (query["format"] == nil && Self.prefersHTML(accept))
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
            // A promotion or an engine change since the last request: answer from the mesh opened again.
            let latestEvent = open ? nil : try meshes.refresh().latestEvent
            if cached, let token = caller.token, let latestEvent {
                // Metadata changes only with the run history (every change comes with an event) or the clock
                // (freshness): the stamp is the newest event id and the minute.
                let stamp = "\(latestEvent)-\(Int(mesh.configuration.now().timeIntervalSince1970 / 60))"
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
            response.headers.append(contentsOf: error.headers)
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
        } catch let error as any HTTPResponseError {
            // Hummingbird's own: a body past the route's limit is 413, not a server failure.
            let message =
                error.status == .contentTooLarge
                ? "the request body is larger than \(key) accepts; send less"
                : "the request could not be read: \(error.status.reasonPhrase)"
            response = Respond.error(error.status, message, html: wantsHTML)
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
    ///
    /// Authorised before it is looked up: a token that does not cover the name gets the same 403 whether
    /// the domain exists or not, so a reader learns nothing of domains outside its scope. Only a token that
    /// covers every domain hears that a name does not exist, with the list of those that do.
    func domain(_ context: BasicRequestContext, _ caller: Caller, role: AccessRole = .reader) throws -> Domain {
        let name = context.parameters.get("domain") ?? ""
        let token = try caller.require(role, on: DomainID(name))
        guard let domain = mesh.registry[DomainID(name)] else {
            let visible = mesh.registry.ids.filter(token.covers).map(\.rawValue)
            throw APIError(.notFound, "no domain '\(name)'; the domains are: \(visible.joined(separator: ", "))")
        }
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
        try mesh.store.testHistory(of: domain, test: test, limit: limit).map { result in
            var entry: [String: String] = [
                "run_id": result.runID.rawValue,
                // As the history stores it: the text of the database value.
                "at": String.fromDatabaseValue(result.at.databaseValue) ?? "",
                "step": result.step, "test": result.test, "status": result.status.rawValue,
                "failures": "\(result.failures)",
            ]
            if let value = result.value { entry["value"] = "\(value)" }
            return entry
        }
    }

    /// The sign-in form; `next` goes along as a hidden field, so the POST knows where to go.
    static func signInForm(next: String?, status: HTTPResponse.Status = .ok, error: String? = nil) -> Response {
        let hidden = next.flatMap(sameOriginPath).map {
            "<input type=\"hidden\" name=\"next\" value=\"\(Page.escape($0))\">"
        }
        return Respond.html(
            Page.document(
                title: "Sign in",
                body: "<h1>Sign in</h1>" + (error.map { "<p class=\"error\">\(Page.escape($0))</p>" } ?? "")
                    + "<form method=\"post\" action=\"/login\">\(hidden ?? "")<label>Token <input name=\"token\" type=\"password\" size=\"60\"></label> <button>Sign in</button></form>"
            ), status: status)
    }

    /// `next` when it is a path of this server, else nil: exactly `/`, or `/` then a character that is
    /// neither `/` nor `\` (`//host` and `/\host` are other sites to a browser), with printable ASCII only
    /// (browsers drop tabs and newlines, so `/\t/host` would be `//host`). The same holds once and twice
    /// percent-decoded, for whatever decodes the Location header again.
    static func sameOriginPath(_ next: String) -> String? {
        var text = next
        for _ in 0..<3 {
            let bytes = Array(text.utf8)
            guard bytes.first == UInt8(ascii: "/"), bytes.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return nil }
            if bytes.count > 1, bytes[1] == UInt8(ascii: "/") || bytes[1] == UInt8(ascii: "\\") { return nil }
            guard let decoded = text.removingPercentEncoding, decoded != text else { return next }
            text = decoded
        }
        return nil
    }

    /// `POST /login` with `token=…&next=/path`: keeps the token in an HTTP-only cookie so that pages work in
    /// a browser, then goes to `next` when it is a path of this server (else to `/`).
    func login(_ secret: String?, next: String?) throws -> Response {
        guard let secret, !secret.isEmpty else { return Self.signInForm(next: next) }
        let token = try tokens.authenticate(secret)
        var response = Response(status: .seeOther)
        response.headers[.location] = next.flatMap(Self.sameOriginPath) ?? "/"
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
        let limits = QueryLimits(
            timeout: configuration.queryTimeout, maxRows: maxRows, maxResultBytes: configuration.queryMaxBytes)
        let cancellation = QueryCancellation()
        let started = ContinuousClock.now
        let result: QueryResult
        do {
            // On a query thread (QueryWorkers), never on the threads that answer other requests. Shutdown or a
            // cancelled request stops it where it is.
            result = try await withGracefulShutdownHandler {
                try await withTaskCancellationHandler {
                    try await self.queries.run(caller: token.id) {
                        try mesh.query(sql, limits: limits, allowed: { token.covers($0) }, cancellation: cancellation)
                    }
                } onCancel: {
                    cancellation.cancel()
                }
            } onGracefulShutdown: {
                cancellation.cancel()
            }
        } catch QueryWorkers.Refusal.serverBusy(let limit) {
            throw APIError(
                .serviceUnavailable,
                "the server runs \(limit) queries at once, its most; try again in a second",
                headers: [.retryAfter: "1"])
        } catch QueryWorkers.Refusal.callerBusy(let limit) {
            throw APIError(
                .tooManyRequests,
                "the token \(token.name) runs \(limit) queries at once, the most one token may; wait for one to finish",
                headers: [.retryAfter: "1"])
        } catch let error as MeshError where cancellation.isCancelled {
            throw APIError(
                .serviceUnavailable, "\(error.message); the server is stopping, try again once it is back",
                headers: [.retryAfter: "5"])
        }
        let elapsed = ContinuousClock.now - started
        if caller.query["format"] == "csv" {
            var csv = result.columns.map(CSV.field).joined(separator: ",") + "\r\n"
            for row in result.rows { csv += row.map { CSV.field($0.description) }.joined(separator: ",") + "\r\n" }
            var response = Respond.text(csv, type: "text/csv; charset=utf-8")
            if let cut = result.cut {
                response.headers[HTTPField.Name("x-mesh-truncated")!] = "true"
                response.headers[HTTPField.Name("x-mesh-truncated-by")!] = cut.rawValue
            }
            return response
        }
        struct Answer: Encodable {
            var columns: [String]
            var rows: [[QueryValue]]
            var rowCount: Int
            var truncated: Bool
            var truncatedBy: String?
            var versions: [String: Int]
            var elapsedMS: Double
            enum CodingKeys: String, CodingKey {
                case columns, rows, rowCount = "row_count", truncated, truncatedBy = "truncated_by", versions
                case elapsedMS = "elapsed_ms"
            }
        }
        if caller.wantsHTML {
            return Respond.html(
                Page.query(sql: sql, columns: result.columns, rows: result.rows, truncatedBy: result.cut?.rawValue))
        }
        return try Respond.json(
            Answer(
                columns: result.columns, rows: result.rows, rowCount: result.rows.count, truncated: result.truncated,
                truncatedBy: result.cut?.rawValue,
                versions: Dictionary(uniqueKeysWithValues: result.versions.map { ($0.key.rawValue, $0.value) }),
                elapsedMS: Double(elapsed.components.attoseconds / 1_000_000_000_000) / 1000
                    + Double(elapsed.components.seconds) * 1000))
    }
}

extension MeshHTTPServer {
    /// Whether an `Accept` header prefers HTML to JSON, by quality and the most specific match: a browser's
    /// navigation (`text/html,application/xhtml+xml,…,*/*;q=0.8`) does; no header, `*/*` and
    /// `application/json` do not (a tie goes to JSON, which scripts expect).
    static func prefersHTML(_ accept: String) -> Bool {
        var quality: [String: Double] = [:]
        for part in accept.split(separator: ",") {
            let fields = part.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            guard let type = fields.first, !type.isEmpty else { continue }
            var q = 1.0
            for field in fields.dropFirst() where field.hasPrefix("q=") { q = Double(field.dropFirst(2)) ?? 0 }
            quality[type] = max(quality[type] ?? 0, q)
        }
        func q(_ type: String, _ range: String) -> Double { quality[type] ?? quality[range] ?? quality["*/*"] ?? 0 }
        let html = max(q("text/html", "text/*"), quality["application/xhtml+xml"] ?? 0)
        return html > 0 && html > q("application/json", "application/*")
    }

    /// The value as JSON for a program; for a browser, `page`, or else the JSON laid out as tables. Both come
    /// from the same value, after the same access checks.
    func answer<T: Encodable>(_ value: T, _ caller: Caller, title: String, page: (() throws -> String)? = nil) throws
        -> Response
    {
        guard caller.wantsHTML else { return try Respond.json(value) }
        if let page { return Respond.html(try page()) }
        let object = try JSONSerialization.jsonObject(with: Respond.encoder.encode(value), options: [.fragmentsAllowed])
        return Respond.html(Page.generic(object, title: title, domains: Set(mesh.registry.ids.map(\.rawValue))))
    }

    /// The same for JSON of plain objects (OpenLineage events).
    func answerObject(_ value: Any, _ caller: Caller, title: String) throws -> Response {
        guard caller.wantsHTML else { return try Respond.jsonObject(value) }
        return Respond.html(Page.generic(value, title: title, domains: Set(mesh.registry.ids.map(\.rawValue))))
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

/// The routes being declared, in order; `buildRouter` registers them.
final class RouteTable {
    struct Route {
        var key: RouteKey
        var method: HTTPRequest.Method
        /// Served without a token.
        var open: Bool
        /// Answers are cached until the history changes.
        var cached: Bool
        var handler: MeshHTTPServer.Handler
    }

    private(set) var routes: [Route] = []

    func add(
        _ method: HTTPRequest.Method, _ path: String, open: Bool = false, cached: Bool = false,
        _ handler: @escaping MeshHTTPServer.Handler
    ) {
        routes.append(
            Route(
                key: RouteKey(method: method.rawValue, path: path), method: method, open: open, cached: cached,
                handler: handler))
    }
}
