import Foundation
import Ingest
import Mastering
import MeshPostgres
import MeshRuntime
import MeshTestSupport
import SelfService
import Testing
import Warehouse

/// The marts and extracts of the sample data, built once and served by both engines: the same rows, the
/// same test outcomes, the same answers to analysts' SQL, and the same sync verdicts.
struct PostgresMartTests {
    static let sampleFeeds = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("sample-data/feeds")

    static func run(_ mesh: Mesh, asOf: String) async throws {
        _ = try Landing.land(feeds: sampleFeeds, home: mesh.home, asOf: LandingDate.parse(asOf))
        let summary = try await mesh.run(RunRequest(sourceStates: try Landing.sourceStates(home: mesh.home)))
        #expect(
            summary.failed.isEmpty,
            "\(summary.outcomes.values.filter { $0.status.failed }.map { "\($0.domain): \($0.message ?? "")" })")
    }

    /// Queries an analyst would write, in SQL both engines read the same way.
    static let analystQueries = [
        """
        SELECT p.brand, SUM(f.trx_milli) AS trx_milli, SUM(f.nrx) AS nrx, COUNT(*) AS cells
        FROM physician_mart.fact_rx_weekly f JOIN physician_mart.dim_product p ON p.product_key = f.product_key
        GROUP BY p.brand ORDER BY p.brand
        """,
        """
        SELECT d.specialty, COUNT(DISTINCT f.physician_key) AS writers
        FROM physician_mart.fact_rx_weekly f JOIN physician_mart.dim_physician d ON d.physician_key = f.physician_key
        GROUP BY d.specialty ORDER BY writers DESC, d.specialty LIMIT 10
        """,
        """
        SELECT week_ending, SUM(own_trx) AS own_trx, SUM(market_trx) AS market_trx
        FROM physician_mart.mart_share_weekly GROUP BY week_ending ORDER BY week_ending
        """,
        """
        SELECT month, SUM(lives_covered) AS covered, SUM(lives_total) AS total
        FROM payer_mart.mart_access_by_territory GROUP BY month ORDER BY month
        """,
        """
        SELECT channel, SUM(impressions) AS impressions, COUNT(*) AS weeks
        FROM npp_mart.fact_media_weekly GROUP BY channel ORDER BY channel
        """,
        "SELECT COUNT(*) AS physicians FROM conformed_dims.dim_physician",
    ]

    /// Equal rows; sums of reals may differ in the last bits, as the engines add them in different orders.
    static func same(_ a: [[QueryValue]], _ b: [[QueryValue]]) -> Bool {
        guard a.count == b.count else { return false }
        for (left, right) in zip(a, b) {
            guard left.count == right.count else { return false }
            for (x, y) in zip(left, right) {
                switch (x, y) {
                case let (.real(p), .real(q)):
                    guard abs(p - q) <= 1e-9 * max(1, abs(p), abs(q)) else { return false }
                default:
                    guard x == y else { return false }
                }
            }
        }
        return true
    }

    @Test func martsServedByBothEnginesAgree() async throws {
        let dir = try TemporaryDirectory("pg-marts")
        defer { dir.remove() }
        let database = try await TestServer.database()
        let engine = try database.engine(layers: ["integrated", "self-service"])
        let base = try ToyMesh.mesh(
            IngestDomains.all() + MasteringDomains.all() + WarehouseDomains.all() + SelfServiceDomains.all(),
            home: dir.url)
        var configuration = base.configuration
        configuration.servingEngines = [engine]
        let mesh = try Mesh(registry: base.registry, configuration: configuration)

        for asOf in ["2025-03-01", "2025-03-15"] {
            try await Self.run(mesh, asOf: asOf)
            let served = try await engine.served()
            let current = try mesh.store.currentVersions()
            let expected: Set<DomainID> = [
                "conformed-dims", "npp-mart", "physician-mart", "payer-mart", "field-extracts", "brand-extracts",
            ]
            #expect(Set(served.keys) == expected)
            // The same versions, and the same sync verdict: the served marts agree on every shared upstream
            // (physician-master above all).
            for id in expected { #expect(served[id]?.fingerprint == current[id]?.fingerprint, "\(id)") }
            #expect(SyncCheck.conflicts(among: served).isEmpty)

            // Every served table holds exactly the build's rows: digests read back from PostgreSQL's views.
            for (id, record) in served {
                for (table, digest) in record.tableDigests {
                    let copy = try await engine.withConnection { connection in
                        try await TableCopy.digest(
                            table: table, in: id.schemaName, on: connection, logger: TestServer.logger)
                    }
                    #expect(copy.rowCount == record.rowCounts[table], "\(id).\(table)")
                    #expect(copy.digest == digest, "\(id).\(table)")
                }
            }

            // The domains' own tests give the same outcome on both engines.
            let comparisons = try await engine.checkTests(mesh)
            let ran = comparisons.filter { $0.postgresql != nil }
            #expect(ran.count >= 50)
            for comparison in comparisons where !comparison.agrees {
                Issue.record(
                    "\(comparison.domain) \(comparison.test): sqlite \(comparison.sqlite ?? "-") vs postgresql \(comparison.postgresql ?? "-") \(comparison.note ?? "")"
                )
            }
            // Only the reconciliations with the raw layer stay with the build.
            #expect(comparisons.filter { $0.postgresql == nil }.allSatisfy { $0.note?.contains("raw_") == true })

            // Analysts' SQL answers the same on both.
            for sql in Self.analystQueries {
                let onSQLite = try mesh.query(sql)
                let onPostgres = try await engine.query(sql)
                #expect(onSQLite.columns == onPostgres.columns, "\(sql)")
                #expect(Self.same(onSQLite.rows, onPostgres.rows), "\(sql)")
                #expect(!onSQLite.rows.isEmpty)
            }
        }
        await database.drop()
    }
}
