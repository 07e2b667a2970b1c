import MeshRuntime

/// The raw domains: one per feed.
public enum IngestDomains {
    public static func all() -> [Domain] { [] }
}
