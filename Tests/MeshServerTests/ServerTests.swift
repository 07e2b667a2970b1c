import Foundation
import GRDB
import HTTPTypes
import MeshRuntime
import MeshServer
import MeshTestSupport
import NIOCore
import Testing

@Suite("HTTP surface over a real socket")
struct ServerTests {
    @Test("no token, no data: missing, unknown, expired and revoked tokens are refused; roles and scopes hold")
    func tokensAreRequiredAndScoped() async throws {
        let f = try await ServerFixture()
        defer { f.directory.remove() }
        let reader = try f.token("mart-reader", .reader, ["orders-mart"])
        let runner = try f.token("mart-runner", .runner, ["orders-mart"])
        let expired = try f.token("old", .owner, ["*"], expires: Date().addingTimeInterval(-60))
        let revoked = try f.token("gone", .owner, ["*"])
        try f.server.tokens.revoke("gone")

        try await f.live { client in
            let none = try await client.get("/domains/orders-mart", token: nil)
            #expect(none.status == .unauthorized)
            #expect(none.headers[.wwwAuthenticate] == "Bearer realm=\"mesh\"")
            #expect(none.errorMessage.contains("no token"))
            #expect(!none.text.contains("order values"))

            let wrong = try await client.get("/domains/orders-mart", token: "pmt_nothing_atall")
            #expect(wrong.status == .unauthorized)
            #expect(wrong.errorMessage.contains("not known"))

            let old = try await client.get("/query?sql=\(encoded("SELECT 1"))", token: expired)
            #expect(old.status == .unauthorized)
            #expect(old.errorMessage.contains("expired"))

            let gone = try await client.get("/domains", token: revoked)
            #expect(gone.status == .unauthorized)
            #expect(gone.errorMessage.contains("revoked"))

            // A reader of orders-mart sees it, and only it.
            #expect(try await client.get("/domains/orders-mart", token: reader).status == .ok)
            let list = try await client.get("/domains", token: reader)
            #expect(list.array.compactMap { $0["domain"] as? String } == ["orders-mart"])
            let other = try await client.get("/domains/secret-mart", token: reader)
            #expect(other.status == .forbidden)
            #expect(other.errorMessage.contains("does not cover secret-mart"))
            let sneaky = try await client.get(
                "/query?sql=\(encoded("SELECT * FROM orders_mart.items JOIN secret_mart.items USING (value)"))",
                token: reader)
            #expect(sneaky.status == .forbidden)
            #expect(sneaky.errorMessage.contains("secret-mart"))

            // Starting runs takes the runner role, on the runner's own domains only.
            let readerRun = try await client.post("/domains/orders-mart/runs", token: reader, json: "{}")
            #expect(readerRun.status == .forbidden)
            #expect(readerRun.errorMessage.contains("runner role"))
            let foreignRun = try await client.post("/domains/secret-mart/runs", token: runner, json: "{}")
            #expect(foreignRun.status == .forbidden)
            let events = try await client.get("/events?after=0&limit=3", token: reader)
            #expect(events.status == .ok)
            #expect(!events.text.contains("\"domain\":\"secret-mart\""))
        }
        // Only hashes are kept: the secrets are nowhere in the token database.
        let stored = try Data(contentsOf: f.directory.url.appendingPathComponent("access.sqlite"))
        for secret in [reader, runner, f.owner] {
            #expect(stored.range(of: Data(secret.utf8)) == nil)
        }
    }

