import Foundation
import MeshRuntime

/// The pages of the JSON routes: what a browser sees where a program gets JSON. Each shows the same data as
/// the route's JSON (which `?format=json` gives), with links to the domain and run pages.
extension Page {
    /// The links from a domain's page to its sub-routes, and to the JSON of the page at hand.
    static func subNav(_ domain: DomainID, current: String) -> String {
        let base = "/domains/\(domain)"
        let parts = ["runs", "tests", "lineage", "versions", "catalog"].map { part in
            part == current ? "<b>\(part)</b>" : "<a href=\"\(base)/\(part)\">\(part)</a>"
        }
        return "<p class=\"w\">"
            + (current.isEmpty ? "" : "<a href=\"\(base)\">\(escape(domain.rawValue))</a> · ")
            + parts.joined(separator: " · ") + (current.isEmpty ? "" : " · <a href=\"?format=json\">JSON</a>")
            + "</p>"
    }

    static func domainPage(_ domain: DomainID, _ part: String, _ body: String) -> String {
        document(
            title: "\(domain): \(part)",
            body: "<h1>\(escape(domain.rawValue)): \(escape(part))</h1>"
                + subNav(domain, current: part) + body)
    }

    /// `GET /domains/{domain}/runs`.
    static func domainRuns(_ domain: DomainID, _ runs: [DomainRunRecord]) -> String {
        domainPage(
            domain, "runs",
            runs.isEmpty
                ? "<p>No runs yet.</p>"
                : table(
                    ["run", "started", "status", "why", "version", "duration", "rows in", "rows out", "message"],
                    runs.map { r in
                        [
                            "<a href=\"/domains/\(domain)/runs/\(r.runID)\">\(r.runID)</a>", date(r.startedAt),
                            badge(r.status.rawValue), escape(r.reason), r.version.map { "v\($0)" } ?? "–",
                            duration(r.durationMS), count(r.rowsIn), count(r.rowsOut), escape(r.message ?? ""),
                        ]
                    }))
    }

    /// `GET /domains/{domain}/runs/{run}`.
    static func domainRun(_ detail: DomainRunDetail) -> String {
        let r = detail.run
        var body =
            "<p>\(badge(r.status.rawValue)) in mesh run <a href=\"/runs/\(r.runID)\">\(r.runID)</a>: \(escape(r.reason)); started \(date(r.startedAt)), \(duration(r.durationMS)); version \(r.version.map { "v\($0)" } ?? "–"); \(count(r.rowsIn)) rows in, \(count(r.rowsOut)) rows out\(r.message.map { "; \(escape($0))" } ?? "")</p>"
        body += "<h2>Steps</h2>"
        body += table(
            ["step", "kind", "status", "started", "duration", "rows in", "rows out", "message"],
            detail.steps.map { s in
                [
                    escape(s.step.rawValue), escape(s.kind), badge(s.status.rawValue), date(s.startedAt),
                    duration(s.durationMS), count(s.rowsIn), count(s.rowsOut), escape(s.message ?? ""),
                ]
            })
        body += "<h2>Tests</h2>" + testTable(detail.tests, links: .server)
        body += "<h2>Log</h2>"
        body += table(
            ["at", "step", "level", "message"],
            detail.logs.map { [date($0.at), escape($0.step?.rawValue ?? ""), escape($0.level), escape($0.message)] })
        return domainPage(r.domain, "run \(r.runID)", body)
    }

    /// `GET /domains/{domain}/tests`.
    static func tests(_ domain: DomainID, _ results: [TestResultRecord]) -> String {
        domainPage(
            domain, "tests",
            results.isEmpty
                ? "<p>No test results yet.</p>"
                : "<p>\(results.count) results, newest first; \(results.filter { $0.status != .pass }.count) warned or failed, with their offending rows.</p>"
                    + testTable(results, links: .server, withRun: true))
    }

