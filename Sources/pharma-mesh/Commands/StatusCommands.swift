import ArgumentParser
import Foundation
import MeshRuntime

/// `status`: every domain's version, build time, status, tests, inputs and sync verdict.
struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Every domain: current version, when built, status, tests, inputs' versions, sync verdict.")

    @OptionGroup var mesh: MeshOptions
    @Flag(help: "Print JSON instead of a table.") var json = false

    func run() throws {
        let statuses = try mesh.open(access: .read).status()
        if json {
            print(try JSON.string(statuses))
            return
        }
        let rows = statuses.map { s -> [String] in
            [
                s.domain.rawValue, s.layer, s.version.map { "v\($0)" } ?? "-", Console.date(s.builtAt),
                s.lastStatus?.rawValue ?? "never run",
                "\(s.tests.passed)/\(s.tests.warned)/\(s.tests.failed)",
                s.inputVersions.sorted { $0.key < $1.key }.map { "\($0.key)@v\($0.value)" }.joined(separator: " "),
                s.sync.state.rawValue.replacingOccurrences(of: "_", with: " ")
                    + (s.sync.details.isEmpty ? "" : ": " + s.sync.details.joined(separator: "; ")),
                s.freshness.state == .noLevel
                    ? "-"
                    : s.freshness.state.rawValue.replacingOccurrences(of: "_", with: " ")
                        + (s.freshness.overdue.map { ": \($0)" } ?? "")
                        + (s.freshness.lateUpstream.isEmpty
                            ? "" : "; reads late \(s.freshness.lateUpstream.joined(separator: ", "))"),
                s.openProblems == 0 ? "" : "\(s.openProblems)",
            ]
        }
        print(
            Console.table(
                [
                    "DOMAIN", "LAYER", "VERSION", "BUILT", "LAST RUN", "TESTS P/W/F", "INPUTS", "SYNC", "FRESHNESS",
                    "PROBLEMS",
                ],
                rows))
    }
}

/// `history DOMAIN`: the runs of a domain.
struct HistoryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "history", abstract: "The run history of a domain.")

    @OptionGroup var mesh: MeshOptions
    @Argument(help: "The domain, for example physician-mart.") var domain: DomainID
    @Option(help: "How many runs to show.") var limit = 20
    @Flag(help: "Print JSON instead of a table.") var json = false

    /// One line of a domain's history: its part in a run, and what the run was.
    struct Entry: Encodable {
        var run: DomainRunRecord
        var trigger: String?
        var variation: String?
        var runStatus: RunStatus?
        var runMessage: String?
        /// The git commit of the program that ran.
        var codeCommit: String?

        func encode(to encoder: any Encoder) throws {
            try run.encode(to: encoder)
            var container = encoder.container(keyedBy: Keys.self)
            try container.encode(trigger, forKey: .trigger)
            try container.encode(variation, forKey: .variation)
            try container.encode(runStatus, forKey: .runStatus)
            try container.encode(runMessage, forKey: .runMessage)
            try container.encode(codeCommit, forKey: .codeCommit)
        }
        enum Keys: String, CodingKey {
            case trigger, variation, runStatus = "run_status", runMessage = "run_message", codeCommit = "code_commit"
        }
    }

    func run() throws {
        let mesh = try self.mesh.open(access: .read)
        try mesh.requireDomain(domain)
        let entries = try mesh.store.history(of: domain, limit: limit).map {
            Entry(
                run: $0.domain, trigger: $0.run?.trigger, variation: $0.run?.variation, runStatus: $0.run?.status,
                runMessage: $0.run?.message, codeCommit: $0.run?.codeCommit)
        }
        if json {
            print(try JSON.string(entries))
            return
        }
        guard !entries.isEmpty else {
            print("\(domain) has never run. Start it with `pharma-mesh run --feeds DIR`.")
            return
        }
        let rows = entries.map { e -> [String] in
            let r = e.run
            let parameters = r.parameters.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
                .joined(separator: " ")
            return [
                r.runID.rawValue, Console.date(r.startedAt), e.trigger ?? "-", e.variation ?? "-", r.status.rawValue,
                r.version.map { "v\($0)" } ?? "-", Console.duration(ms: r.durationMS), Console.number(r.rowsOut),
                parameters.isEmpty ? "-" : parameters,
                r.message.map { "\(r.reason): \($0)" } ?? r.reason,
            ]
        }
        print(
            Console.table(
                [
                    "RUN", "STARTED", "TRIGGER", "VARIATION", "STATUS", "VERSION", "DURATION", "ROWS OUT", "PARAMETERS",
                    "WHY / WHAT HAPPENED",
                ], rows))
    }
}

