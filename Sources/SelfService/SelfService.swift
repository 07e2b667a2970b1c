import MeshRuntime

/// The self-service extracts (field-extracts, brand-extracts).
public enum SelfServiceDomains {
    public static func all() -> [Domain] { [] }
}
