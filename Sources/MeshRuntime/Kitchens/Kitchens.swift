import Foundation
import GRDB

/// What a kitchen is: a development copy of some domains of a mesh (or of another kitchen).
package struct KitchenManifest: Codable, Sendable, Hashable {
    package var name: String
    /// `production`, or the name of the kitchen it was made from.
    package var from: String
    /// The domains the kitchen builds; every other domain is read from the parent's published versions.
    package var domains: [DomainID]
    package var createdAt: Date
    /// Parameters set for the kitchen's runs, by domain.
    package var parameters: [String: [String: String]]
    package var variation: String?
    package var promotions: [KitchenPromotion]

    enum CodingKeys: String, CodingKey {
        case name, from, domains, createdAt = "created_at", parameters, variation, promotions
    }
}

/// One promotion of a kitchen into its parent.
package struct KitchenPromotion: Codable, Sendable, Hashable {
    package var at: Date
    package var runID: RunID
    /// domain → (kitchen version, version published in the parent).
    package var versions: [String: [Int]]
    enum CodingKeys: String, CodingKey { case at, runID = "run_id", versions }
}

/// The kitchens of a mesh home, in `HOME/kitchens/NAME/`: each is a mesh home of its own (runtime database,
/// lock, published versions of the domains it builds) whose other domains point at the parent's published
/// files in place, so creating one copies no data at any scale. A pin in the home that owns each file keeps
/// its retention off the file while the kitchen lives.
///
/// ```swift
/// let kitchens = Kitchens(home: home)
/// try kitchens.create("new-deciles", from: "production", domains: ["field-extracts"], registry: registry)
/// // edit HOME/kitchens/new-deciles/recipes/field-extracts/STEP.sql, then run the kitchen's mesh
/// let mesh = try kitchens.mesh("new-deciles", base: registry, configuration: configuration)
/// ```
package struct Kitchens: Sendable {
    /// The production home.
    package let root: URL
    /// Folders of the production home every kitchen shares read-only (for example landed raw batches).
    package let sharedFolders: [String]
    /// The program, whose commands the refusals suggest.
    package let product: ProductIdentity

    package init(home: URL, sharedFolders: [String] = [], product: ProductIdentity = .generic) {
        root = home.standardizedFileURL
        self.sharedFolders = sharedFolders
        self.product = product
    }

    package var directory: URL { root.appendingPathComponent("kitchens") }
    package func home(of name: String) -> URL { directory.appendingPathComponent(name) }

    /// The home a kitchen was made from.
    package func parentHome(of manifest: KitchenManifest) -> URL {
        manifest.from == "production" ? root : home(of: manifest.from)
    }

    static func validate(name: String) throws {
        guard !name.isEmpty, name.count <= 60, name != "production",
            name.allSatisfy({ ($0.isLetter && $0.isASCII) || $0.isNumber || $0 == "-" || $0 == "_" }),
            name.first!.isLetter
        else {
            throw MeshError(
                .invalid,
                "'\(name)' cannot name a kitchen: use a letter, then letters, digits, - or _ (and not 'production')")
        }
    }

    package func manifest(_ name: String) throws -> KitchenManifest {
        try Self.validate(name: name)
        let file = home(of: name).appendingPathComponent("kitchen.json")
        guard FileManager.default.fileExists(atPath: file.path) else {
            // Best-effort: the list only suggests names; a kitchen that cannot be read is named by its own error.
            let names = (try? list().map(\.name)) ?? []
            throw MeshError(
                .notFound,
                "no kitchen \(name)"
                    + (names.isEmpty
                        ? "; create one with `\(product.command(.kitchenCreate))`"
                        : "; the kitchens are: \(names.joined(separator: ", "))"))
        }
        do {
            return try Self.decoder.decode(KitchenManifest.self, from: Data(contentsOf: file))
        } catch {
            throw MeshError(
                .storage,
                "kitchen \(name)'s manifest cannot be read: \(MeshError.describe(error, file: file.path)); fix or delete it"
            )
        }
    }

    func save(_ manifest: KitchenManifest) throws {
        let data = try Self.encoder.encode(manifest)
        try data.write(to: home(of: manifest.name).appendingPathComponent("kitchen.json"), options: .atomic)
    }

    package func list() throws -> [KitchenManifest] {
        guard FileManager.default.fileExists(atPath: directory.path) else { return [] }
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        // Entries that are not kitchens (no valid name, no manifest) are not listed; a manifest that cannot be
        // read is an error naming it.
        return try names.sorted().filter { (try? Self.validate(name: $0)) != nil }.compactMap { name in
            FileManager.default.fileExists(atPath: home(of: name).appendingPathComponent("kitchen.json").path)
                ? try manifest(name) : nil
        }
    }

    /// Creates a kitchen of `domains`, made from production or from another kitchen. Instant: it records the
    /// parent's current versions and points at their files; it copies no data.
    @discardableResult
    package func create(
        _ name: String, from parent: String = "production", domains: [DomainID], registry: DomainRegistry,
        now: Date = Date()
    ) throws -> KitchenManifest {
        try Self.validate(name: name)
        let home = home(of: name)
        guard !FileManager.default.fileExists(atPath: home.path) else {
            throw MeshError(.invalid, "a kitchen named \(name) exists already; delete it or choose another name")
        }
        guard !domains.isEmpty else { throw MeshError(.invalid, "name the domains the kitchen builds (--domains A,B)") }
        for id in domains where registry[id] == nil {
            let names = registry.ids.map(\.rawValue)
            let close = MeshRun.suggestion(for: id.rawValue, among: names)
            throw MeshError(
                .unknownDomain,
                "unknown domain '\(id)'\(close)"
                    + (close.hasPrefix("; the domains are")
                        ? "" : "; the domains are: \(names.joined(separator: ", "))"))
        }
        var manifest = KitchenManifest(
            name: name, from: parent, domains: domains.sorted(), createdAt: now, parameters: [:], variation: nil,
            promotions: [])
        if parent != "production" {
            let parentManifest = try self.manifest(parent)
            manifest.variation = parentManifest.variation
            manifest.parameters = parentManifest.parameters
        }
        let parentHome = parentHome(of: manifest)
        guard FileManager.default.fileExists(atPath: RuntimeStore.file(in: parentHome).path) else {
            throw MeshError(.notFound, "\(parent) has no published domains yet: run the mesh first")
        }
        try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
        do {
            for folder in sharedFolders {
                let target = root.appendingPathComponent(folder)
                if FileManager.default.fileExists(atPath: target.path) {
                    try FileManager.default.createSymbolicLink(
                        at: home.appendingPathComponent(folder), withDestinationURL: target)
                }
            }
            try save(manifest)
            try refresh(manifest)
            // The code of every SQL step of the kitchen's domains, for the team to read and change.
            for id in manifest.domains {
                let folder = home.appendingPathComponent("recipes/\(id)")
                for (step, sql) in DomainRegistry.sqlSteps(of: registry[id]!.recipe) {
                    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
                    try sql.write(to: folder.appendingPathComponent("\(step).sql"), atomically: true, encoding: .utf8)
                }
            }
        } catch {
            // Best-effort: the half-made kitchen goes; the error that stopped it is what the caller must see.
            try? FileManager.default.removeItem(at: home)
            throw error
        }
        return manifest
    }

    /// Points the kitchen at the parent's current versions of every domain it does not build (and, until it
    /// has built them, of its own), and pins each file where it lives.
    package func refresh(_ manifest: KitchenManifest) throws {
        let home = home(of: manifest.name)
        let parentHome = parentHome(of: manifest)
        let parent = try RuntimeStore(home: parentHome)
        let kitchen = try RuntimeStore(home: home)
        let current = try parent.currentVersions()
        let built = try kitchen.pool.read { db in
            Set(try String.fetchAll(db, sql: "SELECT DISTINCT domain FROM domain_version WHERE retained = 1"))
        }
        try kitchen.pool.write { db in
            for (id, record) in current where !built.contains(id.rawValue) {
                var copy = record
                // The parent's file, from the kitchen's home; `retained = false`: the kitchen never removes it.
                copy.path = Self.relativePath(from: home, to: parentHome.appendingPathComponent(record.path))
                copy.retained = false
                try copy.upsert(db)
                try CurrentVersionRecord(domain: id, version: record.version).upsert(db)
            }
        }
        // Pin each file in the home that owns it (production, or the kitchen that built it), so that no
        // retention anywhere up the chain removes a file this kitchen reads.
        var pins: [URL: [(DomainID, Int)]] = [:]
        for (id, record) in current {
            let file = parentHome.appendingPathComponent(record.path).standardizedFileURL
            // A record the parent copied keeps the owner's version number.
            pins[ownerHome(of: file), default: []].append((id, record.version))
        }
        let holder = "kitchen:\(manifest.name)"
        for store in try storesHoldingPins() {
            let pinned = pins[store.home] ?? []
            if pinned.isEmpty {
                try store.store.unpin(holder: holder)
            } else {
                try store.store.pin(pinned, holder: holder)
            }
        }
    }

    /// The home whose `domains/` folder holds a file: production, or a kitchen.
    func ownerHome(of file: URL) -> URL {
        let kitchens = directory.standardizedFileURL.pathComponents
        let parts = file.pathComponents
        if parts.count > kitchens.count + 1, Array(parts.prefix(kitchens.count)) == kitchens {
            return home(of: parts[kitchens.count]).standardizedFileURL
        }
        return root
    }

    /// The runtime stores of production and of every kitchen, by home. A store that cannot be opened is an
    /// error: a pin missed there would let its retention remove a file a kitchen reads.
    func storesHoldingPins() throws -> [(home: URL, store: RuntimeStore)] {
        var homes = [root]
        if FileManager.default.fileExists(atPath: directory.path) {
            homes += try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted().map {
                home(of: $0).standardizedFileURL
            }
        }
        return try homes.compactMap { home in
            guard FileManager.default.fileExists(atPath: RuntimeStore.file(in: home).path) else { return nil }
            return (home, try RuntimeStore(home: home))
        }
    }

    /// The kitchen's mesh: its own home; the code's domains with the recipe changes of production, of the
    /// kitchens it was made from, and its own.
    package func mesh(_ name: String, base: DomainRegistry, configuration: MeshConfiguration) throws -> Mesh {
        var configuration = configuration
        configuration.home = home(of: name)
        // A kitchen is private: its builds never reach the servers production publishes to.
        configuration.servingEngines = []
        configuration.kitchen = name
        return try Mesh(registry: try effectiveRegistry(for: name, base: base), configuration: configuration)
    }

    /// Sets parameters and the variation of the kitchen's runs.
    package func configure(_ name: String, parameters: [String: [String: String]], variation: String?) throws
        -> KitchenManifest
    {
        var manifest = try manifest(name)
        for (domain, values) in parameters { manifest.parameters[domain, default: [:]].merge(values) { $1 } }
        if let variation { manifest.variation = variation }
        try save(manifest)
        return manifest
    }

    /// The run request of a kitchen run: its domains only, its parameters and variation.
    package func runRequest(_ manifest: KitchenManifest, sourceStates: [String: String] = [:]) -> RunRequest {
        RunRequest(
            variation: manifest.variation, only: Set(manifest.domains), sourceStates: sourceStates,
            parameters: Dictionary(uniqueKeysWithValues: manifest.parameters.map { (DomainID($0.key), $0.value) }),
            trigger: "kitchen:\(manifest.name)")
    }

    /// Everything before a kitchen run, for every caller (command line, HTTP): checks and keeps the new
    /// parameters (only for the kitchen's domains) and variation (a known one), points the kitchen at the
    /// parent's current versions, and returns the kitchen's mesh with the request to run.
    package func prepareRun(
        _ name: String, base: DomainRegistry, configuration: MeshConfiguration,
        parameters: [String: [String: String]] = [:], variation: String? = nil, force: Bool = false,
        sourceStates: [String: String]
    ) throws -> (mesh: Mesh, request: RunRequest) {
        let current = try manifest(name)
        for domain in parameters.keys.sorted() where !current.domains.contains(DomainID(domain)) {
            throw MeshError(
                .invalid,
                "kitchen \(name) does not build \(domain); it builds \(current.domains.map(\.rawValue).joined(separator: ", "))"
            )
        }
        if let variation { _ = try configuration.variations.variation(named: variation) }
        let manifest = try configure(name, parameters: parameters, variation: variation)
        try refresh(manifest)
        var request = runRequest(manifest, sourceStates: sourceStates)
        if force { request.force = Set(manifest.domains) }
        return (try mesh(name, base: base, configuration: configuration), request)
    }

    /// Removes the kitchen and its pins, and nothing else. Refused while another kitchen is made from it.
    package func delete(_ name: String) throws {
        _ = try manifest(name)
        let children = try list().filter { $0.from == name }.map(\.name)
        guard children.isEmpty else {
            throw MeshError(
                .invalid,
                "kitchen \(name) is the parent of \(children.joined(separator: ", ")); delete \(children.count == 1 ? "it" : "them") first"
            )
        }
        let home = home(of: name)
        // The home must be a folder right under HOME/kitchens, whatever the name says.
        guard home.deletingLastPathComponent().standardizedFileURL == directory.standardizedFileURL else {
            throw MeshError(.invalid, "refusing to delete \(home.path): not a kitchen folder")
        }
        let lock = try MeshLock.acquire(home: home, holder: "kitchen delete", wait: 0)
        for store in try storesHoldingPins() { try store.store.unpin(holder: "kitchen:\(name)") }
        withExtendedLifetime(lock) {}
        try FileManager.default.removeItem(at: home)
    }

    static func relativePath(from home: URL, to file: URL) -> String {
        let base = home.standardizedFileURL.pathComponents
        let target = file.standardizedFileURL.pathComponents
        var common = 0
        while common < base.count, common < target.count, base[common] == target[common] { common += 1 }
        return (Array(repeating: "..", count: base.count - common) + target[common...]).joined(separator: "/")
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }()

    static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }()
}
