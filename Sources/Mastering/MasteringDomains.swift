import Foundation
import MeshRuntime

/// The mastered domains (physician-master, payer-master, product-master, geo-master).
public enum MasteringDomains {
    /// - Parameter stewardOverrides: the forced matches and non-matches file (`config/steward-overrides.csv`).
    public static func all(stewardOverrides: URL? = nil) throws -> [Domain] {
        let overrides = try stewardOverrides.map(StewardOverrides.load(from:)) ?? StewardOverrides()
        return [
            PhysicianMaster.domain(overrides: overrides), ReferenceMasters.payerMaster, ReferenceMasters.productMaster,
            ReferenceMasters.geoMaster,
        ]
    }
}
