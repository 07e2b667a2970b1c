import Foundation

/// Where a JSON line put the value of one of the layout's keys.
struct JSONSlot {
    enum Kind: UInt8 {
        /// The key is not in the object.
        case absent
        case null
        /// A string without escapes: the span is its content.
        case string
        /// A string with backslash escapes: the span is its raw content, to decode.
        case escapedString
        /// A number, `true` or `false`: the span is its text.
        case literal
        case object
        case array
    }
    var kind: Kind = .absent
    var start = 0
    var end = 0
}

/// Why a line is not a JSON object, with the 1-based character where it went wrong.
struct JSONSyntaxError: Error {
    var offset: Int
    var expected: String
    var description: String { "invalid JSON at character \(offset + 1): \(expected)" }
}

/// A validating scanner for one JSON object a line, that only records where the wanted keys' values are.
///
/// Every line is checked against the whole JSON grammar (nested objects and arrays included, up to 64 deep),
/// but nothing is allocated for keys nobody asked for, and strings without escapes are never copied.
struct JSONLineScanner {
    /// The wanted keys, as UTF-8.
    let keys: [[UInt8]]

    init(keys: [String]) { self.keys = keys.map { Array($0.utf8) } }

    /// Scans `line` into `slots` (one per key, reset first).
    func scan(_ line: UnsafeBufferPointer<UInt8>, into slots: inout [JSONSlot]) throws(JSONSyntaxError) {
        for i in slots.indices { slots[i] = JSONSlot() }
        var p = Cursor(bytes: line)
        p.skipSpace()
        guard p.peek == UInt8(ascii: "{") else { throw p.error("expected \"{\" to open an object") }
        p.index += 1
        p.skipSpace()
        if p.peek == UInt8(ascii: "}") {
            p.index += 1
        } else {
            while true {
                guard p.peek == UInt8(ascii: "\"") else { throw p.error("expected a key in double quotes") }
                let (keyStart, keyEnd, keyEscaped) = try p.string()
                p.skipSpace()
                guard p.peek == UInt8(ascii: ":") else { throw p.error("expected \":\" after a key") }
                p.index += 1
                p.skipSpace()
                let slot = try p.value(depth: 0)
                if let key = index(ofKey: line, keyStart, keyEnd, escaped: keyEscaped) { slots[key] = slot }
                p.skipSpace()
                if p.peek == UInt8(ascii: ",") {
                    p.index += 1
                    p.skipSpace()
                    continue
                }
                guard p.peek == UInt8(ascii: "}") else { throw p.error("expected \",\" or \"}\" after a value") }
                p.index += 1
                break
            }
        }
        p.skipSpace()
        guard p.index == line.count else { throw p.error("unexpected text after the object") }
    }

    private func index(ofKey line: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int, escaped: Bool) -> Int? {
        if escaped {
            let decoded = Self.unescape(UnsafeBufferPointer(rebasing: line[start..<end]))
            return keys.firstIndex(of: decoded)
        }
        let count = end - start
        outer: for (k, key) in keys.enumerated() where key.count == count {
            for i in 0..<count where key[i] != line[start + i] { continue outer }
            return k
        }
        return nil
    }

    /// Decodes a string's escapes (`\"`, `\\`, `\/`, `\b`, `\f`, `\n`, `\r`, `\t`, `\uXXXX` with surrogate
    /// pairs) into UTF-8; the scanner has already checked them.
    static func unescape(_ raw: UnsafeBufferPointer<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(raw.count)
        var i = 0
        func hex4(_ at: Int) -> UInt32 {
            var v: UInt32 = 0
            for k in 0..<4 { v = v << 4 | UInt32(Cursor.hexValue(raw[at + k]) ?? 0) }
            return v
        }
        while i < raw.count {
            let b = raw[i]
            guard b == UInt8(ascii: "\\"), i + 1 < raw.count else {
                out.append(b)
                i += 1
                continue
            }
            let e = raw[i + 1]
            i += 2
            switch e {
            case UInt8(ascii: "b"): out.append(8)
            case UInt8(ascii: "f"): out.append(12)
            case UInt8(ascii: "n"): out.append(10)
            case UInt8(ascii: "r"): out.append(13)
            case UInt8(ascii: "t"): out.append(9)
            case UInt8(ascii: "u"):
                var scalar = hex4(i)
                i += 4
                if (0xD800..<0xDC00).contains(scalar), i + 5 < raw.count, raw[i] == UInt8(ascii: "\\"),
                    raw[i + 1] == UInt8(ascii: "u")
                {
                    let low = hex4(i + 2)
                    if (0xDC00..<0xE000).contains(low) {
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        i += 6
                    }
                }
                UTF8.encode(Unicode.Scalar(scalar) ?? "\u{FFFD}") { out.append($0) }
            default: out.append(e)
            }
        }
        return out
    }

    /// A position in the line and the grammar from there.
    struct Cursor {
        let bytes: UnsafeBufferPointer<UInt8>
        var index = 0

