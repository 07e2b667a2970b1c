import MeshRuntime

/// The star-schema marts (npp-mart, physician-mart, payer-mart) and the conformed dimensions they share.
public enum WarehouseDomains {
    public static func all() -> [Domain] {
        var marts = [NPPMart.domain, PhysicianMart.domain, PayerMart.domain]
        // The marts' facts rebuild only the partitions that changed, on a copy of their previous version.
        for index in marts.indices { marts[index].buildsOnPreviousVersion = true }
        return [ConformedDimensions.domain] + marts
    }
}
