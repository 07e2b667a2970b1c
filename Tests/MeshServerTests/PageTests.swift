import Foundation
import GRDB
import HTTPTypes
import Hummingbird
import MeshRuntime
import MeshServer
import MeshTestSupport
import Testing

/// What a browser is shown: a page for every JSON route, and a mesh graph that reads.
struct PageTests {
    /// What Chromium and Firefox send when a person follows a link.
    static let browserAccept = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"

    /// The JSON `GET` routes, as the OpenAPI document lists them (a route added later is in it: a test checks
    /// the document against the router), with their path parameters filled in. `/openapi.json` is a file
    /// for programs and stays JSON.
    static func jsonRoutes(_ client: LiveClient, _ f: ServerFixture) async throws -> [(route: String, uri: String)] {
        let document = try await client.get("/openapi.json", token: nil).json
        let paths = try #require(document["paths"] as? [String: [String: Any]])
        var routes: [(route: String, uri: String)] = []
        for (path, methods) in paths.sorted(by: { $0.key < $1.key }) {
            guard let get = methods["get"] as? [String: Any], let responses = get["responses"] as? [String: Any],
                let ok = responses["200"] as? [String: Any], let content = ok["content"] as? [String: Any],
                content["application/json"] != nil, !path.hasSuffix(".json")
            else { continue }
            var uri = path.replacingOccurrences(of: "{domain}", with: "orders-mart")
                .replacingOccurrences(of: "{run}", with: f.firstRun.rawValue).replacingOccurrences(
                    of: "{kitchen}", with: "k")
            if uri == "/query" { uri += "?sql=\(encoded("SELECT 7 AS seven, 'x' AS letter"))" }
            routes.append((route: "GET \(path)", uri: uri))
        }
        return routes
    }

    /// The strings a page of the JSON must show: every domain, run id, table, test and name in it (dates and
    /// figures are formatted for people, so they are not compared).
    static func markers(_ value: Any, key: String = "") -> [String] {
        switch value {
        case let object as [String: Any]: return object.flatMap { markers($0.value, key: $0.key) }
        case let array as [Any]: return array.flatMap { markers($0, key: key) }
        case let text as String:
            return ["domain", "run_id", "table", "test", "name", "columns", "status"].contains(key) && !text.isEmpty
                && !text.hasPrefix("source:") ? [text] : []
        default: return []
        }
    }

