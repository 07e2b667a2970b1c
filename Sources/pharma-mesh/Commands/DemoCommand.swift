import ArgumentParser
import Foundation
import Ingest
import MeshRuntime

/// `demo`: the launch-to-mature story on sample-data/, replayed delivery by delivery.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Replay sample-data/ through launch, growth and maturity and report each phase.",
        discussion: """
            Batches land in delivery order and the mesh runs once per replay step (a month by default), so each run
            rebuilds only what the new batches touch. Every demo replays from scratch in its own home (one the demo
            created, or an empty folder), so two runs print the same figures. Stopping it (Ctrl-C) is harmless: the
            next run starts over. The report is written to HOME/report/ (index.html, report.md, mesh.html and a page
            per domain in domains/).
            """)

    enum Step: String, ExpressibleByArgument, CaseIterable { case week, month, quarter }

    @OptionGroup var mesh: MeshOptions
    @Option(help: "The feeds to replay.") var feeds = "sample-data/feeds"
    @Option(help: "How far each mesh run advances the clock: week, month or quarter.") var step: Step = .month

    func run() async throws {
        guard FileManager.default.fileExists(atPath: feeds) else {
            throw ValidationError("\(feeds) not found: run the demo from the repository root, or pass --feeds DIR.")
        }
        try Self.prepare(home: self.mesh.homeURL)
        let mesh = try self.mesh.open()
        let replay = DemoReplay(mesh: mesh, feeds: URL(fileURLWithPath: feeds), step: step)
        try await replay.run()
    }
}

extension DemoCommand {
    /// Empties a home the demo created before (marked by a `demo-home` file), or takes an empty folder; refuses
    /// anything else, since the replay starts from nothing.
    static func prepare(home: URL) throws {
        let fm = FileManager.default
        let marker = home.appendingPathComponent("demo-home")
        if let contents = try? fm.contentsOfDirectory(atPath: home.path), !contents.isEmpty {
            guard fm.fileExists(atPath: marker.path) else {
                throw ValidationError(
                    "\(home.path) holds a mesh the demo did not create, and the demo replays from nothing. "
                        + "Pass --home with a new or empty folder (scripts/demo uses .pharma-mesh/demo).")
            }
            try fm.removeItem(at: home)
        }
        try fm.createDirectory(at: home, withIntermediateDirectories: true)
        try Data("created by pharma-mesh demo; the next demo empties this folder\n".utf8).write(to: marker)
    }
}

/// The replay: clock ticks, phase boundaries, the staged incidents, and the figures.
final class DemoReplay {
    let mesh: Mesh
    let feeds: URL
    let step: DemoCommand.Step
    var phases: [DemoPhase] = []
    var current = DemoPhase(name: "Launch")
    /// Files that had rows quarantined, by raw domain: a later batch re-delivering one is reported as the fix.
    var awaitingRedelivery: [(domain: DomainID, batch: String, stem: String)] = []
    let started = ContinuousClock.now

    init(mesh: Mesh, feeds: URL, step: DemoCommand.Step) {
        self.mesh = mesh
        self.feeds = feeds
        self.step = step
    }

    /// Every delivery date in the feeds folder.
    func deliveryDates() throws -> [LandingDate] {
        let fm = FileManager.default
        var dates = Set<LandingDate>()
        for feed in try fm.contentsOfDirectory(atPath: feeds.path) {
            let folder = feeds.appendingPathComponent(feed)
            for name in (try? fm.contentsOfDirectory(atPath: folder.path)) ?? [] {
                if let date = LandingDate.parse(name) { dates.insert(date) }
            }
        }
        return dates.sorted()
    }

    /// The replay clock: the last delivery date of each week or month.
    func ticks(_ dates: [LandingDate]) -> [LandingDate] {
        var last: [String: LandingDate] = [:]
        for date in dates {
            let key: String
            switch step {
            case .month: key = String(date.description.prefix(7))
            case .week: key = DemoDates.weekEnding(date.description)
            case .quarter:
                let month = Int(date.description.dropFirst(5).prefix(2)) ?? 1
                key = "\(date.description.prefix(4))Q\((month + 2) / 3)"
            }
            last[key] = max(last[key] ?? date, date)
        }
        return last.values.sorted()
    }

