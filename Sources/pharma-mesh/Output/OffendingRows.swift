import Foundation
import MeshRuntime

/// The first offending rows of a run's warned and failed tests, as `tests DOMAIN` shows them, so that a person
/// reads why a batch was rejected (file, line, column, what to ask the sender) on the screen the run wrote.
enum OffendingRows {
    /// One offending row as `tests` prints it: its columns sorted by name, `column=value`.
    static func describe(_ row: [String: String]) -> String {
        row.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
    }

    /// The lines for a run's warned and failed tests, each followed by up to `limit` of its offending rows;
    /// none when every test passed.
    static func lines(for summary: RunSummary, store: RuntimeStore, limit: Int = 3) throws -> [String] {
        var lines: [String] = []
        for domain in summary.outcomes.keys.sorted() {
            let results = try store.testResults(of: domain, run: summary.runID)
            for result in results where result.status == .warn || result.status == .fail {
                let mark = result.status == .fail ? "✘" : "⚠"
                let rows =
                    result.failures == 1 ? "1 offending row" : "\(Console.number(result.failures)) offending rows"
                lines.append("  \(mark) \(domain) \(result.test): \(rows)")
                for row in result.sample.prefix(limit) { lines.append("      \(describe(row))") }
                if result.sample.count > limit || result.failures > min(limit, result.sample.count) {
                    lines.append("      … `pharma-mesh tests \(domain)` and its raw tables hold the rest")
                }
            }
        }
        return lines.isEmpty ? [] : ["warned and failed tests, with their first offending rows:"] + lines
    }

    /// Prints ``lines(for:store:limit:)``.
    static func print(for summary: RunSummary, mesh: Mesh) throws {
        for line in try lines(for: summary, store: mesh.store) { Swift.print(line) }
    }
}
