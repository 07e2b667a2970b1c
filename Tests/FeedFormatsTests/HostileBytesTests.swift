import Foundation
import Testing

@testable import FeedFormats

/// Copies of our own feeds with one hostile defect each: what loads, what is quarantined, with which reason.
struct HostileBytesTests {
    let good = "P1,1234567893,,12345678901,2024-03-08,1.5,3.25,30,60"
    let other = "P3,,,12345678901,2024-03-08,1,2,3,4"

    /// The file offset of `needle` (its first occurrence) in `bytes`.
    func offset(of needle: [UInt8], in bytes: [UInt8]) -> Int {
        (0...(bytes.count - needle.count)).first { Array(bytes[$0..<($0 + needle.count)]) == needle }!
    }

    @Test func aNULInAnXponentPrescriberIdIsQuarantinedWithItsByteOffset() throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        let bytes =
            Array("\(xponentHeader)\n\(good)\nP".utf8) + [0]
            + Array("2,,,12345678901,2024-03-08,1,2,3,4\n\(other)\n".utf8)
        let nul = bytes.firstIndex(of: 0)!
        let read = try Read("xponent", try fixture.file("x.csv", bytes), name: "xponent/2024-03-11/x.csv")
        #expect(read.rows.map(\.line) == [2, 4])
        #expect(
            read.problems == [
                "3 PRESCRIBER_ID: a control character 0x00 (NUL) at byte offset \(nul) of the file (byte 2 of the value)"
            ])
        #expect(read.issues[0].rawValue == "P\\x002")
        #expect(read.issues[0].file == "xponent/2024-03-11/x.csv")
    }

    @Test func controlCharactersInANameAreQuarantinedNotTruncated() throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        func nppes(_ npi: String, _ first: [UInt8]) -> [UInt8] {
            Array("\"\(npi)\",\"1\",\"SMITH\",\"".utf8) + first
                + Array(
                    "\",\"\",\"MD\",\"1 MAIN ST\",\"NEWARK\",\"NJ\",\"07102\",\"207R00000X\",\"01/02/2010\",\"\"\n".utf8
                )
        }
        let bytes =
            Array("\(nppesHeader)\n".utf8) + nppes("1234567893", Array("NAN".utf8) + [0] + Array("CY".utf8))
            + nppes("1245319599", Array("ANN".utf8) + [0x1B]) + nppes("1003000126", Array("BO".utf8) + [0x7F])
            + nppes("1003000142", Array("JO".utf8) + [0xC2, 0x85]) + nppes("1679576722", Array("JOSÉ\tZOË".utf8))
        let read = try Read("nppes", try fixture.file("n.csv", bytes))
        #expect(read.rows.count == 1)
        #expect(NamedRows(read, feed: "nppes").column("first_name") == [.text("JOSÉ\tZOË")])
        let nul = bytes.firstIndex(of: 0)!
        #expect(
            read.problems == [
                "2 Provider First Name: a control character 0x00 (NUL) at byte offset \(nul) of the file (byte 4 of the value)",
                "3 Provider First Name: a control character 0x1B (ESC) at byte offset \(bytes.firstIndex(of: 0x1B)!) of the file (byte 4 of the value)",
                "4 Provider First Name: a control character 0x7F (DEL) at byte offset \(bytes.firstIndex(of: 0x7F)!) of the file (byte 3 of the value)",
                "5 Provider First Name: a control character U+0085 (a C1 control) at byte offset \(bytes.firstIndex(of: 0xC2)!) of the file (byte 3 of the value)",
            ])
        #expect(read.issues.map(\.rawValue) == ["NAN\\x00CY", "ANN\\x1B", "BO\\x7F", "JO\\xC2\\x85"])
    }

    @Test func invalidUTF8IsQuarantinedUnlessTheLayoutDeclaresWindows1252() throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        // "JOSÉ" in Windows-1252 (É = 0xC9), an overlong "/", a surrogate, and a 1252 curly quote.
        let lines: [[UInt8]] = [
            Array("P1,,,12345678901,2024-03-08,1,2,3,4,JOS".utf8) + [0xC9],
            Array("P2,,,12345678901,2024-03-08,1,2,3,4,A".utf8) + [0xC0, 0xAF],
            Array("P3,,,12345678901,2024-03-08,1,2,3,4,".utf8) + [0xED, 0xA0, 0x80],
            Array("P4,,,12345678901,2024-03-08,1,2,3,4,O".utf8) + [0x92] + Array("BRIEN".utf8),
            Array("P5,,,12345678901,2024-03-08,1,2,3,4,A".utf8) + [0x81],
            Array("P6,,,12345678901,2024-03-08,1,2,3,4,Zoë 名".utf8),
        ]
        let bytes = Array("\(xponentHeader),NAME\n".utf8) + lines.flatMap { $0 + [0x0A] }
        var layout = FeedLayouts.layout(for: "xponent")!
        layout.tables[0].columns.append(ColumnLayout("NAME", "name"))
        let url = try fixture.file("x.csv", bytes)
        var utf8: (rows: [[FieldValue]], issues: [RowIssue]) = ([], [])
        try FeedFileReader(layout: layout).read(
            file: url, row: { utf8.rows.append($2) }, rejected: { utf8.issues.append($0) })
        #expect(utf8.rows.map { $0[9] } == [.text("Zoë 名")])
        #expect(utf8.issues.map(\.line) == [2, 3, 4, 5, 6])
        #expect(utf8.issues.allSatisfy { $0.column == "NAME" })
        #expect(
            utf8.issues[0].reason
                == "bytes that are not UTF-8 (0xC9) at byte offset \(offset(of: [0xC9], in: bytes)) of the file (byte 4 of the value); the feed is read as UTF-8: if the sender writes another encoding, its layout must say so"
        )
        #expect(utf8.issues[0].rawValue == "JOS\\xC9")

        layout.encoding = .windows1252
        var cp1252: (rows: [[FieldValue]], issues: [RowIssue]) = ([], [])
        try FeedFileReader(layout: layout).read(
            file: url, row: { cp1252.rows.append($2) }, rejected: { cp1252.issues.append($0) })
        #expect(
            cp1252.rows.map { $0[9] }.prefix(4) == [.text("JOSÉ"), .text("AÀ¯"), .text("í\u{A0}€"), .text("O’BRIEN")])
        #expect(
            cp1252.issues.map { "\($0.line) \($0.reason)" } == [
                "6 byte 0x81, unassigned in Windows-1252 at byte offset \(offset(of: [0x81], in: bytes)) of the file (byte 2 of the value)",
                // UTF-8 read as Windows-1252 is what the layout says: 名 holds 0x90, which 1252 leaves unassigned.
                "7 byte 0x90, unassigned in Windows-1252 at byte offset \(offset(of: [0xE5, 0x90], in: bytes) + 1) of the file (byte 7 of the value)",
            ])
    }

    @Test func anUnclosedQuoteQuarantinesItsLineAndReadingResumesOnTheNext() throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        // Unquoted fields (xponent): the quote would swallow line 3's end and line 4.
        let text =
            "\(xponentHeader)\n\(good)\nP2,\"1234567893,,12345678901,2024-03-08,1,2,3,4\n\(other)\nP4,,,12345678901,2024-03-08,1,2,3,4\n"
        let quote = text.utf8.firstIndex(of: UInt8(ascii: "\""))!
        let read = try Read("xponent", try fixture.file("x.csv", text))
        #expect(read.rows.map(\.line) == [2, 4, 5])
        #expect(
            read.problems == [
                "3 NPI: the quote that opens this field at byte offset \(text.utf8.distance(from: text.utf8.startIndex, to: quote)) of the file is not closed on its line (a quote inside a value must be doubled); the line is quarantined alone and reading resumes on the next line"
            ])
        #expect(read.issues[0].rawValue == "P2,1234567893,,12345678901,2024-03-08,1,2,3,4")
    }

    @Test func anUnclosedQuoteInAFullyQuotedFileLosesNoGoodLine() throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        func row(_ npi: String, _ last: String) -> String {
            "\"\(npi)\",\"1\",\"\(last)\",\"MARY\",\"\",\"MD\",\"1 MAIN ST\",\"NEWARK\",\"NJ\",\"07102\",\"207R00000X\",\"01/02/2010\",\"\""
        }
        // Line 3 never closes its last field's quote; line 5 holds a real line break inside its quoted address.
        let broken = String(row("1245319599", "JONES").dropLast())
        let multiline = row("1679576722", "BROWN").replacingOccurrences(of: "1 MAIN ST", with: "1 MAIN ST\nSUITE 2")
        let text = [
            nppesHeader, row("1234567893", "SMITH"), broken, row("1003000126", "GREEN"), multiline,
            row("1003000142", "WHITE"), "",
        ].joined(separator: "\n")
        let read = try Read("nppes", try fixture.file("n.csv", text))
        let rows = NamedRows(read, feed: "nppes")
        #expect(rows.column("last_name") == [.text("SMITH"), .text("GREEN"), .text("BROWN"), .text("WHITE")])
        #expect(read.rows.map(\.line) == [2, 4, 5, 7])
        #expect(rows.value("address_line1", where: "npi", is: "1679576722") == .text("1 MAIN ST\nSUITE 2"))
        #expect(read.issues.map(\.line) == [3])
        #expect(read.issues[0].column == "NPI Deactivation Date")
        #expect(read.issues[0].reason.contains("is not closed on its line"))
    }

    @Test func aColumnNamedTwiceInTheHeaderRejectsTheBatchNamingIt() throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        let twice = try fixture.file("x.csv", "\(xponentHeader),trx\n\(good),9\n")
        let error = readError("xponent", twice, name: "xponent/2024-03-11/x.csv")
        #expect(error?.code == .duplicateColumn)
        #expect(
            error?.description
                == "xponent/2024-03-11/x.csv: the header on line 1 names the column \"TRX\" 2 times (columns 7 and 10); the batch is rejected whole, since either could be the one meant. Ask the sender for a re-delivery with the column once."
        )
        // A column no layout reads may repeat (and empty names from trailing delimiters do).
        let unread = try Read("xponent", try fixture.file("y.csv", "\(xponentHeader),NOTE,NOTE,,\n\(good),a,b,,\n"))
        #expect(unread.issues.isEmpty && unread.rows.count == 1)
    }

    @Test func jsonLinesEscapesAndBytesThatAreNoTextAreQuarantined() throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        func account(_ id: String, _ first: [UInt8]) -> [UInt8] {
            Array("{\"Id\":\"\(id)\",\"FirstName\":\"".utf8) + first + Array("\",\"LastName\":\"DOE\"}\n".utf8)
        }
        let bytes =
            account("001A000000000001AA", Array("NAN\\u0000CY".utf8)) + account("001A000000000002AA", [0x4A, 0xE9])
            + account("001A000000000003AA", Array("Zoë".utf8))
        let read = try Read("crm_accounts", try fixture.file("a.jsonl", bytes))
        #expect(read.rows.count == 1)
        let first = offset(of: Array("NAN".utf8), in: bytes)
        #expect(
            read.problems == [
                "1 FirstName: a control character 0x00 (NUL) at byte offset \(first) of the file (byte 4 of the value)",
                "2 FirstName: bytes that are not UTF-8 (0xE9) at byte offset \(bytes.firstIndex(of: 0xE9)!) of the file (byte 2 of the value); the feed is read as UTF-8: if the sender writes another encoding, its layout must say so",
            ])
    }

    @Test func damagedAndUnreadableCompressedFilesRejectTheBatchWithASentence() throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        let csv = Array("\(xponentHeader)\n\(good)\n\(other)\n".utf8)
        // Cut short in transfer.
        let gz = try Array(Data(contentsOf: try fixture.gzipped("x.csv", csv)))
        let cut = try fixture.file("cut.csv.gz", Array(gz.prefix(gz.count - 12)))
        let truncated = readError("xponent", cut, name: "xponent/2024-03-11/cut.csv.gz")
        #expect(truncated?.code == .damagedArchive)
        #expect(truncated?.description.hasPrefix("xponent/2024-03-11/cut.csv.gz: the gzip file is damaged (") == true)
        // Two gzip members one after the other read as one file.
        let twice = try fixture.file(
            "two.csv.gz", gz + (try Array(Data(contentsOf: try fixture.gzipped("y.csv", Array("\(other)\n".utf8))))))
        #expect(try Read("xponent", twice).rows.count == 3)
        // A zip without a data file names what it holds.
        let docs = try fixture.zipped("docs.zip", [("readme.pdf", Array("%PDF".utf8)), ("x_fileheader.csv", csv)])
        let none = readError("xponent", docs, name: "xponent/2024-03-11/docs.zip")
        #expect(none?.code == .noDataFile)
        #expect(
            none?.description.contains("holds no xponent data file (it holds readme.pdf, x_fileheader.csv)") == true)
        // A member whose bytes changed after zipping fails its CRC.
        var zipBytes = try Array(Data(contentsOf: try fixture.zipped("x.zip", [("x.csv", csv)], stored: true)))
        let at = offset(of: Array("P3".utf8), in: zipBytes)
        zipBytes[at] = UInt8(ascii: "Q")
        let changed = readError("xponent", try fixture.file("changed.zip", zipBytes))
        #expect(changed?.code == .damagedArchive)
        #expect(changed?.description.contains("CRC-32 does not match") == true)
        // Compressions the mesh does not read are named.
        let xz = readError("xponent", try fixture.file("x.csv.xz", [0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00, 0, 0]))
        #expect(xz?.code == .unsupportedCompression)
        #expect(xz?.description.contains("compressed with xz") == true)
    }
}