    @Test(
        "a browser gets a page of the same data from every JSON GET route; scripts still get JSON; access is the same")
    func everyJSONRouteHasAPage() async throws {
        let f = try await ServerFixture(martTests: [
            AcceptedValues(table: "items", column: "value", values: ["1"], severity: .warn)
        ])
        defer { f.directory.remove() }
        try Kitchens(home: f.directory.url).create("k", domains: ["orders-mart"], registry: f.mesh.registry)
        let outsider = try f.token("outsider", .reader, ["orders"])
        try await f.live { client in
            let routes = try await Self.jsonRoutes(client, f)
            // The routes the issue names, and more: the list is not empty by accident.
            for needed in [
                "GET /domains/{domain}/runs", "GET /runs", "GET /domains/{domain}/tests",
                "GET /domains/{domain}/lineage",
                "GET /domains/{domain}/versions", "GET /domains/{domain}/catalog", "GET /kitchens", "GET /query",
            ] {
                #expect(routes.contains { $0.route == needed }, "\(needed) is not among the JSON routes")
            }
            for (route, uri) in routes {
                let json = try await client.get(uri, token: f.owner, headers: [.accept: "application/json"])
                #expect(json.status == .ok, "\(route): \(json.text.prefix(300))")
                #expect(json.headers[.contentType]?.hasPrefix("application/json") == true, "\(route)")
                let value = try JSONSerialization.jsonObject(with: Data(json.text.utf8), options: .fragmentsAllowed)
                for accept in ["", "*/*"] {
                    let plain = try await client.get(
                        uri, token: f.owner, headers: accept.isEmpty ? [:] : [.accept: accept])
                    #expect(plain.headers[.contentType]?.hasPrefix("application/json") == true, "\(route) \(accept)")
                }

                let page = try await client.get(uri, token: f.owner, headers: [.accept: Self.browserAccept])
                #expect(page.status == .ok, "\(route)")
                #expect(page.headers[.contentType]?.hasPrefix("text/html") == true, "\(route) answered a browser JSON")
                #expect(page.text.hasPrefix("<!doctype html>"), "\(route)")
                #expect(page.route == route)
                for marker in Set(Self.markers(value)) {
                    let shown = [marker, marker.replacingOccurrences(of: "_", with: " ")].contains {
                        page.text.contains(">\(escapeHTML($0))<") || page.text.contains(escapeHTML($0))
                    }
                    #expect(shown, "\(route): the page lacks \(marker)")
                }
                #expect(!page.text.contains("<script"), "\(route): pages run no scripts")

                // The same checks for both: no token, and a token that does not cover the domain.
                let anonymousPage = try await client.get(uri, token: nil, headers: [.accept: Self.browserAccept])
                let anonymousJSON = try await client.get(uri, token: nil, headers: [.accept: "application/json"])
                #expect(anonymousPage.status == anonymousJSON.status, "\(route)")
                #expect(anonymousPage.status == (route == "GET /health" ? .ok : .unauthorized), "\(route)")
                let outsiderPage = try await client.get(uri, token: outsider, headers: [.accept: Self.browserAccept])
                let outsiderJSON = try await client.get(uri, token: outsider, headers: [.accept: "application/json"])
                #expect(outsiderPage.status == outsiderJSON.status, "\(route)")
                if uri.contains("orders-mart") || uri.hasPrefix("/kitchens/") {
                    #expect(outsiderPage.status == .forbidden, "\(route)")
                    #expect(!outsiderPage.text.contains("order values times the factor"))
                }
            }
            // Preference by quality and the most specific match; a tie goes to JSON.
            for (accept, html) in [
                ("application/json, text/html;q=0.5", false), ("text/*", true), ("application/*", false),
                ("text/html;q=0", false), ("application/json;q=0.4, text/html", true), ("*/*;q=0.8", false),
            ] {
                let answer = try await client.get("/runs", token: f.owner, headers: [.accept: accept])
                #expect(
                    answer.headers[.contentType]?.hasPrefix(html ? "text/html" : "application/json") == true,
                    "\(accept)")
            }
            // Readable where it counts: the tests page shows the offending rows, the runs page links the domains.
            let tests = try await client.get(
                "/domains/orders-mart/tests", token: f.owner, headers: [.accept: Self.browserAccept]
            ).text
            #expect(tests.contains("<table class=\"offending\"><tr><th>rows</th><th>value</th></tr>"))
            #expect(tests.contains("<td>1</td><td>2</td>") && tests.contains("<td>1</td><td>3</td>"))
            let runs = try await client.get("/runs", token: f.owner, headers: [.accept: Self.browserAccept]).text
            #expect(runs.contains("href=\"/domains/orders-mart\""))
            // A reader sees only its domains in the runs page too.
            let scoped = try await client.get("/runs", token: outsider, headers: [.accept: Self.browserAccept]).text
            #expect(!scoped.contains("secret-mart") && scoped.contains("href=\"/domains/orders\""))
        }
    }

    /// ```
    /// raw-01 … raw-14 ──▶ master-a … master-d ──▶ dims ──▶ mart-x, mart-y ──▶ extract
    ///        └──────────────── (raw-02, raw-13 skip two columns) ──▶ mart-x
    /// ```
    @Test(
        "the mesh graph: layers as columns, the 14 raw domains in one box, bundled edges through no box, 12 px text, overdue marked, every box a link"
    )
    func theGraphIsLayeredAndReadable() throws {
        let dir = try TemporaryDirectory("graph")
        defer { dir.remove() }
        let raws = (1...14).map { ToyMesh.source(DomainID("raw-\(String(format: "%02d", $0))"), source: "s\($0)") }
        func derived(_ id: DomainID, _ layer: String, _ inputs: [DomainID]) -> Domain {
            var domain = ToyMesh.derived(id, from: inputs, sql: ToyMesh.union(inputs))
            domain.layer = layer
            return domain
        }
        let masters = ["a", "b", "c", "d"].enumerated().map { index, name in
            derived(
                DomainID("master-\(name)"), "mastered",
                raws.enumerated().filter { $0.offset % 4 == index }.map(\.element.id))
        }
        let dims = derived("dims", "integrated", masters.map(\.id))
        var martX = derived("mart-x", "integrated", ["dims", "master-a", "raw-02", "raw-13"])
        martX.freshness = FreshnessSLA(.daily, hour: 9, description: "daily by 09:00 UTC")
        let martY = derived("mart-y", "integrated", ["dims", "master-c"])
        let extract = derived("extract", "self-service", ["mart-x", "mart-y"])
        let domains = raws + masters + [dims, martX, martY, extract]
        let now = Date(timeIntervalSince1970: 1_797_000_000)
        let mesh = try Mesh(
            registry: DomainRegistry(domains),
            configuration: MeshConfiguration(home: dir.url, now: { now }))
        let svg = try MeshGraph.svg(mesh: mesh)

        func attribute(_ name: String, in text: Substring) -> Double? {
            guard let range = text.range(of: "\(name)=\"") else { return nil }
            return Double(text[range.upperBound...].prefix { $0 != "\"" })
        }
        // Columns by depth, each named by its layer; the raw domains in the first.
        let layers: [Substring] = svg.components(separatedBy: "<g class=\"layer\"").dropFirst().map { Substring($0) }
        #expect(layers.count == 5)
        #expect(
            layers.first?.contains("data-members=\"14\"") == true && layers.first?.contains("raw · 14 domains") == true)
        #expect(layers.contains { $0.contains(">mastered · 4 domains<") })
        // Boxes: every domain one, each a link to its page.
        var boxes: [String: (x: Double, y: Double, w: Double, h: Double)] = [:]
        for part in svg.components(separatedBy: "<g class=\"domain\"").dropFirst() {
            let text = Substring(part)
            let id = String(text.drop { $0 != "\"" }.dropFirst().prefix { $0 != "\"" })
            let rect = try #require(text.range(of: "<rect ").map { text[$0.lowerBound...] })
            boxes[id] = (
                try #require(attribute("x", in: rect)), try #require(attribute("y", in: rect)),
                try #require(attribute("width", in: rect)), try #require(attribute("height", in: rect))
            )
        }
        #expect(boxes.count == domains.count)
        for domain in domains { #expect(svg.contains("<a href=\"/domains/\(domain.id)\"><g class=\"domain\"")) }
        // Every raw box inside the first column's box.
        let firstLayer = try #require(layers.first)
        let firstBand = try #require(firstLayer.range(of: "<rect ").map { firstLayer[$0.lowerBound...] })
        let bandY: Double = try #require(attribute("y", in: firstBand))
        let bandHeight: Double = try #require(attribute("height", in: firstBand))
        for raw in raws {
            let box = try #require(boxes[raw.id.rawValue])
            let inside = box.y >= bandY && box.y + box.h <= bandY + bandHeight
            #expect(inside, "\(raw.id) is outside the raw box")
        }
        // No edge passes through a box: no point of a path lies inside one, and the lanes run below them.
        let paths = svg.components(separatedBy: "<path class=\"edge\"").dropFirst()
        #expect(paths.count == domains.reduce(0) { $0 + $1.upstreamDomains.count })
        for path in paths {
            let start = try #require(path.range(of: " d=\""))
            let d = String(path[start.upperBound...].prefix { $0 != "\"" })
            let numbers = d.split(whereSeparator: { !"0123456789.-".contains($0) }).compactMap { Double($0) }
            let points = stride(from: 0, to: numbers.count - 1, by: 2).map { (numbers[$0], numbers[$0 + 1]) }
            for (x, y) in points {
                for (id, box) in boxes {
                    #expect(
                        !(x > box.x + 0.5 && x < box.x + box.w - 0.5 && y > box.y && y < box.y + box.h),
                        "an edge runs through \(id): \(d)")
                }
            }
            if let lane = d.range(of: " L") {
                let after = d[lane.upperBound...].split(separator: " ").first.map(String.init) ?? ""
                let y = Double(after.split(separator: ",").last ?? "") ?? -1
                let xs = (points.map(\.0).min() ?? 0, points.map(\.0).max() ?? 0)
                for (id, box) in boxes where box.x > xs.0 && box.x + box.w < xs.1 {
                    #expect(!(y >= box.y && y <= box.y + box.h), "the lane of \(d) crosses \(id)")
                }
            }
        }
        // Text at 12 units or more, in an SVG that fits a 1400 px window unscaled.
        let sizes = svg.components(separatedBy: "font-size=\"").dropFirst().compactMap {
            Double($0.prefix { $0 != "\"" })
        }
        #expect(!sizes.isEmpty && sizes.allSatisfy { $0 >= 12 })
        let width = try #require(attribute("width", in: Substring(svg)))
        #expect(width <= 1330, "the graph is \(width) wide")
        #expect(svg.contains("style=\"max-width:none\""))
        // mart-x has a daily deadline and was never built: overdue, in the box, its border and its tooltip.
        let mart = try #require(svg.components(separatedBy: "data-domain=\"mart-x\"").last)
        #expect(mart.hasPrefix(" data-status=\"never\" data-sync="))
        #expect(mart.contains("data-freshness=\"stale\" data-overdue=\"overdue since "))
        #expect(mart.prefix(1500).contains("stroke-dasharray"))
        #expect(mart.prefix(2000).contains("· overdue</text>"))
        let title = String(mart.drop { $0 != ">" }.prefix(600))
        #expect(title.contains("overdue since ") && title.contains("expected daily by 09:00 UTC"))
    }
}

func escapeHTML(_ text: String) -> String {
    text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
        .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
}
