import Foundation
import GRDB
import MeshRuntime
import MeshTestSupport
import Testing

@testable import Mastering

/// Prescriber ids that name no registry record: provisional physicians, kept apart, then merged into the
/// registry-backed physician when NPPES and AMA deliver that person, keeping the provisional id.
struct ProvisionalPrescriberTests {
    static let newcomer = PeopleFixture.npi("444444444")

    @Test func aProvisionalPrescriberMergesIntoItsNPPESRecordKeepingItsPhysicianID() async throws {
        let dir = try TemporaryDirectory("provisional")
        defer { dir.remove() }
        let feeds = dir.url.appendingPathComponent("feeds")
        // Weeks of Rx and claims before any registry file: one prescriber id with an NPI, one with an ME number
        // only, one with neither, and a claim naming the first one's NPI.
        try PeopleFixture.write(
            feeds, "xponent", "2024-01-15", "xponent.csv",
            """
            PRESCRIBER_ID,NPI,ME_NUMBER,PRODUCT_NDC11,WEEK_ENDING,NRX,TRX,NQTY,TQTY
            X9,\(Self.newcomer),,12345678901,2024-01-12,1,2,30,60
            X10,,03504444444,12345678901,2024-01-12,1,1,30,30
            X11,,,12345678901,2024-01-12,1,1,30,30

            """)
        try PeopleFixture.write(
            feeds, "claims", "2024-01-15", "claims.txt",
            """
            CLAIM_ID|PATIENT_TOKEN|FILL_DATE|NDC11|PRESCRIBER_NPI|BIN|PCN|GROUP_ID|DAYS_SUPPLY|QUANTITY|CLAIM_STATUS|REJECT_CODE|PATIENT_PAY|REVERSES_CLAIM_ID
            C1|t1|20240110|12345678901|\(Self.newcomer)|610014|ADV|G1|30|30|P||10|

            """)
        let mesh = try PeopleFixture.mesh(home: dir.url.appendingPathComponent("home"))
        let first = try await PeopleFixture.run(mesh, feeds: feeds)
        #expect(
            first.outcomes["physician-master"]?.status.published == true,
            "\(first.outcomes["physician-master"]?.message ?? "")")
        let x9 = try #require(try PeopleFixture.physician(of: "xponent", "X9", in: mesh))
        let x10 = try #require(try PeopleFixture.physician(of: "xponent", "X10", in: mesh))
        let x11 = try #require(try PeopleFixture.physician(of: "xponent", "X11", in: mesh))
        #expect(try PeopleFixture.physician(of: "claims", Self.newcomer, in: mesh) == x9)
        #expect(Set([x9, x10, x11]).count == 3)
        let provisional = try PeopleFixture.rows(
            mesh, "SELECT physician_id, npi, me_number, status FROM physician_master.physician ORDER BY 1")
        #expect(provisional.count == 3 && provisional.allSatisfy { $0[3] == "provisional" })
        #expect(provisional.first { $0[0] == x9 }?[1] == Self.newcomer)
        #expect(provisional.first { $0[0] == x10 }?[2] == "03504444444")

        // NPPES and AMA deliver the person (the AMA record carries the NPI): one physician, with X9's id.
        try PeopleFixture.write(
            feeds, "nppes", "2024-02-05", "nppes.csv",
            """
            \(PeopleFixture.nppesHeader)
            "\(Self.newcomer)","1","AARON","ZOE","","MD","3 BAY ST","HOBOKEN","NJ","07030","207R00000X","01/02/2015",""

            """)
        try PeopleFixture.write(
            feeds, "ama", "2024-02-10", "ama.txt",
            """
            ME_NUMBER|LAST_NAME|FIRST_NAME|MIDDLE_NAME|SUFFIX|BIRTH_YEAR|GENDER|PRIMARY_SPECIALTY|SECONDARY_SPECIALTY|MAILING_ADDRESS|CITY|STATE|ZIP|NPI|MPA|DEAD_IND
            03504444444|Aaron|Zoe|||1980|F|IM||3 Bay Street|Hoboken|NJ|07030|\(Self.newcomer)|OFF|

            """)
        let second = try await PeopleFixture.run(mesh, feeds: feeds)
        #expect(second.outcomes["physician-master"]?.status.published == true)
        let kept = min(x9, x10)
        for (source, id) in [
            ("nppes", Self.newcomer), ("ama", "03504444444"), ("xponent", "X9"), ("xponent", "X10"),
            ("claims", Self.newcomer),
        ] {
            #expect(try PeopleFixture.physician(of: source, id, in: mesh) == kept, "\(source) \(id)")
        }
        #expect(try PeopleFixture.physician(of: "xponent", "X11", in: mesh) == x11)
        let golden = try #require(
            try PeopleFixture.rows(mesh, "SELECT * FROM physician_master.physician WHERE physician_id = \(kept)").first)
        #expect(golden["status"] == "active")
        #expect(golden["last_name"] == "AARON")
        #expect(golden["provider_type"] == "physician")
        let history = try PeopleFixture.rows(
            mesh,
            "SELECT physician_id, event, other_physician_id FROM physician_master.physician_history WHERE master_version = 2 ORDER BY 1, 2"
        )
        #expect(
            history.map { "\($0[0] as Int64) \($0[1] as String) \(($0[2] as Int64?).map(String.init) ?? "-")" } == [
                "\(kept) merged \(max(x9, x10))", "\(kept) registered -",
            ])
        #expect(
            try PeopleFixture.rows(
                mesh, "SELECT 1 FROM physician_master.physician WHERE physician_id = \(max(x9, x10))"
            ).isEmpty)
    }

    @Test func aRecordWithNoNameIsStillComparedByAddressAndZip() {
        var nppes = PersonRecord(source: .nppes, sourceID: PeopleFixture.jones)
        nppes.npi = PeopleFixture.jones
        (nppes.first, nppes.firstCanonical, nppes.last) = ("MARY", "MARY", "JONES")
        (nppes.address, nppes.streetNumber, nppes.city, nppes.state, nppes.zip5) = (
            "OAK AVE", "22", "TRENTON", "NJ", "08608"
        )
        var other = nppes
        (other.sourceID, other.npi, other.first, other.firstCanonical, other.last) = (
            PeopleFixture.smith, PeopleFixture.smith, "JOHN", "JOHN", "SMITH"
        )
        (other.address, other.streetNumber, other.zip5) = ("ELM RD", "9", "08601")
        var crm = PersonRecord(source: .crm, sourceID: "001A00000000000NAA")
        (crm.address, crm.streetNumber, crm.city, crm.state, crm.zip5) = ("OAK AVE", "22", "TRENTON", "NJ", "08608")
        var empty = PersonRecord(source: .crm, sourceID: "001A00000000000EAA")
        empty.state = "NJ"
        let result = PhysicianMatcher().resolve([nppes, other, crm, empty])
        #expect(result.decisions[2].rule == "probabilistic")
        #expect(result.decisions[2].cluster == result.decisions[0].cluster)
        #expect(result.decisions[3].rule == "singleton")
        #expect(result.decisions[3].reason == "no name, address or ZIP to compare")
        #expect(result.decisions.allSatisfy { $0.cluster != nil })
    }
}