    func run() async throws {
        let dates = try deliveryDates()
        guard let first = dates.first, let end = dates.last else {
            throw ValidationError("\(feeds.path) holds no batches (FEED/YYYY-MM-DD/ folders).")
        }
        let ticks = ticks(dates)
        print("pharma-mesh demo: \(ticks.count) mesh runs replay the deliveries from \(first) to \(end)")
        print("mesh home: \(mesh.home.path)\n")
        var launchEnd: String?
        var growthEnd: String?
        var staged = false
        for (index, tick) in ticks.enumerated() {
            let summary = try await RunCommand.execute(
                mesh: mesh, feeds: feeds, asOf: tick, request: RunRequest(trigger: "demo"), quiet: true)
            current.record(summary)
            report(tick: tick, index: index, of: ticks.count, summary: summary)
            try reportIncidents(summary)
            if launchEnd == nil,
                let launch = try scalar(
                    "SELECT launch_date FROM physician_mart.dim_product WHERE is_own_brand = 1 ORDER BY product_key LIMIT 1"
                )
            {
                launchEnd = DemoDates.adding(weeks: 26, to: launch)
                growthEnd = DemoDates.adding(weeks: 104, to: launch)
                if current.name == "Launch" { current.start = launch }
            }
            if !staged, current.name == "Growth", tick.description >= "2025-04-01" {
                try await stageSyncIncident()
                staged = true
            }
            if let boundary = current.name == "Launch" ? launchEnd : current.name == "Growth" ? growthEnd : nil,
                tick.description >= boundary || index == ticks.count - 1
            {
                try closePhase(
                    next: current.name == "Launch" ? "Growth" : "Maturity",
                    at: tick.description >= boundary ? boundary : nil)
            }
        }
        if current.name != "Done" { try closePhase(next: "Done") }
        let seconds = Double((ContinuousClock.now - started) / .milliseconds(1)) / 1000
        let report = try DemoReport(mesh: mesh, phases: phases).write()
        print(String(format: "\ndemo finished in %.1f s; report: %@", seconds, report.path))
        let home = mesh.home.path
        print(
            """
            explore it: pharma-mesh status --home \(home)
                        pharma-mesh token create --name me --role owner --home \(home)
                        pharma-mesh serve --home \(home)      (then http://127.0.0.1:8080/login)
            """)
    }

    func report(tick: LandingDate, index: Int, of total: Int, summary: RunSummary) {
        let built = summary.built.count
        let tests = summary.outcomes.values.flatMap(\.tests)
        let warned = tests.filter { $0.status == .warn }.count
        let failed = summary.failed.count
        print(
            "[\(String(format: "%3d", index + 1))/\(total)] \(tick)  \(current.name.padding(toLength: 8, withPad: " ", startingAt: 0))"
                + "  rebuilt \(String(format: "%2d", built)) domain\(built == 1 ? " " : "s")"
                + "  tests \(tests.count - warned) passed\(warned > 0 ? ", \(warned) warned" : "")"
                + (failed > 0 ? "  FAILED: \(summary.failed.map(\.rawValue).joined(separator: ", "))" : ""))
    }

    /// Quarantined rows and rejected batches of the batches this run loaded: nothing is lost, and a person
    /// can act on the message.
    func reportIncidents(_ summary: RunSummary) throws {
        for domain in summary.built where domain.rawValue.hasPrefix("raw-") {
            let schema = domain.schemaName
            let rows = try mesh.query(
                """
                SELECT batch, status, rows_quarantined, COALESCE(message, '') AS message FROM \(schema).batches
                WHERE new_in_build = 1 AND (rows_quarantined > 0 OR status <> 'loaded') ORDER BY batch
                """
            ).rows
            for row in rows {
                let text =
                    "      incident: \(domain) batch \(row[0]) \(row[1].description.replacingOccurrences(of: "_", with: " "))"
                    + (row[3].description.isEmpty ? "" : ": \(row[3])")
                    + " (the batch is kept as landed; the good rows are loaded; a re-delivery replaces the rest)"
                print(text)
                current.incidents.append(text.trimmingCharacters(in: .whitespaces))
                let details = try mesh.query(
                    """
                    SELECT file, line, "column", reason FROM \(schema).quarantine WHERE batch = '\(row[0])'
                    ORDER BY file, line LIMIT 5
                    """
                ).rows
                for file in Set(details.map { $0[0].description }) {
                    let name = file.split(separator: "/").last.map(String.init) ?? file
                    let stem = name.split(separator: ".").first.map(String.init) ?? name
                    awaitingRedelivery.append((domain, row[0].description, stem))
                }
                for detail in details {
                    let line = "        \(detail[0]) line \(detail[1]), column \(detail[2]): \(detail[3])"
                    print(line)
                    current.incidents.append(line.trimmingCharacters(in: .whitespaces))
                }
            }
            for (index, awaited) in awaitingRedelivery.enumerated().reversed() where awaited.domain == domain {
                let fixes = try mesh.query(
                    """
                    SELECT batch, files, rows_loaded, rows_quarantined FROM \(schema).batches
                    WHERE new_in_build = 1 AND batch > '\(awaited.batch)' AND instr(files, '\(awaited.stem)') > 0
                    ORDER BY batch
                    """
                ).rows
                if let fix = fixes.first {
                    let line =
                        "fixed: \(domain) batch \(fix[0]) re-delivers \(awaited.stem): \(fix[2]) rows loaded, "
                        + "\(fix[3]) quarantined"
                    print("      \(line)")
                    current.incidents.append(line)
                    awaitingRedelivery.remove(at: index)
                }
            }
        }
    }

