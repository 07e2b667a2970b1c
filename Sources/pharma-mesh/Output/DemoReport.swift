import Foundation
import MeshRuntime
import MeshServer

/// The brand figures of each phase, read from the marts and extracts with plain SQL.
struct DemoFigures {
    let mesh: Mesh

    /// The first value of the first row, formatted for people (`1,234,567`, `12.5`); text as it is.
    func value(_ sql: String) throws -> String {
        let rows = try mesh.query(sql).rows
        guard let value = rows.first?.first else { return "–" }
        switch value {
        case .null: return "–"
        case .integer(let n): return DemoFormat.count(Int(n))
        case .real(let x): return DemoFormat.number(x)
        default: return value.description
        }
    }

    /// The same, as US dollars: `$36,021,161`.
    func money(_ sql: String) throws -> String {
        let rows = try mesh.query(sql).rows
        switch rows.first?.first {
        case .integer(let n)?: return DemoFormat.money(Double(n))
        case .real(let x)?: return DemoFormat.money(x)
        default: return "–"
        }
    }

    func percent(_ sql: String) throws -> String {
        let rows = try mesh.query(sql).rows
        guard let value = rows.first?.first, case .real(let double) = value else { return "–" }
        return String(format: "%.1f%%", double * 100)
    }

    func figures(for phase: String) throws -> [(String, String)] {
        switch phase {
        case "Launch":
            return [
                ("weeks", try value("SELECT COUNT(*) FROM brand_extracts.launch_tracker")),
                ("HCP emails delivered", try value("SELECT SUM(hcp_delivered) FROM brand_extracts.launch_tracker")),
                (
                    "HCP open rate / click rate",
                    try percent(Self.emailRate("open", "HCP")) + " / " + percent(Self.emailRate("click", "HCP"))
                ),
                ("consumer open rate", try percent(Self.emailRate("open", "CONSUMER"))),
                (
                    "web sessions / copay sign-ups",
                    try value("SELECT SUM(web_sessions) FROM brand_extracts.launch_tracker") + " / "
                        + value("SELECT SUM(copay_signups) FROM brand_extracts.launch_tracker")
                ),
                ("media spend", try money("SELECT SUM(media_spend_usd) FROM brand_extracts.launch_tracker")),
                (
                    "first week with Zentavia NRx",
                    try value(
                        "SELECT MIN(week_ending) FROM brand_extracts.launch_tracker WHERE own_nrx > 0")
                ),
                (
                    "Zentavia NRx / TRx in the launch",
                    try value("SELECT SUM(own_nrx) FROM brand_extracts.launch_tracker") + " / "
                        + value("SELECT SUM(own_trx) FROM brand_extracts.launch_tracker")
                ),
                (
                    "share in the last launch week",
                    try percent(
                        "SELECT share FROM brand_extracts.launch_tracker ORDER BY week_ending DESC LIMIT 1")
                ),
            ]
        case "Growth":
            return [
                ("weeks", try value("SELECT COUNT(*) FROM brand_extracts.growth_tracker")),
                ("share, first → last 4 weeks", try percent(Self.share("ASC")) + " → " + percent(Self.share("DESC"))),
                (
                    "Zentavia TRx per week, first → last 4 weeks",
                    try value(
                        "SELECT AVG(own_trx) FROM (SELECT own_trx FROM brand_extracts.growth_tracker ORDER BY week_ending LIMIT 4)"
                    ) + " → "
                        + value(
                            "SELECT AVG(own_trx) FROM (SELECT own_trx FROM brand_extracts.growth_tracker ORDER BY week_ending DESC LIMIT 4)"
                        )
                ),
                (
                    "TRx / NRx (refills)",
                    try value(
                        "SELECT printf('%.2f', SUM(own_trx) / SUM(own_nrx)) FROM brand_extracts.growth_tracker")
                ),
                (
                    "prescribers writing Zentavia (last week)",
                    try value(
                        "SELECT writers FROM brand_extracts.growth_tracker ORDER BY week_ending DESC LIMIT 1")
                ),
                (
                    "decile mix (10 … 1, writers)",
                    try value(
                        """
                        SELECT group_concat(n, ' ') FROM (SELECT decile, COUNT(*) AS n FROM field_extracts.physician_deciles
                        WHERE decile > 0 GROUP BY decile ORDER BY decile DESC)
                        """)
                ),
                (
                    "reach of decile 7–10 targets (4 weeks, last 13 weeks avg)",
                    try percent(
                        "SELECT AVG(reach) FROM (SELECT reach FROM brand_extracts.growth_tracker ORDER BY week_ending DESC LIMIT 13)"
                    )
                ),
                (
                    "calls per reached target (4 weeks)",
                    try value(
                        "SELECT AVG(frequency) FROM (SELECT frequency FROM brand_extracts.growth_tracker ORDER BY week_ending DESC LIMIT 13)"
                    )
                ),
            ]
        default:
            return [
                ("weeks", try value("SELECT COUNT(*) FROM brand_extracts.access_tracker")),
                (
                    "share, first → last 4 weeks",
                    try percent(Self.share("ASC", "access_tracker")) + " → "
                        + percent(Self.share("DESC", "access_tracker"))
                ),
                (
                    "approval rate of Zentavia claims",
                    try percent(
                        "SELECT 1.0 * SUM(paid) / SUM(paid + rejected) FROM brand_extracts.access_tracker")
                ),
                ("PA rejections (NCPDP 75)", try value("SELECT SUM(rejected_pa) FROM brand_extracts.access_tracker")),
                (
                    "gross-to-net, first → last quarter",
                    try value(
                        """
                        SELECT printf('%.1f%% → %.1f%%', 100 * (SELECT gross_to_net_pct FROM brand_extracts.access_tracker WHERE gross_to_net_pct IS NOT NULL ORDER BY week_ending LIMIT 1),
                                      100 * (SELECT gross_to_net_pct FROM brand_extracts.access_tracker WHERE gross_to_net_pct IS NOT NULL ORDER BY week_ending DESC LIMIT 1))
                        """)
                ),
                (
                    "open access by channel (latest month)",
                    try value(
                        """
                        SELECT group_concat(channel || ' ' || printf('%.0f%%', pct * 100), ', ') FROM (
                            SELECT p.channel, 1.0 * SUM(CASE WHEN f.covered = 1 AND f.pa = 0 AND f.st = 0 THEN f.lives ELSE 0 END) / SUM(f.lives) AS pct
                            FROM payer_mart.fact_formulary_monthly f JOIN payer_mart.dim_plan p ON p.plan_key = f.plan_key
                            JOIN payer_mart.dim_product d ON d.product_key = f.product_key
                            WHERE d.is_own_brand = 1 AND f.month = (SELECT MAX(month) FROM payer_mart.fact_formulary_monthly)
                            GROUP BY p.channel ORDER BY p.channel)
                        """)
                ),
                (
                    "generic entry (first week with generic TRx)",
                    try value(
                        """
                        SELECT MIN(f.week_ending) FROM physician_mart.fact_rx_weekly f JOIN physician_mart.dim_product p
                        ON p.product_key = f.product_key WHERE p.brand = p.generic AND f.trx > 0
                        """)
                ),
            ]
        }
    }

