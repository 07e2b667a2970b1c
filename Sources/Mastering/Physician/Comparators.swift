/// String comparators for record linkage, over the bytes of normalised (upper-case ASCII) values, without
/// allocating: the matcher calls them for every blocked pair and every random pair the model trains on.
enum Comparators {
    /// True when `a` becomes `b` by at most one insertion, deletion, substitution or transposition of two
    /// adjacent characters (optimal string alignment distance ≤ 1): the four kinds of keyboard typo.
    static func withinOneEdit(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        let (n, m) = (a.count, b.count)
        if n == m {
            var first = -1
            var differences = 0
            for i in 0..<n where a[i] != b[i] {
                differences += 1
                if differences == 1 { first = i } else if differences > 2 { return false }
            }
            if differences <= 1 { return true }
            // Two differences: a transposition when they are adjacent and crossed.
            guard differences == 2, first + 1 < n else { return false }
            let second = first + 1
            return a[first] == b[second] && a[second] == b[first]
        }
        guard abs(n - m) == 1 else { return false }
        let (long, short) = n > m ? (a, b) : (b, a)
        var i = 0
        while i < short.count && long[i] == short[i] { i += 1 }
        // Skip the one extra character of the longer value; the rest must agree.
        var j = i
        while j < short.count {
            if long[j + 1] != short[j] { return false }
            j += 1
        }
        return true
    }

    /// True when one value is one of the other's words, or they share their first word and one has more:
    /// a double-barrelled or maiden-plus-married surname against one of its parts.
    static func sharesWord(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.contains(32) || b.contains(32) else { return false }
        let (long, short) = a.count >= b.count ? (a, b) : (b, a)
        guard !short.isEmpty else { return false }
        var start = 0
        while start < long.count {
            var end = start
            while end < long.count && long[end] != 32 { end += 1 }
            if end - start == short.count && long[start..<end].elementsEqual(short) { return true }
            start = end + 1
        }
        return false
    }

    /// The house number of an address line: its first run of digits, or nil.
    static func streetNumber(_ line: String?) -> String? {
        guard let line else { return nil }
        var digits: [UInt8] = []
        for byte in line.utf8 {
            if byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") {
                digits.append(byte)
            } else if !digits.isEmpty {
                break
            }
        }
        return digits.isEmpty ? nil : String(decoding: digits, as: UTF8.self)
    }

    /// USPS street suffixes and unit words in their standard abbreviations, so `100 Main Street` and
    /// `100 MAIN ST` compare equal.
    static let streetWords: [String: String] = [
        "STREET": "ST", "STR": "ST", "AVENUE": "AVE", "AV": "AVE", "ROAD": "RD", "BOULEVARD": "BLVD",
        "DRIVE": "DR", "LANE": "LN", "COURT": "CT", "PLACE": "PL", "CIRCLE": "CIR", "PARKWAY": "PKWY",
        "HIGHWAY": "HWY", "TERRACE": "TER", "SQUARE": "SQ", "SUITE": "STE", "APARTMENT": "APT", "NORTH": "N",
        "SOUTH": "S", "EAST": "E", "WEST": "W", "CRESCENT": "CRES", "CLOSE": "CL",
    ]

    /// An address line's words with street suffixes abbreviated (digits are dropped by `words`).
    static func streetWords(_ line: String?) -> String {
        NameNormalizer.words(line).map { streetWords[$0] ?? $0 }.joined(separator: " ")
    }
}
