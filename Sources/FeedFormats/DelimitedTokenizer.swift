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

    func string(_ index: Int) -> String { withField(index) { String(decoding: $0, as: UTF8.self) } }

    /// The record as text, for quarantine: fields joined by the delimiter, cut at 200 characters.
    func text(delimiter: UInt8) -> String {
        let joined = (0..<count).map(string).joined(separator: String(UnicodeScalar(delimiter)))
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
struct DelimitedTokenizer {
    let delimiter: UInt8
    let quoted: Bool
    /// A record longer than this is an error for the whole file: it is almost surely an unclosed quote, and
    /// reading on would hold the rest of the file in memory.
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
                        if b == newline { newlines += 1 }
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
            if needMore {
                if source.end - source.start >= Self.maximumRecordBytes {
                    throw FeedFormatError(
                        .recordTooLong, file: source.name, line: line,
                        "\(source.name): the record starting on line \(line) is longer than "
                            + "\(Self.maximumRecordBytes >> 20) MiB, most likely a quote that is never closed; "
                            + "the batch is rejected whole. Ask the sender to check the quoting and re-deliver.")
                }
                try source.fill()
                continue records
            }
            let blank = count == 1 && flags[0] == 0 && spans[0] == spans[1]
            if !blank {
                try body(
                    DelimitedRecord(
                        base: base, spans: spans, flags: flags, count: count, line: line,
                        unterminatedQuote: unterminated, strayTextAfterQuote: stray,
                        lastWithoutNewline: lastWithoutNewline))
            }
            source.start = i
            line += 1 + newlines
        }
    }
}

extension ByteSource {
    /// Calls `body` with every line (without its line end, CR included) and its 1-based number; blank lines
    /// are skipped. For JSON Lines, where a line break never sits inside a value.
    func forEachLine(_ body: (UnsafeBufferPointer<UInt8>, _ line: Int, _ lastWithoutNewline: Bool) throws -> Void)
        throws
    {
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
                try emitLine(from, length, line, last: true, body)
                start = end
                return
            }
            let lineLength = found.assumingMemoryBound(to: UInt8.self) - from
            try emitLine(from, lineLength, line, last: false, body)
            start += lineLength + 1
            line += 1
        }
    }

    private func emitLine(
        _ from: UnsafeMutablePointer<UInt8>, _ length: Int, _ line: Int, last: Bool,
        _ body: (UnsafeBufferPointer<UInt8>, Int, Bool) throws -> Void
    ) throws {
        var length = length
        if length > 0 && from[length - 1] == UInt8(ascii: "\r") { length -= 1 }
        var blank = true
        for i in 0..<length where !FieldParsing.isSpace(from[i]) {
            blank = false
            break
        }
        if !blank { try body(UnsafeBufferPointer(start: from, count: length), line, last) }
    }
}
