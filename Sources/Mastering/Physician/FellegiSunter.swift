import Foundation

/// One compared field of a Fellegi–Sunter model: its agreement levels, from the strongest agreement to plain
/// disagreement. Level 0 is always `missing` (one side has no value): it weighs nothing either way.
struct Comparison: Sendable {
    var name: String
    /// `levels[0]` is `missing`; the last is the disagreement.
    var levels: [String]
    /// The m probabilities (per level, level 0 unused) the estimation starts from and is pulled towards when
    /// the data are few: a MAP estimate with `FellegiSunterModel.priorPairs` pseudo-pairs of this shape.
    var typicalM: [Double]
    /// The same for u, with `FellegiSunterModel.priorRandomPairs` pseudo-pairs: a handful of records (whose
    /// random pairs are often the true match) cannot make an agreement look common.
    var typicalU: [Double]
}

/// A comparison vector: the level of comparison `k` in bits `4k ..< 4k + 4` (eight comparisons at most).
struct ComparisonPattern: Hashable, Comparable, Sendable {
    var bits: UInt32
    init(bits: UInt32 = 0) { self.bits = bits }
    init(_ levels: [Int]) {
        bits = 0
        for (k, level) in levels.enumerated() { bits |= UInt32(level) << (4 * UInt32(k)) }
    }
    func level(_ k: Int) -> Int { Int((bits >> (4 * UInt32(k))) & 0xF) }
    mutating func set(_ k: Int, _ level: Int) {
        bits = (bits & ~(0xF << (4 * UInt32(k)))) | (UInt32(level) << (4 * UInt32(k)))
    }
    static func < (a: Self, b: Self) -> Bool { a.bits < b.bits }
}

/// How many pairs showed each comparison pattern, sorted by pattern so that every sum over it runs in one order
/// (floating-point sums in dictionary order would differ from one process to the next).
struct PatternCounts: Sendable {
    private(set) var entries: [(pattern: ComparisonPattern, count: Int)] = []
    var total: Int { entries.reduce(0) { $0 + $1.count } }

    init<S: Sequence>(_ patterns: S) where S.Element == ComparisonPattern {
        var counts: [ComparisonPattern: Int] = [:]
        for p in patterns { counts[p, default: 0] += 1 }
        entries = counts.map { ($0.key, $0.value) }.sorted { $0.pattern < $1.pattern }
    }

    init(counts: [ComparisonPattern: Int]) {
        entries = counts.map { ($0.key, $0.value) }.sorted { $0.pattern < $1.pattern }
    }
}

/// The Fellegi–Sunter model of record linkage: for each comparison level, m = P(level | the pair is one
/// person) and u = P(level | two people); a pair's match weight is the prior log-odds plus the sum of
/// log2(m/u) over its comparisons, and its match probability is 2^w / (1 + 2^w).
///
/// u comes from random pairs (almost all of them two people), m and the prior λ from expectation
/// maximisation over the blocked pairs with u held fixed, as splink does. Both are estimated from the data on
/// every build, and deterministically: the same pairs give the same parameters.
///
/// ```swift
/// var model = FellegiSunterModel(comparisons: PersonComparison.comparisons)
/// model.estimateU(from: PatternCounts(randomPairPatterns))
/// model.estimateM(from: PatternCounts(blockedPairPatterns))
/// let p = FellegiSunterModel.probability(model.weight(pattern))
/// ```
struct FellegiSunterModel: Sendable {
    let comparisons: [Comparison]
    /// m and u per comparison and level (index 0, missing, is unused and left at 1).
    var m: [[Double]]
    var u: [[Double]]
    /// The share of compared pairs that are one person.
    var lambda: Double
    /// EM iterations the last `estimateM` ran, and whether it converged.
    var iterations = 0
    var converged = false
    /// Pairs the u and m estimates rest on.
    var randomPairs = 0
    var blockedPairs = 0
    /// log2(m/u) per comparison and level (0 for missing), refreshed by each estimation.
    private(set) var weights: [[Double]] = []

    /// Pseudo-pairs of the typical shape added to the EM's match side: negligible on real volumes, they keep a
    /// handful of pairs from driving an m to zero.
    static let priorPairs = 5.0
    static let priorRandomPairs = 100.0
    /// λ's prior: as if `priorLambdaPairs` pairs had been seen, a tenth of them matches.
    static let priorLambdaPairs = 10.0
    /// No m or u falls below this: a level never seen weighs a lot, not infinitely much.
    static let floor = 1e-5

    init(comparisons: [Comparison], lambda: Double = 0.1) {
        self.comparisons = comparisons
        m = comparisons.map { c in [1] + Self.normalised(Array(c.typicalM.dropFirst())) }
        u = comparisons.map { c in [1] + Self.normalised(Array(c.typicalU.dropFirst())) }
        self.lambda = lambda
        refreshWeights()
    }

