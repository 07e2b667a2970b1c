import ArgumentParser
import Foundation
import Ingest
import MeshRuntime

/// `run --feeds DIR`: land new batches, rebuild exactly what they affect.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract:
            "Land every new batch delivered on or before the as-of date, then rebuild exactly the affected domains.")

    @OptionGroup var mesh: MeshOptions

    @Option(help: "The folder of feeds (FEED/YYYY-MM-DD/ batches), for example sample-data/feeds.")
    var feeds: String?

    @Option(help: "Land only batches delivered on or before this date (YYYY-MM-DD).")
    var asOf: String?

    @Option(help: "The variation (parameter set) to run with.")
    var variation: String?

    @Option(
        help: "Only these domains (comma-separated); lagging inputs are still brought up to date for the sync check.")
    var only: String?

    @Option(help: "Seconds to wait for another run on the same home before giving up.")
    var wait: Double = 0

    @Flag(help: "Fail instead of bringing a lagging input up to date when inputs disagree.")
    var noSyncResolve = false

    @Flag(help: "Rebuild the --only domains even when they are up to date.")
    var force = false

    @Flag(help: "Rebuild from scratch, ignoring previous versions in incremental steps (implies --force).")
    var fullRefresh = false

    func validate() throws {
        if let asOf, LandingDate.parse(asOf) == nil {
            throw ValidationError("--as-of \(asOf) is not a date: write it as YYYY-MM-DD, for example 2025-06-30.")
        }
        if let feeds, !FileManager.default.fileExists(atPath: feeds) {
            throw ValidationError(
                "--feeds \(feeds): no such folder. Generate one with `pharma-mesh generate --scale sample --seed 42 --out DIR`."
            )
        }
    }

    var onlySet: Set<DomainID>? { only.map { Set($0.split(separator: ",").map { DomainID(String($0)) }) } }

    func run() async throws {
        let mesh = try self.mesh.open(lockWait: wait)
        let chosen = try mesh.configuration.variations.variation(named: variation)
        if chosen.1.kitchen { return try await runInKitchen(chosen.0, production: mesh) }
        let summary = try await Self.execute(
            mesh: mesh, feeds: feeds.map { URL(fileURLWithPath: $0) }, asOf: asOf.flatMap(LandingDate.parse),
            request: RunRequest(
                variation: variation, only: onlySet,
                force: force || fullRefresh ? (onlySet ?? Set(mesh.registry.ids)) : [],
                fullRefresh: fullRefresh, resolveSync: !noSyncResolve))
        if summary.status.failed || summary.status == .fail {
            throw WorkFailed(
                message:
                    "run \(summary.runID) failed: \(summary.failed.map(\.rawValue).joined(separator: ", ")). See `pharma-mesh history DOMAIN`."
            )
        }
    }

    /// A variation marked `kitchen` (a canary) builds in the kitchen named after it, never over production:
    /// the new batches land in production (under its lock, as for any run), then the kitchen, of the whole mesh
    /// or of `--only`, is built with the variation.
    func runInKitchen(_ name: String, production: Mesh) async throws {
        if let feeds {
            let asOf = asOf.flatMap(LandingDate.parse)
            try await production.exclusively(holder: "landing for kitchen \(name)") {
                let report = try Landing.land(feeds: URL(fileURLWithPath: feeds), home: production.home, asOf: asOf)
                if !report.landed.isEmpty { print("landed \(report.landed.count) batches into production") }
                for problem in report.problems { Console.error("warning: \(problem)") }
            }
        }
        let kitchens = mesh.kitchens
        let base = try mesh.baseRegistry()
        if (try? kitchens.manifest(name)) == nil {
            let domains = onlySet.map { Array($0).sorted() } ?? base.ids
            try kitchens.create(name, domains: domains, registry: try kitchens.effectiveRegistry(for: nil, base: base))
            print(
                "variation \(name) builds in kitchen \(name) (\(kitchens.home(of: name).path)), never over production")
        }
        let (kitchenMesh, request) = try kitchens.prepareRun(
            name, base: base, configuration: try mesh.configuration(lockWait: wait), variation: name,
            force: force || fullRefresh, sourceStates: try Landing.sourceStates(home: production.home))
        let summary = try await Self.execute(mesh: kitchenMesh, feeds: nil, asOf: nil, request: request)
        print("production is untouched; compare with `pharma-mesh kitchen diff \(name)`")
        if summary.status.failed || summary.status == .fail {
            throw WorkFailed(
                message:
                    "run \(summary.runID) of kitchen \(name) failed: \(summary.failed.map(\.rawValue).joined(separator: ", "))."
            )
        }
    }

    /// Lands the batches, runs the mesh with live progress, prints the summary.
    static func execute(mesh: Mesh, feeds: URL?, asOf: LandingDate?, request: RunRequest, quiet: Bool = false)
        async throws -> RunSummary
    {
        let display = await ProgressDisplay.attach(to: mesh, quiet: quiet)
        // Landing happens under the run's writer lock: a second run on the same home waits or stops with the
        // lock message before it copies a byte, so no batch is landed twice or moved under another's feet.
        let summary: RunSummary
        do {
            summary = try await mesh.run(request) { request in
                if let feeds {
                    let report = try Landing.land(feeds: feeds, home: mesh.home, asOf: asOf)
                    if !quiet && !report.landed.isEmpty {
                        let perFeed = Dictionary(grouping: report.landed, by: \.feed).mapValues(\.count)
                        print(
                            "landed \(report.landed.count) batch\(report.landed.count == 1 ? "" : "es"): "
                                + perFeed.keys.sorted().map { "\($0) \(perFeed[$0]!)" }.joined(separator: ", "))
                    }
                    for problem in report.problems { Console.error("warning: \(problem)") }
                }
                request.sourceStates = try Landing.sourceStates(home: mesh.home)
            }
        } catch {
            await display.close()
            throw error
        }
        await display.close()
        if !quiet { print(summarize(summary)) }
        if !quiet { try OffendingRows.print(for: summary, mesh: mesh) }
        return summary
    }

    static func summarize(_ summary: RunSummary) -> String {
        let counts = Dictionary(grouping: summary.outcomes.values, by: \.status).mapValues(\.count)
        let parts = [RunStatus.success, .warn, .upToDate, .skipped, .fail, .error].compactMap { status in
            counts[status].map { "\($0) \(status.rawValue.replacingOccurrences(of: "_", with: " "))" }
        }
        return "run \(summary.runID): \(summary.status.rawValue) (\(parts.joined(separator: ", ")))"
    }
}
