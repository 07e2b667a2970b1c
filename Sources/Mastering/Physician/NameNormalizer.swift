import Foundation

/// Normalises person names and addresses for matching: upper case, letters only, credentials and suffixes
/// removed, nicknames mapped to their formal names.
enum NameNormalizer {
    static let credentials: Set<String> = [
        "MD", "DO", "NP", "PA", "PAC", "RN", "APRN", "FNP", "PHD", "MBBS", "DDS", "DMD", "PHARMD", "FACP", "FACC",
        "FAAFP", "MPH", "DNP",
        "CNP", "ANP",
    ]
    static let suffixes: Set<String> = ["JR", "SR", "II", "III", "IV", "V"]

    static let nicknames: [String: String] = {
        let groups: [String: [String]] = [
            "WILLIAM": ["BILL", "BILLY", "WILL", "WILLIE", "LIAM"],
            "ROBERT": ["BOB", "BOBBY", "ROB", "ROBBIE", "BERT"],
            "RICHARD": ["RICK", "RICKY", "DICK", "RICH"], "JAMES": ["JIM", "JIMMY", "JAMIE"],
            "JOHN": ["JACK", "JOHNNY"],
            "MICHAEL": ["MIKE", "MICKEY"], "ELIZABETH": ["LIZ", "BETH", "BETSY", "LIZZIE", "ELIZA", "BETTY"],
            "KATHERINE": ["KATE", "KATHY", "KATIE", "KAT", "CATHERINE", "CATHY", "KATHRYN"],
            "MARGARET": ["MAGGIE", "PEGGY", "MEG"],
            "THOMAS": ["TOM", "TOMMY"], "JOSEPH": ["JOE", "JOEY"], "CHARLES": ["CHUCK", "CHARLIE"],
            "DANIEL": ["DAN", "DANNY"],
            "DAVID": ["DAVE"], "STEVEN": ["STEVE", "STEPHEN"], "EDWARD": ["ED", "TED", "EDDIE", "TEDDY"],
            "ANTHONY": ["TONY"],
            "CHRISTOPHER": ["CHRIS"], "MATTHEW": ["MATT"], "PATRICIA": ["PAT", "PATTY", "TRISH"],
            "JENNIFER": ["JEN", "JENNY"],
            "SUSAN": ["SUE", "SUSIE"], "DEBORAH": ["DEB", "DEBBIE", "DEBRA"], "BARBARA": ["BARB"],
            "ANDREW": ["ANDY", "DREW"],
            "NICHOLAS": ["NICK"], "JONATHAN": ["JON"], "BENJAMIN": ["BEN"], "SAMUEL": ["SAM"], "ALEXANDER": ["ALEX"],
            "KIMBERLY": ["KIM"], "REBECCA": ["BECKY"], "VICTORIA": ["VICKY", "TORI"], "ALBERT": ["AL"],
            "GREGORY": ["GREG"],
            "TIMOTHY": ["TIM"], "KENNETH": ["KEN", "KENNY"], "RONALD": ["RON"], "DONALD": ["DON"], "PETER": ["PETE"],
            "PHILIP": ["PHIL"], "RAYMOND": ["RAY"], "GERALD": ["JERRY"], "LAWRENCE": ["LARRY"], "FRANCIS": ["FRANK"],
            "JESSICA": ["JESS", "JESSIE"], "AMANDA": ["MANDY"], "CYNTHIA": ["CINDY"], "SAMANTHA": ["SAM"],
            "ABIGAIL": ["ABBY"],
            "NATHANIEL": ["NATE", "NATHAN"], "ZACHARY": ["ZACH"], "JOSHUA": ["JOSH"], "EUGENE": ["GENE"],
            "DOUGLAS": ["DOUG"],
        ]
        var map: [String: String] = [:]
        // Sorted, so a nickname shared by two names (SAM) maps the same way in every process.
        for formal in groups.keys.sorted() { for nick in groups[formal]! where map[nick] == nil { map[nick] = formal } }
        return map
    }()

    /// Letters only, upper case; words split on anything else. Dots and apostrophes join (`M.D.` → `MD`,
    /// `O'Brien` → `OBRIEN`).
    static func words(_ text: String?) -> [String] {
        guard let text, !text.isEmpty else { return [] }
        return text.utf8.allSatisfy({ $0 < 128 }) ? asciiWords(text) : unicodeWords(text)
    }

    /// `words` of any text, by Unicode scalar properties.
    static func unicodeWords(_ text: String) -> [String] {
        var result: [String] = []
        var current = String.UnicodeScalarView()
        for scalar in text.uppercased().unicodeScalars {
            if scalar.properties.isAlphabetic {
                current.append(scalar)
            } else if scalar == "." || scalar == "'" {
                continue
            } else if !current.isEmpty {
                result.append(String(current))
                current = String.UnicodeScalarView()
            }
        }
        if !current.isEmpty { result.append(String(current)) }
        return result
    }

