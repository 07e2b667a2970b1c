import ArgumentParser
import FeedFormats
import Foundation

/// `bench parse FEED DIR`: how fast the feed readers alone go (no database), for the benchmark script.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Measurements for scripts/bench.", shouldDisplay: false,
        subcommands: [Parse.self])

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
