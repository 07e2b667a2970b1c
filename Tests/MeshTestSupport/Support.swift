import Foundation
import GRDB
import Logging
import MeshRuntime

/// A fresh directory under the system temporary directory, removed by `remove()`.
public struct TemporaryDirectory: Sendable {
    public let url: URL
    public init(_ label: String = "mesh") throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("\(label)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    public func remove() { try? FileManager.default.removeItem(at: url) }
}

/// Small hand-made meshes for runtime tests: sources are text files of integers in `HOME/sources/NAME.txt`.
public enum ToyMesh {
    public static let owner = Owner(team: "runtime", contact: "runtime@example.com")

    /// Writes a source file and returns the state token a run request should carry for it.
    @discardableResult
    public static func writeSource(_ name: String, values: [Int], home: URL) throws -> String {
        let directory = home.appendingPathComponent("sources")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let text = values.map(String.init).joined(separator: "\n")
        try text.write(to: directory.appendingPathComponent("\(name).txt"), atomically: true, encoding: .utf8)
        return Fingerprint.sha256Hex(text)
    }

    /// A raw domain that loads `sources/NAME.txt` into table `items(value)`.
    public static func source(_ id: DomainID, source: String, tests: [any DataTest] = [], delay: Duration = .zero)
        -> Domain
    {
        Domain(
            id: id, layer: "raw", owner: owner, description: "toy source \(source)",
            inputs: [.source(source)],
            outputs: [OutputPort(table: "items", grain: ["value"], columns: [ColumnContract("value", "INTEGER")])],
            recipe: Recipe([
                .swift("load") { context in
                    if delay > .zero {
                        try Data().write(to: context.home.appendingPathComponent("\(context.domain).loading"))
                        try await Task.sleep(for: delay)
                    }
                    let url = context.home.appendingPathComponent("sources/\(source).txt")
                    let text = (try? String(contentsOf: url, encoding: .utf8)) ?? ""
                    let values = text.split(separator: "\n").compactMap { Int($0) }
                    try await context.database.write { db in
                        try db.execute(sql: "CREATE TABLE items (value INTEGER)")
                        for value in values { try db.execute(sql: "INSERT INTO items VALUES (?)", arguments: [value]) }
                    }
                    return StepReport(rowsIn: values.count, rowsOut: values.count)
                }
            ]),
            tests: tests)
    }

    /// A domain that publishes `items` computed by SQL from its inputs.
    public static func derived(
        _ id: DomainID, from inputs: [DomainID], sql: String, tests: [any DataTest] = [],
        parameters: [String: String] = [:]
    ) -> Domain {
        Domain(
            id: id, layer: "integrated", owner: owner, description: "toy \(id)",
            inputs: inputs.map { .domain($0) },
            outputs: [OutputPort(table: "items", columns: [ColumnContract("value", "INTEGER")])],
            recipe: Recipe([.sql("build", sql)]), tests: tests, parameters: parameters)
    }

    /// `SELECT value FROM a.items UNION ALL SELECT value FROM b.items ...` as `CREATE TABLE items`.
    public static func union(_ inputs: [DomainID]) -> String {
        "CREATE TABLE items AS "
            + inputs.map { "SELECT value FROM \"\($0.schemaName)\".items" }.joined(separator: " UNION ALL ")
    }

    public static func mesh(
        _ domains: [Domain], home: URL, keepVersions: Int = 5, variations: VariationSet = VariationSet()
    ) throws -> Mesh {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        return try Mesh(
            registry: DomainRegistry(domains),
            configuration: MeshConfiguration(
                home: home, keepVersions: keepVersions, variations: variations, logger: logger))
    }

    /// The values a domain's current version publishes, sorted.
    public static func values(of domain: DomainID, in mesh: Mesh) throws -> [Int] {
        let (queue, _) = try mesh.snapshot(attaching: [domain])
        return try queue.read { db in
            try Int.fetchAll(db, sql: "SELECT value FROM \"\(domain.schemaName)\".items ORDER BY value")
        }
    }
}

/// The real CMS files of shared/fixtures/cms (see its README), beside the package as CI lays it out
/// (`../shared` next to the clone).
public enum CMSFixtures {
    public static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("../shared/fixtures/cms").standardizedFileURL
    /// The header and first 99 rows of NPPES's full replacement file, September 2025.
    public static let nppes = folder.appendingPathComponent("npidata_pfile_head99.csv")
    /// The header and first 26 rows of Part D Prescribers by Provider and Drug, data year 2024, under CMS's name.
    public static let partd = folder.appendingPathComponent("MUP_DPR_RY26_P04_V10_DY24_NPIBN_head26.csv")

    public static func bytes(_ url: URL) throws -> Data { try Data(contentsOf: url) }
}
