import GRDB
import MeshRuntime

/// `physician-mart`: prescriptions, claims and calls by physician, with share by territory and the reconciliation
/// of the three volume sources.
enum PhysicianMart {
    static let rx = IncrementalFact(
        table: "fact_rx_weekly", partitionColumn: "week_ending",
        create: """
            CREATE TABLE fact_rx_weekly (week_ending TEXT NOT NULL, physician_key INTEGER NOT NULL,
                product_key INTEGER NOT NULL, week_key INTEGER NOT NULL, nrx REAL NOT NULL, trx REAL NOT NULL,
                nqty REAL NOT NULL, tqty REAL NOT NULL, trx_milli INTEGER NOT NULL,
                PRIMARY KEY (week_ending, physician_key, product_key)) WITHOUT ROWID
            """,
        // Xponent is keyed by week first: its weeks need no index.
        source: .init("raw_xponent.xponent", alias: "x", partition: .column("week_ending")),
        lookups: [
            MartLookups.physician("prescriber", source: "xponent", input: "prescriber_id"),
            MartLookups.product(input: "ndc11"),
        ],
        insert: """
            INSERT INTO fact_rx_weekly
            SELECT week_ending, physician_key, product_key, \(Marts.dateKey("week_ending")),
                   SUM(nrx) / 1000.0, SUM(trx) / 1000.0, SUM(nqty) / 1000.0, SUM(tqty) / 1000.0, SUM(trx)
            FROM (
                SELECT {partition} AS week_ending, COALESCE(m.physician_id, 0) AS physician_key,
                       COALESCE(p.product_key, 0) AS product_key,
                       \(Marts.milli("x.nrx")) AS nrx, \(Marts.milli("x.trx")) AS trx,
                       \(Marts.milli("x.nqty")) AS nqty, \(Marts.milli("x.tqty")) AS tqty
                FROM raw_xponent.xponent x
                {lookup:prescriber}
                {lookup:product}
                WHERE {partitions})
            GROUP BY week_ending, physician_key, product_key
            """)

    static let claims = IncrementalFact(
        table: "fact_claims_weekly", partitionColumn: "week_ending",
        create: """
            CREATE TABLE fact_claims_weekly (week_ending TEXT NOT NULL, physician_key INTEGER NOT NULL,
                product_key INTEGER NOT NULL, plan_key INTEGER NOT NULL, week_key INTEGER NOT NULL,
                paid_claims INTEGER NOT NULL, rejected_claims INTEGER NOT NULL, reversed_claims INTEGER NOT NULL,
                net_claims INTEGER NOT NULL, patient_pay REAL NOT NULL,
                PRIMARY KEY (week_ending, physician_key, product_key, plan_key)) WITHOUT ROWID
            """,
        source: .init("raw_claims.claims", alias: "c", partition: .week(of: "fill_date")),
        lookups: [
            MartLookups.physician("prescriber", source: "claims", input: "prescriber_npi"),
            MartLookups.product(input: "ndc11"), MartLookups.plan,
        ],
        // Claims are keyed by claim id: a week is sought through its index, and the claims of re-pointed
        // prescribers through theirs (the cross-walk is reached by a LEFT JOIN, so the claims stay the outer
        // loop and the index does not change the plan).
        indexes: [
            InputIndex("raw_claims.claims", .week(of: "fill_date")), InputIndex("raw_claims.claims", "prescriber_npi"),
        ],
        insert: """
            INSERT INTO fact_claims_weekly
            SELECT week_ending, physician_key, product_key, plan_key, \(Marts.dateKey("week_ending")),
                   SUM(status = 'P'), SUM(status = 'R'), SUM(status = 'X'), SUM(status = 'P') - SUM(status = 'X'),
                   SUM(CASE WHEN status = 'P' THEN pay_cents ELSE 0 END) / 100.0
            FROM (
                SELECT {partition} AS week_ending, COALESCE(m.physician_id, 0) AS physician_key,
                       COALESCE(p.product_key, 0) AS product_key, COALESCE(k.plan_key, 0) AS plan_key,
                       c.claim_status AS status, \(Marts.cents("COALESCE(c.patient_pay, 0)")) AS pay_cents
                FROM raw_claims.claims c
                {lookup:prescriber}
                {lookup:product}
                {lookup:plan}
                WHERE {partitions})
            GROUP BY week_ending, physician_key, product_key, plan_key
            """)

