import Foundation
import Ingest
import Mastering
import MeshRuntime
import MeshTestSupport
import SelfService
import Testing
import Warehouse

/// `docs/analyst-guide.md` is executable: every ```sql block runs through the query engine on a mesh built
/// from sample-data, returns rows, shows the columns its result excerpt shows, and the queries that tell the
/// brand story tell it.
struct AnalystGuideTests {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let guide = root.appendingPathComponent("docs/analyst-guide.md")
    static let sampleFeeds = root.appendingPathComponent("sample-data/feeds")

    /// One fenced `sql` block, the heading above it, and the header of the result excerpt below it.
    struct Block {
        var heading: String
        var sql: String
        var excerptColumns: [String]?
    }

    static func blocks(in markdown: String) -> [Block] {
        var blocks: [Block] = []
        var heading = ""
        var sql: [String]?
        var awaitingExcerpt = false
        for line in markdown.components(separatedBy: "\n") {
            if var lines = sql {
                if line == "```" {
                    blocks.append(Block(heading: heading, sql: lines.joined(separator: "\n"), excerptColumns: nil))
                    sql = nil
                    awaitingExcerpt = true
                } else {
                    lines.append(line)
                    sql = lines
                }
            } else if line == "```sql" {
                sql = []
            } else if line.hasPrefix("#") {
                heading = line.drop { $0 == "#" }.trimmingCharacters(in: .whitespaces)
                awaitingExcerpt = false
            } else if awaitingExcerpt, line.hasPrefix("| ") {
                blocks[blocks.count - 1].excerptColumns = line.split(separator: "|")
                    .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
                awaitingExcerpt = false
            } else if line.hasPrefix("```") {
                awaitingExcerpt = false
            }
        }
        return blocks
    }

    /// A query result addressed by column name.
    struct Table {
        var result: QueryResult

        var count: Int { result.rows.count }
        func value(_ row: Int, _ column: String) -> QueryValue {
            guard let index = result.columns.firstIndex(of: column) else {
                Issue.record("no column \(column) in \(result.columns)")
                return .null
            }
            return result.rows[row][index]
        }
        func number(_ row: Int, _ column: String) -> Double {
            switch value(row, column) {
            case .integer(let v): return Double(v)
            case .real(let v): return v
            default: return .nan
            }
        }
        func text(_ row: Int, _ column: String) -> String { value(row, column).description }
        /// The sum of a column over the rows whose `key` column starts with `prefix`.
        func sum(_ column: String, where key: String, hasPrefix prefix: String) -> Double {
            (0..<count).filter { text($0, key).hasPrefix(prefix) }.map { number($0, column) }.reduce(0, +)
        }
        func rows(where column: String, is value: String) -> [Int] {
            (0..<count).filter { text($0, column) == value }
        }
    }

