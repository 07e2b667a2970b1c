import Foundation

/// What one feed's generation wrote.
public struct FeedSummary: Sendable, Codable, Hashable {
    public var batches = 0
    /// Data rows (lines after the header; XML coverage elements for the formulary).
    public var rows = 0
    /// Keys expected after de-duplication and restatement (the latest delivery wins).
    public var distinctKeys = 0
    /// Rows made invalid on purpose (ingest quarantines them).
    public var invalidRows = 0
    public var bytes = 0
}

/// What a generation wrote.
public struct GenerationSummary: Sendable, Codable {
    public var scale: Scale
    public var seed: UInt64
    public var physicians: Int
    public var feeds: [String: FeedSummary]
    /// Bytes of every feed file written (the truth files are not counted).
    public var bytes: Int
    /// Wall-clock seconds the generation took (not written to any file, so output stays deterministic).
    public var elapsedSeconds: Double = 0

    public init(scale: Scale, seed: UInt64, physicians: Int, feeds: [String: FeedSummary]) {
        self.scale = scale
        self.seed = seed
        self.physicians = physicians
        self.feeds = feeds
        self.bytes = feeds.values.map(\.bytes).reduce(0, +)
    }
}

/// Synthetic feeds for the whole drug life, in the layouts of shared/spec/feeds.md, with ground truth.
///
/// ```swift
/// let summary = try FeedGenerator.generate(GeneratorOptions(scale: .sample, seed: 42, outputDirectory: out))
/// ```
public enum FeedGenerator {
    /// Writes `OUT/feeds/FEED/YYYY-MM-DD/FILE` and `OUT/truth/`. The same scale and seed give identical bytes.
    public static func generate(_ options: GeneratorOptions, progress: (@Sendable (String) -> Void)? = nil) throws
        -> GenerationSummary
    {
        let started = DispatchTime.now().uptimeNanoseconds
        let generation = Generation(options: options, progress: progress ?? { _ in })
        try generation.run()
        var summary = GenerationSummary(
            scale: options.scale, seed: options.seed, physicians: generation.physicians.count,
            feeds: generation.summaries)
        summary.elapsedSeconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        return summary
    }
}

/// The timeline: days since 2024-01-01; weeks end on Fridays.
enum Timeline {
    static let days = 1096  // 2024-01-01 … 2026-12-31
    static let weeks = 156  // Fridays 2024-01-05 … 2026-12-25
    static let launchDay = 14  // 2024-01-15
    static let genericWeek = 104  // Friday 2026-01-02
    /// The week of the one staged incident (a broken claims delivery, then its correction): Friday 2025-03-07.
    static let incidentWeek = 61
    static func friday(_ week: Int) -> Int { 4 + 7 * week }
    static func month(ofDay day: Int) -> Int {
        var m = 0
        while m < 36 && Day.monthStarts[m + 1] <= day { m += 1 }
        return m
    }
    enum Phase: String { case launch, growth, maturity }
    static func phase(week: Int) -> Phase { week < 26 ? .launch : week < 104 ? .growth : .maturity }

    /// The own brand's share of the basket in a week: 0 → 4% (launch) → 20% (growth) → eroding after the generic.
    static func ownShare(week: Int) -> Double {
        if week < 2 { return 0 }
        if week < 26 { return 0.04 * Double(week - 1) / 25 }
        if week < 104 { return 0.04 + 0.16 * Double(week - 26) / 78 }
        return 0.20 - 0.06 * Double(week - 104) / 52
    }
}

final class Generation {
    let options: GeneratorOptions
    let progress: (String) -> Void
    let root: URL
    var random: SeededRandom
    var physicians: [TruePhysician] = []
    var extraAMA: [TruePhysician] = []
    var zips: [Zip] = []
    var plans: [Plan] = []
    var payers: [(id: String, name: String, pbm: Int)] = []
    var pbms: [(id: String, name: String, bins: [String])] = []
    var summaries: [String: FeedSummary] = [:]
    var truth: FileWriter!
    /// Own-brand paid units by plan and quarter, for rebates.
    var ownUnits: [[Double]] = []
    /// Prescriptions by physician, year (2024, 2025) and brand, for the Part D file.
    var partdCounts: [Int32] = []
    var carriedFromLastWeek: [String] = []
    var planCumulative: [Double] = []
    /// How many territories the world has (asked for every call; counted once, after the world is built).
    lazy var territoryCount: Int = Set(zips.map(\.territory)).count
    var seenClaimNPI: [Bool] = []
    /// Plans named on a rebate invoice (for the truth's plan map).
    var rebatedPlans = Set<String>()
    /// Batch folders written per feed (delivery days).
    var batchFolders: [String: Set<Int>] = [:]
    /// The web_sessions delivery that arrives twice (byte-identical, next day): 2025-05-20.
    static let duplicatedWebDay = 505
    /// The crm_accounts weekly extract that lands three days late (extract of 2024-09-11, landed 2024-09-14).
    static let lateCRMWeek = 36

