import Foundation
import MeshTestSupport
import Testing

/// Runs the built `pharma-mesh` with arguments; returns exit code, standard output and standard error.
func pharmaMesh(_ arguments: [String], in directory: URL? = nil) throws -> (code: Int32, out: String, err: String) {
    let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent(
        "pharma-mesh")
    let process = Process()
    process.executableURL = binary
    process.arguments = arguments
    if let directory { process.currentDirectoryURL = directory }
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    let errData = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (
        process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self)
    )
}

struct CommandLineTests {
    /// A feeds folder with one good and one partly bad Xponent batch.
    static func feeds(in dir: URL) throws -> URL {
        let feeds = dir.appendingPathComponent("feeds")
        let header = "PRESCRIBER_ID,NPI,ME_NUMBER,PRODUCT_NDC11,WEEK_ENDING,NRX,TRX,NQTY,TQTY\n"
        for (date, body) in [
            ("2024-03-11", "P1,,,12345678901,2024-03-08,1,2,3,4\n"),
            ("2024-03-18", "P1,,,12345678901,2024-03-15,x,2,3,4\n"),
        ] {
            let folder = feeds.appendingPathComponent("xponent/\(date)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try (header + body).write(
                to: folder.appendingPathComponent("xponent.csv"), atomically: true, encoding: .utf8)
        }
        return feeds
    }

    @Test func runStatusHistoryTestsLineageAndQuery() throws {
        let dir = try TemporaryDirectory("cli")
        defer { dir.remove() }
        let home = dir.url.appendingPathComponent("home").path
        let feeds = try Self.feeds(in: dir.url).path

        let first = try pharmaMesh(["run", "--feeds", feeds, "--as-of", "2024-03-11", "--home", home])
        #expect(first.code == 0, "\(first.err)")
        #expect(first.out.contains("landed 1 batch: xponent 1"))
        #expect(first.out.contains("✔ raw-xponent success"))

        let second = try pharmaMesh(["run", "--feeds", feeds, "--home", home])
        #expect(second.code == 0)
        #expect(second.out.contains("⚠ raw-xponent warn"))
        #expect(second.out.contains("rows_quarantined_in_new_batches"))
        // Under the warned test, its first offending row with the reason, as `tests` shows it.
        #expect(second.out.contains("warned and failed tests, with their first offending rows:"))
        #expect(second.out.contains("  ⚠ raw-xponent rows_quarantined_in_new_batches: 1 offending row\n"))
        #expect(
            second.out.contains(
                "      batch=2024-03-18 column=NRX file=xponent/2024-03-18/xponent.csv line=2 raw_value=x reason=not a number: \"x\"\n"
            ), "\(second.out)")

        let status = try pharmaMesh(["status", "--json", "--home", home])
        let parsed = try JSONSerialization.jsonObject(with: Data(status.out.utf8)) as? [[String: Any]]
        let xponent = try #require(parsed?.first { $0["domain"] as? String == "raw-xponent" })
        #expect(xponent["version"] as? Int == 2)
        #expect((xponent["sync"] as? [String: Any])?["state"] as? String == "in_sync")

        let history = try pharmaMesh(["history", "raw-xponent", "--home", home])
        #expect(history.code == 0)
        #expect(history.out.split(separator: "\n").count == 4)  // header, rule, two runs
        #expect(history.out.contains("source xponent changed"))

        let tests = try pharmaMesh(["tests", "raw-xponent", "--home", home])
        #expect(tests.out.contains("rows_quarantined_in_new_batches"))
        #expect(tests.out.contains("warn"))

        let lineage = try pharmaMesh(["lineage", "raw-xponent.xponent", "--home", home])
        #expect(lineage.out.contains("raw-xponent.xponent@v2"), "\(lineage.out)")
        #expect(lineage.out.contains("source:xponent"))

