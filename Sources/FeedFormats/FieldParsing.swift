import Foundation

/// Why a field could not be read: the reason a quarantine row carries.
struct FieldProblem: Error, ExpressibleByStringLiteral, ExpressibleByStringInterpolation, CustomStringConvertible {
    var description: String
    init(stringLiteral value: String) { description = value }
    init(stringInterpolation: DefaultStringInterpolation) {
        description = String(stringInterpolation: stringInterpolation)
    }
}

/// A column's rules compiled for the hot path: accepted values as bytes, no strings touched until a value is
/// kept or refused. A class, so the per-field loop passes a reference instead of copying the rule.
final class FieldRule: Sendable {
    let type: ColumnType
    let nullable: Bool
    let accepted: [[UInt8]]?
    let length: Int?
    let digits: Bool
    let acceptedList: String
    let encoding: TextEncoding

    init(_ column: ColumnLayout, encoding: TextEncoding = .utf8) {
        self.encoding = encoding
        type = column.type
        nullable = column.nullable
        accepted = column.accepted.map { $0.map { Array($0.utf8) } }
        length = column.length
        digits = column.digits
        acceptedList = column.accepted?.joined(separator: ", ") ?? ""
    }

    /// The value of a field, trimmed of surrounding blanks, or why it cannot be read.
    func parse(_ raw: UnsafeBufferPointer<UInt8>) -> Result<FieldValue, FieldProblem> {
        var start = 0
        var end = raw.count
        while start < end && FieldParsing.isSpace(raw[start]) { start += 1 }
        while end > start && FieldParsing.isSpace(raw[end - 1]) { end -= 1 }
        let bytes = UnsafeBufferPointer(rebasing: raw[start..<end])
        if bytes.isEmpty {
            // An empty flag is false: feeds write `Y`/empty (DEAD_IND) as often as `Y`/`N`.
            if type == .flag { return .success(.integer(0)) }
            return nullable ? .success(.null) : .failure("empty, but a value is required")
        }
        if let accepted, !accepted.contains(where: { FieldParsing.equal(bytes, $0) }) {
            return .failure("not one of \(acceptedList): \(FieldParsing.quoted(bytes))")
        }
        switch type {
        case .text:
            if let length, bytes.count != length {
                return .failure("expected \(length) characters, found \(bytes.count): \(FieldParsing.quoted(bytes))")
            }
            if digits && !bytes.allSatisfy({ $0 &- 48 <= 9 }) {
                return .failure("expected digits only: \(FieldParsing.quoted(bytes))")
            }
            return .success(.text(TextCheck.decode(bytes, encoding: encoding)))
        case .integer:
            guard let value = FieldParsing.integer(bytes) else {
                return .failure("not a whole number: \(FieldParsing.quoted(bytes))")
            }
            return .success(.integer(value))
        case .decimal(let places):
            guard let scaled = FieldParsing.decimal(bytes, places: places) else {
                return .failure("not a number: \(FieldParsing.quoted(bytes))")
            }
            return .success(.real(Double(scaled) / FieldParsing.powersOfTen[places]))
        case .date(let format):
            guard let iso = FieldParsing.date(bytes, format: format) else {
                return .failure("not a date in the form \(format.pattern): \(FieldParsing.quoted(bytes))")
            }
            return .success(.text(iso))
        case .timestamp:
            guard let utc = FieldParsing.timestamp(bytes) else {
                let quoted = FieldParsing.quoted(bytes)
                return .failure(
                    "not an ISO 8601 timestamp with a UTC offset (YYYY-MM-DDTHH:MM:SS±HH:MM or Z): \(quoted)")
            }
            return .success(.text(utc))
        case .flag:
            guard let flag = FieldParsing.flag(bytes) else {
                return .failure("not a flag (Y/N, 1/0, true/false): \(FieldParsing.quoted(bytes))")
            }
            return .success(.integer(flag ? 1 : 0))
        }
    }
}

