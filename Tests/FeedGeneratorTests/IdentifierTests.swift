import Foundation
import Testing

@testable import FeedGenerator

struct IdentifierTests {
    @Test func theCheckDigitFollowsTheNPIStandard() {
        // CMS's published example: 123456789 gets check digit 3.
        #expect(npiCheckDigit("123456789") == 3)
        #expect(isValidNPI("1234567893"))
        #expect(!isValidNPI("1234567894"))
    }

    @Test func npisAreValidWhereMeantToBe() throws {
        let world = try TinyWorld()
        defer { world.remove() }
        let nppes = try world.records("nppes").map { $0.fields["NPI"]! }
        #expect(!nppes.isEmpty && nppes.allSatisfy(isValidNPI))
        #expect(try world.records("nppes").contains { $0.fields["Entity Type Code"] == "2" })
        for feed in ["ama", "xponent"] {
            let npis = try world.records(feed).compactMap { $0.fields["NPI"] }
            #expect(npis.contains(""), "\(feed) leaves some NPIs empty")
            #expect(npis.filter { !$0.isEmpty }.allSatisfy(isValidNPI), "\(feed)")
        }
        let claims = try world.records("claims").map { $0.fields["PRESCRIBER_NPI"]! }
        #expect(claims.filter { !$0.isEmpty }.allSatisfy(isValidNPI))
        // CRM: valid, empty, or deliberately mistyped (one digit off, so the check digit fails).
        let crm = try world.objects("crm_accounts").map { $0["NPI_vod__c"] as! String }
        let mistyped = crm.filter { !$0.isEmpty && !isValidNPI($0) }
        #expect(crm.contains(""))
        #expect(!mistyped.isEmpty && mistyped.count * 5 < crm.count)
    }

    @Test func everySourceIdMapsToOneTruth() throws {
        let world = try TinyWorld()
        defer { world.remove() }
        let text = try String(contentsOf: world.root.appendingPathComponent("truth/source_map.csv"), encoding: .utf8)
        var truth: [String: String] = [:]
        for line in text.split(separator: "\n").dropFirst() {
            let f = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            let key = "\(f[0])|\(f[1])"
            #expect(truth[key] == nil || truth[key] == f[2], "\(key) maps to two truths")
            truth[key] = f[2]
        }
        for npi in try world.records("nppes").map({ $0.fields["NPI"]! }) { #expect(truth["nppes|\(npi)"] != nil) }
        for me in try world.records("ama").map({ $0.fields["ME_NUMBER"]! }) { #expect(truth["ama|\(me)"] != nil) }
        for id in try world.records("xponent").map({ $0.fields["PRESCRIBER_ID"]! }) {
            #expect(truth["xponent|\(id)"] != nil)
        }
        for npi in try world.records("claims").map({ $0.fields["PRESCRIBER_NPI"]! }) where !npi.isEmpty {
            #expect(truth["claims|\(npi)"] != nil)
        }
        for id in try world.objects("crm_accounts").map({ $0["Id"] as! String }) { #expect(truth["crm|\(id)"] != nil) }
        // Plans: every formulary plan, claims triple and rebate plan id is in the plan map.
        let plans = try String(contentsOf: world.root.appendingPathComponent("truth/plan_map.csv"), encoding: .utf8)
        let planKeys = Set(
            plans.split(separator: "\n").dropFirst().map { $0.split(separator: ",").prefix(2).joined(separator: "|") })
        for record in try world.records("claims") {
            let f = record.fields
            #expect(planKeys.contains("claims|\(f["BIN"]!)|\(f["PCN"]!)|\(f["GROUP_ID"]!)"))
        }
        for record in try world.records("rebates") where !record.fields["PLAN_ID"]!.isEmpty {
            #expect(planKeys.contains("rebates|\(record.fields["PLAN_ID"]!)"))
        }
        #expect(plans.contains(",UNRESOLVED"))
    }
}
