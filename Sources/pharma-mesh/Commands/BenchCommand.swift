import ArgumentParser
import FeedFormats
import Foundation

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
    /// `bench quality --home H --truth DIR`: pairwise precision and recall of physician-master against ground truth.
    struct Quality: ParsableCommand {
        @OptionGroup var mesh: MeshOptions
        @Option(help: "The generator's truth folder.") var truth: String

        func run() throws {
            var truthOf: [String: String] = [:]
            let text = try String(contentsOfFile: "\(truth)/source_map.csv", encoding: .utf8)
            for line in text.split(separator: "\n").dropFirst() {
                let f = line.split(separator: ",", omittingEmptySubsequences: false)
                truthOf["\(f[0])|\(f[1])"] = String(f[2])
            }
            let result = try mesh.open().query(
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
            print(
                String(
                    format: "physician-master: %d source records scored; pairwise precision %.4f, recall %.4f", records,
                    precision, recall))
            if precision < 0.995 || recall < 0.99 { throw ExitCode(1) }
        }
    }
}
