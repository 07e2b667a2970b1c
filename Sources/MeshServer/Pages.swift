import Foundation
import MeshRuntime

/// Where a page's links go: the server's URLs, or the files of a static report (the demo's).
public struct PageLinks: Sendable {
    /// A domain's page.
    public var domain: @Sendable (DomainID) -> String
    /// A run's page; nil leaves run ids as plain text.
    public var run: (@Sendable (RunID) -> String)?
    /// True on the server: the navigation, the JSON and sub-route links, the query URL.
    public var server: Bool

    public init(domain: @escaping @Sendable (DomainID) -> String, run: (@Sendable (RunID) -> String)?, server: Bool) {
        self.domain = domain
        self.run = run
        self.server = server
    }

    /// The server's own URLs.
    public static let server = PageLinks(domain: { "/domains/\($0)" }, run: { "/runs/\($0)" }, server: true)
}

/// Pages for people: plain HTML with inline SVG, no scripts and nothing fetched from elsewhere.
enum Page {
    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    static func document(title: String, body: String, nav: Bool = true) -> String {
        """
        <!doctype html><html lang="en"><head><meta charset="utf-8"><title>\(escape(title))</title>
        <meta name="viewport" content="width=device-width, initial-scale=1"><style>
        body{font-family:sans-serif;margin:1.5em 2em;color:#222;max-width:1400px}
        nav{margin-bottom:1em} nav a{margin-right:1.2em}
        table{border-collapse:collapse;margin:.6em 0 1.2em} th,td{border:1px solid #ccc;padding:3px 9px;text-align:left;vertical-align:top}
        th{background:#f3f3f3;font-weight:normal} code,pre{background:#f6f6f6;padding:1px 4px}
        pre{padding:8px;overflow:auto;max-height:24em;white-space:pre-wrap;overflow-wrap:anywhere} .error{color:#b00020}
        td,code{overflow-wrap:anywhere} table{max-width:100%} table.offending{margin:.3em 0;font-size:90%}
        #graph,.graph{overflow-x:auto} details{margin:.3em 0}
        .status{padding:1px 7px;border-radius:8px;font-size:90%} h2{margin-top:1.4em;border-bottom:1px solid #ddd}
        .success,.up_to_date,.in_sync,.pass{background:#c9f0d8} .warn,.stale{background:#fde3c8} .fail,.error,.interrupted{background:#f8c6c6}
        .running{background:#cdeefb} .skipped,.never_built{background:#e8e8e8} .w{color:#555;font-size:90%}
        </style></head><body>\(nav ? "<nav><a href=\"/\">Mesh</a><a href=\"/runs\">Runs</a><a href=\"/openapi.json\">API</a></nav>" : "")
        \(body)
        </body></html>
        """
    }

    static func badge(_ value: String?) -> String {
        let value = value ?? "never run"
        return
            "<span class=\"status \(escape(value.replacingOccurrences(of: " ", with: "_")))\">\(escape(value.replacingOccurrences(of: "_", with: " ")))</span>"
    }

