import Foundation

/// The sources a physician record comes from, in `physician_xref.source` spelling.
enum PhysicianSource: String, Sendable, CaseIterable, Comparable {
    case nppes, ama, crm, xponent, claims
    static func < (a: Self, b: Self) -> Bool { allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)! }
    /// NPPES, AMA and CRM describe the person; Rx and claims only name a prescriber id with an NPI or ME number.
    var isIdentity: Bool { self == .nppes || self == .ama || self == .crm }
}

/// One source record about a person, normalised for matching.
struct PersonRecord: Sendable {
    var source: PhysicianSource
    var sourceID: String
    /// A valid NPI (check digit verified), when the record carries one.
    var npi: String?
    var me: String?
    var first = ""
    var last = ""
    var middle = ""
    var firstCanonical = ""
    var credential: String?
    var address = ""
    var city = ""
    var state = ""
    var zip5 = ""
    var specialty: String?
    var birthYear: Int?
    /// The delivery the record came from (recency for survivorship).
    var batch = ""
    var deactivated = false
    var deceased = false
    var retired = false
    /// Raw display values kept for golden records (nil when the source has no such column, or left it empty).
    struct Display: Sendable {
        var firstName: String?
        var lastName: String?
        var middleName: String?
        var credential: String?
        var addressLine1: String?
        var city: String?
    }
    var display = Display()

    var hasName: Bool { !last.isEmpty }
}

/// A record's matching fields as bytes, computed once.
struct MatchFeatures: Sendable {
    var first: [UInt8]
    var firstCanonical: [UInt8]
    var last: [UInt8]
    var city: [UInt8]
    var address: [UInt8]
    init(_ r: PersonRecord) {
        first = Array(r.first.utf8)
        firstCanonical = Array(r.firstCanonical.utf8)
        last = Array(r.last.utf8)
        city = Array(r.city.utf8)
        address = Array(r.address.utf8)
    }
}

/// How one record ended up.
struct MatchDecision: Sendable {
    /// The cluster the record belongs to, or nil when unmatched.
    var cluster: Int?
    var rule: String
    var score: Double
    /// For unmatched records, why.
    var reason: String?
}

/// A pair the matcher would not decide: between the sure-match and sure-non-match thresholds.
struct StewardCase: Sendable {
    var record: Int
    var candidate: Int
    var score: Double
}

/// Resolves person records into clusters: deterministic rules first (a valid NPI, the ME number), then
/// probabilistic matching on names, addresses and specialty within blocks, so the work stays near-linear.
struct PhysicianMatcher: Sendable {
    var matchThreshold = 0.86
    var reviewThreshold = 0.74
    /// The lead the best candidate needs over the second to be taken without a steward.
    var ambiguityMargin = 0.04
    /// Forced matches and non-matches: (source, id) pairs.
    var forcedMatches: [(PersonKey, PersonKey)] = []
    var forcedNonMatches: Set<PairKey> = []

    struct PersonKey: Hashable, Sendable {
        var source: PhysicianSource
        var id: String
    }

    struct PairKey: Hashable, Sendable {
        var a: PersonKey
        var b: PersonKey
        init(_ x: PersonKey, _ y: PersonKey) {
            if (x.source, x.id) < (y.source, y.id) { (a, b) = (x, y) } else { (a, b) = (y, x) }
        }
    }

    struct Result {
        var decisions: [MatchDecision]
        var clusterCount: Int
        var steward: [StewardCase]
    }

