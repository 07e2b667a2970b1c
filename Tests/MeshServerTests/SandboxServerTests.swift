import Foundation
import HTTPTypes
import MeshRuntime
import MeshServer
import MeshTestSupport
import NIOCore
import Testing

@Suite("The query sandbox, the server's limits and its sign-in, over a real socket")
struct SandboxServerTests {
    static let endless = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r"

    /// The bytes of every published file of the fixture's mesh, by path.
    static func publishedBytes(_ f: ServerFixture) throws -> [String: String] {
        var digests: [String: String] = [:]
        for (domain, version) in try f.mesh.store.currentVersions() {
            digests[domain.rawValue] = try Fingerprint.sha256Hex(
                fileAt: f.directory.url.appendingPathComponent(version.path))
        }
        return digests
    }

    @Test("every sandbox escape sent over HTTP is refused; the published files keep their bytes; no file appears")
    func escapesOverHTTPAreRefused() async throws {
        let f = try await ServerFixture()
        defer { f.directory.remove() }
        let before = try Self.publishedBytes(f)
        let inside = f.directory.url.appendingPathComponent("created-by-attach.sqlite")
        let outside = URL(fileURLWithPath: "/tmp/pharma-mesh-escape-\(UUID().uuidString.prefix(8)).sqlite")
        try await f.live { client in
            for target in [inside, outside] {
                for sql in [
                    "/**/ATTACH DATABASE '\(target.path)' AS x",
                    "--x\nattach database '\(target.path)' as x",
                    "/* a */ VACUUM orders_mart INTO '\(target.path)' -- orders_mart.items",
                    "SELECT 1; ATTACH '\(target.path)' AS y",
                    "/**/PRAGMA writable_schema = 1",
                    "select fts3_tokenizer('simple')",
                    "SELECT load_extension('\(target.path)')",
                    "select 1;/**/delete from orders_mart.items",
                    "/**/DETACH orders_mart",
                    "SELECT * FROM pragma_database_list",
                ] {
                    let r = try await client.get("/query?sql=\(encoded(sql))", token: f.owner)
                    #expect(r.status == .badRequest, "\(sql) answered \(r.status): \(r.text)")
                    #expect(r.errorMessage.hasPrefix("refused: "), "\(sql): \(r.errorMessage)")
                    #expect(!r.text.contains(f.directory.url.path), "\(sql) showed a path")
                }
                #expect(!FileManager.default.fileExists(atPath: target.path), "a file appeared at \(target.path)")
            }
            let harmless = try await client.get("/query?sql=\(encoded("SELECT 'a;DELETE b' AS s"))", token: f.owner)
            #expect(harmless.status == .ok)
            #expect((harmless.json["rows"] as? [[String]]) == [["a;DELETE b"]])
        }
        #expect(try Self.publishedBytes(f) == before)
    }

    /// The server's threads are shared with every other test of this process (Swift Testing runs them side
    /// by side on the same concurrency pool), so nothing here depends on how soon a handler runs: the queries
    /// run until the server stops (which stops them), and the bound on /health is generous. The one-second
    /// bound is checked on a real `pharma-mesh serve` process (`BusyServerTests`), which has its own threads.
    @Test("four endless queries at once: /health and metadata answer, a fifth gets 503, a token's extra one 429")
    func queriesAreBoundedPerServerAndPerToken() async throws {
        let f = try await ServerFixture(queryTimeout: 600) {
            $0.queryConcurrency = 4
            $0.queryConcurrencyPerToken = 3
        }
        defer { f.directory.remove() }
        let second = try f.token("second", .reader, ["*"])
        let third = try f.token("third", .reader, ["*"])
        let endless = Locked<[Task<TestResponse, any Error>]>([])
        try await f.live { client in
            let url = "/query?sql=\(encoded(Self.endless))"
            func running() async throws -> Int {
                let text = try await client.get("/metrics", token: f.owner).text
                let line = text.split(separator: "\n").first { $0.hasPrefix("mesh_queries_running ") }
                return line.flatMap { Double($0.split(separator: " ").last ?? "") }.map { Int($0) } ?? -1
            }
            func waitUntilRunning(_ count: Int) async throws {
                for _ in 0..<2400 {
                    if try await running() == count { break }
                    try await Task.sleep(for: .milliseconds(25))
                }
                #expect(try await running() == count)
            }
            for _ in 0..<3 { endless.mutate { $0.append(Task { try await client.get(url, token: f.owner) }) } }
            try await waitUntilRunning(3)
            // The owner runs three, its most: a fourth of its own is refused at once, not queued.
            let fourth = try await client.get(url, token: f.owner)
            #expect(fourth.status == .tooManyRequests)
            #expect(fourth.headers[.retryAfter] == "1")
            #expect(fourth.errorMessage.contains("the most one token may"))
            endless.mutate { $0.append(Task { try await client.get(url, token: second) }) }
            try await waitUntilRunning(4)

            // Four queries spin on their own threads; the rest of the server answers.
            let health = try await client.get("/health", token: nil)
            #expect(health.status == .ok)
            #expect(health.duration < .seconds(10))
            let metadata = try await client.get("/domains/orders-mart", token: third)
            #expect(metadata.status == .ok)
            let fifth = try await client.get(url, token: third)
            #expect(fifth.status == .serviceUnavailable)
            #expect(fifth.headers[.retryAfter] == "1")
            #expect(fifth.errorMessage.contains("4 queries at once"))
            #expect(try await running() == 4)
            let metrics = try await client.get("/metrics", token: f.owner).text
            #expect(metrics.contains(#"mesh_queries_refused_total{limit="server"} 1.0"#))
            #expect(metrics.contains(#"mesh_queries_refused_total{limit="token"} 1.0"#))
        }
        // The server stopped: its running queries were interrupted, so every request came back.
        for task in endless.value {
            if let response = try? await task.value {
                #expect(response.status == .serviceUnavailable, "\(response.text)")
            }
        }
    }