    /// The primary product of a call: the first of its `;`-separated brands.
    static let primaryBrand: RowExpression =
        "UPPER(TRIM(CASE WHEN instr({detailed_products}, ';') > 0 THEN substr({detailed_products}, 1, instr({detailed_products}, ';') - 1) ELSE {detailed_products} END))"

    static let calls = IncrementalFact(
        table: "fact_calls", partitionColumn: "call_date",
        create: """
            CREATE TABLE fact_calls (call_date TEXT NOT NULL, physician_key INTEGER NOT NULL, product_key INTEGER NOT NULL,
                date_key INTEGER NOT NULL, calls INTEGER NOT NULL, samples INTEGER NOT NULL,
                PRIMARY KEY (call_date, physician_key, product_key)) WITHOUT ROWID
            """,
        source: .init("raw_crm_calls.crm_calls", alias: "c", partition: .column("call_date")),
        lookups: [
            MartLookups.physician("account", source: "crm", input: "account_id"),
            Lookup(
                "brand",
                table:
                    "(SELECT brand, MIN(product_key) AS product_key FROM dim_product WHERE product_key <> 0 GROUP BY brand)",
                alias: "b", key: "brand", value: "product_key", input: primaryBrand),
        ],
        indexes: [
            InputIndex("raw_crm_calls.crm_calls", Partition.column("call_date")),
            InputIndex("raw_crm_calls.crm_calls", "account_id"),
        ],
        insert: """
            INSERT INTO fact_calls
            SELECT {partition}, COALESCE(m.physician_id, 0), COALESCE(b.product_key, 0), \(Marts.dateKey("c.call_date")),
                   COUNT(*), SUM(COALESCE(c.samples, 0))
            FROM raw_crm_calls.crm_calls c
            {lookup:account}
            {lookup:brand}
            WHERE c.status = 'Submitted' AND {partitions}
            GROUP BY 1, 2, 3
            """)

    static let share = DerivedTable(
        table: "mart_share_weekly", partitionColumn: "week_ending",
        create: """
            CREATE TABLE mart_share_weekly (territory_id TEXT NOT NULL, market TEXT NOT NULL, week_ending TEXT NOT NULL,
                own_trx REAL NOT NULL, market_trx REAL NOT NULL, share REAL,
                PRIMARY KEY (week_ending, territory_id, market)) WITHOUT ROWID
            """,
        facts: ["fact_rx_weekly"],
        fullWhen: [
            // A product moving between markets touches every week.
            """
            SELECT 1 FROM (
                SELECT * FROM (SELECT product_key, market, is_own_brand FROM main.dim_product
                               EXCEPT SELECT product_key, market, is_own_brand FROM previous.dim_product)
                UNION ALL
                SELECT * FROM (SELECT product_key, market, is_own_brand FROM previous.dim_product
                               EXCEPT SELECT product_key, market, is_own_brand FROM main.dim_product))
            LIMIT 1
            """
        ],
        // A physician who moved territory moves the weeks they wrote in. (New and merged-away physicians come
        // with re-pointed source ids, whose weeks the fact rebuilt already.)
        alsoTouched: [
            """
            SELECT DISTINCT f.week_ending FROM (
                SELECT n.physician_key FROM main.dim_physician n JOIN previous.dim_physician o USING (physician_key)
                WHERE n.territory_id IS NOT o.territory_id) m
            CROSS JOIN fact_rx_weekly f WHERE f.physician_key = m.physician_key
            """
        ],
        insert: """
            INSERT INTO mart_share_weekly
            SELECT territory_id, market, week_ending, own / 1000.0, total / 1000.0,
                   CASE WHEN total > 0 THEN ROUND(1.0 * own / total, 6) END
            FROM (
                SELECT COALESCE(d.territory_id, 'UNASSIGNED') AS territory_id, p.market, f.week_ending,
                       SUM(CASE WHEN p.is_own_brand = 1 THEN f.trx_milli ELSE 0 END) AS own, SUM(f.trx_milli) AS total
                FROM fact_rx_weekly f JOIN dim_product p ON p.product_key = f.product_key
                JOIN dim_physician d ON d.physician_key = f.physician_key
                WHERE p.market IS NOT NULL AND {partitions}
                GROUP BY 1, 2, 3)
            """, partitionOf: "f.week_ending")

