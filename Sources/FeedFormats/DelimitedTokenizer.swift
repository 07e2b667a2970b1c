import Foundation

/// One record of a delimited file: a view into the reader's buffer, valid only inside the callback.
struct DelimitedRecord {
    let base: UnsafePointer<UInt8>
    /// Two offsets into `base` per field: start and end of its content (quotes excluded).
    let spans: UnsafePointer<Int>
    /// Per field: bit 0 set when the content holds doubled quotes to undo, bit 1 when the field was quoted.
    let flags: UnsafePointer<UInt8>
    let count: Int
    /// The physical line the record starts on (1-based).
    let line: Int
    /// The file offset of `base[0]`: field byte `spans[2 * i] + k` is at file offset `fileOffset + spans[2 * i] + k`.
    let fileOffset: Int
    /// The field whose opening quote is never closed, and the buffer index of that quote: on the record's own
    /// line (the record is then that line only, and reading resumes on the next), or before the end of the file.
    let unclosedQuote: (field: Int, at: Int)?
    /// True when the file ended inside a quoted field.
    let unterminatedQuote: Bool
    /// The first field with text after its closing quote (`"abc"x`), if any.
    let strayTextAfterQuote: Int?
    /// True when this record is the file's last and had no line end.
    let lastWithoutNewline: Bool

    /// The field's bytes as written between its quotes (doubled quotes not undone: see `withField`).
    @inline(__always) func rawField(_ index: Int) -> UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(start: base + spans[2 * index], count: spans[2 * index + 1] - spans[2 * index])
    }

    /// Calls `body` with the field's value: its bytes, with doubled quotes undone.
    @inline(__always) func withField<R>(_ index: Int, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        let raw = rawField(index)
        guard flags[index] & 1 != 0 else { return body(raw) }
        var unescaped: [UInt8] = []
        unescaped.reserveCapacity(raw.count)
        var i = 0
        while i < raw.count {
            unescaped.append(raw[i])
            i += raw[i] == UInt8(ascii: "\"") ? 2 : 1
        }
        return unescaped.withUnsafeBufferPointer(body)
    }

    /// The field's value as text, anything that is not text shown as `\xNN`.
    func string(_ index: Int, encoding: TextEncoding = .utf8) -> String {
        withField(index) { TextCheck.shown($0, encoding: encoding) }
    }

    /// The record as text, for quarantine: fields joined by the delimiter, cut at 200 characters.
    func text(delimiter: UInt8, encoding: TextEncoding = .utf8) -> String {
        let joined = (0..<count).map { string($0, encoding: encoding) }.joined(
            separator: String(UnicodeScalar(delimiter)))
        return joined.count > 200 ? String(joined.prefix(200)) + "…" : joined
    }
}

/// Splits a delimited file into records without copying them: fields are offsets into the chunk buffer.
///
/// RFC 4180 quoting when `quoted`: a field that starts with a quote runs to the matching closing quote, and may
/// hold delimiters, line breaks and doubled quotes; a quote inside an unquoted field is an ordinary character.
/// CRLF and LF both end lines, blank lines are skipped (but counted), and a last line without a line end is
/// still a record. A record that does not fit the buffer is read again from its start after the buffer is
/// refilled, so only records that straddle two chunks are scanned twice.
///
/// The first record is the header. A quote that is never closed would swallow the lines after it, so when a
/// record whose quoted field runs over a line break comes out malformed (another field count than the header's
/// with anything but empty fields past it, text after a closing quote, the end of the file inside the quotes,
/// or more than ``maximumRecordBytes``), the quote is taken as unclosed on its own line: that line alone becomes
/// a record flagged ``DelimitedRecord/unclosedQuote`` and reading resumes on the next line, so no good line is
/// lost. A well-formed record with a line break inside quotes is kept whole.
struct DelimitedTokenizer {
    let delimiter: UInt8
    let quoted: Bool
    /// A record longer than this without a quoted line break is an error for the whole file (reading on would
    /// hold the rest of the file in memory).
    static let maximumRecordBytes = 16 << 20

