import GRDB
import MeshRuntime

/// `payer-mart`: formulary access, plan-level claims and rebates, the mature phase's marts.
enum PayerMart {
    static let planClaims = IncrementalFact(
        table: "fact_plan_claims_weekly", partitionColumn: "week_ending",
        create: """
            CREATE TABLE fact_plan_claims_weekly (week_ending TEXT NOT NULL, plan_key INTEGER NOT NULL,
                product_key INTEGER NOT NULL, week_key INTEGER NOT NULL, paid INTEGER NOT NULL, rejected INTEGER NOT NULL,
                rejected_pa INTEGER NOT NULL, rejected_not_covered INTEGER NOT NULL, reversed INTEGER NOT NULL,
                approval_rate REAL, PRIMARY KEY (week_ending, plan_key, product_key)) WITHOUT ROWID
            """,
        source: .init("raw_claims.claims", alias: "c", partition: .week(of: "fill_date")),
        lookups: [MartLookups.plan, MartLookups.product(input: "ndc11")],
        indexes: [InputIndex("raw_claims.claims", .week(of: "fill_date"))],
        insert: """
            INSERT INTO fact_plan_claims_weekly
            SELECT week_ending, plan_key, product_key, \(Marts.dateKey("week_ending")), SUM(status = 'P'),
                   SUM(status = 'R'), SUM(status = 'R' AND reject_code = '75'), SUM(status = 'R' AND reject_code = '70'),
                   SUM(status = 'X'),
                   CASE WHEN SUM(status IN ('P', 'R')) > 0 THEN ROUND(1.0 * SUM(status = 'P') / SUM(status IN ('P', 'R')), 6) END
            FROM (
                SELECT {partition} AS week_ending, COALESCE(k.plan_key, 0) AS plan_key,
                       COALESCE(p.product_key, 0) AS product_key, c.claim_status AS status, c.reject_code
                FROM raw_claims.claims c
                {lookup:product}
                {lookup:plan}
                WHERE {partitions})
            GROUP BY week_ending, plan_key, product_key
            """)

    /// Every input table the formulary fact is built from (the access mart reads it too).
    static let formularyReads = [
        "raw_formulary.formulary_plan", "raw_formulary.formulary_coverage", "conformed_dims.plan_key_map",
        "conformed_dims.dim_product",
    ]