    func resolve(_ records: [PersonRecord]) -> Result {
        var decisions = [MatchDecision](
            repeating: MatchDecision(cluster: nil, rule: "unmatched", score: 0), count: records.count)
        var union = UnionFind(count: records.count)
        var anchorByNPI: [String: Int] = [:]
        var anchorByME: [String: Int] = [:]
        var steward: [StewardCase] = []
        var isAnchor = [Bool](repeating: false, count: records.count)
        let features = records.map(MatchFeatures.init)

        // 1. NPPES persons anchor by NPI.
        for i in records.indices where records[i].source == .nppes {
            if let npi = records[i].npi { anchorByNPI[npi] = i }
            isAnchor[i] = true
            decisions[i] = MatchDecision(cluster: i, rule: "anchor", score: 1)
        }
        // 2. AMA: by NPI, else probabilistically against NPPES; unlinked AMA records anchor themselves.
        var blocks = BlockIndex()
        for i in records.indices where isAnchor[i] { blocks.add(i, records[i]) }
        for i in records.indices where records[i].source == .ama {
            if let me = records[i].me { anchorByME[me] = i }
            if let npi = records[i].npi, anchorByNPI[npi] == nil { anchorByNPI[npi] = i }
            isAnchor[i] = true
            if let npi = records[i].npi, let anchor = anchorByNPI[npi], anchor != i {
                union.union(i, anchor)
                decisions[i] = MatchDecision(cluster: nil, rule: "npi", score: 1)
                continue
            }
            let (best, score) = bestCandidate(for: i, records, features, blocks: blocks, sources: [.nppes])
            if let best, score >= matchThreshold, !forbidden(records[i], records[best]) {
                union.union(i, best)
                decisions[i] = MatchDecision(cluster: nil, rule: "probabilistic", score: score)
            } else {
                if let best, score >= reviewThreshold {
                    steward.append(StewardCase(record: i, candidate: best, score: score))
                }
                decisions[i] = MatchDecision(cluster: nil, rule: "anchor", score: 1)
                blocks.add(i, records[i])
            }
        }
        // 3. CRM accounts: a valid, known NPI links unless the names clearly disagree; then a steward decides
        //    (a valid NPI is strong evidence, so the record never goes to another physician by name alone).
        for i in records.indices where records[i].source == .crm {
            if let npi = records[i].npi, let anchor = anchorByNPI[npi] {
                let s = records[i].hasName ? Self.score(records[i], records[anchor], features[i], features[anchor]) : 1
                if s >= 0.5
                    || forcedMatches.contains(where: {
                        $0.0.id == records[i].sourceID || $0.1.id == records[i].sourceID
                    })
                {
                    union.union(i, anchor)
                    decisions[i] = MatchDecision(cluster: nil, rule: "npi", score: 1)
                } else {
                    steward.append(StewardCase(record: i, candidate: anchor, score: s))
                    decisions[i].reason = "NPI \(npi) names another physician (score \(String(format: "%.3f", s)))"
                }
                continue
            }
            guard records[i].hasName else {
                decisions[i].reason = "no valid identifier and no name"
                continue
            }
            let (best, score) = bestCandidate(for: i, records, features, blocks: blocks, sources: [.nppes, .ama])
            if let best, score >= matchThreshold, !forbidden(records[i], records[best]) {
                union.union(i, best)
                decisions[i] = MatchDecision(cluster: nil, rule: "probabilistic", score: score)
            } else if let best, score >= reviewThreshold {
                steward.append(StewardCase(record: i, candidate: best, score: score))
                decisions[i].reason = "steward review (score \(String(format: "%.3f", score)))"
            } else {
                decisions[i].reason = "no candidate scored above \(reviewThreshold)"
            }
        }
        // 4. Prescriber ids of Rx and claims carry ids only.
        for i in records.indices where records[i].source == .xponent || records[i].source == .claims {
            if let npi = records[i].npi, let anchor = anchorByNPI[npi] {
                union.union(i, anchor)
                decisions[i] = MatchDecision(cluster: nil, rule: "npi", score: 1)
            } else if let me = records[i].me, let anchor = anchorByME[me] {
                union.union(i, anchor)
                decisions[i] = MatchDecision(cluster: nil, rule: "me_number", score: 1)
            } else {
                decisions[i].reason =
                    records[i].npi == nil && records[i].me == nil
                    ? "no valid NPI or ME number" : "identifier not found in NPPES or AMA"
            }
        }
        // 5. Steward overrides, applied on every run.
        let index = Dictionary(
            records.indices.map { (PersonKey(source: records[$0].source, id: records[$0].sourceID), $0) }
        ) {
            first, _ in first
        }
        for (a, b) in forcedMatches {
            guard let i = index[a], let j = index[b] else { continue }
            union.union(i, j)
            for k in [i, j] where decisions[k].rule == "unmatched" || decisions[k].reason != nil {
                decisions[k] = MatchDecision(cluster: nil, rule: "steward", score: 1)
            }
            steward.removeAll { ($0.record == i && $0.candidate == j) || ($0.record == j && $0.candidate == i) }
        }
        // Clusters: every record linked to an anchor, numbered in record order.
        var clusterOf: [Int: Int] = [:]
        var count = 0
        for i in records.indices {
            let linked = decisions[i].reason == nil && (isAnchor[i] || decisions[i].rule != "unmatched")
            guard linked else {
                decisions[i].cluster = nil
                continue
            }
            let root = union.find(i)
            if clusterOf[root] == nil {
                clusterOf[root] = count
                count += 1
            }
            decisions[i].cluster = clusterOf[root]
        }
        return Result(decisions: decisions, clusterCount: count, steward: steward)
    }

