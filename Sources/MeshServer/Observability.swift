import Foundation
import GRDB
import HTTPTypes
import Hummingbird
import MeshRuntime
import Metrics
import NIOCore
import Prometheus
import ServiceLifecycle

/// The server's metrics: requests through swift-metrics into a Prometheus registry, and the mesh's own
/// figures read from the run history at each scrape (so runs started elsewhere count too).
final class ServerMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    let factory: PrometheusMetricsFactory

    init() {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
            .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(5),
        ]
        self.factory = factory
    }

    func request(route: String, status: Int, duration: Duration) {
        Counter(
            label: "mesh_http_requests_total", dimensions: [("route", route), ("status", "\(status)")], factory: factory
        )
        .increment()
        Metrics.Timer(label: "mesh_http_request_duration_seconds", dimensions: [("route", route)], factory: factory)
            .recordNanoseconds(
                duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000)
    }

    /// Prometheus text exposition: the registry (requests by route, which name no domain), the query
    /// threads, then the history's figures of the domains `covers` lets the caller see.
    func exposition(mesh: Mesh, queries: QueryWorkers, covers: (DomainID) -> Bool) throws -> String {
        var text = registry.emitToString()
        func family(_ name: String, _ type: String, _ help: String, _ samples: [(String, Double)]) {
            text += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for (labels, value) in samples { text += "\(name)\(labels) \(value)\n" }
        }
        let load = queries.counts
        family(
            "mesh_queries_running", "gauge", "Queries running now, each on a query thread.",
            [("", Double(load.running))])
        family(
            "mesh_queries_refused_total", "counter", "Queries refused at once because a limit was reached.",
            [("{limit=\"server\"}", Double(load.refusedServer)), ("{limit=\"token\"}", Double(load.refusedCaller))])
        func label(_ pairs: (String, String)...) -> String {
            "{"
                + pairs.map {
                    "\($0.0)=\"\($0.1.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\""))\""
                }
                .joined(separator: ",") + "}"
        }
        let totals = try mesh.store.totals()
        family(
            "mesh_domain_runs_total", "counter", "Domain runs by outcome.",
            totals.runs.filter { covers($0.domain) }.map {
                (label(("domain", $0.domain.rawValue), ("status", $0.status)), Double($0.count))
            })
        let durations = totals.durations.filter { covers($0.domain) }
        family(
            "mesh_domain_run_seconds_total", "counter", "Time spent building each domain.",
            durations.map { (label(("domain", $0.domain.rawValue)), Double($0.totalMS) / 1000) })
        family(
            "mesh_domain_last_run_seconds", "gauge", "Duration of each domain's last build.",
            durations.compactMap { row in row.lastMS.map { (label(("domain", row.domain.rawValue)), Double($0) / 1000) }
            })
        family(
            "mesh_domain_rows_published_total", "counter", "Rows published by successful builds.",
            totals.rowsPublished.filter { covers($0.domain) }.map {
                (label(("domain", $0.domain.rawValue)), Double($0.rows))
            })
        family(
            "mesh_tests_total", "counter", "Test results by outcome.",
            totals.tests.filter { covers($0.domain) }.map {
                (label(("domain", $0.domain.rawValue), ("status", $0.status)), Double($0.count))
            })
        let statuses = try mesh.status().filter { covers($0.domain) }
        family(
            "mesh_domain_version", "gauge", "The serving version of each domain (0: never built).",
            statuses.map { (label(("domain", $0.domain.rawValue)), Double($0.version ?? 0)) })
        family(
            "mesh_domain_rows", "gauge", "Rows in the serving version.",
            statuses.map { (label(("domain", $0.domain.rawValue)), Double($0.rowCounts.values.reduce(0, +))) })
        family(
            "mesh_domain_lateness_seconds", "gauge", "Seconds since the missed deadline (0: on time or no level).",
            statuses.map { (label(("domain", $0.domain.rawValue)), Double($0.freshness.lateBySeconds ?? 0)) })
        family(
            "mesh_domain_in_sync", "gauge", "1 when the domain was built from its inputs' current versions.",
            statuses.map { (label(("domain", $0.domain.rawValue)), $0.sync.state == .inSync ? 1 : 0) })
        family(
            "mesh_domain_open_problems", "gauge", "Problems reported and not closed.",
            statuses.map { (label(("domain", $0.domain.rawValue)), Double($0.openProblems)) })
        return text
    }
}

/// Announces missed deadlines while the server runs (every minute by default).
struct FreshnessWatcher: Service {
    /// The server's current mesh (it changes after a promotion or an engine change).
    let mesh: @Sendable () -> Mesh
    let interval: Duration

    func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                while !Task.isCancelled {
                    _ = try? await mesh().announceLateDomains()
                    try await Task.sleep(for: interval)
                }
            }
        } catch is CancellationError {
            // Stopped with the server.
        }
    }
}