        let csv = try pharmaMesh([
            "query", "--format", "csv", "--home", home,
            "SELECT line, \"column\", raw_value, reason FROM raw_xponent.quarantine",
        ])
        #expect(csv.out == "line,column,raw_value,reason\n2,NRX,x,\"not a number: \"\"x\"\"\"\n")
        let json = try pharmaMesh([
            "query", "--format", "json", "--home", home, "SELECT COUNT(*) AS n FROM raw_xponent.xponent",
        ])
        #expect(json.out.contains("\"n\" : 1"))
    }

    @Test func exitCodesFollowTheContract() throws {
        let dir = try TemporaryDirectory("cli")
        defer { dir.remove() }
        let home = dir.url.appendingPathComponent("home").path
        let badDate = try pharmaMesh(["run", "--as-of", "2024-13-01", "--home", home])
        #expect(badDate.code == 2)
        #expect(badDate.err.contains("--as-of 2024-13-01 is not a date"))
        // Read-only commands need a mesh: a run with no feeds makes one.
        #expect(try pharmaMesh(["run", "--home", home]).code == 0)
        let unknown = try pharmaMesh(["history", "raw-xponnet", "--home", home])
        #expect(unknown.code == 2)
        #expect(unknown.err.contains("unknown domain 'raw-xponnet'"))
        // SQLite refuses the write as it prepares it, whatever has been built.
        let write = try pharmaMesh(["query", "--home", home, "/**/ CREATE TABLE t (a)"])
        #expect(write.code == 2)
        #expect(write.err.contains("read-only"))
        let missing = try pharmaMesh(["run", "--feeds", dir.url.appendingPathComponent("nope").path, "--home", home])
        #expect(missing.code == 2)
        #expect(missing.err.contains("no such folder"))
        let help = try pharmaMesh(["--help"])
        #expect(help.code == 0)
        #expect(help.out.contains("SUBCOMMANDS"))
    }
}

/// The demo on a small generated world, a quarter per mesh run: the story, the incidents, the report, and a
/// second run that replays to the same figures.
struct DemoTests {
    @Test func theDemoTellsThePhasesAndASecondRunGivesTheSameFigures() throws {
        let dir = try TemporaryDirectory("demo")
        defer { dir.remove() }
        let world = dir.url.appendingPathComponent("world")
        let home = dir.url.appendingPathComponent("home").path
        let generated = try pharmaMesh([
            "generate", "--scale", "sample", "--seed", "7", "--physicians", "200", "--out", world.path,
        ])
        #expect(generated.code == 0, "\(generated.err)")
        let first = try pharmaMesh([
            "demo", "--home", home, "--step", "quarter", "--feeds", world.appendingPathComponent("feeds").path,
        ])
        #expect(first.code == 0, "\(first.err)")
        for phase in ["══ Launch ══", "══ Growth ══", "══ Maturity ══"] {
            #expect(first.out.contains(phase), "\(phase)")
        }
        #expect(first.out.contains("incident: raw-claims batch"))  // the staged broken delivery, quarantined
        #expect(first.out.contains("fixed: raw-claims batch"))  // and its re-delivery
        #expect(first.out.contains("brought up to date for the sync check of field-extracts"))
        #expect(first.out.contains("1 sync violation caught and resolved"))
        for file in ["index.html", "report.md", "mesh.html"] {
            let text = try String(contentsOfFile: "\(home)/report/\(file)", encoding: .utf8)
            #expect(text.contains(file == "mesh.html" ? "physician-master" : "Maturity"), "\(file)")
        }
        let index = try String(contentsOfFile: "\(home)/report/index.html", encoding: .utf8)
        #expect(index.contains("<svg"))
        // Money and counts for people: `$36,021,161`, not `36021161`.
        #expect(
            index.range(of: #"<th>media spend</th><td>\$[0-9]{1,3}(,[0-9]{3})*</td>"#, options: .regularExpression)
                != nil)
        #expect(first.out.range(of: #"media spend +\$[0-9,]+"#, options: .regularExpression) != nil)
        // The mesh page links every box to a page of its own, written beside it.
        let meshPage = try String(contentsOfFile: "\(home)/report/mesh.html", encoding: .utf8)
        #expect(meshPage.contains("<a href=\"domains/physician-master.html\"><g class=\"domain\""))
        let master = try String(contentsOfFile: "\(home)/report/domains/physician-master.html", encoding: .utf8)
        #expect(master.contains("<h1>physician-master</h1>") && master.contains("href=\"raw-nppes.html\""))
        #expect(!master.contains("href=\"/"), "a static page links to files, not to the server")

        // Run again: the replay starts over in the same home and prints the same figures.
        let second = try pharmaMesh([
            "demo", "--home", home, "--step", "quarter", "--feeds", world.appendingPathComponent("feeds").path,
        ])
        #expect(second.code == 0, "\(second.err)")
        func figures(_ text: String) -> [Substring] {
            text.split(separator: "\n").filter {
                $0.contains("  ") && !$0.hasPrefix("[") && !$0.contains("demo finished")
            }
            .filter { !$0.contains("incident") && !$0.contains("status:") && !$0.contains("sync check") }
        }
        #expect(figures(first.out) == figures(second.out))
        #expect(!figures(first.out).isEmpty)
        // A home the demo did not create is refused, not erased.
        let other = dir.url.appendingPathComponent("other")
        try FileManager.default.createDirectory(at: other, withIntermediateDirectories: true)
        try Data("x".utf8).write(to: other.appendingPathComponent("keep.txt"))
        let refused = try pharmaMesh([
            "demo", "--home", other.path, "--feeds", world.appendingPathComponent("feeds").path,
        ])
        #expect(refused.code == 2 && refused.err.contains("did not create"))
        #expect(FileManager.default.fileExists(atPath: other.appendingPathComponent("keep.txt").path))
    }
}

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

