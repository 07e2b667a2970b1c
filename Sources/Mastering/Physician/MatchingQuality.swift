import GRDB
import MeshRuntime

/// Measures of physician matching for the benchmark (`pharma-mesh bench quality`): how many of the true
/// pairs blocking puts in a common block, per rule.
public enum MatchingQuality {
    /// The blocking recall over the true pairs the matcher looks for (AMA–NPPES, CRM–NPPES, CRM–AMA).
    public struct BlockingRecall: Sendable {
        public var truePairs = 0
        public var reached = 0
        /// Per rule: the true pairs it reaches, and those no other rule reaches.
        public var byRule: [(rule: String, reached: Int, only: Int)] = []
        public var recall: Double { truePairs == 0 ? 1 : Double(reached) / Double(truePairs) }
    }

    /// Reads the NPPES, AMA and CRM records of the raw domains attached to `db` (as `raw_nppes`, `raw_ama`,
    /// `raw_crm_accounts`), blocks them as physician-master does, and counts the true pairs reached. `truth`
    /// maps `source|source_id` to a person.
    public static func blockingRecall(_ db: Database, truth: [String: String], cap: Int = 500) throws
        -> BlockingRecall
    {
        let records = try PhysicianMaster.load(db, prescribers: false).records
        let candidates = records.indices.filter { records[$0].source == .nppes || records[$0].source == .ama }
        let index = BlockIndex(records, candidates: candidates, cap: cap)
        var byPerson: [String: [Int]] = [:]
        for c in candidates {
            if let person = truth["\(records[c].source.rawValue)|\(records[c].sourceID)"] {
                byPerson[person, default: []].append(c)
            }
        }
        var result = BlockingRecall()
        var reached = [Int](repeating: 0, count: index.rules.count)
        var only = [Int](repeating: 0, count: index.rules.count)
        for q in records.indices where records[q].source == .ama || records[q].source == .crm {
            guard let person = truth["\(records[q].source.rawValue)|\(records[q].sourceID)"],
                let mates = byPerson[person]
            else { continue }
            let wanted = mates.filter { $0 != q && (records[q].source == .crm || records[$0].source == .nppes) }
            guard !wanted.isEmpty else { continue }
            var rules: [Int: Set<Int>] = [:]
            let set = Set(wanted)
            index.forEachCandidate(of: records[q]) { c, r in if set.contains(c) { rules[c, default: []].insert(r) } }
            result.truePairs += wanted.count
            for c in wanted {
                guard let hit = rules[c] else { continue }
                result.reached += 1
                for r in hit { reached[r] += 1 }
                if hit.count == 1 { only[hit.first!] += 1 }
            }
        }
        result.byRule = index.rules.indices.map { (index.rules[$0].name, reached[$0], only[$0]) }
        return result
    }
}
