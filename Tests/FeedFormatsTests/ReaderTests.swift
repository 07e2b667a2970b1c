import Foundation
import Testing

@testable import FeedFormats

/// Writes fixture files into a fresh temporary folder.
struct Fixture {
    let folder: URL
    init() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("formats-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }
    func file(_ name: String, _ bytes: [UInt8]) throws -> URL {
        let url = folder.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url
    }
    func file(_ name: String, _ text: String) throws -> URL { try file(name, Array(text.utf8)) }
    func remove() { try? FileManager.default.removeItem(at: folder) }
}

/// Everything a reader produced.
struct Read {
    var rows: [(table: Int, line: Int, values: [FieldValue])] = []
    var issues: [RowIssue] = []

    init(_ feed: String, _ url: URL) throws {
        var rows: [(Int, Int, [FieldValue])] = []
        var issues: [RowIssue] = []
        try FeedFileReader(layout: FeedLayouts.layout(for: feed)!).read(
            file: url, row: { rows.append(($0, $1, $2)) }, rejected: { issues.append($0) })
        self.rows = rows.map { (table: $0.0, line: $0.1, values: $0.2) }
        self.issues = issues
    }
}

let xponentHeader = "PRESCRIBER_ID,NPI,ME_NUMBER,PRODUCT_NDC11,WEEK_ENDING,NRX,TRX,NQTY,TQTY"

struct DelimitedReaderTests {
    @Test func aByteOrderMarkAndCRLFAreAccepted() throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        let text = "\(xponentHeader)\r\nP1,1234567893,,12345678901,2024-03-08,1.5,3.25,30,60\r\n"
        let read = try Read("xponent", try fixture.file("x.csv", [0xEF, 0xBB, 0xBF] + Array(text.utf8)))
        #expect(read.issues.isEmpty)
        #expect(read.rows.count == 1)
        #expect(read.rows[0].line == 2)
        #expect(read.rows[0].values[0] == .text("P1"))
        #expect(read.rows[0].values[5] == .real(1.5))
        #expect(read.rows[0].values[6] == .real(3.25))
        #expect(read.rows[0].values[9] == .integer(1))  // npi_valid
        #expect(read.rows[0].values[10] == .integer(0))  // trx_lt_nrx
    }

