import Foundation
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
    static func browse(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try #require(chromium, "Chromium is missing: run scripts/setup"))
        let profile = try TemporaryDirectory("chromium")
        defer { profile.remove() }
        process.arguments =
            [
                "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
                "--user-data-dir=\(profile.url.path)", "--window-size=1280,1000",
            ] + arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
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
            func signedIn(_ path: String) -> String { "\(base)/login?token=\(f.owner)&next=\(encoded(path))" }

            let shot = f.directory.url.appendingPathComponent("mesh.png")
            _ = try Self.browse(["--screenshot=\(shot.path)", signedIn("/")])
            let png = try Data(contentsOf: shot)
            let size = try #require(Self.pngSize(png))
            #expect(size.0 == 1280 && size.1 == 1000)
            #expect(png.count > 20_000, "a blank page compresses to a few kB")

            let mesh = try Self.browse(["--dump-dom", signedIn("/")])
            #expect(mesh.contains("<h1>The mesh</h1>"))
            #expect(mesh.contains("3 domains, 3 in sync."))
            #expect(mesh.contains("data-domain=\"orders-mart\" data-status=\"success\" data-sync=\"in_sync\""))
            #expect(mesh.contains("fill=\"#6fcf97\""))

            let page = try Self.browse(["--dump-dom", signedIn("/domains/orders-mart")])
            for section in ["id=\"what\"", "id=\"where\"", "id=\"when\"", "id=\"with-what\"", "id=\"how\""] {
                #expect(page.contains(section), "the domain page lacks \(section)")
            }
            #expect(page.contains("order values times the factor"))
            #expect(page.contains("<span id=\"tests\">1 passed, 0 warned, 0 failed</span>"))
            #expect(page.contains("factor=1"))

            let run = try Self.browse(["--dump-dom", signedIn("/runs/\(f.firstRun)")])
            #expect(run.contains("<h1>Run \(f.firstRun)</h1>"))
            #expect(run.contains("href=\"/domains/secret-mart\""))

            // Without signing in, the browser gets the sign-in form, not the data.
            let anonymous = try Self.browse(["--dump-dom", "\(base)/domains/orders-mart"])
            #expect(anonymous.contains("401"))
            #expect(anonymous.contains("name=\"token\""))
            #expect(!anonymous.contains("order values times the factor"))
        }
    }
}
