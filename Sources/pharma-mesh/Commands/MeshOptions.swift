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

    @Option(
        help:
            "A variations file to give the mesh (with steward-overrides.csv beside it, if any): commands that write copy them into HOME/config/, which every later command uses. Default: $PHARMA_MESH_CONFIG, else the home's own copy."
    )
    var config: String?

    var homeURL: URL {
        let path = home ?? ProcessInfo.processInfo.environment["PHARMA_MESH_HOME"] ?? ".pharma-mesh"
        return URL(fileURLWithPath: path).standardizedFileURL
    }

    /// The settings file named on the command line or in the environment, if any.
    var explicitConfig: URL? {
        (config ?? ProcessInfo.processInfo.environment["PHARMA_MESH_CONFIG"]).map {
            URL(fileURLWithPath: $0).standardizedFileURL
        }
    }

    /// The variations file in effect: the one named, else the home's copy. Never a file found from the current
    /// folder: a mesh reads the same settings wherever its commands run.
    var configURL: URL { explicitConfig ?? HomeSettings.folder(of: homeURL).appendingPathComponent(HomeSettings.variations) }

    /// The mesh's kitchens; they share the landed batches of the production home.
    var kitchens: Kitchens { Kitchens(home: homeURL, sharedFolders: ["landing"]) }

    /// The domains as the code defines them, before any promoted recipe change.
    func baseRegistry() throws -> DomainRegistry {
        let overrides = configURL.deletingLastPathComponent().appendingPathComponent(HomeSettings.stewardOverrides)
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

    /// What a command does with the home: reading needs a mesh there; writing creates one and settles its settings.
    enum Access { case read, write }

    /// Opens the mesh with every pharma domain registered, and the recipe changes promoted from kitchens.
    ///
    /// A command that only reads refuses a home that holds no mesh (a mistyped `--home` must not create an
    /// empty one); a command that writes first gives the home its settings (`HomeSettings.settle`).
    func open(lockWait: TimeInterval = 0, access: Access = .write) throws -> Mesh {
        switch access {
        case .read: try requireMesh()
        case .write: try HomeSettings.settle(home: homeURL, explicit: explicitConfig)
        }
        return try Mesh(
            registry: try kitchens.effectiveRegistry(for: nil, base: baseRegistry()),
            configuration: configuration(lockWait: lockWait))
    }

    /// Refuses a home with no mesh in it, naming the path and how to make one.
    func requireMesh() throws {
        let home = homeURL
        guard !FileManager.default.fileExists(atPath: RuntimeStore.file(in: home).path) else { return }
        let exists = FileManager.default.fileExists(atPath: home.path)
        throw ValidationError(
            "\(home.path) \(exists ? "holds no mesh (it has no runtime.sqlite)" : "does not exist"). "
                + "Check --home (or $PHARMA_MESH_HOME); to create a mesh there, run "
                + "`pharma-mesh run --feeds DIR --home \(home.path)`.")
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
