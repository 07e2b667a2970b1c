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

    /// Lands the batches, runs the mesh with live progress, prints the summary.
    static func execute(mesh: Mesh, feeds: URL?, asOf: LandingDate?, request: RunRequest, quiet: Bool = false)
        async throws -> RunSummary
    {
        var request = request
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
        let display = await ProgressDisplay.attach(to: mesh, quiet: quiet)
        let summary = try await mesh.run(request)
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
