import Foundation

/// A deliberately broken delivery, and what ingest must do with it.
public struct BrokenBatch: Sendable, Hashable {
    public var name: String
    public var feed: String
    /// The feeds root to land (`ROOT/FEED/YYYY-MM-DD/FILE`).
    public var feedsRoot: URL
    /// The batch folder.
    public var folder: URL
    public var file: String
    /// `accept`, `quarantine rows` or `reject batch`, with details.
    public var expectedOutcome: String
    /// Data rows that should load.
    public var goodRows: Int
    /// Lines (1-based, physical) that should be quarantined.
    public var badLines: [Int]
    /// The columns named by the quarantine rows, or by the rejection.
    public var badColumns: [String]
}

extension FeedGenerator {
    /// Writes one small broken batch per case under `directory/CASE/FEED/YYYY-MM-DD/FILE`.
    public static func writeBrokenBatches(to directory: URL) throws -> [BrokenBatch] {
        let x = "PRESCRIBER_ID,NPI,ME_NUMBER,PRODUCT_NDC11,WEEK_ENDING,NRX,TRX,NQTY,TQTY"
        let row1 = "XP00000001,1234567893,,50090123401,2024-03-08,1.250,3.500,37.500,105.000"
        let row2 = "XP00000002,,03501234567,00071455010,2024-03-08,0.800,2.100,24.000,63.000"
        let claims =
            "CLAIM_ID|PATIENT_TOKEN|FILL_DATE|NDC11|PRESCRIBER_NPI|BIN|PCN|GROUP_ID|DAYS_SUPPLY|QUANTITY|CLAIM_STATUS|REJECT_CODE|PATIENT_PAY|REVERSES_CLAIM_ID"
        let claim = { (id: String, date: String) in
            "\(id)|tok|\(date)|50090123401|1234567893|610014|ADV|G1|30|30.000|P||35.00|"
        }
        let email = { (id: String) in
            "{\"event_id\":\"\(id)\",\"event_type\":\"open\",\"ts\":\"2024-03-01T10:00:00-05:00\",\"campaign_id\":\"ZEN-HCP-01\",\"audience\":\"HCP\",\"recipient_hash\":\"abc\",\"npi\":null,\"url\":null}"
        }
        let cases: [(String, String, String, [UInt8], String, Int, [Int], [String])] = [
            (
                "bom", "xponent", "xponent.csv", [0xEF, 0xBB, 0xBF] + Array("\(x)\n\(row1)\n\(row2)\n".utf8),
                "accept: the byte-order mark is skipped", 2, [], []
            ),
            (
                "crlf", "xponent", "xponent.csv", Array("\(x)\r\n\(row1)\r\n\(row2)\r\n".utf8),
                "accept: CRLF line ends", 2, [], []
            ),
            (
                "truncated_last_line", "xponent", "xponent.csv",
                Array("\(x)\n\(row1)\n\(row2)\nXP00000003,1234567893,,5009012".utf8),
                "quarantine rows: the cut last line", 2, [4], ["(row)"]
            ),
            (
                "extra_column", "xponent", "xponent.csv", Array("\(x),VENDOR_NOTE\n\(row1),a\n\(row2),b\n".utf8),
                "accept: the extra column is ignored", 2, [], []
            ),
            (
                "missing_required_column", "xponent", "xponent.csv",
                Array("PRESCRIBER_ID,NPI,ME_NUMBER,PRODUCT_NDC11,NRX,TRX,NQTY,TQTY\nXP1,,,50090123401,1,2,3,4\n".utf8),
                "reject batch: WEEK_ENDING is missing", 0, [], ["WEEK_ENDING"]
            ),
            (
                "bad_dates", "claims", "claims.txt",
                Array(
                    "\(claims)\n\(claim("C1", "20240305"))\n\(claim("C2", "20250231"))\n\(claim("C3", "2024-03-05"))\n"
                        .utf8),
                "quarantine rows: impossible or mis-formatted FILL_DATE", 1, [3, 4], ["FILL_DATE", "FILL_DATE"]
            ),
            (
                "non_numeric_counts", "xponent", "xponent.csv",
                Array("\(x)\nXP00000001,,,50090123401,2024-03-08,1,n/a,3,4\n\(row2)\n".utf8),
                "quarantine rows: TRX is not a number", 1, [2], ["TRX"]
            ),
            (
                "malformed_xml", "formulary", "formulary.xml",
                Array(
                    "<formularyFile asOf=\"2024-03-01\">\n  <payer id=\"PY1\" name=\"A\">\n    <plan id=\"PL1\" channel=\"COMMERCIAL\" lives=\"10\" state=\"NJ\">\n  </payer>\n</formularyFile>\n"
                        .utf8),
                "reject batch: the XML is not well-formed", 0, [], []
            ),
            (
                "invalid_json_lines", "email_events", "email_events.jsonl",
                Array("\(email("e1"))\n{\"event_id\":\"e2\",\"event_type\":\n\(email("e3"))\n".utf8),
                "quarantine rows: line 2 is not JSON", 2, [2], ["(line)"]
            ),
        ]
        var result: [BrokenBatch] = []
        for (name, feed, file, bytes, outcome, good, lines, columns) in cases {
            let root = directory.appendingPathComponent(name)
            let folder = root.appendingPathComponent("\(feed)/2024-03-11")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try Data(bytes).write(to: folder.appendingPathComponent(file))
            result.append(
                BrokenBatch(
                    name: name, feed: feed, feedsRoot: root, folder: folder, file: file, expectedOutcome: outcome,
                    goodRows: good,
                    badLines: lines, badColumns: columns))
        }
        return result
    }
}
