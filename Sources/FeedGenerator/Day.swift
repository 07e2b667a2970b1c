import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Days since 2024-01-01 (a Monday) and their calendar dates.
enum Day {
    static func civil(_ day: Int) -> (Int, Int, Int) {
        let z = day + 19723 + 719468  // 2024-01-01 is day 19723 since 1970-01-01
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

    static func iso(_ day: Int) -> String {
        let (y, m, d) = civil(day)
        return "\(y)-\(pad(m))-\(pad(d))"
    }

    static func compact(_ day: Int) -> String {
        let (y, m, d) = civil(day)
        return "\(y)\(pad(m))\(pad(d))"
    }

    static func monthDayYear(_ day: Int) -> String {
        let (y, m, d) = civil(day)
        return "\(pad(m))/\(pad(d))/\(y)"
    }

    static func pad(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }

    /// The day of 2024-01-01 + `month` months, on the given day of the month.
    static func ofMonth(_ month: Int, day: Int = 1) -> Int {
        (month >= 0 && month < monthStarts.count ? monthStarts[month] : computeMonthStart(month)) + day - 1
    }

    /// The first day of each month 0 … 48, computed once: the generator asks millions of times.
    static let monthStarts: [Int] = (0...48).map(computeMonthStart)

    static func computeMonthStart(_ month: Int) -> Int {
        var total = 0
        var y = 2024
        var m = 1
        for _ in 0..<month {
            total += daysIn(y, m)
            m += 1
            if m == 13 {
                m = 1
                y += 1
            }
        }
        return total
    }

    static func daysIn(_ y: Int, _ m: Int) -> Int {
        let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
        return [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1]
    }
}
