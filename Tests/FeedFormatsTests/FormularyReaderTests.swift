import Foundation
import Testing

@testable import FeedFormats

/// The formulary XML: five tables with their parents' ids and the file's asOf; malformed XML rejects the batch.
struct FormularyReaderTests {
    let document = """
        <?xml version="1.0" encoding="UTF-8"?>
        <formularyFile asOf="2025-03-01" vendor="x">
          <payer id="PY0001" name="Acme &amp; Sons Health">
            <pbm id="PBM01" name="Scripts"/>
            <plan id="PL000123" name="Acme Gold" channel="COMMERCIAL" lives="125000" state="NJ">
              <bin>610014</bin><pcn>ADV</pcn><group>RX1234</group>
              <bin> 610015 </bin><pcn/>
              <coverage ndc11="12345678901" tier="3" pa="N" st="Y" ql="N" effective="2025-01-01"/>
              <coverage ndc11="12345678902" tier="X" pa="N" st="N" ql="N" effective="2025-01-01"/>
              <note>ignored</note>
            </plan>
            <plan id="PL000124" name="Acme Silver" channel="MEDICARE_D" lives="9x" state="NJ"/>
          </payer>
          <payer id="PY0002" name="Other">
            <plan id="PL000200" name="Basic" channel="MEDICAID" lives="10" state="PA">
              <coverage ndc11="12345678901" tier="NC" pa="Y" st="N" ql="N" effective="2025-02-01"/>
            </plan>
          </payer>
        </formularyFile>
        """

    @Test func theDocumentFlattensIntoFiveTablesWithParentsAndAsOf() throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        let read = try Read("formulary", try fixture.file("f.xml", document))
        let tables = FeedLayouts.formulary.tables.map(\.name)
        #expect(
            tables == [
                "formulary_payer", "formulary_pbm", "formulary_plan", "formulary_plan_key", "formulary_coverage",
            ])
        #expect(
            read.rows.map { "\(tables[$0.table])@\($0.line)" } == [
                "formulary_payer@3", "formulary_pbm@4", "formulary_plan@5", "formulary_plan_key@6",
                "formulary_plan_key@7", "formulary_coverage@8", "formulary_payer@14", "formulary_plan@15",
                "formulary_coverage@16",
            ])
        #expect(read.rows[0].values == [.text("2025-03-01"), .text("PY0001"), .text("Acme & Sons Health")])
        #expect(read.rows[1].values == [.text("2025-03-01"), .text("PBM01"), .text("Scripts"), .text("PY0001")])
        #expect(
            read.rows[2].values == [
                .text("2025-03-01"), .text("PL000123"), .text("Acme Gold"), .text("PY0001"), .text("PBM01"),
                .text("COMMERCIAL"), .integer(125000), .text("NJ"),
            ])
        #expect(
            read.rows[3].values == [
                .text("2025-03-01"), .text("PL000123"), .text("610014"), .text("ADV"), .text("RX1234"),
            ])
        #expect(read.rows[4].values == [.text("2025-03-01"), .text("PL000123"), .text("610015"), .null, .null])
        #expect(
            read.rows[5].values == [
                .text("2025-03-01"), .text("PL000123"), .text("12345678901"), .text("3"), .integer(0), .integer(1),
                .integer(0), .text("2025-01-01"),
            ])
        #expect(read.rows[7].values[4] == .null)  // PY0002 has no PBM
        #expect(read.rows[8].values[3] == .text("NC"))
        #expect(
            read.problems == [
                "9 formulary_coverage.tier: not one of 1, 2, 3, 4, 5, 6, NC: \"X\"",
                "12 formulary_plan.lives: not a whole number: \"9x\"",
            ])
    }

    @Test func forEachNamesTheTableOfRejectedRecordsToo() throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        var seen: [String] = []
        try FeedFileReader(feed: "formulary").forEach(file: try fixture.file("f.xml", document)) { record in
            if case .rejected = record.content { seen.append("\(record.table)@\(record.line)") }
        }
        #expect(seen == ["4@9", "2@12"])
    }

    @Test func aMismatchedTagRejectsTheBatchWithLineAndColumn() throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        let url = try fixture.file(
            "f.xml",
            "<formularyFile asOf=\"2024-03-01\">\n  <payer id=\"PY1\" name=\"A\">\n    <plan id=\"PL1\" channel=\"COMMERCIAL\" lives=\"10\" state=\"NJ\">\n  </payer>\n</formularyFile>\n"
        )
        let error = readError("formulary", url, name: "formulary/2024-03-11/f.xml")
        #expect(error?.code == .malformedXML)
        #expect(error?.line == 4)
        #expect(error?.column == 11)
        #expect(
            error?.description
                == "formulary/2024-03-11/f.xml: malformed XML at line 4, column 11 (XML error 76: a closing tag does not match its opening tag); the batch is rejected whole. Ask the sender for a re-delivery."
        )
    }

    /// A truncated delivery: libxml2 reports where the input ends, we add the innermost element left open.
    @Test func aDocumentCutShortRejectsTheBatch() throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        let url = try fixture.file(
            "f.xml", "<formularyFile asOf=\"2024-03-01\">\n  <payer id=\"PY1\" name=\"A\">\n    <plan id=\"PL1\" chan")
        let error = readError("formulary", url)
        #expect(error?.code == .malformedXML)
        #expect(
            error?.description
                == "f.xml: malformed XML at line 3, column 24 (XML error 5: the document ends early; <plan> opened on line 3 is never closed); the batch is rejected whole. Ask the sender for a re-delivery."
        )
    }

    @Test func aDocumentCutBetweenElementsRejectsTheBatch() throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        let url = try fixture.file("f.xml", "<formularyFile asOf=\"2024-03-01\">\n  <payer id=\"PY1\" name=\"A\">\n")
        let error = readError("formulary", url)
        #expect(error?.code == .malformedXML)
        #expect(error?.description.contains("<payer> opened on line 2 is never closed") == true)
    }

    @Test func anUnescapedAmpersandRejectsTheBatch() throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        let url = try fixture.file(
            "f.xml", "<formularyFile asOf=\"2024-03-01\">\n  <payer id=\"PY1\" name=\"A & B\"/>\n</formularyFile>\n")
        let error = readError("formulary", url)
        #expect(error?.code == .malformedXML)
        #expect(error?.line == 2)
        #expect(error?.description.hasPrefix("f.xml: malformed XML at line 2, column") == true)
    }

    /// Positions are the ones `XMLParser` reports (after `<plans>` it stands on column 7).
    @Test func theRootMustBeAFormularyFileWithAnAsOfDate() throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        let wrongRoot = readError("formulary", try fixture.file("a.xml", "<plans>\n</plans>\n"))
        #expect(wrongRoot?.code == .malformedXML)
        #expect(
            wrongRoot?.description
                == "a.xml: malformed XML at line 1, column 7 (the root element is <plans>, expected <formularyFile>); the batch is rejected whole. Ask the sender for a re-delivery."
        )
        let noDate = readError(
            "formulary", try fixture.file("b.xml", "<formularyFile asOf=\"March\">\n</formularyFile>\n"))
        #expect(noDate?.code == .missingColumn)
        #expect(
            noDate?.description
                == "b.xml: the <formularyFile> element on line 1 has asOf=\"March\", not a date in the form YYYY-MM-DD; every row needs it, so the batch is rejected whole. Ask the sender for a re-delivery."
        )
        let empty = readError("formulary", try fixture.file("c.xml", ""))
        #expect(empty?.code == .emptyFile)
    }
}
