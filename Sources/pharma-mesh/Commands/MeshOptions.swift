import ArgumentParser
import Foundation
import Ingest
import Logging
import Mastering
import MeshPostgres
import MeshRuntime
import SelfService
import Warehouse

/// Options every mesh command takes.
struct MeshOptions: ParsableArguments {
    @Option(
        help:
            "The mesh home: landed batches, published versions, run history. Default: $PHARMA_MESH_HOME, else ./.pharma-mesh"
    )
    var home: String?

    @Option(help: "The variations file. Default: $PHARMA_MESH_CONFIG, else ./config/variations.json when present.")
    var config: String?

    var homeURL: URL {
        let path = home ?? ProcessInfo.processInfo.environment["PHARMA_MESH_HOME"] ?? ".pharma-mesh"
        return URL(fileURLWithPath: path).standardizedFileURL
    }

    var configURL: URL {
        URL(
            fileURLWithPath: config ?? ProcessInfo.processInfo.environment["PHARMA_MESH_CONFIG"]
                ?? "config/variations.json")
    }

    /// The mesh's kitchens; they share the landed batches of the production home.
    var kitchens: Kitchens { Kitchens(home: homeURL, sharedFolders: ["landing"]) }

    /// The domains as the code defines them, before any promoted recipe change.
    func baseRegistry() throws -> DomainRegistry {
        let overrides = configURL.deletingLastPathComponent().appendingPathComponent("steward-overrides.csv")
        return try PharmaDomains.registry(stewardOverrides: overrides)
    }

    func configuration(lockWait: TimeInterval = 0) throws -> MeshConfiguration {
        var logger = Logger(label: "pharma-mesh")
        logger.logLevel =
            ProcessInfo.processInfo.environment["PHARMA_MESH_LOG"].flatMap { Logger.Level(rawValue: $0) } ?? .critical
        var configuration = MeshConfiguration(
            home: homeURL, variations: try VariationSet.load(from: configURL), codeCommit: Self.gitCommit(),
            lockWait: lockWait, logger: logger)
        // The mesh's engine file: PostgreSQL serves the chosen domains besides the SQLite files.
        if let settings = try PostgresSettings.load(home: homeURL) {
            configuration.servingEngines = [try PostgresEngine(settings: settings, logger: logger)]
        }
        return configuration
    }

    /// Opens the mesh with every pharma domain registered, and the recipe changes promoted from kitchens.
    func open(lockWait: TimeInterval = 0) throws -> Mesh {
        try Mesh(
            registry: try kitchens.effectiveRegistry(for: nil, base: baseRegistry()),
            configuration: configuration(lockWait: lockWait))
    }

    /// The commit of the working tree the command runs from, when it is a git checkout.
    static func gitCommit() -> String? {
        var directory = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
        for _ in 0..<6 {
            let head = directory.appendingPathComponent(".git/HEAD")
            if let text = try? String(contentsOf: head, encoding: .utf8) {
                let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
                guard trimmed.hasPrefix("ref: ") else { return trimmed }
                let ref = directory.appendingPathComponent(".git/" + trimmed.dropFirst(5))
                return (try? String(contentsOf: ref, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            directory.deleteLastPathComponent()
        }
        return nil
    }
}

/// Every domain of the pharma mesh, layer by layer.
enum PharmaDomains {
    static func registry(stewardOverrides: URL? = nil) throws -> DomainRegistry {
        try DomainRegistry(
            IngestDomains.all() + MasteringDomains.all(stewardOverrides: stewardOverrides) + WarehouseDomains.all()
                + SelfServiceDomains.all())
    }
}

extension DomainID: ExpressibleByArgument {
    public init?(argument: String) { self.init(argument) }
}
