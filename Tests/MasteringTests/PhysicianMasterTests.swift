import FeedFormats
import Foundation
import GRDB
import Ingest
import MeshRuntime
import MeshTestSupport
import Testing

@testable import Mastering

/// Hand-made feeds in the vendor layouts: a few people seen differently by each source.
enum PeopleFixture {
    static func npi(_ nine: String) -> String {
        nine + String(NPI.checkDigit(forFirstNine: nine.map { Int(String($0))! }))
    }
    static let smith = npi("123456789")
    static let jones = npi("987654321")
    static let brown = npi("555555555")
    static let org = npi("111111111")

    static let nppesHeader = [
        "NPI", "Entity Type Code", "Provider Last Name (Legal Name)", "Provider First Name", "Provider Middle Name",
        "Provider Credential Text", "Provider First Line Business Practice Location Address",
        "Provider Business Practice Location Address City Name",
        "Provider Business Practice Location Address State Name",
        "Provider Business Practice Location Address Postal Code", "Healthcare Provider Taxonomy Code_1",
        "Provider Enumeration Date",
        "NPI Deactivation Date",
    ].map { "\"\($0)\"" }.joined(separator: ",")

    static func write(_ root: URL, _ feed: String, _ date: String, _ file: String, _ text: String) throws {
        let folder = root.appendingPathComponent("\(feed)/\(date)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try text.write(to: folder.appendingPathComponent(file), atomically: true, encoding: .utf8)
    }

    static func feeds(in root: URL) throws {
        try write(
            root, "nppes", "2024-01-05", "nppes.csv",
            """
            \(nppesHeader)
            "\(smith)","1","SMITH","WILLIAM","J","M.D.","100 MAIN ST","NEWARK","NJ","071021234","207R00000X","05/23/2007",""
            "\(jones)","1","JONES","MARY","","MD","22 OAK AVE","TRENTON","NJ","08608","207RG0100X","01/02/2010",""
            "\(brown)","1","BROWN","ROBERT","","DO","9 ELM RD","CAMDEN","NJ","08101","207Q00000X","01/02/2010","03/01/2023"
            "\(org)","2","ACME CLINIC","","","","1 CLINIC WAY","NEWARK","NJ","07102","261QM1300X","01/02/2010",""

            """)
        try write(
            root, "ama", "2024-01-10", "ama.txt",
            """
            ME_NUMBER|LAST_NAME|FIRST_NAME|MIDDLE_NAME|SUFFIX|BIRTH_YEAR|GENDER|PRIMARY_SPECIALTY|SECONDARY_SPECIALTY|MAILING_ADDRESS|CITY|STATE|ZIP|NPI|MPA|DEAD_IND
            03501234567|Smith|Bill|J||1970|M|IM||100 Main Street|Newark|NJ|07102||OFF|
            03509999999|Jones|Mary|||1975|F|GE||22 Oak Avenue|Trenton|NJ|08608|\(jones)|OFF|
            03507777777|Green|Alice|||1950|F|FM||5 Pine Ct|Princeton|NJ|08540||RET|

            """)
        try write(
            root, "crm_accounts", "2024-01-12", "accounts.jsonl",
            """
            {"Id":"001A000000000001AA","NPI_vod__c":"","FirstName":"Bill","LastName":"Smith MD","Specialty_1_vod__c":"Internal Medicine","Primary_Address_Line_1":"100 Main St Ste 2","City":"Newark","State":"NJ","Zip":"07102","Territory_vod__c":"T01","IsDeleted":false,"LastModifiedDate":"2024-01-11T10:00:00Z"}
            {"Id":"001A000000000002AA","NPI_vod__c":"","FirstName":"Jones","LastName":"Mary","Specialty_1_vod__c":"Gastroenterology","Primary_Address_Line_1":"22 Oak Ave","City":"Trenton","State":"NJ","Zip":"08608","Territory_vod__c":"T02","IsDeleted":false,"LastModifiedDate":"2024-01-11T10:00:00Z"}
            {"Id":"001A000000000003AA","NPI_vod__c":"","FirstName":"Zed","LastName":"Nobody","Specialty_1_vod__c":"Dermatology","Primary_Address_Line_1":"1 Far Rd","City":"Reno","State":"NV","Zip":"89501","Territory_vod__c":"T09","IsDeleted":false,"LastModifiedDate":"2024-01-11T10:00:00Z"}
            {"Id":"001A000000000004AA","NPI_vod__c":"\(brown)","FirstName":"Rob","LastName":"Brown","Specialty_1_vod__c":"Family Practice","Primary_Address_Line_1":"9 Elm Rd","City":"Camden","State":"NJ","Zip":"08101","Territory_vod__c":"T02","IsDeleted":false,"LastModifiedDate":"2024-01-11T10:00:00Z"}

            """)
        try write(
            root, "xponent", "2024-01-15", "xponent.csv",
            """
            PRESCRIBER_ID,NPI,ME_NUMBER,PRODUCT_NDC11,WEEK_ENDING,NRX,TRX,NQTY,TQTY
            X1,\(smith),,12345678901,2024-01-12,1,2,30,60
            X2,,03509999999,12345678901,2024-01-12,1,1,30,30
            X3,,,12345678901,2024-01-12,1,1,30,30

            """)
        try write(
            root, "claims", "2024-01-15", "claims.txt",
            """
            CLAIM_ID|PATIENT_TOKEN|FILL_DATE|NDC11|PRESCRIBER_NPI|BIN|PCN|GROUP_ID|DAYS_SUPPLY|QUANTITY|CLAIM_STATUS|REJECT_CODE|PATIENT_PAY|REVERSES_CLAIM_ID
            C1|t1|20240110|12345678901|\(smith)|610014|ADV|G1|30|30|P||10|
            C2|t2|20240110|12345678901|1999999999|610014|ADV|G1|30|30|P||10|

            """)
    }

    static func mesh(home: URL, overrides: URL? = nil) throws -> Mesh {
        try ToyMesh.mesh(IngestDomains.all() + MasteringDomains.all(stewardOverrides: overrides), home: home)
    }

    static func run(_ mesh: Mesh, feeds: URL) async throws -> RunSummary {
        _ = try Landing.land(feeds: feeds, home: mesh.home)
        return try await mesh.run(RunRequest(sourceStates: try Landing.sourceStates(home: mesh.home)))
    }

    static func rows(_ mesh: Mesh, _ sql: String) throws -> [Row] {
        let (queue, _) = try mesh.snapshot(attaching: ["physician-master"])
        return try queue.read { db in try Row.fetchAll(db, sql: sql) }
    }

    static func physician(of source: String, _ id: String, in mesh: Mesh) throws -> Int64? {
        try rows(
            mesh,
            "SELECT physician_id FROM physician_master.physician_xref WHERE source = '\(source)' AND source_id = '\(id)'"
        ).first?[0]
    }
}

struct PhysicianMasterTests {
    @Test func sourcesResolveIntoGoldenRecords() async throws {
        let dir = try TemporaryDirectory("master")
        defer { dir.remove() }
        let feeds = dir.url.appendingPathComponent("feeds")
        try PeopleFixture.feeds(in: feeds)
        let mesh = try PeopleFixture.mesh(home: dir.url.appendingPathComponent("home"))
        let summary = try await PeopleFixture.run(mesh, feeds: feeds)
        #expect(
            summary.outcomes["physician-master"]?.status.published == true,
            "\(summary.outcomes["physician-master"]?.message ?? "")")

