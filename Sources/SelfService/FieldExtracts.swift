import MeshRuntime

/// `field-extracts`: deciles, the call plan and the territory scorecard for the sales force.
enum FieldExtracts {
    static let owner = Owner(team: "commercial analytics: self-service", contact: "analytics@pharma-mesh.example")

    static func columns(_ spec: [(String, String, String)]) -> [ColumnContract] {
        spec.map { ColumnContract($0.0, $0.1, $0.2) }
    }

    static let outputs = [
        OutputPort(
            table: "physician_deciles",
            description:
                "Prescribers ranked by basket TRx over the window ending at the as-of week; decile 10 writes the top tenth of volume, 0 is a non-writer",
            grain: ["physician_id", "market"],
            columns: columns([
                ("physician_id", "INTEGER", "physician-master's stable id"), ("npi", "TEXT", "10-digit NPI"),
                ("last_name", "TEXT", "golden last name"), ("first_name", "TEXT", "golden first name"),
                ("specialty", "TEXT", "normalised specialty"), ("territory_id", "TEXT", "sales territory"),
                ("market", "TEXT", "market basket"), ("as_of_week", "TEXT", "the last week of the window"),
                ("window_weeks", "INTEGER", "weeks in the window (13 by default)"),
                (
                    "trx_13wk", "REAL",
                    "basket TRx in the window (week_ending in (as_of − 7×weeks days, as_of]); the contract's name, kept whatever window_weeks is: trx_window is the same figure"
                ),
                ("trx_window", "REAL", "basket TRx in the window of window_weeks weeks (the same as trx_13wk)"),
                (
                    "decile", "INTEGER",
                    "groups − floor(cumulative share before × groups), clamped to 1..groups; 0 non-writer"
                ),
            ])),
        OutputPort(
            table: "call_plan",
            description:
                "Active top-decile physicians of our brand's market with at least one plan covering the brand in their territory",
            grain: ["physician_id"],
            columns: columns([
                ("physician_id", "INTEGER", "physician-master's stable id"), ("npi", "TEXT", "10-digit NPI"),
                ("last_name", "TEXT", "golden last name"), ("first_name", "TEXT", "golden first name"),
                ("territory_id", "TEXT", "sales territory"), ("decile", "INTEGER", "from physician_deciles"),
                ("trx_13wk", "REAL", "basket TRx in the window"),
                ("trx_window", "REAL", "basket TRx in the window (the same as trx_13wk)"),
                ("covered_plans", "INTEGER", "plans of the territory's states covering our brand in the latest month"),
                (
                    "calls_per_month", "INTEGER",
                    "suggested frequency: the top group → 4, the next → 3, the third → 2, lower → 1 (deciles 10, 9, 8)"
                ),
            ])),
        OutputPort(
            table: "territory_scorecard",
            description:
                "Our brand by territory and week: volume, share, calls, reach and frequency on targets, HCP email",
            grain: ["territory_id", "week_ending"],
            columns: columns([
                ("territory_id", "TEXT", "sales territory ('UNASSIGNED' for prescribers outside the alignment)"),
                ("week_ending", "TEXT", "Friday"), ("own_trx", "REAL", "our brand's TRx"),
                ("market_trx", "REAL", "the basket's TRx"), ("share", "REAL", "own_trx / market_trx"),
                ("calls", "INTEGER", "submitted calls on the territory's physicians that week"),
                ("targets", "INTEGER", "physicians of decile ≥ 7 in the territory"),
                ("reach", "REAL", "share of targets called at least once in the 4 weeks ending that week"),
                ("frequency", "REAL", "calls per reached target in those 4 weeks"),
                ("hcp_email_clicks", "INTEGER", "email clicks by the territory's physicians that week"),
            ])),
    ]