    @Test func aTruncatedLastLineIsQuarantinedWithAHint() throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        let text = "\(xponentHeader)\nP1,,,12345678901,2024-03-08,1,2,3,4\nP2,,,1234567"
        let read = try Read("xponent", try fixture.file("x.csv", text))
        #expect(read.rows.count == 1)
        #expect(read.issues.count == 1)
        #expect(read.issues[0].line == 3)
        #expect(read.issues[0].column == "(row)")
        #expect(
            read.issues[0].reason
                == "the row has 4 fields, the header has 9 (the file's last line has no line end: truncated delivery?)")
    }

    @Test func extraColumnsAndAnyOrderAreTolerated() throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        let text =
            "TRX,EXTRA,PRODUCT_NDC11,NRX,PRESCRIBER_ID,WEEK_ENDING,NPI,ME_NUMBER,NQTY,TQTY\n5,zzz,12345678901,2,P9,2024-03-08,,,,\n"
        let read = try Read("xponent", try fixture.file("x.csv", text))
        #expect(read.issues.isEmpty)
        #expect(read.rows[0].values[0] == .text("P9"))
        #expect(read.rows[0].values[5] == .real(2))
        #expect(read.rows[0].values[6] == .real(5))
        #expect(read.rows[0].values[7] == .null)
    }

    @Test func aMissingRequiredColumnRejectsTheBatchNamingFileAndColumn() throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        let url = try fixture.file(
            "x.csv", "PRESCRIBER_ID,NPI,ME_NUMBER,PRODUCT_NDC11,NRX,TRX,NQTY,TQTY\nP1,,,12345678901,1,2,3,4\n")
        let error = #expect(throws: FeedFormatError.self) {
            try FeedFileReader(layout: FeedLayouts.xponent).read(
                file: url, name: "xponent/2024-03-11/x.csv", row: { _, _, _ in }, rejected: { _ in })
        }
        #expect(error?.code == .missingColumn)
        #expect(
            error?.message.hasPrefix(
                "xponent/2024-03-11/x.csv: missing required column \"WEEK_ENDING\" in the header on line 1") == true)
    }

    @Test func badDatesNonNumericCountsAndRuleBreakersAreQuarantinedOrFlagged() throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        let text = """
            \(xponentHeader)
            P1,,,12345678901,2024-02-30,1,2,3,4
            P2,,,12345678901,2024-03-08,1x,2,3,4
            P3,,,12345678901,2024-03-07,1,2,3,4
            P4,,,12345678901,2024-03-08,5,2,3,4
            P5,,,1234567890A,2024-03-08,1,2,3,4

            """
        let read = try Read("xponent", try fixture.file("x.csv", text))
        #expect(
            read.issues.map { "\($0.line) \($0.column) \($0.rawValue): \($0.reason)" } == [
                "2 WEEK_ENDING 2024-02-30: not a date in the form YYYY-MM-DD",
                "3 NRX 1x: not a number",
                "4 WEEK_ENDING 2024-03-07: not a Friday",
                "6 PRODUCT_NDC11 1234567890A: expected digits only",
            ])
        #expect(read.rows.count == 1)
        #expect(read.rows[0].values[10] == .integer(1))  // TRX 2 < NRX 5: flagged, kept
    }

    @Test func quotedFieldsCarryDelimitersQuotesAndLineBreaks() throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        let header =
            "\"NPI\",\"Entity Type Code\",\"Provider Last Name (Legal Name)\",\"Provider First Name\",\"Provider First Line Business Practice Location Address\",\"Provider Business Practice Location Address City Name\",\"Provider Business Practice Location Address State Name\",\"Provider Business Practice Location Address Postal Code\",\"Healthcare Provider Taxonomy Code_1\",\"Provider Enumeration Date\",\"NPI Deactivation Date\""
        let text =
            "\(header)\n\"1234567893\",\"1\",\"O\"\"Brien, MD\",\"Ann\",\"1 Main St\nSuite 2\",\"Newark\",\"NJ\",\"071021234\",\"207R00000X\",\"05/23/2007\",\"\"\n"
        let read = try Read("nppes", try fixture.file("n.csv", text))
        #expect(read.issues.isEmpty)
        let values = try #require(read.rows.first?.values)
        #expect(values[2] == .text("O\"Brien, MD"))
        #expect(values[6] == .text("1 Main St\nSuite 2"))
        #expect(values[11] == .text("2007-05-23"))
        #expect(values[12] == .null)
        #expect(values[4] == .null)  // middle name: not in this file, not required
    }

    @Test func pipeDelimitedClaimsWithCompactDates() throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        let text = """
            CLAIM_ID|PATIENT_TOKEN|FILL_DATE|NDC11|PRESCRIBER_NPI|BIN|PCN|GROUP_ID|DAYS_SUPPLY|QUANTITY|CLAIM_STATUS|REJECT_CODE|PATIENT_PAY|REVERSES_CLAIM_ID
            C1|t|20240305|12345678901|1234567893|610014|ADV|G1|30|30|P||10.5|
            C2|t|20240306|12345678901|1234567893|610014|ADV|G1|30|30|X||0|
            C3|t|20240306|12345678901|1234567893|610014|ADV|G1|30|30|Q||0|

            """
        let read = try Read("claims", try fixture.file("c.txt", text))
        #expect(read.rows.count == 1)
        #expect(read.rows[0].values[2] == .text("2024-03-05"))
        #expect(read.rows[0].values[12] == .real(10.5))
        #expect(
            read.issues.map(\.reason) == [
                "a reversal (status X) must name the claim it reverses", "not one of P, R, X",
            ])
    }

    @Test func partdTakesItsYearFromTheFileNameAndAcceptsSuppressedCells() throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        let header = FeedLayouts.partdColumns.map(\.source).joined(separator: ",")
        let row =
            "1234567893,SMITH,JOHN,NEWARK,NJ,34,Internal Medicine,S,ZENTAVIA,ZENTAPRAZOLE,25,30.5,900,1234.56,,*,,,,,*,"
        let read = try Read("partd", try fixture.file("partd_2024.csv", "\(header)\n\(row)\n"))
        #expect(read.issues.isEmpty)
        #expect(read.rows[0].values.last == .integer(2024))
        #expect(read.rows[0].values[14] == .null)
        #expect(read.rows[0].values[15] == .text("*"))
    }

    @Test func anEmptyFileIsRejected() throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        #expect(throws: FeedFormatError.self) { try Read("xponent", try fixture.file("x.csv", "")) }
    }
}