    /// A steward republishes physician-master and only physician-mart is rebuilt; the next consumer of both
    /// marts finds payer-mart built from the older master, and the runtime rebuilds it before going on.
    func stageSyncIncident() async throws {
        print("\n  ── incident: a steward republishes physician-master; the physician team rebuilds only its mart")
        let partial = try await mesh.run(
            RunRequest(only: ["physician-master", "physician-mart"], force: ["physician-master"], trigger: "demo"))
        current.record(partial)
        let master = partial.outcomes["physician-master"]?.version ?? 0
        let stale = try mesh.status().filter { $0.sync.state.rawValue != "in_sync" && $0.version != nil }
        var lines = ["physician-master v\(master) published; physician-mart rebuilt on it, payer-mart not yet"]
        for status in stale {
            lines.append(
                "status: \(status.domain) \(status.sync.state.rawValue): \(status.sync.details.joined(separator: "; "))"
            )
        }
        let resolved = try await mesh.run(
            RunRequest(only: ["field-extracts"], force: ["field-extracts"], trigger: "demo"))
        current.record(resolved)
        for outcome in resolved.outcomes.values.sorted(by: { $0.domain < $1.domain })
        where outcome.reason.contains("sync check") {
            lines.append("sync check: \(outcome.domain) \(outcome.reason) → v\(outcome.version ?? 0)")
        }
        let after = try mesh.status().filter {
            ["physician-mart", "payer-mart", "field-extracts"].contains($0.domain.rawValue)
        }
        lines.append(
            "verdict: "
                + after.map { "\($0.domain) \($0.sync.state.rawValue.replacingOccurrences(of: "_", with: " "))" }
                .joined(separator: ", "))
        for line in lines { print("     \(line)") }
        print("")
        current.incidents.append(contentsOf: lines)
        current.syncIncident = true
    }

    /// Ends the current phase at `boundary` (the first day of the next one; nil: at the end of the replay).
    func closePhase(next: String, at boundary: String? = nil) throws {
        let figures = try DemoFigures(mesh: mesh).figures(for: current.name)
        current.figures = figures
        print(
            "\n══ \(current.name) ══ \(current.runs) mesh runs, \(current.rebuilt) domain builds, "
                + "\(current.testsPassed) tests passed, \(current.testsWarned) warned, \(current.testsFailed) failed, "
                + "\(current.syncIncident ? "1 sync violation caught and resolved" : "no sync violation")")
        print(Console.table(["FIGURE", "VALUE"], figures.map { [$0.0, $0.1] }))
        print("")
        current.end = boundary
        phases.append(current)
        current = DemoPhase(name: next)
        current.start = boundary
    }

    func scalar(_ sql: String) throws -> String? {
        guard let value = try? mesh.query(sql).rows.first?.first else { return nil }
        if case .null = value { return nil }
        return value.description
    }
}

/// What happened in one phase of the replay.
struct DemoPhase {
    var name: String
    /// The first day of the phase and the first day after it (`YYYY-MM-DD`; nil: the start or end of the
    /// replay): the launch is its first 26 weeks from the launch date, growth the weeks to 104, then maturity.
    var start: String? = nil
    var end: String? = nil
    var runs = 0
    var rebuilt = 0
    var testsPassed = 0
    var testsWarned = 0
    var testsFailed = 0
    var incidents: [String] = []
    var syncIncident = false
    var figures: [(String, String)] = []

    mutating func record(_ summary: RunSummary) {
        runs += 1
        rebuilt += summary.built.count
        for test in summary.outcomes.values.flatMap(\.tests) {
            switch test.status {
            case .pass: testsPassed += 1
            case .warn: testsWarned += 1
            case .fail, .error: testsFailed += 1
            }
        }
    }
}

enum DemoDates {
    static let formatter: DateFormatter = {
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyy-MM-dd"
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.locale = Locale(identifier: "en_US_POSIX")
        return formatter
    }()

    static func adding(weeks: Int, to date: String) -> String {
        adding(days: 7 * weeks, to: date)
    }

    static func adding(days: Int, to date: String) -> String {
        guard let day = formatter.date(from: date) else { return date }
        return formatter.string(from: day.addingTimeInterval(Double(days) * 86_400))
    }

    /// The Friday ending the week of a date.
    static func weekEnding(_ date: String) -> String {
        guard let day = formatter.date(from: date) else { return date }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let weekday = calendar.component(.weekday, from: day)  // 1 Sunday … 6 Friday
        let ahead = (6 - weekday + 7) % 7
        return formatter.string(from: day.addingTimeInterval(Double(ahead) * 86_400))
    }
}