    static let rxClaims = DerivedTable(
        table: "reconciliation_rx_claims", partitionColumn: "week_ending",
        create: """
            CREATE TABLE reconciliation_rx_claims (physician_key INTEGER NOT NULL, week_ending TEXT NOT NULL,
                xponent_trx REAL NOT NULL, claims_net INTEGER NOT NULL, gap REAL NOT NULL,
                PRIMARY KEY (week_ending, physician_key)) WITHOUT ROWID
            """,
        facts: ["fact_rx_weekly", "fact_claims_weekly"],
        insert: """
            INSERT INTO reconciliation_rx_claims
            SELECT physician_key, week_ending, SUM(trx) / 1000.0, SUM(net), (SUM(net) * 1000 - SUM(trx)) / 1000.0
            FROM (
                SELECT physician_key, week_ending, trx_milli AS trx, 0 AS net FROM fact_rx_weekly
                WHERE physician_key <> 0 AND {partitions}
                UNION ALL
                SELECT physician_key, week_ending, 0, net_claims FROM fact_claims_weekly
                WHERE physician_key <> 0 AND {partitions})
            GROUP BY physician_key, week_ending
            """, partitionOf: "week_ending")

    /// Part D's side: prescriber NPI → physician, brand, data year.
    static let partDSide = """
        SELECT COALESCE(m.physician_id, 0) AS physician_key, UPPER(r.brnd_name) AS brand, r.data_year AS year,
               SUM(r.tot_clms) AS claims
        FROM raw_partd.partd r
        LEFT JOIN physician_master.physician_xref m ON m.source = 'nppes' AND m.source_id = r.prscrbr_npi
        WHERE m.physician_id IS NOT NULL GROUP BY 1, 2, 3
        """

    static let rxPartD = DerivedTable(
        table: "reconciliation_partd", partitionColumn: "year",
        create: """
            CREATE TABLE reconciliation_partd (physician_key INTEGER NOT NULL, brand TEXT NOT NULL, year INTEGER NOT NULL,
                xponent_trx REAL NOT NULL, partd_claims INTEGER, partd_share REAL,
                PRIMARY KEY (year, physician_key, brand)) WITHOUT ROWID
            """,
        facts: ["fact_rx_weekly"], partitionOfFact: "CAST(substr(p, 1, 4) AS INTEGER)",
        prepare: [
            "DROP TABLE IF EXISTS temp.partd_side",
            "CREATE TEMP TABLE partd_side AS \(partDSide)",
        ],
        fullWhen: [
            // A new Part D file, or NPIs re-pointed by the master: Part D's side differs from the published one,
            // in either direction (two queries: compound operators chain left to right, so one query of
            // `A EXCEPT B UNION ALL B EXCEPT A` would only ever find rows of B missing from A).
            """
            SELECT 1 FROM (SELECT physician_key, brand, year, claims FROM temp.partd_side
                           EXCEPT SELECT physician_key, brand, year, partd_claims FROM previous.reconciliation_partd)
            LIMIT 1
            """,
            """
            SELECT 1 FROM (SELECT physician_key, brand, year, partd_claims FROM previous.reconciliation_partd
                           EXCEPT SELECT physician_key, brand, year, claims FROM temp.partd_side)
            LIMIT 1
            """,
        ],
        // Part D's side reads only these: unchanged, it is the side the previous build compared.
        fullWhenReads: [("raw_partd.partd", "1"), ("physician_master.physician_xref", "source = 'nppes'")],
        possible: "SELECT DISTINCT data_year FROM raw_partd.partd",
        insert: """
            INSERT INTO reconciliation_partd
            WITH x AS (
                SELECT f.physician_key, p.brand, CAST(substr(f.week_ending, 1, 4) AS INTEGER) AS year, SUM(f.trx_milli) AS trx
                FROM fact_rx_weekly f JOIN dim_product p ON p.product_key = f.product_key
                WHERE f.physician_key <> 0 AND {partitions:CAST(substr(f.week_ending, 1, 4) AS INTEGER)} GROUP BY 1, 2, 3),
            d AS (SELECT * FROM (\(partDSide)) WHERE {partitions:year})
            SELECT d.physician_key, d.brand, d.year, COALESCE(x.trx, 0) / 1000.0, d.claims,
                   CASE WHEN x.trx > 0 AND d.claims IS NOT NULL THEN ROUND(d.claims * 1000.0 / x.trx, 6) END
            FROM d LEFT JOIN x USING (physician_key, brand, year)
            """, partitionOf: "year")

