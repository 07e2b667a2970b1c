import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A seeded generator (SplitMix64): the same seed always gives the same sequence, on every machine.
struct SeededRandom {
    private var state: UInt64
    init(seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }
    mutating func int(_ range: Range<Int>) -> Int { range.lowerBound + Int(next() % UInt64(range.count)) }
    mutating func chance(_ p: Double) -> Bool { unit() < p }
    mutating func pick<T>(_ items: [T]) -> T { items[int(0..<items.count)] }

    /// A Poisson draw (Knuth for small means, normal approximation above 30).
    mutating func poisson(_ mean: Double) -> Int {
        guard mean > 0 else { return 0 }
        if mean > 30 { return max(0, Int((mean + gaussian() * mean.squareRoot()).rounded())) }
        let limit = exp(-mean)
        var k = 0
        var p = unit()
        while p > limit {
            k += 1
            p *= unit()
        }
        return k
    }

    mutating func gaussian() -> Double {
        let u1 = max(unit(), 1e-12)
        let u2 = unit()
        return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }

    /// A generator for one purpose, derived from this seed and a label, so adding draws elsewhere does not
    /// shift this stream.
    func fork(_ label: String) -> SeededRandom {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in label.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
        return SeededRandom(seed: state ^ hash)
    }
}

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

/// Fixed-point decimal text, independent of locale: `milli` thousandths with `places` places shown.
func decimal(_ value: Double, places: Int) -> String {
    var scale = 1.0
    for _ in 0..<places { scale *= 10 }
    let scaled = Int64((value * scale).rounded())
    let negative = scaled < 0
    let magnitude = negative ? -scaled : scaled
    let whole = magnitude / Int64(scale)
    var text = "\(negative ? "-" : "")\(whole)"
    if places > 0 {
        let fraction = String(magnitude % Int64(scale))
        text += "." + String(repeating: "0", count: places - fraction.count) + fraction
    }
    return text
}

/// A buffered file writer: appends text, flushes in 1 MiB blocks.
final class FileWriter {
    private let handle: FileHandle
    private var buffer = Data()
    private(set) var bytes = 0
    private(set) var lines = 0

    init(_ url: URL) throws {
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        // A plain open(2): FileManager.createFile writes atomically (temporary file, rename), which costs more than
        // the small files of a daily feed are worth.
        let fd = open(url.path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: url.path]) }
        handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        buffer.reserveCapacity(1 << 16)  // grows to the 1 MiB flush size only for big files
    }

    func line(_ text: String) {
        buffer.append(contentsOf: text.utf8)
        buffer.append(10)
        lines += 1
        if buffer.count >= 1 << 20 { flush() }
    }

    func raw(_ bytes: [UInt8]) { buffer.append(contentsOf: bytes) }

    func flush() {
        bytes += buffer.count
        handle.write(buffer)
        buffer.removeAll(keepingCapacity: true)
    }

    func close() {
        flush()
        try? handle.close()
    }
}

/// CSV quoting where needed.
func csv(_ fields: [String]) -> String {
    fields.map { f in
        f.contains(",") || f.contains("\"") || f.contains("\n")
            ? "\"" + f.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : f
    }.joined(separator: ",")
}

/// Always quoted, as NPPES writes.
func quotedCSV(_ fields: [String]) -> String {
    fields.map { "\"" + $0.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }.joined(separator: ",")
}

/// A JSON string literal.
func json(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}

/// A short deterministic hex hash.
func hexHash(_ text: String, length: Int = 16) -> String {
    var a: UInt64 = 0xCBF2_9CE4_8422_2325
    var b: UInt64 = 0x8422_2325_CBF2_9CE4
    for byte in text.utf8 {
        a = (a ^ UInt64(byte)) &* 0x100_0000_01B3
        b = (b ^ UInt64(byte)) &* 0x100_0000_01B3 &+ 7
    }
    let hex = String(a, radix: 16) + String(b, radix: 16)
    return String(String(repeating: "0", count: max(0, length - hex.count)) + hex).prefix(length).description
}

/// The NPI check digit (Luhn over 80840 + the first nine digits).
func npiCheckDigit(_ nine: String) -> Int {
    let digits = [8, 0, 8, 4, 0] + nine.map { Int(String($0))! }
    var sum = 0
    for (offset, digit) in digits.reversed().enumerated() {
        let d = offset % 2 == 0 ? digit * 2 : digit
        sum += d > 9 ? d - 9 : d
    }
    return (10 - sum % 10) % 10
}
