import ArgumentParser
import Foundation
import MeshPostgres
import MeshRuntime

/// `engine use|show|status|publish`: where the published marts and extracts are served besides SQLite.
struct EngineCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "engine",
        abstract: "Serve published domains from PostgreSQL too (SQLite stays the embedded default).",
        discussion: """
            Example: PGPASSWORD=… pharma-mesh engine use postgresql postgres://mesh@db.example.com:5432/marts
            Every later run loads each new version of the served domains into a schema of its own and switches
            the domain's schema to it in one transaction. See docs/postgresql.md.
            """,
        subcommands: [Use.self, Show.self, Status.self, Check.self, Publish.self])

    struct Use: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Choose the engine: postgresql URL, or sqlite (the embedded default alone).")
        @OptionGroup var mesh: MeshOptions
        @Argument(help: "postgresql or sqlite.") var engine: String
        @Argument(help: "postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE (the password is better in $PGPASSWORD).")
        var url: String?
        @Option(help: "Serve every domain of these layers (comma-separated).")
        var layers = "integrated,self-service"
        @Option(help: "Serve these domains too (comma-separated).") var domains = ""
        @Flag(help: "Do not read each loaded table back to compare it with the build.") var noVerify = false
        @Option(help: "Connections that load one version's tables at once.") var loadConnections = 2

        func run() async throws {
            let home = mesh.homeURL
            switch engine {
            case "sqlite":
                let opened = try mesh.open()
                try PostgresSettings.remove(home: home)
                // A running server reads the change from the history and reloads its engine list.
                await opened.events.publish(MeshEvent(kind: .engineChanged, payload: ["engine": "sqlite"]))
                print("the mesh at \(home.path) publishes to SQLite only; PostgreSQL keeps what it served")
            case "postgresql", "postgres":
                guard let url else {
                    throw ValidationError("engine use postgresql needs a URL: postgres://USER@HOST:PORT/DATABASE")
                }
                let settings = PostgresSettings(
                    url: url, domains: Self.list(domains), layers: Self.list(layers), verify: !noVerify,
                    loadConnections: max(1, loadConnections))
                let postgres = try PostgresEngine(settings: settings)
                let opened = try mesh.open()
                let served = opened.registry.ids.filter { settings.serves(opened.registry[$0]!) }
                guard !served.isEmpty else {
                    throw ValidationError(
                        "no domain is in layers '\(layers)' or named in '\(domains)'; layers are "
                            + Set(opened.registry.domains.values.map(\.layer)).sorted().joined(separator: ", "))
                }
                _ = try await postgres.served()  // connects, creates mesh_catalog: fails early and clearly
                try settings.save(home: home)
                await opened.events.publish(
                    MeshEvent(
                        kind: .engineChanged,
                        payload: [
                            "engine": "postgresql", "url": settings.displayURL,
                            "domains": served.map(\.rawValue).joined(separator: ","),
                        ]))
                print(
                    "the mesh at \(home.path) now also serves \(served.map(\.rawValue).joined(separator: ", ")) "
                        + "from \(settings.displayURL)")
                let published = try await postgres.catchUp(opened) { Console.error("  " + $0) }
                if !published.isEmpty { print("loaded the current versions: \(published.joined(separator: ", "))") }
            default:
                throw ValidationError("unknown engine '\(engine)': use postgresql or sqlite")
            }
        }

        static func list(_ text: String) -> [String] {
            text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The engine this mesh publishes to.")
        @OptionGroup var mesh: MeshOptions
        func run() throws {
            guard let settings = try PostgresSettings.load(home: mesh.homeURL) else {
                print("sqlite (embedded, files under \(mesh.homeURL.path)/domains)")
                return
            }
            print("sqlite, and postgresql at \(settings.displayURL)")
            print("  layers:  \(settings.layers.joined(separator: ", "))")
            print("  domains: \(settings.domains.isEmpty ? "-" : settings.domains.joined(separator: ", "))")
            print("  verify:  \(settings.verify ? "every loaded table is read back and compared" : "off")")
            print("  loading: \(settings.loadConnections) connection(s) at once")
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "What PostgreSQL serves against the mesh's current versions, and the sync check there.")
        @OptionGroup var mesh: MeshOptions
        @Flag(help: "Print JSON.") var json = false

        struct Line: Encodable {
            var domain: String
            var current: Int?
            var served: Int?
            var state: String
            var fingerprintMatches: Bool
        }

        func run() async throws {
            let (settings, postgres) = try EngineCommand.postgres(mesh)
            let opened = try mesh.open()
            let served = try await postgres.served()
            let current = try opened.store.currentVersions()
            var lines: [Line] = []
            for id in opened.registry.ids where settings.serves(opened.registry[id]!) {
                let here = current[id]
                let there = served[id]
                let state: String
                switch (here, there) {
                case (nil, nil): state = "never built"
                case (_?, nil): state = "not loaded"
                case (nil, _?): state = "served, not in this mesh's history"
                case let (here?, there?):
                    state =
                        here.version == there.version && here.fingerprint == there.fingerprint
                        ? "current" : there.version < here.version ? "behind" : "differs"
                }
                lines.append(
                    Line(
                        domain: id.rawValue, current: here?.version, served: there?.version, state: state,
                        fingerprintMatches: here?.fingerprint == there?.fingerprint))
            }
            let conflicts = SyncCheck.conflicts(among: served)
            if json {
                struct Report: Encodable {
                    var url: String
                    var domains: [Line]
                    var inSync: Bool
                    var conflicts: [String]
                }
                print(
                    try JSON.string(
                        Report(
                            url: settings.displayURL, domains: lines, inSync: conflicts.isEmpty,
                            conflicts: conflicts.map(\.description))))
            } else {
                print(
                    Console.table(
                        ["DOMAIN", "CURRENT", "SERVED", "STATE"],
                        lines.map {
                            [
                                $0.domain, $0.current.map { "v\($0)" } ?? "-", $0.served.map { "v\($0)" } ?? "-",
                                $0.state,
                            ]
                        }))
                if conflicts.isEmpty {
                    print("sync: the versions PostgreSQL serves agree on every upstream they share")
                } else {
                    print("sync: the versions PostgreSQL serves disagree on \(conflicts.count) upstream domain(s):")
                    for conflict in conflicts.prefix(5) { print("  " + conflict.description) }
                    if conflicts.count > 5 { print("  … and \(conflicts.count - 5) more (--json lists them all)") }
                }
            }
            if !conflicts.isEmpty || lines.contains(where: { $0.state != "current" && $0.state != "never built" }) {
                throw ExitCode(1)
            }
        }
    }

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the served domains' tests on PostgreSQL and compare them with the SQLite results.")
        @OptionGroup var mesh: MeshOptions
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let (_, postgres) = try EngineCommand.postgres(mesh)
            let comparisons = try await postgres.checkTests(try mesh.open())
            if json {
                print(try JSON.string(comparisons))
            } else {
                print(
                    Console.table(
                        ["DOMAIN", "TEST", "SQLITE", "POSTGRESQL", ""],
                        comparisons.map {
                            [
                                "\($0.domain)@v\($0.version)", $0.test,
                                ($0.sqlite ?? "-") + ($0.sqliteFailures.map { $0 > 0 ? " (\($0))" : "" } ?? ""),
                                ($0.postgresql ?? "-") + ($0.postgresqlFailures.map { $0 > 0 ? " (\($0))" : "" } ?? ""),
                                $0.agrees ? ($0.note ?? "same") : "DIFFERS" + ($0.note.map { ": \($0)" } ?? ""),
                            ]
                        }))
                let ran = comparisons.filter { $0.postgresql != nil }
                print(
                    "\(ran.count) tests ran on both engines, \(ran.filter(\.agrees).count) with the same outcome; "
                        + "\(comparisons.count - ran.count) apply to the build only")
            }
            if comparisons.contains(where: { !$0.agrees }) { throw ExitCode(1) }
        }
    }

    struct Publish: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Load the current versions PostgreSQL does not serve yet (after an outage, say).")
        @OptionGroup var mesh: MeshOptions
        func run() async throws {
            let (_, postgres) = try EngineCommand.postgres(mesh)
            let published = try await postgres.catchUp(try mesh.open()) { Console.error("  " + $0) }
            print(
                published.isEmpty
                    ? "PostgreSQL already serves every current version" : "loaded \(published.joined(separator: ", "))")
        }
    }

    static func postgres(_ mesh: MeshOptions) throws -> (PostgresSettings, PostgresEngine) {
        guard let settings = try PostgresSettings.load(home: mesh.homeURL) else {
            throw ValidationError(
                "the mesh at \(mesh.homeURL.path) uses SQLite alone: choose PostgreSQL with "
                    + "`pharma-mesh engine use postgresql postgres://USER@HOST:PORT/DATABASE`")
        }
        return (settings, try PostgresEngine(settings: settings))
    }
}