    static func normalised(_ values: [Double]) -> [Double] {
        let floored = values.map { max($0, floor) }
        let sum = floored.reduce(0, +)
        return floored.map { $0 / sum }
    }

    /// The prior log-odds of a compared pair being one person, in bits.
    var priorWeight: Double { log2(lambda / (1 - lambda)) }

    /// The Bayes factor of one comparison's level, in bits; 0 for a missing value.
    func weight(_ k: Int, level: Int) -> Double { level == 0 ? 0 : weights[k][level] }

    /// A pair's match weight (prior included), without term-frequency adjustments.
    func weight(_ pattern: ComparisonPattern) -> Double {
        var w = priorWeight
        var grouped = 0.0
        for k in comparisons.indices {
            let level = pattern.level(k)
            guard level != 0 else { continue }
            if moverMask & (1 << k) != 0 { grouped += weights[k][level] } else { w += weights[k][level] }
        }
        return moverComparisons.isEmpty ? w + grouped : w + Self.moverWeight(grouped, share: moverShare)
    }

    /// Comparisons that change together when a person moves (address, ZIP, city, state): given a match, they
    /// are either the person's one location (the product of their m) or, for the `moverShare` of matches whose
    /// sources disagree on where the person is, as unrelated as two people's. Their joint Bayes factor is then
    /// (1 − share)·Π(m/u) + share: agreement counts as before, and a move costs log2(share) once rather than
    /// a full disagreement on each field.
    var moverComparisons: Set<Int> = [] {
        didSet { moverMask = moverComparisons.reduce(0) { $0 | (1 << $1) } }
    }
    /// `moverComparisons` as bits: `weight` runs once per blocked pair, and a set lookup per field was a
    /// hash per field and pair.
    private var moverMask = 0
    var moverShare = 0.02

    static func moverWeight(_ bits: Double, share: Double) -> Double {
        guard share > 0 else { return bits }
        // log2((1 − s)·2^bits + s), without overflow for large bits.
        return bits > 0
            ? bits + log2((1 - share) + share * exp2(-bits)) : log2((1 - share) * exp2(bits) + share)
    }

    /// The probability that goes with a match weight.
    static func probability(_ weight: Double) -> Double { 1 / (1 + exp2(-weight)) }

    /// The weight that goes with a probability.
    static func weight(ofProbability p: Double) -> Double { log2(p / (1 - p)) }

    private mutating func refreshWeights() {
        weights = comparisons.indices.map { k in
            (0..<comparisons[k].levels.count).map { level in level == 0 ? 0 : log2(m[k][level] / u[k][level]) }
        }
    }

    /// u from the patterns of random pairs: each level's share among the pairs with a value on both sides,
    /// with `priorRandomPairs` pseudo-pairs of the typical shape, so that a level the sample never met keeps a
    /// small u.
    mutating func estimateU(from random: PatternCounts) {
        randomPairs = random.total
        for k in comparisons.indices {
            let levels = comparisons[k].levels.count
            let typical = Self.normalised(Array(comparisons[k].typicalU.dropFirst()))
            var counts = [Double](repeating: 0, count: levels)
            for (pattern, count) in random.entries { counts[pattern.level(k)] += Double(count) }
            let present = counts.dropFirst().reduce(0, +)
            u[k] =
                [1]
                + Self.normalised(
                    (1..<levels).map {
                        (counts[$0] + Self.priorRandomPairs * typical[$0 - 1]) / (present + Self.priorRandomPairs)
                    })
        }
        refreshWeights()
    }