    static let domain: Domain = {
        var domain = Domain(
            id: "field-extracts", layer: "self-service", owner: owner,
            description:
                "Deciles, the call plan and territory scorecards for the field, as CSV and SQLite files with a manifest.",
            inputs: [.domain("physician-mart"), .domain("payer-mart"), .domain("npp-mart")],
            outputs: Self.outputs,
            recipe: Recipe([
                .sql(
                    "deciles",
                    """
                    CREATE TABLE params AS
                    SELECT COALESCE(NULLIF(:as_of_week, 'latest'), (SELECT MAX(week_ending) FROM physician_mart.fact_rx_weekly)) AS as_of,
                           CAST(:window_weeks AS INTEGER) AS weeks, CAST(:groups AS INTEGER) AS groups;
                    CREATE TABLE markets AS
                    SELECT DISTINCT market FROM physician_mart.dim_product
                    WHERE market IS NOT NULL AND (:market = 'all' OR market = :market);
                    CREATE TABLE volume AS
                    SELECT f.physician_key AS physician_id, p.market, SUM(f.trx_milli) AS trx_milli
                    FROM physician_mart.fact_rx_weekly f JOIN physician_mart.dim_product p ON p.product_key = f.product_key, params
                    WHERE f.physician_key <> 0 AND p.market IN (SELECT market FROM markets)
                      AND f.week_ending > date(params.as_of, '-' || (params.weeks * 7) || ' days') AND f.week_ending <= params.as_of
                    GROUP BY 1, 2 HAVING SUM(f.trx_milli) > 0;
                    CREATE TABLE ranked AS
                    SELECT physician_id, market, trx_milli,
                           COALESCE(SUM(trx_milli) OVER (PARTITION BY market ORDER BY trx_milli DESC, physician_id
                                                         ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before,
                           SUM(trx_milli) OVER (PARTITION BY market) AS total
                    FROM volume;
                    CREATE TABLE physician_deciles AS
                    SELECT d.physician_id, d.npi, d.last_name, d.first_name, d.specialty, d.territory_id, m.market,
                           params.as_of AS as_of_week, params.weeks AS window_weeks, COALESCE(r.trx_milli, 0) / 1000.0 AS trx_13wk,
                           COALESCE(r.trx_milli, 0) / 1000.0 AS trx_window,
                           CASE WHEN r.physician_id IS NULL THEN 0
                                ELSE MAX(1, MIN(params.groups, params.groups - (r.before * params.groups) / r.total)) END AS decile
                    FROM physician_mart.dim_physician d CROSS JOIN markets m CROSS JOIN params
                    LEFT JOIN ranked r ON r.physician_id = d.physician_key AND r.market = m.market
                    WHERE d.physician_key <> 0
                    ORDER BY d.physician_id, m.market;
                    """),
                .sql(
                    "call_plan", after: ["deciles"],
                    """
                    CREATE TABLE own AS
                    SELECT product_key, market FROM payer_mart.dim_product WHERE is_own_brand = 1 ORDER BY product_key LIMIT 1;
                    CREATE TABLE covered_plans AS
                    SELECT g.territory_id, COUNT(DISTINCT f.plan_key) AS plans
                    FROM payer_mart.fact_formulary_monthly f
                    JOIN payer_mart.dim_plan pl ON pl.plan_key = f.plan_key
                    JOIN (SELECT DISTINCT territory_id, state FROM payer_mart.dim_geo WHERE territory_id IS NOT NULL) g ON g.state = pl.state
                    WHERE f.product_key = (SELECT product_key FROM own) AND f.covered = 1
                      AND f.month = (SELECT MAX(month) FROM payer_mart.fact_formulary_monthly)
                    GROUP BY 1;
                    CREATE TABLE call_plan AS
                    SELECT d.physician_id, d.npi, d.last_name, d.first_name, d.territory_id, d.decile, d.trx_13wk,
                           d.trx_window, c.plans AS covered_plans,
                           CASE CAST(:groups AS INTEGER) - d.decile WHEN 0 THEN 4 WHEN 1 THEN 3 WHEN 2 THEN 2 ELSE 1 END
                               AS calls_per_month
                    FROM physician_deciles d
                    JOIN physician_mart.dim_physician p ON p.physician_key = d.physician_id
                    JOIN covered_plans c ON c.territory_id = d.territory_id
                    WHERE d.market = (SELECT market FROM own) AND d.decile >= CAST(:call_plan_min_decile AS INTEGER)
                      AND p.status = 'active' AND c.plans >= 1
                    ORDER BY d.decile DESC, d.trx_13wk DESC, d.physician_id;
                    """),
                .sql(
                    "scorecard", after: ["deciles", "call_plan"],
                    """
                    CREATE TABLE physician_territory AS
                    SELECT physician_key, COALESCE(territory_id, 'UNASSIGNED') AS territory_id FROM physician_mart.dim_physician;
                    CREATE TABLE targets AS
                    SELECT d.physician_id, t.territory_id FROM physician_deciles d
                    JOIN physician_territory t ON t.physician_key = d.physician_id
                    WHERE d.market = (SELECT market FROM own) AND d.decile >= 7;
                    -- The week of a call from the calendar (a lookup costs less than date() on every row).
                    CREATE TABLE calls_weekly AS
                    SELECT t.territory_id, c.physician_key, COALESCE(d.week_ending, date(c.call_date, 'weekday 5')) AS week_ending,
                           SUM(c.calls) AS calls
                    FROM physician_mart.fact_calls c JOIN physician_territory t ON t.physician_key = c.physician_key
                    LEFT JOIN physician_mart.dim_date d ON d.date_key = c.date_key
                    GROUP BY 1, 2, 3;
                    CREATE TABLE territory_calls AS
                    SELECT territory_id, week_ending, SUM(calls) AS calls FROM calls_weekly GROUP BY 1, 2;
                    CREATE TABLE target_calls AS
                    SELECT territory_id, week_ending, physician_key, calls FROM calls_weekly
                    WHERE physician_key IN (SELECT physician_id FROM targets);
                    CREATE INDEX target_calls_by_territory ON target_calls (territory_id, week_ending);
                    CREATE TABLE clicks_weekly AS
                    SELECT t.territory_id, e.week_ending, SUM(e.clicks) AS clicks
                    FROM npp_mart.fact_hcp_email_weekly e JOIN physician_territory t ON t.physician_key = e.physician_key
                    GROUP BY 1, 2;
                    CREATE TABLE territory_scorecard AS
                    WITH weeks AS (
                        SELECT territory_id, week_ending, own_trx, market_trx, share FROM physician_mart.mart_share_weekly
                        WHERE market = (SELECT market FROM own)),
                    reached AS (
                        SELECT w.territory_id, w.week_ending, COUNT(DISTINCT c.physician_key) AS reached, SUM(c.calls) AS calls
                        FROM weeks w JOIN target_calls c ON c.territory_id = w.territory_id
                            AND c.week_ending > date(w.week_ending, '-28 days') AND c.week_ending <= w.week_ending
                        GROUP BY 1, 2),
                    target_counts AS (SELECT territory_id, COUNT(*) AS targets FROM targets GROUP BY 1)
                    SELECT w.territory_id, w.week_ending, w.own_trx, w.market_trx, w.share,
                           COALESCE(tc.calls, 0) AS calls,
                           COALESCE(t.targets, 0) AS targets,
                           CASE WHEN t.targets > 0 THEN ROUND(1.0 * COALESCE(r.reached, 0) / t.targets, 6) END AS reach,
                           CASE WHEN r.reached > 0 THEN ROUND(1.0 * r.calls / r.reached, 6) END AS frequency,
                           COALESCE(k.clicks, 0) AS hcp_email_clicks
                    FROM weeks w LEFT JOIN target_counts t ON t.territory_id = w.territory_id
                    LEFT JOIN reached r ON r.territory_id = w.territory_id AND r.week_ending = w.week_ending
                    LEFT JOIN territory_calls tc ON tc.territory_id = w.territory_id AND tc.week_ending = w.week_ending
                    LEFT JOIN clicks_weekly k ON k.territory_id = w.territory_id AND k.week_ending = w.week_ending
                    ORDER BY 1, 2;
                    """),
            ]),
            tests: [
                Unique(table: "physician_deciles", grain: ["physician_id", "market"]),
                Unique(table: "call_plan", grain: ["physician_id"]),
                Unique(table: "territory_scorecard", grain: ["territory_id", "week_ending"]),
                CustomSQLTest(
                    "deciles_within_groups",
                    sql: "SELECT * FROM physician_deciles WHERE decile < 0 OR decile > CAST(:groups AS INTEGER)"),
                CustomSQLTest(
                    "writers_have_a_decile_and_non_writers_zero",
                    sql: "SELECT * FROM physician_deciles WHERE (trx_13wk > 0) <> (decile > 0)"),
                CustomSQLTest(
                    "deciles_are_monotonic_in_volume",
                    sql: """
                        WITH bounds AS (
                            SELECT market, decile, MIN(trx_13wk) AS lowest, MAX(trx_13wk) AS highest
                            FROM physician_deciles WHERE decile > 0 GROUP BY market, decile)
                        SELECT a.market, a.decile, a.lowest, b.decile AS next, b.highest
                        FROM bounds a JOIN bounds b ON b.market = a.market AND b.decile = a.decile - 1
                        WHERE a.lowest < b.highest
                        """),
                CustomSQLTest(
                    "top_decile_is_the_fewest_writers", severity: .warn,
                    sql: """
                        SELECT market, SUM(decile = 10) AS top, SUM(decile = 1) AS bottom FROM physician_deciles
                        GROUP BY market HAVING SUM(decile = 10) > SUM(decile = 1)
                        """,
                    postgresql: """
                        SELECT market, COUNT(*) FILTER (WHERE decile = 10) AS top,
                               COUNT(*) FILTER (WHERE decile = 1) AS bottom
                        FROM physician_deciles GROUP BY market
                        HAVING COUNT(*) FILTER (WHERE decile = 10) > COUNT(*) FILTER (WHERE decile = 1)
                        """),
                // Parameters that contradict each other make an empty extract: that is a failure, not a success.
                CustomSQLTest(
                    "call_plan_min_decile_within_groups",
                    sql: """
                        SELECT CAST(:call_plan_min_decile AS INTEGER) AS call_plan_min_decile,
                               CAST(:groups AS INTEGER) AS groups
                        WHERE CAST(:call_plan_min_decile AS INTEGER) > CAST(:groups AS INTEGER)
                           OR CAST(:call_plan_min_decile AS INTEGER) < 1
                        """),
                CustomSQLTest(
                    "call_plan_not_empty", severity: .warn,
                    sql: """
                        SELECT COUNT(*) AS ranked_writers FROM physician_deciles
                        WHERE decile >= CAST(:call_plan_min_decile AS INTEGER) AND NOT EXISTS (SELECT 1 FROM call_plan)
                        HAVING COUNT(*) > 0
                        """),
                CustomSQLTest(
                    "reach_is_a_share",
                    sql: "SELECT * FROM territory_scorecard WHERE reach < 0 OR reach > 1 OR share < 0 OR share > 1"),
            ],
            parameters: [
                "as_of_week": "latest", "window_weeks": "13", "groups": "10", "market": "all",
                "call_plan_min_decile": "8",
            ])
        let published = domain.outputs
        domain.afterPublish = { try ExtractExport.export($0, outputs: published) }
        return domain
    }()
}
