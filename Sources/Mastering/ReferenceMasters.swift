import MeshRuntime

/// payer-master, product-master and geo-master: small mastered domains built in SQL.
enum ReferenceMasters {
    static let owner = Owner(team: "master data: reference", contact: "reference-mdm@pharma-mesh.example")

    static func columns(_ spec: [(String, String, String)]) -> [ColumnContract] {
        spec.map { ColumnContract($0.0, $0.1, $0.2) }
    }

    static let payerMaster = Domain(
        id: "payer-master", layer: "mastered", owner: owner,
        description:
            "Payer → PBM → plan from the formulary file, with claims' BIN/PCN/group and rebate plan ids resolved to plans.",
        inputs: [.domain("raw-formulary"), .domain("raw-claims"), .domain("raw-rebates")],
        outputs: [
            OutputPort(
                table: "payer", grain: ["payer_id"],
                columns: columns([("payer_id", "TEXT", "formulary payer id"), ("payer_name", "TEXT", "")])),
            OutputPort(
                table: "pbm", grain: ["pbm_id"], columns: columns([("pbm_id", "TEXT", ""), ("pbm_name", "TEXT", "")])),
            OutputPort(
                table: "plan", description: "The latest formulary description of each plan", grain: ["plan_id"],
                columns: columns([
                    ("plan_id", "TEXT", ""), ("plan_name", "TEXT", ""), ("payer_id", "TEXT", ""),
                    ("pbm_id", "TEXT", ""),
                    ("channel", "TEXT", "COMMERCIAL, MEDICARE_D, MEDICAID or VA_DOD"),
                    ("lives", "INTEGER", "covered lives"),
                    ("state", "TEXT", ""), ("as_of", "TEXT", "the formulary file the description comes from"),
                ])),
            OutputPort(
                table: "plan_xref", description: "Source keys resolved to plans", grain: ["source", "source_key"],
                columns: columns([
                    ("source", "TEXT", "formulary, claims or rebates"),
                    ("source_key", "TEXT", "plan id, or bin|pcn|group"),
                    ("plan_id", "TEXT", "NULL when unresolved or payer-level"),
                    ("match_rule", "TEXT", "exact, bin_pcn_group, bin_pcn, payer_level or unresolved"),
                ])),
            OutputPort(
                table: "unresolved_keys", description: "Keys that resolve to no plan, with their claim counts",
                columns: columns([("source", "TEXT", ""), ("source_key", "TEXT", ""), ("claims", "INTEGER", "")])),
        ],
        recipe: Recipe([
            .sql(
                "plans",
                """
                CREATE TABLE plan AS
                SELECT p.plan_id, p.plan_name, p.payer_id, p.pbm_id, p.channel, p.lives, p.state, p.as_of
                FROM raw_formulary.formulary_plan p
                WHERE p.as_of = (SELECT MAX(q.as_of) FROM raw_formulary.formulary_plan q WHERE q.plan_id = p.plan_id);
                CREATE TABLE payer AS
                SELECT p.payer_id, p.payer_name FROM raw_formulary.formulary_payer p
                WHERE p.as_of = (SELECT MAX(q.as_of) FROM raw_formulary.formulary_payer q WHERE q.payer_id = p.payer_id);
                CREATE TABLE pbm AS
                SELECT pbm_id, MAX(pbm_name) AS pbm_name FROM raw_formulary.formulary_pbm p
                WHERE p.as_of = (SELECT MAX(q.as_of) FROM raw_formulary.formulary_pbm q WHERE q.pbm_id = p.pbm_id)
                GROUP BY pbm_id;
                """),
            .sql(
                "xref", after: ["plans"],
                """
                CREATE TABLE triple AS
                SELECT bin || '|' || COALESCE(pcn, '') || '|' || COALESCE(group_id, '') AS source_key, plan_id, MAX(as_of) AS as_of
                FROM raw_formulary.formulary_plan_key GROUP BY 1, 2;
                CREATE TABLE bin_pcn AS
                SELECT bin || '|' || COALESCE(pcn, '') AS bin_pcn, MIN(plan_id) AS plan_id
                FROM raw_formulary.formulary_plan_key GROUP BY 1 HAVING COUNT(DISTINCT plan_id) = 1;
                CREATE TABLE claim_keys AS
                SELECT COALESCE(bin, '') || '|' || COALESCE(pcn, '') || '|' || COALESCE(group_id, '') AS source_key,
                       COALESCE(bin, '') || '|' || COALESCE(pcn, '') AS bin_pcn, COUNT(*) AS claims
                FROM raw_claims.claims GROUP BY 1, 2;
                CREATE TABLE plan_xref AS
                SELECT 'formulary' AS source, plan_id AS source_key, plan_id, 'exact' AS match_rule FROM plan
                UNION ALL
                SELECT 'claims', k.source_key,
                       COALESCE((SELECT t.plan_id FROM triple t WHERE t.source_key = k.source_key ORDER BY t.as_of DESC, t.plan_id LIMIT 1),
                                (SELECT b.plan_id FROM bin_pcn b WHERE b.bin_pcn = k.bin_pcn)),
                       CASE WHEN EXISTS (SELECT 1 FROM triple t WHERE t.source_key = k.source_key) THEN 'bin_pcn_group'
                            WHEN EXISTS (SELECT 1 FROM bin_pcn b WHERE b.bin_pcn = k.bin_pcn) THEN 'bin_pcn'
                            ELSE 'unresolved' END
                FROM claim_keys k
                UNION ALL
                SELECT 'rebates', COALESCE(NULLIF(r.plan_id, ''), 'payer:' || r.payer_id),
                       CASE WHEN EXISTS (SELECT 1 FROM plan p WHERE p.plan_id = r.plan_id) THEN r.plan_id END,
                       CASE WHEN r.plan_id IS NULL OR r.plan_id = '' THEN 'payer_level'
                            WHEN EXISTS (SELECT 1 FROM plan p WHERE p.plan_id = r.plan_id) THEN 'exact' ELSE 'unresolved' END
                FROM (SELECT DISTINCT plan_id, payer_id FROM raw_rebates.rebates) r;
                CREATE TABLE unresolved_keys AS
                SELECT x.source, x.source_key, COALESCE(k.claims, 0) AS claims
                FROM plan_xref x LEFT JOIN claim_keys k ON x.source = 'claims' AND k.source_key = x.source_key
                WHERE x.match_rule = 'unresolved' ORDER BY claims DESC, x.source, x.source_key;
                """),
        ]),
        tests: [
            Unique(table: "plan", grain: ["plan_id"]), Unique(table: "payer", grain: ["payer_id"]),
            Unique(table: "plan_xref", grain: ["source", "source_key"]),
            Relationship(table: "plan", column: "payer_id", references: "payer", column: "payer_id"),
            Relationship(table: "plan_xref", column: "plan_id", references: "plan", column: "plan_id"),
            AcceptedValues(
                table: "plan", column: "channel", values: ["COMMERCIAL", "MEDICARE_D", "MEDICAID", "VA_DOD"]),
            CustomSQLTest(
                "unresolved_claims_share", severity: .warn,
                sql: """
                    SELECT SUM(claims) AS unresolved, (SELECT COUNT(*) FROM raw_claims.claims) AS total FROM unresolved_keys
                    HAVING 1.0 * SUM(claims) / MAX(1, (SELECT COUNT(*) FROM raw_claims.claims)) > CAST(:max_unresolved_share AS REAL)
                    """),
        ],
        parameters: ["max_unresolved_share": "0.10"])

