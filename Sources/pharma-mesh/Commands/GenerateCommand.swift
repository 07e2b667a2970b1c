import ArgumentParser
import FeedGenerator
import Foundation

/// `generate`: synthetic feeds at a scale, with ground truth.
struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Write synthetic feeds to DIR/feeds/FEED/YYYY-MM-DD/ and the ground truth to DIR/truth/.")

    @Option(help: "sample (about 2,000 physicians), region (about 100,000) or national (about 1,000,000).") var scale:
        Scale = .sample
    @Option(help: "The seed: the same seed gives byte-identical files.") var seed: UInt64 = 42
    @Option(help: "The output folder.") var out: String
    @Option(
        help: ArgumentHelp(
            "Physicians in the world instead of the scale's number (small worlds for tests).", visibility: .hidden))
    var physicians: Int?
    @Option(help: "standard (what sample-data holds) or hard (typos, OCR and phonetic errors, missing fields, …).")
    var noise: Noise = .standard

    func run() throws {
        let started = Date()
        let summary = try FeedGenerator.generate(
            GeneratorOptions(
                scale: scale, seed: seed, outputDirectory: URL(fileURLWithPath: out), physicianCount: physicians,
                noise: noise)
        ) { message in Console.error("  \(message)") }
        print(
            String(
                format: "generated %@ scale (seed %llu) into %@ in %.1f s", scale.rawValue, seed, out,
                Date().timeIntervalSince(started)))
        _ = summary
    }
}

extension Scale: ExpressibleByArgument {}
extension Noise: ExpressibleByArgument {}
