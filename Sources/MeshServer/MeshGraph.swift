import Foundation
import MeshRuntime

/// The domain graph as SVG: columns by depth (a domain sits right of everything it reads), each box coloured
/// by its last run and sync verdict, each a link to the domain's URL.
public enum MeshGraph {
    public static let legend =
        "green: built and in sync; orange: published with warnings; yellow: stale (built from an older input); blue: running; red: failed; grey: never built"

    /// The whole mesh; `links` makes each box a link to the domain's URL on the server. Pass `statuses` when
    /// the caller has read them already.
    public static func svg(mesh: Mesh, links: Bool = true, statuses: [DomainStatus]? = nil) throws -> String {
        try render(mesh: mesh, nodes: Set(mesh.registry.ids), focus: nil, links: links, statuses: statuses)
    }

    /// One domain with everything upstream of it and the domains that read it.
    public static func lineageSVG(of id: DomainID, mesh: Mesh, statuses: [DomainStatus]? = nil) throws -> String {
        var nodes = GraphAlgorithms.upstreamClosure(of: [id], edges: mesh.registry.domains.mapValues(\.upstreamDomains))
        nodes.insert(id)
        nodes.formUnion(mesh.dependents[id] ?? [])
        return try render(mesh: mesh, nodes: nodes, focus: id, links: true, statuses: statuses)
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

    static func render(
        mesh: Mesh, nodes: Set<DomainID>, focus: DomainID?, links: Bool, statuses: [DomainStatus]?
    ) throws -> String {
        let statuses = Dictionary(uniqueKeysWithValues: try (statuses ?? mesh.status()).map { ($0.domain, $0) })
        var depth: [DomainID: Int] = [:]
        func depthOf(_ id: DomainID) -> Int {
            if let known = depth[id] { return known }
            let inputs = (mesh.registry[id]?.upstreamDomains ?? []).filter { nodes.contains($0) }
            let value = inputs.map { depthOf($0) + 1 }.max() ?? 0
            depth[id] = value
            return value
        }
        for id in nodes { _ = depthOf(id) }
        let columns = (depth.values.max() ?? 0) + 1
        let boxWidth = 230.0
        let boxHeight = 30.0
        let columnGap = 60.0
        let rowGap = 10.0
        var position: [DomainID: (x: Double, y: Double)] = [:]
        var tallest = 0
        for column in 0..<columns {
            let members = nodes.filter { depth[$0] == column }.sorted()
            tallest = max(tallest, members.count)
            for (row, id) in members.enumerated() {
                position[id] = (20 + Double(column) * (boxWidth + columnGap), 20 + Double(row) * (boxHeight + rowGap))
            }
        }
        var edges = ""
        for id in nodes.sorted() {
            guard let to = position[id] else { continue }
            for input in mesh.registry[id]?.upstreamDomains ?? [] {
                guard let from = position[input] else { continue }
                let x1 = from.x + boxWidth
                let y1 = from.y + boxHeight / 2
                let x2 = to.x
                let y2 = to.y + boxHeight / 2
                edges +=
                    "<path d=\"M\(x1),\(y1) C\(x1 + columnGap / 2),\(y1) \(x2 - columnGap / 2),\(y2) \(x2),\(y2)\" fill=\"none\" stroke=\"#8a8a8a\" stroke-width=\"1\"/>"
            }
        }
        var boxes = ""
        for id in nodes.sorted() {
            guard let at = position[id], let status = statuses[id] else { continue }
            let label =
                "\(id) \(status.version.map { "v\($0)" } ?? "–") · \(status.lastStatus?.rawValue.replacingOccurrences(of: "_", with: " ") ?? "never run")"
            let stroke = id == focus ? "stroke=\"#1a4d8f\" stroke-width=\"3\"" : "stroke=\"#333\""
            boxes +=
                (links ? "<a href=\"/domains/\(id)\">" : "")
                + "<g class=\"domain\" data-domain=\"\(id)\" data-status=\"\(status.lastStatus?.rawValue ?? "never")\" data-sync=\"\(status.sync.state.rawValue)\">"
                + "<title>\(Page.escape(status.description))</title>"
                + "<rect x=\"\(at.x)\" y=\"\(at.y)\" width=\"\(boxWidth)\" height=\"\(boxHeight)\" rx=\"6\" fill=\"\(colour(status))\" \(stroke)/>"
                + "<text x=\"\(at.x + 8)\" y=\"\(at.y + 19)\" font-size=\"12\">\(Page.escape(label))</text></g>"
                + (links ? "</a>" : "")
        }
        let width = 40 + Double(columns) * boxWidth + Double(columns - 1) * columnGap
        let height = 40 + Double(tallest) * (boxHeight + rowGap)
        return
            "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(width) \(height)\" width=\"\(width)\" height=\"\(height)\" style=\"max-width:100%;height:auto\" font-family=\"sans-serif\" role=\"img\" aria-label=\"domain graph\">\(edges)\(boxes)</svg>"
    }
}
