import Foundation

#if canImport(FoundationXML)
    import FoundationXML
#endif

/// Reads the formulary XML document into its five tables: payer, PBM, plan, plan key (BIN/PCN/group) and
/// coverage, each row carrying the file's `asOf` date and the ids of its parents.
///
/// The document streams through Foundation's event-driven `XMLParser` fed from an `InputStream`, and rows go
/// to the callbacks as their elements open, so memory does not grow with the file. Elements and attributes the
/// layout does not name are ignored. A document that is not well-formed rejects the batch with the line and
/// column where the parser stopped; rows read before that point have already been delivered, so callers load a
/// batch in one transaction and roll it back on a thrown error (Ingest does).
struct FormularyReader {
    let layout: FeedLayout

    enum Table: Int {
        case payer, pbm, plan, planKey, coverage
    }

    func read(
        file: URL, name: String, row: (Int, Int, [FieldValue]) throws -> Void, rejected: (RowIssue) throws -> Void
    ) throws {
        let size = (try? FileManager.default.attributesOfItem(atPath: file.path)[.size] as? Int) ?? nil
        guard let size, let stream = InputStream(url: file) else {
            throw FeedFormatError(.unreadable, file: name, "\(name): the file cannot be read.")
        }
        guard size > 0 else {
            throw FeedFormatError(
                .emptyFile, file: name, line: 1,
                "\(name): the file is empty (no XML document); the batch is rejected. Ask the sender to re-deliver it.")
        }
        try withoutActuallyEscaping(row) { row in
            try withoutActuallyEscaping(rejected) { rejected in
                let delegate = Delegate(
                    layout: layout, fileName: file.lastPathComponent, name: name, row: row, rejected: rejected)
                let parser = XMLParser(stream: stream)
                parser.delegate = delegate
                let ok = parser.parse()
                // A callback's own error wins: it is not the document's fault.
                if let failure = delegate.callbackFailure { throw failure }
                if let problem = delegate.documentProblem { throw problem }
                if !ok || parser.parserError != nil {
                    // Where libxml2 stopped when it reported the error; after `parse()` it stands at the end.
                    let (line, column) = delegate.errorPosition ?? (parser.lineNumber, parser.columnNumber)
                    var reason = Self.describe(parser.parserError)
                    if let (element, opened) = delegate.open.last, (parser.parserError as NSError?)?.code == 5 {
                        reason += "; <\(element)> opened on line \(opened) is never closed"
                    }
                    throw malformed(name, line: line, column: column, reason: reason)
                }
                // The stream parser never tells libxml2 the input ended, so an unclosed element is ours to see.
                if let (element, line) = delegate.open.last {
                    throw malformed(
                        name, line: parser.lineNumber, column: parser.columnNumber,
                        reason: "<\(element)> opened on line \(line) is never closed: the file ends early")
                }
                if !delegate.sawRoot {
                    throw malformed(name, line: 1, column: 1, reason: "no <formularyFile> root element")
                }
            }
        }
    }

    static func describe(_ error: Error?) -> String {
        guard let code = (error as NSError?)?.code else { return "not well-formed" }
        let known = [
            4: "the document is empty", 5: "the document ends early", 9: "an invalid character",
            23: "an unescaped & or <", 38: "a < inside an attribute value", 39: "an attribute is not quoted",
            41: "an attribute is not quoted", 73: "a closing tag is missing",
            76: "a closing tag does not match its opening tag", 77: "a tag is not finished",
            85: "an element is not closed", 86: "text after the root element",
        ]
        return "XML error \(code): \(known[code] ?? "not well-formed")"
    }

    static func malformedError(_ name: String, line: Int, column: Int, reason: String) -> FeedFormatError {
        FeedFormatError(
            .malformedXML, file: name, line: line, column: column,
            "\(name): malformed XML at line \(line), column \(column) (\(reason)); the batch is rejected whole. "
                + "Ask the sender for a re-delivery.")
    }

    private func malformed(_ name: String, line: Int, column: Int, reason: String) -> FeedFormatError {
        Self.malformedError(name, line: line, column: column, reason: reason)
    }

    /// Turns parser events into rows. Not `Sendable`: it lives inside one `read` call on one thread.
    final class Delegate: NSObject, XMLParserDelegate {
        let fileName: String
        let name: String
        let row: (Int, Int, [FieldValue]) throws -> Void
        let rejected: (RowIssue) throws -> Void
        var builders: [RowBuilder]
        var callbackFailure: Error?
        var documentProblem: FeedFormatError?
        var sawRoot = false
        var asOf = ""
        var payerID = ""
        var pbmID = ""
        var planID = ""
        var text = ""
        /// The BIN/PCN/group triple being read, and the line its `<bin>` is on.
        var triple: [String: String]?
        var tripleLine = 0
        /// Open elements with the line each opened on: libxml2 recovers from some mismatches silently, we do not.
        var open: [(String, Int)] = []
        /// Where the parser stood when it reported its first error.
        var errorPosition: (Int, Int)?

