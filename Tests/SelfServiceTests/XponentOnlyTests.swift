import Foundation
import GRDB
import Ingest
import Mastering
import MeshRuntime
import MeshTestSupport
import Testing
import Warehouse

@testable import SelfService

/// A mesh fed only Xponent (and the product list): a brand team's first weeks, before NPPES or AMA. Every
/// prescriber id is a provisional physician, so it keeps its own rows and its own decile.
///
///     raw-xponent ──▶ physician-master ──▶ conformed-dims ──▶ physician-mart ──▶ field-extracts
struct XponentOnlyTests {
    static func write(_ root: URL, _ feed: String, _ date: String, _ file: String, _ text: String) throws {
        let folder = root.appendingPathComponent("\(feed)/\(date)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try text.write(to: folder.appendingPathComponent(file), atomically: true, encoding: .utf8)
    }

    @Test func everyPrescriberKeepsItsRowsAndItsDecile() async throws {
        let dir = try TemporaryDirectory("xponent-only")
        defer { dir.remove() }
        let feeds = dir.url.appendingPathComponent("feeds")
        try Self.write(
            feeds, "products", "2024-01-01", "products.csv",
            """
            NDC11,BRAND_NAME,GENERIC_NAME,MARKET,MANUFACTURER,IS_OWN_BRAND,LAUNCH_DATE,WAC_PER_UNIT,UNITS_PER_PACK
            50090123401,ZENTAVIA,ZENTAPRAZOLE,ACID_SUPPRESSION_RX,ZENTA PHARMACEUTICALS,Y,2024-01-15,14.2500,30
            00071455010,ACIDREX,ACIDOPRAZOLE,ACID_SUPPRESSION_RX,NORTHBRIDGE LABS,N,2016-04-01,11.8000,30

            """)
        // Four prescribers (an NPI, an ME number, both, neither) × two products × two weeks.
        let ids = [
            ("XP1", "1234567893", ""), ("XP2", "", "03501234567"), ("XP3", "1245319599", "03509999999"),
            ("XP4", "", ""),
        ]
        var lines = ["PRESCRIBER_ID,NPI,ME_NUMBER,PRODUCT_NDC11,WEEK_ENDING,NRX,TRX,NQTY,TQTY"]
        for (n, (id, npi, me)) in ids.enumerated() {
            for week in ["2024-01-12", "2024-01-19"] {
                for ndc in ["50090123401", "00071455010"] {
                    lines.append("\(id),\(npi),\(me),\(ndc),\(week),1,\(n + 1),30,\(30 * (n + 1))")
                }
            }
        }
        try Self.write(feeds, "xponent", "2024-01-22", "xponent.csv", lines.joined(separator: "\n") + "\n")
        let home = dir.url.appendingPathComponent("home")
        let mesh = try ToyMesh.mesh(
            IngestDomains.all() + MasteringDomains.all() + WarehouseDomains.all() + SelfServiceDomains.all(),
            home: home)
        _ = try Landing.land(feeds: feeds, home: home)
        let summary = try await mesh.run(RunRequest(sourceStates: try Landing.sourceStates(home: home)))
        for domain in ["physician-master", "conformed-dims", "physician-mart", "field-extracts"] {
            #expect(
                summary.outcomes[DomainID(domain)]?.status.published == true,
                "\(domain): \(summary.outcomes[DomainID(domain)]?.message ?? "not run")")
        }
        let (queue, _) = try mesh.snapshot(attaching: ["physician-mart", "field-extracts", "physician-master"])
        try await queue.read { db in
            let facts = try Row.fetchAll(
                db, sql: "SELECT physician_key, product_key, week_ending, trx FROM physician_mart.fact_rx_weekly")
            #expect(facts.count == 4 * 2 * 2)
            #expect(facts.allSatisfy { ($0[0] as Int) != 0 && ($0[1] as Int) != 0 })
            #expect(Set(facts.map { $0[0] as Int }).count == 4)
            let deciles = try Row.fetchAll(
                db,
                sql: "SELECT physician_id, trx_13wk, decile FROM field_extracts.physician_deciles WHERE trx_13wk > 0")
            #expect(deciles.count == 4)
            #expect(deciles.allSatisfy { ($0[2] as Int) >= 1 })
            let statuses = try String.fetchAll(
                db, sql: "SELECT DISTINCT status FROM physician_master.physician")
            #expect(statuses == ["provisional"])
            // The marts' dimension tells them apart from registered physicians.
            let types = try Row.fetchAll(
                db,
                sql: "SELECT DISTINCT status, provider_type FROM physician_mart.dim_physician WHERE physician_key <> 0")
            #expect(types.map { "\($0[0] as String) \($0[1] as String)" } == ["provisional unknown"])
        }
    }
}
