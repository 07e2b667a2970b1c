import Foundation

/// A named parameter set (`dev`, `prod`, `canary`, `sample`, ...).
public struct Variation: Codable, Sendable, Hashable {
    public var description: String?
    /// Parameters applied to every domain that declares a default for the same name.
    public var parameters: [String: String]
    /// Parameters for one domain, applied whether or not it declares them.
    public var domains: [String: [String: String]]
    /// True for a variation that never builds over the mesh it is asked of: it runs in a kitchen of its own
    /// (a canary beside production), and a run of it in a home that is not a kitchen is refused.
    public var kitchen: Bool

    public init(
        description: String? = nil, parameters: [String: String] = [:], domains: [String: [String: String]] = [:],
        kitchen: Bool = false
    ) {
        self.description = description
        self.parameters = parameters
        self.domains = domains
        self.kitchen = kitchen
    }

    enum CodingKeys: String, CodingKey { case description, parameters, domains, kitchen }
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        description = try c.decodeIfPresent(String.self, forKey: .description)
        parameters = try c.decodeIfPresent([String: String].self, forKey: .parameters) ?? [:]
        domains = try c.decodeIfPresent([String: [String: String]].self, forKey: .domains) ?? [:]
        kitchen = try c.decodeIfPresent(Bool.self, forKey: .kitchen) ?? false
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(description, forKey: .description)
        try c.encode(parameters, forKey: .parameters)
        try c.encode(domains, forKey: .domains)
        if kitchen { try c.encode(kitchen, forKey: .kitchen) }
    }
}

/// The variations of a mesh, kept in a config file in the repository (`config/variations.json`).
///
/// ```json
/// { "default": "prod",
///   "variations": { "prod": { "parameters": { "keep_weeks": "156" } },
///                   "dev":  { "parameters": { "keep_weeks": "13" }, "domains": { "orders-mart": { "sample": "0.1" } } } } }
/// ```
public struct VariationSet: Codable, Sendable, Hashable {
    public var defaultVariation: String
    public var variations: [String: Variation]

    public init(defaultVariation: String = "default", variations: [String: Variation] = ["default": Variation()]) {
        self.defaultVariation = defaultVariation
        self.variations = variations
    }

    enum CodingKeys: String, CodingKey { case defaultVariation = "default", variations }

    /// Reads a variations file; a missing file gives a single empty `default` variation.
    public static func load(from url: URL) throws -> VariationSet {
        guard FileManager.default.fileExists(atPath: url.path) else { return VariationSet() }
        do {
            return try JSONDecoder().decode(VariationSet.self, from: Data(contentsOf: url))
        } catch {
            throw MeshError(.invalidDefinition, "\(url.path) is not a valid variations file: \(error)")
        }
    }

    /// The variation of that name, or an error listing the names there are.
    public func variation(named name: String?) throws -> (String, Variation) {
        let name = name ?? defaultVariation
        guard let variation = variations[name] else {
            throw MeshError(
                .invalidDefinition,
                "unknown variation '\(name)'; the variations are: \(variations.keys.sorted().joined(separator: ", "))")
        }
        return (name, variation)
    }

    /// Domain defaults, then the variation's shared parameters (for names the domain declares), then the
    /// variation's parameters for this domain, then the run request's.
    public static func resolve(domain: Domain, variation: Variation, overrides: [String: String]) -> [String: String] {
        var result = domain.parameters
        for (key, value) in variation.parameters where result[key] != nil { result[key] = value }
        result.merge(variation.domains[domain.id.rawValue] ?? [:]) { $1 }
        result.merge(overrides) { $1 }
        return result
    }
}