    static func emailRate(_ event: String, _ audience: String) -> String {
        """
        SELECT 1.0 * SUM(CASE WHEN event_type = '\(event)' THEN events ELSE 0 END) / SUM(CASE WHEN event_type = 'delivered' THEN events ELSE 0 END)
        FROM npp_mart.fact_email_daily WHERE audience = '\(audience)'
          AND date <= (SELECT MAX(week_ending) FROM brand_extracts.launch_tracker)
        """
    }

    static func share(_ order: String, _ table: String = "growth_tracker") -> String {
        "SELECT AVG(share) FROM (SELECT share FROM brand_extracts.\(table) ORDER BY week_ending \(order) LIMIT 4)"
    }
}

/// The demo's report: HTML with inline SVG charts, the same in Markdown, and a page of the mesh.
struct DemoReport {
    let mesh: Mesh
    let phases: [DemoPhase]

    func series(_ sql: String) throws -> [(String, Double)] {
        try mesh.query(sql).rows.compactMap { row in
            guard row.count >= 2 else { return nil }
            switch row[1] {
            case .real(let v): return (row[0].description, v)
            case .integer(let v): return (row[0].description, Double(v))
            default: return nil
            }
        }
    }

    func write() throws -> URL {
        let folder = mesh.home.appendingPathComponent("report")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let share = try series(
            """
            SELECT week_ending, 1.0 * SUM(own_trx) / SUM(market_trx) FROM physician_mart.mart_share_weekly
            WHERE market = (SELECT market FROM physician_mart.dim_product WHERE is_own_brand = 1 LIMIT 1)
            GROUP BY 1 ORDER BY 1
            """)
        let email = try series(
            """
            SELECT substr(date, 1, 7), 1.0 * SUM(CASE WHEN event_type = 'open' THEN events ELSE 0 END)
                 / MAX(1, SUM(CASE WHEN event_type = 'delivered' THEN events ELSE 0 END))
            FROM npp_mart.fact_email_daily GROUP BY 1 ORDER BY 1
            """)
        let trx = try series(
            """
            SELECT f.week_ending, SUM(f.trx) FROM physician_mart.fact_rx_weekly f
            JOIN physician_mart.dim_product p ON p.product_key = f.product_key WHERE p.is_own_brand = 1 GROUP BY 1 ORDER BY 1
            """)
        let deciles = try series(
            "SELECT decile, COUNT(*) FROM field_extracts.physician_deciles WHERE decile > 0 GROUP BY 1 ORDER BY 1 DESC")
        let pa = try series(
            """
            SELECT substr(week_ending, 1, 7), SUM(rejected_pa) FROM payer_mart.fact_plan_claims_weekly f
            JOIN payer_mart.dim_product p ON p.product_key = f.product_key WHERE p.is_own_brand = 1 GROUP BY 1 ORDER BY 1
            """)
        let gtn = try series(
            """
            SELECT quarter, 1.0 * SUM(rebate_amount) / SUM(wac_amount) FROM payer_mart.fact_rebates_quarterly f
            JOIN payer_mart.dim_product p ON p.product_key = f.product_key WHERE p.is_own_brand = 1 GROUP BY 1 ORDER BY 1
            """)
        // Each phase's charts show its own weeks (the deciles are as at the end of the replay).
        func charts(_ phase: DemoPhase) -> [(String, String)] {
            func window(_ points: [(String, Double)]) -> [(String, Double)] {
                Self.window(points, from: phase.start, to: phase.end)
            }
            switch phase.name {
            case "Launch":
                return [
                    ("Email open rate by month", SVGChart.line(window(email), percent: true)),
                    ("Zentavia TRx by week", SVGChart.line(window(trx), percent: false)),
                ]
            case "Growth":
                return [
                    ("Zentavia share of the basket by week", SVGChart.line(window(share), percent: true)),
                    ("Prescribers by decile (10 … 1)", SVGChart.bars(deciles)),
                ]
            case "Maturity":
                return [
                    ("PA rejections (NCPDP 75) by month", SVGChart.bars(window(pa))),
                    ("Gross-to-net by quarter", SVGChart.line(window(gtn), percent: true)),
                ]
            default: return []
            }
        }
        var html = DemoReport.head("Zentavia: launch to maturity")
        var markdown =
            "# Zentavia: launch to maturity\n\nBuilt by `pharma-mesh demo` from the marts of \(mesh.home.path).\n"
        html +=
            "<h1>Zentavia: launch to maturity</h1><p>Built by <code>pharma-mesh demo</code>. "
            + "<a href=\"mesh.html\">The mesh</a>.</p>"
        for phase in phases {
            let summary =
                "\(Self.period(phase)): \(DemoFormat.count(phase.runs)) mesh runs, \(DemoFormat.count(phase.rebuilt)) domain builds, "
                + "\(DemoFormat.count(phase.testsPassed)) tests passed, \(DemoFormat.count(phase.testsWarned)) warned, \(DemoFormat.count(phase.testsFailed)) failed."
            html += "<h2>\(phase.name)</h2><p>\(Self.escape(summary))</p>"
            markdown += "\n## \(phase.name)\n\n\(summary)\n\n"
            html +=
                "<table>"
                + phase.figures.map { "<tr><th>\(Self.escape($0.0))</th><td>\(Self.escape($0.1))</td></tr>" }
                .joined() + "</table>"
            markdown +=
                "| figure | value |\n| --- | --- |\n"
                + phase.figures.map { "| \($0.0) | \($0.1) |" }.joined(separator: "\n") + "\n"
            for (title, svg) in charts(phase) {
                html += "<figure><figcaption>\(title)</figcaption>\(svg)</figure>"
                let file = title.lowercased().split(whereSeparator: { !$0.isLetter && !$0.isNumber }).joined(
                    separator: "-")
                markdown += "\n![\(title)](\(file).svg)\n"
                try svg.write(to: folder.appendingPathComponent("\(file).svg"), atomically: true, encoding: .utf8)
            }
            if !phase.incidents.isEmpty {
                html +=
                    "<h3>What the mesh caught</h3><ul>"
                    + phase.incidents.map { "<li>\(Self.escape($0))</li>" }
                    .joined() + "</ul>"
                markdown +=
                    "\n### What the mesh caught\n\n" + phase.incidents.map { "- \($0)" }.joined(separator: "\n") + "\n"
            }
        }
        html += "</body></html>\n"
        try html.write(to: folder.appendingPathComponent("index.html"), atomically: true, encoding: .utf8)
        try markdown.write(to: folder.appendingPathComponent("report.md"), atomically: true, encoding: .utf8)
        try writeMeshPages(to: folder)
        return folder.appendingPathComponent("index.html")
    }