/// `tests DOMAIN`: the test results of a domain's latest build (or of a given run).
struct TestsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tests", abstract: "The test results of a domain.")

    @OptionGroup var mesh: MeshOptions
    @Argument(help: "The domain.") var domain: DomainID
    @Option(
        name: .customLong("run"),
        help: "A run id; default: the run that built the current version, else the latest run that tested it.")
    var runID: String?
    @Flag(help: "Print JSON instead of a table.") var json = false
    @Flag(help: "Every run's results over time, oldest first (with what measured tests measured).") var history = false
    @Option(help: "With --history: only this test.") var test: String?

    func run() throws {
        let mesh = try self.mesh.open(access: .read)
        try mesh.requireDomain(domain)
        if history {
            var results = try mesh.store.testResults(of: domain, limit: 5000).reversed().filter {
                test == nil || $0.test == test
            }
            if results.isEmpty, let test {
                throw ValidationError("\(domain) has no results of a test named \(test)")
            }
            results = Array(results.suffix(200))
            if json {
                print(try JSON.string(results))
                return
            }
            print(
                Console.table(
                    ["RUN", "AT", "TEST", "RESULT", "OFFENDING", "MEASURED"],
                    results.map {
                        [
                            $0.runID.rawValue, Console.date($0.at), $0.test, $0.status.rawValue,
                            Console.number($0.failures),
                            $0.value.map { String(format: "%.4g", $0) } ?? "",
                        ]
                    }))
            return
        }
        let runID: RunID? =
            try runID.map { RunID($0) } ?? mesh.store.currentVersion(of: domain)?.runID
            ?? mesh.store.testResults(of: domain, limit: 1).first?.runID
        guard let runID else {
            print("\(domain) has no test results yet.")
            return
        }
        let results = try mesh.store.testResults(of: domain, run: runID)
        if json {
            print(try JSON.string(results))
            return
        }
        print("tests of \(domain) in run \(runID):")
        let rows = results.map { t -> [String] in
            let sample = t.sample.first.map(OffendingRows.describe) ?? ""
            return [
                t.step.isEmpty ? "(outputs)" : t.step, t.test, t.severity.rawValue, t.status.rawValue,
                Console.number(t.failures), sample,
            ]
        }
        print(Console.table(["STEP", "TEST", "SEVERITY", "RESULT", "OFFENDING", "FIRST OFFENDING ROW"], rows))
    }
}

