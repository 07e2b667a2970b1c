import Foundation
import Testing

@testable import Mastering

/// The Fellegi–Sunter model on hand-made data whose parameters are known, and the person comparisons.
struct FellegiSunterTests {
    /// Three comparisons of three levels each (plus missing), with known m, u and λ.
    static let comparisons = [
        Comparison(
            name: "a", levels: ["missing", "exact", "close", "different"], typicalM: [1, 0.6, 0.2, 0.2],
            typicalU: [1, 0.1, 0.1, 0.8]),
        Comparison(
            name: "b", levels: ["missing", "exact", "close", "different"], typicalM: [1, 0.6, 0.2, 0.2],
            typicalU: [1, 0.1, 0.1, 0.8]),
        Comparison(
            name: "c", levels: ["missing", "exact", "different"], typicalM: [1, 0.5, 0.5], typicalU: [1, 0.5, 0.5]),
    ]
    static let trueM: [[Double]] = [[0.85, 0.10, 0.05], [0.70, 0.20, 0.10], [0.90, 0.10]]
    static let trueU: [[Double]] = [[0.02, 0.08, 0.90], [0.05, 0.15, 0.80], [0.30, 0.70]]

    /// A level drawn from a distribution; missing with probability 0.05 whatever the class.
    static func draw(_ distribution: [Double], _ random: inout SplitMix64) -> Int {
        if random.unit() < 0.05 { return 0 }
        var x = random.unit()
        for (i, p) in distribution.enumerated() {
            if x < p { return i + 1 }
            x -= p
        }
        return distribution.count
    }

    static func patterns(count: Int, lambda: Double, seed: UInt64) -> [ComparisonPattern] {
        var random = SplitMix64(seed: seed)
        return (0..<count).map { _ in
            let match = random.unit() < lambda
            return ComparisonPattern((0..<3).map { draw(match ? trueM[$0] : trueU[$0], &random) })
        }
    }