    /// The domain graph, each box coloured by its last status and sync verdict and a link to the domain's page
    /// in `domains/` (the same graph and pages `serve` shows), and a line per domain.
    func meshPage(statuses: [DomainStatus]) throws -> String {
        let rows = statuses.map { s in
            "<tr><td><a href=\"domains/\(s.domain).html\">\(Self.escape(s.domain.rawValue))</a></td><td>\(Self.escape(s.layer))</td>"
                + "<td>\(s.version.map { "v\($0)" } ?? "–")</td><td>\(s.lastStatus?.rawValue.replacingOccurrences(of: "_", with: " ") ?? "never run")</td>"
                + "<td>\(s.tests.passed) / \(s.tests.warned) / \(s.tests.failed)</td><td>\(s.sync.state.rawValue.replacingOccurrences(of: "_", with: " "))</td>"
                + "<td>\(Self.escape(s.freshness.overdue ?? s.freshness.state.rawValue.replacingOccurrences(of: "_", with: " ")))</td></tr>"
        }
        return DemoReport.head("The mesh", width: 1400)
            + "<p><a href=\"index.html\">The report</a></p><h1>The mesh</h1><p>\(DemoReport.escape(MeshGraph.legend)).</p>"
            + "<div style=\"overflow-x:auto\">\(try MeshGraph.svg(mesh: mesh, link: { "domains/\($0).html" }, statuses: statuses))</div>"
            + "<table><tr><th>domain</th><th>layer</th><th>version</th><th>last run</th><th>tests P / W / F</th><th>sync</th><th>freshness</th></tr>"
            + rows.joined() + "</table></body></html>\n"
    }

