import MeshRuntime

/// The mastered domains (physician-master, payer-master, ...).
public enum MasteringDomains {
    public static func all() -> [Domain] { [] }
}
