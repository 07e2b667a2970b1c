import MeshRuntime

/// `brand-extracts`: one small weekly tracker per lifecycle phase for the brand team.
enum BrandExtracts {
    static let columns = FieldExtracts.columns

    static let outputs = [
        OutputPort(
            table: "launch_tracker", description: "Launch phase, weekly: NPP activity and the first prescriptions",
            grain: ["week_ending"],
            columns: columns([
                ("week_ending", "TEXT", "Friday"), ("weeks_since_launch", "INTEGER", "0 in the launch week"),
                ("hcp_delivered", "INTEGER", "HCP emails delivered"),
                ("hcp_open_rate", "REAL", "HCP open events / delivered"),
                ("hcp_click_rate", "REAL", "HCP click events / delivered"),
                ("consumer_delivered", "INTEGER", "consumer emails delivered"),
                ("consumer_open_rate", "REAL", "consumer open events / delivered"),
                ("web_sessions", "INTEGER", "brand site sessions"), ("copay_signups", "INTEGER", "copay card sign-ups"),
                ("media_spend_usd", "REAL", "paid media spend"), ("grps", "REAL", "gross rating points"),
                ("own_nrx", "REAL", "our brand's new prescriptions"), ("own_trx", "REAL", "our brand's TRx"),
                ("share", "REAL", "own TRx / basket TRx"),
            ])),
        OutputPort(
            table: "growth_tracker", description: "Growth phase, weekly: volume, share, prescribers and field reach",
            grain: ["week_ending"],
            columns: columns([
                ("week_ending", "TEXT", "Friday"), ("weeks_since_launch", "INTEGER", ""),
                ("own_nrx", "REAL", "our brand's NRx"), ("own_trx", "REAL", "our brand's TRx"),
                ("market_trx", "REAL", "the basket's TRx"), ("share", "REAL", "own_trx / market_trx"),
                ("writers", "INTEGER", "physicians with our brand's TRx that week"),
                ("calls", "INTEGER", "submitted calls"),
                ("reach", "REAL", "share of decile ≥ 7 targets called in the 4 weeks ending that week"),
                ("frequency", "REAL", "calls per reached target in those 4 weeks"),
            ])),
        OutputPort(
            table: "access_tracker", description: "Mature phase, weekly: payer access, rejections and gross-to-net",
            grain: ["week_ending"],
            columns: columns([
                ("week_ending", "TEXT", "Friday"), ("weeks_since_launch", "INTEGER", ""),
                ("paid", "INTEGER", "paid claims of our brand"), ("rejected", "INTEGER", "rejected claims"),
                ("rejected_pa", "INTEGER", "rejected, prior authorisation required (NCPDP 75)"),
                ("approval_rate", "REAL", "paid / (paid + rejected)"),
                ("lives_open_pct", "REAL", "lives on covered tiers without PA or ST / all lives, latest month"),
                ("lives_restricted_pct", "REAL", "lives covered with PA or ST / all lives"),
                ("gross_to_net_pct", "REAL", "rebates / WAC of the week's quarter"),
                ("share", "REAL", "own TRx / basket TRx"),
            ])),
    ]