    init(options: GeneratorOptions, progress: @escaping (String) -> Void) {
        self.options = options
        self.progress = progress
        self.root = options.outputDirectory
        self.random = SeededRandom(seed: options.seed)
    }

    var scale: Scale { options.scale }
    var physicianCount: Int { options.physicianCount ?? scale.physicians }
    /// Activity (calls, email, web) grows with the world.
    var activity: Double { Double(physicianCount) / 2_000 }

    func run() throws {
        try? FileManager.default.removeItem(at: root.appendingPathComponent("feeds"))
        try? FileManager.default.removeItem(at: root.appendingPathComponent("truth"))
        buildWorld()
        truth = try FileWriter(root.appendingPathComponent("truth/source_map.csv"))
        truth.line("source,source_id,truth_id")
        try writeProducts()
        try writeNPPES()
        try writeAMA()
        try writeCRMAccounts()
        try writeAlignment()
        try writeFormulary()
        try writeRxAndClaims()
        try writeRebates()
        try writeCalls()
        try writeEmail()
        try writeWeb()
        try writeMedia()
        try writePartD()
        truth.close()
        try writeTruth()
    }

    // MARK: World

    func buildWorld() {
        var r = random.fork("world")
        let territoryCount = max(2, physicianCount * scale.territories / scale.physicians)
        let zipCount = max(territoryCount * 6, physicianCount / 8)
        for i in 0..<zipCount {
            let state = Catalog.states[i % Catalog.states.count]
            let code = String(10_000 + (i * 7_919) % 89_000).leftPad(5)
            zips.append(
                Zip(
                    code: code, city: r.pick(Catalog.cities), state: state, territory: i % territoryCount,
                    dma: i % Catalog.dmaNames.count))
        }
        var cumulative: [Double] = []
        var total = 0.0
        for s in Catalog.specialties {
            total += s.3
            cumulative.append(total)
        }
        func person(_ index: Int, npiBase: Int) -> TruePhysician {
            let female = r.chance(0.45)
            let first = female ? r.pick(Catalog.firstNamesF) : r.pick(Catalog.firstNamesM)
            let u = r.unit() * total
            let specialty = cumulative.firstIndex { u < $0 } ?? 0
            // A bijection on 0..<800M (7727 is coprime to 8·10^8), so NPIs never collide; organisations use 9xx.
            let nine = String(100_000_000 + (npiBase * 7_727 + 13) % 800_000_000)
            let npi = nine + String(npiCheckDigit(nine))
            let writerSpecialty = Catalog.specialties[specialty].4
            let writes = writerSpecialty && r.chance(0.68)
            let size = writes ? 0.27 * exp(r.gaussian() * 0.95) : 0
            let isNP = Catalog.specialties[specialty].0 == "NP"
            let status: String = {
                let u = r.unit()
                return u < 0.015 ? "deactivated" : u < 0.035 ? "retired" : u < 0.045 ? "deceased" : "active"
            }()
            let zip = r.int(0..<zipCount)
            let street = "\(r.int(1..<9_999)) \(r.pick(Catalog.streets))"
            let moved = r.chance(0.08)
            return TruePhysician(
                index: index, first: first, middle: r.pick(Catalog.middle), last: r.pick(Catalog.lastNames),
                gender: female ? "F" : "M",
                birthYear: 1945 + r.int(0..<50), specialty: specialty, npi: npi,
                me: isNP ? nil : String(r.int(1..<99) * 1_000_000_000 + index).leftPad(11),
                street: street, zip: zip, movedZip: moved ? r.int(0..<zipCount) : nil,
                movedStreet: moved ? "\(r.int(1..<9_999)) \(r.pick(Catalog.streets))" : nil, status: status, size: size,
                loyalty: 0.5 + r.unit(), inCRM: writerSpecialty && r.chance(size > 0.5 ? 0.95 : 0.65),
                crmID: "001" + hexHash("crm\(index)\(options.seed)", length: 12).uppercased() + "AAA",
                prescriberID: "XP" + String(index * 37 + 1_000_003).leftPad(8),
                credential: isNP ? "NP" : r.pick(["M.D.", "MD", "M.D.", "D.O.", "MD"]))
        }
        for i in 0..<physicianCount { physicians.append(person(i, npiBase: i)) }
        let extras = scale == .national && options.physicianCount == nil ? physicianCount * 2 / 5 : physicianCount / 20
        for i in 0..<extras {
            var p = person(physicianCount + i, npiBase: physicianCount + i)
            p.me = String(r.int(1..<99) * 1_000_000_000 + physicianCount + i).leftPad(11)
            p.size = 0
            p.inCRM = false
            extraAMA.append(p)
        }
        // Payers, PBMs, plans.
        let planCount = max(8, physicianCount * scale.plans / scale.physicians)
        let pbmCount = max(3, planCount / 15)
        for i in 0..<pbmCount {
            pbms.append(
                (
                    "PBM\(String(i + 1).leftPad(2))",
                    "PBM \(["EXPRESS", "OPTIMA", "CARELINE", "MEDPATH", "RXBRIDGE"][i % 5]) \(i + 1)",
                    (0..<3).map { String(600_000 + i * 97 + $0 * 13) }
                ))
        }
        let payerCount = max(4, planCount / 4)
        for i in 0..<payerCount {
            payers.append(
                (
                    "PY\(String(i + 1).leftPad(4))",
                    "\(["ATLAS", "BEACON", "CORNER", "DELTA", "EVERGREEN", "FRONTIER"][i % 6]) HEALTH \(i + 1)",
                    i % pbmCount
                ))
        }
        let channels = [("COMMERCIAL", 0.55), ("MEDICARE_D", 0.25), ("MEDICAID", 0.15), ("VA_DOD", 0.05)]
        for i in 0..<planCount {
            let payer = i % payerCount
            var u = r.unit()
            var channel = "COMMERCIAL"
            for (c, w) in channels {
                if u < w {
                    channel = c
                    break
                }
                u -= w
            }
            let pbm = pbms[payers[payer].pbm]
            let tripleCount = r.chance(0.3) ? 2 : 1
            let triples = (0..<tripleCount).map { k in
                (
                    pbm.bins[(i + k) % pbm.bins.count], ["ADV", "MED", "RX", "CN"][(i + k) % 4],
                    "G\(String(i * 3 + k + 100))"
                )
            }
            plans.append(
                Plan(
                    id: "PL\(String(i + 1).leftPad(6))",
                    name: "\(payers[payer].name) \(channel == "COMMERCIAL" ? "PPO" : channel) \(i + 1)",
                    payer: payer, channel: channel, lives: Int(20_000 * exp(r.gaussian())) + 1_000,
                    state: r.pick(Catalog.states),
                    triples: triples, winMonth: r.chance(0.7) ? 6 + r.int(0..<18) : 99, tightenPA: r.chance(0.6),
                    tightenST: r.chance(0.25)))
        }
        ownUnits = Array(repeating: Array(repeating: 0, count: 12), count: plans.count)
        progress(
            "world: \(physicians.count) physicians, \(extraAMA.count) AMA-only persons, \(zips.count) ZIPs, \(territoryCount) territories, \(plans.count) plans"
        )
    }

