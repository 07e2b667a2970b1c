import Foundation
import MeshTestSupport
import Testing

@testable import MeshRuntime

/// The runtime names no program: the product and its commands come from the program's configuration.
struct GenericRuntimeTests {
    @Test func theRuntimeSourcesNameNoProgram() throws {
        let sources = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Sources/MeshRuntime")
        let files = try #require(FileManager.default.enumerator(atPath: sources.path)).compactMap { $0 as? String }
            .filter { $0.hasSuffix(".swift") }
        #expect(files.count > 20, "the runtime's sources were not found at \(sources.path)")
        for file in files {
            let text = try String(contentsOf: sources.appendingPathComponent(file), encoding: .utf8)
            for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                for name in ["pharma-mesh", "PHARMA_MESH"] where line.contains(name) {
                    Issue.record("Sources/MeshRuntime/\(file):\(number + 1) names the program (\(name)): \(line)")
                }
            }
        }
    }

    @Test func refusalsAreWordedWithTheProgramsCommands() {
        let acme = ProductIdentity(name: "acme", producer: "https://example.com/acme") {
            ProductIdentity.standardCommand($0, program: "acme")
        }
        let refusal = KitchenRefusal.parentOutOfDate(
            "orders-mart", kitchen: "k", parent: "production", upstream: "orders", used: 1, now: 2)
        #expect(refusal.domain == "orders-mart")
        #expect(
            refusal.sentence(acme.command)
                == "orders-mart reads production's current inputs, but they were built from orders@v1 and production's orders is now v2: production is out of date; run `acme run` first, then `acme kitchen run k`, then promote"
        )
        #expect(
            KitchenRefusal.notBuilt("orders-mart", kitchen: "k").sentence(ProductIdentity.generic.command)
                == "orders-mart: the kitchen changed it but has not built the change yet; run `mesh kitchen run k`, check `mesh kitchen diff k`, then promote"
        )
    }
}
