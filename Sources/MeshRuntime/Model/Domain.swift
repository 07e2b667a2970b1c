import Foundation

/// Who answers for a domain.
public struct Owner: Sendable, Hashable, Codable {
    public var team: String
    public var contact: String
    public init(team: String, contact: String) {
        self.team = team
        self.contact = contact
    }
}

/// Where a domain's data comes from.
public enum InputPort: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The published outputs of another domain, attached read-only under its schema name.
    case domain(DomainID)
    /// An external source (a raw feed) whose changes the caller of a run reports.
    case source(String)

    public var domainID: DomainID? {
        if case .domain(let id) = self { return id }
        return nil
    }

    public var description: String {
        switch self {
        case .domain(let id): return id.rawValue
        case .source(let name): return "source:\(name)"
        }
    }
}

/// One column of a published table's contract.
public struct ColumnContract: Sendable, Hashable, Codable {
    public var name: String
    /// SQLite type affinity the column is declared with: `TEXT`, `INTEGER`, `REAL`, `NUMERIC`.
    public var type: String
    public var description: String
    public init(_ name: String, _ type: String, _ description: String = "") {
        self.name = name
        self.type = type
        self.description = description
    }
}

/// A published table: the public contract consumers and analysts rely on.
public struct OutputPort: Sendable, Hashable, Codable {
    public var table: String
    public var description: String
    /// The columns that identify one row.
    public var grain: [String]
    public var columns: [ColumnContract]
    public init(table: String, description: String = "", grain: [String] = [], columns: [ColumnContract]) {
        self.table = table
        self.description = description
        self.grain = grain
        self.columns = columns
    }
}

/// A data product of the mesh: what it reads, what it publishes, how it is built and tested.
///
/// A team adds a domain by declaring one value and registering it:
///
/// ```swift
/// let totals = Domain(
///     id: "order-totals", layer: "integrated", owner: Owner(team: "sales", contact: "sales@example.com"),
///     description: "Order totals by day",
///     inputs: [.domain("raw-orders")],
///     outputs: [OutputPort(table: "daily", grain: ["day"], columns: [ColumnContract("day", "TEXT"), ColumnContract("total", "INTEGER")])],
///     recipe: Recipe([.sql("daily", "CREATE TABLE daily AS SELECT day, SUM(amount) AS total FROM raw_orders.orders GROUP BY day")]),
///     tests: [NotNull(table: "daily", columns: ["day"], severity: .fail)])
/// try registry.register(totals)
/// ```
public struct Domain: Sendable {
    public var id: DomainID
    public var layer: String
    public var owner: Owner
    public var description: String
    public var inputs: [InputPort]
    public var outputs: [OutputPort]
    public var recipe: Recipe
    /// Tests on the published outputs, run after the whole recipe (steps carry their own tests too).
    public var tests: [any DataTest]
    /// Default parameters; variations and run requests override them.
    public var parameters: [String: String]
    /// Working tables kept in the published version besides the outputs (for example state that an
    /// incremental build reads back from the previous version). Every other non-output table is dropped.
    public var retainedTables: [String]

    public init(
        id: DomainID, layer: String, owner: Owner, description: String,
        inputs: [InputPort] = [], outputs: [OutputPort], recipe: Recipe,
        tests: [any DataTest] = [], parameters: [String: String] = [:], retainedTables: [String] = []
    ) {
        self.id = id
        self.layer = layer
        self.owner = owner
        self.description = description
        self.inputs = inputs
        self.outputs = outputs
        self.recipe = recipe
        self.tests = tests
        self.parameters = parameters
        self.retainedTables = retainedTables
    }

    /// The domains this one reads.
    public var upstreamDomains: [DomainID] { inputs.compactMap(\.domainID) }

    /// The external sources this one reads.
    public var sources: [String] {
        inputs.compactMap { if case .source(let name) = $0 { return name } else { return nil } }
    }

    /// The text hashed into the code version: everything that defines how the domain is built.
    public var definitionText: String {
        var lines = ["domain \(id)", "inputs \(inputs.map(\.description).sorted().joined(separator: ","))"]
        for output in outputs {
            lines.append("output \(output.table) grain \(output.grain.joined(separator: ","))")
            lines.append(contentsOf: output.columns.map { "  \($0.name) \($0.type)" })
        }
        lines.append(contentsOf: recipe.definitionLines(prefix: ""))
        lines.append(contentsOf: tests.map { "test \($0.definition)" })
        lines.append("retained \(retainedTables.sorted().joined(separator: ","))")
        return lines.joined(separator: "\n")
    }

    /// A short hash of the definition: changes whenever the recipe, SQL, tests or contract change.
    public var codeVersion: String { Fingerprint.sha256Hex(definitionText).prefix(16).description }
}

/// The set of domains a mesh is made of.
public struct DomainRegistry: Sendable {
    public private(set) var domains: [DomainID: Domain] = [:]

    public init(_ domains: [Domain] = []) throws {
        for domain in domains { try register(domain) }
    }

    public mutating func register(_ domain: Domain) throws {
        guard domains[domain.id] == nil else {
            throw MeshError(.invalidDefinition, "domain \(domain.id) is registered twice")
        }
        try domain.recipe.validate(domain: domain.id)
        domains[domain.id] = domain
    }

    public subscript(id: DomainID) -> Domain? { domains[id] }

    /// Every domain id, sorted.
    public var ids: [DomainID] { domains.keys.sorted() }
}