    @Test func everyPublicMartTableIsDocumentedWithItsColumns() throws {
        let text = try String(contentsOf: Self.guide, encoding: .utf8)
        for domain in WarehouseDomains.all() {
            for port in domain.outputs {
                #expect(text.contains("#### `\(port.table)`"), "\(domain.id): \(port.table) has no section")
                for column in port.columns {
                    #expect(
                        text.contains("| `\(column.name)` | \(column.type) |"),
                        "\(domain.id).\(port.table).\(column.name) is not in the guide")
                }
            }
        }
    }

    @Test func everyQueryRunsOnSampleDataAndTellsTheStory() async throws {
        let blocks = Self.blocks(in: try String(contentsOf: Self.guide, encoding: .utf8))
        #expect(blocks.count >= 12, "the guide has \(blocks.count) sql blocks")

        let dir = try TemporaryDirectory("analyst-guide")
        defer { dir.remove() }
        let mesh = try ToyMesh.mesh(
            IngestDomains.all() + MasteringDomains.all() + WarehouseDomains.all() + SelfServiceDomains.all(),
            home: dir.url)
        _ = try Landing.land(feeds: Self.sampleFeeds, home: mesh.home)
        let summary = try await mesh.run(RunRequest(sourceStates: try Landing.sourceStates(home: mesh.home)))
        try #require(summary.failed.isEmpty, "the sample mesh did not build: \(summary.failed)")

        var results: [(heading: String, table: Table)] = []
        for block in blocks {
            do {
                let result = try mesh.query(block.sql)
                #expect(!result.rows.isEmpty, "'\(block.heading)' returned no row")
                if let shown = block.excerptColumns {
                    #expect(shown == result.columns, "'\(block.heading)': the excerpt shows other columns")
                } else {
                    Issue.record("'\(block.heading)' has no result excerpt")
                }
                results.append((block.heading, Table(result: result)))
            } catch {
                Issue.record("'\(block.heading)' failed: \(error)")
            }
        }
        func query(_ heading: String) throws -> Table {
            try #require(results.first { $0.heading.contains(heading) }?.table, "no query '\(heading)' ran")
        }

        // 1. Share in the growth year is well above the launch months'.
        let share = try query("Brand share")
        let launch =
            (1...6).map { share.sum("own_trx", where: "month", hasPrefix: "2024-0\($0)") }.reduce(0, +)
            / (1...6).map { share.sum("market_trx", where: "month", hasPrefix: "2024-0\($0)") }.reduce(0, +)
        let growth =
            share.sum("own_trx", where: "month", hasPrefix: "2025")
            / share.sum("market_trx", where: "month", hasPrefix: "2025")
        #expect(launch > 0 && launch < 0.08 && growth > 2 * launch, "share \(launch) → \(growth)")

        // 2. Ten deciles writing about a tenth of volume each; decile 10 has the fewest physicians.
        let deciles = try query("Prescriber deciles")
        #expect(deciles.count == 10)
        #expect(Set((0..<deciles.count).map { Int(deciles.number($0, "decile")) }) == Set(1...10))
        let physicians = Dictionary(
            uniqueKeysWithValues: (0..<deciles.count).map {
                (Int(deciles.number($0, "decile")), deciles.number($0, "physicians"))
            })
        #expect(physicians[10] == physicians.values.min() && physicians[1] == physicians.values.max())
        for row in 0..<deciles.count {
            #expect((0.07...0.13).contains(deciles.number(row, "volume_share")))
        }

        // 3. The field reaches the top deciles far more than the tail.
        let reach = try query("Call reach")
        let tail = try #require(reach.rows(where: "decile_group", is: "1-6").first)
        for top in ["10", "9", "8"] {
            let row = try #require(reach.rows(where: "decile_group", is: top).first)
            #expect(reach.number(row, "reach") > 2 * reach.number(tail, "reach"))
        }

        // 4. Open access grows from launch to the end of growth in every territory.
        let access = try query("Market access by territory")
        for row in access.rows(where: "month", is: "2024-06") {
            let territory = access.text(row, "territory_id")
            let later = try #require(
                (0..<access.count).first {
                    access.text($0, "territory_id") == territory && access.text($0, "month") == "2025-12"
                })
            #expect(access.number(later, "access_pct") > access.number(row, "access_pct"))
        }

        // 5. Gross-to-net rises from launch to maturity.
        let rebates = try query("Gross-to-net by quarter")
        let gtn = { (year: String) in
            rebates.sum("rebate_amount", where: "quarter", hasPrefix: year)
                / rebates.sum("wac_amount", where: "quarter", hasPrefix: year)
        }
        #expect(gtn("2024") > 0.05 && gtn("2026") > gtn("2024") + 0.1, "gross-to-net \(gtn("2024")) → \(gtn("2026"))")

        // 6. Medicaid contracts cost more than commercial ones.
        let plans = try query("Gross-to-net by plan")
        let channel = { (name: String) in
            let rows = plans.rows(where: "channel", is: name)
            return rows.map { plans.number($0, "rebate_amount") }.reduce(0, +)
                / rows.map { plans.number($0, "wac_amount") }.reduce(0, +)
        }
        #expect(channel("MEDICAID") > channel("COMMERCIAL"))

        // 7. Email open rates of 10–40%, click rates of 1–10%, for both audiences.
        let funnel = try query("email funnel")
        #expect(Set((0..<funnel.count).map { funnel.text($0, "audience") }) == ["CONSUMER", "HCP"])
        for row in 0..<funnel.count {
            #expect((0.10...0.40).contains(funnel.number(row, "open_rate")))
            #expect((0.01...0.10).contains(funnel.number(row, "click_rate")))
            #expect(funnel.number(row, "delivered") <= funnel.number(row, "sent"))
        }

        // 8. Sign-ups are a small fraction of sessions, every month of the three years.
        let web = try query("copay-card sign-ups")
        #expect(web.count == 36)
        for row in 0..<web.count {
            #expect(
                web.number(row, "copay_signups") > 0 && web.number(row, "copay_signups") < web.number(row, "sessions"))
        }

        // 9. PA rejections (code 75) in maturity exceed launch's.
        let rejections = try query("Prior-authorisation rejections")
        let pa2024 = rejections.sum("rejected_pa", where: "quarter", hasPrefix: "2024")
        let pa2026 = rejections.sum("rejected_pa", where: "quarter", hasPrefix: "2026")
        #expect(pa2024 > 0 && pa2026 > pa2024, "PA rejections \(pa2024) → \(pa2026)")

        // 10. NRx never exceeds TRx, and NRx share leads TRx share while the brand grows.
        let momentum = try query("NRx versus TRx")
        for row in 0..<momentum.count {
            #expect(momentum.number(row, "own_nrx") <= momentum.number(row, "own_trx"))
        }
        let leading = (0..<momentum.count).filter {
            momentum.text($0, "quarter") < "2026" && momentum.number($0, "nrx_share") > momentum.number($0, "trx_share")
        }
        #expect(leading.count >= 6, "NRx share led TRx share in \(leading.count) quarters of 2024–2025")

        // 11. Part D and Xponent agree within a factor of two; claims cover a sample of the market.
        let reconciliation = try query("Xponent against claims")
        for row in reconciliation.rows(where: "comparison", is: "partd_vs_xponent") {
            #expect((0.5...2.0).contains(reconciliation.number(row, "ratio")))
        }
        for row in reconciliation.rows(where: "comparison", is: "claims_vs_xponent")
        where reconciliation.number(row, "rows") >= 100 {
            #expect((0.05...1.0).contains(reconciliation.number(row, "ratio")))
        }

        // 12. The status mix adds up, and open access is won between launch and the end of 2025.
        let formulary = try query("Formulary status mix")
        for row in 0..<formulary.count {
            let total = ["not_covered", "restricted", "open_access"].map { formulary.number(row, $0) }.reduce(0, +)
            #expect(abs(total - 1) < 0.001, "\(formulary.text(row, "month")) adds up to \(total)")
        }
        let firstOpen = try #require(formulary.rows(where: "month", is: "2024-03").first)
        let lastOpen = try #require(formulary.rows(where: "month", is: "2025-12").first)
        #expect(formulary.number(lastOpen, "open_access") > formulary.number(firstOpen, "open_access") + 0.3)

        // 13. Physicians never emailed have the lowest brand share.
        let engagement = try query("HCP email engagement")
        let notEmailed = try #require(engagement.rows(where: "engagement", is: "not emailed").first)
        #expect(
            (0..<engagement.count).allSatisfy {
                engagement.number($0, "share") >= engagement.number(notEmailed, "share")
            })

        // 14. Unresolved plan keys carry claims, but only a few percent of them in all.
        let unresolved = try query("Unresolved plan keys")
        let unresolvedShare = (0..<unresolved.count).map { unresolved.number($0, "share_of_claims") }.reduce(0, +)
        #expect(unresolvedShare > 0 && unresolvedShare < 0.10)

        // 15. The generic is in the basket in 2026 only.
        let brands = try query("Competitive TRx")
        let generic = brands.rows(where: "brand", is: "ACIDOPRAZOLE")
        #expect(!generic.isEmpty && generic.allSatisfy { brands.text($0, "year") == "2026" })
    }
}
