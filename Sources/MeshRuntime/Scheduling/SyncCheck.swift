import Foundation

/// Inputs that disagree on the version of an upstream they share.
public struct SyncConflict: Sendable, Hashable, CustomStringConvertible {
    public var upstream: DomainID
    /// Input → the version of `upstream` it was built from (or is, when the input is the upstream itself).
    public var versions: [DomainID: Int]
    /// The inputs built from an older version than the newest one seen.
    public var lagging: [DomainID] {
        let newest = versions.values.max() ?? 0
        return versions.filter { $0.value < newest }.keys.sorted()
    }
    public var description: String {
        let parts = versions.sorted { $0.key < $1.key }.map { input, version in
            input == upstream ? "\(upstream) is at v\(version)" : "\(input) was built from \(upstream)@v\(version)"
        }
        return "inputs disagree on \(upstream): " + parts.joined(separator: ", ")
    }
}

/// The sync check: do a domain's inputs agree on every upstream they share?
public enum SyncCheck {
    public static func conflicts(among inputs: [DomainID: VersionRecord]) -> [SyncConflict] {
        var seen: [DomainID: [DomainID: Int]] = [:]
        for (input, record) in inputs {
            seen[input, default: [:]][input] = record.version
            for (upstream, version) in record.upstreamVersions {
                seen[DomainID(upstream), default: [:]][input] = version
            }
        }
        return seen.compactMap { upstream, versions in
            Set(versions.values).count > 1 ? SyncConflict(upstream: upstream, versions: versions) : nil
        }.sorted { $0.upstream < $1.upstream }
    }
}

enum Levenshtein {
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a.utf8)
        let b = Array(b.utf8)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }
}
