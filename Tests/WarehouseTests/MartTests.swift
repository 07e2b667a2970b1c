import Foundation
import GRDB
import Mastering
import MeshRuntime
import MeshTestSupport
import Testing

@testable import Ingest
@testable import Warehouse

/// The marts built from the committed sample-data, the way the demo builds them.
///
///     raw-* ──▶ *-master ──▶ conformed-dims ──▶ npp-mart, physician-mart, payer-mart
///        └───────────────────────────────────────▲ (facts read raw; dimensions come from conformed-dims)
struct MartTests {
    static let sampleFeeds = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("sample-data/feeds")

    static func mesh(home: URL) throws -> Mesh {
        try ToyMesh.mesh(IngestDomains.all() + MasteringDomains.all() + WarehouseDomains.all(), home: home)
    }

    static func run(_ mesh: Mesh, asOf: String) async throws -> RunSummary {
        _ = try Landing.land(feeds: sampleFeeds, home: mesh.home, asOf: LandingDate.parse(asOf))
        let summary = try await mesh.run(RunRequest(sourceStates: try Landing.sourceStates(home: mesh.home)))
        #expect(
            summary.failed.isEmpty,
            "\(summary.outcomes.values.filter { $0.status.failed }.map { "\($0.domain): \($0.message ?? "")" })")
        return summary
    }

    @Test func martsReconcileAndANewWeekEqualsAFullRebuild() async throws {
        let dir = try TemporaryDirectory("marts")
        defer { dir.remove() }
        let mesh = try Self.mesh(home: dir.url)
        _ = try await Self.run(mesh, asOf: "2025-06-01")

        let marts: [DomainID] = ["npp-mart", "physician-mart", "payer-mart"]
        let (queue, _) = try mesh.snapshot(attaching: marts + ["raw-xponent", "physician-master"])
        try await queue.read { db in
            // TRx in the mart is the raw layer's after restatement, to the thousandth.
            let mart = try Int.fetchOne(db, sql: "SELECT SUM(trx_milli) FROM physician_mart.fact_rx_weekly") ?? 0
            let raw =
                try Int.fetchOne(db, sql: "SELECT SUM(CAST(ROUND(trx * 1000) AS INTEGER)) FROM raw_xponent.xponent")
                ?? 0
            #expect(mart == raw && raw > 0)
            // Every mastered physician, and the unknown member, is in the dimension of both marts.
            let physicians = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM physician_master.physician") ?? 0
            for mart in ["physician_mart", "payer_mart", "npp_mart"] {
                let rows = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM \(mart).dim_physician")
                #expect(rows == physicians + 1)
            }
            // The story: own-brand share of the basket grows from launch to growth.
            let share = { (from: String, to: String) in
                try Double.fetchOne(
                    db,
                    sql: """
                        SELECT 1.0 * SUM(own_trx) / SUM(market_trx) FROM physician_mart.mart_share_weekly
                        WHERE week_ending BETWEEN ? AND ?
                        """, arguments: [from, to]) ?? 0
            }
            let launch = try share("2024-01-01", "2024-03-31")
            let growth = try share("2025-01-01", "2025-05-31")
            #expect(launch > 0 && launch < 0.08 && growth > 2 * launch, "share \(launch) → \(growth)")
            // Email events are counted once although some arrive twice.
            let events = try Int.fetchOne(db, sql: "SELECT SUM(events) FROM npp_mart.fact_email_daily") ?? 0
            #expect(events > 0)
        }
        // Both marts were built from the same physician-master version, and their dimension says which.
        let versions = try marts.map { try #require(try mesh.store.currentVersion(of: $0)) }
        let master = try #require(try mesh.store.currentVersion(of: "physician-master")).version
        for version in versions { #expect(version.upstreamVersions["physician-master"] == master) }
        let (again, _) = try mesh.snapshot(attaching: ["physician-mart", "payer-mart"])
        try await again.read { db in
            for mart in ["physician_mart", "payer_mart"] {
                let stamped = try Int.fetchAll(db, sql: "SELECT DISTINCT master_version FROM \(mart).dim_physician")
                #expect(stamped == [master])
            }
        }

        try await Self.expectPartitionFiltersSeekTheRawIndexes(mesh)

        // One more week of deliveries: the facts rebuild a few partitions, and the result is what a full rebuild gives.
        let week = try await Self.run(mesh, asOf: "2025-06-08")
        for mart in marts { #expect(week.outcomes[mart]?.status == .success, "\(mart)") }
        let run = try #require(try mesh.store.runs(limit: 1).first)
        let steps = try mesh.store.steps(of: "physician-mart", in: run.runID)
        let rx = try #require(steps.first { $0.step == "rx" }?.message)
        // Xponent's changes come from raw-xponent's change log, not from comparing every week's rows.
        #expect(
            rx.contains(
                "partition(s) rebuilt on the previous version (changes of raw_xponent.xponent read from their log)"),
            "\(rx)")
        // And the prescriber mapping's from physician-master's cross-walk log, not from the whole cross-walk.
        #expect(rx.hasSuffix("; mapping prescriber compared for the ids its input's log names"), "\(rx)")
        // Part D's side is not recomputed: neither raw Part D nor the master's NPPES cross-walk rows changed.
        let partD = try #require(steps.first { $0.step == "reconcile_partd" }?.message)
        #expect(
            partD.hasSuffix("raw_partd.partd and physician_master.physician_xref unchanged for it since then"),
            "\(partD)")
        // The tests the previous version passed checked only what changed (the equality below proves the result).
        let tests = try mesh.store.testResults(of: "physician-mart", run: run.runID)
        for name in [
            "trx_reconciles_to_raw_xponent", "relationship(fact_rx_weekly.physician_key → dim_physician.physician_key)",
        ] {
            let result = try #require(tests.first { $0.test == name }, "\(name)")
            #expect(
                result.status == .pass && result.message.contains("rows changed since the previous version"),
                "\(name): \(result.message)")
        }
        let rebuilt = Int(rx.split(separator: " ")[1]) ?? 0
        // The new week and the 4 it restates, plus the weeks of any prescriber the master re-pointed: not all 74.
        #expect(rebuilt >= 5 && rebuilt < 30, "\(rx)")
        let incremental = try marts.map { try #require(try mesh.store.currentVersion(of: $0)) }

        _ = try await mesh.run(RunRequest(only: Set(marts), force: Set(marts), fullRefresh: true))
        for (mart, before) in zip(marts, incremental) {
            let full = try #require(try mesh.store.currentVersion(of: mart))
            #expect(full.version == before.version + 1, "\(mart)")
            #expect(full.fingerprint == before.fingerprint, "\(mart): incremental and full builds differ")
        }
        try await Self.expectSummaryPercentiles(mesh)
    }

    /// The facts over raw tables keyed by an event id find their touched partitions through the raw layer's
    /// indexes: each fact's incremental SELECT, planned on the published raw versions, searches an index of
    /// its raw table instead of reading every row. An index whose expression differs from the fact's partition
    /// expression by a character, or a planner that prefers another index, fails here.
    static func expectPartitionFiltersSeekTheRawIndexes(_ mesh: Mesh) async throws {
        let (queue, _) = try mesh.snapshot(attaching: [
            "raw-claims", "raw-crm_calls", "raw-email_events", "raw-web_sessions", "physician-master",
            "payer-master", "conformed-dims",
        ])
        let facts = [
            PhysicianMart.claims, PhysicianMart.calls, PayerMart.planClaims, NPPMart.email, NPPMart.web,
            NPPMart.engagement, NPPMart.hcpWeekly,
        ]
        try await queue.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA query_only = 0; CREATE TEMP TABLE touched (p PRIMARY KEY)")
            for fact in facts {
                let insert = try fact.renderedInsert(touched: "temp.touched")
                let select = try #require(insert.range(of: "SELECT").map { insert[$0.lowerBound...] })
                let plan = try GRDB.Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN \(select)").map { $0["detail"] as String }
                let raw = try #require(fact.sources.first?.table.split(separator: ".").last)
                #expect(plan.contains { $0.contains("USING INDEX \(raw)_index_") }, "\(fact.table): \(plan)")
            }
        }
        // The indexes the facts declare are built by the raw domains under the names and in the order they
        // had when Ingest listed them itself (the order of the consumers, then of their recipes).
        try await queue.read { db in
            let indexes = try GRDB.Row.fetchAll(
                db,
                sql: """
                    SELECT name, sql FROM raw_claims.sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND name GLOB '*_index_[0-9]*'
                    UNION ALL
                    SELECT name, sql FROM raw_email_events.sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND name GLOB '*_index_[0-9]*'
                    ORDER BY name
                    """
            ).map { "\($0["name"] as String): \($0["sql"] as String)" }
            #expect(
                indexes == [
                    "claims_index_1: CREATE INDEX claims_index_1 ON claims (date(fill_date, 'weekday 5'))",
                    "claims_index_2: CREATE INDEX claims_index_2 ON claims (prescriber_npi)",
                    "email_events_index_1: CREATE INDEX email_events_index_1 ON email_events (substr(ts, 1, 10))",
                    "email_events_index_2: CREATE INDEX email_events_index_2 ON email_events (date(substr(ts, 1, 10), 'weekday 5'))",
                    "email_events_index_3: CREATE INDEX email_events_index_3 ON email_events (campaign_id)",
                ])
        }
        // raw-xponent's warn test counts its flagged rows through the partial index that holds only them.
        let (xponent, _) = try mesh.snapshot(attaching: ["raw-xponent"])
        try await xponent.read { db in
            let test = try #require(
                IngestDomains.extraTests["xponent"]?.compactMap { $0 as? CustomSQLTest }.first {
                    $0.name == "trx_below_nrx_flagged"
                })
            let plan = try GRDB.Row.fetchAll(
                db,
                sql:
                    "EXPLAIN QUERY PLAN \(test.sql.replacingOccurrences(of: "FROM xponent", with: "FROM raw_xponent.xponent"))"
            ).map { $0["detail"] as String }
            #expect(plan.contains { $0.contains("INDEX xponent_index_1") }, "\(plan)")
        }
    }

    /// marts.md's reconciliation summary, recomputed here from the reconciliation rows: per period the row
    /// count and the 10th, 50th and 90th percentiles of the per-row ratio, by nearest rank.
    static func expectSummaryPercentiles(_ mesh: Mesh) async throws {
        let (queue, _) = try mesh.snapshot(attaching: ["physician-mart"])
        try await queue.read { db in
            let sources = [
                (
                    "claims_vs_xponent",
                    """
                    SELECT substr(week_ending, 1, 7), CASE WHEN xponent_trx > 0 THEN ROUND(claims_net / xponent_trx, 6) END
                    FROM physician_mart.reconciliation_rx_claims
                    """
                ),
                (
                    "partd_vs_xponent",
                    """
                    SELECT CAST(year AS TEXT), partd_share FROM physician_mart.reconciliation_partd
                    WHERE partd_claims IS NOT NULL
                    """
                ),
            ]
            for (comparison, sql) in sources {
                var rows: [String: Int] = [:]
                var ratios: [String: [Double]] = [:]
                for row in try Row.fetchAll(db, sql: sql) {
                    let period: String = row[0]
                    rows[period, default: 0] += 1
                    if let ratio: Double = row[1] { ratios[period, default: []].append(ratio) }
                }
                let published = try Row.fetchAll(
                    db,
                    sql: """
                        SELECT period, rows, p10, p50, p90 FROM physician_mart.reconciliation_summary
                        WHERE comparison = ? ORDER BY period
                        """, arguments: [comparison])
                #expect(published.map { $0["period"] as String } == rows.keys.sorted(), "\(comparison)")
                #expect(!published.isEmpty, "\(comparison)")
                for row in published {
                    let period: String = row["period"]
                    #expect(row["rows"] == rows[period], "\(comparison) \(period)")
                    let sorted = (ratios[period] ?? []).sorted()
                    for (column, p) in [("p10", 10), ("p50", 50), ("p90", 90)] {
                        let rank = max(1, (sorted.count * p + 99) / 100)
                        let expected = sorted.isEmpty ? nil : sorted[rank - 1]
                        #expect(row[column] as Double? == expected, "\(comparison) \(period) \(column)")
                    }
                }
            }
        }
    }

    @Test func aNewPartDYearReachesTheReconciliationAsAFullRebuildWould() async throws {
        let dir = try TemporaryDirectory("marts")
        defer { dir.remove() }
        let mesh = try Self.mesh(home: dir.url)
        _ = try await Self.run(mesh, asOf: "2025-05-10")
        // The week of the 2025-05-15 Part D file (data year 2024): Xponent restates only recent weeks of 2025, so no
        // fact partition of 2024 is touched; the reconciliation must notice Part D's side changed.
        _ = try await Self.run(mesh, asOf: "2025-05-17")
        let (queue, _) = try mesh.snapshot(attaching: ["physician-mart", "raw-partd"])
        let years = try await queue.read { db in
            (
                try Int.fetchAll(db, sql: "SELECT DISTINCT data_year FROM raw_partd.partd ORDER BY 1"),
                try Int.fetchAll(db, sql: "SELECT DISTINCT year FROM physician_mart.reconciliation_partd ORDER BY 1")
            )
        }
        #expect(!years.0.isEmpty && years.1 == years.0)
        let incremental = try #require(try mesh.store.currentVersion(of: "physician-mart"))
        _ = try await mesh.run(RunRequest(only: ["physician-mart"], force: ["physician-mart"], fullRefresh: true))
        let full = try #require(try mesh.store.currentVersion(of: "physician-mart"))
        #expect(full.tableDigests["reconciliation_partd"] == incremental.tableDigests["reconciliation_partd"])
        #expect(full.fingerprint == incremental.fingerprint)
    }

    @Test func everyPublicColumnHasADictionaryEntry() {
        for domain in WarehouseDomains.all() {
            for output in domain.outputs {
                #expect(!output.description.isEmpty, "\(domain.id).\(output.table)")
                for column in output.columns {
                    #expect(!column.description.isEmpty, "\(domain.id).\(output.table).\(column.name)")
                }
            }
        }
    }
}
