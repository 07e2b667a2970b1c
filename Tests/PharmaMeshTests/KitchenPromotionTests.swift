import Foundation
import MeshTestSupport
import Testing

/// Development linkage from the command line, on the sample mesh: every kind of domain can be changed in a
/// kitchen and promoted, an unedited kitchen promotes nothing, and each refusal's advice works when followed.
@Suite(.serialized) struct KitchenPromotionTests {
    /// A production home on the first weeks of the sample deliveries.
    static func production(in dir: TemporaryDirectory) throws -> String {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let home = dir.url.appendingPathComponent("home").path
        let run = try pharmaMesh(
            [
                "run", "--feeds", root.appendingPathComponent("sample-data/feeds").path, "--as-of", "2024-02-15",
                "--home", home,
            ], in: root)
        #expect(run.code == 0, "\(run.err)")
        return home
    }

    static func edit(_ file: URL, replacing old: String, with new: String) throws {
        let sql = try String(contentsOf: file, encoding: .utf8)
        #expect(sql.contains(old), "\(file.lastPathComponent) no longer holds \(old)")
        try sql.replacingOccurrences(of: old, with: new).write(to: file, atomically: true, encoding: .utf8)
    }

    @Test func aKitchenOfTheWholeMeshUneditedPromotesNothing() throws {
        let dir = try TemporaryDirectory("kitchen-all")
        defer { dir.remove() }
        let home = try Self.production(in: dir)
        let created = try pharmaMesh(["kitchen", "create", "everything", "--home", home])
        #expect(created.code == 0, "\(created.err)")
        #expect(created.out.contains("builds brand-extracts, conformed-dims, field-extracts"), "\(created.out)")
        let run = try pharmaMesh(["kitchen", "run", "everything", "--home", home])
        #expect(run.code == 0, "\(run.err)")
        #expect(run.out.contains("(24 up to date)"), "\(run.out)")
        let promoted = try pharmaMesh(["kitchen", "promote", "everything", "--home", home])
        #expect(promoted.code == 0, "\(promoted.err)")
        #expect(promoted.out.contains("nothing to promote: the kitchen builds what production builds"))
        // A forced rebuild of every domain in the kitchen is still what production builds.
        let forced = try pharmaMesh(["kitchen", "run", "everything", "--force", "--home", home])
        #expect(forced.code == 0, "\(forced.err)")
        #expect(forced.out.contains("(24 success)"), "\(forced.out)")
        #expect(
            try pharmaMesh(["kitchen", "promote", "everything", "--home", home]).out.contains("nothing to promote"))