    func forEachRecord(in source: ByteSource, _ body: (DelimitedRecord) throws -> Void) throws {
        let quote = UInt8(ascii: "\"")
        let newline = UInt8(ascii: "\n")
        let carriageReturn = UInt8(ascii: "\r")
        let delimiter = self.delimiter
        var spanCapacity = 64
        var spans = UnsafeMutablePointer<Int>.allocate(capacity: spanCapacity * 2)
        var flags = UnsafeMutablePointer<UInt8>.allocate(capacity: spanCapacity)
        defer {
            spans.deallocate()
            flags.deallocate()
        }
        var line = 1
        /// The header's field count, once the header is read.
        var expected = -1
        records: while true {
            if source.start == source.end {
                if source.atEOF { break records }
                try source.fill()
                continue records
            }
            // Scan one record from source.start; `needMore` sends us back here after a refill.
            let base = UnsafePointer(source.base)
            let end = source.end
            let eof = source.atEOF
            var i = source.start
            var count = 0
            var newlines = 0
            var stray: Int? = nil
            var unterminated = false
            var needMore = false
            var lastWithoutNewline = false
            // The first line break inside a quoted field: its index, its field, and the field's opening quote.
            var quotedBreak = -1
            var quotedBreakField = 0
            var quotedBreakQuote = 0
            var unterminatedQuote = 0
            fields: while true {
                if count == spanCapacity {
                    let biggerSpans = UnsafeMutablePointer<Int>.allocate(capacity: spanCapacity * 4)
                    biggerSpans.update(from: spans, count: spanCapacity * 2)
                    spans.deallocate()
                    spans = biggerSpans
                    let biggerFlags = UnsafeMutablePointer<UInt8>.allocate(capacity: spanCapacity * 2)
                    biggerFlags.update(from: flags, count: spanCapacity)
                    flags.deallocate()
                    flags = biggerFlags
                    spanCapacity *= 2
                }
                if quoted && i < end && base[i] == quote {
                    let opening = i
                    i += 1
                    let contentStart = i
                    var contentEnd = -1
                    var flag: UInt8 = 2
                    while i < end {
                        let b = base[i]
                        if b == quote {
                            if i + 1 < end {
                                if base[i + 1] == quote {
                                    flag = 3
                                    i += 2
                                    continue
                                }
                            } else if !eof {
                                break  // the next byte decides: a doubled quote or the closing one
                            }
                            contentEnd = i
                            i += 1
                            break
                        }
                        if b == newline {
                            if quotedBreak < 0 {
                                quotedBreak = i
                                quotedBreakField = count
                                quotedBreakQuote = opening
                            }
                            newlines += 1
                        }
                        i += 1
                    }
                    if contentEnd < 0 {
                        guard eof else {
                            needMore = true
                            break fields
                        }
                        spans[2 * count] = contentStart
                        spans[2 * count + 1] = end
                        flags[count] = flag
                        unterminatedQuote = opening
                        count += 1
                        unterminated = true
                        lastWithoutNewline = true
                        i = end
                        break fields
                    }
                    spans[2 * count] = contentStart
                    spans[2 * count + 1] = contentEnd
                    flags[count] = flag
                    // Text between the closing quote and the delimiter is malformed: note it, skip it.
                    while i < end && base[i] == carriageReturn { i += 1 }
                    if i < end && base[i] != delimiter && base[i] != newline {
                        if stray == nil { stray = count }
                        while i < end && base[i] != delimiter && base[i] != newline { i += 1 }
                    }
                    count += 1
                } else {
                    let fieldStart = i
                    while i < end {
                        let b = base[i]
                        if b == delimiter || b == newline { break }
                        i += 1
                    }
                    var fieldEnd = i
                    if fieldEnd > fieldStart && base[fieldEnd - 1] == carriageReturn { fieldEnd -= 1 }
                    spans[2 * count] = fieldStart
                    spans[2 * count + 1] = fieldEnd
                    flags[count] = 0
                    count += 1
                }
                if i < end {
                    if base[i] == delimiter {
                        i += 1
                        continue fields
                    }
                    i += 1  // the newline
                    break fields
                }
                guard eof else {
                    needMore = true
                    break fields
                }
                lastWithoutNewline = true
                break fields
            }
            let tooLong = needMore && source.end - source.start >= Self.maximumRecordBytes
            if needMore && !(tooLong && quotedBreak >= 0 && expected >= 0) {
                if tooLong {
                    throw FeedFormatError(
                        .recordTooLong, file: source.name, line: line,
                        "\(source.name): the record starting on line \(line) is longer than "
                            + "\(Self.maximumRecordBytes >> 20) MiB without a line end; the batch is rejected whole. "
                            + "Ask the sender to check the file and re-deliver.")
                }
                try source.fill()
                continue records
            }
            if quotedBreak >= 0 && expected >= 0
                && (tooLong || unterminated || stray != nil || !Self.fits(count, expected, spans))
            {
                // The quote opened on this line is taken as unclosed: the record is this line alone.
                var lineEnd = quotedBreak
                if lineEnd > source.start && base[lineEnd - 1] == carriageReturn { lineEnd -= 1 }
                spans[2 * quotedBreakField] = quotedBreakQuote + 1
                spans[2 * quotedBreakField + 1] = lineEnd
                flags[quotedBreakField] = 2
                try body(
                    DelimitedRecord(
                        base: base, spans: spans, flags: flags, count: quotedBreakField + 1, line: line,
                        fileOffset: source.offset(of: 0), unclosedQuote: (quotedBreakField, quotedBreakQuote),
                        unterminatedQuote: false, strayTextAfterQuote: nil, lastWithoutNewline: false))
                source.start = quotedBreak + 1
                line += 1
                continue records
            }
            let blank = count == 1 && flags[0] == 0 && spans[0] == spans[1]
            if !blank {
                try body(
                    DelimitedRecord(
                        base: base, spans: spans, flags: flags, count: count, line: line,
                        fileOffset: source.offset(of: 0),
                        unclosedQuote: unterminated ? (count - 1, unterminatedQuote) : nil,
                        unterminatedQuote: unterminated, strayTextAfterQuote: stray,
                        lastWithoutNewline: lastWithoutNewline))
                if expected < 0 { expected = count }
            }
            source.start = i
            line += 1 + newlines
        }
    }

