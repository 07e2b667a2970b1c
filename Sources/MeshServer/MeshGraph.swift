import Foundation
import MeshRuntime

/// The domain graph as SVG, in layers: a column per depth in the graph (a domain sits right of everything it
/// reads), each column a labelled box of its domains (the raw domains together in the first), rows ordered so
/// that edges cross little, and edges that skip a column bundled in one lane below the columns they pass.
/// Each domain's box is coloured by its last run and sync verdict, marked when it is overdue against its
/// service level, and a link to the domain's page.
///
/// Text is drawn at 12 and 13 user units and the SVG is never scaled down (the page scrolls it sideways when
/// a mesh is wider than the window), so labels read at normal size.
public enum MeshGraph {
    public static let legend =
        "green: built and in sync; orange: published with warnings; yellow: stale (built from an older input); blue: running; red: failed; grey: never built; a red dashed border: overdue against its service level (since when: in the box's tooltip)"

    /// The whole mesh; `links` makes each box a link to the domain's URL on the server. Pass `statuses` when
    /// the caller has read them already.
    public static func svg(mesh: Mesh, links: Bool = true, statuses: [DomainStatus]? = nil) throws -> String {
        try svg(mesh: mesh, link: links ? { "/domains/\($0)" } : nil, statuses: statuses)
    }

    /// The whole mesh, each box a link to `link(domain)` (a relative file in a static report, say).
    public static func svg(mesh: Mesh, link: ((DomainID) -> String)?, statuses: [DomainStatus]? = nil) throws
        -> String
    {
        try render(mesh: mesh, nodes: Set(mesh.registry.ids), focus: nil, link: link, statuses: statuses)
    }

    /// One domain with everything upstream of it and the domains that read it.
    public static func lineageSVG(
        of id: DomainID, mesh: Mesh, statuses: [DomainStatus]? = nil,
        link: ((DomainID) -> String)? = { "/domains/\($0)" }
    ) throws -> String {
        var nodes = GraphAlgorithms.upstreamClosure(of: [id], edges: mesh.registry.domains.mapValues(\.upstreamDomains))
        nodes.insert(id)
        nodes.formUnion(mesh.dependents[id] ?? [])
        return try render(mesh: mesh, nodes: nodes, focus: id, link: link, statuses: statuses)
    }

    /// The fill colour of a domain's box.
    public static func colour(_ status: DomainStatus) -> String {
        if status.version != nil && status.sync.state == .stale { return "#f2c94c" }
        switch status.lastStatus {
        case .none: return status.version == nil ? "#e0e0e0" : "#6fcf97"
        case .some(.success), .some(.upToDate): return "#6fcf97"
        case .some(.warn): return "#f2994a"
        case .some(.running): return "#56ccf2"
        case .some(.skipped): return status.version == nil ? "#e0e0e0" : "#6fcf97"
        default: return "#eb5757"
        }
    }

    /// True when the domain missed a deadline of its service level.
    public static func overdue(_ status: DomainStatus) -> Bool {
        status.freshness.state == .late || status.freshness.state == .stale
    }

    /// The smallest font size the graph draws text at, in SVG user units (pixels when unscaled).
    public static let smallestFont = 12.0

    /// Positions of the boxes: columns by depth, rows ordered by the barycentre of what each domain reads
    /// (and, for the first column, of what reads it), so that edges run mostly straight.
    struct Layout {
        var column: [DomainID: Int] = [:]
        var position: [DomainID: (x: Double, y: Double)] = [:]
        var columns: [[DomainID]] = []
        var boxWidth = 0.0
        var width = 0.0
        var height = 0.0
        /// Each column's group box: top and bottom.
        var band: [(top: Double, bottom: Double)] = []

        static let boxHeight = 44.0
        static let rowGap = 10.0
        static let columnGap = 36.0
        static let margin = 16.0
        static let header = 26.0
        static let padding = 8.0

        func x(_ column: Int) -> Double { Self.margin + Self.padding + Double(column) * (boxWidth + Self.columnGap) }
    }