    /// `words` of ASCII text, on bytes: what `uppercased()` and `isAlphabetic` give for ASCII, without the
    /// Unicode tables (physician-master normalises every name and address of every source on every build).
    static func asciiWords(_ text: String) -> [String] {
        var result: [String] = []
        var current: [UInt8] = []
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): current.append(byte)
            case UInt8(ascii: "a")...UInt8(ascii: "z"): current.append(byte - 32)
            case UInt8(ascii: "."), UInt8(ascii: "'"): continue
            default:
                if !current.isEmpty {
                    result.append(String(decoding: current, as: UTF8.self))
                    current.removeAll(keepingCapacity: true)
                }
            }
        }
        if !current.isEmpty { result.append(String(decoding: current, as: UTF8.self)) }
        return result
    }

    /// A name part with credentials and suffixes removed (they creep into name fields).
    static func clean(_ text: String?) -> String {
        words(text).filter { !credentials.contains($0) && !suffixes.contains($0) }.joined(separator: " ")
    }

    /// The formal form of a first name (`BILL` → `WILLIAM`).
    static func canonicalFirst(_ first: String) -> String {
        let head = first.split(separator: " ").first.map(String.init) ?? first
        return nicknames[head] ?? head
    }

    static func zip5(_ zip: String?) -> String {
        guard let zip else { return "" }
        if zip.utf8.allSatisfy({ $0 < 128 }) {
            let digits = zip.utf8.filter { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }.prefix(5)
            return digits.count == 5 ? String(decoding: digits, as: UTF8.self) : ""
        }
        let digits = zip.filter(\.isNumber)
        return digits.count >= 5 ? String(digits.prefix(5)) : ""
    }

    /// American Soundex.
    /// Soundex digit of each ASCII byte (0: no code).
    private static let soundexCodes: [UInt8] = {
        var table = [UInt8](repeating: 0, count: 128)
        for (letters, digit) in [("BFPV", "1"), ("CGJKQSXZ", "2"), ("DT", "3"), ("L", "4"), ("MN", "5"), ("R", "6")] {
            for letter in letters.utf8 { table[Int(letter)] = digit.utf8.first! }
        }
        return table
    }()

    static func soundex(_ word: String) -> String {
        // ASCII words (all of them, after cleaning) go through bytes and a table: the matcher calls this for
        // every record, and a Character dictionary built per call was a tenth of physician-master's time.
        var utf8 = word.utf8.makeIterator()
        if word.utf8.allSatisfy({ $0 < 128 }), let first = utf8.next() {
            var result: [UInt8] = [first]
            var last = soundexCodes[Int(first)]
            while let byte = utf8.next(), result.count < 4 {
                let code = soundexCodes[Int(byte)]
                if code != 0, code != last { result.append(code) }
                if byte != UInt8(ascii: "H") && byte != UInt8(ascii: "W") { last = code }
            }
            while result.count < 4 { result.append(UInt8(ascii: "0")) }
            return String(decoding: result, as: UTF8.self)
        }
        return soundexCharacters(word)
    }

    static func soundexCharacters(_ word: String) -> String {
        let codes: [Character: Character] = [
            "B": "1", "F": "1", "P": "1", "V": "1", "C": "2", "G": "2", "J": "2", "K": "2", "Q": "2", "S": "2",
            "X": "2",
            "Z": "2", "D": "3", "T": "3", "L": "4", "M": "5", "N": "5", "R": "6",
        ]
        guard let first = word.first else { return "" }
        var result = String(first)
        var last = codes[first]
        for character in word.dropFirst() {
            let code = codes[character]
            if let code, code != last { result.append(code) }
            if character != "H" && character != "W" { last = code }
            if result.count == 4 { break }
        }
        return result.padding(toLength: 4, withPad: "0", startingAt: 0)
    }

    /// Jaro-Winkler similarity, 0 … 1.
    static func jaroWinkler(_ a: String, _ b: String) -> Double { jaroWinkler(Array(a.utf8), Array(b.utf8)) }

    /// Jaro-Winkler over bytes, without allocating: the matcher calls it millions of times.
    static func jaroWinkler(_ s1: [UInt8], _ s2: [UInt8]) -> Double {
        if s1 == s2 { return s1.isEmpty ? 0 : 1 }
        guard !s1.isEmpty, !s2.isEmpty, s1.count <= 64, s2.count <= 64 else {
            return s1.isEmpty || s2.isEmpty ? 0 : (s1 == s2 ? 1 : 0)
        }
        let window = max(0, max(s1.count, s2.count) / 2 - 1)
        var matched1: UInt64 = 0
        var matched2: UInt64 = 0
        var matches = 0
        for i in 0..<s1.count {
            let lo = max(0, i - window)
            let hi = min(s2.count - 1, i + window)
            if lo > hi { continue }
            for j in lo...hi where matched2 & (1 << UInt64(j)) == 0 && s1[i] == s2[j] {
                matched1 |= 1 << UInt64(i)
                matched2 |= 1 << UInt64(j)
                matches += 1
                break
            }
        }
        guard matches > 0 else { return 0 }
        var transpositions = 0
        var k = 0
        for i in 0..<s1.count where matched1 & (1 << UInt64(i)) != 0 {
            while matched2 & (1 << UInt64(k)) == 0 { k += 1 }
            if s1[i] != s2[k] { transpositions += 1 }
            k += 1
        }
        let m = Double(matches)
        let jaro = (m / Double(s1.count) + m / Double(s2.count) + (m - Double(transpositions / 2)) / m) / 3
        var prefix = 0
        while prefix < min(4, s1.count, s2.count) && s1[prefix] == s2[prefix] { prefix += 1 }
        return jaro + Double(prefix) * 0.1 * (1 - jaro)
    }
}