    /// Whether a record of `count` fields fits a header of `expected`: the same count, or more with only empty
    /// fields past the header's (a delimiter at the end of the line).
    @inline(__always) static func fits(_ count: Int, _ expected: Int, _ spans: UnsafePointer<Int>) -> Bool {
        if count == expected { return true }
        guard count > expected else { return false }
        for k in expected..<count where spans[2 * k] != spans[2 * k + 1] { return false }
        return true
    }
}

extension ByteSource {
    /// Calls `body` with every line (without its line end, CR included), its 1-based number and the file offset
    /// of its first byte; blank lines are skipped. For JSON Lines, where a line break never sits inside a value.
    func forEachLine(
        _ body: (UnsafeBufferPointer<UInt8>, _ line: Int, _ offset: Int, _ lastWithoutNewline: Bool) throws -> Void
    ) throws {
        var line = 1
        while true {
            if start == end {
                if atEOF { return }
                try fill()
                continue
            }
            let from = base + start
            let length = end - start
            guard let found = memchr(from, Int32(UInt8(ascii: "\n")), length) else {
                guard atEOF else {
                    if length >= DelimitedTokenizer.maximumRecordBytes {
                        throw FeedFormatError(
                            .recordTooLong, file: name, line: line,
                            "\(name): line \(line) is longer than \(DelimitedTokenizer.maximumRecordBytes >> 20) MiB; "
                                + "the batch is rejected whole. Ask the sender to check the file and re-deliver.")
                    }
                    try fill()
                    continue
                }
                try emitLine(from, length, line, offset(of: start), last: true, body)
                start = end
                return
            }
            let lineLength = found.assumingMemoryBound(to: UInt8.self) - from
            try emitLine(from, lineLength, line, offset(of: start), last: false, body)
            start += lineLength + 1
            line += 1
        }
    }

    private func emitLine(
        _ from: UnsafeMutablePointer<UInt8>, _ length: Int, _ line: Int, _ offset: Int, last: Bool,
        _ body: (UnsafeBufferPointer<UInt8>, Int, Int, Bool) throws -> Void
    ) throws {
        var length = length
        if length > 0 && from[length - 1] == UInt8(ascii: "\r") { length -= 1 }
        var blank = true
        for i in 0..<length where !FieldParsing.isSpace(from[i]) {
            blank = false
            break
        }
        if !blank { try body(UnsafeBufferPointer(start: from, count: length), line, offset, last) }
    }
}