    /// `GET /domains/{domain}/lineage`: the graph, each published table's lineage, the domains it was built
    /// from (each once) and those that read it.
    static func lineage(
        _ domain: DomainID, _ answer: LineageAnswer, tables: [TableLineage], svg: String
    ) -> String {
        var body = "<div class=\"graph\">\(svg)</div><h2>Built from</h2>"
        var shown: Set<String> = []
        func tree(_ node: Mesh.LineageNode) -> String {
            let name = node.domain.rawValue
            let source = name.hasPrefix("source:")
            let label =
                source
                ? escape(name)
                    + (node.tables.first.map { " <span class=\"w\">state \(escape(String($0.prefix(12))))</span>" }
                        ?? "")
                : "<a href=\"/domains/\(escape(name))\">\(escape(name))</a> \(node.version.map { "v\($0)" } ?? "never built")"
            guard shown.insert("\(name)@\(node.version ?? -1)").inserted || node.upstream.isEmpty else {
                return "<li>\(label) <span class=\"w\">(shown above)</span></li>"
            }
            return "<li>\(label)"
                + (node.upstream.isEmpty ? "" : "<ul>" + node.upstream.map(tree).joined() + "</ul>") + "</li>"
        }
        body += "<ul>\(tree(answer.lineage))</ul>"
        body += "<h2>Tables</h2>" + tables.map { tableLineage($0, links: .server) }.joined()
        body += "<h2>Read by</h2>"
        body +=
            answer.consumers.isEmpty
            ? "<p>No domain reads it.</p>"
            : table(
                ["domain", "version", "built from"],
                answer.consumers.map { c in
                    [
                        "<a href=\"/domains/\(c.domain)\">\(escape(c.domain.rawValue))</a>",
                        c.version.map { "v\($0)" } ?? "never built",
                        c.builtFrom.map { $0 == answer.lineage.version ? "v\($0)" : "v\($0) (stale)" } ?? "–",
                    ]
                })
        return domainPage(domain, "lineage", body)
    }

    /// `GET /domains/{domain}/versions`.
    static func versions(_ domain: DomainID, _ versions: [VersionRecord]) -> String {
        domainPage(
            domain, "versions",
            versions.isEmpty
                ? "<p>Never published.</p>"
                : table(
                    [
                        "version", "published", "run", "status", "variation", "code", "rows", "inputs", "fingerprint",
                        "file",
                    ],
                    versions.map { v in
                        [
                            "v\(v.version)", date(v.publishedAt), "<a href=\"/runs/\(v.runID)\">\(v.runID)</a>",
                            badge(v.status.rawValue), escape(v.variation), "<code>\(escape(v.codeVersion))</code>",
                            v.rowCounts.sorted { $0.key < $1.key }.map { "\(escape($0.key)) \(count($0.value))" }
                                .joined(separator: "<br>"),
                            v.inputVersions.sorted { $0.key < $1.key }.map {
                                "<a href=\"/domains/\(escape($0.key))\">\(escape($0.key))</a> v\($0.value)"
                            }.joined(separator: "<br>"),
                            "<code>\(escape(String(v.fingerprint.prefix(16))))</code>",
                            v.retained ? escape(v.path) : "<span class=\"w\">removed by retention</span>",
                        ]
                    }))
    }

    /// `GET /domains/{domain}/catalog`.
    static func catalog(_ catalog: Catalog) -> String {
        var body =
            "<p>version \(catalog.version.map { "v\($0)" } ?? "–")\(catalog.fingerprint.map { ", fingerprint <code>\(escape(String($0.prefix(16))))</code>" } ?? "")</p>"
        for t in catalog.tables {
            let published = Set(
                (catalog.publishedSchema[t.table] ?? []).compactMap { $0.split(separator: " ").first.map(String.init) })
            body +=
                "<h2>\(escape(t.table)) <span class=\"w\">\(t.rows.map { "\(count($0)) rows" } ?? "not built") · grain \(escape(t.grain.joined(separator: ", ")))</span></h2><p>\(escape(t.description))</p>"
            body += table(
                ["column", "type", "meaning", "in the published file"],
                t.columns.map {
                    [
                        escape($0.name), escape($0.type), escape($0.description),
                        catalog.version == nil ? "–" : published.contains($0.name) ? "yes" : "no",
                    ]
                })
        }
        return domainPage(catalog.domain, "catalog", body)
    }