    @Test("sign-in redirects only to a path of this server; a token in a GET URL never signs in")
    func signInIsSameOriginAndByPost() async throws {
        let f = try await ServerFixture()
        defer { f.directory.remove() }
        try await f.live { client in
            for (next, location) in [
                ("/domains/orders-mart", "/domains/orders-mart"), ("/", "/"), ("/runs?limit=5", "/runs?limit=5"),
                ("/%09/other-host/x", "/"), ("/\t/other-host/x", "/"), ("/\n/other-host", "/"),
                ("//other-host/x", "/"), ("/\\other-host/x", "/"), ("\\\\other-host", "/"),
                ("https://other-host/x", "/"), ("other-host", "/"), ("/%2F/other-host", "/"),
                ("/%5Cother-host", "/"), ("/%252F%252Fother-host", "/"), ("/%2509/other-host", "/"),
                ("/a b", "/"), ("/\r\nSet-Cookie: a=b", "/"), ("", "/"),
            ] {
                let r = try await client.postForm("/login", [("token", f.owner), ("next", next)])
                #expect(r.status == .seeOther, "\(next.debugDescription)")
                #expect(
                    r.headers[.location] == location,
                    "next \(next.debugDescription) went to \(r.headers[.location] ?? "-")")
            }
            // The issue's case: `next` in the URL, percent-encoded, with the token in the POST body.
            let issue = try await client.executeRequest(
                uri: "/login?next=/%09/other-host/x", method: .post,
                headers: [.contentType: "application/x-www-form-urlencoded"],
                body: ByteBuffer(string: "token=\(f.owner)"))
            #expect(issue.headers[.location] == "/")

            let inURL = try await client.get("/login?token=\(f.owner)&next=/domains", token: nil)
            #expect(inURL.status == .badRequest)
            #expect(inURL.headers[.setCookie] == nil)
            #expect(inURL.headers[.location] == nil)
            #expect(inURL.text.contains("not accepted") && inURL.text.contains("name=\"token\""))
            let form = try await client.get("/login?next=\(encoded("/domains/orders-mart"))", token: nil)
            #expect(form.status == .ok)
            #expect(form.text.contains("name=\"next\" value=\"/domains/orders-mart\""))
            let hostile = try await client.get("/login?next=\(encoded("//other-host"))", token: nil)
            #expect(!hostile.text.contains("other-host"))
        }
    }

    @Test("413, not 500, for a body past the limit on every route that reads one")
    func oversizedBodiesAre413() async throws {
        let f = try await ServerFixture()
        defer { f.directory.remove() }
        try Kitchens(home: f.directory.url).create("k", domains: ["orders-mart"], registry: f.mesh.registry)
        let problem = try await f.mesh.reportProblem(domain: "orders-mart", title: "t", detail: "", by: "owner")
        let big = String(repeating: "x", count: 70 * 1024)
        try await f.live { client in
            let auth: HTTPFields = [.authorization: "Bearer \(f.owner)", .contentType: "application/json"]
            for (method, uri, size) in [
                (HTTPRequest.Method.post, "/login", 5000), (.post, "/domains/orders-mart/problems", big.count),
                (.post, "/domains/orders-mart/problems/\(problem.id ?? 0)/close", big.count),
                (.post, "/domains/orders-mart/runs", big.count), (.post, "/kitchens", big.count),
                (.post, "/kitchens/k/runs", big.count), (.put, "/kitchens/k/recipes/orders-mart/build", 1_100_000),
            ] {
                let r = try await client.executeRequest(
                    uri: uri, method: method, headers: auth,
                    body: ByteBuffer(string: String(repeating: "x", count: size)))
                #expect(r.status == .contentTooLarge, "\(method) \(uri) answered \(r.status)")
                #expect(r.errorMessage.contains("larger than"), "\(uri): \(r.text)")
            }
        }
    }