    /// Inserts into `reconciliation_summary` the distribution of per-row ratios in each period of `rows` (a query
    /// of `period, x, o, r`): count, totals, overall ratio, and the 10th, 50th and 90th percentiles (nearest
    /// rank). The rows are sorted once into a TEMP table by period and ratio (rows without a ratio first, as
    /// SQLite sorts NULL first); its rowids are then ranks, so that each percentile is one lookup, and the totals
    /// come from the same table in one ordered pass. Ranking with window functions per period took four times
    /// the CPU, and totals over `rows` a second read of it. The totals are exact: `x` holds thousandths summed
    /// and rounded to 3 places, `o` integers.
    static func summaryInsert(_ comparison: String, rows: String) -> String {
        let percentiles = [10, 50, 90].map {
            "(SELECT r FROM temp.summary_sorted WHERE rowid = k.first + MAX(1, (k.total * \($0) + 99) / 100) - 1)"
        }
        return """
            DROP TABLE IF EXISTS temp.summary_sorted;
            CREATE TEMP TABLE summary_sorted AS SELECT period, x, o, r FROM (\(rows)) ORDER BY period, r;
            INSERT INTO reconciliation_summary
            SELECT '\(comparison)', k.period, k.rows, k.x, k.o, CASE WHEN k.x > 0 THEN ROUND(k.o / k.x, 6) END,
                   \(percentiles.joined(separator: ",\n       "))
            FROM (SELECT period, COUNT(*) AS rows, ROUND(SUM(x), 3) AS x, SUM(o) AS o,
                         MIN(CASE WHEN r IS NOT NULL THEN rowid END) AS first, COUNT(r) AS total
                  FROM temp.summary_sorted GROUP BY period) k;
            DROP TABLE temp.summary_sorted;
            """
    }

    static let summary = DerivedTable(
        table: "reconciliation_summary", partitionColumn: "period",
        create: """
            CREATE TABLE reconciliation_summary (comparison TEXT NOT NULL, period TEXT NOT NULL, rows INTEGER NOT NULL,
                xponent_trx REAL, other REAL, ratio REAL, p10 REAL, p50 REAL, p90 REAL,
                PRIMARY KEY (comparison, period)) WITHOUT ROWID
            """,
        facts: ["fact_rx_weekly", "fact_claims_weekly"], partitionOfFact: "substr(p, 1, 7)",
        insert: summaryInsert(
            "claims_vs_xponent",
            rows: """
                SELECT substr(week_ending, 1, 7) AS period, xponent_trx AS x, claims_net AS o,
                       CASE WHEN xponent_trx > 0 THEN ROUND(claims_net / xponent_trx, 6) END AS r
                FROM reconciliation_rx_claims
                -- The weeks of the touched months, so that the key is sought rather than every row read.
                WHERE week_ending IN (SELECT date FROM dim_date WHERE {partitions:substr(date, 1, 7)})
                """), partitionOf: "substr(week_ending, 1, 7)")

    /// Part D's rows of the summary, recomputed when the Part D reconciliation or the summary changed.
    static let partDSummary = DerivedSummary(
        name: "partd summary v1", reads: ["reconciliation_partd"], writesInto: "reconciliation_summary",
        sql: "DELETE FROM reconciliation_summary WHERE comparison = 'partd_vs_xponent';\n"
            + summaryInsert(
                "partd_vs_xponent",
                rows: """
                    SELECT CAST(year AS TEXT) AS period, xponent_trx AS x, partd_claims AS o, partd_share AS r
                    FROM reconciliation_partd WHERE partd_claims IS NOT NULL
                    """))

