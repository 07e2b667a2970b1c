import MeshRuntime

/// The star-schema marts (npp-mart, physician-mart, payer-mart).
public enum WarehouseDomains {
    public static func all() -> [Domain] { [] }
}