struct ServeCommandTests {
    @Test("token create, list and revoke; serve answers over HTTP with the token and stops on Ctrl-C")
    func tokensAndServe() async throws {
        let dir = try TemporaryDirectory("serve")
        defer { dir.remove() }
        let home = dir.url.appendingPathComponent("home").path
        let feeds = try CommandLineTests.feeds(in: dir.url).path
        #expect(try pharmaMesh(["run", "--feeds", feeds, "--home", home]).code == 0)

        let created = try pharmaMesh(["token", "create", "--name", "analyst", "--role", "reader", "--home", home])
        #expect(created.code == 0, "\(created.err)")
        let secret = created.out.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(secret.hasPrefix("pmt_"))
        #expect(created.err.contains("shown once"))
        let badRole = try pharmaMesh(["token", "create", "--name", "x", "--role", "admin", "--home", home])
        #expect(badRole.code == 2)
        #expect(badRole.err.contains("reader, runner or owner"))
        let badDomain = try pharmaMesh([
            "token", "create", "--name", "y", "--role", "reader", "--domains", "physician-mrt", "--home", home,
        ])
        #expect(badDomain.code == 2)
        #expect(badDomain.err.contains("physician-mart"))

        let process = Process()
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            .appendingPathComponent("pharma-mesh")
        process.arguments = ["serve", "--port", "0", "--home", home]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        let line = String(decoding: out.fileHandleForReading.availableData, as: UTF8.self)
        let port = try #require(
            line.split(separator: ":").last.flatMap {
                Int($0.trimmingCharacters(in: CharacterSet(charactersIn: "/\n ")))
            })
        #expect(line.contains("serving 24 domains"))

        func get(_ path: String, token: String?) async throws -> (Int, String) {
            var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
            if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
            let (data, response) = try await URLSession.shared.data(for: request)
            return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
        }
        let (okStatus, body) = try await get("/domains/raw-xponent", token: secret)
        #expect(okStatus == 200)
        #expect(body.contains("\"schema\" : \"raw_xponent\""))
        #expect(try await get("/domains/raw-xponent", token: nil).0 == 401)