    static let domain: Domain = {
        var domain = Domain(
            id: "brand-extracts", layer: "self-service", owner: FieldExtracts.owner,
            description:
                "Launch, growth and access trackers for the brand team, as CSV and SQLite files with a manifest.",
            inputs: [.domain("npp-mart"), .domain("physician-mart"), .domain("payer-mart"), .domain("field-extracts")],
            outputs: Self.outputs,
            recipe: Recipe([
                .sql(
                    "weeks",
                    """
                    CREATE TABLE own AS
                    SELECT product_key, market, launch_date FROM physician_mart.dim_product WHERE is_own_brand = 1
                    ORDER BY product_key LIMIT 1;
                    CREATE TABLE rx AS
                    SELECT f.week_ending,
                           SUM(CASE WHEN f.product_key = (SELECT product_key FROM own) THEN CAST(ROUND(f.nrx * 1000) AS INTEGER) ELSE 0 END) AS own_nrx,
                           SUM(CASE WHEN f.product_key = (SELECT product_key FROM own) THEN f.trx_milli ELSE 0 END) AS own_trx,
                           SUM(f.trx_milli) AS market_trx,
                           COUNT(DISTINCT CASE WHEN f.product_key = (SELECT product_key FROM own) AND f.trx_milli > 0
                                 AND f.physician_key <> 0 THEN f.physician_key END) AS writers
                    FROM physician_mart.fact_rx_weekly f JOIN physician_mart.dim_product p ON p.product_key = f.product_key
                    WHERE p.market = (SELECT market FROM own)
                    GROUP BY 1;
                    CREATE TABLE weeks AS
                    SELECT week_ending, (julianday(week_ending) - julianday(date((SELECT launch_date FROM own), 'weekday 5'))) / 7 AS weeks_since_launch,
                           own_nrx, own_trx, market_trx, writers,
                           CASE WHEN market_trx > 0 THEN ROUND(1.0 * own_trx / market_trx, 6) END AS share
                    FROM rx;
                    """),
                .sql(
                    "launch", after: ["weeks"],
                    """
                    CREATE TABLE email AS
                    SELECT date(date, 'weekday 5') AS week_ending, audience,
                           SUM(CASE WHEN event_type = 'delivered' THEN events ELSE 0 END) AS delivered,
                           SUM(CASE WHEN event_type = 'open' THEN events ELSE 0 END) AS opens,
                           SUM(CASE WHEN event_type = 'click' THEN events ELSE 0 END) AS clicks
                    FROM npp_mart.fact_email_daily GROUP BY 1, 2;
                    CREATE TABLE web AS
                    SELECT date(date, 'weekday 5') AS week_ending, SUM(sessions) AS sessions, SUM(copay_signups) AS signups
                    FROM npp_mart.fact_web_daily GROUP BY 1;
                    CREATE TABLE media AS
                    SELECT week_ending, SUM(CAST(ROUND(spend_usd * 100) AS INTEGER)) AS spend_cents,
                           SUM(CAST(ROUND(grps * 100) AS INTEGER)) AS grps_hundredths
                    FROM npp_mart.fact_media_weekly GROUP BY 1;
                    CREATE TABLE launch_tracker AS
                    SELECT w.week_ending, CAST(w.weeks_since_launch AS INTEGER) AS weeks_since_launch,
                           COALESCE(h.delivered, 0) AS hcp_delivered,
                           CASE WHEN h.delivered > 0 THEN ROUND(1.0 * h.opens / h.delivered, 6) END AS hcp_open_rate,
                           CASE WHEN h.delivered > 0 THEN ROUND(1.0 * h.clicks / h.delivered, 6) END AS hcp_click_rate,
                           COALESCE(c.delivered, 0) AS consumer_delivered,
                           CASE WHEN c.delivered > 0 THEN ROUND(1.0 * c.opens / c.delivered, 6) END AS consumer_open_rate,
                           COALESCE(b.sessions, 0) AS web_sessions, COALESCE(b.signups, 0) AS copay_signups,
                           COALESCE(m.spend_cents, 0) / 100.0 AS media_spend_usd, COALESCE(m.grps_hundredths, 0) / 100.0 AS grps,
                           w.own_nrx / 1000.0 AS own_nrx, w.own_trx / 1000.0 AS own_trx, w.share
                    FROM weeks w
                    LEFT JOIN email h ON h.week_ending = w.week_ending AND h.audience = 'HCP'
                    LEFT JOIN email c ON c.week_ending = w.week_ending AND c.audience = 'CONSUMER'
                    LEFT JOIN web b ON b.week_ending = w.week_ending
                    LEFT JOIN media m ON m.week_ending = w.week_ending
                    WHERE w.weeks_since_launch >= 0 AND w.weeks_since_launch < CAST(:launch_weeks AS INTEGER)
                    ORDER BY 1;
                    """),
                .sql(
                    "growth", after: ["weeks"],
                    """
                    CREATE TABLE field AS
                    SELECT week_ending, SUM(calls) AS calls, SUM(targets) AS targets,
                           SUM(CAST(ROUND(COALESCE(reach, 0) * targets) AS INTEGER)) AS reached,
                           SUM(CASE WHEN frequency IS NOT NULL THEN frequency * ROUND(COALESCE(reach, 0) * targets) ELSE 0 END) AS reached_calls
                    FROM field_extracts.territory_scorecard GROUP BY 1;
                    CREATE TABLE growth_tracker AS
                    SELECT w.week_ending, CAST(w.weeks_since_launch AS INTEGER) AS weeks_since_launch,
                           w.own_nrx / 1000.0 AS own_nrx, w.own_trx / 1000.0 AS own_trx, w.market_trx / 1000.0 AS market_trx,
                           w.share, w.writers, COALESCE(f.calls, 0) AS calls,
                           CASE WHEN f.targets > 0 THEN ROUND(1.0 * f.reached / f.targets, 6) END AS reach,
                           CASE WHEN f.reached > 0 THEN ROUND(f.reached_calls / f.reached, 6) END AS frequency
                    FROM weeks w LEFT JOIN field f ON f.week_ending = w.week_ending
                    WHERE w.weeks_since_launch >= CAST(:launch_weeks AS INTEGER) AND w.weeks_since_launch < CAST(:growth_end_weeks AS INTEGER)
                    ORDER BY 1;
                    """),
                .sql(
                    "access", after: ["weeks"],
                    """
                    CREATE TABLE claims AS
                    SELECT week_ending, SUM(paid) AS paid, SUM(rejected) AS rejected, SUM(rejected_pa) AS rejected_pa
                    FROM payer_mart.fact_plan_claims_weekly WHERE product_key = (SELECT product_key FROM own) GROUP BY 1;
                    CREATE TABLE access_month AS
                    SELECT month, SUM(lives) AS lives,
                           SUM(CASE WHEN covered = 1 AND pa = 0 AND st = 0 THEN lives ELSE 0 END) AS open_lives,
                           SUM(CASE WHEN covered = 1 AND (pa = 1 OR st = 1) THEN lives ELSE 0 END) AS restricted_lives
                    FROM payer_mart.fact_formulary_monthly WHERE product_key = (SELECT product_key FROM own) GROUP BY 1;
                    CREATE TABLE gtn AS
                    SELECT quarter, SUM(CAST(ROUND(rebate_amount * 100) AS INTEGER)) AS rebate, SUM(CAST(ROUND(wac_amount * 100) AS INTEGER)) AS wac
                    FROM payer_mart.fact_rebates_quarterly WHERE product_key = (SELECT product_key FROM own) GROUP BY 1;
                    CREATE TABLE access_tracker AS
                    SELECT w.week_ending, CAST(w.weeks_since_launch AS INTEGER) AS weeks_since_launch,
                           COALESCE(c.paid, 0) AS paid, COALESCE(c.rejected, 0) AS rejected, COALESCE(c.rejected_pa, 0) AS rejected_pa,
                           CASE WHEN c.paid + c.rejected > 0 THEN ROUND(1.0 * c.paid / (c.paid + c.rejected), 6) END AS approval_rate,
                           CASE WHEN a.lives > 0 THEN ROUND(1.0 * a.open_lives / a.lives, 6) END AS lives_open_pct,
                           CASE WHEN a.lives > 0 THEN ROUND(1.0 * a.restricted_lives / a.lives, 6) END AS lives_restricted_pct,
                           CASE WHEN g.wac > 0 THEN ROUND(1.0 * g.rebate / g.wac, 6) END AS gross_to_net_pct,
                           w.share
                    FROM weeks w
                    LEFT JOIN claims c ON c.week_ending = w.week_ending
                    LEFT JOIN access_month a ON a.month = (SELECT MAX(month) FROM access_month WHERE month <= substr(w.week_ending, 1, 7))
                    LEFT JOIN gtn g ON g.quarter = substr(w.week_ending, 1, 4) || 'Q' || ((CAST(substr(w.week_ending, 6, 2) AS INTEGER) + 2) / 3)
                    WHERE w.weeks_since_launch >= CAST(:growth_end_weeks AS INTEGER)
                    ORDER BY 1;
                    """),
            ]),
            tests: [
                Unique(table: "launch_tracker", grain: ["week_ending"]),
                Unique(table: "growth_tracker", grain: ["week_ending"]),
                Unique(table: "access_tracker", grain: ["week_ending"]),
                CustomSQLTest(
                    "rates_are_shares",
                    sql: """
                        SELECT week_ending FROM launch_tracker WHERE hcp_open_rate > 1 OR hcp_click_rate > 1 OR share > 1
                        UNION ALL SELECT week_ending FROM growth_tracker WHERE share > 1 OR reach > 1
                        UNION ALL SELECT week_ending FROM access_tracker WHERE approval_rate > 1 OR lives_open_pct > 1
                        """),
            ],
            parameters: ["launch_weeks": "26", "growth_end_weeks": "104"])
        let published = domain.outputs
        domain.afterPublish = { try ExtractExport.export($0, outputs: published) }
        return domain
    }()
}