        init(
            layout: FeedLayout, fileName: String, name: String, row: @escaping (Int, Int, [FieldValue]) throws -> Void,
            rejected: @escaping (RowIssue) throws -> Void
        ) {
            self.fileName = fileName
            self.name = name
            self.row = row
            self.rejected = rejected
            builders = layout.tables.map { RowBuilder(table: $0, fileName: fileName, name: name) }
        }

        private func stop(_ parser: XMLParser, _ problem: FeedFormatError) {
            if documentProblem == nil && callbackFailure == nil { documentProblem = problem }
            parser.abortParsing()
        }

        /// Types `attributes` into a row of `table`, context columns (as_of, parent ids) included.
        func emit(_ table: Table, line: Int, _ attributes: [String: String], _ parser: XMLParser) {
            guard callbackFailure == nil, documentProblem == nil else { return }
            let index = table.rawValue
            let columns = builders[index].table.columns
            do {
                for c in 0..<columns.count {
                    let source = columns[c].source
                    var raw = attributes[source] ?? ""
                    let result = raw.withUTF8 { builders[index].rules[c].parse($0) }
                    switch result {
                    case .success(let value):
                        builders[index].values[c] = value
                    case .failure(let problem):
                        try rejected(
                            RowIssue(
                                file: name, line: line, column: "\(builders[index].table.name).\(source)",
                                rawValue: raw, reason: problem.description))
                        return
                    }
                }
                if let issue = builders[index].finish(line: line) {
                    try rejected(issue)
                } else {
                    try row(index, line, builders[index].values)
                }
            } catch {
                callbackFailure = error
                parser.abortParsing()
            }
        }

        private func flushTriple(_ parser: XMLParser) {
            guard var triple else { return }
            self.triple = nil
            triple["plan"] = planID
            triple["asOf"] = asOf
            emit(.planKey, line: tripleLine, triple, parser)
        }

        func parser(
            _ parser: XMLParser, didStartElement element: String, namespaceURI: String?, qualifiedName: String?,
            attributes: [String: String] = [:]
        ) {
            let line = parser.lineNumber
            text = ""
            open.append((element, line))
            guard sawRoot else {
                guard element == "formularyFile" else {
                    return stop(
                        parser,
                        FormularyReader.malformedError(
                            name, line: line, column: parser.columnNumber,
                            reason: "the root element is <\(element)>, expected <formularyFile>"))
                }
                sawRoot = true
                asOf = attributes["asOf"] ?? ""
                var bytes = asOf
                if bytes.withUTF8({ FieldParsing.dateParts($0, format: .iso) }) == nil {
                    stop(
                        parser,
                        FeedFormatError(
                            .missingColumn, file: name, line: line,
                            "\(name): the <formularyFile> element on line \(line) "
                                + (asOf.isEmpty
                                    ? "has no asOf attribute"
                                    : "has asOf=\"\(asOf)\", not a date in the form YYYY-MM-DD")
                                + "; every row needs it, so the batch is rejected whole. Ask the sender for a re-delivery."
                        ))
                }
                return
            }
            var attributes = attributes
            attributes["asOf"] = asOf
            switch element {
            case "payer":
                payerID = attributes["id"] ?? ""
                pbmID = ""
                emit(.payer, line: line, attributes, parser)
            case "pbm":
                pbmID = attributes["id"] ?? ""
                attributes["payer"] = payerID
                emit(.pbm, line: line, attributes, parser)
            case "plan":
                planID = attributes["id"] ?? ""
                attributes["payer"] = payerID
                attributes["pbm"] = pbmID
                emit(.plan, line: line, attributes, parser)
            case "bin":
                flushTriple(parser)
                triple = [:]
                tripleLine = line
            case "pcn", "group":
                if triple == nil {
                    triple = [:]
                    tripleLine = line
                }
            case "coverage":
                flushTriple(parser)
                attributes["plan"] = planID
                emit(.coverage, line: line, attributes, parser)
            default:
                break
            }
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) { text += string }

        func parser(_ parser: XMLParser, parseErrorOccurred parseError: Error) {
            if errorPosition == nil { errorPosition = (parser.lineNumber, parser.columnNumber) }
        }

        func parser(_ parser: XMLParser, didEndElement element: String, namespaceURI: String?, qualifiedName: String?) {
            if let (expected, opened) = open.popLast(), expected != element {
                return stop(
                    parser,
                    FormularyReader.malformedError(
                        name, line: parser.lineNumber, column: parser.columnNumber,
                        reason: "closing tag </\(element)> does not match <\(expected)> opened on line \(opened)"))
            }
            switch element {
            case "bin", "pcn", "group":
                triple?[element] = text.trimmingCharacters(in: .whitespacesAndNewlines)
            case "plan":
                flushTriple(parser)
                planID = ""
            case "payer":
                payerID = ""
                pbmID = ""
            default:
                break
            }
            text = ""
        }
    }
}
