import Foundation
import GRDB
import Ingest
import Mastering
import MeshRuntime
import MeshTestSupport
import Testing
import Warehouse

@testable import SelfService

/// The extracts built on the sample mesh.
///
///     physician-mart, payer-mart, npp-mart ──▶ field-extracts ──▶ brand-extracts
struct ExtractTests {
    static let sampleFeeds = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("sample-data/feeds")

    static func mesh(home: URL, asOf: String) async throws -> Mesh {
        let mesh = try ToyMesh.mesh(
            IngestDomains.all() + MasteringDomains.all() + WarehouseDomains.all() + SelfServiceDomains.all(),
            home: home)
        _ = try Landing.land(feeds: sampleFeeds, home: home, asOf: LandingDate.parse(asOf))
        let summary = try await mesh.run(RunRequest(sourceStates: try Landing.sourceStates(home: home)))
        #expect(
            summary.failed.isEmpty,
            "\(summary.outcomes.values.filter { $0.status.failed }.map { "\($0.domain): \($0.message ?? "")" })")
        return mesh
    }

    /// marts.md's standard definition, computed here independently of the SQL that publishes it.
    static func expectedDeciles(volumes: [Int: Int], groups: Int) -> [Int: Int] {
        let total = volumes.values.reduce(0, +)
        var result: [Int: Int] = [:]
        var before = 0
        for (physician, volume) in volumes.sorted(by: { ($0.value, -$0.key) > ($1.value, -$1.key) }) {
            result[physician] = min(groups, max(1, groups - (before * groups) / total))
            before += volume
        }
        return result
    }

    @Test func decilesFollowTheStandardDefinitionAndFilesMatchTheirManifest() async throws {
        let dir = try TemporaryDirectory("extracts")
        defer { dir.remove() }
        let mesh = try await Self.mesh(home: dir.url, asOf: "2025-09-30")
        let (queue, versions) = try mesh.snapshot(attaching: ["field-extracts", "physician-mart"])
        try await queue.read { db in
            let asOf = try #require(
                try String.fetchOne(db, sql: "SELECT MAX(week_ending) FROM physician_mart.fact_rx_weekly"))
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT f.physician_key, SUM(f.trx_milli) AS milli FROM physician_mart.fact_rx_weekly f
                    WHERE f.physician_key <> 0 AND f.week_ending > date(?, '-91 days') AND f.week_ending <= ?
                    GROUP BY 1 HAVING SUM(f.trx_milli) > 0
                    """, arguments: [asOf, asOf])
            let volumes = Dictionary(uniqueKeysWithValues: rows.map { ($0[0] as Int, $0[1] as Int) })
            let expected = Self.expectedDeciles(volumes: volumes, groups: 10)
            let published = try Row.fetchAll(
                db, sql: "SELECT physician_id, decile, as_of_week FROM field_extracts.physician_deciles")
            #expect(published.count > expected.count)  // non-writers are listed with decile 0
            var mismatches = 0
            for row in published {
                let physician: Int = row["physician_id"]
                if (row["decile"] as Int) != (expected[physician] ?? 0) { mismatches += 1 }
                #expect((row["as_of_week"] as String) == asOf)
            }
            #expect(mismatches == 0)
            #expect(Set(expected.values) == Set(1...10))
        }

        // The files: CSV and SQLite per table, each with its hash in the manifest, which names the run and inputs.
        let folder = ExtractExport.folder(home: dir.url, domain: "field-extracts").appendingPathComponent("current")
        let manifest =
            try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("manifest.json")))
            as! [String: Any]
        let version = try #require(try mesh.store.currentVersion(of: "field-extracts"))
        #expect(manifest["mesh_run"] as? String == version.runID.rawValue)
        #expect(manifest["version"] as? Int == versions["field-extracts"]?.version)
        let inputs = manifest["inputs"] as? [String: Int] ?? [:]
        for mart in ["physician-mart", "payer-mart", "npp-mart"] {
            #expect(inputs[mart] == (try mesh.store.currentVersion(of: DomainID(mart))?.version), "\(mart)")
        }
        let tables = try #require(manifest["tables"] as? [String: [String: Any]])
        #expect(Set(tables.keys) == ["physician_deciles", "call_plan", "territory_scorecard"])
        for (table, entry) in tables {
            let files = try #require(entry["files"] as? [String: String])
            for (file, hash) in files {
                #expect(try Fingerprint.sha256Hex(fileAt: folder.appendingPathComponent(file)) == hash, "\(file)")
            }
            let csv = try String(contentsOf: folder.appendingPathComponent("\(table).csv"), encoding: .utf8)
            #expect(csv.split(separator: "\n").count == (entry["rows"] as? Int ?? -1) + 1, "\(table)")
            let standalone = try DatabaseQueue(path: folder.appendingPathComponent("\(table).sqlite").path)
            let count = try await standalone.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM \(table)") }
            #expect(count == entry["rows"] as? Int, "\(table)")
        }

        // Five groups with the call plan's default minimum group (8): contradictory, so a failed test and no
        // new version.
        let contradictory = try await mesh.run(RunRequest(parameters: ["field-extracts": ["groups": "5"]]))
        #expect(contradictory.outcomes["field-extracts"]?.status == .fail)
        #expect(
            contradictory.outcomes["field-extracts"]?.message?.contains("call_plan_min_decile_within_groups") == true)
        // A variation of the parameters: five groups over a four-week window, recorded in the manifest.
        _ = try await mesh.run(
            RunRequest(
                parameters: ["field-extracts": ["groups": "5", "window_weeks": "4", "call_plan_min_decile": "4"]]))
        let (again, _) = try mesh.snapshot(attaching: ["field-extracts"])
        let deciles = try await again.read {
            try Int.fetchAll($0, sql: "SELECT DISTINCT decile FROM field_extracts.physician_deciles ORDER BY 1")
        }
        #expect(deciles == [0, 1, 2, 3, 4, 5])
        let rerun =
            try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("manifest.json")))
            as! [String: Any]
        #expect((rerun["parameters"] as? [String: String])?["groups"] == "5")
    }

    @Test func trackersTellTheLifecycle() async throws {
        let dir = try TemporaryDirectory("trackers")
        defer { dir.remove() }
        let mesh = try await Self.mesh(home: dir.url, asOf: "2026-12-31")
        let (queue, _) = try mesh.snapshot(attaching: ["brand-extracts"])
        try await queue.read { db in
            let launch = try Row.fetchAll(db, sql: "SELECT * FROM brand_extracts.launch_tracker ORDER BY week_ending")
            #expect(launch.count == 26)
            #expect((launch.first?["weeks_since_launch"] as Int?) == 0)
            let spend = launch.compactMap { $0["media_spend_usd"] as Double? }.reduce(0, +)
            #expect(spend > 0)
            let early =
                try Double.fetchOne(
                    db, sql: "SELECT AVG(share) FROM brand_extracts.growth_tracker WHERE weeks_since_launch < 40") ?? 0
            let late =
                try Double.fetchOne(
                    db, sql: "SELECT AVG(share) FROM brand_extracts.growth_tracker WHERE weeks_since_launch >= 90") ?? 0
            #expect(late > early, "share \(early) → \(late)")
            let gtn = try Row.fetchAll(
                db,
                sql: """
                    SELECT MIN(gross_to_net_pct) AS low, MAX(gross_to_net_pct) AS high, SUM(rejected_pa) AS pa
                    FROM brand_extracts.access_tracker
                    """)
            #expect((gtn.first?["pa"] as Int?) ?? 0 > 0)
            #expect(((gtn.first?["high"] as Double?) ?? 0) >= 0.25)
        }
    }
}