    static let domain = Domain(
        id: "payer-mart", layer: "integrated", owner: Marts.owner,
        description: "Market access: formulary status by plan and month, plan-level claims, rebates and gross-to-net.",
        inputs: [
            .domain("raw-formulary"), .domain("raw-claims"), .domain("raw-rebates"), .domain("payer-master"),
            .domain("physician-master"), .domain("conformed-dims"),
        ],
        outputs: [
            DimensionContracts.date, DimensionContracts.product, DimensionContracts.plan, DimensionContracts.geo,
            DimensionContracts.physician,
            OutputPort(
                table: "fact_formulary_monthly",
                description: "Each plan's coverage of each product, from the month's latest formulary file",
                grain: ["plan_key", "product_key", "month"],
                columns: Marts.columns([
                    ("plan_key", "INTEGER", "dim_plan"), ("product_key", "INTEGER", "dim_product"),
                    ("month", "TEXT", "YYYY-MM"), ("tier", "TEXT", "1–6 or NC"),
                    ("pa", "INTEGER", "prior authorisation required"), ("st", "INTEGER", "step therapy"),
                    ("ql", "INTEGER", "quantity limit"), ("covered", "INTEGER", "tier ≠ NC"),
                    ("lives", "INTEGER", "the plan's covered lives that month"),
                ])),
            OutputPort(
                table: "fact_plan_claims_weekly", description: "Pharmacy claims by plan and fill week",
                grain: ["plan_key", "product_key", "week_ending"],
                columns: Marts.columns([
                    ("plan_key", "INTEGER", "dim_plan (0: BIN/PCN/group not resolved)"),
                    ("product_key", "INTEGER", "dim_product key (0: unknown)"),
                    ("week_ending", "TEXT", "the Friday ending the week"),
                    ("week_key", "INTEGER", "dim_date key of week_ending"),
                    ("paid", "INTEGER", "paid claims (status P)"),
                    ("rejected", "INTEGER", "rejected claims (status R)"),
                    ("rejected_pa", "INTEGER", "rejected with NCPDP 75, prior authorisation required"),
                    ("rejected_not_covered", "INTEGER", "rejected with NCPDP 70"),
                    ("reversed", "INTEGER", "reversals (status X)"),
                    ("approval_rate", "REAL", "paid / (paid + rejected)"),
                ])),
            OutputPort(
                table: "fact_rebates_quarterly", description: "Rebate invoices by plan (or payer) and quarter",
                grain: ["payer_id", "plan_key", "product_key", "quarter"],
                columns: Marts.columns([
                    ("payer_id", "TEXT", "formulary payer id"),
                    ("plan_key", "INTEGER", "dim_plan (0: payer-level contract)"),
                    ("product_key", "INTEGER", "dim_product key (0: unknown)"), ("quarter", "TEXT", "YYYYQn"),
                    ("units", "REAL", "units invoiced"),
                    ("wac_amount", "REAL", "USD at list price"), ("rebate_amount", "REAL", "USD"),
                    ("gross_to_net_pct", "REAL", "rebate_amount / wac_amount"),
                ])),
            OutputPort(
                table: "mart_access_by_territory",
                description:
                    "Covered lives by territory, product and month: the lives of the plans of the territory's states (a plan counts in full in every territory of its state, so compare shares, do not add territories)",
                grain: ["territory_id", "product_key", "month"],
                columns: Marts.columns([
                    ("territory_id", "TEXT", "sales territory id"),
                    ("product_key", "INTEGER", "dim_product key (0: unknown)"), ("month", "TEXT", "YYYY-MM"),
                    ("lives_total", "INTEGER", "all lives of the plans considered"),
                    ("lives_covered", "INTEGER", "on a covered tier without PA or ST"),
                    ("lives_pa", "INTEGER", "covered, with PA or ST"), ("lives_not_covered", "INTEGER", "tier NC"),
                    ("access_pct", "REAL", "lives_covered / lives_total"),
                ])),
        ],
        recipe: Recipe([
            RecipeNode(
                "dimensions",
                step: CopyDimensions(tables: ["dim_date", "dim_product", "dim_plan", "dim_geo", "dim_physician"])),
            RecipeNode("plan_claims", step: planClaims, after: ["dimensions"]),
            .sql(
                "formulary", after: ["dimensions"],
                reads: Self.formularyReads, keeps: ["fact_formulary_monthly"],
                """
                DROP TABLE IF EXISTS main.fact_formulary_monthly;
                CREATE TABLE fact_formulary_monthly AS
                WITH files AS (SELECT substr(as_of, 1, 7) AS month, MAX(as_of) AS as_of FROM raw_formulary.formulary_plan GROUP BY 1)
                SELECT k.plan_key, COALESCE(p.product_key, 0) AS product_key, f.month, c.tier, c.pa, c.st, c.ql,
                       CASE WHEN c.tier = 'NC' THEN 0 ELSE 1 END AS covered, COALESCE(l.lives, 0) AS lives
                FROM files f
                JOIN raw_formulary.formulary_coverage c ON c.as_of = f.as_of
                JOIN conformed_dims.plan_key_map k ON k.plan_id = c.plan_id
                LEFT JOIN raw_formulary.formulary_plan l ON l.as_of = c.as_of AND l.plan_id = c.plan_id
                LEFT JOIN dim_product p ON p.ndc11 = c.ndc11
                ORDER BY 1, 2, 3;
                """),
            .sql(
                "rebates", after: ["dimensions"],
                reads: ["raw_rebates.rebates", "conformed_dims.plan_key_map", "conformed_dims.dim_product"],
                keeps: ["fact_rebates_quarterly"],
                """
                DROP TABLE IF EXISTS main.fact_rebates_quarterly;
                CREATE TABLE fact_rebates_quarterly AS
                SELECT payer_id, plan_key, product_key, quarter, units / 1000.0 AS units, wac / 100.0 AS wac_amount,
                       rebate / 100.0 AS rebate_amount, CASE WHEN wac > 0 THEN ROUND(1.0 * rebate / wac, 6) END AS gross_to_net_pct
                FROM (
                    SELECT r.payer_id, COALESCE(k.plan_key, 0) AS plan_key, COALESCE(p.product_key, 0) AS product_key, r.quarter,
                           SUM(\(Marts.milli("r.units"))) AS units, SUM(\(Marts.cents("r.wac_amount"))) AS wac,
                           SUM(\(Marts.cents("r.rebate_amount"))) AS rebate
                    FROM raw_rebates.rebates r
                    LEFT JOIN conformed_dims.plan_key_map k ON k.plan_id = NULLIF(r.plan_id, '')
                    LEFT JOIN dim_product p ON p.ndc11 = r.ndc11
                    GROUP BY 1, 2, 3, 4)
                ORDER BY 1, 2, 3, 4;
                """),
            .sql(
                "access", after: ["formulary"],
                reads: Self.formularyReads + ["conformed_dims.dim_geo", "conformed_dims.dim_plan"],
                keeps: ["mart_access_by_territory"],
                """
                DROP TABLE IF EXISTS main.mart_access_by_territory;
                CREATE TABLE mart_access_by_territory AS
                WITH territory_state AS (
                    SELECT DISTINCT territory_id, state FROM dim_geo WHERE territory_id IS NOT NULL AND state IS NOT NULL),
                plan_month AS (
                    SELECT f.product_key, f.month, pl.state, f.lives,
                           CASE WHEN f.covered = 1 AND f.pa = 0 AND f.st = 0 THEN f.lives ELSE 0 END AS open_lives,
                           CASE WHEN f.covered = 1 AND (f.pa = 1 OR f.st = 1) THEN f.lives ELSE 0 END AS restricted_lives,
                           CASE WHEN f.covered = 0 THEN f.lives ELSE 0 END AS closed_lives
                    FROM fact_formulary_monthly f JOIN dim_plan pl ON pl.plan_key = f.plan_key)
                SELECT t.territory_id, m.product_key, m.month, SUM(m.lives) AS lives_total, SUM(m.open_lives) AS lives_covered,
                       SUM(m.restricted_lives) AS lives_pa, SUM(m.closed_lives) AS lives_not_covered,
                       CASE WHEN SUM(m.lives) > 0 THEN ROUND(1.0 * SUM(m.open_lives) / SUM(m.lives), 6) END AS access_pct
                FROM territory_state t JOIN plan_month m ON m.state = t.state
                GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;
                """),
        ]),
        tests: [
            Unique(table: "fact_formulary_monthly", grain: ["plan_key", "product_key", "month"]),
            Unique(table: "fact_rebates_quarterly", grain: ["payer_id", "plan_key", "product_key", "quarter"]),
            Unique(table: "mart_access_by_territory", grain: ["territory_id", "product_key", "month"]),
            Relationship(
                table: "fact_formulary_monthly", column: "plan_key", references: "dim_plan", column: "plan_key"),
            Relationship(
                table: "fact_formulary_monthly", column: "product_key", references: "dim_product",
                column: "product_key"),
            Relationship(
                table: "fact_plan_claims_weekly", column: "plan_key", references: "dim_plan", column: "plan_key"),
            Relationship(
                table: "fact_plan_claims_weekly", column: "product_key", references: "dim_product",
                column: "product_key"),
            Relationship(
                table: "fact_plan_claims_weekly", column: "week_key", references: "dim_date", column: "date_key"),
            Relationship(
                table: "fact_rebates_quarterly", column: "plan_key", references: "dim_plan", column: "plan_key"),
            Relationship(
                table: "fact_rebates_quarterly", column: "product_key", references: "dim_product",
                column: "product_key"),
            CustomSQLTest(
                "plan_claims_reconcile_to_raw",
                sql: """
                    SELECT f.paid, r.paid FROM (SELECT COALESCE(SUM(paid), 0) AS paid, COALESCE(SUM(rejected), 0) AS rejected,
                        COALESCE(SUM(reversed), 0) AS reversed FROM fact_plan_claims_weekly) f,
                        (SELECT COALESCE(SUM(claim_status = 'P'), 0) AS paid, COALESCE(SUM(claim_status = 'R'), 0) AS rejected,
                        COALESCE(SUM(claim_status = 'X'), 0) AS reversed FROM raw_claims.claims) r
                    WHERE f.paid <> r.paid OR f.rejected <> r.rejected OR f.reversed <> r.reversed
                    """,
                incremental: """
                    SELECT f.paid, r.paid FROM (SELECT COALESCE(SUM(mesh_sign * paid), 0) AS paid,
                        COALESCE(SUM(mesh_sign * rejected), 0) AS rejected,
                        COALESCE(SUM(mesh_sign * reversed), 0) AS reversed FROM {changes:fact_plan_claims_weekly}) f,
                        (SELECT COALESCE(SUM(mesh_sign * (claim_status = 'P')), 0) AS paid,
                        COALESCE(SUM(mesh_sign * (claim_status = 'R')), 0) AS rejected,
                        COALESCE(SUM(mesh_sign * (claim_status = 'X')), 0) AS reversed FROM {changes:raw_claims.claims}) r
                    WHERE f.paid <> r.paid OR f.rejected <> r.rejected OR f.reversed <> r.reversed
                    """),
            CustomSQLTest(
                "rebates_reconcile_to_raw",
                sql: """
                    SELECT f.rebate, r.rebate FROM (SELECT ROUND(COALESCE(SUM(rebate_amount), 0), 2) AS rebate FROM fact_rebates_quarterly) f,
                        (SELECT COALESCE(SUM(\(Marts.cents("rebate_amount"))), 0) / 100.0 AS rebate FROM raw_rebates.rebates) r
                    WHERE ABS(f.rebate - r.rebate) > 0.005
                    """),
            CustomSQLTest(
                "access_lives_add_up",
                sql: """
                    SELECT * FROM mart_access_by_territory
                    WHERE lives_covered + lives_pa + lives_not_covered <> lives_total OR access_pct < 0 OR access_pct > 1
                    """),
            CustomSQLTest(
                "gross_to_net_within_bounds", severity: .warn,
                sql: "SELECT * FROM fact_rebates_quarterly WHERE gross_to_net_pct < 0 OR gross_to_net_pct > 0.9"),
        ],
        retainedTables: ["fact_partition_state", "fact_mapping_state"])
}