    /// The mesh page and a page per domain (`domains/DOMAIN.html`, linked to each other by relative links).
    func writeMeshPages(to folder: URL) throws {
        let statuses = try mesh.status()
        try meshPage(statuses: statuses).write(
            to: folder.appendingPathComponent("mesh.html"), atomically: true, encoding: .utf8)
        let domains = folder.appendingPathComponent("domains")
        try FileManager.default.createDirectory(at: domains, withIntermediateDirectories: true)
        for id in mesh.registry.ids {
            try StaticPages.domain(id, mesh: mesh, statuses: statuses, file: { "\($0).html" }).write(
                to: domains.appendingPathComponent("\(id).html"), atomically: true, encoding: .utf8)
        }
    }

    /// The dates a phase covers, for its heading.
    static func period(_ phase: DemoPhase) -> String {
        switch (phase.start, phase.end) {
        case (let start?, let end?): return "\(start) to \(DemoDates.adding(days: -1, to: end))"
        case (let start?, nil): return "from \(start)"
        case (nil, let end?): return "until \(DemoDates.adding(days: -1, to: end))"
        case (nil, nil): return "the whole replay"
        }
    }

    /// The points whose label falls in `[from, to)`: a date `YYYY-MM-DD`, a month `YYYY-MM` or a quarter
    /// `YYYYQn`, which count when any of their days does. Labels of another shape are kept.
    static func window(_ points: [(String, Double)], from: String?, to: String?) -> [(String, Double)] {
        points.filter { point in
            guard let (first, last) = days(of: point.0) else { return true }
            return (from.map { last >= $0 } ?? true) && (to.map { first < $0 } ?? true)
        }
    }

    /// The first and last day of a date, a month or a quarter, as `YYYY-MM-DD`.
    static func days(of label: String) -> (String, String)? {
        let parts = label.split(separator: "-")
        if label.count == 10, parts.count == 3 { return (label, label) }
        if label.count == 7, parts.count == 2 { return (label + "-01", label + "-31") }
        if label.count == 6, label.dropFirst(4).first == "Q", let q = Int(label.suffix(1)), (1...4).contains(q) {
            let year = label.prefix(4)
            return ("\(year)-\(String(format: "%02d", 3 * q - 2))-01", "\(year)-\(String(format: "%02d", 3 * q))-31")
        }
        return nil
    }

