import Foundation

/// One record of a delimited file, valid only inside the callback that receives it.
struct DelimitedRecord {
    let bytes: UnsafeBufferPointer<UInt8>
    let ends: UnsafeBufferPointer<Int>
    /// The physical line the record starts on (1-based).
    let line: Int
    /// True when the file ended inside a quoted field.
    let unterminatedQuote: Bool
    /// True when this record is the file's last and had no line end.
    let lastWithoutNewline: Bool

    var count: Int { ends.count }

    func field(_ index: Int) -> UnsafeBufferPointer<UInt8> {
        let start = index == 0 ? 0 : ends[index - 1]
        return UnsafeBufferPointer(rebasing: bytes[start..<ends[index]])
    }

    func string(_ index: Int) -> String { String(decoding: field(index), as: UTF8.self) }

    /// The record as text, for quarantine: fields joined by the delimiter, cut at 200 characters.
    func text(delimiter: UInt8) -> String {
        let joined = (0..<count).map(string).joined(separator: String(UnicodeScalar(delimiter)))
        return joined.count > 200 ? String(joined.prefix(200)) + "…" : joined
    }
}

/// Splits a delimited file into records, streaming in 1 MiB chunks: memory does not grow with file size.
///
/// RFC 4180 quoting when `quoted` (embedded delimiters, doubled quotes and line breaks inside quotes), a
/// UTF-8 byte-order mark is skipped, CRLF and LF both end lines, blank lines are skipped, and a last line
/// without a line end is still a record.
struct DelimitedTokenizer {
    let url: URL
    let delimiter: UInt8
    let quoted: Bool

    func forEachRecord(_ body: (DelimitedRecord) throws -> Void) throws {
        guard let handle = FileHandle(forReadingAtPath: url.path) else {
            throw FeedFormatError(.unreadable, file: url.lastPathComponent, "\(url.lastPathComponent): cannot be read")
        }
        defer { try? handle.close() }
        var state = State(delimiter: delimiter, quoted: quoted)
        var first = true
        while var chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
            if first {
                first = false
                if chunk.starts(with: [0xEF, 0xBB, 0xBF]) { chunk.removeFirst(3) }
            }
            try chunk.withUnsafeBytes { try state.consume($0, body) }
        }
        try state.finish(body)
    }

    /// The tokenizer's state between chunks. Its byte loop runs in one mutating method, so the hot path
    /// touches stored properties directly (no closure captures, no per-byte exclusivity checks).
    struct State {
        let delimiter: UInt8
        let quoted: Bool
        var record: [UInt8] = []
        var ends: [Int] = []
        var line = 1
        var recordLine = 1
        var inQuotes = false
        /// A quote seen inside quotes: closing, or the first of a doubled pair.
        var pendingQuote = false
        var fieldHasContent = false

        init(delimiter: UInt8, quoted: Bool) {
            self.delimiter = delimiter
            self.quoted = quoted
            record.reserveCapacity(4096)
            ends.reserveCapacity(64)
        }

        mutating func emit(lastWithoutNewline: Bool, unterminated: Bool, _ body: (DelimitedRecord) throws -> Void)
            throws
        {
            ends.append(record.count)
            // A blank line (one empty field) is no record.
            if !(ends.count == 1 && record.isEmpty && !fieldHasContent) {
                let line = recordLine
                try record.withUnsafeBufferPointer { bytes in
                    try ends.withUnsafeBufferPointer { ends in
                        try body(
                            DelimitedRecord(
                                bytes: bytes, ends: ends, line: line, unterminatedQuote: unterminated,
                                lastWithoutNewline: lastWithoutNewline))
                    }
                }
            }
            record.removeAll(keepingCapacity: true)
            ends.removeAll(keepingCapacity: true)
            fieldHasContent = false
        }

        mutating func consume(_ raw: UnsafeRawBufferPointer, _ body: (DelimitedRecord) throws -> Void) throws {
            let quote = UInt8(ascii: "\"")
            let newline = UInt8(ascii: "\n")
            let carriageReturn = UInt8(ascii: "\r")
            var index = 0
            let count = raw.count
            while index < count {
                let b = raw[index]
                index += 1
                if pendingQuote {
                    pendingQuote = false
                    if b == quote {
                        record.append(quote)
                        continue
                    }
                    inQuotes = false
                }
                if inQuotes {
                    if b == quote {
                        pendingQuote = true
                    } else {
                        if b == newline { line += 1 }
                        record.append(b)
                    }
                    continue
                }
                if b == delimiter {
                    ends.append(record.count)
                    fieldHasContent = true
                } else if b == newline {
                    try emit(lastWithoutNewline: false, unterminated: false, body)
                    line += 1
                    recordLine = line
                } else if b == carriageReturn {
                    continue
                } else if b == quote && quoted {
                    inQuotes = true
                    fieldHasContent = true
                } else {
                    record.append(b)
                }
            }
        }

        mutating func finish(_ body: (DelimitedRecord) throws -> Void) throws {
            if pendingQuote { inQuotes = false }
            if !record.isEmpty || !ends.isEmpty || fieldHasContent {
                try emit(lastWithoutNewline: true, unterminated: inQuotes, body)
            }
        }
    }
}