    /// m and λ by expectation maximisation over the blocked pairs' patterns, u fixed. Comparisons in
    /// `excluding` are left out of the likelihood and keep their m. Stops when no m moves by more than
    /// `tolerance` or after `maxIterations`.
    /// Pairs known to be one person (`labelled`: sharing a valid identifier) count as matches in every
    /// iteration: semi-supervised EM, which pins m down where the identifiers reach.
    mutating func estimateM(
        from blocked: PatternCounts, excluding: Set<Int> = [], labelled: PatternCounts = PatternCounts([]),
        maxIterations: Int = 200, tolerance: Double = 1e-7
    ) {
        blockedPairs = blocked.total
        iterations = 0
        converged = false
        guard blockedPairs > 0 else { return }
        let total = Double(blockedPairs)
        let used = comparisons.indices.filter { !excluding.contains($0) }
        let logU = blocked.entries.map { entry in
            used.reduce(0.0) { sum, k in
                let level = entry.pattern.level(k)
                return level == 0 ? sum : sum + log(u[k][level])
            }
        }
        var known = comparisons.map { [Double](repeating: 0, count: $0.levels.count) }
        for entry in labelled.entries {
            for k in used { known[k][entry.pattern.level(k)] += Double(entry.count) }
        }
        while iterations < maxIterations {
            iterations += 1
            let logitPrior = log(lambda / (1 - lambda))
            var matched = known
            var matches = 0.0
            for (index, entry) in blocked.entries.enumerated() {
                var logM = 0.0
                for k in used {
                    let level = entry.pattern.level(k)
                    if level != 0 { logM += log(m[k][level]) }
                }
                let posterior = 1 / (1 + exp(-(logitPrior + logM - logU[index])))
                let weighted = posterior * Double(entry.count)
                matches += weighted
                for k in used { matched[k][entry.pattern.level(k)] += weighted }
            }
            var moved = 0.0
            for k in used {
                let levels = comparisons[k].levels.count
                let typical = Self.normalised(Array(comparisons[k].typicalM.dropFirst()))
                let present = matched[k].dropFirst().reduce(0, +)
                let next = Self.normalised(
                    (1..<levels).map {
                        (matched[k][$0] + Self.priorPairs * typical[$0 - 1]) / (present + Self.priorPairs)
                    })
                for level in 1..<levels { moved = max(moved, abs(next[level - 1] - m[k][level])) }
                m[k] = [1] + next
            }
            let nextLambda = min(
                max((matches + 0.1 * Self.priorLambdaPairs) / (total + Self.priorLambdaPairs), 1e-6), 0.999)
            moved = max(moved, abs(nextLambda - lambda))
            lambda = nextLambda
            if moved < tolerance {
                converged = true
                break
            }
        }
        refreshWeights()
    }

    /// m by one EM session per blocking rule, each over the pairs that rule reached, with the comparisons the
    /// rule blocks on left out (their agreement there is the rule's doing, not evidence of a match): each
    /// comparison's m is the mean over the sessions that estimated it, as splink trains. λ is then estimated
    /// for random pairs (`estimatePrior`).
    mutating func estimateM(
        sessions: [(pairs: PatternCounts, excluding: Set<Int>)], labelled: PatternCounts = PatternCounts([])
    ) {
        var sums = comparisons.map { [Double](repeating: 0, count: $0.levels.count) }
        var counts = [Int](repeating: 0, count: comparisons.count)
        var steps = 0
        var allConverged = true
        for session in sessions where session.pairs.total > 0 {
            var copy = self
            copy.estimateM(from: session.pairs, excluding: session.excluding, labelled: labelled)
            steps += copy.iterations
            allConverged = allConverged && copy.converged
            for k in comparisons.indices where !session.excluding.contains(k) {
                counts[k] += 1
                for level in comparisons[k].levels.indices { sums[k][level] += copy.m[k][level] }
            }
        }
        for k in comparisons.indices where counts[k] > 0 {
            m[k] = [1] + Self.normalised(Array(sums[k].dropFirst()).map { $0 / Double(counts[k]) })
        }
        iterations = steps
        converged = allConverged && counts.contains { $0 > 0 }
        blockedPairs = sessions.map(\.pairs.total).max() ?? 0
        refreshWeights()
    }

    /// λ for a random pair of the compared populations (the prior that goes with u from random pairs): the
    /// expected matches among the blocked pairs under the model, every pair outside the blocks taken as two
    /// people, over all `comparablePairs`, iterated to a fixed point.
    mutating func estimatePrior(from blocked: PatternCounts, comparablePairs: Double) {
        guard comparablePairs > 0, blocked.total > 0 else { return }
        let bayesFactors = blocked.entries.map { entry in (weight(entry.pattern) - priorWeight) * log(2.0) }
        var estimate = min(max(Double(blocked.total) / comparablePairs * 0.1, 1e-12), 0.5)
        for _ in 0..<100 {
            let logit = log(estimate / (1 - estimate))
            var matches = 0.0
            for (index, entry) in blocked.entries.enumerated() {
                matches += Double(entry.count) / (1 + exp(-(logit + bayesFactors[index])))
            }
            let next = min(max(matches / comparablePairs, 1e-12), 0.5)
            if abs(next - estimate) <= 1e-9 * estimate {
                estimate = next
                break
            }
            estimate = next
        }
        lambda = estimate
        refreshWeights()
    }

    /// The term-frequency adjustment of an exact agreement on a value whose share among all values is
    /// `frequency`, in bits: log2(u of the exact level / frequency). A shared rare surname weighs more than
    /// the average exact agreement, a shared SMITH less.
    func termFrequencyAdjustment(_ k: Int, exactLevel: Int = 1, frequency: Double) -> Double {
        guard frequency > 0 else { return 0 }
        return log2(u[k][exactLevel] / frequency)
    }
}

/// A seeded generator (SplitMix64) for the random pairs u is estimated from: the same records give the same
/// sample in every process.
struct SplitMix64: Sendable {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in 0 ..< n (n > 0).
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }
}
