/// Finds the bytes of a field that are not text: control characters (NUL and the rest of C0 but the tab, DEL,
/// and the C1 controls U+0080–U+009F) and byte sequences that are not UTF-8 (or not Windows-1252).
///
/// A field that holds one is quarantined with the byte's offset in the file: a NUL inside an id would otherwise
/// reach the masters (C strings end there: "NANCY" became "NAN"), and invalid UTF-8 would turn into U+FFFD in a
/// golden record. Line breaks are allowed (a quoted field may hold one).
enum TextCheck {
    /// A byte that is not text, at `index` in the field.
    struct Problem {
        var index: Int
        var description: String
    }

    static let controlNames: [UInt8: String] = [
        0x00: "NUL", 0x07: "BEL", 0x08: "backspace", 0x0B: "vertical tab", 0x0C: "form feed", 0x1A: "SUB (Ctrl-Z)",
        0x1B: "ESC", 0x7F: "DEL",
    ]

    /// The first problem of the field, or nil when it is text.
    @inline(__always)
    static func problem(_ bytes: UnsafeBufferPointer<UInt8>, encoding: TextEncoding) -> Problem? {
        // The common case, printable ASCII: one comparison a byte.
        for b in bytes where b &- 0x20 >= 0x5F {
            return slowProblem(bytes, encoding: encoding)
        }
        return nil
    }

    private static func control(_ b: UInt8, at index: Int) -> Problem {
        let hex = "0x" + (b < 16 ? "0" : "") + String(b, radix: 16, uppercase: true)
        let name = controlNames[b].map { " (\($0))" } ?? ""
        return Problem(index: index, description: "a control character \(hex)\(name)")
    }

    static func slowProblem(_ bytes: UnsafeBufferPointer<UInt8>, encoding: TextEncoding) -> Problem? {
        var i = 0
        let n = bytes.count
        while i < n {
            let b = bytes[i]
            if b < 0x80 {
                if (b < 0x20 && b != 0x09 && b != 0x0A && b != 0x0D) || b == 0x7F { return control(b, at: i) }
                i += 1
                continue
            }
            if encoding == .windows1252 {
                if b == 0x81 || b == 0x8D || b == 0x8F || b == 0x90 || b == 0x9D {
                    return Problem(
                        index: i,
                        description: "byte 0x\(String(b, radix: 16, uppercase: true)), unassigned in Windows-1252")
                }
                i += 1
                continue
            }
            // UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing past U+10FFFF.
            let length: Int
            var low: UInt8 = 0x80
            var high: UInt8 = 0xBF
            switch b {
            case 0xC2...0xDF: length = 2
            case 0xE0:
                length = 3
                low = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: length = 3
            case 0xED:
                length = 3
                high = 0x9F
            case 0xF0:
                length = 4
                low = 0x90
            case 0xF1...0xF3: length = 4
            case 0xF4:
                length = 4
                high = 0x8F
            default: return invalid(bytes, at: i)
            }
            guard i + length <= n else { return invalid(bytes, at: i) }
            guard bytes[i + 1] >= low && bytes[i + 1] <= high else { return invalid(bytes, at: i) }
            for k in 2..<max(2, length) where bytes[i + k] & 0xC0 != 0x80 { return invalid(bytes, at: i) }
            if b == 0xC2 && bytes[i + 1] <= 0x9F {
                let scalar = "U+00" + String(bytes[i + 1], radix: 16, uppercase: true)
                return Problem(index: i, description: "a control character \(scalar) (a C1 control)")
            }
            i += length
        }
        return nil
    }

    private static func invalid(_ bytes: UnsafeBufferPointer<UInt8>, at i: Int) -> Problem {
        let shown = bytes[i..<min(bytes.count, i + 4)].map {
            "0x" + ($0 < 16 ? "0" : "") + String($0, radix: 16, uppercase: true)
        }
        return Problem(index: i, description: "bytes that are not UTF-8 (\(shown.joined(separator: " ")))")
    }

    /// The field as text for a quarantine row or a reason: control characters and bytes that are not text shown
    /// as `\xNN`, so that nothing invisible (or a NUL) is stored or printed.
    static func shown(_ bytes: UnsafeBufferPointer<UInt8>, encoding: TextEncoding = .utf8) -> String {
        guard problem(bytes, encoding: encoding) != nil else { return decode(bytes, encoding: encoding) }
        var out = ""
        var i = 0
        while i < bytes.count {
            let rest = UnsafeBufferPointer(rebasing: bytes[i...])
            guard let bad = slowProblem(rest, encoding: encoding) else {
                out += decode(rest, encoding: encoding)
                break
            }
            out += decode(UnsafeBufferPointer(rebasing: rest[..<bad.index]), encoding: encoding)
            let b = rest[bad.index]
            out += "\\x" + (b < 16 ? "0" : "") + String(b, radix: 16, uppercase: true)
            i += bad.index + 1
        }
        return out
    }

    /// Windows-1252's 0x80–0x9F (0 where unassigned); 0xA0–0xFF are Latin-1, the same code points.
    static let windows1252High: [UInt32] = [
        0x20AC, 0, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0, 0x017D, 0,
        0, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0, 0x017E,
        0x0178,
    ]

    /// The field's text (checked first: invalid bytes become U+FFFD only in messages).
    @inline(__always)
    static func decode(_ bytes: UnsafeBufferPointer<UInt8>, encoding: TextEncoding) -> String {
        guard encoding == .windows1252, bytes.contains(where: { $0 >= 0x80 }) else {
            return String(decoding: bytes, as: UTF8.self)
        }
        var scalars = String.UnicodeScalarView()
        for b in bytes {
            let code = b >= 0x80 && b < 0xA0 ? windows1252High[Int(b - 0x80)] : UInt32(b)
            scalars.append(Unicode.Scalar(code == 0 ? 0xFFFD : code) ?? "\u{FFFD}")
        }
        return String(scalars)
    }
}
