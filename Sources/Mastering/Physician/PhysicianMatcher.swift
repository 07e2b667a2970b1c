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
    /// The house number of the address line (`address` keeps its words only).
    var streetNumber: String?
    var city = ""
    var state = ""
    var zip5 = ""
    var specialty: String?
    var providerType = ProviderType.unknown
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

/// How one record ended up.
struct MatchDecision: Sendable {
    /// The cluster the record belongs to; nil only for an unmatched prescriber id that names no one.
    var cluster: Int?
    /// `anchor`, `npi`, `me_number`, `probabilistic`, `steward`, `singleton`, `provisional` or `unmatched`.
    var rule: String
    /// The match probability: 1 for an identifier, the model's for a probabilistic link, the best
    /// candidate's for a record left on its own.
    var probability: Double
    /// Why the record stands alone (or is unmatched).
    var reason: String?
}

/// A record a steward should decide: two candidates close in probability, or a valid NPI that names a
/// physician the record's own fields disagree with.
struct StewardCase: Sendable {
    var record: Int
    var candidate: Int
    var probability: Double
    /// `ambiguous` or `npi_conflict`.
    var kind: String
}

/// One result per chunk of parallel work, each slot written by one thread only.
final class ChunkResults<T>: @unchecked Sendable {
    // Safe: `concurrentPerform` gives each iteration its own index, each writes only its own slot of memory
    // allocated once (no shared array whose accessors would race), and `values` is read after it returns.
    private let slots: UnsafeMutablePointer<T?>
    private let count: Int
    init(count: Int) {
        self.count = count
        slots = .allocate(capacity: count)
        slots.initialize(repeating: nil, count: count)
    }
    deinit {
        slots.deinitialize(count: count)
        slots.deallocate()
    }
    func set(_ index: Int, _ value: T) { slots[index] = value }
    var values: [T] { (0..<count).compactMap { slots[$0] } }
}