struct JSONLinesReaderTests {
    @Test func invalidLinesAreQuarantinedAndTheRestLoad() throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        let text = """
            {"event_id":"e1","event_type":"open","ts":"2024-03-01T23:30:00-05:00","campaign_id":"C1","audience":"HCP","recipient_hash":"h","npi":"1234567893"}
            {"event_id":"e2","event_type":"open",
            {"event_id":"e3","event_type":"zap","ts":"2024-03-01T10:00:00Z","campaign_id":"C1","audience":"HCP"}
            {"event_id":"e4","event_type":"click","ts":"2024-03-01T10:00:00.123+01:30","campaign_id":"C1","audience":"CONSUMER","url":null}
            """
        let read = try Read("email_events", try fixture.file("e.jsonl", text))
        #expect(read.rows.map(\.line) == [1, 4])
        #expect(read.rows[0].values[2] == .text("2024-03-02T04:30:00Z"))
        #expect(read.rows[1].values[2] == .text("2024-03-01T08:30:00Z"))
        #expect(read.rows[1].values[7] == .null)
        #expect(
            read.issues.map { "\($0.line) \($0.column): \($0.reason)" } == [
                "2 (line): invalid JSON", "3 event_type: not one of sent, delivered, open, click, bounce, unsubscribe",
            ])
    }

    @Test func numbersAndBooleansAreRead() throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        let text =
            #"{"Id":"a1","Account_vod__c":"acc","Call_Date_vod__c":"2024-03-04","Call_Type_vod__c":"Detail","Samples":2,"Status_vod__c":"Submitted"}"#
            + "\n"
            + #"{"Id":"A","NPI_vod__c":"","FirstName":"Bill","IsDeleted":true,"LastModifiedDate":"2024-03-04T10:00:00Z"}"#
        let calls = try Read("crm_calls", try fixture.file("c.jsonl", String(text.split(separator: "\n")[0])))
        #expect(calls.rows[0].values[7] == .integer(2))
        let accounts = try Read("crm_accounts", try fixture.file("a.jsonl", String(text.split(separator: "\n")[1])))
        #expect(accounts.rows[0].values[10] == .integer(1))
        #expect(accounts.rows[0].values[1] == .null)
    }
}

struct FormularyReaderTests {
    @Test func theDocumentFlattensIntoFiveTables() throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        let xml = """
            <formularyFile asOf="2025-03-01">
              <payer id="PY0001" name="Acme Health">
                <pbm id="PBM01" name="Scripts"/>
                <plan id="PL000123" name="Acme Gold" channel="COMMERCIAL" lives="125000" state="NJ">
                  <bin>610014</bin><pcn>ADV</pcn><group>RX1234</group>
                  <bin>610015</bin><pcn>ADV</pcn><group>RX9</group>
                  <coverage ndc11="12345678901" tier="3" pa="N" st="Y" ql="N" effective="2025-01-01"/>
                  <coverage ndc11="12345678902" tier="X" pa="N" st="N" ql="N" effective="2025-01-01"/>
                </plan>
              </payer>
            </formularyFile>
            """
        let read = try Read("formulary", try fixture.file("f.xml", xml))
        let byTable = Dictionary(grouping: read.rows, by: \.table).mapValues(\.count)
        #expect(byTable == [0: 1, 1: 1, 2: 1, 3: 2, 4: 1])
        let plan = try #require(read.rows.first { $0.table == 2 })
        #expect(
            plan.values == [
                .text("2025-03-01"), .text("PL000123"), .text("Acme Gold"), .text("PY0001"), .text("PBM01"),
                .text("COMMERCIAL"), .integer(125000), .text("NJ"),
            ])
        let key = try #require(read.rows.first { $0.table == 3 })
        #expect(key.values == [.text("2025-03-01"), .text("PL000123"), .text("610014"), .text("ADV"), .text("RX1234")])
        #expect(
            read.issues.map { "\($0.column) \($0.rawValue): \($0.reason)" } == [
                "formulary_coverage.tier X: not one of 1, 2, 3, 4, 5, 6, NC"
            ])
    }

    @Test func malformedXMLRejectsTheBatchWithItsPosition() throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        let url = try fixture.file(
            "f.xml", "<formularyFile asOf=\"2025-03-01\">\n  <payer id=\"P\">\n  </plan>\n</formularyFile>")
        let error = #expect(throws: FeedFormatError.self) { try Read("formulary", url) }
        #expect(error?.code == .malformedXML)
        #expect(
            error?.message.hasPrefix(
                "f.xml: malformed XML at line 4, column 17 (XML error 76: a closing tag does not match its opening tag)"
            ) == true)
    }
}

struct FieldTests {
    @Test func npiCheckDigits() {
        #expect(NPI.isValid("1234567893"))
        #expect(!NPI.isValid("1234567890"))
        #expect(!NPI.isValid("123456789"))
        #expect(NPI.checkDigit(forFirstNine: [1, 2, 3, 4, 5, 6, 7, 8, 9]) == 3)
        #expect(NPI.isValid("1245319599"))
    }

    @Test func decimalsAreExactAndRounded() {
        func parse(_ text: String, _ places: Int = 3) -> Int64? {
            Array(text.utf8).withUnsafeBufferPointer { FieldParsing.decimal($0, places: places) }
        }
        #expect(parse("12.345") == 12345)
        #expect(parse("0.1") == 100)
        #expect(parse("-2") == -2000)
        #expect(parse("1.2345") == 1235)
        #expect(parse("1.2344") == 1234)
        #expect(parse(".5") == 500)
        #expect(parse("1.2.3") == nil)
        #expect(parse("1e5") == nil)
        #expect(parse(".") == nil)
    }

    @Test func fridaysAreFridays() {
        #expect(FieldParsing.weekday(ofISO: "2024-03-08") == 5)
        #expect(FieldParsing.weekday(ofISO: "1970-01-01") == 4)
        #expect(FieldParsing.weekday(ofISO: "2026-01-02") == 5)
    }
}
