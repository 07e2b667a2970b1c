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
    /// The column that splits the table into the partitions an incremental build rewrites (a week, a month),
    /// when it has one: `kitchen diff` counts rows per partition by it. Not part of the code version.
    public var partition: String?
    public init(
        table: String, description: String = "", grain: [String] = [], columns: [ColumnContract],
        partition: String? = nil
    ) {
        self.table = table
        self.description = description
        self.grain = grain
        self.columns = columns
        self.partition = partition
    }
}

/// A version that was just published and made current, as a publication hook sees it.
public struct PublishedVersion: Sendable {
    public var domain: DomainID
    public var record: VersionRecord
    /// The published, immutable SQLite file.
    public var file: URL
    public var home: URL
    public var runID: RunID
    /// Records a line in the run history under the domain.
    public let log: @Sendable (String) -> Void
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
    /// Runs once a version is published and current, with the immutable file: for example to export it as
    /// CSV files with a manifest. A failing hook is logged as a warning and never unpublishes the version.
    /// It runs beside the rest of the mesh run (the domain's readers build on the published version meanwhile),
    /// and the run finishes only once it is done.
    ///
    /// ```swift
    /// domain.afterPublish = { published in try export(published.file, to: published.home) }
    /// ```
    public var afterPublish: (@Sendable (PublishedVersion) async throws -> Void)?
    /// When true, a build starts from a byte copy of the previous published version instead of an empty
    /// database, so that steps can change only what their new input changed.
    ///
    /// The copy is used when the domain has a previous version whose file is still retained and the run is
    /// not a full refresh; the steps learn which case they are in from `StepContext.startedFromPrevious`:
    ///
    /// - `true`: the working database already holds every output and retained table of the previous
    ///   version. The recipe must bring them up to date by deleting and re-inserting the rows that changed
    ///   (`previous` is still attached read-only, for comparisons). Tables it does not touch are published
    ///   as they were. Creating a table that already exists fails, so use `CREATE TABLE IF NOT EXISTS`.
    /// - `false` (first build, full refresh, previous file removed by retention): the database is empty and
    ///   the recipe builds everything from scratch.
    ///
    /// Either way the published result must be the same for the same inputs: the version fingerprint of an
    /// incremental build equals that of a full build. Digests of tables changed in place are updated from
    /// the changed rows only (tables dropped and recreated, or whose columns changed, are digested fully).
    ///
    /// ```swift
    /// .swift("apply-batch") { context in
    ///     try await context.database.write { db in
    ///         try db.execute(sql: "CREATE TABLE IF NOT EXISTS facts (id INTEGER PRIMARY KEY, amount REAL)")
    ///         if context.startedFromPrevious {
    ///             try db.execute(sql: "DELETE FROM facts WHERE id IN (SELECT id FROM raw.batch)")
    ///             try db.execute(sql: "INSERT INTO facts SELECT id, amount FROM raw.batch")
    ///         } else {
    ///             try db.execute(sql: "INSERT INTO facts SELECT id, amount FROM raw.all_rows")
    ///         }
    ///     }
    ///     return StepReport()
    /// }
    /// ```
    public var buildsOnPreviousVersion: Bool
    /// Outputs whose changed rows the runtime keeps in the published file for consumers (needs
    /// `buildsOnPreviousVersion`): each build built on the previous version logs the rows it inserted
    /// (`mesh_sign` 1) and deleted (−1) in `mesh_changes_TABLE`, for the last `changeLogDepth` builds. A
    /// consumer building on its own previous version reads them with `StepContext.changes(of:)`: the rows of
    /// `schema.table` that changed since the version its previous build read, when the log reaches back
    /// that far. A build that starts from an empty file empties the log.
    public var changeLogs: [String] = []
    public var changeLogDepth = 4
    /// When consumers expect a new version (a service level): `status`, the domain's URL and the mesh page
    /// show on time, late or stale, and a missed deadline raises a `freshness.late` event.
    public var freshness: FreshnessSLA?
    /// The indexes consumers asked this domain to build on its tables (``InputIndex``), set by the registry.
    public internal(set) var servedIndexes: [ServedIndex] = []

    public init(
        id: DomainID, layer: String, owner: Owner, description: String,
        inputs: [InputPort] = [], outputs: [OutputPort], recipe: Recipe,
        tests: [any DataTest] = [], parameters: [String: String] = [:], retainedTables: [String] = [],
        buildsOnPreviousVersion: Bool = false
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
        self.buildsOnPreviousVersion = buildsOnPreviousVersion
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
        // Only when set, so that the code version of existing domains does not change.
        if buildsOnPreviousVersion { lines.append("builds on previous version") }
        if !changeLogs.isEmpty {
            lines.append("change logs \(changeLogs.joined(separator: ",")) depth \(changeLogDepth)")
        }
        if !servedIndexes.isEmpty {
            lines.append(
                "served indexes " + servedIndexes.map { "\($0.table)(\($0.expression))" }.joined(separator: " "))
        }
        return lines.joined(separator: "\n")
    }

    /// A short hash of the definition: changes whenever the recipe, SQL, tests or contract change.
    public var codeVersion: String { Fingerprint.sha256Hex(definitionText).prefix(16).description }
}

/// The set of domains a mesh is made of.
public struct DomainRegistry: Sendable {
    public internal(set) var domains: [DomainID: Domain] = [:]

    public init(_ domains: [Domain] = []) throws {
        for domain in domains { try register(domain) }
    }

    public mutating func register(_ domain: Domain) throws {
        guard domains[domain.id] == nil else {
            throw MeshError(.invalidDefinition, "domain \(domain.id) is registered twice")
        }
        try domain.recipe.validate(domain: domain.id)
        domains[domain.id] = domain
        distributeInputIndexes()
    }

    /// Replaces a registered domain by a changed definition of it (a kitchen's edited recipe).
    public mutating func replace(_ domain: Domain) throws {
        guard domains[domain.id] != nil else {
            throw MeshError(.unknownDomain, "domain \(domain.id) is not registered, so it cannot be replaced")
        }
        try domain.recipe.validate(domain: domain.id)
        domains[domain.id] = domain
        distributeInputIndexes()
    }

    public subscript(id: DomainID) -> Domain? { domains[id] }

    /// Every domain id, sorted.
    public var ids: [DomainID] { domains.keys.sorted() }
}
