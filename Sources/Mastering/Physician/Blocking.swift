/// One way of putting records that may be one person into the same block. A record files under a few keys;
/// each key carries refinements, used instead of it when its block holds more than the cap.
struct BlockingRule: Sendable {
    var name: String
    var keys: @Sendable (PersonRecord) -> [(key: String, refinements: [String])]
    /// This rule's own cap, lower than the index's, or nil.
    var cap: Int?

    init(
        name: String, cap: Int? = nil,
        keys: @escaping @Sendable (PersonRecord) -> [(key: String, refinements: [String])]
    ) {
        self.name = name
        self.cap = cap
        self.keys = keys
    }

    /// The same ZIP. Refined by the surname's or the first name's initial.
    static let zip = BlockingRule(name: "zip5") { r in
        r.zip5.isEmpty ? [] : [("Z|\(r.zip5)", initials(r))]
    }

    /// The same surname initial and first-name initial (either order, so swapped names meet; a nickname's
    /// formal name counts too). Refined by state.
    static let initials = BlockingRule(name: "surname_and_first_initials") { r in
        guard let l = r.last.first, !r.first.isEmpty else { return [] }
        var firsts = [r.first.first!]
        if let formal = r.firstCanonical.first, formal != firsts[0] { firsts.append(formal) }
        return firsts.map { f in ("I|\(min(f, l))\(max(f, l))", r.state.isEmpty ? [] : [r.state]) }
    }

    /// The first name's Soundex code and the state, for a surname whose first letter is wrong as well as the
    /// ZIP and the street. Capped lower than the others (its blocks are large where first names are few);
    /// refined by city.
    static let firstName = BlockingRule(name: "first_name_soundex_and_state", cap: 100) { r in
        guard !r.state.isEmpty, !r.firstCanonical.isEmpty, r.firstCanonical.count > 1 else { return [] }
        return [("F|\(NameNormalizer.soundex(r.firstCanonical))|\(r.state)", r.city.isEmpty ? [] : [r.city])]
    }

    /// The surname's Soundex code and the state. Refined by the first name's initial.
    static let phonetic = BlockingRule(name: "surname_soundex_and_state") { r in
        guard !r.state.isEmpty, !r.last.isEmpty else { return [] }
        let initials = Set([r.first.first, r.firstCanonical.first].compactMap { $0 }).sorted().map { String($0) }
        return [("P|\(NameNormalizer.soundex(r.last))|\(r.state)", initials)]
    }

    /// The same house number in the same city. Refined by the surname's or the first name's initial.
    static let streetNumber = BlockingRule(name: "street_number_and_city") { r in
        guard let number = r.streetNumber, !r.city.isEmpty else { return [] }
        return [("N|\(number)|\(r.city)", initials(r))]
    }

    static let all: [BlockingRule] = [zip, initials, phonetic, streetNumber, firstName]

    private static func initials(_ r: PersonRecord) -> [String] {
        var parts: [String] = []
        if let l = r.last.first { parts.append("L\(l)") }
        if let f = r.firstCanonical.first { parts.append("F\(f)") }
        return parts
    }
}

/// Blocks over candidate records: the union of every rule's blocks, each block capped. A pair is compared when
/// any rule puts it in one block of at most `cap` candidates, so a typo in the surname's first letter, a wrong
/// ZIP digit or swapped names leave the other rules to reach it.
struct BlockIndex: Sendable {
    let rules: [BlockingRule]
    let cap: Int
    private var blocks: [UInt64: [Int32]] = [:]
    /// Keys over the cap: their members are filed under the refined keys instead.
    private var oversized: Set<UInt64> = []
    /// Per rule: keys, keys over the cap, refined keys still over the cap (never compared).
    private(set) var statistics: [(rule: String, keys: Int, refined: Int, dropped: Int)] = []

    init(_ records: [PersonRecord], candidates: [Int], rules: [BlockingRule] = BlockingRule.all, cap: Int = 500) {
        self.rules = rules
        self.cap = cap
        for (r, rule) in rules.enumerated() {
            var ruleBlocks: [UInt64: [Int32]] = [:]
            for i in candidates {
                for (key, _) in rule.keys(records[i]) { ruleBlocks[Self.hash(r, key), default: []].append(Int32(i)) }
            }
            var refined = 0
            var dropped = 0
            let keys = ruleBlocks.count
            let cap = min(cap, rule.cap ?? cap)
            // Sorted, so that the refined blocks' members come in record order whatever the dictionary's order.
            for hash in ruleBlocks.keys.sorted() where ruleBlocks[hash]!.count > cap {
                refined += 1
                oversized.insert(hash)
                for member in ruleBlocks[hash]! {
                    for (key, parts) in rule.keys(records[Int(member)]) where Self.hash(r, key) == hash {
                        for part in parts { ruleBlocks[Self.refinedKey(hash, part), default: []].append(member) }
                    }
                }
                ruleBlocks[hash] = nil
            }
            for (hash, members) in ruleBlocks {
                if members.count > cap {
                    oversized.insert(hash)
                    dropped += 1
                } else {
                    // A record filed twice under one key (two of its keys hash alike) is compared once.
                    blocks[hash, default: []].append(contentsOf: members)
                }
            }
            statistics.append((rule.name, keys, refined, dropped))
        }
        for hash in blocks.keys { blocks[hash] = Array(Set(blocks[hash]!)).sorted() }
    }

    static func hash(_ rule: Int, _ key: String) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325 ^ UInt64(rule &+ 1)
        for byte in key.utf8 { h = (h ^ UInt64(byte)) &* 0x100_0000_01B3 }
        return h
    }

    static func refinedKey(_ hash: UInt64, _ part: String) -> UInt64 {
        var h = hash ^ 0x5555_5555_5555_5555
        for byte in part.utf8 { h = (h ^ UInt64(byte)) &* 0x100_0000_01B3 }
        return h &+ 1
    }

    /// Calls `body` with each candidate that shares a usable block with `record` (a candidate may come more
    /// than once, through several rules), and the rule that reached it.
    func forEachCandidate(of record: PersonRecord, _ body: (Int, Int) -> Void) {
        for (r, rule) in rules.enumerated() {
            for (key, parts) in rule.keys(record) {
                let hash = Self.hash(r, key)
                if oversized.contains(hash) {
                    for part in parts {
                        let refined = Self.refinedKey(hash, part)
                        guard !oversized.contains(refined), let members = blocks[refined] else { continue }
                        for m in members { body(Int(m), r) }
                    }
                } else if let members = blocks[hash] {
                    for m in members { body(Int(m), r) }
                }
            }
        }
    }

    /// The rules that put two records in one usable block (empty when blocking never compares them).
    func rulesReaching(_ record: PersonRecord, candidate: Int) -> [String] {
        var reached = Set<Int>()
        forEachCandidate(of: record) { c, r in if c == candidate { reached.insert(r) } }
        return reached.sorted().map { rules[$0].name }
    }
}
