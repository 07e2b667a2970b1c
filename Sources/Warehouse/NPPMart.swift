import GRDB
import MeshRuntime

/// `npp-mart`: non-personal promotion (email, web, paid media), the launch phase's marts.
enum NPPMart {
    /// Events are dated by the local date they carry (`ts` is ISO 8601 with its own offset).
    static let eventDay = Partition.day(of: "ts")

    /// The raw email events, keyed by event id: each fact seeks its partitions through an index of its
    /// partition expression.
    static let events = "raw_email_events.email_events"

    static let email = IncrementalFact(
        table: "fact_email_daily", partitionColumn: "date",
        create: """
            CREATE TABLE fact_email_daily (date TEXT NOT NULL, campaign_id TEXT NOT NULL, audience TEXT NOT NULL,
                event_type TEXT NOT NULL, date_key INTEGER NOT NULL, events INTEGER NOT NULL,
                unique_recipients INTEGER NOT NULL,
                PRIMARY KEY (date, campaign_id, audience, event_type)) WITHOUT ROWID
            """,
        source: .init(events, partition: eventDay),
        indexes: [InputIndex(events, eventDay)],
        insert: """
            INSERT INTO fact_email_daily
            SELECT {partition}, COALESCE(campaign_id, ''), COALESCE(audience, ''), COALESCE(event_type, ''),
                   \(Marts.dateKey("{partition}")), COUNT(*), COUNT(DISTINCT recipient_hash)
            FROM raw_email_events.email_events WHERE {partitions}
            GROUP BY 1, 2, 3, 4
            """)

    static let web = IncrementalFact(
        table: "fact_web_daily", partitionColumn: "date",
        create: """
            CREATE TABLE fact_web_daily (date TEXT NOT NULL, channel TEXT NOT NULL, dma_key INTEGER NOT NULL,
                date_key INTEGER NOT NULL, sessions INTEGER NOT NULL, pages INTEGER NOT NULL, copay_signups INTEGER NOT NULL,
                avg_duration_s REAL, PRIMARY KEY (date, channel, dma_key)) WITHOUT ROWID
            """,
        source: .init("raw_web_sessions.web_sessions", alias: "w", partition: .column("date")),
        lookups: [
            Lookup(
                "dma", table: "dim_dma", alias: "d", key: "dma_code", value: "dma_key", filter: "{dma_key} <> 0",
                input: "dma_code")
        ],
        indexes: [InputIndex("raw_web_sessions.web_sessions", Partition.column("date"))],
        insert: """
            INSERT INTO fact_web_daily
            SELECT {partition}, COALESCE(w.channel, ''), COALESCE(d.dma_key, 0), \(Marts.dateKey("w.date")), COUNT(*),
                   SUM(COALESCE(w.pages, 0)), SUM(COALESCE(w.copay_card_signup, 0)),
                   ROUND(1.0 * SUM(w.duration_s) / COUNT(w.duration_s), 3)
            FROM raw_web_sessions.web_sessions w {lookup:dma}
            WHERE {partitions}
            GROUP BY 1, 2, 3
            """)

    /// HCP email engagement by physician and week, for territory scorecards.
    static let hcpWeekly = IncrementalFact(
        table: "fact_hcp_email_weekly", partitionColumn: "week_ending",
        create: """
            CREATE TABLE fact_hcp_email_weekly (week_ending TEXT NOT NULL, physician_key INTEGER NOT NULL,
                week_key INTEGER NOT NULL, delivered INTEGER NOT NULL, opens INTEGER NOT NULL, clicks INTEGER NOT NULL,
                PRIMARY KEY (week_ending, physician_key)) WITHOUT ROWID
            """,
        source: .init(events, alias: "e", partition: .week(of: eventDay), filter: "audience = 'HCP'"),
        lookups: [MartLookups.physician("npi", source: "nppes", input: "npi", join: .inner)],
        // No index on the events' npi: under the inner join, SQLite would drive the join from the cross-walk
        // instead of the week's index (docs/benchmarks.md).
        indexes: [InputIndex(events, .week(of: eventDay))],
        insert: """
            INSERT INTO fact_hcp_email_weekly
            SELECT {partition}, m.physician_id, \(Marts.dateKey("{partition}")), SUM(e.event_type = 'delivered'),
                   SUM(e.event_type = 'open'), SUM(e.event_type = 'click')
            FROM raw_email_events.email_events e
            {lookup:npi}
            WHERE e.audience = 'HCP' AND m.physician_id IS NOT NULL AND {partitions}
            GROUP BY 1, 2
            """)

