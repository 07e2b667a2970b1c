import GRDB
import MeshRuntime

/// `conformed-dims`: the dimensions every mart shares, built once from the masters (data linkage).
///
/// The marts copy them into their own schemas, and the sync check guarantees that a mart never reads
/// dimensions built from another physician-master version than the facts it maps through it.
enum ConformedDimensions {
    static let domain = Domain(
        id: "conformed-dims", layer: "integrated", owner: Marts.owner,
        description:
            "The conformed dimensions (date, product, physician, geography, plan, DMA) shared by the three marts.",
        inputs: [
            .domain("physician-master"), .domain("product-master"), .domain("geo-master"), .domain("payer-master"),
        ],
        outputs: [
            DimensionContracts.date, DimensionContracts.product, DimensionContracts.physician,
            DimensionContracts.geo, DimensionContracts.plan, DimensionContracts.dma,
            OutputPort(
                table: "plan_key_map", description: "Every plan id ever seen and its stable plan_key",
                grain: ["plan_id"],
                columns: Marts.columns([
                    ("plan_id", "TEXT", "formulary plan id"), ("plan_key", "INTEGER", "dim_plan key (0: unknown)"),
                ])),
        ],
        recipe: Recipe([
            // The calendar reads no input: later builds copy it from the previous version.
            .sql(
                "date", reads: [], keeps: ["dim_date"],
                """
                CREATE TABLE dim_date (date_key INTEGER PRIMARY KEY, date TEXT, week_ending TEXT, week_key INTEGER,
                    month TEXT, quarter TEXT, year INTEGER, day_of_week INTEGER);
                INSERT INTO dim_date VALUES (0, NULL, NULL, 0, NULL, NULL, NULL, NULL);
                WITH RECURSIVE d(x) AS (SELECT '2020-01-01' UNION ALL SELECT date(x, '+1 day') FROM d WHERE x < '2030-12-31')
                INSERT INTO dim_date
                SELECT \(Marts.dateKey("x")), x, date(x, 'weekday 5'), \(Marts.weekKey("x")), substr(x, 1, 7),
                       substr(x, 1, 4) || 'Q' || ((CAST(substr(x, 6, 2) AS INTEGER) + 2) / 3), CAST(substr(x, 1, 4) AS INTEGER),
                       CAST(strftime('%w', x) AS INTEGER)
                FROM d;
                """),
            .sql(
                "product",
                """
                CREATE TABLE dim_product (product_key INTEGER PRIMARY KEY, ndc11 TEXT, brand TEXT, generic TEXT, market TEXT,
                    manufacturer TEXT, is_own_brand INTEGER, launch_date TEXT, wac_per_unit REAL);
                INSERT INTO dim_product VALUES (0, NULL, '(unknown)', NULL, NULL, NULL, 0, NULL, NULL);
                INSERT INTO dim_product
                SELECT CAST(ndc11 AS INTEGER), ndc11, brand, generic, market, manufacturer, is_own_brand, launch_date, wac_per_unit
                FROM product_master.product ORDER BY ndc11;
                """),
            .sql(
                "geo",
                """
                CREATE TABLE dim_geo (geo_key INTEGER PRIMARY KEY, zip5 TEXT, state TEXT, territory_id TEXT, territory_name TEXT,
                    district TEXT, region TEXT, dma_code TEXT);
                INSERT INTO dim_geo VALUES (0, NULL, NULL, NULL, '(unaligned)', NULL, NULL, NULL);
                -- A table, not a CTE: SQLite rebuilt its automatic index for every ZIP of the join (docs/benchmarks.md).
                DROP TABLE IF EXISTS temp.zip_state;
                CREATE TEMP TABLE zip_state (zip5 TEXT PRIMARY KEY, state TEXT) WITHOUT ROWID;
                INSERT INTO temp.zip_state
                SELECT zip5, state FROM (
                    SELECT zip5, state, ROW_NUMBER() OVER (PARTITION BY zip5 ORDER BY COUNT(*) DESC, state) AS n
                    FROM physician_master.physician WHERE state IS NOT NULL AND zip5 IS NOT NULL GROUP BY zip5, state)
                WHERE n = 1;
                WITH zips AS (
                    SELECT zip5 FROM geo_master.zip_territory
                    UNION SELECT zip5 FROM physician_master.physician WHERE zip5 GLOB '[0-9][0-9][0-9][0-9][0-9]')
                INSERT INTO dim_geo
                SELECT CAST(z.zip5 AS INTEGER), z.zip5, s.state, t.territory_id, t.territory_name, t.district, t.region, NULL
                FROM zips z LEFT JOIN temp.zip_state s USING (zip5)
                LEFT JOIN geo_master.zip_territory a ON a.zip5 = z.zip5
                LEFT JOIN geo_master.territory t ON t.territory_id = a.territory_id
                ORDER BY z.zip5;
                CREATE TABLE dim_dma (dma_key INTEGER PRIMARY KEY, dma_code TEXT, dma_name TEXT);
                INSERT INTO dim_dma VALUES (0, NULL, '(unknown)');
                INSERT INTO dim_dma SELECT CAST(dma_code AS INTEGER), dma_code, dma_name FROM geo_master.dma ORDER BY dma_code;
                """),
            .swift("physician", after: ["geo"], version: "2") { context in
                let version = context.inputVersions["physician-master"] ?? 0
                return try await context.database.write { db in
                    try db.execute(
                        sql: """
                            CREATE TABLE dim_physician (physician_key INTEGER PRIMARY KEY, physician_id INTEGER, npi TEXT,
                                me_number TEXT, first_name TEXT, last_name TEXT, credential TEXT, specialty TEXT, city TEXT,
                                state TEXT, zip5 TEXT, status TEXT, is_prescriber INTEGER, territory_id TEXT, geo_key INTEGER,
                                master_version INTEGER, provider_type TEXT);
                            INSERT INTO dim_physician VALUES (0, NULL, NULL, NULL, NULL, '(unknown)', NULL, NULL, NULL, NULL, NULL,
                                'unknown', 0, NULL, 0, :version, 'unknown');
                            INSERT INTO dim_physician
                            SELECT p.physician_id, p.physician_id, p.npi, p.me_number, p.first_name, p.last_name, p.credential,
                                   p.specialty, p.city, p.state, p.zip5, p.status, p.is_prescriber, g.territory_id,
                                   COALESCE(g.geo_key, 0), :version, p.provider_type
                            FROM physician_master.physician p LEFT JOIN dim_geo g ON g.geo_key = CAST(p.zip5 AS INTEGER) AND g.zip5 = p.zip5 AND g.geo_key <> 0
                            ORDER BY p.physician_id;
                            """, arguments: ["version": version])
                    return StepReport(rowsOut: db.changesCount)
                }
            },
            .swift("plan", version: "1") { context in
                try await context.database.write { db in
                    try db.execute(
                        sql: "CREATE TABLE plan_key_map (plan_id TEXT PRIMARY KEY, plan_key INTEGER NOT NULL UNIQUE)")
                    // Keys survive versions: the previous map is kept and new plans get the next numbers.
                    if !context.fullRefresh, context.previousVersion != nil,
                        try db.tableExists("plan_key_map", in: "previous")
                    {
                        try db.execute(
                            sql: "INSERT INTO plan_key_map SELECT plan_id, plan_key FROM previous.plan_key_map")
                    }
                    let next = try Int.fetchOne(db, sql: "SELECT COALESCE(MAX(plan_key), 0) FROM plan_key_map") ?? 0
                    try db.execute(
                        sql: """
                            INSERT INTO plan_key_map
                            SELECT plan_id, :next + ROW_NUMBER() OVER (ORDER BY plan_id) FROM (
                                SELECT plan_id FROM payer_master.plan EXCEPT SELECT plan_id FROM plan_key_map);
                            CREATE TABLE dim_plan (plan_key INTEGER PRIMARY KEY, plan_id TEXT, plan_name TEXT, payer_id TEXT,
                                payer_name TEXT, pbm_id TEXT, pbm_name TEXT, channel TEXT, lives INTEGER, state TEXT);
                            INSERT INTO dim_plan VALUES (0, NULL, '(unknown plan)', NULL, NULL, NULL, NULL, NULL, 0, NULL);
                            INSERT INTO dim_plan
                            SELECT k.plan_key, p.plan_id, p.plan_name, p.payer_id, y.payer_name, p.pbm_id, b.pbm_name, p.channel,
                                   p.lives, p.state
                            FROM payer_master.plan p JOIN plan_key_map k USING (plan_id)
                            LEFT JOIN payer_master.payer y ON y.payer_id = p.payer_id
                            LEFT JOIN payer_master.pbm b ON b.pbm_id = p.pbm_id
                            ORDER BY k.plan_key;
                            """, arguments: ["next": next])
                    return StepReport(rowsOut: db.changesCount)
                }
            },
        ]),
        tests: [
            Unique(table: "dim_physician", grain: ["physician_key"]), Unique(table: "dim_geo", grain: ["geo_key"]),
            Unique(table: "dim_plan", grain: ["plan_key"]), Unique(table: "dim_product", grain: ["product_key"]),
            Unique(table: "plan_key_map", grain: ["plan_key"]),
            Relationship(table: "dim_physician", column: "geo_key", references: "dim_geo", column: "geo_key"),
            CustomSQLTest(
                "every_dimension_has_its_unknown_member",
                sql: """
                    SELECT 'dim_date' AS dimension WHERE NOT EXISTS (SELECT 1 FROM dim_date WHERE date_key = 0)
                    UNION ALL SELECT 'dim_product' WHERE NOT EXISTS (SELECT 1 FROM dim_product WHERE product_key = 0)
                    UNION ALL SELECT 'dim_physician' WHERE NOT EXISTS (SELECT 1 FROM dim_physician WHERE physician_key = 0)
                    UNION ALL SELECT 'dim_geo' WHERE NOT EXISTS (SELECT 1 FROM dim_geo WHERE geo_key = 0)
                    UNION ALL SELECT 'dim_plan' WHERE NOT EXISTS (SELECT 1 FROM dim_plan WHERE plan_key = 0)
                    UNION ALL SELECT 'dim_dma' WHERE NOT EXISTS (SELECT 1 FROM dim_dma WHERE dma_key = 0)
                    """),
        ])
}