/// Resolves person records into clusters: identifiers first (a valid NPI, the ME number), then a
/// Fellegi–Sunter model trained on this build's records, over the union of capped blocks; prescriber ids that
/// name no registry record become provisional physicians of their own.
struct PhysicianMatcher: Sendable {
    /// The match probability a pair needs to be linked.
    var matchProbability = 0.9
    /// Two candidates whose weights are closer than this (in bits, log2 of the likelihood ratio), both above
    /// the threshold, are a case for the steward rather than a guess.
    var ambiguityBits = 3.0
    /// The largest block any rule compares (larger ones are refined, then dropped).
    var blockCap = 500
    /// Random pairs the u probabilities are estimated from: at most this many, and 20 per query and candidate
    /// record (a sample-sized mesh rebuilds physician-master every run, and 300,000 pairs were half its build).
    var randomPairs = 300_000
    var seed: UInt64 = 0x5EED_0F_F5
    /// The prior odds that a CRM account and the physician its valid NPI names are one person.
    var npiPrior = 0.9999
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
        /// The probabilistic links made: (record, candidate).
        var links: [(record: Int, candidate: Int)]
        var model: FellegiSunterModel
        var features: [MatchFeatures]
        var blockedPairs: Int
        var blocking: [(rule: String, keys: Int, refined: Int, dropped: Int)]
    }

    /// The blocked pairs of the records being matched: per query record, its candidates and their patterns.
    struct BlockedPairs {
        var queries: [Int] = []
        var starts: [Int] = [0]
        var candidates: [Int32] = []
        var patterns: [ComparisonPattern] = []
        var count: Int { candidates.count }
        func range(_ q: Int) -> Range<Int> { starts[q]..<starts[q + 1] }
    }

    /// The share of identity records with each surname and formal first name.
    static func addTermFrequencies(_ records: [PersonRecord], _ features: inout [MatchFeatures]) {
        var lasts: [String: Int] = [:]
        var firsts: [String: Int] = [:]
        var (lastTotal, firstTotal) = (0, 0)
        for r in records where r.source.isIdentity {
            if !r.last.isEmpty {
                lasts[r.last, default: 0] += 1
                lastTotal += 1
            }
            if !r.firstCanonical.isEmpty {
                firsts[r.firstCanonical, default: 0] += 1
                firstTotal += 1
            }
        }
        for i in records.indices where records[i].source.isIdentity {
            if let n = lasts[records[i].last] { features[i].lastFrequency = Double(n) / Double(lastTotal) }
            if let n = firsts[records[i].firstCanonical] {
                features[i].firstFrequency = Double(n) / Double(firstTotal)
            }
        }
    }

    /// Compares each query record with the candidates its blocks hold, of the sources it may match: the
    /// queries in one chunk per core, concatenated in order, so the result does not depend on the threads.
    static func blockedPairs(
        _ queries: [Int], _ records: [PersonRecord], _ features: [MatchFeatures], index: BlockIndex,
        allowed: @Sendable @escaping (PhysicianSource, PhysicianSource) -> Bool
    ) -> BlockedPairs {
        let chunks = max(1, min(ProcessInfo.processInfo.activeProcessorCount, queries.count / 2_000))
        let size = (queries.count + chunks - 1) / max(chunks, 1)
        let parts = ChunkResults<BlockedPairs>(count: chunks)
        DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
            let slice = Array(queries[min(queries.count, chunk * size)..<min(queries.count, (chunk + 1) * size)])
            parts.set(chunk, blockedPairsOfChunk(slice, records, features, index: index, allowed: allowed))
        }
        var pairs = BlockedPairs()
        for part in parts.values {
            let offset = pairs.candidates.count
            pairs.queries += part.queries
            pairs.starts += part.starts.dropFirst().map { $0 + offset }
            pairs.candidates += part.candidates
            pairs.patterns += part.patterns
        }
        return pairs
    }

    private static func blockedPairsOfChunk(
        _ queries: [Int], _ records: [PersonRecord], _ features: [MatchFeatures], index: BlockIndex,
        allowed: (PhysicianSource, PhysicianSource) -> Bool
    ) -> BlockedPairs {
        var pairs = BlockedPairs()
        var stamp = [Int32](repeating: -1, count: records.count)
        // The sources apart: reading `records[c].source` copied the whole record (a dozen strings) per pair.
        let sources = records.map(\.source)
        features.withUnsafeBufferPointer { f in
            let base = f.baseAddress!
            for (qi, q) in queries.enumerated() {
                pairs.queries.append(q)
                let source = sources[q]
                if base[q].comparable {
                    index.forEachCandidate(of: records[q]) { c, _ in
                        guard c != q, stamp[c] != Int32(qi), allowed(source, sources[c]) else { return }
                        stamp[c] = Int32(qi)
                        pairs.candidates.append(Int32(c))
                        pairs.patterns.append(PersonComparison.compare(base + q, base + c).pattern)
                    }
                }
                pairs.starts.append(pairs.candidates.count)
            }
        }
        return pairs
    }

    /// The patterns of random pairs, drawn from each group (query records, their candidates) in proportion to
    /// the pairs it holds.
    func randomPatterns(_ groups: [(queries: [Int], candidates: [Int])], _ features: [MatchFeatures])
        -> PatternCounts
    {
        let sizes = groups.map { Double($0.queries.count) * Double($0.candidates.count) }
        let total = sizes.reduce(0, +)
        guard total > 0 else { return PatternCounts([]) }
        let records = Set(groups.flatMap { $0.queries + $0.candidates }).count
        let randomPairs = min(self.randomPairs, max(20_000, 20 * records))
        var counts: [ComparisonPattern: Int] = [:]
        // Few records: every pair once, rather than the same few pairs drawn over and over.
        if total <= Double(randomPairs) {
            for group in groups {
                for q in group.queries {
                    for c in group.candidates where c != q {
                        counts[PersonComparison.compare(features[q], features[c]).pattern, default: 0] += 1
                    }
                }
            }
            return PatternCounts(counts: counts)
        }
        var random = SplitMix64(seed: seed)
        var drawn = 0
        var attempts = 0
        while drawn < randomPairs && attempts < randomPairs * 2 {
            attempts += 1
            var pick = random.unit() * total
            var g = 0
            while g < groups.count - 1 && pick >= sizes[g] {
                pick -= sizes[g]
                g += 1
            }
            guard sizes[g] > 0 else { continue }
            let q = groups[g].queries[random.below(groups[g].queries.count)]
            let c = groups[g].candidates[random.below(groups[g].candidates.count)]
            if q == c { continue }
            let pattern = features.withUnsafeBufferPointer { f in
                PersonComparison.compare(f.baseAddress! + q, f.baseAddress! + c).pattern
            }
            counts[pattern, default: 0] += 1
            drawn += 1
        }
        return PatternCounts(counts: counts)
    }

    func resolve(_ records: [PersonRecord]) -> Result {
        var decisions = [MatchDecision](
            repeating: MatchDecision(cluster: nil, rule: "unmatched", probability: 0), count: records.count)
        var union = UnionFind(count: records.count)
        var anchorByNPI: [String: Int] = [:]
        var anchorByME: [String: Int] = [:]
        var steward: [StewardCase] = []
        var links: [(record: Int, candidate: Int)] = []
        var features = records.map(MatchFeatures.init)
        Self.addTermFrequencies(records, &features)

        // 1. NPPES persons anchor by NPI.
        for i in records.indices where records[i].source == .nppes {
            if let npi = records[i].npi { anchorByNPI[npi] = i }
            decisions[i] = MatchDecision(cluster: nil, rule: "anchor", probability: 1)
        }
        // 2. AMA by NPI; the others are matched against NPPES below, and anchor themselves when nothing fits.
        var amaQueries: [Int] = []
        var taken = Set<Int>()
        for i in records.indices where records[i].source == .ama {
            if let me = records[i].me { anchorByME[me] = i }
            if let npi = records[i].npi, anchorByNPI[npi] == nil { anchorByNPI[npi] = i }
            decisions[i] = MatchDecision(cluster: nil, rule: "anchor", probability: 1)
            if let npi = records[i].npi, let anchor = anchorByNPI[npi], anchor != i {
                union.union(i, anchor)
                decisions[i] = MatchDecision(cluster: nil, rule: "npi", probability: 1)
                if records[anchor].source == .nppes { taken.insert(anchor) }
                continue
            }
            decisions[i].probability = 0
            amaQueries.append(i)
        }
        // 3. CRM accounts whose valid NPI names a physician are checked against it below; the others matched.
        var crmByNPI: [(record: Int, anchor: Int)] = []
        var crmQueries: [Int] = []
        for i in records.indices where records[i].source == .crm {
            if let npi = records[i].npi, let anchor = anchorByNPI[npi] {
                crmByNPI.append((i, anchor))
            } else {
                crmQueries.append(i)
            }
        }

        // 4. Blocks over NPPES and AMA; the model trained on this build's records.
        let nppes = records.indices.filter { records[$0].source == .nppes }
        let ama = records.indices.filter { records[$0].source == .ama }
        let crm = records.indices.filter { records[$0].source == .crm }
        let index = BlockIndex(records, candidates: nppes + ama, cap: blockCap)
        let amaPairs = Self.blockedPairs(amaQueries, records, features, index: index) { _, c in c == .nppes }
        let crmPairs = Self.blockedPairs(crmQueries, records, features, index: index) { _, c in
            c == .nppes || c == .ama
        }
        var model = FellegiSunterModel(comparisons: PersonComparison.comparisons)
        model.estimateU(from: randomPatterns([(ama, nppes), (crm, nppes + ama)], features))
        // Two EM sessions, as splink trains: the blocked pairs sharing a ZIP (which say nothing about the
        // place) teach names, address and profile; those whose names agree teach the place, address and
        // profile. Pairs that share a valid NPI count as known matches in both.
        typealias C = PersonComparison
        // Each blocked pair's pattern counted once, for both sessions and the prior.
        var blockedCounts: [ComparisonPattern: Int] = [:]
        for pairs in [amaPairs, crmPairs] {
            for pattern in pairs.patterns { blockedCounts[pattern, default: 0] += 1 }
        }
        let sessions = [
            (Set([C.zip, C.city, C.state]), { (p: ComparisonPattern) in p.level(C.zip) == 1 }),
            (
                Set([C.first, C.last]),
                { (p: ComparisonPattern) in (1...3).contains(p.level(C.first)) && (1...2).contains(p.level(C.last)) }
            ),
        ].map { excluded, selected in
            (PatternCounts(counts: blockedCounts.filter { selected($0.key) }), excluded)
        }
        var labelled: [ComparisonPattern] = []
        for (i, r) in records.enumerated() where (r.source == .ama || r.source == .crm) && decisions[i].rule == "npi" {
            guard let anchor = anchorByNPI[r.npi!] else { continue }
            labelled.append(PersonComparison.compare(features[i], features[anchor]).pattern)
        }
        for (i, anchor) in crmByNPI {
            let pattern = PersonComparison.compare(features[i], features[anchor]).pattern
            // A CRM account whose names both disagree with its NPI's physician is no safe example.
            if pattern.level(C.first) != 6 || pattern.level(C.last) != 6 { labelled.append(pattern) }
        }
        model.estimateM(sessions: sessions, labelled: PatternCounts(labelled))
        // The share of matches whose sources disagree on the place: from the identifier-linked pairs when there
        // are enough of them.
        model.moverComparisons = [C.address, C.zip, C.city, C.state]
        let placed = labelled.filter { $0.level(C.zip) != 0 && $0.level(C.city) != 0 }
        if placed.count >= 50 {
            let moved = placed.filter { $0.level(C.zip) == 4 && $0.level(C.city) == 3 }.count
            model.moverShare = min(max(Double(moved) / Double(placed.count), 0.005), 0.2)
        }
        let comparable =
            Double(amaQueries.count) * Double(nppes.count) + Double(crmQueries.count) * Double(nppes.count + ama.count)
        model.estimatePrior(from: PatternCounts(counts: blockedCounts), comparablePairs: comparable)
        func p(_ w: Double) -> Double { FellegiSunterModel.probability(w) }
        func percent(_ probability: Double) -> String { PersonComparison.rounded(probability, 3) }

        // 5. AMA against NPPES, one AMA record per NPPES person: the strongest proposals first.
        var proposals: [(record: Int, candidate: Int, probability: Double)] = []
        let amaRanked = amaPairs.queries.indices.map { qi in
            ranking(amaPairs.queries[qi], amaPairs, qi, records, features, model) { $0 }
        }
        let amaShare = Self.matchShare(amaRanked, prior: model.priorWeight, candidates: nppes.count)
        for (qi, q) in amaPairs.queries.enumerated() {
            let ranked = Self.recordProbabilities(
                amaRanked[qi], prior: model.priorWeight, share: amaShare, candidates: nppes.count)
            guard let best = ranked.first else {
                decisions[q].reason =
                    features[q].comparable ? "no NPPES record shares a block" : "no name, address or ZIP to compare"
                continue
            }
            decisions[q].probability = best.probability
            if best.probability >= matchProbability {
                proposals.append((q, best.candidate, best.probability))
            } else if ambiguous(ranked) {
                decisions[q].reason =
                    "two NPPES candidates at p \(percent(best.probability)) and \(percent(ranked[1].probability))"
                for c in ranked.prefix(2) {
                    steward.append(
                        StewardCase(record: q, candidate: c.candidate, probability: c.probability, kind: "ambiguous"))
                }
            } else {
                decisions[q].reason =
                    "best NPPES candidate at p \(percent(best.probability)), below \(matchProbability)"
            }
        }
        proposals.sort { a, b in a.probability != b.probability ? a.probability > b.probability : a.record < b.record }
        for proposal in proposals {
            guard taken.insert(proposal.candidate).inserted else {
                decisions[proposal.record].reason = "its best NPPES candidate belongs to another AMA record"
                continue
            }
            union.union(proposal.record, proposal.candidate)
            decisions[proposal.record] = MatchDecision(
                cluster: nil, rule: "probabilistic", probability: proposal.probability)
            links.append((proposal.record, proposal.candidate))
        }

        // 6. A valid, known NPI links a CRM account unless its fields clearly disagree with the physician the
        //    NPI names; then a steward decides (the record never goes to another physician by name alone).
        let npiPriorWeight = FellegiSunterModel.weight(ofProbability: npiPrior)
        for (i, anchor) in crmByNPI {
            let pattern = PersonComparison.compare(features[i], features[anchor]).pattern
            let w =
                PersonComparison.weight(pattern, candidate: features[anchor], model: model) - model.priorWeight
                + npiPriorWeight
            let forced = forcedMatches.contains { $0.0.id == records[i].sourceID || $0.1.id == records[i].sourceID }
            if p(w) >= 0.5 || forced {
                union.union(i, anchor)
                decisions[i] = MatchDecision(cluster: nil, rule: "npi", probability: 1)
            } else {
                steward.append(StewardCase(record: i, candidate: anchor, probability: p(w), kind: "npi_conflict"))
                decisions[i] = MatchDecision(
                    cluster: nil, rule: "singleton", probability: p(w),
                    reason: "NPI \(records[i].npi!) names another physician (p \(percent(p(w))))")
            }
        }

        // 7. CRM accounts without a known NPI: the best physician (its NPPES and AMA records count as one).
        let physicians = Set((nppes + ama).map { union.find($0) }).count
        let crmRanked = crmPairs.queries.indices.map { qi in
            ranking(crmPairs.queries[qi], crmPairs, qi, records, features, model) { union.find($0) }
        }
        let crmShare = Self.matchShare(crmRanked, prior: model.priorWeight, candidates: physicians)
        for (qi, q) in crmPairs.queries.enumerated() {
            decisions[q] = MatchDecision(cluster: nil, rule: "singleton", probability: 0)
            let ranked = Self.recordProbabilities(
                crmRanked[qi], prior: model.priorWeight, share: crmShare, candidates: physicians)
            guard let best = ranked.first else {
                decisions[q].reason =
                    features[q].comparable
                    ? "no NPPES or AMA record shares a block" : "no name, address or ZIP to compare"
                continue
            }
            decisions[q].probability = best.probability
            if best.probability >= matchProbability {
                union.union(q, best.candidate)
                decisions[q] = MatchDecision(cluster: nil, rule: "probabilistic", probability: best.probability)
                links.append((q, best.candidate))
            } else if ambiguous(ranked) {
                decisions[q].reason =
                    "two physicians at p \(percent(best.probability)) and \(percent(ranked[1].probability))"
                for c in ranked.prefix(2) {
                    steward.append(
                        StewardCase(record: q, candidate: c.candidate, probability: c.probability, kind: "ambiguous"))
                }
            } else {
                decisions[q].reason = "best candidate at p \(percent(best.probability)), below \(matchProbability)"
            }
        }
        // A CRM account left on its own keeps its valid NPI: prescriber ids with that NPI are that person.
        for i in crm where decisions[i].rule == "singleton" {
            if let npi = records[i].npi, anchorByNPI[npi] == nil { anchorByNPI[npi] = i }
        }

        // 8. Prescriber ids of Rx and claims carry ids only; those naming no registry record become provisional
        //    physicians, one per NPI or ME number they share.
        var provisionalByNPI: [String: Int] = [:]
        var provisionalByME: [String: Int] = [:]
        for i in records.indices where !records[i].source.isIdentity {
            let r = records[i]
            let link = PrescriberLink.resolve(
                source: r.source, npi: r.npi, me: r.me, anchorByNPI: { anchorByNPI[$0] }, anchorByME: { anchorByME[$0] }
            )
            switch link {
            case .byNPI(let anchor), .byME(let anchor):
                union.union(i, anchor)
                decisions[i] = MatchDecision(cluster: nil, rule: link.rule, probability: 1)
            case .unmatched(let reason):
                decisions[i].reason = reason
            case .provisional:
                decisions[i] = MatchDecision(
                    cluster: nil, rule: "provisional", probability: 1,
                    reason: r.npi == nil && r.me == nil
                        ? "no valid NPI or ME number: a provisional physician of its own"
                        : "identifier not found in NPPES or AMA: a provisional physician")
                if let npi = r.npi {
                    if let other = provisionalByNPI[npi] { union.union(i, other) } else { provisionalByNPI[npi] = i }
                }
                if let me = r.me {
                    if let other = provisionalByME[me] { union.union(i, other) } else { provisionalByME[me] = i }
                }
            }
        }

        // 9. Steward overrides, applied on every run.
        let keyed = Dictionary(
            records.indices.map { (PersonKey(source: records[$0].source, id: records[$0].sourceID), $0) }
        ) { first, _ in first }
        let unlinked: Set<String> = ["singleton", "unmatched", "provisional", "anchor"]
        for (a, b) in forcedMatches {
            guard let i = keyed[a], let j = keyed[b] else { continue }
            union.union(i, j)
            for k in [i, j] where records[k].source != .nppes && (unlinked.contains(decisions[k].rule)) {
                decisions[k] = MatchDecision(cluster: nil, rule: "steward", probability: 1)
            }
            steward.removeAll { ($0.record == i && $0.candidate == j) || ($0.record == j && $0.candidate == i) }
        }

        // Clusters: every record but an unmatched prescriber id, numbered in record order.
        var clusterOf: [Int: Int] = [:]
        var sizes: [Int] = []
        var count = 0
        for i in records.indices where decisions[i].rule != "unmatched" {
            let root = union.find(i)
            if clusterOf[root] == nil {
                clusterOf[root] = count
                sizes.append(0)
                count += 1
            }
            decisions[i].cluster = clusterOf[root]
            if records[i].source.isIdentity { sizes[clusterOf[root]!] += 1 }
        }
        // An AMA record or CRM account that no other identity record joined is a singleton (prescriber ids
        // following it do not change that); one that others joined anchors them.
        for i in records.indices where records[i].source == .ama || records[i].source == .crm {
            guard decisions[i].rule == "anchor" || decisions[i].rule == "singleton", let c = decisions[i].cluster else {
                continue
            }
            if sizes[c] == 1 {
                decisions[i].rule = "singleton"
                if decisions[i].reason == nil { decisions[i].reason = "no NPPES record matched" }
            } else {
                decisions[i] = MatchDecision(cluster: c, rule: "anchor", probability: 1)
            }
        }
        return Result(
            decisions: decisions, clusterCount: count, steward: steward, links: links, model: model,
            features: features, blockedPairs: amaPairs.count + crmPairs.count, blocking: index.statistics)
    }

    /// Neither of the two best candidates reaches the threshold, together they do, and they are within
    /// `ambiguityBits` of each other: one of them is the person, and a steward should say which.
    private func ambiguous(_ ranked: [(candidate: Int, weight: Double, probability: Double)]) -> Bool {
        guard ranked.count > 1, ranked[1].probability > 0 else { return false }
        return ranked[0].probability + ranked[1].probability >= matchProbability
            && log2(ranked[0].probability / ranked[1].probability) < ambiguityBits
    }

    /// log2 of a sum of powers of two, without overflow.
    static func logSumExp2(_ values: [Double]) -> Double {
        guard let top = values.max(), top > -.infinity else { return -.infinity }
        return top + log2(values.reduce(0) { $0 + exp2($1 - top) })
    }

    /// The share of query records that have a match among the candidates (π), by EM over the queries: each
    /// query either is one of the `candidates` people (uniformly a priori) or none of them, and the blocked
    /// candidates' Bayes factors say which; those outside the blocks are taken as two people.
    static func matchShare(_ ranked: [[(candidate: Int, weight: Double)]], prior: Double, candidates: Int) -> Double {
        guard candidates > 0, !ranked.isEmpty else { return 0.5 }
        let logS = ranked.map { r in logSumExp2(r.map { $0.weight - prior }) - log2(Double(candidates)) }
        var share = 0.5
        for _ in 0..<200 {
            var sum = 0.0
            for l in logS where l > -.infinity { sum += 1 / (1 + exp2(log2(1 - share) - log2(share) - l)) }
            let next = min(max(sum / Double(ranked.count), 0.01), 0.999)
            if abs(next - share) < 1e-10 {
                share = next
                break
            }
            share = next
        }
        return share
    }

    /// A query's candidates with the probability that each is the person, given that the query is one of the
    /// `candidates` people with probability `share` (a record matches at most one physician): a candidate
    /// that fits far better than every other takes nearly all of it, two namesakes that fit alike split it.
    static func recordProbabilities(
        _ ranked: [(candidate: Int, weight: Double)], prior: Double, share: Double, candidates: Int
    ) -> [(candidate: Int, weight: Double, probability: Double)] {
        guard !ranked.isEmpty else { return [] }
        let base = log2(share) - log2(Double(max(candidates, 1))) - prior
        let none = log2(1 - share)
        let total = logSumExp2(ranked.map { base + $0.weight } + [none])
        return ranked.map { ($0.candidate, $0.weight, exp2(base + $0.weight - total)) }
    }

    /// Takes indices rather than records: passing `records[q]` copied a whole record per blocked pair even
    /// when no pair is forbidden.
    private func forbidden(_ a: Int, _ b: Int, _ records: [PersonRecord]) -> Bool {
        !forcedNonMatches.isEmpty
            && forcedNonMatches.contains(
                PairKey(
                    PersonKey(source: records[a].source, id: records[a].sourceID),
                    PersonKey(source: records[b].source, id: records[b].sourceID)))
    }

    /// A query's candidates by weight, strongest first, one per group (`group` maps a candidate to its
    /// physician so far, so that two records of one physician are not rivals); forced non-matches left out.
    private func ranking(
        _ q: Int, _ pairs: BlockedPairs, _ qi: Int, _ records: [PersonRecord], _ features: [MatchFeatures],
        _ model: FellegiSunterModel, group: (Int) -> Int
    ) -> [(candidate: Int, weight: Double)] {
        var best: [Int: (candidate: Int, weight: Double)] = [:]
        for k in pairs.range(qi) {
            let c = Int(pairs.candidates[k])
            if forbidden(q, c, records) { continue }
            let w = PersonComparison.weight(
                pairs.patterns[k], first: features[c].firstFrequency, last: features[c].lastFrequency, model: model)
            let g = group(c)
            if let current = best[g], current.weight > w || (current.weight == w && current.candidate < c) { continue }
            best[g] = (c, w)
        }
        return best.values.sorted { a, b in a.weight != b.weight ? a.weight > b.weight : a.candidate < b.candidate }
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
