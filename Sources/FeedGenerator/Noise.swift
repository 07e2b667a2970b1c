import Foundation

/// How noisy the generated person records are.
public enum Noise: String, Sendable, CaseIterable, Codable {
    /// The noise `sample-data/` was generated with.
    case standard
    /// Closer to real registries and CRMs: typos of the four kinds (insertion, deletion, keyboard substitution,
    /// transposition), OCR confusions, phonetic respellings, missing fields, ZIP digit errors, swapped names,
    /// nicknames, initials and maiden names, in AMA and CRM records; CRM accounts carry fewer NPIs.
    case hard
}

/// The hard noise of one person's record in one source: the same on every re-delivery (a CRM account is not
/// respelled every week), drawn from its own generator so that the standard streams are untouched.
struct PersonNoise {
    var first: String
    var last: String
    var street: String
    var city: String
    var zip: String

    static let keyboard: [Character: String] = [
        "Q": "WA", "W": "QES", "E": "WRD", "R": "ETF", "T": "RYG", "Y": "TUH", "U": "YIJ", "I": "UOK", "O": "IPL",
        "P": "OL", "A": "QSZ", "S": "AWDZ", "D": "SEFX", "F": "DRGC", "G": "FTHV", "H": "GYJB", "J": "HUKN",
        "K": "JIML", "L": "KOP", "Z": "ASX", "X": "ZSDC", "C": "XDFV", "V": "CFGB", "B": "VGHN", "N": "BHJM",
        "M": "NJK",
    ]
    static let ocr: [(String, String)] = [
        ("M", "RN"), ("RN", "M"), ("D", "CL"), ("I", "L"), ("L", "I"), ("O", "Q"), ("E", "F"),
    ]
    static let phonetic: [(String, String)] = [
        ("PH", "F"), ("CK", "K"), ("SCH", "SH"), ("TH", "T"), ("Y", "I"), ("EE", "EA"), ("Z", "S"), ("LL", "L"),
        ("C", "K"), ("EI", "IE"), ("OU", "OW"), ("KS", "X"),
    ]

    /// One edit of the four kinds a keyboard makes.
    static func typo(_ s: String, _ r: inout SeededRandom) -> String {
        var chars = Array(s)
        guard chars.count > 2 else { return s }
        let i = 1 + r.int(0..<(chars.count - 1))
        switch r.int(0..<4) {
        case 0: chars.insert(chars[i], at: i)  // a doubled key
        case 1: chars.remove(at: i)
        case 2:
            if let near = keyboard[chars[i]].map(Array.init) { chars[i] = near[r.int(0..<near.count)] }
        default: if i + 1 < chars.count { chars.swapAt(i, i + 1) } else { chars.swapAt(i - 1, i) }
        }
        return String(chars)
    }

    static func replacingOne(_ s: String, _ table: [(String, String)], _ r: inout SeededRandom) -> String {
        let applicable = table.filter { s.dropFirst().contains($0.0) }
        guard !applicable.isEmpty else { return typo(s, &r) }
        let (from, to) = applicable[r.int(0..<applicable.count)]
        guard let range = s.range(of: from, range: s.index(after: s.startIndex)..<s.endIndex) else { return s }
        return s.replacingCharacters(in: range, with: to)
    }

    static func zipError(_ zip: String, _ r: inout SeededRandom) -> String {
        var digits = Array(zip)
        guard digits.count == 5 else { return zip }
        let i = r.int(0..<4)
        if r.chance(0.5) {
            digits.swapAt(i, i + 1)
        } else {
            digits[i + 1] = Character(String((Int(String(digits[i + 1]))! + 1 + r.int(0..<8)) % 10))
        }
        return String(digits)
    }

    init(
        _ p: TruePhysician, source: String, seed: UInt64, first: String, last: String, street: String, city: String,
        zip: String, nickname: String?, surnames: [String]
    ) {
        var r = SeededRandom(seed: seed).fork("\(source) noise \(p.index)")
        (self.first, self.last, self.street, self.city, self.zip) = (first, last, street, city, zip)
        if r.chance(0.10) { self.last = Self.typo(self.last, &r) }
        if r.chance(0.04) { self.last = Self.replacingOne(self.last, Self.ocr, &r) }
        if r.chance(0.05) { self.last = Self.replacingOne(self.last, Self.phonetic, &r) }
        if p.gender == "F" && r.chance(0.08) {
            // The maiden name in one source, the married name (or both) in the other.
            let other = surnames[r.int(0..<surnames.count)]
            self.last = r.chance(0.5) ? other : "\(other)-\(self.last)"
        }
        if r.chance(0.12), let nickname { self.first = nickname }
        if r.chance(0.08) { self.first = Self.typo(self.first, &r) }
        if r.chance(0.03) { self.first = Self.replacingOne(self.first, Self.phonetic, &r) }
        if r.chance(0.04) { self.first = String(self.first.prefix(1)) }
        if r.chance(0.03) { swap(&self.first, &self.last) }
        if r.chance(0.03) { self.first = "" }
        if r.chance(0.01) { (self.first, self.last) = ("", "") }
        if r.chance(0.06) { self.zip = Self.zipError(self.zip, &r) }
        if r.chance(0.04) { self.zip = "" }
        if r.chance(0.05) { self.city = Self.typo(self.city, &r) }
        if r.chance(0.04) { self.city = "" }
        if r.chance(0.06) { self.street = Self.typo(self.street, &r) }
        if r.chance(0.05) { self.street = "" }
    }
}
