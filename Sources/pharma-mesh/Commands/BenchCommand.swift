import ArgumentParser
import FeedFormats
import Foundation
import GRDB
import Mastering
import MeshRuntime

/// `bench parse FEED DIR`: how fast the feed readers alone go (no database), for the benchmark script.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Measurements for scripts/bench.", shouldDisplay: false,
        subcommands: [Parse.self, Quality.self])

    struct Parse: ParsableCommand {
        @Argument var feed: String
        @Argument var directory: String

        func run() throws {
            guard let layout = FeedLayouts.layout(for: feed) else { throw ValidationError("unknown feed \(feed)") }
            let reader = FeedFileReader(layout: layout)
            let started = Date()
            var rows = 0
            var rejected = 0
            let root = URL(fileURLWithPath: directory)
            for batch in try FileManager.default.contentsOfDirectory(atPath: root.path).sorted() {
                for file in try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent(batch).path)
                    .sorted()
                {
                    try reader.read(
                        file: root.appendingPathComponent("\(batch)/\(file)"), row: { _, _, _ in rows += 1 },
                        rejected: { _ in rejected += 1 })
                }
            }
            let seconds = Date().timeIntervalSince(started)
            print(
                String(
                    format: "%@: %d rows (%d rejected) parsed in %.2f s: %.0f rows/s", feed, rows, rejected, seconds,
                    Double(rows) / seconds))
        }
    }
}

extension BenchCommand {
    /// `bench quality --home H --truth DIR`: pairwise precision, recall and F1 of physician-master against ground
    /// truth, and the blocking recall (the share of true pairs that some blocking rule puts in one block).
    struct Quality: ParsableCommand {
        @OptionGroup var mesh: MeshOptions
        @Option(help: "The truth folder (source_map.csv: source,source_id,truth_id).") var truth: String
        @Option(help: "Only these sources (comma-separated), e.g. nppes,ama,crm for the records with names.")
        var sources: String?
        @Option(help: "Fail below this pairwise precision.") var minPrecision = 0.995
        @Option(help: "Fail below this pairwise recall.") var minRecall = 0.99
        @Flag(help: "One JSON object instead of text.") var json = false

        func run() throws {
            var truthOf: [String: String] = [:]
            let text: String
            do {
                text = try String(contentsOfFile: "\(truth)/source_map.csv", encoding: .utf8)
            } catch {
                throw ValidationError(
                    "cannot read \(truth)/source_map.csv (\(error.localizedDescription)): give the generator's truth folder"
                )
            }
            let wanted = sources.map { Set($0.split(separator: ",").map(String.init)) }
            for line in text.split(separator: "\n").dropFirst() {
                let f = line.split(separator: ",", omittingEmptySubsequences: false)
                guard f.count >= 3, wanted?.contains(String(f[0])) ?? true else { continue }
                truthOf["\(f[0])|\(f[1])"] = String(f[2])
            }
            let opened = try mesh.open()
            let result = try opened.query(
                "SELECT source, source_id, physician_id FROM physician_master.physician_xref", maxRows: Int.max)
            var predicted: [String: Int] = [:]
            var pair: [String: Int] = [:]
            var actual: [String: Int] = [:]
            var records = 0
            for row in result.rows {
                let key = "\(row[0])|\(row[1])"
                guard let truthID = truthOf[key] else { continue }
                records += 1
                actual[truthID, default: 0] += 1
                if case .integer(let id) = row[2] {
                    predicted["\(id)", default: 0] += 1
                    pair["\(id)|\(truthID)", default: 0] += 1
                }
            }
            func pairs(_ groups: [String: Int]) -> Double { groups.values.reduce(0) { $0 + Double($1 * ($1 - 1) / 2) } }
            let truePairs = pairs(pair)
            let precision = truePairs / max(1, pairs(predicted))
            let recall = truePairs / max(1, pairs(actual))
            let f1 = precision + recall == 0 ? 0 : 2 * precision * recall / (precision + recall)
            let (queue, _) = try opened.snapshot(attaching: ["raw-nppes", "raw-ama", "raw-crm_accounts"])
            let blocking = try queue.read { db in try MatchingQuality.blockingRecall(db, truth: truthOf) }
            if json {
                let rules = blocking.byRule.map { "\"\($0.rule)\": {\"reached\": \($0.reached), \"only\": \($0.only)}" }
                print(
                    String(
                        format:
                            "{\"records\": %d, \"precision\": %.6f, \"recall\": %.6f, \"f1\": %.6f, \"true_pairs\": %.0f, \"predicted_pairs\": %.0f, \"blocking_true_pairs\": %d, \"blocking_recall\": %.6f, \"blocking_rules\": {%@}}",
                        records, precision, recall, f1, pairs(actual), pairs(predicted), blocking.truePairs,
                        blocking.recall, rules.joined(separator: ", ")))
            } else {
                print(
                    String(
                        format:
                            "physician-master: %d source records scored; pairwise precision %.4f, recall %.4f, F1 %.4f",
                        records, precision, recall, f1))
                print(
                    String(
                        format: "blocking: %d of %d true record pairs share a block (recall %.4f); by rule: %@",
                        blocking.reached, blocking.truePairs, blocking.recall,
                        blocking.byRule.map { "\($0.rule) \($0.reached) (\($0.only) by it alone)" }.joined(
                            separator: ", ")))
            }
            if precision < minPrecision || recall < minRecall { throw ExitCode(1) }
        }
    }
}