    static let productMaster = Domain(
        id: "product-master", layer: "mastered", owner: owner,
        description:
            "The market basket: one row per NDC11 with brand (a generic's own name, as it has no brand), generic, market and list price.",
        inputs: [.domain("raw-products")],
        outputs: [
            OutputPort(
                table: "product", grain: ["ndc11"],
                columns: columns([
                    ("ndc11", "TEXT", "11 digits"),
                    ("brand", "TEXT", "the brand name; for a generic, which has none, its generic name"),
                    ("generic", "TEXT", ""),
                    ("market", "TEXT", "market basket"),
                    ("manufacturer", "TEXT", ""), ("is_own_brand", "INTEGER", "1 for our brand"),
                    ("launch_date", "TEXT", ""),
                    ("wac_per_unit", "REAL", "list price per unit, USD"), ("units_per_pack", "INTEGER", ""),
                ]))
        ],
        recipe: Recipe([
            .sql(
                "product",
                """
                CREATE TABLE product AS
                SELECT ndc11, COALESCE(brand_name, generic_name) AS brand, generic_name AS generic, market, manufacturer,
                       is_own_brand, launch_date,
                       wac_per_unit, units_per_pack
                FROM raw_products.products ORDER BY ndc11
                """)
        ]),
        tests: [
            Unique(table: "product", grain: ["ndc11"]), NotNull(table: "product", columns: ["brand", "market"]),
            CustomSQLTest(
                "one_own_brand_per_market", severity: .warn,
                sql: "SELECT market, SUM(is_own_brand) AS own FROM product GROUP BY market HAVING SUM(is_own_brand) > 1"
            ),
        ])

    static let geoMaster = Domain(
        id: "geo-master", layer: "mastered", owner: owner,
        description:
            "The sales force alignment (ZIP → territory → district → region) and the DMAs of media and web sessions.",
        inputs: [.domain("raw-alignment"), .domain("raw-media"), .domain("raw-web_sessions")],
        outputs: [
            OutputPort(
                table: "territory", grain: ["territory_id"],
                columns: columns([
                    ("territory_id", "TEXT", ""), ("territory_name", "TEXT", ""), ("district", "TEXT", ""),
                    ("region", "TEXT", ""),
                    ("rep_id", "TEXT", "the one rep of the territory"),
                ])),
            OutputPort(
                table: "zip_territory", grain: ["zip5"],
                columns: columns([("zip5", "TEXT", ""), ("territory_id", "TEXT", ""), ("effective_date", "TEXT", "")])),
            OutputPort(
                table: "dma", grain: ["dma_code"],
                columns: columns([("dma_code", "TEXT", ""), ("dma_name", "TEXT", "")])),
        ],
        recipe: Recipe([
            .sql(
                "alignment",
                """
                CREATE TABLE zip_territory AS SELECT zip AS zip5, territory_id, effective_date FROM raw_alignment.alignment;
                CREATE TABLE territory AS
                SELECT territory_id, MAX(territory_name) AS territory_name, MAX(district) AS district, MAX(region) AS region,
                       MAX(rep_id) AS rep_id
                FROM raw_alignment.alignment GROUP BY territory_id;
                CREATE TABLE dma AS
                SELECT dma_code, COALESCE(MAX(dma_name), 'DMA ' || dma_code) AS dma_name FROM (
                    SELECT dma_code, dma_name FROM raw_media.media
                    UNION ALL SELECT DISTINCT dma_code, NULL FROM raw_web_sessions.web_sessions WHERE dma_code IS NOT NULL)
                GROUP BY dma_code;
                """)
        ]),
        tests: [
            Unique(table: "territory", grain: ["territory_id"]), Unique(table: "zip_territory", grain: ["zip5"]),
            Relationship(
                table: "zip_territory", column: "territory_id", references: "territory", column: "territory_id"),
        ])
}
