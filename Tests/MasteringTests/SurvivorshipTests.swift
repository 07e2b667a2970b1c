import Testing

@testable import Mastering

/// The rules both paths of physician-master share: how a prescriber id links, and which member wins a field.
struct SurvivorshipTests {
    @Test func aPrescriberIDLinksByNPIThenMENumberThenNotAtAll() {
        let npis = ["1234567893": 7]
        let mes = ["0123456789": 9]
        func link(_ source: PhysicianSource, npi: String?, me: String?) -> PrescriberLink<Int> {
            PrescriberLink.resolve(
                source: source, npi: npi, me: me, anchorByNPI: { npis[$0] }, anchorByME: { mes[$0] })
        }
        // A known NPI wins over a known ME number naming someone else.
        guard case .byNPI(7) = link(.xponent, npi: "1234567893", me: "0123456789") else {
            Issue.record("a known NPI should link by NPI")
            return
        }
        guard case .byME(9) = link(.xponent, npi: "1999999992", me: "0123456789") else {
            Issue.record("an unknown NPI with a known ME number should link by ME number")
            return
        }
        guard case .unmatched(let reason) = link(.claims, npi: nil, me: nil) else {
            Issue.record("a claims NPI that is not valid links to no one")
            return
        }
        #expect(reason == "no valid NPI")
        guard case .provisional = link(.xponent, npi: nil, me: nil),
            case .provisional = link(.claims, npi: "1999999992", me: nil)
        else {
            Issue.record("prescriber ids naming no registry record become provisional physicians")
            return
        }
        #expect(link(.xponent, npi: "1234567893", me: nil).rule == "npi")
    }

    @Test func aFieldGoesToTheSourcePriorityThenTheLatestDeliveryThenTheSmallestID() {
        struct Member {
            var source: PhysicianSource
            var id: String
            var npi: String?
        }
        let members = [
            Member(source: .claims, id: "1", npi: "c"), Member(source: .xponent, id: "P9", npi: "x9"),
            Member(source: .xponent, id: "P2", npi: "x2"), Member(source: .xponent, id: "P1", npi: nil),
        ]
        let winner = Survivorship.winner(members, Survivorship.npi, source: \.source, id: \.id) { $0.npi != nil }
        #expect(winner?.id == "P2")
        #expect(Survivorship.winner(members, Survivorship.meNumber, source: \.source, id: \.id) { _ in false } == nil)
        let older = Survivorship.Candidate(rank: 0, batch: "2026-01-01", id: "A")
        let newer = Survivorship.Candidate(rank: 0, batch: "2026-02-01", id: "B")
        #expect(Survivorship.wins(newer, over: older, byID: true))
        #expect(!Survivorship.wins(Survivorship.Candidate(rank: 1, batch: "2027", id: "0"), over: older, byID: true))
        // Identity sources keep a field against every prescriber id; a prescriber's own win is open again.
        #expect(Survivorship.outranksPrescribers(.crm, in: Survivorship.npi))
        #expect(!Survivorship.outranksPrescribers(.xponent, in: Survivorship.npi))
        #expect(Survivorship.outranksPrescribers(.ama, in: Survivorship.meNumber))
        #expect(!Survivorship.outranksPrescribers(nil, in: Survivorship.meNumber))
    }
}