    static func date(_ date: Date?) -> String {
        guard let date else { return "–" }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withFullDate, .withTime, .withColonSeparatorInTime, .withSpaceBetweenDateAndTime]
        return formatter.string(from: date)
    }

    static func table(_ header: [String], _ rows: [[String]]) -> String {
        "<table><tr>" + header.map { "<th>\(escape($0))</th>" }.joined() + "</tr>"
            + rows.map { "<tr>" + $0.map { "<td>\($0)</td>" }.joined() + "</tr>" }.joined() + "</table>"
    }

    /// A span of seconds in days, hours and minutes.
    static func span(_ seconds: Int) -> String {
        let d = seconds / 86400
        let h = seconds % 86400 / 3600
        let m = seconds % 3600 / 60
        return d > 0 ? "\(d) d \(h) h" : h > 0 ? "\(h) h \(m) min" : "\(m) min"
    }

    static func duration(_ ms: Int?) -> String {
        guard let ms else { return "–" }
        return ms < 1000 ? "\(ms) ms" : String(format: "%.1f s", Double(ms) / 1000)
    }

    /// A whole number with thousands separators: `1,234,567`.
    static func count(_ n: Int) -> String {
        let digits = String(n.magnitude)
        var out = ""
        for (index, digit) in digits.enumerated() {
            if index > 0 && (digits.count - index) % 3 == 0 { out.append(",") }
            out.append(digit)
        }
        return (n < 0 ? "-" : "") + out
    }

    /// A run id as a link to its page (when the links have one).
    static func runLink(_ run: RunID, _ links: PageLinks) -> String {
        links.run.map { "<a href=\"\(escape($0(run)))\">\(escape(run.rawValue))</a>" } ?? escape(run.rawValue)
    }

    static func domainLink(_ domain: DomainID, _ links: PageLinks) -> String {
        "<a href=\"\(escape(links.domain(domain)))\">\(escape(domain.rawValue))</a>"
    }

    /// A failed or warned test's offending rows (the sample the test kept) as a small table, columns by name.
    static func offendingRows(_ result: TestResultRecord) -> String {
        let count =
            result.failures == 1 ? "1 offending row" : "\(Page.count(result.failures)) offending rows"
        guard !result.sample.isEmpty else { return result.status == .pass ? "0" : count }
        var columns: [String] = []
        for row in result.sample { for key in row.keys.sorted() where !columns.contains(key) { columns.append(key) } }
        let shown =
            result.failures > result.sample.count ? " (the first \(result.sample.count) shown)" : ""
        return "\(count)\(shown)<table class=\"offending\"><tr>"
            + columns.map { "<th>\(escape($0))</th>" }.joined() + "</tr>"
            + result.sample.map { row in
                "<tr>" + columns.map { "<td>\(escape(row[$0] ?? ""))</td>" }.joined() + "</tr>"
            }.joined() + "</table>"
    }

    /// Test results, with the offending rows of those that warned or failed.
    static func testTable(_ results: [TestResultRecord], links: PageLinks, withRun: Bool = false) -> String {
        table(
            (withRun ? ["run", "at"] : []) + ["step", "test", "severity", "result", "offending rows", "message"],
            results.map {
                (withRun ? [runLink($0.runID, links), date($0.at)] : [])
                    + [
                        escape($0.step.isEmpty ? "(outputs)" : $0.step), escape($0.test), $0.severity.rawValue,
                        badge($0.status.rawValue), offendingRows($0), escape($0.message),
                    ]
            })
    }

    /// A published table's lineage as the command line's `lineage DOMAIN.TABLE` has it: every table once, with
    /// what it reads.
    static func tableLineage(_ lineage: TableLineage, links: PageLinks) -> String {
        let rows = lineage.nodes.map { node -> [String] in
            let name =
                node.id.hasPrefix("source:")
                ? escape(node.id)
                : "<a href=\"\(escape(links.domain(node.domain)))\">\(escape(node.id))</a>"
                    + (node.table == nil ? " <span class=\"w\">(whole domain)</span>" : "")
                    + (node.wholeDomain ? " <span class=\"w\">(reads all its domain's inputs)</span>" : "")
            let reads = lineage.upstream(of: node.id)
            return [
                name, node.id.hasPrefix("source:") ? "source" : node.version.map { "v\($0)" } ?? "never built",
                reads.isEmpty ? "–" : reads.map(escape).joined(separator: ", "),
            ]
        }
        return
            "<details class=\"table-lineage\" data-table=\"\(escape(lineage.root))\"><summary><code>\(escape(lineage.root))</code> is built from \(lineage.nodes.count - 1) tables and sources (each once, \(lineage.edges.count) edges)</summary>"
            + table(["table", "version", "reads"], rows) + "</details>"
    }

    /// The mesh: the domain graph coloured by status and sync, and a line per domain.
    static func mesh(_ domains: [DomainSummary], mesh: Mesh, title: String, statuses: [DomainStatus]) throws -> String {
        let inSync = domains.filter { $0.sync.state == .inSync }.count
        let rows = domains.map { d -> [String] in
            [
                "<a href=\"\(d.url)\">\(escape(d.domain.rawValue))</a>", escape(d.layer),
                d.version.map { "v\($0)" } ?? "–", date(d.builtAt), badge(d.lastStatus?.rawValue),
                "\(d.tests.passed) / \(d.tests.warned) / \(d.tests.failed)",
                badge(d.sync.state.rawValue)
                    + (d.sync.details.isEmpty
                        ? "" : " <span class=\"w\">\(escape(d.sync.details.joined(separator: "; ")))</span>"),
                freshness(d.freshness),
                d.openProblems == 0 ? "" : "<a href=\"\(d.url)#problems\">\(d.openProblems) open</a>",
                escape(d.owner.team),
            ]
        }
        let runs = try mesh.store.runs(limit: 8).map { run -> [String] in
            [
                "<a href=\"/runs/\(run.runID)\">\(run.runID)</a>", date(run.startedAt), badge(run.status.rawValue),
                escape(run.trigger),
            ]
        }
        return document(
            title: "\(title): the mesh",
            body: "<h1>The mesh</h1><p id=\"summary\">\(domains.count) domains, \(inSync) in sync.</p>"
                + "<p class=\"w\">\(escape(MeshGraph.legend))</p><div id=\"graph\">\(try MeshGraph.svg(mesh: mesh, statuses: statuses))</div>"
                + "<h2>Domains</h2>"
                + table(
                    [
                        "domain", "layer", "version", "built", "last run", "tests P / W / F", "sync", "freshness",
                        "problems", "owner",
                    ],
                    rows)
                + "<h2>Recent runs</h2>" + table(["run", "started", "status", "trigger"], runs)
                + "<p class=\"w\"><a href=\"/runs\">every run</a> · JSON: <a href=\"/domains?format=json\">/domains</a></p>"
        )
    }

    /// A freshness verdict: its badge, since when it is overdue, and the late inputs it reads.
    static func freshness(_ f: FreshnessVerdict) -> String {
        badge(f.state.rawValue) + (f.overdue.map { " <span class=\"w\">\(escape($0))</span>" } ?? "")
            + (f.lateUpstream.isEmpty
                ? "" : " <span class=\"w\">reads late \(escape(f.lateUpstream.joined(separator: ", ")))</span>")
    }

    /// A domain: what, where, when, with what, how. `links` says where its links go (the server, or the files
    /// of a static report, which has no run pages and no API).
    static func domain(_ d: DomainDetail, mesh: Mesh, statuses: [DomainStatus], links: PageLinks = .server) throws
        -> String
    {
        var body = "<h1>\(escape(d.domain.rawValue))</h1>"
        body +=
            "<p>\(escape(d.what.description))</p><p class=\"w\">layer \(escape(d.layer)) · owner \(escape(d.owner.team)) (\(escape(d.owner.contact)))</p>"
        if links.server { body += subNav(d.domain, current: "") }
        body += "<h2 id=\"what\">What</h2>"
        for t in d.what.tables {
            body +=
                "<h3>\(escape(t.table)) <span class=\"w\">\(t.rows.map { "\(count($0)) rows" } ?? "not built") · grain \(escape(t.grain.joined(separator: ", ")))</span></h3><p>\(escape(t.description))</p>"
            body +=
                "<details><summary>\(t.columns.count) columns</summary>"
                + table(
                    ["column", "type", "meaning"],
                    t.columns.map { [escape($0.name), escape($0.type), escape($0.description)] })
                + "</details>"
        }
        body += "<h2 id=\"where\">Where</h2>"
        body += table(
            ["", ""],
            [
                ["engine", escape(d.where.engine)], ["schema", "<code>\(escape(d.where.schema))</code>"],
                ["file (in the mesh home)", escape(d.where.file ?? "not published yet")],
                [
                    "SQL over HTTP",
                    links.server
                        ? "<a href=\"\(escape(d.where.queryURL))\">\(escape(d.where.queryURL))</a>"
                        : "<code>\(escape(d.where.queryURL))</code>",
                ],
                ["command line", "<code>\(escape(d.where.commandLine))</code>"],
            ])
        body += "<h2 id=\"when\">When</h2>"
        body +=
            "<p>version \(d.when.version.map { "v\($0)" } ?? "–"), built \(date(d.when.builtAt)) by run \(d.when.builtBy.map { runLink($0, links) } ?? "–"); last run \(badge(d.when.lastStatus?.rawValue))\(d.when.lastMessage.map { " <span class=\"w\">\(escape($0))</span>" } ?? ""); tests <span id=\"tests\">\(d.when.tests.passed) passed, \(d.when.tests.warned) warned, \(d.when.tests.failed) failed</span>.</p>"
        if let f = d.when.freshness {
            body +=
                "<p id=\"freshness\">freshness: \(badge(f.state.rawValue))"
                + (f.expected.map { " expected \(escape($0))" } ?? " (no service level declared)")
                + (f.overdue.map { "; \(escape($0))" } ?? "")
                + (f.lateUpstream.isEmpty
                    ? "" : "; reads late inputs: \(escape(f.lateUpstream.joined(separator: ", ")))")
                + "</p>"
        }
        body += table(
            ["run", "started", "status", "why", "version", "duration", "rows out"],
            d.when.recentRuns.map { r in
                [
                    runLink(r.runID, links), date(r.startedAt), badge(r.status.rawValue),
                    escape(r.message.map { "\(r.reason): \($0)" } ?? r.reason), r.version.map { "v\($0)" } ?? "–",
                    duration(r.durationMS), count(r.rowsOut),
                ]
            })
        if let run = d.when.builtBy {
            let results = try mesh.store.testResults(of: d.domain, run: run)
            body += "<h3 id=\"test-results\">Tests of the current version</h3>"
            body += testTable(results, links: links)
        }
        body += "<h2 id=\"problems\">Problems reported</h2>"
        body +=
            d.when.openProblems.isEmpty
            ? "<p>None open. Report one with <code>POST \(d.url)/problems</code> or <code>pharma-mesh problem report \(escape(d.domain.rawValue)) --title …</code>.</p>"
            : table(
                ["#", "title", "reported by", "reported", "status"],
                d.when.openProblems.map {
                    ["\($0.id ?? 0)", escape($0.title), escape($0.reportedBy), date($0.reportedAt), badge($0.status)]
                })
        body +=
            "<h2 id=\"with-what\">With what</h2><p>sync: \(badge(d.withWhat.sync.state.rawValue)) \(escape(d.withWhat.sync.details.joined(separator: "; ")))</p>"
        body += table(
            ["input", "version read", "version now"],
            d.withWhat.inputs.map {
                [
                    domainLink($0.domain, links), $0.version.map { "v\($0)" } ?? "–",
                    $0.currentVersion.map { "v\($0)" } ?? "–",
                ]
            }
                + d.withWhat.sources.sorted { $0.key < $1.key }.map {
                    ["source \(escape($0.key))", "<code>\(escape(String($0.value.prefix(16))))</code>", ""]
                })
        let link = links.domain
        body +=
            "<div id=\"lineage\" class=\"graph\">\(try MeshGraph.lineageSVG(of: d.domain, mesh: mesh, statuses: statuses, link: { link($0) }))</div>"
        body += "<h3 id=\"table-lineage\">Table lineage</h3>"
        for output in mesh.registry[d.domain]?.outputs ?? [] {
            body += tableLineage(try mesh.lineage(of: d.domain, table: output.table), links: links)
        }
        body +=
            "<h2 id=\"how\">How</h2><p>code version <code>\(escape(d.how.codeVersion))</code>\(d.how.codeCommit.map { ", commit <code>\(escape(String($0.prefix(12))))</code>" } ?? ""), variation \(escape(d.how.variation ?? "–")); parameters: \(escape(d.how.parameters.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")))</p>"
        body += table(
            ["step", "kind", "after", "tests", "definition"],
            d.how.recipe.map {
                [
                    escape($0.step), escape($0.kind), escape($0.after.joined(separator: ", ")),
                    escape($0.tests.joined(separator: "; ")),
                    "<pre>\(escape(String($0.definition.prefix(4000))))</pre>",
                ]
            })
        body += "<p>Tests on the outputs: \(escape(d.how.outputTests.joined(separator: "; ")))</p>"
        if links.server {
            body +=
                "<p class=\"w\">JSON: <a href=\"\(d.url)?format=json\">\(d.url)</a> · <a href=\"\(d.url)/runs\">runs</a> · <a href=\"\(d.url)/tests\">tests</a> · <a href=\"\(d.url)/lineage\">lineage</a> · <a href=\"\(d.url)/versions\">versions</a> · <a href=\"\(d.url)/catalog\">catalog</a></p>"
        }
        return document(title: d.domain.rawValue, body: body, nav: links.server)
    }

    /// A run: what it did, domain by domain.
    static func run(_ detail: RunDetail, mesh: Mesh) throws -> String {
        let run = detail.run
        var body =
            "<h1>Run \(run.runID)</h1><p>\(badge(run.status.rawValue)) started \(date(run.startedAt)), finished \(date(run.finishedAt)); trigger \(escape(run.trigger)); variation \(escape(run.variation))\(run.message.map { "; \(escape($0))" } ?? "")</p>"
        body += table(
            ["domain", "status", "why", "version", "duration", "rows in", "rows out", "message"],
            detail.domains.map { r in
                [
                    "<a href=\"/domains/\(r.domain)\">\(r.domain)</a>", badge(r.status.rawValue), escape(r.reason),
                    r.version.map { "v\($0)" } ?? "–", duration(r.durationMS), count(r.rowsIn), count(r.rowsOut),
                    escape(r.message ?? ""),
                ]
            })
        let problems = try detail.domains.flatMap { r in
            try mesh.store.testResults(of: r.domain, run: run.runID).filter { $0.status != .pass }
        }
        if !problems.isEmpty {
            body += "<h2>Tests that warned or failed</h2>"
            body += table(
                ["domain", "step", "test", "result", "offending rows", "message"],
                problems.map {
                    [
                        escape($0.domain.rawValue), escape($0.step), escape($0.test), badge($0.status.rawValue),
                        offendingRows($0), escape($0.message),
                    ]
                })
        }
        return document(title: "run \(run.runID)", body: body)
    }
}

/// A mesh's pages as static files (the demo's report): the same domain page the server shows, with links to
/// the other domains' files instead of the server's URLs, and no run pages or API links.
public enum StaticPages {
    /// The page of domain `id`; `file(other)` is the relative link to another domain's page.
    public static func domain(
        _ id: DomainID, mesh: Mesh, statuses: [DomainStatus], file: @escaping @Sendable (DomainID) -> String
    ) throws -> String {
        guard let domain = mesh.registry[id] else { throw MeshError(.unknownDomain, "unknown domain '\(id)'") }
        let detail = try DomainDetail.make(domain, mesh: mesh, statuses: statuses)
        return try Page.domain(
            detail, mesh: mesh, statuses: statuses, links: PageLinks(domain: file, run: nil, server: false))
    }
}
