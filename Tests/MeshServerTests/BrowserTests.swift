import Foundation
import HTTPTypes
import Hummingbird
import MeshRuntime
import MeshServer
import MeshTestSupport
import Testing

/// Chromium from Debian's packages (`scripts/setup` installs it), or nil.
let chromium: String? = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"].first {
    FileManager.default.isExecutableFile(atPath: $0)
}

@Suite("Pages in a real headless browser")
struct BrowserTests {
    /// Runs headless Chromium on a URL; returns what it printed on standard output.
    ///
    /// The wait is on a thread of its own: blocking one of the Swift pool's few threads would leave the
    /// in-process servers Chromium talks to without one. Chromium is stopped after 90 s so a page that never
    /// loads fails the test instead of hanging the suite.
    static func browse(_ arguments: [String], width: Int = 1280) async throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try #require(chromium, "Chromium is missing: run scripts/setup"))
        let profile = try TemporaryDirectory("chromium")
        defer { profile.remove() }
        process.arguments =
            [
                "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
                "--user-data-dir=\(profile.url.path)", "--window-size=\(width),1000",
                // Long enough for the sign-in page's form to post and the redirect to load.
                "--virtual-time-budget=10000",
            ] + arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let timer = DispatchWorkItem { if process.isRunning { process.terminate() } }
        DispatchQueue.global().asyncAfter(deadline: .now() + 90, execute: timer)
        let handle = output.fileHandleForReading
        let data: Data = await withCheckedContinuation { continuation in
            Thread {
                let data = handle.readDataToEndOfFile()
                process.waitUntilExit()
                continuation.resume(returning: data)
            }.start()
        }
        timer.cancel()
        #expect(process.terminationReason == .exit, "Chromium was stopped after 90 s: \(arguments.last ?? "")")
        return String(decoding: data, as: UTF8.self)
    }

    /// Runs `body` with a second server on 127.0.0.1 whose `/sign-in?next=PATH` page posts the token to the
    /// mesh server's `/login`, as a person filling in the form would (tokens never travel in URLs). The page
    /// is on the same site as the mesh server (ports do not count), so the same-site cookie follows.
    static func withSignInPage<Value: Sendable>(
        meshPort: Int, token: String, _ body: @Sendable (_ signInBase: String) async throws -> Value
    ) async throws -> Value {
        let router = Router()
        router.get("/sign-in") { request, _ -> Response in
            let next = request.uri.queryParameters.get("next") ?? "/"
            let html = """
                <!doctype html><html><body><form method="post" action="http://127.0.0.1:\(meshPort)/login">
                <input name="token" value="\(token)"><input name="next" value="\(next)"></form>
                <script>document.forms[0].submit()</script></body></html>
                """
            return Response(
                status: .ok, headers: [.contentType: "text/html; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: html)))
        }
        return try await running(router, body)
    }

    /// Runs `body` with a server on 127.0.0.1 that answers each of `pages`' paths with its HTML.
    static func serving<Value: Sendable>(
        _ pages: [String: String], _ body: @Sendable (_ base: String) async throws -> Value
    ) async throws -> Value {
        let router = Router()
        for (path, html) in pages {
            router.get(RouterPath(path)) { _, _ -> Response in
                Response(
                    status: .ok, headers: [.contentType: "text/html; charset=utf-8"],
                    body: .init(byteBuffer: ByteBuffer(string: html)))
            }
        }
        return try await running(router, body)
    }

    /// Runs `body` with `router` served on a free port of 127.0.0.1, then stops the server.
    static func running<Value: Sendable>(
        _ router: Router<BasicRequestContext>, _ body: @Sendable (_ base: String) async throws -> Value
    ) async throws -> Value {
        let (ports, announce) = AsyncStream.makeStream(of: Int.self)
        let server = Application(
            router: router, configuration: ApplicationConfiguration(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { announce.yield($0.localAddress?.port ?? 0) })
        return try await withThrowingTaskGroup(of: Value?.self) { group in
            group.addTask {
                try await server.runService(gracefulShutdownSignals: [])
                return nil
            }
            var iterator = ports.makeAsyncIterator()
            let port = try #require(await iterator.next())
            let value = try await body("http://127.0.0.1:\(port)")
            group.cancelAll()
            while let next = try? await group.next() { _ = next }
            return value
        }
    }

    /// Measures a page where Chromium lays it out, and writes what it found into the page as JSON in
    /// `<pre id="probe">` (which `--dump-dom` prints): how far the document and each `<pre>` overflow
    /// sideways, the smallest SVG text as drawn (its font size times the SVG's scale), and the offending-row
    /// cells that are displayed.
    static let probe = """
        <script>(function () {
          var de = document.documentElement, r = {documentOverflow: de.scrollWidth - de.clientWidth, preOverflow: 0,
            pres: 0, smallestText: 1000, texts: 0, offendingCells: []};
          document.querySelectorAll('pre').forEach(function (p) {
            r.pres++; r.preOverflow = Math.max(r.preOverflow, p.scrollWidth - p.clientWidth); });
          document.querySelectorAll('svg text').forEach(function (t) {
            r.texts++;
            r.smallestText = Math.min(r.smallestText, parseFloat(getComputedStyle(t).fontSize) * t.getScreenCTM().a); });
          document.querySelectorAll('table.offending td').forEach(function (td) {
            if (td.getClientRects().length > 0) r.offendingCells.push(td.textContent); });
          var out = document.createElement('pre'); out.id = 'probe'; out.textContent = JSON.stringify(r);
          document.body.appendChild(out);
        })();</script>
        """

    /// What ``probe`` wrote into a dumped page.
    static func measurements(_ dom: String) throws -> [String: Any] {
        let start = try #require(dom.range(of: "<pre id=\"probe\">"), "the probe did not run")
        let json = dom[start.upperBound...].prefix { $0 != "<" }.replacingOccurrences(of: "&amp;", with: "&")
            .replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
        return try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
    }

    /// Width and height from a PNG's header.
    static func pngSize(_ data: Data) -> (Int, Int)? {
        guard data.count > 24, data.prefix(8) == Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) else {
            return nil
        }
        func be(_ at: Int) -> Int { data[at..<(at + 4)].reduce(0) { $0 << 8 | Int($1) } }
        return (be(16), be(20))
    }

    @Test(
        "a browser signs in, sees the mesh graph coloured by status, a domain page and a run page",
        .enabled(if: chromium != nil || ProcessInfo.processInfo.environment["CI"] != nil))
    func pagesInAHeadlessBrowser() async throws {
        let f = try await ServerFixture()
        defer { f.directory.remove() }
        try await f.live { client in
            let port = try #require(client.port)
            let base = "http://127.0.0.1:\(port)"
            try await Self.withSignInPage(meshPort: port, token: f.owner) { signIn in
                func signedIn(_ path: String) -> String { "\(signIn)/sign-in?next=\(encoded(path))" }

                let shot = f.directory.url.appendingPathComponent("mesh.png")
                _ = try await Self.browse(["--screenshot=\(shot.path)", signedIn("/")])
                let png = try Data(contentsOf: shot)
                let size = try #require(Self.pngSize(png))
                #expect(size.0 == 1280 && size.1 == 1000)
                #expect(png.count > 20_000, "a blank page compresses to a few kB")

                let mesh = try await Self.browse(["--dump-dom", signedIn("/")])
                #expect(mesh.contains("<h1>The mesh</h1>"))
                #expect(mesh.contains("3 domains, 3 in sync."))
                #expect(mesh.contains("data-domain=\"orders-mart\" data-status=\"success\" data-sync=\"in_sync\""))
                #expect(mesh.contains("fill=\"#6fcf97\""))

                let page = try await Self.browse(["--dump-dom", signedIn("/domains/orders-mart")])
                for section in ["id=\"what\"", "id=\"where\"", "id=\"when\"", "id=\"with-what\"", "id=\"how\""] {
                    #expect(page.contains(section), "the domain page lacks \(section)")
                }
                #expect(page.contains("order values times the factor"))
                #expect(page.contains("<span id=\"tests\">1 passed, 0 warned, 0 failed</span>"))
                #expect(page.contains("factor=1"))

                let run = try await Self.browse(["--dump-dom", signedIn("/runs/\(f.firstRun)")])
                #expect(run.contains("<h1>Run \(f.firstRun)</h1>"))
                #expect(run.contains("href=\"/domains/secret-mart\""))

                // Without signing in, the browser gets the sign-in form, not the data.
                let anonymous = try await Self.browse(["--dump-dom", "\(base)/domains/orders-mart"])
                #expect(anonymous.contains("401"))
                #expect(anonymous.contains("name=\"token\""))
                #expect(!anonymous.contains("order values times the factor"))
            }
        }
    }

    @Test(
        "at 1400 px: the mesh graph's text is at least 12 px, a domain page's SQL wraps, its offending rows show",
        .enabled(if: chromium != nil || ProcessInfo.processInfo.environment["CI"] != nil))
    func readableAt1400() async throws {
        // One line of 400 characters without a space, as generated SQL has.
        let list = (1000..<1080).map(String.init).joined(separator: ",")
        let f = try await ServerFixture(
            martSQL:
                "CREATE TABLE items AS SELECT value * CAST(:factor AS INTEGER) AS value FROM orders.items WHERE value NOT IN (\(list))",
            martTests: [AcceptedValues(table: "items", column: "value", values: ["1"], severity: .warn)])
        defer { f.directory.remove() }
        try await f.live { client in
            let port = try #require(client.port)
            let accept: HTTPFields = [.accept: PageTests.browserAccept]
            let meshPage = try await client.get("/", token: f.owner, headers: accept).text
            let domainPage = try await client.get("/domains/orders-mart", token: f.owner, headers: accept).text
            #expect(domainPage.contains(list))
            #expect(domainPage.contains("class=\"table-lineage\" data-table=\"orders-mart.items\""))
            #expect(
                domainPage.contains(
                    "<td><a href=\"/domains/orders\">orders.items</a></td><td>v1</td><td>source:orders</td>"))

            // The pages as served, laid out by Chromium 1400 px wide with the probe added.
            try await Self.serving(["/mesh": meshPage + Self.probe, "/domain": domainPage + Self.probe]) { base in
                let mesh = try Self.measurements(try await Self.browse(["--dump-dom", "\(base)/mesh"], width: 1400))
                #expect((mesh["texts"] as? Int ?? 0) >= 6, "\(mesh)")
                #expect((mesh["smallestText"] as? Double ?? 0) >= 12, "the graph's smallest text: \(mesh)")
                #expect((mesh["documentOverflow"] as? Int ?? 1) <= 0, "\(mesh)")

                let domain = try Self.measurements(
                    try await Self.browse(["--dump-dom", "\(base)/domain"], width: 1400))
                #expect((domain["pres"] as? Int ?? 0) >= 1, "\(domain)")
                #expect((domain["preOverflow"] as? Int ?? 1) <= 0, "the SQL overflows its box: \(domain)")
                #expect((domain["documentOverflow"] as? Int ?? 1) <= 0, "the page scrolls sideways: \(domain)")
                #expect((domain["smallestText"] as? Double ?? 0) >= 12, "the lineage graph's text: \(domain)")
                let cells = domain["offendingCells"] as? [String] ?? []
                #expect(cells.contains("2") && cells.contains("3"), "the offending rows are not shown: \(domain)")
            }

            // And screenshots of both, signed in as a person would be.
            try await Self.withSignInPage(meshPort: port, token: f.owner) { signIn in
                for path in ["/", "/domains/orders-mart"] {
                    let shot = f.directory.url.appendingPathComponent("page-1400.png")
                    _ = try await Self.browse(
                        ["--screenshot=\(shot.path)", "\(signIn)/sign-in?next=\(encoded(path))"], width: 1400)
                    let png = try Data(contentsOf: shot)
                    #expect(Self.pngSize(png).map { $0.0 == 1400 && $0.1 == 1000 } == true, "\(path)")
                    #expect(png.count > 20_000, "\(path): a blank page compresses to a few kB")
                }
            }
        }
    }
}