    @Test("/metrics shows a token scoped to one domain only that domain's series")
    func metricsAreScoped() async throws {
        let f = try await ServerFixture()
        defer { f.directory.remove() }
        let reader = try f.token("mart-reader", .reader, ["orders-mart"])
        try await f.live { client in
            let scoped = try await client.get("/metrics", token: reader).text
            #expect(scoped.contains(#"mesh_domain_version{domain="orders-mart"}"#))
            #expect(!scoped.contains("secret-mart"))
            #expect(!scoped.contains(#"domain="orders""#))
            let all = try await client.get("/metrics", token: f.owner).text
            #expect(all.contains(#"mesh_domain_version{domain="secret-mart"}"#))
            #expect(all.contains(#"mesh_domain_runs_total{domain="orders",status="success"}"#))
        }
    }

    @Test("a reader asking for a domain or kitchen outside its scope hears 403, whether it exists or not")
    func authorisedBeforeLookedUp() async throws {
        let f = try await ServerFixture()
        defer { f.directory.remove() }
        let reader = try f.token("mart-reader", .reader, ["orders-mart"])
        try Kitchens(home: f.directory.url).create("hidden", domains: ["secret-mart"], registry: f.mesh.registry)
        try await f.live { client in
            for suffix in ["", "/runs", "/catalog", "/versions", "/lineage"] {
                let existing = try await client.get("/domains/secret-mart\(suffix)", token: reader)
                let missing = try await client.get("/domains/no-such-mart\(suffix)", token: reader)
                #expect(existing.status == .forbidden && missing.status == .forbidden, "\(suffix)")
                #expect(
                    existing.errorMessage.replacingOccurrences(of: "secret-mart", with: "X")
                        == missing.errorMessage.replacingOccurrences(of: "no-such-mart", with: "X"))
                #expect(!missing.errorMessage.contains("secret-mart"))
            }
            let run = try await client.post("/domains/no-such-mart/runs", token: reader, json: "{}")
            #expect(run.status == .forbidden)
            let kitchen = try await client.get("/kitchens/hidden", token: reader)
            let noKitchen = try await client.get("/kitchens/nope", token: reader)
            #expect(kitchen.status == .forbidden && noKitchen.status == .forbidden)
            #expect(
                kitchen.errorMessage.replacingOccurrences(of: "hidden", with: "X")
                    == noKitchen.errorMessage.replacingOccurrences(of: "nope", with: "X"))
            #expect(!noKitchen.errorMessage.contains("hidden"))
            // A token that covers everything learns what does not exist.
            #expect(try await client.get("/domains/no-such-mart", token: f.owner).status == .notFound)
            #expect(try await client.get("/kitchens/nope", token: f.owner).status == .notFound)
        }
    }

    @Test("a running server serves a promotion made elsewhere and reloads after an engine change")
    func promotionsAndEngineChangesAreServed() async throws {
        let f = try await ServerFixture()
        defer { f.directory.remove() }
        let support = try #require(f.server.configuration.kitchens)
        try await f.live { client in
            let before = try await client.get("/domains/orders-mart", token: f.owner).json
            let how = try #require(before["how"] as? [String: Any])
            let recipe = (how["recipe"] as? [[String: Any]])?.first?["definition"] as? String
            #expect(recipe?.contains(":factor") == true)
            let opened = f.reopened.value

            // As `pharma-mesh kitchen …` would in another process: change the SQL, build, promote.
            let kitchens = support.kitchens
            try kitchens.create("tenfold", domains: ["orders-mart"], registry: f.mesh.registry)
            let folder = kitchens.home(of: "tenfold").appendingPathComponent("recipes/orders-mart")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try "CREATE TABLE items AS SELECT value * 10 AS value FROM orders.items".write(
                to: folder.appendingPathComponent("build.sql"), atomically: true, encoding: .utf8)
            let (kitchenMesh, request) = try kitchens.prepareRun(
                "tenfold", base: support.base, configuration: f.mesh.configuration, parameters: [:], variation: nil,
                force: false, sourceStates: try support.sourceStates())
            #expect(try await kitchenMesh.run(request).status == .success)
            _ = try await kitchens.promote("tenfold", base: support.base, variations: support.variations)

            let after = try await client.get("/domains/orders-mart", token: f.owner).json
            let newHow = try #require(after["how"] as? [String: Any])
            let newRecipe = (newHow["recipe"] as? [[String: Any]])?.first?["definition"] as? String
            #expect(newRecipe?.contains("value * 10") == true, "\(newRecipe ?? "-")")
            #expect(newHow["code_version"] as? String != how["code_version"] as? String)
            #expect(f.reopened.value == opened + 1)

            // A run publishes without changing recipes or engines: nothing to open again.
            let run = try await f.server.mesh.run(
                RunRequest(only: ["secret-mart"], sourceStates: try support.sourceStates(), force: ["secret-mart"]))
            #expect(run.built == ["secret-mart"])
            _ = try await client.get("/domains", token: f.owner)
            #expect(f.reopened.value == opened + 1)
            // `engine use` records engine.changed: the server opens the mesh, and its engine list, again.
            await f.server.mesh.events.publish(MeshEvent(kind: .engineChanged, payload: ["engine": "sqlite"]))
            _ = try await client.get("/domains", token: f.owner)
            #expect(f.reopened.value == opened + 2)
            _ = try await client.get("/domains", token: f.owner)
            #expect(f.reopened.value == opened + 2)
        }
    }
}
