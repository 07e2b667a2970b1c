import Foundation

#if canImport(FoundationXML)
    import FoundationXML
#endif

/// Reads the formulary XML document into its five tables (payer, PBM, plan, plan key, coverage).
///
/// Formulary files are small (one document per monthly batch, a few thousand plans), so the document is
/// parsed with Foundation's event-driven `XMLParser` from memory.
struct FormularyReader {
    let layout: FeedLayout

    static let tableNames = [
        "formulary_payer", "formulary_pbm", "formulary_plan", "formulary_plan_key", "formulary_coverage",
    ]

    func read(
        file: URL, name: String, row: (Int, Int, [FieldValue]) throws -> Void, rejected: (RowIssue) throws -> Void
    ) throws {
        guard let data = FileManager.default.contents(atPath: file.path) else {
            throw FeedFormatError(.unreadable, file: name, "\(name): cannot be read")
        }
        guard !data.isEmpty else {
            throw FeedFormatError(.emptyFile, file: name, "\(name): the file is empty; the batch is rejected")
        }
        let delegate = Delegate(layout: layout, fileName: file.lastPathComponent)
        let parser = XMLParser(data: data)
        parser.delegate = delegate
        let ok = parser.parse()
        if let problem = delegate.structureProblem {
            throw FeedFormatError(
                .malformedXML, file: name, line: problem.line,
                "\(name): malformed XML at line \(problem.line) (\(problem.reason)); the batch is rejected whole. Ask the sender for a re-delivery."
            )
        }
        guard ok, delegate.sawRoot else {
            let line = parser.lineNumber
            let column = parser.columnNumber
            let code = (parser.parserError as NSError?)?.code
            let known = [
                4: "the document is empty", 5: "the document ends early", 73: "a closing tag is missing",
                76: "a closing tag does not match its opening tag", 41: "an attribute is not quoted",
                9: "an invalid character", 23: "an unescaped & or <",
            ]
            let reason =
                code.map { "XML error \($0): \(known[$0] ?? "not well-formed")" } ?? "no <formularyFile> root element"
            throw FeedFormatError(
                .malformedXML, file: name, line: line,
                "\(name): malformed XML at line \(line), column \(column) (\(reason)); the batch is rejected whole. Ask the sender for a re-delivery."
            )
        }
        for event in delegate.events {
            switch event {
            case .row(let table, let line, let values): try row(table, line, values)
            case .rejected(let issue): try rejected(issue)
            }
        }
    }

    enum Event {
        case row(Int, Int, [FieldValue])
        case rejected(RowIssue)
    }

    final class Delegate: NSObject, XMLParserDelegate {
        let layout: FeedLayout
        let fileName: String
        var events: [Event] = []
        var sawRoot = false
        var asOf = ""
        var payerID = ""
        var pbmID = ""
        var planID = ""
        var text = ""
        var triple: [String: String] = [:]
        var tripleLine = 0
        /// Open elements with the line each opened on: libxml2 recovers from some mismatches silently, we do not.
        var open: [(String, Int)] = []
        var structureProblem: (line: Int, reason: String)?

        init(layout: FeedLayout, fileName: String) {
            self.layout = layout
            self.fileName = fileName
        }

        /// Types the attributes of an element into a row of `table`; context columns come first.
        func emit(_ tableName: String, line: Int, _ attributes: [String: String]) {
            guard let index = layout.tables.firstIndex(where: { $0.name == tableName }) else { return }
            let table = layout.tables[index]
            var values: [FieldValue] = []
            for column in table.columns {
                let raw = attributes[column.source] ?? ""
                let result = Array(raw.utf8).withUnsafeBufferPointer { FieldParsing.value($0, as: column) }
                switch result {
                case .success(let value): values.append(value)
                case .failure(let reason):
                    events.append(
                        .rejected(
                            RowIssue(
                                line: line, column: "\(tableName).\(column.source)", rawValue: raw,
                                reason: reason.description)))
                    return
                }
            }
            switch FeedFileReader.complete(values, table: table, line: line, fileName: fileName) {
            case .success(let complete): events.append(.row(index, line, complete))
            case .failure(let issue): events.append(.rejected(issue))
            }
        }

        func parser(
            _ parser: XMLParser, didStartElement element: String, namespaceURI: String?, qualifiedName: String?,
            attributes: [String: String] = [:]
        ) {
            let line = parser.lineNumber
            text = ""
            open.append((element, line))
            if element == "formularyFile" {
                sawRoot = true
                asOf = attributes["asOf"] ?? ""
                return
            }
            var attributes = attributes
            attributes["asOf"] = asOf
            switch element {
            case "payer":
                payerID = attributes["id"] ?? ""
                emit("formulary_payer", line: line, attributes)
            case "pbm":
                pbmID = attributes["id"] ?? ""
                attributes["payer"] = payerID
                emit("formulary_pbm", line: line, attributes)
            case "plan":
                planID = attributes["id"] ?? ""
                attributes["payer"] = payerID
                attributes["pbm"] = pbmID
                emit("formulary_plan", line: line, attributes)
                triple = [:]
            case "bin":
                tripleLine = line
            case "coverage":
                attributes["plan"] = planID
                emit("formulary_coverage", line: line, attributes)
            default:
                break
            }
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) { text += string }

        func parserDidEndDocument(_ parser: XMLParser) {
            if let (element, line) = open.last, structureProblem == nil {
                structureProblem = (parser.lineNumber, "<\(element)> opened on line \(line) is never closed")
            }
        }

        func parser(_ parser: XMLParser, didEndElement element: String, namespaceURI: String?, qualifiedName: String?) {
            if let (expected, opened) = open.popLast(), expected != element, structureProblem == nil {
                structureProblem = (
                    parser.lineNumber, "closing tag </\(element)> does not match <\(expected)> opened on line \(opened)"
                )
                parser.abortParsing()
                return
            }
            switch element {
            case "bin", "pcn", "group":
                triple[element] = text.trimmingCharacters(in: .whitespacesAndNewlines)
                if element == "group" {
                    emit("formulary_plan_key", line: tripleLine, triple.merging(["plan": planID, "asOf": asOf]) { $1 })
                    triple = [:]
                }
            case "payer":
                payerID = ""
                pbmID = ""
            case "plan":
                planID = ""
            default:
                break
            }
            text = ""
        }
    }
}