    static func layout(nodes: Set<DomainID>, inputs: [DomainID: [DomainID]], labels: [DomainID: [String]]) -> Layout {
        var layout = Layout()
        func depthOf(_ id: DomainID) -> Int {
            if let known = layout.column[id] { return known }
            let value = (inputs[id] ?? []).map { depthOf($0) + 1 }.max() ?? 0
            layout.column[id] = value
            return value
        }
        for id in nodes.sorted() { _ = depthOf(id) }
        let count = (layout.column.values.max() ?? 0) + 1
        var columns = (0..<count).map { c in nodes.filter { layout.column[$0] == c }.sorted() }
        var readers: [DomainID: [DomainID]] = [:]
        for (id, list) in inputs { for input in list { readers[input, default: []].append(id) } }
        func rank() -> [DomainID: Double] {
            var rank: [DomainID: Double] = [:]
            for members in columns { for (index, id) in members.enumerated() { rank[id] = Double(index) } }
            return rank
        }
        func reorder(_ c: Int, by neighbours: [DomainID: [DomainID]]) {
            let current = rank()
            columns[c] = columns[c].map { id -> (DomainID, Double) in
                let near = (neighbours[id] ?? []).compactMap { current[$0] }
                return (id, near.isEmpty ? current[id]! : near.reduce(0, +) / Double(near.count))
            }.sorted { $0.1 != $1.1 ? $0.1 < $1.1 : $0.0 < $1.0 }.map(\.0)
        }
        for _ in 0..<2 {
            for c in columns.indices.dropFirst() { reorder(c, by: inputs) }
            for c in columns.indices.dropLast().reversed() { reorder(c, by: readers) }
        }
        for c in columns.indices.dropFirst() { reorder(c, by: inputs) }
        layout.columns = columns

        // Wide enough for the longest label at about 0.6 em a character (sans-serif).
        var longest = 0.0
        for lines in labels.values {
            for (index, line) in lines.enumerated() {
                longest = max(longest, Double(line.count) * (index == 0 ? 7.9 : 7.2))
            }
        }
        layout.boxWidth = min(260, max(150, (longest + 16).rounded(.up)))
        let pitch = Layout.boxHeight + Layout.rowGap
        let top = Layout.margin + Layout.header
        // Each box near the middle of what it reads, without overlapping the one above.
        for (c, members) in columns.enumerated() {
            var next = top
            for id in members {
                let near = (inputs[id] ?? []).compactMap { layout.position[$0]?.y }
                let wanted = c == 0 || near.isEmpty ? next : max(next, near.reduce(0, +) / Double(near.count))
                layout.position[id] = (layout.x(c), wanted)
                next = wanted + pitch
            }
            let bottom = (members.last.flatMap { layout.position[$0]?.y } ?? top) + Layout.boxHeight
            layout.band.append((top - Layout.header + 4, bottom + Layout.padding))
        }
        layout.width =
            2 * Layout.margin + Double(count) * (layout.boxWidth + 2 * Layout.padding)
            + Double(count - 1) * (Layout.columnGap - 2 * Layout.padding)
        layout.height = (layout.band.map(\.bottom).max() ?? top) + Layout.margin + 24
        return layout
    }

