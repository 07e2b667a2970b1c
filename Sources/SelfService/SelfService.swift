import MeshRuntime

/// The self-service extracts (field-extracts, brand-extracts), each also written as CSV and SQLite files with a
/// manifest under `HOME/extracts/DOMAIN/` (``ExtractExport``).
public enum SelfServiceDomains {
    public static func all() -> [Domain] { [FieldExtracts.domain, BrandExtracts.domain] }
}
