import Foundation

/// Why a field could not be read.
struct FieldProblem: Error, ExpressibleByStringLiteral, ExpressibleByStringInterpolation, CustomStringConvertible {
    var description: String
    init(stringLiteral value: String) { description = value }
    init(stringInterpolation: DefaultStringInterpolation) {
        description = String(stringInterpolation: stringInterpolation)
    }
}

/// Reads one field's bytes into a typed value, or says why it cannot.
enum FieldParsing {
    @inline(__always) static func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 }

    /// The value of a field, trimmed of surrounding blanks.
    static func value(_ raw: UnsafeBufferPointer<UInt8>, as column: ColumnLayout) -> Result<FieldValue, FieldProblem> {
        var start = 0
        var end = raw.count
        while start < end && isSpace(raw[start]) { start += 1 }
        while end > start && isSpace(raw[end - 1]) { end -= 1 }
        let bytes = UnsafeBufferPointer(rebasing: raw[start..<end])
        if bytes.isEmpty {
            if column.type == .flag { return .success(.integer(0)) }
            return column.nullable ? .success(.null) : .failure("empty, but required")
        }
        switch column.type {
        case .text:
            if let length = column.length, bytes.count != length {
                return .failure("expected \(length) characters, found \(bytes.count)")
            }
            if column.digits, !bytes.allSatisfy({ $0 >= 48 && $0 <= 57 }) { return .failure("expected digits only") }
            let text = String(decoding: bytes, as: UTF8.self)
            if let accepted = column.accepted, !accepted.contains(text) {
                return .failure("not one of \(accepted.joined(separator: ", "))")
            }
            return .success(.text(text))
        case .integer:
            guard let value = integer(bytes) else { return .failure("not a whole number") }
            return .success(.integer(value))
        case .decimal(let places):
            guard let scaled = decimal(bytes, places: places) else { return .failure("not a number") }
            return .success(.real(Double(scaled) / pow10(places)))
        case .date(let format):
            guard let iso = date(bytes, format: format) else {
                return .failure(
                    "not a date in the form \(format == .iso ? "YYYY-MM-DD" : format == .compact ? "YYYYMMDD" : "MM/DD/YYYY")"
                )
            }
            return .success(.text(iso))
        case .timestamp:
            guard let utc = timestamp(bytes) else { return .failure("not an ISO 8601 timestamp with offset") }
            return .success(.text(utc))
        case .flag:
            switch String(decoding: bytes, as: UTF8.self).lowercased() {
            case "y", "yes", "1", "true", "t": return .success(.integer(1))
            case "n", "no", "0", "false", "f": return .success(.integer(0))
            default: return .failure("not a flag (Y/N, 1/0, true/false)")
            }
        }
    }

    static func pow10(_ n: Int) -> Double {
        var result = 1.0
        for _ in 0..<n { result *= 10 }
        return result
    }

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
            value = value * 10 + Int64(d)
            index += 1
        }
        return negative ? -value : value
    }

    /// The decimal as an integer count of 10^-places, rounded half away from zero past `places`.
    static func decimal(_ bytes: UnsafeBufferPointer<UInt8>, places: Int) -> Int64? {
        var index = 0
        var negative = false
        if bytes[0] == UInt8(ascii: "-") || bytes[0] == UInt8(ascii: "+") {
            negative = bytes[0] == UInt8(ascii: "-")
            index = 1
        }
        var value: Int64 = 0
        var digits = 0
        var fraction = -1
        var roundUp = false
        while index < bytes.count {
            let b = bytes[index]
            if b == UInt8(ascii: ".") {
                guard fraction < 0 else { return nil }
                fraction = 0
            } else {
                let d = b &- 48
                guard d <= 9 else { return nil }
                digits += 1
                if fraction >= 0 {
                    if fraction < places {
                        value = value * 10 + Int64(d)
                    } else if fraction == places {
                        roundUp = d >= 5
                    }
                    fraction += 1
                } else {
                    guard value < 100_000_000_000_000 else { return nil }
                    value = value * 10 + Int64(d)
                }
            }
            index += 1
        }
        guard digits > 0 else { return nil }
        var filled = max(0, fraction)
        while filled < places {
            value *= 10
            filled += 1
        }
        if roundUp { value += 1 }
        return negative ? -value : value
    }

    static func twoDigits(_ bytes: UnsafeBufferPointer<UInt8>, _ at: Int) -> Int? {
        let a = bytes[at] &- 48
        let b = bytes[at + 1] &- 48
        guard a <= 9, b <= 9 else { return nil }
        return Int(a) * 10 + Int(b)
    }

    static func fourDigits(_ bytes: UnsafeBufferPointer<UInt8>, _ at: Int) -> Int? {
        guard let high = twoDigits(bytes, at), let low = twoDigits(bytes, at + 2) else { return nil }
        return high * 100 + low
    }

    static func isValidDate(_ y: Int, _ m: Int, _ d: Int) -> Bool {
        guard (1900...2100).contains(y), (1...12).contains(m), d >= 1 else { return false }
        let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
        return d <= [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1]
    }

    static func iso(_ y: Int, _ m: Int, _ d: Int) -> String {
        let digits: [UInt8] = [
            UInt8(48 + y / 1000), UInt8(48 + y / 100 % 10), UInt8(48 + y / 10 % 10), UInt8(48 + y % 10), 45,
            UInt8(48 + m / 10), UInt8(48 + m % 10), 45, UInt8(48 + d / 10), UInt8(48 + d % 10),
        ]
        return String(decoding: digits, as: UTF8.self)
    }

    static func date(_ bytes: UnsafeBufferPointer<UInt8>, format: DateFormat) -> String? {
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
        return iso(y, m, d)
    }

    /// `YYYY-MM-DDTHH:MM:SS[.fff](Z|±HH:MM)` → UTC `YYYY-MM-DDTHH:MM:SSZ`.
    static func timestamp(_ bytes: UnsafeBufferPointer<UInt8>) -> String? {
        guard bytes.count >= 20, bytes[4] == 45, bytes[7] == 45, bytes[10] == UInt8(ascii: "T") || bytes[10] == 32,
            bytes[13] == 58, bytes[16] == 58,
            let y = fourDigits(bytes, 0), let mo = twoDigits(bytes, 5), let d = twoDigits(bytes, 8),
            let h = twoDigits(bytes, 11), let mi = twoDigits(bytes, 14), let s = twoDigits(bytes, 17),
            isValidDate(y, mo, d), h < 24, mi < 60, s < 61
        else { return nil }
        var index = 19
        if bytes[index] == UInt8(ascii: ".") {
            index += 1
            while index < bytes.count, bytes[index] >= 48, bytes[index] <= 57 { index += 1 }
        }
        guard index < bytes.count else { return nil }
        var offsetMinutes = 0
        if bytes[index] == UInt8(ascii: "Z") {
            guard index == bytes.count - 1 else { return nil }
        } else if bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") {
            guard bytes.count - index == 6, bytes[index + 3] == 58, let oh = twoDigits(bytes, index + 1),
                let om = twoDigits(bytes, index + 4)
            else { return nil }
            offsetMinutes = (oh * 60 + om) * (bytes[index] == UInt8(ascii: "+") ? 1 : -1)
        } else {
            return nil
        }
        // To UTC through days since the epoch (civil-from-days, proleptic Gregorian).
        let days = daysFromCivil(y, mo, d)
        var total = days * 1440 + h * 60 + mi - offsetMinutes
        let dayUTC = Int((Double(total) / 1440).rounded(.down))
        total -= dayUTC * 1440
        let (yy, mm, dd) = civilFromDays(dayUTC)
        let hh = total / 60
        let mn = total % 60
        return iso(yy, mm, dd) + String(format: "T%02d:%02d:%02dZ", hh, mn, s)
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

    /// Day of week of an ISO date, 0 = Sunday … 5 = Friday.
    static func weekday(ofISO text: String) -> Int? {
        var text = text
        guard
            let parts = text.withUTF8({ bytes -> (Int, Int, Int)? in
                guard bytes.count == 10, let y = fourDigits(bytes, 0), let m = twoDigits(bytes, 5),
                    let d = twoDigits(bytes, 8)
                else { return nil }
                return (y, m, d)
            })
        else { return nil }
        let days = daysFromCivil(parts.0, parts.1, parts.2)
        return ((days % 7) + 11) % 7  // 1970-01-01 was a Thursday (4)
    }
}
