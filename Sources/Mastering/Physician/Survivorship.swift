/// Which member of a physician's cluster gives each field of the golden record. Both of physician-master's
/// paths use it: the full resolution (`PhysicianMaster.write`) and the weekly prescriber update
/// (`PrescriberUpdate.rematch`), so that the two cannot drift apart.
///
/// A field goes to the first source of its priority list whose record has a value; between records of one
/// source, to the most recent delivery, then to the smallest source id. Prescriber ids (Xponent, claims) carry
/// no delivery of their own, so source and id decide between them.
enum Survivorship {
    static let npi: [PhysicianSource] = [.nppes, .ama, .crm, .xponent, .claims]
    static let meNumber: [PhysicianSource] = [.ama, .xponent]
    /// Names and the address, as the registry, the masterfile and then the CRM spell them.
    static let name: [PhysicianSource] = [.nppes, .ama, .crm]
    static let credential: [PhysicianSource] = [.nppes]
    static let specialty: [PhysicianSource] = [.ama, .nppes, .crm]
    static let birthYear: [PhysicianSource] = [.ama]
    /// NPPES's taxonomy first, then AMA's and CRM's specialty; a provisional prescriber's is unknown.
    static let providerType: [PhysicianSource] = [.nppes, .ama, .crm]

    /// A candidate for a field: its rank in the priority list, its delivery and its source id.
    struct Candidate {
        var rank: Int
        var batch: String
        var id: String
    }

    /// True when `a` wins the field over `b`; `byID: false` leaves a tie to the order the members come in.
    static func wins(_ a: Candidate, over b: Candidate, byID: Bool) -> Bool {
        if a.rank != b.rank { return a.rank < b.rank }
        if a.batch != b.batch { return a.batch > b.batch }
        return byID && a.id < b.id
    }

    /// The winning member among `members` for a field with `priority`, of those `usable` says have a value.
    static func winner<M>(
        _ members: [M], _ priority: [PhysicianSource], source: (M) -> PhysicianSource, id: (M) -> String,
        usable: (M) -> Bool
    ) -> M? {
        var best: (member: M, candidate: Candidate)?
        for member in members {
            guard let rank = priority.firstIndex(of: source(member)), usable(member) else { continue }
            let candidate = Candidate(rank: rank, batch: "", id: id(member))
            if let current = best, !wins(candidate, over: current.candidate, byID: true) { continue }
            best = (member, candidate)
        }
        return best?.member
    }

    /// True when a prescriber id can never take a field from a record of `source` (an identity record that won
    /// it ranks above every prescriber source, and a prescriber id's identifiers do not change its fields).
    static func outranksPrescribers(_ source: PhysicianSource?, in priority: [PhysicianSource]) -> Bool {
        guard let source, let rank = priority.firstIndex(of: source) else { return false }
        return priority.enumerated().allSatisfy { index, other in other.isIdentity || index > rank }
    }
}

/// How a prescriber id of Xponent or claims, which carries identifiers and no name, joins a physician: by its
/// valid NPI, else by its ME number, else not at all (a claims NPI that is not valid) or as a provisional
/// physician of its own. Both paths of physician-master decide with it; `Anchor` is what the path knows the
/// physicians by (record indices in a full resolution, physician ids in the weekly update).
enum PrescriberLink<Anchor> {
    case byNPI(Anchor)
    case byME(Anchor)
    case unmatched(reason: String)
    case provisional

    static func resolve(
        source: PhysicianSource, npi: String?, me: String?, anchorByNPI: (String) throws -> Anchor?,
        anchorByME: (String) throws -> Anchor?
    ) rethrows -> PrescriberLink {
        if let npi, let anchor = try anchorByNPI(npi) { return .byNPI(anchor) }
        if let me, let anchor = try anchorByME(me) { return .byME(anchor) }
        if source == .claims && npi == nil { return .unmatched(reason: "no valid NPI") }
        return .provisional
    }

    /// The cross-walk's `match_rule` of the link.
    var rule: String {
        switch self {
        case .byNPI: "npi"
        case .byME: "me_number"
        case .unmatched: "unmatched"
        case .provisional: "provisional"
        }
    }
}
