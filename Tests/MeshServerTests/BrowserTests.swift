import Foundation
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
    static func browse(_ arguments: [String]) async throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try #require(chromium, "Chromium is missing: run scripts/setup"))
        let profile = try TemporaryDirectory("chromium")
        defer { profile.remove() }
        process.arguments =
            [
                "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
                "--user-data-dir=\(profile.url.path)", "--window-size=1280,1000",
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
        let (ports, announce) = AsyncStream.makeStream(of: Int.self)
        let page = Application(
            router: router, configuration: ApplicationConfiguration(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { announce.yield($0.localAddress?.port ?? 0) })
        return try await withThrowingTaskGroup(of: Value?.self) { group in
            group.addTask {
                try await page.runService(gracefulShutdownSignals: [])
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
}
