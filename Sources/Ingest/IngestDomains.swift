import FeedFormats
import Foundation
import GRDB
import MeshRuntime

/// Reads a feed's files through its declared layout.
struct LayoutParser: FeedFileParser {
    let reader: FeedFileReader

    func parse(file: URL, row: (Int, Int, [FieldValue]) throws -> Void, rejected: (QuarantinedRow) throws -> Void)
        throws
    {
        _ = try parseReporting(file: file, row: row, rejected: rejected)
    }

    func parseReporting(
        file: URL, row: (Int, Int, [FieldValue]) throws -> Void, rejected: (QuarantinedRow) throws -> Void
    ) throws -> FileReport {
        let name = file.pathComponents.suffix(3).joined(separator: "/")
        return try reader.read(
            file: file, name: name, row: row,
            rejected: { issue in
                try rejected(
                    QuarantinedRow(
                        line: issue.line, column: issue.column, rawValue: issue.rawValue, reason: issue.reason,
                        file: issue.file == name ? nil : issue.file))
            })
    }
}

/// The raw domains: one per feed of shared/spec/feeds.md, named `raw-FEED`.
public enum IngestDomains {
    static let descriptions: [String: String] = [
        "products": "Company product master / NDC directory: the market basket with brand, generic and list price.",
        "nppes": "CMS NPPES NPI registry extract: every provider's NPI, legal name, practice address, taxonomy.",
        "ama": "AMA Physician Masterfile: ME number, specialty, birth year, activity, death.",
        "crm_accounts": "Veeva CRM HCP accounts as the field force keeps them.",
        "alignment": "Sales force alignment: ZIP to territory, district, region, rep.",
        "xponent": "IQVIA Xponent-style weekly prescriber-level Rx, projected; the latest delivery of a week wins.",
        "claims": "Sub-national pharmacy claims (de-identified): paid, rejected and reversals by CLAIM_ID.",
        "formulary": "Formulary vendor file: payer, PBM, plan, BIN/PCN/group and coverage by month (as_of).",
        "rebates": "Manufacturer rebate invoices by payer or plan and quarter.",
        "crm_calls": "Veeva call activity: who was called, when, on what products.",
        "email_events": "Approved-email and marketing automation events, de-duplicated on event_id (the first wins).",
        "web_sessions": "Brand web site sessions with copay card sign-ups.",
        "media": "Broadcast and digital media delivery (GRPs, impressions, spend) by DMA and week.",
        "partd": "CMS Medicare Part D Prescribers by Provider and Drug, one batch per data year.",
    ]

    /// Indexes a raw table needs for its own tests. The indexes the consumers' incremental builds seek
    /// (partition expressions, lookup inputs) are declared by the consumers (`InputIndex`) and built by the
    /// load after these; docs/benchmarks.md has what each saves.
    ///
    /// An entry `EXPRESSION WHERE PREDICATE` is a partial index: xponent's holds only the rows its warn test
    /// counts, so the test seeks them instead of reading every row of every build.
    static let indexes: [String: [String]] = [
        "xponent": ["trx_lt_nrx WHERE trx_lt_nrx = 1"]
    ]

    /// Extra tests per feed: restatement and realism checks that warn rather than stop.
    static let extraTests: [String: [any DataTest]] = [
        "xponent": [
            CustomSQLTest("trx_below_nrx_flagged", severity: .warn, sql: "SELECT * FROM xponent WHERE trx_lt_nrx = 1")
        ],
        "claims": [
            CustomSQLTest(
                "reversal_of_unknown_claim", severity: .warn,
                sql: """
                    SELECT r.claim_id, r.reverses_claim_id FROM claims r
                    WHERE r.claim_status = 'X' AND NOT EXISTS (SELECT 1 FROM claims c WHERE c.claim_id = r.reverses_claim_id)
                    """)
        ],
    ]

    /// Rows that restate part of an earlier one: a deactivated NPI, which CMS sends with every field empty but
    /// the NPI and the deactivation date, sets the deactivation and keeps the name, taxonomy and address known.
    static let partialRows: [String: PartialRows] = [
        "nppes": PartialRows(
            condition: "excluded.entity_type_code IS NULL",
            replaced: ["deactivation_date", "reactivation_date", "deactivated"])
    ]

    /// The raw feed declaration of every feed.
    public static let feeds: [RawFeed] = FeedLayouts.all.map { layout in
        RawFeed(
            feed: layout.feed, description: descriptions[layout.feed] ?? layout.feed,
            tables: layout.tables.map {
                RawTable(
                    name: $0.name, columns: $0.outputColumns, key: $0.key, indexes: indexes[$0.name] ?? [],
                    partialRows: partialRows[$0.name])
            },
            policy: layout.latestWins ? .latestWins : .firstWins,
            parser: LayoutParser(reader: FeedFileReader(layout: layout)),
            tests: extraTests[layout.feed] ?? [],
            // 2: text checks (control characters, UTF-8), unclosed quotes, compressed files, NPPES's primary
            // taxonomy and deactivations, Part D's DYnn, generics without a brand name.
            loaderVersion: "2")
    }

    public static func all() -> [Domain] { feeds.map(\.domain) }
}