    static let domain = Domain(
        id: "physician-mart", layer: "integrated", owner: Marts.owner,
        description:
            "Physicians' prescriptions (Xponent), pharmacy claims and calls by week, share by territory, and the reconciliation of the volume sources.",
        inputs: [
            .domain("raw-xponent"), .domain("raw-claims"), .domain("raw-crm_calls"), .domain("raw-partd"),
            .domain("physician-master"), .domain("payer-master"), .domain("conformed-dims"),
        ],
        outputs: [
            DimensionContracts.date, DimensionContracts.product, DimensionContracts.physician,
            DimensionContracts.geo, DimensionContracts.plan,
            OutputPort(
                table: "fact_rx_weekly",
                description: "Xponent prescriptions after restatement (the latest delivery of a week wins)",
                grain: ["physician_key", "product_key", "week_ending"],
                columns: Marts.columns([
                    ("physician_key", "INTEGER", "dim_physician (0: prescriber not mastered)"),
                    ("product_key", "INTEGER", "dim_product"), ("week_ending", "TEXT", "Friday"),
                    ("week_key", "INTEGER", "dim_date key of week_ending"),
                    ("nrx", "REAL", "new prescriptions (projected, 3 decimals, summed exactly)"),
                    ("trx", "REAL", "total prescriptions"), ("nqty", "REAL", "new quantity"),
                    ("tqty", "REAL", "total quantity"), ("trx_milli", "INTEGER", "trx in exact thousandths"),
                ])),
            OutputPort(
                table: "fact_claims_weekly", description: "Pharmacy claims by fill week",
                grain: ["physician_key", "product_key", "plan_key", "week_ending"],
                columns: Marts.columns([
                    ("physician_key", "INTEGER", "dim_physician"), ("product_key", "INTEGER", "dim_product"),
                    ("plan_key", "INTEGER", "dim_plan through BIN/PCN/group (0: unresolved)"),
                    ("week_ending", "TEXT", "the Friday ending the fill date's week"),
                    ("week_key", "INTEGER", "dim_date key of week_ending"),
                    ("paid_claims", "INTEGER", "status P"), ("rejected_claims", "INTEGER", "status R"),
                    ("reversed_claims", "INTEGER", "status X, in the week of the reversal's fill date"),
                    ("net_claims", "INTEGER", "paid − reversed"),
                    ("patient_pay", "REAL", "USD paid by patients on paid claims"),
                ])),
            OutputPort(
                table: "fact_calls", description: "Submitted calls by primary product",
                grain: ["physician_key", "product_key", "call_date"],
                columns: Marts.columns([
                    ("physician_key", "INTEGER", "dim_physician through the CRM account"),
                    ("product_key", "INTEGER", "the first detailed product"), ("call_date", "TEXT", "the call's date"),
                    ("date_key", "INTEGER", "dim_date key (YYYYMMDD)"), ("calls", "INTEGER", "submitted calls"),
                    ("samples", "INTEGER", "samples left"),
                ])),
            OutputPort(
                table: "mart_share_weekly", description: "Brand share of the market basket by territory",
                grain: ["territory_id", "market", "week_ending"],
                columns: Marts.columns([
                    ("territory_id", "TEXT", "the prescriber's territory ('UNASSIGNED' when unknown)"),
                    ("market", "TEXT", "market basket the product belongs to"),
                    ("week_ending", "TEXT", "the Friday ending the week"),
                    ("own_trx", "REAL", "TRx of our brand"), ("market_trx", "REAL", "TRx of the whole basket"),
                    ("share", "REAL", "own_trx / market_trx, from exact thousandths, 6 decimals"),
                ])),
            OutputPort(
                table: "reconciliation_rx_claims",
                description: "Xponent TRx against net paid claims by physician and week (all products)",
                grain: ["physician_key", "week_ending"],
                columns: Marts.columns([
                    ("physician_key", "INTEGER", "dim_physician key (0: unknown)"),
                    ("week_ending", "TEXT", "the Friday ending the week"),
                    ("xponent_trx", "REAL", "projected TRx"), ("claims_net", "INTEGER", "paid − reversed claims"),
                    ("gap", "REAL", "claims_net − xponent_trx"),
                ])),
            OutputPort(
                table: "reconciliation_partd",
                description: "Xponent TRx in a year against the CMS Part D claims of the same prescriber and brand",
                grain: ["physician_key", "brand", "year"],
                columns: Marts.columns([
                    ("physician_key", "INTEGER", "dim_physician key (0: unknown)"), ("brand", "TEXT", "brand name"),
                    ("year", "INTEGER", "calendar year"),
                    ("xponent_trx", "REAL", "Xponent TRx (projected)"),
                    ("partd_claims", "INTEGER", "Tot_Clms (Medicare only)"),
                    ("partd_share", "REAL", "partd_claims / xponent_trx"),
                ])),
            OutputPort(
                table: "reconciliation_summary",
                description: "The distribution of the gaps between sources: they are not supposed to match 1:1",
                grain: ["comparison", "period"],
                columns: Marts.columns([
                    ("comparison", "TEXT", "claims_vs_xponent or partd_vs_xponent"),
                    ("period", "TEXT", "YYYY-MM for claims against Xponent, YYYY for Part D (a yearly file)"),
                    ("rows", "INTEGER", "physician-weeks or physician-brands compared"),
                    ("xponent_trx", "REAL", "Xponent TRx (projected)"), ("other", "REAL", "claims or Part D total"),
                    ("ratio", "REAL", "other / xponent_trx"),
                    ("p10", "REAL", "10th percentile of the per-row ratio"), ("p50", "REAL", "median"),
                    ("p90", "REAL", "90th percentile"),
                ])),
        ],
        recipe: Recipe([
            RecipeNode(
                "dimensions",
                step: CopyDimensions(tables: ["dim_date", "dim_product", "dim_physician", "dim_geo", "dim_plan"])),
            RecipeNode("rx", step: rx, after: ["dimensions"]),
            RecipeNode("claims", step: claims, after: ["dimensions"]),
            RecipeNode("calls", step: calls, after: ["dimensions"]),
            RecipeNode("share", step: share, after: ["rx"]),
            RecipeNode("reconcile_claims", step: rxClaims, after: ["rx", "claims"]),
            RecipeNode("reconcile_partd", step: rxPartD, after: ["rx"]),
            RecipeNode("reconcile_summary", step: summary, after: ["reconcile_claims"]),
            RecipeNode("reconcile_summary_partd", step: partDSummary, after: ["reconcile_summary", "reconcile_partd"]),
        ]),
        tests: [
            Unique(table: "fact_rx_weekly", grain: ["physician_key", "product_key", "week_ending"]),
            Unique(table: "fact_claims_weekly", grain: ["physician_key", "product_key", "plan_key", "week_ending"]),
            Unique(table: "fact_calls", grain: ["physician_key", "product_key", "call_date"]),
            Unique(table: "mart_share_weekly", grain: ["territory_id", "market", "week_ending"]),
            Relationship(
                table: "fact_rx_weekly", column: "physician_key", references: "dim_physician", column: "physician_key"),
            Relationship(
                table: "fact_rx_weekly", column: "product_key", references: "dim_product", column: "product_key"),
            Relationship(table: "fact_rx_weekly", column: "week_key", references: "dim_date", column: "date_key"),
            Relationship(
                table: "fact_claims_weekly", column: "physician_key", references: "dim_physician",
                column: "physician_key"),
            Relationship(
                table: "fact_claims_weekly", column: "product_key", references: "dim_product", column: "product_key"),
            Relationship(table: "fact_claims_weekly", column: "plan_key", references: "dim_plan", column: "plan_key"),
            Relationship(table: "fact_claims_weekly", column: "week_key", references: "dim_date", column: "date_key"),
            Relationship(
                table: "fact_calls", column: "physician_key", references: "dim_physician", column: "physician_key"),
            Relationship(table: "fact_calls", column: "product_key", references: "dim_product", column: "product_key"),
            Relationship(table: "fact_calls", column: "date_key", references: "dim_date", column: "date_key"),
            CustomSQLTest(
                "trx_reconciles_to_raw_xponent",
                sql: """
                    SELECT f.total AS mart_trx_milli, r.total AS raw_trx_milli
                    FROM (SELECT COALESCE(SUM(trx_milli), 0) AS total FROM fact_rx_weekly) f,
                         (SELECT COALESCE(SUM(\(Marts.milli("trx"))), 0) AS total FROM raw_xponent.xponent) r
                    WHERE f.total <> r.total
                    """,
                // The totals agreed on the previous version, so their changes must agree.
                incremental: """
                    SELECT f.change AS mart_trx_milli_change, r.change AS raw_trx_milli_change
                    FROM (SELECT COALESCE(SUM(mesh_sign * trx_milli), 0) AS change FROM {changes:fact_rx_weekly}) f,
                         (SELECT COALESCE(SUM(mesh_sign * \(Marts.milli("trx"))), 0) AS change
                          FROM {changes:raw_xponent.xponent}) r
                    WHERE f.change <> r.change
                    """),
            CustomSQLTest(
                "net_claims_are_paid_minus_reversed_in_raw",
                sql: """
                    SELECT f.net, r.net FROM (SELECT COALESCE(SUM(net_claims), 0) AS net, COALESCE(SUM(paid_claims), 0) AS paid,
                        COALESCE(SUM(reversed_claims), 0) AS reversed FROM fact_claims_weekly) f,
                        (SELECT SUM(claim_status = 'P') - SUM(claim_status = 'X') AS net, SUM(claim_status = 'P') AS paid,
                        SUM(claim_status = 'X') AS reversed FROM raw_claims.claims) r
                    WHERE f.net <> COALESCE(r.net, 0) OR f.paid <> COALESCE(r.paid, 0) OR f.reversed <> COALESCE(r.reversed, 0)
                    """,
                incremental: """
                    SELECT f.net, r.net FROM (SELECT COALESCE(SUM(mesh_sign * net_claims), 0) AS net,
                        COALESCE(SUM(mesh_sign * paid_claims), 0) AS paid,
                        COALESCE(SUM(mesh_sign * reversed_claims), 0) AS reversed FROM {changes:fact_claims_weekly}) f,
                        (SELECT COALESCE(SUM(mesh_sign * ((claim_status = 'P') - (claim_status = 'X'))), 0) AS net,
                        COALESCE(SUM(mesh_sign * (claim_status = 'P')), 0) AS paid,
                        COALESCE(SUM(mesh_sign * (claim_status = 'X')), 0) AS reversed FROM {changes:raw_claims.claims}) r
                    WHERE f.net <> r.net OR f.paid <> r.paid OR f.reversed <> r.reversed
                    """),
            CustomSQLTest(
                "submitted_calls_reconcile_to_raw",
                sql: """
                    SELECT f.calls, r.calls FROM (SELECT COALESCE(SUM(calls), 0) AS calls FROM fact_calls) f,
                        (SELECT COUNT(*) AS calls FROM raw_crm_calls.crm_calls WHERE status = 'Submitted') r
                    WHERE f.calls <> r.calls
                    """,
                incremental: """
                    SELECT f.calls, r.calls FROM (SELECT COALESCE(SUM(mesh_sign * calls), 0) AS calls FROM {changes:fact_calls}) f,
                        (SELECT COALESCE(SUM(mesh_sign), 0) AS calls FROM {changes:raw_crm_calls.crm_calls}
                         WHERE status = 'Submitted') r
                    WHERE f.calls <> r.calls
                    """),
            CustomSQLTest(
                "share_between_0_and_1",
                sql: "SELECT * FROM mart_share_weekly WHERE share < 0 OR share > 1 OR own_trx > market_trx",
                incremental: """
                    SELECT * FROM {changes:mart_share_weekly}
                    WHERE mesh_sign = 1 AND (share < 0 OR share > 1 OR own_trx > market_trx)
                    """),
            CustomSQLTest(
                "claims_to_xponent_ratio_within_bounds", severity: .warn,
                sql: """
                    SELECT * FROM reconciliation_summary
                    WHERE rows >= 100 AND (ratio < CAST(:min_source_ratio AS REAL) OR ratio > CAST(:max_source_ratio AS REAL))
                    """),
            CustomSQLTest(
                "unmastered_trx_share", severity: .warn,
                // The unmastered rows are sought week by week on the key (a skip-scan), and the mastered TRx is
                // the reconciliation summary's total (physician_key <> 0, by month, exact thousandths): no pass over the fact.
                sql: """
                    SELECT u.unmastered, u.unmastered + m.mastered AS total
                    FROM (SELECT COALESCE(SUM(trx_milli), 0) AS unmastered FROM fact_rx_weekly WHERE physician_key = 0) u,
                         (SELECT COALESCE(SUM(CAST(ROUND(xponent_trx * 1000) AS INTEGER)), 0) AS mastered
                          FROM reconciliation_summary WHERE comparison = 'claims_vs_xponent') m
                    WHERE u.unmastered > CAST(:max_unmastered_share AS REAL) * (u.unmastered + m.mastered)
                    """),
        ],
        parameters: ["min_source_ratio": "0.05", "max_source_ratio": "2.0", "max_unmastered_share": "0.05"],
        retainedTables: ["fact_partition_state", "fact_mapping_state"])
}
