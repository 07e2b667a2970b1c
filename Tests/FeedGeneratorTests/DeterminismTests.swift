import Foundation
import Testing

@testable import FeedGenerator

struct DeterminismTests {
    func contents(_ root: URL) throws -> [String: Data] {
        var result: [String: Data] = [:]
        let enumerator = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil)!
        for case let url as URL in enumerator where !url.hasDirectoryPath {
            result[String(url.path.dropFirst(root.path.count))] = try Data(contentsOf: url)
        }
        return result
    }

    @Test func theSameSeedGivesIdenticalBytesAndAnotherSeedDoesNot() throws {
        let a = try TinyWorld(seed: 7)
        let b = try TinyWorld(seed: 7)
        let c = try TinyWorld(seed: 8)
        defer { for w in [a, b, c] { w.remove() } }
        let fa = try contents(a.root)
        let fb = try contents(b.root)
        let fc = try contents(c.root)
        #expect(fa.count > 500)
        #expect(fa.keys.sorted() == fb.keys.sorted())
        #expect(fa.keys.sorted().filter { fa[$0] != fb[$0] }.isEmpty)
        #expect(fa != fc)
        #expect(a.summary.feeds == b.summary.feeds)
    }

    @Test func theSummaryCountsTheBytesWritten() throws {
        let world = try TinyWorld()
        defer { world.remove() }
        var bytes = 0
        for feed in world.summary.feeds.keys.sorted() {
            var feedBytes = 0
            for file in try world.files(feed) { feedBytes += file.text.utf8.count }
            #expect(world.summary.feeds[feed]?.bytes == feedBytes, "\(feed)")
            bytes += feedBytes
        }
        #expect(world.summary.bytes == bytes)
    }
}