        let list = try pharmaMesh(["token", "list", "--home", home])
        #expect(list.out.contains("analyst") && list.out.contains("live"))
        #expect(try pharmaMesh(["token", "revoke", "analyst", "--home", home]).code == 0)
        #expect(try pharmaMesh(["token", "list", "--home", home]).out.contains("revoked"))
        let (revokedStatus, revokedBody) = try await get("/domains/raw-xponent", token: secret)
        #expect(revokedStatus == 401)
        #expect(revokedBody.contains("revoked"))
        #expect(try pharmaMesh(["token", "revoke", "analyst", "--home", home]).code == 2)

        process.interrupt()
        let deadline = Date().addingTimeInterval(10)
        while process.isRunning && Date() < deadline { try await Task.sleep(for: .milliseconds(50)) }
        #expect(!process.isRunning, "serve did not stop on SIGINT")
    }
}

struct KitchenCommandTests {
    @Test("kitchen create, list, run, diff, promote and delete from the command line")
    func kitchenLifecycle() throws {
        let dir = try TemporaryDirectory("kitchen-cli")
        defer { dir.remove() }
        let home = dir.url.appendingPathComponent("home").path
        let feeds = try CommandLineTests.feeds(in: dir.url).path
        #expect(try pharmaMesh(["run", "--feeds", feeds, "--home", home]).code == 0)

        let created = try pharmaMesh(["kitchen", "create", "k", "--domains", "raw-xponent", "--home", home])
        #expect(created.code == 0, "\(created.err)")
        #expect(created.out.contains("kitchen k created from production: builds raw-xponent"))
        let unknown = try pharmaMesh(["kitchen", "create", "k2", "--domains", "raw-xponnent", "--home", home])
        #expect(unknown.code == 2)
        #expect(unknown.err.contains("raw-xponent"))
        #expect(try pharmaMesh(["kitchen", "list", "--home", home]).out.contains("raw-xponent"))

        let run = try pharmaMesh(["kitchen", "run", "k", "--force", "--home", home])
        #expect(run.code == 0, "\(run.err)")
        #expect(run.out.contains("raw-xponent"))
        let diff = try pharmaMesh(["kitchen", "diff", "k", "--home", home])
        #expect(diff.code == 0, "\(diff.err)")
        #expect(diff.out.contains("raw-xponent: production v1 → kitchen v2"))
        #expect(diff.out.contains("+0 -0 ~0"))
        let badParam = try pharmaMesh(["kitchen", "run", "k", "--param", "physician-mart.x=1", "--home", home])
        #expect(badParam.code == 2)
        #expect(badParam.err.contains("does not build physician-mart"))

        // A forced rebuild of unchanged code is what production builds: the promotion changes nothing.
        let before = try pharmaMesh(["history", "raw-xponent", "--json", "--home", home]).out
        let promoted = try pharmaMesh(["kitchen", "promote", "k", "--home", home])
        #expect(promoted.code == 0, "\(promoted.err)")
        #expect(promoted.out.contains("nothing to promote: the kitchen builds what production builds"))
        let after = try pharmaMesh(["history", "raw-xponent", "--json", "--home", home]).out
        #expect(before == after)
        #expect(try pharmaMesh(["kitchen", "delete", "k", "--home", home]).code == 0)
        #expect(try pharmaMesh(["kitchen", "list", "--home", home]).out.contains("no kitchens"))
    }
}

/// `serve` under load, as an operator sees it: queries bounded, the rest answering, SIGTERM obeyed.
struct BusyServerTests {
    /// GET on a thread of its own with a plain socket-level timeout, so that a hung server fails the test
    /// instead of hanging it.
    struct Answer: Sendable {
        var status: Int
        var retryAfter: String?
        var body: String
    }

    static func get(_ url: URL, token: String?) async -> Answer {
        var request = URLRequest(url: url, timeoutInterval: 30)
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        let configuration = URLSessionConfiguration.ephemeral
        configuration.httpMaximumConnectionsPerHost = 16
        let session = URLSession(configuration: configuration)
        guard let (data, response) = try? await session.data(for: request), let http = response as? HTTPURLResponse
        else { return Answer(status: 0, retryAfter: nil, body: "") }
        return Answer(
            status: http.statusCode, retryAfter: http.value(forHTTPHeaderField: "Retry-After"),
            body: String(decoding: data, as: UTF8.self))
    }

