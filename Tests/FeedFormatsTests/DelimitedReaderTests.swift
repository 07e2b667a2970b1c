import Foundation
import Testing

@testable import FeedFormats

/// CSV and pipe-delimited files: the broken deliveries of feeds.md, each with its exact outcome and message.
struct DelimitedReaderTests {
    let good = "P1,1234567893,,12345678901,2024-03-08,1.5,3.25,30,60"
    let goodValues: [FieldValue] = [
        .text("P1"), .text("1234567893"), .null, .text("12345678901"), .text("2024-03-08"), .real(1.5), .real(3.25),
        .real(30), .real(60), .integer(1), .integer(0),
    ]

    @Test func aByteOrderMarkAndCRLFLineEndsAreAccepted() throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        let text = "\(xponentHeader)\r\n\(good)\r\nP2,,,12345678901,2024-03-15,0,0,0,0\r\n"
        let read = try Read("xponent", try fixture.file("x.csv", [0xEF, 0xBB, 0xBF] + Array(text.utf8)))
        #expect(read.issues.isEmpty)
        #expect(read.rows.map(\.line) == [2, 3])
        #expect(read.rows[0].values == goodValues)
        #expect(read.rows[1].values[1] == .null)
        #expect(read.rows[1].values[9] == .integer(0))  // no NPI: not valid
    }

    @Test func aByteOrderMarkAloneIsAnEmptyFile() throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        let error = readError(
            "xponent", try fixture.file("x.csv", [0xEF, 0xBB, 0xBF]), name: "xponent/2024-03-11/x.csv")
        #expect(error?.code == .emptyFile)
        #expect(
            error?.description
                == "xponent/2024-03-11/x.csv: the file is empty (no header line); the batch is rejected. Ask the sender to re-deliver it."
        )
    }

    @Test func aHeaderWithoutRowsIsAnEmptyBatchNotAnError() throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        let read = try Read("xponent", try fixture.file("x.csv", xponentHeader))
        #expect(read.rows.isEmpty && read.issues.isEmpty)
    }

    @Test func aCompleteLastLineWithoutLineEndIsAccepted() throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        let read = try Read("xponent", try fixture.file("x.csv", "\(xponentHeader)\n\(good)"))
        #expect(read.issues.isEmpty)
        #expect(read.rows.map(\.values) == [goodValues])
    }

    @Test func aCutLastLineIsQuarantinedWithAHint() throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        let read = try Read("xponent", try fixture.file("x.csv", "\(xponentHeader)\n\(good)\n\nP2,,,1234567"))
        #expect(read.rows.count == 1)
        #expect(
            read.problems == [
                "4 (row): the row has 4 fields, the header has 9 (the file's last line has no line end: truncated delivery?)"
            ])
        #expect(read.issues[0].rawValue == "P2,,,1234567")
        #expect(read.issues[0].file == "x.csv")
    }

    @Test func aQuotedFieldOpenAtTheEndOfTheFileRejectsThatLineOnly() throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        let read = try Read("xponent", try fixture.file("x.csv", "\(xponentHeader)\n\(good)\n\"P2,,,12345678901"))
        #expect(read.rows.count == 1)
        #expect(
            read.problems == [
                "3 PRESCRIBER_ID: the quote that opens this field at byte offset \(xponentHeader.utf8.count + good.utf8.count + 2) of the file is not closed before the end of the file (the file's last line has no line end: truncated delivery?)"
            ])
    }

    @Test func columnsArePickedByNameInAnyOrderAndExtraColumnsAreIgnored() throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        let text = """
            trx, VENDOR_NOTE ,Product_NDC11,NRX,PRESCRIBER_ID,WEEK_ENDING,NPI,ME_NUMBER,NQTY,TQTY,REGION
            3.25,"a, b",12345678901,1.5,P1,2024-03-08,1234567893,,30,60,EAST

            """
        let read = try Read("xponent", try fixture.file("x.csv", text))
        #expect(read.issues.isEmpty)
        #expect(read.rows.map(\.values) == [goodValues])
    }

    @Test func aMissingRequiredColumnRejectsTheBatchNamingFileAndColumn() throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        let url = try fixture.file(
            "x.csv", "PRESCRIBER_ID,NPI,ME_NUMBER,PRODUCT_NDC11,NRX,TRX,NQTY,TQTY\nP1,,,12345678901,1,2,3,4\n")
        let error = readError("xponent", url, name: "xponent/2024-03-11/x.csv")
        #expect(error?.code == .missingColumn)
        #expect(error?.file == "xponent/2024-03-11/x.csv")
        #expect(error?.line == 1)
        #expect(
            error?.description
                == "xponent/2024-03-11/x.csv: missing required column \"WEEK_ENDING\" in the header on line 1; the batch is rejected whole. Ask the sender for a re-delivery with the column (the header has 8 columns; names are matched ignoring case)."
        )
    }

    @Test func severalMissingColumnsAreAllNamed() throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        let error = readError("xponent", try fixture.file("x.csv", "PRESCRIBER_ID,NPI\nP1,\n"))
        #expect(
            error?.description.hasPrefix(
                "x.csv: missing required columns \"ME_NUMBER\", \"PRODUCT_NDC11\", \"WEEK_ENDING\", \"NRX\", \"TRX\", \"NQTY\", \"TQTY\" in the header on line 1;"
            ) == true)
    }

    @Test func badValuesAreQuarantinedWithTheirColumnAndReason() throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        let text = """
            \(xponentHeader)
            P1,,,12345678901,2024-02-30,1,2,3,4
            P2,,,12345678901,2024-03-08,1x,2,3,4
            P3,,,12345678901,2024-03-07,1,2,3,4
            P4,,,1234567890A,2024-03-08,1,2,3,4
            ,,,12345678901,2024-03-08,1,2,3,4
            P6,,,12345678901,2024-03-08,1,n/a,3,4
            P7,,,12345678901,03/08/2024,1,2,3,4
            P8,,,12345678901,2024-03-08,1,1e3,3,4

            """
        let read = try Read("xponent", try fixture.file("x.csv", text))
        #expect(read.rows.isEmpty)
        #expect(
            read.problems == [
                "2 WEEK_ENDING: not a date in the form YYYY-MM-DD: \"2024-02-30\"",
                "3 NRX: not a number: \"1x\"",
                "4 WEEK_ENDING: 2024-03-07 is a Thursday, not a Friday",
                "5 PRODUCT_NDC11: expected digits only: \"1234567890A\"",
                "6 PRESCRIBER_ID: empty, but a value is required",
                "7 TRX: not a number: \"n/a\"",
                "8 WEEK_ENDING: not a date in the form YYYY-MM-DD: \"03/08/2024\"",
                "9 TRX: not a number: \"1e3\"",
            ])
        #expect(
            read.issues.map(\.rawValue) == [
                "2024-02-30", "1x", "2024-03-07", "1234567890A", "", "n/a", "03/08/2024", "1e3",
            ])
    }

    @Test func trxBelowNrxIsFlaggedNotRejectedAndABadCheckDigitIsKept() throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        let text = """
            \(xponentHeader)
            P1,1234567890,,12345678901,2024-03-08,5.001,5.000,3,4
            P2,1234567893,,12345678901,2024-03-08,5.000,5.000,3,4
            P3,12345,,12345678901,2024-03-08,0.001,0.002,,

            """
        let read = try Read("xponent", try fixture.file("x.csv", text))
        #expect(read.issues.isEmpty)
        #expect(
            read.rows.map { [$0.values[9], $0.values[10]] } == [
                [.integer(0), .integer(1)], [.integer(1), .integer(0)], [.integer(0), .integer(0)],
            ])
        #expect(read.rows[0].values[1] == .text("1234567890"))  // kept as sent
        #expect(read.rows[2].values[7] == .null)  // NQTY may be empty
    }

    @Test func quotedFieldsCarryDelimitersQuotesAndLineBreaks() throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        let text = """
            \(nppesHeader)
            "1234567893","1","O""Brien, MD","Ann","","M.D.","1 Main St
            Suite 2","Newark","NJ","071021234","207R00000X","05/23/2007",""
            "1245319599","2","","","","","9 Elm","Trenton","NJ","08601","261QM1300X","01/02/2010","12/31/2020"
            "1234567893","3","X","","","","","","","","","01/01/2001",""
            "1234567893","1","X","","","","","","","","","13/01/2001",""

            """
        let read = try Read("nppes", try fixture.file("npi.csv", text))
        #expect(read.rows.map(\.line) == [2, 4])
        let rows = NamedRows(read, feed: "nppes")
        func value(_ row: Int, _ column: String) -> FieldValue { rows.rows[row][rows.names.firstIndex(of: column)!] }
        #expect(value(0, "npi") == .text("1234567893"))
        #expect(value(0, "entity_type_code") == .integer(1))
        #expect(value(0, "last_name") == .text("O\"Brien, MD"))
        #expect(value(0, "middle_name") == .null)
        #expect(value(0, "address_line1") == .text("1 Main St\nSuite 2"))
        #expect(value(0, "taxonomy_code") == .text("207R00000X"))
        #expect(value(0, "enumeration_date") == .text("2007-05-23"))
        #expect(value(0, "deactivation_date") == .null)
        #expect(value(0, "deactivated") == .integer(0))
        #expect(value(0, "npi_valid") == .integer(1))
        #expect(value(1, "deactivation_date") == .text("2020-12-31"))
        #expect(value(1, "deactivated") == .integer(1))
        #expect(
            read.problems == [
                "5 Entity Type Code: not one of 1, 2: \"3\"",
                "6 Provider Enumeration Date: not a date in the form MM/DD/YYYY: \"13/01/2001\"",
            ])
    }

    @Test func aQuoteInsideAnUnquotedFieldIsTextButTextAfterAClosingQuoteIsNot() throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        let text = """
            \(xponentHeader)
            P1,12"34,,12345678901,2024-03-08,1,2,3,4
            "P2"x,,,12345678901,2024-03-08,1,2,3,4
            "P3",,,12345678901,2024-03-08,1,2,3,4

            """
        let read = try Read("xponent", try fixture.file("x.csv", text))
        #expect(read.rows.map(\.line) == [2, 4])
        #expect(read.rows[0].values[1] == .text("12\"34"))
        #expect(read.rows[1].values[0] == .text("P3"))
        #expect(
            read.problems == [
                "3 PRESCRIBER_ID: text after the closing quote of a quoted field (a quote inside a value must be doubled)"
            ])
    }

    @Test func aTrailingDelimiterIsHarmlessButAMissingFieldIsNot() throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        let text = "\(xponentHeader)\n\(good),\n\(good),x\nP1,,,12345678901,2024-03-08,1,2,3\n"
        let read = try Read("xponent", try fixture.file("x.csv", text))
        #expect(read.rows.map(\.line) == [2])
        #expect(
            read.problems == [
                "3 (row): the row has 10 fields, the header has 9", "4 (row): the row has 8 fields, the header has 9",
            ])
    }

    @Test func pipeDelimitedClaimsReadCompactDatesAndTheirRules() throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        let text = """
            CLAIM_ID|PATIENT_TOKEN|FILL_DATE|NDC11|PRESCRIBER_NPI|BIN|PCN|GROUP_ID|DAYS_SUPPLY|QUANTITY|CLAIM_STATUS|REJECT_CODE|PATIENT_PAY|REVERSES_CLAIM_ID
            C1|t|20240305|12345678901|1234567893|610014|ADV|G1|30|30|P||10.5|
            C2|t|20240306|12345678901|1234567893|610014|ADV|G1|30|30|X||0|
            C3|t|20240306|12345678901|1234567893|610014|ADV|G1|30|30|Q||0|
            C4|t|2024-03-05|12345678901|1234567893|610014|ADV|G1|30|30|P||0|
            C5|t|20250231|12345678901|1234567893|610014|ADV|G1|30|30|P||0|
            C6|"t"|20240306|12345678901|123|610014|ADV|G1|30.5|30|R|75|0|

            """
        let read = try Read("claims", try fixture.file("c.txt", text))
        #expect(read.rows.map(\.line) == [2])
        #expect(read.rows[0].values[2] == .text("2024-03-05"))
        #expect(read.rows[0].values[8] == .integer(30))
        #expect(read.rows[0].values[12] == .real(10.5))
        #expect(read.rows[0].values[13] == .null)
        #expect(read.rows[0].values[14] == .integer(1))  // npi_valid
        #expect(
            read.problems == [
                "3 REVERSES_CLAIM_ID: a reversal (status X) must name the claim it reverses",
                "4 CLAIM_STATUS: not one of P, R, X: \"Q\"",
                "5 FILL_DATE: not a date in the form YYYYMMDD: \"2024-03-05\"",
                "6 FILL_DATE: not a date in the form YYYYMMDD: \"20250231\"",
                "7 DAYS_SUPPLY: not a whole number: \"30.5\"",
            ])
    }

    @Test func partdAcceptsSuppressedCellsAndTakesItsYearFromTheFileName() throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        let header = FeedLayouts.partdColumns.map(\.source).joined(separator: ",")
        let rows = """
            1234567893,SMITH,JOHN,NEWARK,NJ,34,Internal Medicine,S,ZENTAVIA,ZENTAPRAZOLE,25,30.5,900,1234.56,,*,,,,,*,
            1245319599,"DOE, JR",JANE,TRENTON,NJ,34,Family Practice,S,ZENTAVIA,ZENTAPRAZOLE,111,120.0,3600,9000.10,40,,60,61.0,4500.00,1800,,22
            """
        let read = try Read("partd", try fixture.file("partd_2024.csv", "\(header)\n\(rows)\n"))
        #expect(read.issues.isEmpty)
        let suppressed = read.rows[0].values
        #expect(suppressed.count == 24)
        #expect(suppressed[10] == .integer(25))
        #expect(suppressed[14] == .null)  // Tot_Benes suppressed
        #expect(suppressed[15] == .text("*"))
        #expect(suppressed[16] == .null)
        #expect(suppressed[20] == .text("*"))
        #expect(suppressed[21] == .null)
        #expect(suppressed[22] == .integer(2024))  // data_year
        #expect(suppressed[23] == .integer(1))  // npi_valid
        #expect(read.rows[1].values[1] == .text("DOE, JR"))
        #expect(read.rows[1].values[18] == .real(4500))
        #expect(FeedLayouts.dataYear(fileName: "partd_2023.csv") == 2023)
        #expect(FeedLayouts.dataYear(fileName: "MUP_DPR_RY24_DY22_NPIBN.csv") == 2022)
    }

    @Test func recordsAcrossChunkBoundariesAndLongerThanTheBufferAreReadWhole() throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        // 20 000 two-line records (about 2.6 MB, ten buffer fills) and one 600 KB name (more than a buffer).
        var text = nppesHeader + "\r\n"
        let long = String(repeating: "ab\"\"c,", count: 100_000)
        for i in 0..<20_000 {
            let name = i == 7_777 ? long : "N\(i), \"\"Q\"\""
            text +=
                "\"1234567893\",\"1\",\"\(name)\",\"F\",\"\",\"MD\",\"\(i) Main St\r\nFloor \(i % 7)\",\"City\",\"NJ\",\"08601\",\"207R00000X\",\"01/02/2010\",\"\"\r\n"
        }
        let read = try Read("nppes", try fixture.file("big.csv", text))
        #expect(read.issues.isEmpty)
        #expect(read.rows.count == 20_000)
        #expect(read.rows.last?.line == 2 + 2 * 19_999)
        let rows = NamedRows(read, feed: "nppes")
        let last = rows.names.firstIndex(of: "last_name")!
        let address = rows.names.firstIndex(of: "address_line1")!
        #expect(rows.rows[12_345][last] == .text("N12345, \"Q\""))
        #expect(rows.rows[12_345][address] == .text("12345 Main St\r\nFloor 4"))
        #expect(rows.rows[7_777][last] == .text(String(repeating: "ab\"c,", count: 100_000)))
    }

    @Test func anUnreadableFileIsABatchError() throws {
        let error = readError("xponent", URL(fileURLWithPath: "/nonexistent/x.csv"))
        #expect(error?.code == .unreadable)
        #expect(error?.description == "x.csv: the file cannot be read (No such file or directory).")
    }

    @Test func forEachGivesOneRecordPerDataLine() throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        let url = try fixture.file("x.csv", "\(xponentHeader)\n\(good)\nP2,,,12345678901,2024-03-08,x,1,1,1\n")
        var records: [String] = []
        try FeedFileReader(feed: "xponent").forEach(file: url, name: "xponent/2024-03-11/x.csv") { record in
            switch record.content {
            case .row(let values): records.append("\(record.table) \(record.line) row of \(values.count)")
            case .rejected(let issue): records.append("\(record.table) \(record.line) \(issue)")
            }
        }
        #expect(
            records == [
                "0 2 row of 11", "0 3 xponent/2024-03-11/x.csv, line 3, NRX: not a number: \"x\"",
            ])
    }

    @Test func anUnknownFeedIsNamed() {
        #expect(throws: FeedFormatError.self) { try FeedFileReader(feed: "mystery") }
    }
}