    // MARK: Helpers

    func batch(_ feed: String, day: Int, file: String, header: String?, _ body: (FileWriter) throws -> Void) throws {
        let url = root.appendingPathComponent("feeds/\(feed)/\(Day.iso(day))/\(file)")
        let writer = try FileWriter(url)
        if let header { writer.line(header) }
        try body(writer)
        writer.close()
        // A batch is a folder: a second file in the same folder (a re-delivered file) is not a new batch.
        if batchFolders[feed, default: []].insert(day).inserted { summaries[feed, default: FeedSummary()].batches += 1 }
        summaries[feed, default: FeedSummary()].rows += writer.lines - (header == nil ? 0 : 1)
        summaries[feed, default: FeedSummary()].bytes += writer.bytes
    }

    func keys(_ feed: String, _ n: Int) { summaries[feed, default: FeedSummary()].distinctKeys += n }

    func title(_ s: String) -> String { s.prefix(1) + s.dropFirst().lowercased() }

    func typo(_ s: String, _ r: inout SeededRandom) -> String {
        var chars = Array(s)
        guard chars.count > 3 else { return s }
        let i = 1 + r.int(0..<(chars.count - 2))
        if r.chance(0.5) { chars.swapAt(i, i + 1) } else { chars.remove(at: i) }
        return String(chars)
    }

    func zip9(_ zip: Zip, _ r: inout SeededRandom) -> String { zip.code + String(r.int(0..<9_999)).leftPad(4) }

    func address(_ p: TruePhysician, moved: Bool) -> (String, Zip) {
        if moved, let street = p.movedStreet, let zip = p.movedZip { return (street, zips[zip]) }
        return (p.street, zips[p.zip])
    }

    /// The month a physician's status change (or move) shows up.
    func changeMonth(_ p: TruePhysician, _ salt: Int) -> Int { 2 + (p.index * 31 + salt) % 32 }
}