    private func forbidden(_ a: PersonRecord, _ b: PersonRecord) -> Bool {
        forcedNonMatches.contains(
            PairKey(PersonKey(source: a.source, id: a.sourceID), PersonKey(source: b.source, id: b.sourceID)))
    }

    /// The best-scoring candidate: first among records sharing a ZIP (where most true matches are), then,
    /// only when that finds no sure match, in the wider name-and-state blocks.
    private func bestCandidate(
        for i: Int, _ records: [PersonRecord], _ features: [MatchFeatures], blocks: BlockIndex,
        sources: Set<PhysicianSource>
    ) -> (Int?, Double) {
        var best: Int?
        var bestScore = 0.0
        var secondScore = 0.0
        var seen = Set<Int>()
        for wide in [false, true] {
            for candidate in blocks.candidates(for: records[i], wide: wide)
            where candidate != i && sources.contains(records[candidate].source) && seen.insert(candidate).inserted {
                let s = Self.score(records[i], records[candidate], features[i], features[candidate])
                if s > bestScore || (s == bestScore && best.map { candidate < $0 } ?? true) {
                    secondScore = bestScore
                    best = candidate
                    bestScore = s
                } else if s > secondScore {
                    secondScore = s
                }
            }
            if bestScore >= matchThreshold && bestScore - secondScore >= ambiguityMargin { break }
        }
        // Two namesakes that fit about as well: not a match to guess, a case for the steward.
        if bestScore >= matchThreshold && bestScore - secondScore < ambiguityMargin {
            return (best, min(bestScore, matchThreshold - 0.001))
        }
        return (best, bestScore)
    }

    /// How likely two records are the same person, 0 … 1: a weighted agreement of name, place and profile.
    static func score(_ a: PersonRecord, _ b: PersonRecord) -> Double {
        score(a, b, MatchFeatures(a), MatchFeatures(b))
    }

