import Foundation
import MeshTestSupport
import Testing

/// What a person sees: the progress of a run on a terminal and piped, the history's fields, and query output.
struct OutputTests {
    /// Runs the built binary under a pseudo-terminal (util-linux `script`), so that standard output is a tty.
    static func underTerminal(_ arguments: [String]) throws -> String {
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            .appendingPathComponent("pharma-mesh").path
        let command = ([binary] + arguments).map { "'\($0)'" }.joined(separator: " ")
        let result = try run("/usr/bin/script", ["-qec", command, "/dev/null"])
        return result
    }

    static func run(_ executable: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["TERM"] = "xterm"
        environment["COLUMNS"] = "160"
        process.environment = environment
        let out = Pipe()
        process.standardOutput = out
        process.standardError = out
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    @Test func aRunOnATerminalShowsTotalsElapsedTimeAndReasonsAndPipedOutputStaysPlain() throws {
        let dir = try TemporaryDirectory("progress")
        defer { dir.remove() }
        let feeds = try ConcurrencyTests.xponentFeeds(in: dir.url, weeks: 3)
        let home = dir.url.appendingPathComponent("home").path
        let terminal = try Self.underTerminal(["run", "--feeds", feeds.path, "--home", home])
        // A counter of the run's 24 domains on every finished line, and the live line with elapsed time.
        #expect(terminal.contains("✔ [1/24] "), "\(terminal.prefix(3000))")
        #expect(terminal.range(of: #"\[\d+/24\] \d+\.\d s · building "#, options: .regularExpression) != nil)
        // Why each domain builds is on the terminal too.
        #expect(terminal.contains("▶ raw-xponent: first build"))
        #expect(terminal.contains("\u{1B}[2K"))

        try ConcurrencyTests.xponentFeeds(in: dir.url, weeks: 1, from: 3)
        let piped = try pharmaMesh(["run", "--feeds", feeds.path, "--home", home])
        #expect(piped.code == 0, "\(piped.err)")
        #expect(piped.out.contains("▶ raw-xponent: source xponent changed"), "\(piped.out)")
        #expect(!piped.out.contains("\u{1B}["))
        #expect(!piped.out.contains("/24]"))
    }

    @Test func historyShowsTriggerVariationParametersAndTheRunsOutcome() throws {
        let dir = try TemporaryDirectory("history")
        defer { dir.remove() }
        let feeds = try ConcurrencyTests.xponentFeeds(in: dir.url, weeks: 2)
        let home = dir.url.appendingPathComponent("home").path
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        #expect(try pharmaMesh(["run", "--feeds", feeds.path, "--home", home], in: root).code == 0)
        let dev = try pharmaMesh(
            ["run", "--home", home, "--variation", "dev", "--only", "field-extracts", "--force"], in: root)
        #expect(dev.code == 0, "\(dev.err)")
        let table = try pharmaMesh(["history", "field-extracts", "--home", home])
        #expect(table.out.contains("TRIGGER") && table.out.contains("VARIATION") && table.out.contains("PARAMETERS"))
        #expect(table.out.contains("window_weeks=4"), "\(table.out)")
        let json = try pharmaMesh(["history", "field-extracts", "--json", "--home", home])
        let entries = try #require(try JSONSerialization.jsonObject(with: Data(json.out.utf8)) as? [[String: Any]])
        #expect(entries.count == 2)
        #expect(entries[0]["trigger"] as? String == "cli")
        #expect(entries[0]["variation"] as? String == "dev")
        #expect((entries[0]["parameters"] as? [String: String])?["window_weeks"] == "4")
        #expect(entries[0]["run_status"] as? String == "success")
        #expect(entries[1]["variation"] as? String == "prod")
        // The commit of the program, found from the binary's checkout wherever the command runs.
        let elsewhere = try pharmaMesh(
            ["run", "--home", home, "--only", "field-extracts", "--force"], in: dir.url)
        #expect(elsewhere.code == 0, "\(elsewhere.err)")
        let latest = try pharmaMesh(["history", "field-extracts", "--json", "--limit", "1", "--home", home])
        let commit =
            (try JSONSerialization.jsonObject(with: Data(latest.out.utf8)) as? [[String: Any]])?.first?[
                "code_commit"] as? String
        #expect(commit?.count == 40, "\(latest.out.prefix(1500))")
        // A domain over other domains counts the rows it read.
        #expect((entries[0]["rows_in"] as? Int ?? 0) > 0)
        // Run ids have one length: the start time and eight hex digits.
        let ids = entries.compactMap { $0["run_id"] as? String }
        #expect(ids.allSatisfy { $0.range(of: #"^r\d{8}T\d{6}-[0-9a-f]{8}$"#, options: .regularExpression) != nil })
    }

    @Test func queryOutputKeepsColumnOrderAndAlignsNumbers() throws {
        let dir = try TemporaryDirectory("query-output")
        defer { dir.remove() }
        let home = dir.url.appendingPathComponent("home").path
        #expect(try pharmaMesh(["run", "--home", home]).code == 0)
        let json = try pharmaMesh([
            "query", "--format", "json", "--home", home, "SELECT 1 AS zeta, 'x' AS alpha, NULL AS middle, 2.5 AS b",
        ])
        let keys = ["zeta", "alpha", "middle", "b"].compactMap { json.out.range(of: "\"\($0)\"")?.lowerBound }
        #expect(keys.count == 4 && keys == keys.sorted(), "\(json.out)")
        let parsed = try JSONSerialization.jsonObject(with: Data(json.out.utf8)) as? [[String: Any]]
        #expect(parsed?.first?["zeta"] as? Int == 1 && parsed?.first?["alpha"] as? String == "x")

        let table = try pharmaMesh(["query", "--home", home, "SELECT 1 AS a_long_name, 'x' UNION ALL SELECT 100, 'y'"])
        let lines = table.out.split(separator: "\n").map(String.init)
        #expect(lines.count == 4, "\(table.out)")
        // The numeric column is right-aligned, header included: its last digits line up.
        let ends = lines.map { $0.prefix("a_long_name".count) }
        #expect(ends[0] == "a_long_name" && ends[2] == "          1" && ends[3] == "        100", "\(table.out)")

        // Quoted names are names; an unqualified table and a mistyped column get the name to use.
        let quoted = try pharmaMesh([
            "query", "--home", home, #"SELECT COUNT(*) FROM "physician_mart"."fact_rx_weekly""#,
        ])
        #expect(quoted.code == 0, "\(quoted.err)")
        let bare = try pharmaMesh(["query", "--home", home, "SELECT COUNT(*) FROM fact_rx_weekly"])
        #expect(bare.err.contains("did you mean physician_mart.fact_rx_weekly?"), "\(bare.err)")
        let column = try pharmaMesh(["query", "--home", home, "SELECT trx13wk FROM field_extracts.physician_deciles"])
        #expect(column.err.contains("did you mean trx_13wk (field_extracts.physician_deciles)"), "\(column.err)")
        let literal = try pharmaMesh(["query", "--home", home, "SELECT 'a;DELETE b' AS s"])
        #expect(literal.code == 0 && literal.out.contains("a;DELETE b"), "\(literal.err)")
    }
}

extension OutputTests {
    @Test func quintilesPublishACallPlanAndContradictoryParametersFail() throws {
        let dir = try TemporaryDirectory("variations")
        defer { dir.remove() }
        let home = try KitchenPromotionTests.production(in: dir)
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let quintiles = try pharmaMesh(["run", "--home", home, "--variation", "quintiles"], in: root)
        #expect(quintiles.code == 0, "\(quintiles.err)")
        let plan = try pharmaMesh([
            "query", "--format", "csv", "--home", home,
            "SELECT COUNT(*), MIN(c.decile), MAX(c.decile), MAX(c.calls_per_month), (SELECT MAX(window_weeks) FROM field_extracts.physician_deciles) FROM field_extracts.call_plan c",
        ])
        let cells = plan.out.split(separator: "\n").last?.split(separator: ",").map(String.init) ?? []
        #expect(cells.count == 5 && (Int(cells[0]) ?? 0) > 0, "\(plan.out)")
        #expect(cells.count == 5 && cells[1] == "4" && cells[2] == "5" && cells[3] == "4" && cells[4] == "26")

        // The same groups with the call plan's default minimum (8): no group reaches it, and the test says so.
        let variations = dir.url.appendingPathComponent("variations.json")
        try """
        {"default": "prod", "variations": {"prod": {"parameters": {}},
         "broken": {"domains": {"field-extracts": {"groups": "5"}}}}}
        """.write(to: variations, atomically: true, encoding: .utf8)
        let broken = try pharmaMesh(["run", "--home", home, "--config", variations.path, "--variation", "broken"])
        #expect(broken.code == 1, "\(broken.out)")
        #expect(broken.out.contains("call_plan_min_decile_within_groups"), "\(broken.out)")
        #expect(broken.out.contains("✘ field-extracts fail"), "\(broken.out)")
    }
}

extension OutputTests {
    @Test func aCanaryBuildsInAKitchenOfItsOwnAndLeavesProductionAsItWas() throws {
        let dir = try TemporaryDirectory("canary")
        defer { dir.remove() }
        let home = try KitchenPromotionTests.production(in: dir)
        // What production serves and last ran, domain by domain (freshness moves with the clock, so not all of
        // status).
        func served() throws -> [String] {
            let out = try pharmaMesh(["status", "--json", "--home", home]).out
            let parsed = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [[String: Any]] ?? []
            return parsed.map { "\($0["domain"] ?? "") v\($0["version"] ?? "-") \($0["lastRun"] ?? "-")" }
        }
        let before = try served()
        #expect(before.count == 24)
        let canary = try pharmaMesh(["run", "--home", home, "--variation", "canary", "--force"])
        #expect(canary.code == 0, "\(canary.err)")
        #expect(canary.out.contains("variation canary builds in kitchen canary"), "\(canary.out)")
        #expect(canary.out.contains("production is untouched"))
        #expect(try served() == before)
        let kitchens = try pharmaMesh(["kitchen", "list", "--home", home])
        #expect(kitchens.out.contains("canary"))
        let history = try pharmaMesh(["history", "field-extracts", "--json", "--home", home, "--limit", "1"])
        #expect(!history.out.contains("\"variation\" : \"canary\""))
    }
}

extension OutputTests {
    @Test func aTablesLineageIsWhatItsStepsReadEachTableOnce() throws {
        let dir = try TemporaryDirectory("table-lineage")
        defer { dir.remove() }
        let home = try KitchenPromotionTests.production(in: dir)
        let rx = try pharmaMesh(["lineage", "physician-mart.fact_rx_weekly", "--home", home])
        #expect(rx.code == 0, "\(rx.err)")
        // fact_rx_weekly reads Xponent, the prescriber cross-walk and the product dimension: not the calls,
        // claims or Part D that other tables of its domain read.
        for read in ["raw-xponent.xponent@v", "physician-master.physician_xref@v", "conformed-dims.dim_product@v"] {
            #expect(rx.out.contains(read), "\(read) missing: \(rx.out)")
        }
        for other in ["raw-crm_calls", "raw-partd", "raw-claims.claims"] {
            #expect(!rx.out.contains(other), "\(other) is not read by fact_rx_weekly: \(rx.out)")
        }
        // Each table is drawn once; a table met again is marked, never expanded twice.
        let plan = try pharmaMesh(["lineage", "field-extracts.call_plan", "--home", home])
        let drawn = plan.out.split(separator: "\n").filter { $0.contains("@v") && !$0.contains("(shown above)") }
            .map { $0.drop(while: { !$0.isLetter }) }.map { $0.split(separator: " ").first.map(String.init) ?? "" }
        #expect(drawn.count == Set(drawn).count, "\(plan.out)")
        #expect(plan.out.split(separator: "\n").count < 80, "\(plan.out)")
        let json = try pharmaMesh(["lineage", "physician-mart.fact_rx_weekly", "--json", "--home", home])
        let parsed = try JSONSerialization.jsonObject(with: Data(json.out.utf8)) as? [String: Any]
        let edges = parsed?["edges"] as? [[String: String]] ?? []
        #expect(edges.contains { $0["from"] == "raw-xponent.xponent" && $0["to"] == "physician-mart.fact_rx_weekly" })
    }
}