    static let engagement = IncrementalFact(
        table: "fact_hcp_engagement", partitionColumn: "campaign_id",
        create: """
            CREATE TABLE fact_hcp_engagement (campaign_id TEXT NOT NULL, physician_key INTEGER NOT NULL,
                delivered INTEGER NOT NULL, opens INTEGER NOT NULL, clicks INTEGER NOT NULL,
                PRIMARY KEY (campaign_id, physician_key)) WITHOUT ROWID
            """,
        source: .init(events, alias: "e", partition: .column("campaign_id"), filter: "audience = 'HCP'"),
        lookups: [MartLookups.physician("npi", source: "nppes", input: "npi", join: .inner)],
        indexes: [InputIndex(events, Partition.column("campaign_id"))],
        insert: """
            INSERT INTO fact_hcp_engagement
            SELECT {partition}, m.physician_id, SUM(e.event_type = 'delivered'), SUM(e.event_type = 'open'),
                   SUM(e.event_type = 'click')
            FROM raw_email_events.email_events e
            {lookup:npi}
            WHERE e.audience = 'HCP' AND m.physician_id IS NOT NULL AND e.campaign_id IS NOT NULL AND {partitions}
            GROUP BY 1, 2
            """)

    static let domain = Domain(
        id: "npp-mart", layer: "integrated", owner: Marts.owner,
        description: "Non-personal promotion: email events, web sessions and paid media, by day, week and DMA.",
        inputs: [
            .domain("raw-email_events"), .domain("raw-web_sessions"), .domain("raw-media"),
            .domain("physician-master"), .domain("conformed-dims"),
        ],
        outputs: [
            DimensionContracts.date, DimensionContracts.dma, DimensionContracts.physician,
            OutputPort(
                table: "fact_email_daily", description: "Email events, each event_id counted once",
                grain: ["date", "campaign_id", "audience", "event_type"],
                columns: Marts.columns([
                    ("date", "TEXT", "the event's local date"), ("date_key", "INTEGER", "dim_date"),
                    ("campaign_id", "TEXT", "campaign id as the source sends it"),
                    ("audience", "TEXT", "HCP or CONSUMER"),
                    ("event_type", "TEXT", "sent, delivered, open, click, bounce, unsubscribe"),
                    ("events", "INTEGER", "distinct event ids"),
                    ("unique_recipients", "INTEGER", "distinct recipient hashes"),
                ])),
            OutputPort(
                table: "fact_web_daily", description: "Brand web site sessions", grain: ["date", "channel", "dma_key"],
                columns: Marts.columns([
                    ("date", "TEXT", "ISO date"), ("date_key", "INTEGER", "dim_date key (YYYYMMDD)"),
                    ("channel", "TEXT", "traffic source"),
                    ("dma_key", "INTEGER", "dim_dma (0: unknown)"), ("sessions", "INTEGER", "web sessions"),
                    ("pages", "INTEGER", "pages viewed"), ("copay_signups", "INTEGER", "copay card sign-ups"),
                    ("avg_duration_s", "REAL", "mean session duration, seconds"),
                ])),
            OutputPort(
                table: "fact_hcp_email_weekly",
                description: "HCP email engagement of resolved physicians by week (for territory scorecards)",
                grain: ["physician_key", "week_ending"],
                columns: Marts.columns([
                    ("physician_key", "INTEGER", "dim_physician"),
                    ("week_ending", "TEXT", "the Friday ending the week"),
                    ("week_key", "INTEGER", "dim_date key of week_ending"),
                    ("delivered", "INTEGER", "delivered events"),
                    ("opens", "INTEGER", "open events"), ("clicks", "INTEGER", "click events"),
                ])),
            OutputPort(
                table: "fact_media_weekly", description: "Paid media delivery",
                grain: ["week_ending", "dma_key", "channel", "campaign_id"],
                columns: Marts.columns([
                    ("week_ending", "TEXT", "the Friday ending the week"),
                    ("week_key", "INTEGER", "dim_date key of week_ending"), ("dma_key", "INTEGER", "dim_dma"),
                    ("channel", "TEXT", "RADIO, TV, DISPLAY, SOCIAL"),
                    ("campaign_id", "TEXT", "campaign id as the source sends it"),
                    ("grps", "REAL", "gross rating points"), ("impressions", "INTEGER", "impressions delivered"),
                    ("spend_usd", "REAL", "media spend, USD"),
                ])),
            OutputPort(
                table: "fact_hcp_engagement",
                description: "HCP email engagement of resolved physicians (events with an NPI the master knows)",
                grain: ["physician_key", "campaign_id"],
                columns: Marts.columns([
                    ("physician_key", "INTEGER", "dim_physician"),
                    ("campaign_id", "TEXT", "campaign id as the source sends it"),
                    ("delivered", "INTEGER", "delivered events"), ("opens", "INTEGER", "open events"),
                    ("clicks", "INTEGER", "click events"),
                ])),
        ],
        recipe: Recipe([
            RecipeNode(
                "dimensions",
                step: CopyDimensions(tables: ["dim_date", "dim_dma", "dim_physician"])),
            RecipeNode("email", step: email, after: ["dimensions"]),
            RecipeNode("web", step: web, after: ["dimensions"]),
            // The email events' indexes are numbered in the order of the facts that declare them.
            RecipeNode("hcp_weekly", step: hcpWeekly, after: ["dimensions"]),
            RecipeNode("engagement", step: engagement, after: ["dimensions"]),
            .sql(
                "media", after: ["dimensions"],
                """
                DROP TABLE IF EXISTS main.fact_media_weekly;
                CREATE TABLE fact_media_weekly AS
                SELECT m.week_ending, \(Marts.dateKey("m.week_ending")) AS week_key, COALESCE(d.dma_key, 0) AS dma_key,
                       m.channel, m.campaign_id, m.grps, m.impressions, m.spend_usd
                FROM raw_media.media m LEFT JOIN dim_dma d ON d.dma_code = m.dma_code
                ORDER BY 1, 3, 4, 5;
                """),
        ]),
        tests: [
            Unique(table: "fact_media_weekly", grain: ["week_ending", "dma_key", "channel", "campaign_id"]),
            Relationship(table: "fact_email_daily", column: "date_key", references: "dim_date", column: "date_key"),
            Relationship(table: "fact_web_daily", column: "dma_key", references: "dim_dma", column: "dma_key"),
            Relationship(table: "fact_web_daily", column: "date_key", references: "dim_date", column: "date_key"),
            Relationship(table: "fact_media_weekly", column: "dma_key", references: "dim_dma", column: "dma_key"),
            Relationship(
                table: "fact_hcp_email_weekly", column: "physician_key", references: "dim_physician",
                column: "physician_key"),
            CustomSQLTest(
                "hcp_weekly_and_campaign_engagement_agree",
                sql: """
                    SELECT w.clicks, c.clicks FROM (SELECT COALESCE(SUM(clicks), 0) AS clicks FROM fact_hcp_email_weekly) w,
                        (SELECT COALESCE(SUM(clicks), 0) AS clicks FROM fact_hcp_engagement) c WHERE w.clicks <> c.clicks
                    """),
            Relationship(table: "fact_media_weekly", column: "week_key", references: "dim_date", column: "date_key"),
            Relationship(
                table: "fact_hcp_engagement", column: "physician_key", references: "dim_physician",
                column: "physician_key"),
            CustomSQLTest(
                "email_events_counted_once",
                sql: """
                    SELECT f.events, r.events FROM (SELECT COALESCE(SUM(events), 0) AS events FROM fact_email_daily) f,
                        (SELECT COUNT(DISTINCT event_id) AS events FROM raw_email_events.email_events) r
                    WHERE f.events <> r.events
                    """,
                // Raw email events are keyed on event_id: each changed row is one event.
                incremental: """
                    SELECT f.events, r.events FROM (SELECT COALESCE(SUM(mesh_sign * events), 0) AS events FROM {changes:fact_email_daily}) f,
                        (SELECT COALESCE(SUM(mesh_sign), 0) AS events FROM {changes:raw_email_events.email_events}) r
                    WHERE f.events <> r.events
                    """),
            CustomSQLTest(
                "sessions_reconcile_to_raw",
                sql: """
                    SELECT f.n, r.n FROM (SELECT COALESCE(SUM(sessions), 0) AS n FROM fact_web_daily) f,
                        (SELECT COUNT(*) AS n FROM raw_web_sessions.web_sessions) r WHERE f.n <> r.n
                    """,
                incremental: """
                    SELECT f.n, r.n FROM (SELECT COALESCE(SUM(mesh_sign * sessions), 0) AS n FROM {changes:fact_web_daily}) f,
                        (SELECT COALESCE(SUM(mesh_sign), 0) AS n FROM {changes:raw_web_sessions.web_sessions}) r WHERE f.n <> r.n
                    """),
            CustomSQLTest(
                "funnel_is_ordered", severity: .warn,
                sql: """
                    SELECT campaign_id, audience, SUM(CASE WHEN event_type = 'delivered' THEN events END) AS delivered,
                           SUM(CASE WHEN event_type = 'sent' THEN events END) AS sent
                    FROM fact_email_daily GROUP BY 1, 2
                    HAVING COALESCE(delivered, 0) > COALESCE(sent, 0)
                    """,
                postgresql: """
                    SELECT campaign_id, audience, SUM(CASE WHEN event_type = 'delivered' THEN events END) AS delivered,
                           SUM(CASE WHEN event_type = 'sent' THEN events END) AS sent
                    FROM fact_email_daily GROUP BY 1, 2
                    HAVING COALESCE(SUM(CASE WHEN event_type = 'delivered' THEN events END), 0)
                         > COALESCE(SUM(CASE WHEN event_type = 'sent' THEN events END), 0)
                    """),
        ],
        retainedTables: ["fact_partition_state", "fact_mapping_state"])
}