    @Test func expectationMaximisationRecoversTheKnownParameters() {
        var model = FellegiSunterModel(comparisons: Self.comparisons)
        model.estimateU(from: PatternCounts(Self.patterns(count: 60_000, lambda: 0, seed: 1)))
        model.estimateM(from: PatternCounts(Self.patterns(count: 40_000, lambda: 0.2, seed: 2)))
        #expect(model.converged)
        #expect(abs(model.lambda - 0.2) < 0.01, "λ \(model.lambda)")
        for k in 0..<3 {
            for level in 1...Self.trueM[k].count {
                #expect(
                    abs(model.m[k][level] - Self.trueM[k][level - 1]) < 0.02, "m[\(k)][\(level)] \(model.m[k][level])")
                #expect(
                    abs(model.u[k][level] - Self.trueU[k][level - 1]) < 0.01, "u[\(k)][\(level)] \(model.u[k][level])")
            }
        }
        // The weights follow: exact agreement on a is strong evidence, disagreement counts against.
        #expect(abs(model.weight(0, level: 1) - log2(0.85 / 0.02)) < 0.15)
        #expect(model.weight(0, level: 3) < -3)
        #expect(model.weight(0, level: 0) == 0)
    }

    @Test func theSamePairsGiveTheSameModelAndMissingWeighsNothing() {
        let blocked = Self.patterns(count: 5_000, lambda: 0.3, seed: 3)
        var a = FellegiSunterModel(comparisons: Self.comparisons)
        var b = FellegiSunterModel(comparisons: Self.comparisons)
        a.estimateM(from: PatternCounts(blocked))
        b.estimateM(from: PatternCounts(blocked.reversed()))
        #expect(a.m == b.m && a.lambda == b.lambda)
        let all = ComparisonPattern([1, 1, 1])
        var partly = all
        partly.set(2, 0)
        #expect(abs(a.weight(all) - a.weight(partly) - a.weight(2, level: 1)) < 1e-12)
        #expect(FellegiSunterModel.probability(FellegiSunterModel.weight(ofProbability: 0.9)) - 0.9 < 1e-12)
    }

    @Test func aSharedRareSurnameWeighsMoreThanASharedCommonOne() throws {
        var model = FellegiSunterModel(comparisons: PersonComparison.comparisons)
        // u of the exact surname level: 1 %, the average over the population.
        var random = [ComparisonPattern](repeating: ComparisonPattern([6, 6, 3, 5, 4, 3, 2, 2]), count: 990)
        random += [ComparisonPattern](repeating: ComparisonPattern([6, 1, 3, 5, 4, 3, 2, 2]), count: 10)
        model.estimateU(from: PatternCounts(random))
        func record(_ last: String) -> MatchFeatures {
            var r = PersonRecord(source: .nppes, sourceID: last)
            (r.first, r.firstCanonical, r.last, r.zip5) = ("JOHN", "JOHN", last, "07102")
            return MatchFeatures(r)
        }
        var common = record("SMITH")
        common.lastFrequency = 0.05
        var rare = record("QUARTERMAINE")
        rare.lastFrequency = 0.0001
        let pattern = PersonComparison.compare(common, common).pattern
        #expect(pattern.level(PersonComparison.last) == 1)
        let uExact = model.u[PersonComparison.last][1]
        let typical = PersonComparison.comparisons[PersonComparison.last].typicalU
        let prior = FellegiSunterModel.priorRandomPairs
        #expect(abs(uExact - (10 + prior * typical[1] / typical.dropFirst().reduce(0, +)) / (1000 + prior)) < 1e-9)
        let commonWeight = PersonComparison.weight(pattern, candidate: common, model: model)
        let rareWeight = PersonComparison.weight(pattern, candidate: rare, model: model)
        #expect(abs((rareWeight - commonWeight) - log2(0.05 / 0.0001)) < 1e-9)
        #expect(abs((commonWeight - model.weight(pattern)) - log2(uExact / 0.05)) < 1e-9)
        #expect(commonWeight < model.weight(pattern) && rareWeight > model.weight(pattern))
        // The explanation shows the adjustment.
        let json =
            try JSONSerialization.jsonObject(
                with: Data(PersonComparison.explanation(rare, rare, model: model).utf8)) as? [String: Any]
        let fields = try #require(json?["fields"] as? [[String: Any]])
        let last = try #require(fields.first { $0["field"] as? String == "last_name" })
        #expect(last["level"] as? String == "exact")
        #expect(abs((last["term_frequency"] as? Double ?? 0) - log2(uExact / 0.0001)) < 0.001)
    }

    @Test func comparatorsSeeTheFourKindsOfTypo() {
        func one(_ a: String, _ b: String) -> Bool { Comparators.withinOneEdit(Array(a.utf8), Array(b.utf8)) }
        #expect(one("MARTINEZ", "MARTINEZ"))
        #expect(one("MARTINEZ", "MARTINEEZ"))  // insertion
        #expect(one("MARTINEZ", "MARTNEZ"))  // deletion
        #expect(one("MARTINEZ", "MARTIMEZ"))  // substitution
        #expect(one("MARTINEZ", "MARTNIEZ"))  // transposition
        #expect(!one("MARTINEZ", "MRATNIEZ"))
        #expect(!one("MARTINEZ", "MARTIN"))
        #expect(Comparators.sharesWord(Array("GARCIA LOPEZ".utf8), Array("LOPEZ".utf8)))
        #expect(!Comparators.sharesWord(Array("GARCIA".utf8), Array("LOPEZ".utf8)))
        #expect(Comparators.streetNumber("100 Main St, Ste 2") == "100")
        #expect(Comparators.streetNumber("Main St") == nil)
        #expect(Comparators.streetWords("100 Main Street Suite 2") == "MAIN ST STE")
    }

    @Test func personComparisonsReadNicknamesInitialsAndSwappedNames() {
        func features(_ first: String, _ last: String, zip: String = "07102", city: String = "NEWARK") -> MatchFeatures
        {
            var r = PersonRecord(source: .crm, sourceID: first + last)
            r.first = first
            r.firstCanonical = NameNormalizer.canonicalFirst(first)
            r.last = last
            r.zip5 = zip
            r.city = city
            r.state = "NJ"
            return MatchFeatures(r)
        }
        let william = features("WILLIAM", "SMITH")
        #expect(PersonComparison.compare(features("BILL", "SMITH"), william).pattern.level(PersonComparison.first) == 2)
        #expect(PersonComparison.compare(features("W", "SMITH"), william).pattern.level(PersonComparison.first) == 4)
        #expect(
            PersonComparison.compare(features("WILIAM", "SMITH"), william).pattern.level(PersonComparison.first) == 3)
        let swapped = PersonComparison.compare(features("SMITH", "WILLIAM"), william)
        #expect(swapped.swapped)
        #expect(swapped.pattern.level(PersonComparison.first) == 1 && swapped.pattern.level(PersonComparison.last) == 1)
        let level = { (k: Int, a: MatchFeatures, b: MatchFeatures) in PersonComparison.compare(a, b).pattern.level(k) }
        #expect(level(PersonComparison.zip, features("A", "B", zip: "07102"), william) == 1)
        #expect(level(PersonComparison.zip, features("A", "B", zip: "07120"), william) == 2)  // transposed digits
        #expect(level(PersonComparison.zip, features("A", "B", zip: "07199"), william) == 3)
        #expect(level(PersonComparison.zip, features("A", "B", zip: "08540"), william) == 4)
        #expect(level(PersonComparison.city, features("A", "B", city: "NEWARC"), william) == 2)
        #expect(level(PersonComparison.zip, features("A", "B", zip: ""), william) == 0)
    }

    @Test func aMoveCostsOnceNotOncePerPlaceField() {
        var model = FellegiSunterModel(comparisons: PersonComparison.comparisons)
        let moved = ComparisonPattern([1, 1, 0, 5, 4, 3, 2, 1])
        let independent = model.weight(moved)
        model.moverComparisons = [
            PersonComparison.address, PersonComparison.zip, PersonComparison.city, PersonComparison.state,
        ]
        model.moverShare = 0.05
        let placeBits = [PersonComparison.address, PersonComparison.zip, PersonComparison.city, PersonComparison.state]
            .map { model.weight($0, level: moved.level($0)) }.reduce(0, +)
        #expect(placeBits < -10)
        #expect(abs(model.weight(moved) - (independent - placeBits + log2(0.95 * exp2(placeBits) + 0.05))) < 1e-9)
        #expect(model.weight(moved) > independent - placeBits + log2(0.05) - 0.01)
        // Agreement on the place still counts in full (less a hair).
        let stayed = ComparisonPattern([1, 1, 0, 1, 1, 1, 1, 1])
        var plain = model
        plain.moverComparisons = []
        #expect(abs(model.weight(stayed) - plain.weight(stayed)) < 0.1)
    }

    @Test func oneRecordMatchesAtMostOnePersonSoTwoNamesakesSplitTheProbability() {
        let one = PhysicianMatcher.recordProbabilities([(7, 10.0)], prior: -11, share: 0.99, candidates: 2_000)
        let two = PhysicianMatcher.recordProbabilities(
            [(7, 10.0), (8, 10.0)], prior: -11, share: 0.99, candidates: 2_000)
        #expect(one[0].probability > 0.9)
        #expect(abs(two[0].probability - two[1].probability) < 1e-12 && two[0].probability < 0.5)
        #expect(abs(two[0].probability + two[1].probability - one[0].probability) < 0.01)
        // π by EM: queries with a strong candidate and queries with none.
        let share = PhysicianMatcher.matchShare(
            Array(repeating: [(1, 20.0)], count: 90) + Array(repeating: [], count: 10), prior: -11, candidates: 2_000)
        #expect(abs(share - 0.9) < 0.01)
    }
}