    @Test("a domain answers what, where, when, with what and how; runs, tests, lineage, versions and catalog follow")
    func domainAnswersTheFourWsAndAnH() async throws {
        let f = try await ServerFixture()
        defer { f.directory.remove() }
        let current = try #require(try f.mesh.store.currentVersion(of: ServerFixture.mart))
        try await f.live { client in
            let response = try await client.get("/domains/orders-mart", token: f.owner)
            #expect(response.status == .ok)
            let d = response.json
            let what = try #require(d["what"] as? [String: Any])
            let table = try #require((what["tables"] as? [[String: Any]])?.first)
            #expect(table["table"] as? String == "items")
            #expect(table["rows"] as? Int == 3)
            #expect(
                (table["columns"] as? [[String: Any]])?.first?["description"] as? String
                    == "the value, multiplied by the factor parameter")
            let place = try #require(d["where"] as? [String: Any])
            #expect(place["schema"] as? String == "orders_mart")
            let file = try #require(place["file"] as? String)
            #expect(FileManager.default.fileExists(atPath: f.directory.url.appendingPathComponent(file).path))
            let when = try #require(d["when"] as? [String: Any])
            #expect(when["version"] as? Int == current.version)
            #expect(when["built_by"] as? String == f.firstRun.rawValue)
            #expect((when["tests"] as? [String: Any])?["passed"] as? Int == 1)
            let with = try #require(d["with_what"] as? [String: Any])
            let input = try #require((with["inputs"] as? [[String: Any]])?.first)
            #expect(input["domain"] as? String == "orders")
            #expect(input["version"] as? Int == 1)
            #expect((with["sync"] as? [String: Any])?["state"] as? String == "in_sync")
            let how = try #require(d["how"] as? [String: Any])
            #expect((how["recipe"] as? [[String: Any]])?.first?["step"] as? String == "build")
            #expect((how["parameters"] as? [String: String]) == ["factor": "1"])
            #expect(how["code_version"] as? String == f.mesh.registry[ServerFixture.mart]!.codeVersion)

            let runs = try await client.get("/domains/orders-mart/runs", token: f.owner)
            #expect(runs.array.first?["run_id"] as? String == f.firstRun.rawValue)
            let run = try await client.get("/domains/orders-mart/runs/\(f.firstRun)", token: f.owner)
            #expect((run.json["steps"] as? [[String: Any]])?.first?["step"] as? String == "build")
            let tests = try await client.get("/domains/orders-mart/tests", token: f.owner)
            #expect(tests.array.first?["status"] as? String == "pass")
            let lineage = try await client.get("/domains/orders-mart/lineage", token: f.owner)
            let upstream = (lineage.json["lineage"] as? [String: Any])?["upstream"] as? [[String: Any]]
            #expect(upstream?.first?["domain"] as? String == "orders")
            let svg = try await client.get("/domains/orders-mart/lineage.svg", token: f.owner)
            #expect(svg.headers[.contentType] == "image/svg+xml")
            #expect(svg.text.contains("data-domain=\"orders\"") && !svg.text.contains("data-domain=\"secret-mart\""))
            let versions = try await client.get("/domains/orders-mart/versions", token: f.owner)
            #expect(versions.array.first?["fingerprint"] as? String == current.fingerprint)
            let catalog = try await client.get("/domains/orders-mart/catalog", token: f.owner)
            let schema = (catalog.json["published_schema"] as? [String: [String]])?["items"] ?? []
            #expect(schema.count == 1 && schema[0].hasPrefix("value"))
            let meshRun = try await client.get("/runs/\(f.firstRun)", token: f.owner)
            #expect((meshRun.json["domains"] as? [[String: Any]])?.count == 3)
            let missing = try await client.get("/domains/no-such-mart", token: f.owner)
            #expect(missing.status == .notFound)
            #expect(missing.errorMessage.contains("orders-mart"))
        }
    }

    @Test("process linkage: a runner starts a run with parameters, polls it, and the events tell the story")
    func processLinkageRunsWithParameters() async throws {
        let f = try await ServerFixture()
        defer { f.directory.remove() }
        let runner = try f.token("mart-runner", .runner, ["orders-mart"])
        try await f.live { client in
            let bad = try await client.post(
                "/domains/orders-mart/runs", token: runner, json: #"{"parameters": {"facter": "2"}}"#)
            #expect(bad.status == .badRequest)
            #expect(bad.errorMessage.contains("no parameter 'facter'") && bad.errorMessage.contains("factor"))
            let malformed = try await client.post("/domains/orders-mart/runs", token: runner, json: "{not json")
            #expect(malformed.status == .badRequest)

            let started = try await client.post(
                "/domains/orders-mart/runs", token: runner, json: #"{"parameters": {"factor": "10"}}"#)
            #expect(started.status == .accepted)
            let url = try #require(started.json["url"] as? String)
            #expect(started.headers[.location] == url)
            #expect(try await client.waitForRun(url, token: runner) == "success")
            let values = try await client.get(
                "/query?sql=\(encoded("SELECT value FROM orders_mart.items ORDER BY value"))", token: runner)
            #expect((values.json["rows"] as? [[Int]]) == [[10], [20], [30]])
            #expect((values.json["versions"] as? [String: Int]) == ["orders-mart": 2])
            let detail = try await client.get("/domains/orders-mart", token: runner)
            #expect((detail.json["how"] as? [String: Any])?["parameters"] as? [String: String] == ["factor": "10"])

            let events = try await client.get(
                "/events?after=0&domain=orders-mart&kind=domain.published&limit=2", token: runner)
            #expect(events.headers[.contentType] == "text/event-stream; charset=utf-8")
            let published = events.text.components(separatedBy: "\n").filter { $0.hasPrefix("event: ") }
            #expect(published == ["event: domain.published", "event: domain.published"])
            #expect(
                events.text.contains("\"trigger\":\"http:mart-runner\"") || events.text.contains("\"version\":\"2\""))
        }
        let runs = try f.mesh.store.runs(limit: 5)
        #expect(runs.first?.trigger == "http:mart-runner")
    }

    @Test("queries are read-only, scoped, limited in rows, time and size")
    func queriesAreReadOnlyAndLimited() async throws {
        let f = try await ServerFixture(queryTimeout: 0.5, queryMaxRows: 2)
        defer { f.directory.remove() }
        try await f.live { client in
            for hostile in [
                "DROP TABLE orders_mart.items", "ATTACH DATABASE '/etc/passwd' AS p",
                "SELECT 1; DELETE FROM orders_mart.items", "PRAGMA writable_schema = 1",
                "VACUUM INTO '/tmp/stolen.sqlite'", "SELECT load_extension('/tmp/evil.so')",
            ] {
                let r = try await client.get("/query?sql=\(encoded(hostile))", token: f.owner)
                #expect(r.status == .badRequest || r.status == .forbidden, "\(hostile) answered \(r.status)")
            }
            #expect(try f.mesh.query("SELECT COUNT(*) FROM orders_mart.items").rows == [[.integer(3)]])
            #expect(!FileManager.default.fileExists(atPath: "/tmp/stolen.sqlite"))

            let capped = try await client.get(
                "/query?sql=\(encoded("SELECT value FROM orders_mart.items"))&limit=50", token: f.owner)
            #expect(capped.json["row_count"] as? Int == 2)
            #expect(capped.json["truncated"] as? Bool == true)
            let csv = try await client.get(
                "/query?format=csv&sql=\(encoded("SELECT value, 'a,b' AS label FROM orders_mart.items ORDER BY value"))",
                token: f.owner)
            #expect(csv.text == "value,label\r\n1,\"a,b\"\r\n2,\"a,b\"\r\n")
            #expect(csv.headers[HTTPField.Name("x-mesh-truncated")!] == "true")

            let endless =
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT COUNT(*) FROM n, orders_mart.items"
            let started = ContinuousClock.now
            let slow = try await client.get("/query?sql=\(encoded(endless))", token: f.owner)
            #expect(slow.status == .badRequest)
            #expect(slow.errorMessage.contains("longer than 0.5 s"))
            // Stopped, not run to the end (it never ends); the bound leaves room for a loaded machine.
            #expect(ContinuousClock.now - started < .seconds(30))

            let huge = try await client.get(
                "/query?sql=\(encoded("SELECT " + String(repeating: "1+", count: 15_000) + "1"))", token: f.owner)
            #expect(huge.status == .contentTooLarge)
            let empty = try await client.get("/query", token: f.owner)
            #expect(empty.status == .badRequest)
            #expect(empty.errorMessage.contains("?sql="))
        }
    }

    @Test("nothing in a URL reaches a file outside the mesh home; no open redirect")
    func hostilePathsReachNothing() async throws {
        let f = try await ServerFixture()
        defer { f.directory.remove() }
        try await f.live { client in
            for path in [
                "/domains/..%2F..%2F..%2Fetc%2Fpasswd", "/domains/../../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd",
                "/domains/orders-mart/runs/..%2F..%2Fruntime.sqlite", "/domains/orders-mart/runs/%00",
                "/domains/%2e%2e%2f%2e%2e%2faccess.sqlite/catalog", "/runs/../../access.sqlite",
                "/domains/orders-mart/../../../../etc/shadow",
                "/query?sql=\(encoded("SELECT * FROM pragma_database_list"))",
            ] {
                let r = try await client.get(path, token: f.owner)
                #expect(r.status != .ok || path.hasPrefix("/query"), "\(path) answered \(r.status)")
                #expect(!r.text.contains("root:"), "\(path)")
                #expect(!r.text.contains("SQLite format 3"), "\(path)")
                #expect(!r.text.contains("secret_hash"), "\(path)")
            }
            let redirect = try await client.postForm("/login", [("token", f.owner), ("next", "//evil.example/x")])
            #expect(redirect.status == .seeOther)
            #expect(redirect.headers[.location] == "/")
            #expect(redirect.headers[.setCookie]?.contains("HttpOnly") == true)
            let local = try await client.postForm("/login", [("token", f.owner), ("next", "/domains/orders-mart")])
            #expect(local.headers[.location] == "/domains/orders-mart")
            let badLogin = try await client.postForm("/login", [("token", "pmt_x_y")])
            #expect(badLogin.status == .unauthorized)
            // The cookie works in place of the header.
            let cookie = try await client.get("/domains", token: nil, headers: [.cookie: "mesh_token=\(f.owner)"])
            #expect(cookie.status == .ok)
        }
    }

    @Test("metrics scraped from a live server; a problem reported, shown and closed over HTTP; OpenLineage served")
    func metricsProblemsAndLineage() async throws {
        let f = try await ServerFixture()
        defer { f.directory.remove() }
        let reader = try f.token("analyst", .reader, ["orders-mart"])
        try await f.live { client in
            _ = try await client.get("/domains/orders-mart", token: reader)
            _ = try await client.get("/domains/nope", token: reader)
            #expect(try await client.get("/metrics", token: nil).status == .unauthorized)
            let scrape = try await client.get("/metrics", token: f.owner)
            #expect(scrape.headers[.contentType]?.hasPrefix("text/plain; version=0.0.4") == true)
            let text = scrape.text
            #expect(text.contains(#"mesh_http_requests_total{route="GET /domains/{domain}",status="200"} 1"#))
            // A reader asking for a domain outside its scope hears 403, whether it exists or not.
            #expect(text.contains(#"mesh_http_requests_total{route="GET /domains/{domain}",status="403"} 1"#))
            #expect(text.contains("# TYPE mesh_http_request_duration_seconds histogram"))
            #expect(text.contains(#"mesh_domain_runs_total{domain="orders-mart",status="success"} 1.0"#))
            #expect(text.contains(#"mesh_tests_total{domain="orders-mart",status="pass"} 1.0"#))
            #expect(text.contains(#"mesh_domain_rows{domain="orders-mart"} 3.0"#))
            #expect(text.contains(#"mesh_domain_lateness_seconds{domain="orders"} 0.0"#))
            #expect(text.contains(#"mesh_domain_in_sync{domain="secret-mart"} 1.0"#))

            let reported = try await client.post(
                "/domains/orders-mart/problems", token: reader,
                json: #"{"title": "values look tripled", "detail": "since v1"}"#)
            #expect(reported.status == .created)
            let id = try #require(reported.json["id"] as? Int)
            #expect(reported.json["reported_by"] as? String == "analyst")
            let detail = try await client.get("/domains/orders-mart", token: reader)
            let open = (detail.json["when"] as? [String: Any])?["open_problems"] as? [[String: Any]]
            #expect(open?.first?["title"] as? String == "values look tripled")
            let page = try await client.get("/domains/orders-mart?format=html", token: reader)
            #expect(page.text.contains("values look tripled"))
            #expect(
                try await client.post("/domains/orders-mart/problems", token: reader, json: "{}").status == .badRequest)
            let denied = try await client.post("/domains/orders-mart/problems/\(id)/close", token: reader, json: "{}")
            #expect(denied.status == .forbidden)
            let closed = try await client.post(
                "/domains/orders-mart/problems/\(id)/close", token: f.owner,
                json: #"{"resolution": "factor reset", "fixed_by_run": "\#(f.firstRun)"}"#)
            #expect(closed.status == .ok)
            #expect(closed.json["fixed_by_run"] as? String == f.firstRun.rawValue)
            #expect(try await client.get("/domains/orders-mart/problems?open=1", token: reader).array.isEmpty)
            let metricsAfter = try await client.get("/metrics", token: f.owner).text
            #expect(metricsAfter.contains(#"mesh_domain_open_problems{domain="orders-mart"} 0.0"#))

            let lineage = try await client.get("/domains/orders-mart/openlineage", token: reader)
            #expect(lineage.array.map { $0["eventType"] as? String } == ["START", "COMPLETE"])
            let all = try await client.get("/openlineage", token: reader)
            #expect(Set(all.array.compactMap { ($0["job"] as? [String: Any])?["name"] as? String }) == ["orders-mart"])
            let history = try await client.get("/domains/orders-mart/tests/history", token: reader)
            #expect(history.array.first?["status"] as? String == "pass")
        }
    }

    @Test(
        "development linkage over HTTP: create a kitchen, change a step's SQL, run, diff, promote; production keeps it")
    func kitchensOverHTTP() async throws {
        let f = try await ServerFixture()
        defer { f.directory.remove() }
        let reader = try f.token("analyst", .reader, ["*"])
        let runner = try f.token("mart-runner", .runner, ["orders-mart"])
        try await f.live { client in
            let denied = try await client.post(
                "/kitchens", token: reader, json: #"{"name": "x", "domains": ["orders-mart"]}"#)
            #expect(denied.status == .forbidden)
            let created = try await client.post(
                "/kitchens", token: f.owner, json: #"{"name": "tenfold", "domains": ["orders-mart"]}"#)
            #expect(created.status == .created)
            #expect(created.headers[.location] == "/kitchens/tenfold")
            let view = try await client.get("/kitchens/tenfold", token: reader)
            let recipes = (view.json["recipes"] as? [String: [String: String]])?["orders-mart"]
            #expect(recipes?["build"]?.contains(":factor") == true)

            let sql = "CREATE TABLE items AS SELECT value * 10 AS value FROM orders.items"
            var headers: HTTPFields = [.authorization: "Bearer \(f.owner)", .contentType: "text/plain"]
            let put = try await client.executeRequest(
                uri: "/kitchens/tenfold/recipes/orders-mart/build", method: .put, headers: headers,
                body: ByteBuffer(string: sql))
            #expect(put.status == .ok)
            headers[.authorization] = "Bearer \(reader)"
            let readerPut = try await client.executeRequest(
                uri: "/kitchens/tenfold/recipes/orders-mart/build", method: .put, headers: headers,
                body: ByteBuffer(string: sql))
            #expect(readerPut.status == .forbidden)
            let wrongStep = try await client.executeRequest(
                uri: "/kitchens/tenfold/recipes/orders-mart/nope", method: .put,
                headers: [.authorization: "Bearer \(f.owner)"], body: ByteBuffer(string: sql))
            #expect(wrongStep.status == .notFound)
            #expect(wrongStep.errorMessage.contains("build"))

            let run = try await client.post("/kitchens/tenfold/runs", token: runner, json: "{}")
            #expect(run.status == .ok)
            #expect(run.json["built"] as? String == "orders-mart")
            let diff = try await client.get("/kitchens/tenfold/diff", token: reader)
            let table = ((diff.json["domains"] as? [[String: Any]])?.first?["tables"] as? [[String: Any]])?.first
            #expect(table?["kitchen_rows"] as? Int == 3)
            #expect(table?["added_rows"] as? Int == 3 && table?["removed_rows"] as? Int == 3)  // keyed by value
            // Production is untouched until the promotion.
            let before = try await client.get(
                "/query?sql=\(encoded("SELECT SUM(value) FROM orders_mart.items"))", token: reader)
            #expect((before.json["rows"] as? [[Int]]) == [[6]])
            #expect(try await client.post("/kitchens/tenfold/promote", token: runner, json: "{}").status == .forbidden)
            let promoted = try await client.post("/kitchens/tenfold/promote", token: f.owner, json: "{}")
            #expect(promoted.status == .ok, "\(promoted.text)")
            #expect((promoted.json["promoted"] as? [[String: String]])?.first?["version"] == "2")
            let after = try await client.get(
                "/query?sql=\(encoded("SELECT SUM(value) FROM orders_mart.items"))", token: reader)
            #expect((after.json["rows"] as? [[Int]]) == [[60]])

            // A run asked for over HTTP builds the promoted recipe: nothing to redo, the promotion stands.
            let again = try await client.post("/domains/orders-mart/runs", token: runner, json: "{}")
            let url = try #require(again.json["url"] as? String)
            let state = try await client.waitForRun(url, token: runner)
            #expect(state == "success")
            #expect(try f.mesh.store.currentVersion(of: "orders-mart")?.version == 2)
            #expect(
                try await client.executeRequest(
                    uri: "/kitchens/tenfold", method: .delete, headers: [.authorization: "Bearer \(f.owner)"], body: nil
                ).status == .ok)
            #expect(try await client.get("/kitchens", token: reader).array.isEmpty)
        }
    }

    @Test("/openapi.json lists exactly the router's routes, and each documented operation is served by its route")
    func openAPIMatchesTheRouter() async throws {
        let f = try await ServerFixture()
        defer { f.directory.remove() }
        let routes = f.server.routes
        try await f.live { client in
            let document = try await client.get("/openapi.json", token: nil).json
            let paths = try #require(document["paths"] as? [String: [String: Any]])
            var documented: [String] = []
            for (path, methods) in paths {
                for method in methods.keys { documented.append("\(method.uppercased()) \(path)") }
            }
            #expect(Set(documented) == Set(routes))
            #expect(documented.count == routes.count)
            // The kitchen the {kitchen} routes act on; DELETE goes last, since it removes it.
            try Kitchens(home: f.directory.url).create("k", domains: ["orders-mart"], registry: f.mesh.registry)
            let ordered =
                documented.sorted().filter { !$0.hasPrefix("DELETE") } + documented.filter { $0.hasPrefix("DELETE") }
            for operation in ordered {
                let parts = operation.split(separator: " ", maxSplits: 1).map(String.init)
                var uri = parts[1].replacingOccurrences(of: "{domain}", with: "orders-mart")
                    .replacingOccurrences(of: "{run}", with: f.firstRun.rawValue)
                    .replacingOccurrences(of: "{problem}", with: "1")
                    .replacingOccurrences(of: "{kitchen}", with: "k").replacingOccurrences(of: "{step}", with: "build")
                if uri == "/events" { uri += "?after=0&limit=1" }
                if uri == "/query" { uri += "?sql=\(encoded("SELECT 1"))" }
                var headers: HTTPFields = [.authorization: "Bearer \(f.owner)"]
                var body: ByteBuffer? = nil
                if parts[0] == "POST" || parts[0] == "PUT" {
                    headers[.contentType] = "application/json"
                    let text: String
                    switch uri {
                    case "/login": text = "token=\(f.owner)"
                    case "/kitchens": text = #"{"name": "k2", "domains": ["orders-mart"]}"#
                    case _ where uri.hasSuffix("/problems"): text = #"{"title": "t"}"#
                    case _ where parts[0] == "PUT": text = "CREATE TABLE items AS SELECT value FROM orders.items"
                    default: text = "{}"
                    }
                    body = ByteBuffer(string: text)
                }
                let response = try await client.executeRequest(
                    uri: uri, method: HTTPRequest.Method(parts[0])!, headers: headers, body: body)
                #expect(response.route == operation, "\(uri) was answered by \(response.route ?? "no route")")
                // Promoting a kitchen that has not built anything yet is refused, as it should be.
                let worst = operation == "POST /kitchens/{kitchen}/promote" ? 400 : 399
                #expect(response.status.code <= worst, "\(operation) answered \(response.status): \(response.text)")
            }
            // And a path that is not documented is not served.
            let unknown = try await client.get("/domains/orders-mart/secrets", token: f.owner)
            #expect(unknown.status == .notFound)
            #expect(unknown.route == nil)
            await f.server.drainRuns()
        }
    }
}