    static func score(_ a: PersonRecord, _ b: PersonRecord, _ fa: MatchFeatures, _ fb: MatchFeatures) -> Double {
        func nameScore(
            first1: [UInt8], canon1: [UInt8], last1: [UInt8], first2: [UInt8], canon2: [UInt8], last2: [UInt8]
        ) -> Double {
            let lastSim = NameNormalizer.jaroWinkler(last1, last2)
            let firstSim: Double
            if first1.isEmpty || first2.isEmpty {
                firstSim = 0.5
            } else if canon1 == canon2 {
                firstSim = 1
            } else if first1.count == 1 || first2.count == 1 {
                firstSim = first1.first == first2.first ? 0.85 : 0
            } else {
                let jw = NameNormalizer.jaroWinkler(first1, first2)
                firstSim = jw >= 0.88 ? jw : jw * 0.4
            }
            return 0.55 * lastSim + 0.45 * firstSim
        }
        let direct = nameScore(
            first1: fa.first, canon1: fa.firstCanonical, last1: fa.last, first2: fb.first, canon2: fb.firstCanonical,
            last2: fb.last)
        // Swapped first and last names: only worth scoring when the direct reading is poor.
        let swapped =
            direct >= 0.9
            ? 0
            : 0.97
                * nameScore(
                    first1: fa.last, canon1: fa.last, last1: fa.first, first2: fb.first, canon2: fb.firstCanonical,
                    last2: fb.last)
        let name = max(direct, swapped)
        var weight = 0.55
        var total = 0.55 * name
        if !a.zip5.isEmpty && !b.zip5.isEmpty {
            weight += 0.12
            total += a.zip5 == b.zip5 ? 0.12 : 0
        }
        if !a.city.isEmpty && !b.city.isEmpty {
            weight += 0.06
            total += 0.06 * NameNormalizer.jaroWinkler(fa.city, fb.city)
        }
        if !a.state.isEmpty && !b.state.isEmpty {
            weight += 0.07
            total += a.state == b.state ? 0.07 : 0
        }
        if !a.address.isEmpty && !b.address.isEmpty {
            weight += 0.08
            total += 0.08 * NameNormalizer.jaroWinkler(fa.address, fb.address)
        }
        if let sa = a.specialty, let sb = b.specialty {
            weight += 0.07
            total += sa == sb ? 0.07 : 0
        }
        if !a.middle.isEmpty && !b.middle.isEmpty {
            weight += 0.05
            total += a.middle.first == b.middle.first ? 0.05 : 0
        }
        if let ya = a.birthYear, let yb = b.birthYear {
            weight += 0.1
            total += ya == yb ? 0.1 : 0
        }
        // A moved physician keeps name, specialty and state: place counts less when the name agrees strongly.
        let raw = total / weight
        return name >= 0.97 ? max(raw, 0.5 + 0.5 * raw) : raw
    }
}

/// Blocks records by keys so each record is compared with a few candidates, not all.
struct BlockIndex {
    private var blocks: [String: [Int]] = [:]
    static let maxBlock = 400

    /// Narrow keys share a ZIP; wide keys share a name code and a state or a first initial.
    static func keys(_ r: PersonRecord, wide: Bool) -> [String] {
        var keys: [String] = []
        let lastCode = NameNormalizer.soundex(r.last)
        let firstCode = NameNormalizer.soundex(r.firstCanonical)
        if wide {
            if !r.last.isEmpty {
                keys.append("LS|\(lastCode)|\(r.state)")
                if let f = r.first.first { keys.append("LF|\(lastCode)|\(f)") }
            }
            // Swapped first and last names meet here.
            if !r.first.isEmpty { keys.append("LS|\(NameNormalizer.soundex(r.first))|\(r.state)") }
        } else if !r.zip5.isEmpty {
            if !r.last.isEmpty { keys.append("LZ|\(lastCode)|\(r.zip5)") }
            if !r.first.isEmpty { keys.append("FZ|\(firstCode)|\(r.zip5)") }
            if !r.first.isEmpty { keys.append("LZ|\(NameNormalizer.soundex(r.first))|\(r.zip5)") }
        }
        return keys
    }

    mutating func add(_ index: Int, _ record: PersonRecord) {
        for key in Self.keys(record, wide: false) + Self.keys(record, wide: true) {
            blocks[key, default: []].append(index)
        }
    }

    func candidates(for record: PersonRecord, wide: Bool) -> [Int] {
        var seen = Set<Int>()
        var result: [Int] = []
        for key in Self.keys(record, wide: wide) {
            guard let members = blocks[key], members.count <= Self.maxBlock else { continue }
            for m in members where seen.insert(m).inserted { result.append(m) }
        }
        return result
    }
}

struct UnionFind {
    private var parent: [Int]
    init(count: Int) { parent = Array(0..<count) }
    mutating func find(_ x: Int) -> Int {
        var root = x
        while parent[root] != root { root = parent[root] }
        var node = x
        while parent[node] != root {
            let next = parent[node]
            parent[node] = root
            node = next
        }
        return root
    }
    /// Joins two sets; the smaller index stays root, so results do not depend on call order.
    mutating func union(_ a: Int, _ b: Int) {
        let ra = find(a)
        let rb = find(b)
        if ra == rb { return }
        if ra < rb { parent[rb] = ra } else { parent[ra] = rb }
    }
}
