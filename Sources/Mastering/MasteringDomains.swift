import Foundation
import MeshRuntime

/// The mastered domains (physician-master, payer-master, product-master, geo-master).
public enum MasteringDomains {
    /// - Parameter stewardOverrides: the forced matches and non-matches file (`config/steward-overrides.csv`).
    public static func all(stewardOverrides: URL? = nil) throws -> [Domain] {
        let overrides = try stewardOverrides.map(StewardOverrides.load(from:)) ?? StewardOverrides()
        var physicians = PhysicianMaster.domain(overrides: overrides)
        physicians.freshness = FreshnessSLA(
            .weekly(weekday: 2), hour: 7, description: "by Monday 07:00 UTC, with the week's prescriber ids resolved")
        var payers = ReferenceMasters.payerMaster
        payers.freshness = FreshnessSLA(.monthly(day: 5), hour: 7, description: "by the 5th of the month 07:00 UTC")
        return [physicians, payers, ReferenceMasters.productMaster, ReferenceMasters.geoMaster]
    }
}