    static func head(_ title: String, width: Int = 1180) -> String {
        """
        <!doctype html><html><head><meta charset="utf-8"><title>\(title)</title><style>
        body{font-family:sans-serif;max-width:\(width)px;margin:2em auto;color:#222} table{border-collapse:collapse;margin:1em 0}
        th,td{border:1px solid #ccc;padding:4px 10px;text-align:left} th{background:#f5f5f5;font-weight:normal}
        figure{display:inline-block;margin:1em 2em 1em 0} figcaption{font-weight:bold;margin-bottom:4px}
        </style></head><body>
        """
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
    }
}

/// Small inline SVG charts (no scripts, no external files).
enum SVGChart {
    static let width = 520.0
    static let height = 200.0

    static func frame(_ body: String, low: Double, high: Double, first: String, last: String, percent: Bool) -> String {
        func label(_ v: Double) -> String { percent ? String(format: "%.0f%%", v * 100) : DemoFormat.number(v) }
        return
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width + 60)\" height=\"\(height + 40)\" font-family=\"sans-serif\" font-size=\"11\">"
            + "<line x1=\"50\" y1=\"10\" x2=\"50\" y2=\"\(height + 10)\" stroke=\"#333\"/>"
            + "<line x1=\"50\" y1=\"\(height + 10)\" x2=\"\(width + 50)\" y2=\"\(height + 10)\" stroke=\"#333\"/>"
            + "<text x=\"4\" y=\"16\">\(label(high))</text><text x=\"4\" y=\"\(height + 10)\">\(label(low))</text>"
            + "<text x=\"50\" y=\"\(height + 28)\">\(first)</text><text x=\"\(width)\" y=\"\(height + 28)\">\(last)</text>"
            + body + "</svg>"
    }

    static func line(_ points: [(String, Double)], percent: Bool) -> String {
        guard points.count > 1 else { return "<p>(no data)</p>" }
        let high = max(points.map(\.1).max() ?? 1, 1e-9)
        let step = width / Double(points.count - 1)
        let path = points.enumerated().map { index, point in
            String(format: "%.1f,%.1f", 50 + Double(index) * step, 10 + height - point.1 / high * height)
        }.joined(separator: " ")
        return frame(
            "<polyline fill=\"none\" stroke=\"#2f80ed\" stroke-width=\"1.5\" points=\"\(path)\"/>", low: 0, high: high,
            first: points.first!.0, last: points.last!.0, percent: percent)
    }

    static func bars(_ points: [(String, Double)]) -> String {
        guard !points.isEmpty else { return "<p>(no data)</p>" }
        let high = max(points.map(\.1).max() ?? 1, 1e-9)
        let step = width / Double(points.count)
        let bars = points.enumerated().map { index, point in
            let h = point.1 / high * height
            return String(
                format: "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#27ae60\"/>",
                50 + Double(index) * step + 1, 10 + height - h, max(step - 2, 1), h)
        }.joined()
        return frame(bars, low: 0, high: high, first: points.first!.0, last: points.last!.0, percent: false)
    }
}

/// Numbers for people: thousands separators, a sensible number of decimals, dollars.
enum DemoFormat {
    /// `1,234,567`.
    static func count(_ n: Int) -> String {
        let digits = String(n.magnitude)
        var out = ""
        for (index, digit) in digits.enumerated() {
            if index > 0 && (digits.count - index) % 3 == 0 { out.append(",") }
            out.append(digit)
        }
        return (n < 0 ? "-" : "") + out
    }

    /// Whole with separators from 100 up (`12,345`), else with one decimal (`12.5`) or, below 1, two
    /// significant digits (`0.042`).
    static func number(_ x: Double) -> String {
        guard x.isFinite else { return "–" }
        if abs(x) >= 100 { return count(Int(x.rounded())) }
        if abs(x) >= 1 || x == 0 { return String(format: "%.1f", x) }
        return String(format: "%.2g", x)
    }

    /// `$36,021,161`.
    static func money(_ x: Double) -> String {
        guard x.isFinite else { return "–" }
        return (x < 0 ? "-$" : "$") + count(Int(abs(x).rounded()))
    }
}
