import ArgumentParser
import Foundation
import Ingest
import MeshRuntime

/// `demo`: the launch-to-mature story on sample-data/.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo", abstract: "Replay sample-data/ through launch, growth and maturity and report each phase.")

    @OptionGroup var mesh: MeshOptions
    @Option(help: "The feeds to replay.") var feeds = "sample-data/feeds"

    func run() async throws {
        guard FileManager.default.fileExists(atPath: feeds) else {
            throw ValidationError("\(feeds) not found: run the demo from the repository root, or pass --feeds DIR.")
        }
        let mesh = try self.mesh.open()
        let summary = try await RunCommand.execute(
            mesh: mesh, feeds: URL(fileURLWithPath: feeds), asOf: nil, request: RunRequest())
        if summary.status == .fail { throw WorkFailed(message: "the demo run failed; see `pharma-mesh status`.") }
    }
}