        let unknown = try pharmaMesh(["kitchen", "create", "typo", "--domains", "payer-mrt", "--home", home])
        #expect(unknown.code == 2)
        #expect(unknown.err.contains("the domains are: brand-extracts, conformed-dims"), "\(unknown.err)")
    }

    @Test(arguments: [
        ("payer-mart", "access.sql", "SUM(m.open_lives) / SUM(m.lives), 6)", "SUM(m.open_lives) / SUM(m.lives), 2)"),
        ("physician-mart", "rx.sql", "SUM(nrx) / 1000.0", "SUM(nrx) / 500.0"),
        ("conformed-dims", "product.sql", "'(unknown)'", "'(unknown product)'"),
    ])
    func anEditedRecipeIsDiffedPromotedAndKeptByProduction(
        domain: String, file: String, old: String, new: String
    ) throws {
        let dir = try TemporaryDirectory("kitchen-edit")
        defer { dir.remove() }
        let home = try Self.production(in: dir)
        #expect(try pharmaMesh(["kitchen", "create", "k", "--domains", domain, "--home", home]).code == 0)
        let recipe = URL(fileURLWithPath: home).appendingPathComponent("kitchens/k/recipes/\(domain)/\(file)")
        try Self.edit(recipe, replacing: old, with: new)

        // Promoting before the kitchen built the change says what to run, and that works.
        let early = try pharmaMesh(["kitchen", "promote", "k", "--home", home])
        #expect(early.code == 2)
        #expect(early.err.contains("run `pharma-mesh kitchen run k`"), "\(early.err)")
        let run = try pharmaMesh(["kitchen", "run", "k", "--home", home])
        #expect(run.code == 0, "\(run.err)")
        let diff = try pharmaMesh(["kitchen", "diff", "k", "--json", "--home", home])
        let parsed = try JSONSerialization.jsonObject(with: Data(diff.out.utf8)) as? [String: Any]
        let domains = try #require(parsed?["domains"] as? [[String: Any]])
        #expect(domains.first?["code_changed"] as? Bool == true)
        let tables = domains.first?["tables"] as? [[String: Any]] ?? []
        let changed = tables.reduce(0) {
            $0 + ($1["changed_rows"] as? Int ?? 0) + ($1["added_rows"] as? Int ?? 0) + ($1["removed_rows"] as? Int ?? 0)
        }
        #expect(changed > 0, "the diff shows no changed row: \(diff.out.prefix(2000))")

        let promoted = try pharmaMesh(["kitchen", "promote", "k", "--home", home])
        #expect(promoted.code == 0, "\(promoted.err)")
        #expect(promoted.out.contains("recipe: recipes/\(domain)/\(file)"), "\(promoted.out)")
        let copied = try String(
            contentsOf: URL(fileURLWithPath: home).appendingPathComponent("recipes/\(domain)/\(file)"),
            encoding: .utf8)
        #expect(copied.contains(new))
        // Production's next run keeps the change: the promoted domain is up to date, its readers catch up.
        let next = try pharmaMesh(["run", "--home", home])
        #expect(next.code == 0, "\(next.err)")
        #expect(!next.out.contains("▶ \(domain):"), "\(next.out)")
        let again = try pharmaMesh(["run", "--home", home])
        #expect(again.out.contains("(24 up to date)"), "\(again.out)")
        // The promotion has its OpenLineage events, like a run of production.
        let runID = try #require(
            promoted.out.split(separator: "\n").first?.split(separator: " ").last.map {
                String($0.dropLast())
            })
        let events = URL(fileURLWithPath: home).appendingPathComponent("openlineage/\(runID).jsonl")
        let lines = try String(contentsOf: events, encoding: .utf8).split(separator: "\n")
        #expect(lines.contains { $0.contains("\"COMPLETE\"") && $0.contains("\"\(domain)\"") }, "\(lines.prefix(3))")
    }

    @Test func whenProductionLagsTheRefusalSaysToRunProductionAndFollowingItWorks() throws {
        let dir = try TemporaryDirectory("kitchen-stale")
        defer { dir.remove() }
        let home = try Self.production(in: dir)
        // physician-master republished and nothing rebuilt after it: production's marts lag behind it.
        #expect(try pharmaMesh(["run", "--only", "physician-master", "--force", "--home", home]).code == 0)
        #expect(try pharmaMesh(["kitchen", "create", "fx", "--domains", "field-extracts", "--home", home]).code == 0)
        let recipe = URL(fileURLWithPath: home).appendingPathComponent("kitchens/fx/recipes/field-extracts/deciles.sql")
        try Self.edit(recipe, replacing: "HAVING SUM(f.trx_milli) > 0", with: "HAVING SUM(f.trx_milli) > 1000")
        #expect(try pharmaMesh(["kitchen", "run", "fx", "--home", home]).code == 0)
        let refused = try pharmaMesh(["kitchen", "promote", "fx", "--home", home])
        #expect(refused.code == 2)
        #expect(refused.err.contains("production is out of date; run `pharma-mesh run` first"), "\(refused.err)")
        // Doing what it says: production's run, then the kitchen's, then the promotion.
        #expect(try pharmaMesh(["run", "--home", home]).code == 0)
        #expect(try pharmaMesh(["kitchen", "run", "fx", "--home", home]).code == 0)
        let promoted = try pharmaMesh(["kitchen", "promote", "fx", "--home", home])
        #expect(promoted.code == 0, "\(promoted.err)")
        #expect(promoted.out.contains("field-extracts: kitchen v"), "\(promoted.out)")
    }
}
