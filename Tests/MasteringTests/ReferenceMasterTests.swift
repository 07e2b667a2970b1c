import Foundation
import GRDB
import Ingest
import MeshRuntime
import MeshTestSupport
import Testing

@testable import Mastering

struct PayerMasterTests {
    @Test func claimsAndRebateKeysResolveToPlans() async throws {
        let dir = try TemporaryDirectory("payer")
        defer { dir.remove() }
        let feeds = dir.url.appendingPathComponent("feeds")
        for (date, lives) in [("2024-01-01", 1000), ("2024-02-01", 1200)] {
            try PeopleFixture.write(
                feeds, "formulary", date, "formulary.xml",
                """
                <formularyFile asOf="\(date)">
                  <payer id="PY1" name="Acme Health">
                    <pbm id="PBM1" name="Scripts"/>
                    <plan id="PL1" name="Acme Gold" channel="COMMERCIAL" lives="\(lives)" state="NJ">
                      <bin>610014</bin><pcn>ADV</pcn><group>G1</group>
                      <coverage ndc11="12345678901" tier="3" pa="N" st="N" ql="N" effective="2024-01-01"/>
                    </plan>
                    <plan id="PL2" name="Acme Senior" channel="MEDICARE_D" lives="500" state="NJ">
                      <bin>610015</bin><pcn>MED</pcn><group>G2</group>
                    </plan>
                  </payer>
                </formularyFile>
                """)
        }
        try PeopleFixture.write(
            feeds, "claims", "2024-02-05", "claims.txt",
            """
            CLAIM_ID|PATIENT_TOKEN|FILL_DATE|NDC11|PRESCRIBER_NPI|BIN|PCN|GROUP_ID|DAYS_SUPPLY|QUANTITY|CLAIM_STATUS|REJECT_CODE|PATIENT_PAY|REVERSES_CLAIM_ID
            C1|t|20240110|12345678901||610014|ADV|G1|30|30|P||10|
            C2|t|20240110|12345678901||610015|MED|OTHER|30|30|P||10|
            C3|t|20240110|12345678901||999999|X|Y|30|30|R|75|0|
            C4|t|20240111|12345678901||999999|X|Y|30|30|R|75|0|

            """)
        try PeopleFixture.write(
            feeds, "rebates", "2024-04-15", "rebates.csv",
            """
            INVOICE_ID,CONTRACT_ID,PAYER_ID,PLAN_ID,NDC11,QUARTER,UNITS,WAC_AMOUNT,REBATE_PCT,REBATE_AMOUNT
            I1,K1,PY1,PL1,12345678901,2024Q1,100,1000.00,0.15,150.00
            I2,K1,PY1,,12345678901,2024Q1,100,1000.00,0.10,100.00

            """)
        let mesh = try PeopleFixture.mesh(home: dir.url.appendingPathComponent("home"))
        let summary = try await PeopleFixture.run(mesh, feeds: feeds)
        #expect(
            summary.outcomes["payer-master"]?.status.published == true,
            "\(summary.outcomes["payer-master"]?.message ?? "")")
        let (queue, _) = try mesh.snapshot(attaching: ["payer-master"])
        let xref = try await queue.read { db in
            try Row.fetchAll(
                db, sql: "SELECT source, source_key, plan_id, match_rule FROM payer_master.plan_xref ORDER BY 1, 2"
            )
            .map { "\($0[0] as String) \($0[1] as String) \(($0[2] as String?) ?? "-") \($0[3] as String)" }
        }
        #expect(
            xref == [
                "claims 610014|ADV|G1 PL1 bin_pcn_group", "claims 610015|MED|OTHER PL2 bin_pcn",
                "claims 999999|X|Y - unresolved",
                "formulary PL1 PL1 exact", "formulary PL2 PL2 exact", "rebates PL1 PL1 exact",
                "rebates payer:PY1 - payer_level",
            ])
        let lives = try await queue.read { db in
            try Int.fetchOne(db, sql: "SELECT lives FROM payer_master.plan WHERE plan_id = 'PL1'")
        }
        #expect(lives == 1200)
        let unresolved = try await queue.read { db in
            try Row.fetchAll(db, sql: "SELECT source_key, claims FROM payer_master.unresolved_keys")
        }
        #expect(unresolved.map { "\($0[0] as String)=\($0[1] as Int)" } == ["999999|X|Y=2"])
    }
}