/// `lineage DOMAIN[.TABLE]`: what a domain's current version was built from, and who reads it.
struct LineageCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lineage",
        abstract: "The lineage of a domain (or one of its tables): exact upstream versions and consumers.")

    @OptionGroup var mesh: MeshOptions
    @Argument(help: "DOMAIN or DOMAIN.TABLE, for example physician-mart.fact_rx_weekly.") var target: String
    @Flag(help: "Print JSON instead of a tree.") var json = false

    func run() throws {
        let mesh = try self.mesh.open(access: .read)
        let parts = target.split(separator: ".", maxSplits: 1).map(String.init)
        let domain = DomainID(parts[0])
        try mesh.requireDomain(domain)
        if parts.count == 2, let definition = mesh.registry[domain],
            !definition.outputs.contains(where: { $0.table == parts[1] })
        {
            throw ValidationError(
                "\(domain) publishes no table \(parts[1]); its tables are: \(definition.outputs.map(\.table).joined(separator: ", "))"
            )
        }
        let consumers = try mesh.consumers(of: domain)
        if parts.count == 2 {
            return try printTableLineage(mesh, domain: domain, table: parts[1], consumers: consumers)
        }
        let lineage = try mesh.lineage(of: domain)
        if json {
            struct Output: Encodable {
                var lineage: Mesh.LineageNode
                var consumers: [[String: String]]
            }
            print(
                try JSON.string(
                    Output(
                        lineage: lineage,
                        consumers: consumers.map {
                            [
                                "domain": $0.domain.rawValue, "version": $0.version.map(String.init) ?? "",
                                "built_from": $0.builtFrom.map(String.init) ?? "",
                            ]
                        })))
            return
        }
        var lines: [String] = []
        func draw(_ node: Mesh.LineageNode, indent: String, last: Bool, root: Bool) {
            let label =
                node.domain.rawValue.hasPrefix("source:")
                ? "\(node.domain) \(node.tables.first.map { "(state \($0.prefix(12)))" } ?? "")"
                : "\(node.domain)@\(node.version.map { "v\($0)" } ?? "never built")"
            lines.append(root ? label : indent + (last ? "└─ " : "├─ ") + label)
            let childIndent = root ? "" : indent + (last ? "   " : "│  ")
            for (index, child) in node.upstream.enumerated() {
                draw(child, indent: childIndent, last: index == node.upstream.count - 1, root: false)
            }
        }
        print(parts.count == 2 ? "\(target) is published by \(domain); built from:" : "\(domain) built from:")
        draw(lineage, indent: "", last: true, root: true)
        print(lines.joined(separator: "\n"))
        if !consumers.isEmpty {
            print("read by:")
            for consumer in consumers {
                let note =
                    consumer.builtFrom.map { $0 == lineage.version ? "" : " (built from v\($0): stale)" }
                    ?? " (never built)"
                print("  \(consumer.domain)@\(consumer.version.map { "v\($0)" } ?? "-")\(note)")
            }
        }
    }
}

extension LineageCommand {
    /// A table's lineage as a tree in which every table appears once: a table met again is marked as shown.
    func printTableLineage(
        _ mesh: Mesh, domain: DomainID, table: String, consumers: [(domain: DomainID, version: Int?, builtFrom: Int?)]
    ) throws {
        let lineage = try mesh.lineage(of: domain, table: table)
        if json {
            print(try JSON.string(lineage))
            return
        }
        let nodes = Dictionary(uniqueKeysWithValues: lineage.nodes.map { ($0.id, $0) })
        func label(_ id: String) -> String {
            guard let node = nodes[id], !id.hasPrefix("source:") else { return id }
            return "\(id)@\(node.version.map { "v\($0)" } ?? "never built")"
                + (node.table == nil ? " (whole domain)" : "")
        }
        var shown: Set<String> = []
        var lines: [String] = []
        func draw(_ id: String, indent: String, last: Bool, root: Bool) {
            let again = !shown.insert(id).inserted
            let text = label(id) + (again && !lineage.upstream(of: id).isEmpty ? " (shown above)" : "")
            lines.append(root ? text : indent + (last ? "└─ " : "├─ ") + text)
            guard !again else { return }
            let upstream = lineage.upstream(of: id)
            let childIndent = root ? "" : indent + (last ? "   " : "│  ")
            for (index, child) in upstream.enumerated() {
                draw(child, indent: childIndent, last: index == upstream.count - 1, root: false)
            }
        }
        draw(lineage.root, indent: "", last: true, root: true)
        print("\(domain).\(table) is built from (each table once, \(lineage.nodes.count - 1) upstream):")
        print(lines.joined(separator: "\n"))
        if lineage.nodes.contains(where: { $0.table == nil && !$0.id.hasPrefix("source:") }) {
            print("(whole domain: read by a step that does not name the tables it reads)")
        }
        if !consumers.isEmpty {
            print(
                "its domain is read by: "
                    + consumers.map { "\($0.domain)@\($0.version.map { "v\($0)" } ?? "-")" }.joined(separator: ", "))
        }
    }
}

extension Mesh {
    /// Throws a usage error naming close domains when the domain is not registered.
    func requireDomain(_ id: DomainID) throws {
        guard registry[id] == nil else { return }
        let names = registry.ids.map(\.rawValue)
        let close = names.filter { $0.contains(id.rawValue) || id.rawValue.contains($0) }
        throw ValidationError(
            "unknown domain '\(id)'. "
                + (close.isEmpty
                    ? "The domains are: \(names.joined(separator: ", "))"
                    : "Did you mean \(close.joined(separator: ", "))?"))
    }
}

enum JSON {
    static func string<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}