    /// `GET /runs`.
    static func runs(_ runs: [RunDetail]) -> String {
        document(
            title: "runs",
            body: "<h1>Runs</h1><p class=\"w\">newest first · <a href=\"?format=json\">JSON</a></p>"
                + table(
                    ["run", "started", "finished", "status", "trigger", "variation", "domains"],
                    runs.map { detail in
                        let r = detail.run
                        return [
                            "<a href=\"/runs/\(r.runID)\">\(r.runID)</a>", date(r.startedAt), date(r.finishedAt),
                            badge(r.status.rawValue), escape(r.trigger), escape(r.variation),
                            detail.domains.map {
                                "<a href=\"/domains/\($0.domain)\">\(escape($0.domain.rawValue))</a> \(badge($0.status.rawValue))"
                            }.joined(separator: " "),
                        ]
                    }))
    }

    /// `GET /query`: the result as a table.
    static func query(sql: String, columns: [String], rows: [[QueryValue]], truncatedBy: String?) -> String {
        document(
            title: "query",
            body:
                "<h1>Query</h1><pre>\(escape(sql))</pre><p>\(count(rows.count)) rows\(truncatedBy.map { " (cut by the \(escape($0)) limit)" } ?? "") · <a href=\"?sql=\(escape(sql.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""))&amp;format=json\">JSON</a></p>"
                + table(columns, rows.map { row in row.map { escape($0.description) } }))
    }

    /// Any other JSON answer, laid out as tables: objects as two columns, arrays of objects as one row each.
    /// `domains` are the ids that become links to their pages.
    static func generic(_ value: Any, title: String, domains: Set<String>) -> String {
        document(
            title: title,
            body: "<h1>\(escape(title))</h1><p class=\"w\"><a href=\"?format=json\">JSON</a></p>"
                + render(value, key: nil, domains: domains))
    }

    static func render(_ value: Any, key: String?, domains: Set<String>) -> String {
        switch value {
        case let array as [Any]:
            if array.isEmpty { return "<span class=\"w\">none</span>" }
            if let objects = array as? [[String: Any]], objects.count == array.count {
                var keys: [String] = []
                for object in objects { for k in object.keys.sorted() where !keys.contains(k) { keys.append(k) } }
                return table(
                    keys,
                    objects.map { object in
                        keys.map { k in object[k].map { render($0, key: k, domains: domains) } ?? "" }
                    })
            }
            return array.map { render($0, key: key, domains: domains) }.joined(separator: ", ")
        case let object as [String: Any]:
            if object.isEmpty { return "<span class=\"w\">none</span>" }
            return table(
                ["", ""],
                object.keys.sorted().map { k in ["<b>\(escape(k))</b>", render(object[k]!, key: k, domains: domains)] })
        case let text as String:
            let name = key ?? ""
            if domains.contains(text) && (name == "domain" || name == "name" || name.hasSuffix("domains") || name == "")
            {
                return "<a href=\"/domains/\(escape(text))\">\(escape(text))</a>"
            }
            if ["run_id", "built_by", "fixed_by_run", "run"].contains(name),
                text.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" }), !text.isEmpty
            {
                return "<a href=\"/runs/\(escape(text))\">\(escape(text))</a>"
            }
            if name.hasSuffix("url"), MeshHTTPServer.sameOriginPath(text) != nil {
                return "<a href=\"\(escape(text))\">\(escape(text))</a>"
            }
            return text.contains("\n") ? "<pre>\(escape(text))</pre>" : escape(text)
        case is NSNull:
            return "–"
        default:
            return escape("\(value)")
        }
    }
}