    static func render(
        mesh: Mesh, nodes: Set<DomainID>, focus: DomainID?, link: ((DomainID) -> String)?,
        statuses: [DomainStatus]?
    ) throws -> String {
        let statuses = Dictionary(uniqueKeysWithValues: try (statuses ?? mesh.status()).map { ($0.domain, $0) })
        var inputs: [DomainID: [DomainID]] = [:]
        for id in nodes { inputs[id] = (mesh.registry[id]?.upstreamDomains ?? []).filter { nodes.contains($0) } }
        var labels: [DomainID: [String]] = [:]
        for id in nodes {
            guard let status = statuses[id] else { continue }
            labels[id] = [id.rawValue, secondLine(status)]
        }
        let layout = Self.layout(nodes: nodes, inputs: inputs, labels: labels)
        let w = layout.boxWidth
        let h = Layout.boxHeight
        var out = ""
        // The column boxes, named by the layers of their domains.
        for (c, members) in layout.columns.enumerated() where !members.isEmpty {
            var layers: [String] = []
            for id in members where !layers.contains(statuses[id]?.layer ?? "") {
                layers.append(statuses[id]?.layer ?? "")
            }
            let band = layout.band[c]
            let name =
                layers.filter { !$0.isEmpty }.joined(separator: " / ")
                + (members.count > 1 ? " · \(members.count) domains" : "")
            out +=
                "<g class=\"layer\" data-column=\"\(c)\" data-members=\"\(members.count)\"><rect x=\"\(layout.x(c) - Layout.padding)\" y=\"\(band.top)\" width=\"\(w + 2 * Layout.padding)\" height=\"\(band.bottom - band.top)\" rx=\"8\" fill=\"#f4f6f8\" stroke=\"#d0d7de\"/>"
                + "<text x=\"\(layout.x(c))\" y=\"\(band.top + 16)\" font-size=\"12\" fill=\"#444\">\(Page.escape(name))</text></g>"
        }
        // Edges: between neighbouring columns a curve; across columns along one lane below the columns passed,
        // shared by every edge that passes them (a bundle), so that no edge runs through a box.
        for id in nodes.sorted() {
            guard let to = layout.position[id], let toColumn = layout.column[id] else { continue }
            for input in inputs[id] ?? [] {
                guard let from = layout.position[input], let fromColumn = layout.column[input] else { continue }
                let x1 = from.x + w
                let y1 = from.y + h / 2
                let x2 = to.x
                let y2 = to.y + h / 2
                var d: String
                if toColumn - fromColumn <= 1 {
                    let mid = (x1 + x2) / 2
                    d = "M\(x1),\(y1) C\(mid),\(y1) \(mid),\(y2) \(x2),\(y2)"
                } else {
                    let passed = (fromColumn + 1)..<toColumn
                    let lane = passed.map { layout.band[$0].bottom }.max()! + 10
                    let enter = layout.x(passed.lowerBound) - Layout.padding
                    let leave = layout.x(passed.upperBound - 1) + w + Layout.padding
                    let m1 = (x1 + enter) / 2
                    let m2 = (leave + x2) / 2
                    d =
                        "M\(x1),\(y1) C\(m1),\(y1) \(m1),\(lane) \(enter),\(lane) L\(leave),\(lane) C\(m2),\(lane) \(m2),\(y2) \(x2),\(y2)"
                }
                let strong = focus != nil && (id == focus || input == focus)
                out +=
                    "<path class=\"edge\" data-from=\"\(input)\" data-to=\"\(id)\" d=\"\(d)\" fill=\"none\" stroke=\"\(strong ? "#1a4d8f" : "#7a7a7a")\" stroke-opacity=\"0.7\" stroke-width=\"\(strong ? 1.6 : 1.1)\" marker-end=\"url(#arrow)\"/>"
            }
        }
        for id in nodes.sorted() {
            guard let at = layout.position[id], let status = statuses[id], let lines = labels[id] else { continue }
            let late = overdue(status)
            let stroke =
                id == focus
                ? "stroke=\"#1a4d8f\" stroke-width=\"3\""
                : late ? "stroke=\"#b00020\" stroke-width=\"2\" stroke-dasharray=\"5 3\"" : "stroke=\"#333\""
            let href = link?(id)
            out +=
                (href.map { "<a href=\"\(Page.escape($0))\">" } ?? "")
                + "<g class=\"domain\" data-domain=\"\(Page.escape(id.rawValue))\" data-status=\"\(status.lastStatus?.rawValue ?? "never")\" data-sync=\"\(status.sync.state.rawValue)\" data-freshness=\"\(status.freshness.state.rawValue)\""
                + (status.freshness.overdue.map { " data-overdue=\"\(Page.escape($0))\"" } ?? "") + ">"
                + "<title>\(Page.escape(tooltip(status)))</title>"
                + "<rect x=\"\(at.x)\" y=\"\(at.y)\" width=\"\(w)\" height=\"\(h)\" rx=\"6\" fill=\"\(colour(status))\" \(stroke)/>"
                + "<text x=\"\(at.x + 8)\" y=\"\(at.y + 18)\" font-size=\"13\" font-weight=\"bold\">\(Page.escape(lines[0]))</text>"
                + "<text x=\"\(at.x + 8)\" y=\"\(at.y + 36)\" font-size=\"12\"\(late ? " fill=\"#8a0018\"" : "")>\(Page.escape(lines[1]))</text></g>"
                + (href == nil ? "" : "</a>")
        }
        let defs =
            "<defs><marker id=\"arrow\" viewBox=\"0 0 8 8\" refX=\"8\" refY=\"4\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\"><path d=\"M0,0 L8,4 L0,8 z\" fill=\"#7a7a7a\"/></marker></defs>"
        return
            "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(layout.width) \(layout.height)\" width=\"\(layout.width)\" height=\"\(layout.height)\" style=\"max-width:none\" font-family=\"sans-serif\" role=\"img\" aria-label=\"domain graph\">\(defs)\(out)</svg>"
    }

    /// `v3 · success`, with `· overdue` when a deadline was missed.
    static func secondLine(_ status: DomainStatus) -> String {
        "\(status.version.map { "v\($0)" } ?? "–") · \(status.lastStatus?.rawValue.replacingOccurrences(of: "_", with: " ") ?? "never run")"
            + (overdue(status) ? " · overdue" : "")
    }

    /// What a box's tooltip says: the domain, its version and last run, sync and freshness.
    static func tooltip(_ status: DomainStatus) -> String {
        var text =
            "\(status.domain) (\(status.layer)): \(status.description)\n"
            + "version \(status.version.map { "v\($0)" } ?? "none"), last run \(status.lastStatus?.rawValue ?? "never"), sync \(status.sync.state.rawValue.replacingOccurrences(of: "_", with: " "))"
        switch status.freshness.state {
        case .noLevel: break
        case .onTime: text += "\non time" + (status.freshness.expected.map { " (expected \($0))" } ?? "")
        case .late, .stale:
            text +=
                "\n\(status.freshness.overdue ?? "overdue")"
                + (status.freshness.expected.map { " (expected \($0))" } ?? "")
        }
        if !status.freshness.lateUpstream.isEmpty {
            text += "\nreads late inputs: \(status.freshness.lateUpstream.joined(separator: ", "))"
        }
        return text
    }
}