        func id(_ source: String, _ sourceID: String) throws -> Int64? {
            try PeopleFixture.physician(of: source, sourceID, in: mesh)
        }
        let smith = try #require(try id("nppes", PeopleFixture.smith))
        #expect(try id("ama", "03501234567") == smith)  // Bill for William, no NPI: probabilistic
        #expect(try id("crm", "001A000000000001AA") == smith)  // credential in the last name field
        #expect(try id("xponent", "X1") == smith)
        #expect(try id("claims", PeopleFixture.smith) == smith)
        let jones = try #require(try id("nppes", PeopleFixture.jones))
        #expect(try id("crm", "001A000000000002AA") == jones)  // first and last swapped
        #expect(try id("xponent", "X2") == jones)  // ME number only
        #expect(try id("crm", "001A000000000004AA") == (try id("nppes", PeopleFixture.brown)))
        #expect(jones != smith)
        // Explicit unmatched rows with reasons.
        let unmatched = try PeopleFixture.rows(
            mesh,
            "SELECT source, source_id, unmatched_reason FROM physician_master.physician_xref WHERE physician_id IS NULL ORDER BY 1, 2"
        )
        #expect(
            unmatched.map { "\($0[0] as String) \($0[1] as String)" } == [
                "claims 1999999999", "nppes \(PeopleFixture.org)",
            ])
        #expect(unmatched[1]["unmatched_reason"] == "organisation (entity type 2): not a physician")
        // Nothing else is dropped: a CRM account that matches no one is a golden record of its own, and an
        // Xponent prescriber id with no identifier a provisional physician.
        let alone = try PeopleFixture.rows(
            mesh,
            "SELECT source, source_id, match_rule, unmatched_reason FROM physician_master.physician_xref WHERE match_rule IN ('singleton', 'provisional') ORDER BY 1, 2"
        )
        #expect(
            alone.map { "\($0[0] as String) \($0[1] as String) \($0[2] as String)" } == [
                "ama 03507777777 singleton", "crm 001A000000000003AA singleton", "xponent X3 provisional",
            ])
        #expect(alone.allSatisfy { ($0[3] as String?) != nil })

        let golden = try #require(
            try PeopleFixture.rows(mesh, "SELECT * FROM physician_master.physician WHERE physician_id = \(smith)").first
        )
        #expect(golden["npi"] == PeopleFixture.smith)
        #expect(golden["me_number"] == "03501234567")
        #expect(golden["first_name"] == "WILLIAM")
        #expect(golden["specialty"] == "Internal Medicine")
        #expect(golden["birth_year"] == 1970)
        #expect(golden["zip5"] == "07102")
        #expect(golden["status"] == "active")
        #expect(golden["is_prescriber"] == 1)
        let statuses = try PeopleFixture.rows(
            mesh,
            "SELECT COALESCE(last_name, '-'), status, provider_type FROM physician_master.physician ORDER BY 1"
        )
        #expect(
            statuses.map { "\($0[0] as String) \($0[1] as String) \($0[2] as String)" } == [
                "- provisional unknown", "BROWN deactivated physician", "Green retired physician",
                "JONES active physician", "Nobody active physician", "SMITH active physician",
            ])
        // The probabilistic links are explained, field by field.
        let explained = try PeopleFixture.rows(
            mesh,
            "SELECT source, source_id, candidate_source, match_probability, explanation FROM physician_master.match_explanation ORDER BY 1, 2"
        )
        #expect(
            explained.map { "\($0[0] as String) \($0[1] as String) \($0[2] as String)" }.contains(
                "ama 03501234567 nppes"))
        #expect(
            explained.allSatisfy { ($0[3] as Double) >= 0.9 && ($0[4] as String).contains("\"field\":\"last_name\"") })
        let probabilities = try PeopleFixture.rows(
            mesh,
            "SELECT match_rule, MIN(match_probability), MAX(match_probability) FROM physician_master.physician_xref WHERE physician_id IS NOT NULL GROUP BY 1 ORDER BY 1"
        )
        for row in probabilities where ["npi", "anchor", "me_number"].contains(row[0] as String) {
            #expect(row[1] as Double == 1 && row[2] as Double == 1)
        }
        let won = try PeopleFixture.rows(
            mesh,
            "SELECT field, source FROM physician_master.physician_field_source WHERE physician_id = \(smith) ORDER BY field"
        )
        #expect(won.map { "\($0[0] as String)=\($0[1] as String)" }.contains("specialty=ama"))
        #expect(won.map { "\($0[0] as String)=\($0[1] as String)" }.contains("last_name=nppes"))
    }

    @Test func idsAreStableAcrossRunsAndNewBatches() async throws {
        let dir = try TemporaryDirectory("master")
        defer { dir.remove() }
        let feeds = dir.url.appendingPathComponent("feeds")
        try PeopleFixture.feeds(in: feeds)
        let mesh = try PeopleFixture.mesh(home: dir.url.appendingPathComponent("home"))
        _ = try await PeopleFixture.run(mesh, feeds: feeds)
        let before = try PeopleFixture.rows(
            mesh, "SELECT source, source_id, physician_id FROM physician_master.physician_xref ORDER BY 1, 2"
        )
        .map { "\($0[0] as String)|\($0[1] as String)|\(($0[2] as Int64?).map(String.init) ?? "-")" }
        let newcomer = PeopleFixture.npi("444444444")
        try PeopleFixture.write(
            feeds, "nppes", "2024-02-05", "nppes.csv",
            """
            \(PeopleFixture.nppesHeader)
            "\(newcomer)","1","AARON","ZOE","","MD","3 BAY ST","HOBOKEN","NJ","07030","207R00000X","01/02/2015",""

            """)
        let summary = try await PeopleFixture.run(mesh, feeds: feeds)
        #expect(summary.outcomes["physician-master"]?.status.published == true)
        let after = try PeopleFixture.rows(
            mesh, "SELECT source, source_id, physician_id FROM physician_master.physician_xref ORDER BY 1, 2"
        )
        .map { "\($0[0] as String)|\($0[1] as String)|\(($0[2] as Int64?).map(String.init) ?? "-")" }
        #expect(Set(before).isSubset(of: Set(after)))
        let maxBefore = before.compactMap { Int($0.split(separator: "|")[2]) }.max()!
        #expect(try PeopleFixture.physician(of: "nppes", newcomer, in: mesh) == Int64(maxBefore + 1))
        let created = try PeopleFixture.rows(
            mesh, "SELECT COUNT(*) FROM physician_master.physician_history WHERE event = 'created'")
        #expect(created[0][0] == maxBefore + 1)
    }

    @Test func stewardOverridesForceNonMatchesAndMatches() async throws {
        let dir = try TemporaryDirectory("master")
        defer { dir.remove() }
        let feeds = dir.url.appendingPathComponent("feeds")
        try PeopleFixture.feeds(in: feeds)
        let file = dir.url.appendingPathComponent("steward-overrides.csv")
        try """
        action,source,source_id,other_source,other_source_id,note
        non_match,ama,03501234567,nppes,\(PeopleFixture.smith),two Smiths at one clinic
        match,crm,001A000000000003AA,ama,03507777777,known alias

        """.write(to: file, atomically: true, encoding: .utf8)
        let mesh = try PeopleFixture.mesh(home: dir.url.appendingPathComponent("home"), overrides: file)
        _ = try await PeopleFixture.run(mesh, feeds: feeds)
        #expect(
            try PeopleFixture.physician(of: "ama", "03501234567", in: mesh)
                != (try PeopleFixture.physician(of: "nppes", PeopleFixture.smith, in: mesh)))
        #expect(
            try PeopleFixture.physician(of: "crm", "001A000000000003AA", in: mesh)
                == (try PeopleFixture.physician(of: "ama", "03507777777", in: mesh)))
        let bad = dir.url.appendingPathComponent("bad.csv")
        try "action,source,source_id,other_source,other_source_id\nmaybe,crm,1,ama,2\n".write(
            to: bad, atomically: true, encoding: .utf8)
        #expect(throws: MeshError.self) { try StewardOverrides.load(from: bad) }
    }

    @Test func theSameInputsGiveTheSameFingerprint() async throws {
        var fingerprints: [String] = []
        for _ in 0..<2 {
            let dir = try TemporaryDirectory("master")
            defer { dir.remove() }
            let feeds = dir.url.appendingPathComponent("feeds")
            try PeopleFixture.feeds(in: feeds)
            let mesh = try PeopleFixture.mesh(home: dir.url.appendingPathComponent("home"))
            _ = try await PeopleFixture.run(mesh, feeds: feeds)
            fingerprints.append(try #require(try mesh.store.currentVersion(of: "physician-master")).fingerprint)
        }
        #expect(fingerprints[0] == fingerprints[1])
    }

    /// Runs the feeds as they are now on the mesh, and on a copy of its home with a full refresh (every record
    /// matched again, every table written afresh), and returns both physician-master versions.
    static func runBothWays(_ mesh: Mesh, feeds: URL, copy: URL) async throws -> (
        incremental: VersionRecord, full: VersionRecord, message: String
    ) {
        try FileManager.default.copyItem(at: mesh.home, to: copy)
        let summary = try await PeopleFixture.run(mesh, feeds: feeds)
        let other = try PeopleFixture.mesh(home: copy)
        _ = try Landing.land(feeds: feeds, home: copy)
        let refreshed = try await other.run(
            RunRequest(sourceStates: try Landing.sourceStates(home: copy), fullRefresh: true))
        #expect(refreshed.outcomes["physician-master"]?.status.published == true)
        let message = try mesh.store.steps(of: "physician-master", in: summary.runID).compactMap(\.message)
            .joined()
        return (
            try #require(try mesh.store.currentVersion(of: "physician-master")),
            try #require(try other.store.currentVersion(of: "physician-master")), message
        )
    }

    @Test func aNewWeekBuiltOnThePreviousVersionPublishesWhatAFullResolutionWould() async throws {
        let dir = try TemporaryDirectory("master")
        defer { dir.remove() }
        let feeds = dir.url.appendingPathComponent("feeds")
        try PeopleFixture.feeds(in: feeds)
        let mesh = try PeopleFixture.mesh(home: dir.url.appendingPathComponent("home"))
        _ = try await PeopleFixture.run(mesh, feeds: feeds)

        // A week of Rx and claims only: X6 is new with Green's ME number, X4 is new with Jones's NPI, and a
        // claim names Brown.
        try PeopleFixture.write(
            feeds, "xponent", "2024-01-22", "xponent.csv",
            """
            PRESCRIBER_ID,NPI,ME_NUMBER,PRODUCT_NDC11,WEEK_ENDING,NRX,TRX,NQTY,TQTY
            X1,\(PeopleFixture.smith),,12345678901,2024-01-19,1,1,30,30
            X6,,03507777777,12345678901,2024-01-19,1,1,30,30
            X4,\(PeopleFixture.jones),,12345678901,2024-01-19,2,2,60,60

            """)
        try PeopleFixture.write(
            feeds, "claims", "2024-01-22", "claims.txt",
            """
            CLAIM_ID|PATIENT_TOKEN|FILL_DATE|NDC11|PRESCRIBER_NPI|BIN|PCN|GROUP_ID|DAYS_SUPPLY|QUANTITY|CLAIM_STATUS|REJECT_CODE|PATIENT_PAY|REVERSES_CLAIM_ID
            C3|t3|20240117|12345678901|\(PeopleFixture.brown)|610014|ADV|G1|30|30|P||10|

            """)
        let week = try await Self.runBothWays(mesh, feeds: feeds, copy: dir.url.appendingPathComponent("copy1"))
        #expect(week.message.contains("NPPES, AMA and CRM unchanged"), "\(week.message)")
        #expect(week.incremental.tableDigests == week.full.tableDigests)
        let green = try #require(try PeopleFixture.physician(of: "ama", "03507777777", in: mesh))
        #expect(try PeopleFixture.physician(of: "xponent", "X6", in: mesh) == green)
        #expect(
            try PeopleFixture.physician(of: "xponent", "X4", in: mesh)
                == (try PeopleFixture.physician(of: "nppes", PeopleFixture.jones, in: mesh)))
        let flags = try PeopleFixture.rows(
            mesh,
            "SELECT COALESCE(last_name, '-'), is_prescriber FROM physician_master.physician ORDER BY 1")
        #expect(
            flags.map { "\($0[0] as String)=\($0[1] as Int)" } == [
                "-=1", "BROWN=1", "Green=1", "JONES=1", "Nobody=0", "SMITH=1",
            ])

        // A month with a new NPPES physician, whom a prescriber id names in the same run: every record is
        // matched again, and the tables are brought up to date in place.
        let newcomer = PeopleFixture.npi("444444444")
        try PeopleFixture.write(
            feeds, "nppes", "2024-02-05", "nppes.csv",
            """
            \(PeopleFixture.nppesHeader)
            "\(newcomer)","1","AARON","ZOE","","MD","3 BAY ST","HOBOKEN","NJ","07030","207R00000X","01/02/2015",""

            """)
        try PeopleFixture.write(
            feeds, "xponent", "2024-02-05", "xponent.csv",
            """
            PRESCRIBER_ID,NPI,ME_NUMBER,PRODUCT_NDC11,WEEK_ENDING,NRX,TRX,NQTY,TQTY
            X5,\(newcomer),,12345678901,2024-02-02,1,1,30,30

            """)
        let month = try await Self.runBothWays(mesh, feeds: feeds, copy: dir.url.appendingPathComponent("copy2"))
        #expect(month.message.contains("rows written in place"), "\(month.message)")
        #expect(month.incremental.tableDigests == month.full.tableDigests)
        #expect(
            try PeopleFixture.physician(of: "xponent", "X5", in: mesh)
                == (try PeopleFixture.physician(of: "nppes", newcomer, in: mesh)))
    }

    @Test func namesNormalise() {
        #expect(NameNormalizer.clean("Smith MD") == "SMITH")
        #expect(NameNormalizer.clean("O'Brien, M.D.") == "OBRIEN")
        #expect(NameNormalizer.canonicalFirst("BILL") == "WILLIAM")
        #expect(NameNormalizer.soundex("ROBERT") == "R163")
        #expect(NameNormalizer.soundex("RUPERT") == "R163")
        // The byte path agrees with the Character one it replaced.
        for word in ["ASHCRAFT", "TYMCZAK", "PFISTER", "HONEYMAN", "LEE", "A", "WHW", "O'BRIEN", "MCDONALD-SMITH"] {
            #expect(NameNormalizer.soundex(word) == NameNormalizer.soundexCharacters(word), "\(word)")
        }
        #expect(NameNormalizer.soundex("ASHCRAFT") == "A261")
        #expect(NameNormalizer.soundex("TYMCZAK") == "T522")
        #expect(NameNormalizer.jaroWinkler("MARTHA", "MARHTA") > 0.96)
        #expect(NameNormalizer.zip5("07102-1234") == "07102")
        #expect(NameNormalizer.zip5("0710") == "")
        #expect(NameNormalizer.zip5(" 0 7 1 0 2 ") == "07102")
        // The ASCII byte path of `words` agrees with the Unicode one, on every kind of character ASCII has.
        let ascii = String(decoding: (0..<128).map { UInt8($0) }, as: UTF8.self)
        for text in [
            "Smith MD", "O'Brien, M.D.", "mary-jane  van der berg", "123 Main St., Apt #4", "  ", ".",
            "DR. J.R.R. TOLKIEN",
            ascii, String(ascii.reversed()),
        ] {
            #expect(NameNormalizer.asciiWords(text) == NameNormalizer.unicodeWords(text), "\(text)")
        }
        #expect(NameNormalizer.words("José Núñez") == ["JOSÉ", "NÚÑEZ"])
    }
}
