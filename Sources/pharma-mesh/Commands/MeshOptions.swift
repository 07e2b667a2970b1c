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
    var configURL: URL {
        explicitConfig ?? HomeSettings.folder(of: homeURL).appendingPathComponent(HomeSettings.variations)
    }

    /// The mesh's kitchens; they share the landed batches of the production home.
    var kitchens: Kitchens { Kitchens(home: homeURL, sharedFolders: ["landing"], product: .pharmaMesh) }

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
        configuration.product = .pharmaMesh
        // PHARMA_MESH_TRACE_SQL=MS: every statement of a build that takes MS milliseconds or more, on standard
        // error, to find where a build's time goes.
        configuration.slowStatementTrace = ProcessInfo.processInfo.environment["PHARMA_MESH_TRACE_SQL"]
            .flatMap(Double.init)
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

    /// The git commit of the program's source, when known: the checkout the binary was built in (found from the
    /// executable's path, `.build/release/pharma-mesh`), else the checkout the command runs from. Reads git's
    /// files directly (HEAD, loose and packed refs, a worktree's `.git` file); no git program is needed.
    static func gitCommit() -> String? {
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        let starts = [
            executable.deletingLastPathComponent(), URL(fileURLWithPath: FileManager.default.currentDirectoryPath),
        ]
        for start in starts {
            var directory = start.standardizedFileURL
            for _ in 0..<8 {
                if let commit = GitCheckout.commit(at: directory) { return commit }
                let parent = directory.deletingLastPathComponent()
                if parent.path == directory.path { break }
                directory = parent
            }
        }
        return nil
    }
}

/// The commit a git checkout's HEAD names, from git's files.
enum GitCheckout {
    static func commit(at directory: URL) -> String? {
        let dotGit = directory.appendingPathComponent(".git")
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dotGit.path, isDirectory: &isDirectory) else { return nil }
        var gitDirectory = dotGit
        if !isDirectory.boolValue {
            // A worktree or submodule: `.git` is a file `gitdir: PATH`.
            guard let text = try? String(contentsOf: dotGit, encoding: .utf8), text.hasPrefix("gitdir: ") else {
                return nil
            }
            let path = text.dropFirst("gitdir: ".count).trimmingCharacters(in: .whitespacesAndNewlines)
            gitDirectory = URL(fileURLWithPath: path, relativeTo: directory).standardizedFileURL
        }
        guard let head = read(gitDirectory.appendingPathComponent("HEAD")) else { return nil }
        guard head.hasPrefix("ref: ") else { return isCommit(head) ? head : nil }
        let ref = String(head.dropFirst(5))
        // A worktree keeps its HEAD but shares the refs of the main repository (`commondir`).
        var refRoots = [gitDirectory]
        if let common = read(gitDirectory.appendingPathComponent("commondir")) {
            refRoots.append(URL(fileURLWithPath: common, relativeTo: gitDirectory).standardizedFileURL)
        }
        for root in refRoots {
            if let loose = read(root.appendingPathComponent(ref)), isCommit(loose) { return loose }
            if let packed = read(root.appendingPathComponent("packed-refs")) {
                for line in packed.split(separator: "\n") where line.hasSuffix(" " + ref) {
                    let commit = String(line.prefix(40))
                    if isCommit(commit) { return commit }
                }
            }
        }
        return nil
    }

    private static func read(_ url: URL) -> String? {
        (try? String(contentsOf: url, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private static func isCommit(_ text: String) -> Bool {
        text.count == 40 && text.allSatisfy(\.isHexDigit)
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

extension ProductIdentity {
    /// pharma-mesh as the runtime names it: its commands in messages, its OpenLineage producer and namespace.
    static let pharmaMesh = ProductIdentity(
        name: "pharma-mesh", producer: "https://github.com/pharma-mesh/pharma-mesh",
        runFacetSchema: "https://github.com/pharma-mesh/pharma-mesh/blob/main/docs/architecture.md#openlineage"
    ) { standardCommand($0, program: "pharma-mesh") }
}