        var peek: UInt8 { index < bytes.count ? bytes[index] : 0 }

        func error(_ expected: String) -> JSONSyntaxError {
            JSONSyntaxError(
                offset: index, expected: index < bytes.count ? expected : expected + " (the line ends first)")
        }

        mutating func skipSpace() {
            while index < bytes.count {
                let b = bytes[index]
                guard b == 0x20 || b == 0x09 || b == 0x0D || b == 0x0A else { return }
                index += 1
            }
        }

        static func hexValue(_ b: UInt8) -> UInt8? {
            if b &- 48 <= 9 { return b &- 48 }
            let lower = b | 0x20
            if lower >= UInt8(ascii: "a") && lower <= UInt8(ascii: "f") { return lower - UInt8(ascii: "a") + 10 }
            return nil
        }

        /// A string at the cursor (on its opening quote): its content's span and whether it holds escapes.
        mutating func string() throws(JSONSyntaxError) -> (Int, Int, Bool) {
            index += 1
            let start = index
            var escaped = false
            while index < bytes.count {
                let b = bytes[index]
                if b == UInt8(ascii: "\"") {
                    index += 1
                    return (start, index - 1, escaped)
                }
                if b == UInt8(ascii: "\\") {
                    escaped = true
                    guard index + 1 < bytes.count else { index += 1; break }
                    let e = bytes[index + 1]
                    switch e {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
                        UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                        index += 2
                    case UInt8(ascii: "u"):
                        guard index + 5 < bytes.count,
                            (2...5).allSatisfy({ Self.hexValue(bytes[index + $0]) != nil })
                        else {
                            index += 1
                            throw error("expected four hex digits after \\u")
                        }
                        index += 6
                    default:
                        index += 1
                        throw error("unknown escape \\\(String(UnicodeScalar(e)))")
                    }
                    continue
                }
                if b < 0x20 { throw error("a control character inside a string (escape it)") }
                index += 1
            }
            throw error("a string is not closed")
        }

        mutating func literal(_ word: StaticString, _ kind: JSONSlot.Kind) throws(JSONSyntaxError) -> JSONSlot {
            let start = index
            let count = word.utf8CodeUnitCount
            guard index + count <= bytes.count else { throw error("expected a value") }
            for k in 0..<count where bytes[index + k] != word.utf8Start[k] { throw error("expected a value") }
            index += count
            return JSONSlot(kind: kind, start: start, end: index)
        }

        mutating func digits() -> Int {
            let start = index
            while index < bytes.count, bytes[index] &- 48 <= 9 { index += 1 }
            return index - start
        }

        mutating func number() throws(JSONSyntaxError) -> JSONSlot {
            let start = index
            if peek == UInt8(ascii: "-") { index += 1 }
            if peek == UInt8(ascii: "0") {
                index += 1
            } else {
                guard digits() > 0 else { throw error("expected a digit") }
            }
            if peek == UInt8(ascii: ".") {
                index += 1
                guard digits() > 0 else { throw error("expected a digit after the decimal point") }
            }
            if peek | 0x20 == UInt8(ascii: "e") {
                index += 1
                if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { index += 1 }
                guard digits() > 0 else { throw error("expected a digit in the exponent") }
            }
            return JSONSlot(kind: .literal, start: start, end: index)
        }

        /// A value at the cursor; objects and arrays are checked and skipped.
        mutating func value(depth: Int) throws(JSONSyntaxError) -> JSONSlot {
            switch peek {
            case UInt8(ascii: "\""):
                let (start, end, escaped) = try string()
                return JSONSlot(kind: escaped ? .escapedString : .string, start: start, end: end)
            case UInt8(ascii: "t"): return try literal("true", .literal)
            case UInt8(ascii: "f"): return try literal("false", .literal)
            case UInt8(ascii: "n"): return try literal("null", .null)
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                guard depth < 64 else { throw error("objects and arrays nested more than 64 deep") }
                let start = index
                let isObject = peek == UInt8(ascii: "{")
                let close = isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")
                index += 1
                skipSpace()
                if peek == close {
                    index += 1
                } else {
                    while true {
                        if isObject {
                            guard peek == UInt8(ascii: "\"") else { throw error("expected a key in double quotes") }
                            _ = try string()
                            skipSpace()
                            guard peek == UInt8(ascii: ":") else { throw error("expected \":\" after a key") }
                            index += 1
                            skipSpace()
                        }
                        _ = try value(depth: depth + 1)
                        skipSpace()
                        if peek == UInt8(ascii: ",") {
                            index += 1
                            skipSpace()
                            continue
                        }
                        guard peek == close else {
                            throw error("expected \",\" or \"\(String(UnicodeScalar(close)))\" after a value")
                        }
                        index += 1
                        break
                    }
                }
                return JSONSlot(kind: isObject ? .object : .array, start: start, end: index)
            default:
                throw error("expected a value")
            }
        }
    }
}