/// Reads typed values straight from UTF-8 bytes: no `String` is made for numbers, dates or flags.
enum FieldParsing {
    @inline(__always) static func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 }

    /// Exact powers of ten as doubles (all exactly representable up to 10^22).
    static let powersOfTen: [Double] = (0...18).map { n in (0..<n).reduce(1.0) { r, _ in r * 10 } }

    static func equal(_ bytes: UnsafeBufferPointer<UInt8>, _ other: [UInt8]) -> Bool {
        guard bytes.count == other.count else { return false }
        for i in 0..<other.count where bytes[i] != other[i] { return false }
        return true
    }

    /// Whether the bytes, blanks around them ignored, are `other` (ASCII letters in either case).
    @inline(__always) static func trimmedEqual(_ bytes: UnsafeBufferPointer<UInt8>, _ other: [UInt8]) -> Bool {
        var start = 0
        var end = bytes.count
        while start < end && isSpace(bytes[start]) { start += 1 }
        while end > start && isSpace(bytes[end - 1]) { end -= 1 }
        guard end - start == other.count else { return false }
        for i in 0..<other.count where bytes[start + i] | 0x20 != other[i] | 0x20 { return false }
        return true
    }

    /// The raw value in quotes for a reason, cut at 40 characters.
    static func quoted(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        let text = String(decoding: bytes, as: UTF8.self)
        return "\"" + (text.count > 40 ? String(text.prefix(40)) + "…" : text) + "\""
    }

    /// A whole number with an optional sign, up to 18 digits.
    static func integer(_ bytes: UnsafeBufferPointer<UInt8>) -> Int64? {
        var index = 0
        var negative = false
        if bytes[0] == UInt8(ascii: "-") || bytes[0] == UInt8(ascii: "+") {
            negative = bytes[0] == UInt8(ascii: "-")
            index = 1
        }
        guard index < bytes.count, bytes.count - index <= 18 else { return nil }
        var value: Int64 = 0
        while index < bytes.count {
            let d = bytes[index] &- 48
            guard d <= 9 else { return nil }
            value = value &* 10 &+ Int64(d)
            index += 1
        }
        return negative ? -value : value
    }

    /// The decimal as an exact integer count of 10^-places (`"1.25"`, 3 → 1250).
    ///
    /// Accepts an optional sign, digits, and an optional point with digits (`12`, `-0.5`, `.5`, `3.`); no
    /// exponent, no thousands separator. Digits past `places` are rounded half away from zero (`1.2345` → 1235),
    /// so trailing zeros and vendor over-precision never reject a row. At most 18 digits in all.
    static func decimal(_ bytes: UnsafeBufferPointer<UInt8>, places: Int) -> Int64? {
        var index = 0
        var negative = false
        if bytes[0] == UInt8(ascii: "-") || bytes[0] == UInt8(ascii: "+") {
            negative = bytes[0] == UInt8(ascii: "-")
            index = 1
        }
        var value: Int64 = 0
        var digits = 0
        var integerDigits = 0
        var fraction = -1
        var roundUp = false
        while index < bytes.count {
            let b = bytes[index]
            index += 1
            if b == UInt8(ascii: ".") {
                guard fraction < 0 else { return nil }
                fraction = 0
                continue
            }
            let d = b &- 48
            guard d <= 9 else { return nil }
            digits += 1
            if fraction < 0 {
                integerDigits += 1
                guard integerDigits <= 18 - places else { return nil }
                value = value * 10 + Int64(d)
            } else {
                if fraction < places {
                    value = value * 10 + Int64(d)
                } else if fraction == places {
                    roundUp = d >= 5
                }
                fraction += 1
            }
        }
        guard digits > 0 else { return nil }
        var filled = max(0, min(fraction, places))
        while filled < places {
            value *= 10
            filled += 1
        }
        if roundUp { value += 1 }
        return negative ? -value : value
    }

    /// `Y`/`N`, `1`/`0`, `true`/`false`, `yes`/`no`, `T`/`F`, any case.
    static func flag(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool? {
        func lower(_ i: Int) -> UInt8 { bytes[i] | 0x20 }
        switch bytes.count {
        case 1:
            switch lower(0) {
            case UInt8(ascii: "y"), UInt8(ascii: "1"), UInt8(ascii: "t"): return true
            case UInt8(ascii: "n"), UInt8(ascii: "0"), UInt8(ascii: "f"): return false
            default: return nil
            }
        case 2: return lower(0) == UInt8(ascii: "n") && lower(1) == UInt8(ascii: "o") ? false : nil
        case 3:
            return lower(0) == UInt8(ascii: "y") && lower(1) == UInt8(ascii: "e") && lower(2) == UInt8(ascii: "s")
                ? true : nil
        case 4:
            return lower(0) == UInt8(ascii: "t") && lower(1) == UInt8(ascii: "r") && lower(2) == UInt8(ascii: "u")
                && lower(3) == UInt8(ascii: "e") ? true : nil
        case 5:
            return lower(0) == UInt8(ascii: "f") && lower(1) == UInt8(ascii: "a") && lower(2) == UInt8(ascii: "l")
                && lower(3) == UInt8(ascii: "s") && lower(4) == UInt8(ascii: "e") ? false : nil
        default: return nil
        }
    }

    @inline(__always) static func twoDigits(_ bytes: UnsafeBufferPointer<UInt8>, _ at: Int) -> Int? {
        let a = bytes[at] &- 48
        let b = bytes[at + 1] &- 48
        guard a <= 9, b <= 9 else { return nil }
        return Int(a) * 10 + Int(b)
    }

    @inline(__always) static func fourDigits(_ bytes: UnsafeBufferPointer<UInt8>, _ at: Int) -> Int? {
        guard let high = twoDigits(bytes, at), let low = twoDigits(bytes, at + 2) else { return nil }
        return high * 100 + low
    }

    /// A calendar date between 1900 and 2100.
    static func isValidDate(_ y: Int, _ m: Int, _ d: Int) -> Bool {
        guard (1900...2100).contains(y), (1...12).contains(m), d >= 1 else { return false }
        if m == 2 { return d <= ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0 ? 29 : 28) }
        return d <= (m == 4 || m == 6 || m == 9 || m == 11 ? 30 : 31)
    }

    /// Writes `YYYY-MM-DD` into the 10 bytes at `out`.
    @inline(__always) static func writeISO(_ y: Int, _ m: Int, _ d: Int, _ out: UnsafeMutablePointer<UInt8>) {
        out[0] = UInt8(48 + y / 1000)
        out[1] = UInt8(48 + y / 100 % 10)
        out[2] = UInt8(48 + y / 10 % 10)
        out[3] = UInt8(48 + y % 10)
        out[4] = 45
        out[5] = UInt8(48 + m / 10)
        out[6] = UInt8(48 + m % 10)
        out[7] = 45
        out[8] = UInt8(48 + d / 10)
        out[9] = UInt8(48 + d % 10)
    }

    static func iso(_ y: Int, _ m: Int, _ d: Int) -> String {
        String(unsafeUninitializedCapacity: 10) { buffer in
            writeISO(y, m, d, buffer.baseAddress!)
            return 10
        }
    }

    /// The date in ISO form, or nil when it is not a real date written as `format`.
    static func date(_ bytes: UnsafeBufferPointer<UInt8>, format: DateFormat) -> String? {
        guard let (y, m, d) = dateParts(bytes, format: format) else { return nil }
        // An ISO date that is already valid is its own normal form: keep the bytes.
        if format == .iso { return String(decoding: bytes, as: UTF8.self) }
        return iso(y, m, d)
    }

    static func dateParts(_ bytes: UnsafeBufferPointer<UInt8>, format: DateFormat) -> (Int, Int, Int)? {
        let y: Int?
        let m: Int?
        let d: Int?
        switch format {
        case .iso:
            guard bytes.count == 10, bytes[4] == 45, bytes[7] == 45 else { return nil }
            (y, m, d) = (fourDigits(bytes, 0), twoDigits(bytes, 5), twoDigits(bytes, 8))
        case .compact:
            guard bytes.count == 8 else { return nil }
            (y, m, d) = (fourDigits(bytes, 0), twoDigits(bytes, 4), twoDigits(bytes, 6))
        case .monthDayYear:
            guard bytes.count == 10, bytes[2] == 47, bytes[5] == 47 else { return nil }
            (y, m, d) = (fourDigits(bytes, 6), twoDigits(bytes, 0), twoDigits(bytes, 3))
        }
        guard let y, let m, let d, isValidDate(y, m, d) else { return nil }
        return (y, m, d)
    }

    /// `YYYY-MM-DDTHH:MM:SS[.fff](Z|±HH:MM|±HHMM|±HH)` → UTC `YYYY-MM-DDTHH:MM:SSZ` (fractions dropped).
    static func timestamp(_ bytes: UnsafeBufferPointer<UInt8>) -> String? {
        guard bytes.count >= 20, bytes[4] == 45, bytes[7] == 45,
            bytes[10] == UInt8(ascii: "T") || bytes[10] == UInt8(ascii: "t") || bytes[10] == 32,
            bytes[13] == 58, bytes[16] == 58,
            let y = fourDigits(bytes, 0), let mo = twoDigits(bytes, 5), let d = twoDigits(bytes, 8),
            let h = twoDigits(bytes, 11), let mi = twoDigits(bytes, 14), let s = twoDigits(bytes, 17),
            isValidDate(y, mo, d), h < 24, mi < 60, s < 61
        else { return nil }
        var index = 19
        if bytes[index] == UInt8(ascii: ".") {
            index += 1
            let digitsStart = index
            while index < bytes.count, bytes[index] &- 48 <= 9 { index += 1 }
            guard index > digitsStart else { return nil }
        }
        guard index < bytes.count else { return nil }
        var offsetMinutes = 0
        let sign = bytes[index]
        if sign == UInt8(ascii: "Z") || sign == UInt8(ascii: "z") {
            guard index == bytes.count - 1 else { return nil }
        } else if sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") {
            let rest = bytes.count - index - 1
            guard let oh = twoDigits(bytes, index + 1), oh < 24 else { return nil }
            var om = 0
            switch rest {
            case 2: break
            case 4:
                guard let m = twoDigits(bytes, index + 3) else { return nil }
                om = m
            case 5:
                guard bytes[index + 3] == 58, let m = twoDigits(bytes, index + 4) else { return nil }
                om = m
            default: return nil
            }
            guard om < 60 else { return nil }
            offsetMinutes = (oh * 60 + om) * (sign == UInt8(ascii: "+") ? 1 : -1)
        } else {
            return nil
        }
        // To UTC through minutes since the epoch (civil-from-days, proleptic Gregorian).
        let total = daysFromCivil(y, mo, d) * 1440 + h * 60 + mi - offsetMinutes
        let day = total >= 0 ? total / 1440 : (total - 1439) / 1440
        let minute = total - day * 1440
        let (yy, mm, dd) = civilFromDays(day)
        return String(unsafeUninitializedCapacity: 20) { buffer in
            let out = buffer.baseAddress!
            writeISO(yy, mm, dd, out)
            let hh = minute / 60
            let mn = minute % 60
            out[10] = UInt8(ascii: "T")
            out[11] = UInt8(48 + hh / 10)
            out[12] = UInt8(48 + hh % 10)
            out[13] = 58
            out[14] = UInt8(48 + mn / 10)
            out[15] = UInt8(48 + mn % 10)
            out[16] = 58
            out[17] = UInt8(48 + s / 10)
            out[18] = UInt8(48 + s % 10)
            out[19] = UInt8(ascii: "Z")
            return 20
        }
    }

    static func daysFromCivil(_ y0: Int, _ m: Int, _ d: Int) -> Int {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }

    static func civilFromDays(_ z0: Int) -> (Int, Int, Int) {
        let z = z0 + 719468
        let era = (z >= 0 ? z : z - 146096) / 146097
        let doe = z - era * 146097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (m <= 2 ? y + 1 : y, m, d)
    }

    static let weekdayNames = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]

    /// Day of week of an ISO date, 0 = Sunday … 5 = Friday.
    static func weekday(ofISO text: String) -> Int? {
        var text = text
        guard let (y, m, d) = text.withUTF8({ dateParts($0, format: .iso) }) else { return nil }
        return ((daysFromCivil(y, m, d) % 7) + 11) % 7  // 1970-01-01 was a Thursday (4)
    }
}

extension DateFormat {
    /// The form as people write it, for reasons.
    var pattern: String {
        switch self {
        case .iso: return "YYYY-MM-DD"
        case .monthDayYear: return "MM/DD/YYYY"
        case .compact: return "YYYYMMDD"
        }
    }
}