    /// A blocking GET on a thread of its own, timed there: a busy concurrency pool in the test process (other
    /// tests run beside this one) does not count against the server.
    static func timed(_ url: URL) async -> (ok: Bool, seconds: Double) {
        await withCheckedContinuation { continuation in
            Thread {
                let started = Date()
                let data = try? Data(contentsOf: url)
                continuation.resume(
                    returning: (
                        data.map { String(decoding: $0, as: UTF8.self).contains("ok") } ?? false,
                        Date().timeIntervalSince(started)
                    ))
            }.start()
        }
    }

    @Test("SIGTERM stops a server busy with endless queries within seconds; /health answers meanwhile")
    func sigtermStopsABusyServer() async throws {
        let dir = try TemporaryDirectory("busy")
        defer { dir.remove() }
        let home = dir.url.appendingPathComponent("home").path
        let feeds = try CommandLineTests.feeds(in: dir.url).path
        #expect(try pharmaMesh(["run", "--feeds", feeds, "--as-of", "2024-03-11", "--home", home]).code == 0)
        let secret = try pharmaMesh(["token", "create", "--name", "a", "--role", "reader", "--home", home]).out
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let other = try pharmaMesh(["token", "create", "--name", "b", "--role", "reader", "--home", home]).out
            .trimmingCharacters(in: .whitespacesAndNewlines)

        let process = Process()
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            .appendingPathComponent("pharma-mesh")
        process.arguments = [
            "serve", "--port", "0", "--home", home, "--query-timeout", "600", "--query-concurrency", "4",
            "--query-concurrency-per-token", "2",
        ]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        let line = String(decoding: out.fileHandleForReading.availableData, as: UTF8.self)
        let port = try #require(
            line.split(separator: ":").last.flatMap {
                Int($0.trimmingCharacters(in: CharacterSet(charactersIn: "/\n ")))
            })
        let base = "http://127.0.0.1:\(port)"
        let endless = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r"
        let query = URL(
            string: "\(base)/query?sql=\(endless.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)")!

        let queries = (0..<4).map { index -> Task<Answer, Never> in
            Task { await Self.get(query, token: index < 2 ? secret : other) }
        }
        var running = 0
        for _ in 0..<2400 {
            let metrics = await Self.get(URL(string: "\(base)/metrics")!, token: secret).body
            running =
                metrics.split(separator: "\n").first { $0.hasPrefix("mesh_queries_running ") }
                .flatMap { Double($0.split(separator: " ").last ?? "") }.map { Int($0) } ?? 0
            if running == 4 { break }
            try await Task.sleep(for: .milliseconds(25))
        }
        #expect(running == 4)
        let health = await Self.timed(URL(string: "\(base)/health")!)
        #expect(health.ok)
        #expect(health.seconds < 1, "/health took \(health.seconds) s")
        let fifth = await Self.get(query, token: secret)
        #expect(fifth.status == 503 || fifth.status == 429)
        #expect(fifth.retryAfter == "1")

        // Timed on a thread of its own, as /health was.
        let stopped: Double = await withCheckedContinuation { continuation in
            Thread {
                let signalled = Date()
                process.terminate()  // SIGTERM
                while process.isRunning && Date().timeIntervalSince(signalled) < 30 { usleep(10_000) }
                continuation.resume(returning: Date().timeIntervalSince(signalled))
            }.start()
        }
        #expect(!process.isRunning, "serve did not stop on SIGTERM")
        #expect(stopped < 5, "serve took \(stopped) s to stop")
        #expect(process.terminationReason == .exit && process.terminationStatus == 0)
        // The queries were answered (the server is stopping) or cut off, never left hanging.
        for task in queries {
            let answer = await task.value
            #expect(answer.status == 503 || answer.status == 0, "\(answer.status): \(answer.body)")
        }
    }
}
