import ArgumentParser
import Foundation
import Ingest
import MeshPostgres
import MeshRuntime

/// `kitchen create|list|run|diff|promote|delete`: development sandboxes and the path to production.
struct KitchenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kitchen",
        abstract: "Development sandboxes: re-create domains, change them, compare, promote.",
        discussion: """
            A kitchen builds some domains in HOME/kitchens/NAME and reads every other domain from its parent's
            published versions in place (creating one copies no data). Change the SQL of its domains in
            HOME/kitchens/NAME/recipes/DOMAIN/STEP.sql, or their parameters with `kitchen run --param`, run it,
            compare with `kitchen diff`, and publish with `kitchen promote`. Production is never touched
            until the promotion.
            """,
        subcommands: [Create.self, List.self, Run.self, Diff.self, Promote.self, Delete.self])

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a kitchen of the whole mesh, or of some domains (instant: no data is copied).")
        @OptionGroup var mesh: MeshOptions
        @Argument(help: "The kitchen's name.") var name: String
        @Option(help: "production, or the kitchen to start from.") var from = "production"
        @Option(help: "The domains the kitchen builds, comma-separated. Default: every domain of the mesh.")
        var domains: String?

        func run() throws {
            let base = try mesh.baseRegistry()
            let effective = try mesh.kitchens.effectiveRegistry(for: from == "production" ? nil : from, base: base)
            let ids =
                domains.map { $0.split(separator: ",").map { DomainID($0.trimmingCharacters(in: .whitespaces)) } }
                ?? effective.ids
            let manifest = try mesh.kitchens.create(name, from: from, domains: ids, registry: effective)
            let home = mesh.kitchens.home(of: name)
            print(
                "kitchen \(name) created from \(manifest.from): builds \(manifest.domains.map(\.rawValue).joined(separator: ", "))"
            )
            print("  home:    \(home.path)")
            print("  recipes: \(home.appendingPathComponent("recipes").path) (the SQL of its steps: edit, then run)")
            print("  next:    pharma-mesh kitchen run \(name)")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every kitchen.")
        @OptionGroup var mesh: MeshOptions
        @Flag(help: "Print JSON instead of a table.") var json = false
        func run() throws {
            let kitchens = try mesh.kitchens.list()
            if json {
                print(try JSON.string(kitchens))
                return
            }
            guard !kitchens.isEmpty else {
                print("no kitchens; create one with `pharma-mesh kitchen create NAME --domains A,B`")
                return
            }
            print(
                Console.table(
                    ["NAME", "FROM", "DOMAINS", "CREATED", "PROMOTED"],
                    kitchens.map {
                        [
                            $0.name, $0.from, $0.domains.map(\.rawValue).joined(separator: ","),
                            Console.date($0.createdAt),
                            $0.promotions.last.map { Console.date($0.at) } ?? "never",
                        ]
                    }))
        }
    }

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Build the kitchen's domains from the parent's current versions (production is not touched).")
        @OptionGroup var mesh: MeshOptions
        @Argument(help: "The kitchen.") var name: String
        @Option(
            name: .customLong("param"),
            help: "DOMAIN.NAME=VALUE: a parameter for the kitchen's runs (repeatable; kept).")
        var parameters: [String] = []
        @Option(help: "The variation the kitchen's runs use (kept).") var variation: String?
        @Flag(help: "Rebuild the kitchen's domains even when nothing changed.") var force = false

        func run() async throws {
            var values: [String: [String: String]] = [:]
            for text in parameters {
                let parts = text.split(separator: "=", maxSplits: 1).map(String.init)
                let key = parts[0].split(separator: ".", maxSplits: 1).map(String.init)
                guard parts.count == 2, key.count == 2 else {
                    throw ValidationError(
                        "--param \(text): write DOMAIN.NAME=VALUE, for example field-extracts.target_decile=7")
                }
                values[key[0], default: [:]][key[1]] = parts[1]
            }
            let (kitchenMesh, request) = try mesh.kitchens.prepareRun(
                name, base: try mesh.baseRegistry(), configuration: try mesh.configuration(), parameters: values,
                variation: variation, force: force, sourceStates: try Landing.sourceStates(home: mesh.homeURL))
            let summary = try await RunCommand.execute(mesh: kitchenMesh, feeds: nil, asOf: nil, request: request)
            print("next: pharma-mesh kitchen diff \(name)")
            if summary.status.failed || summary.status == .fail {
                throw WorkFailed(
                    message:
                        "kitchen run \(summary.runID) failed: \(summary.failed.map(\.rawValue).joined(separator: ", "))."
                )
            }
        }
    }

    struct Diff: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "What the kitchen changed: schema, row counts, a keyed sample of changed rows, tests side by side.")
        @OptionGroup var mesh: MeshOptions
        @Argument(help: "The kitchen.") var name: String
        @Option(help: "Changed rows shown per table.") var sample = 5
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            let kitchens = mesh.kitchens
            let registry = try kitchens.effectiveRegistry(for: name, base: mesh.baseRegistry())
            let diff = try kitchens.diff(name, registry: registry, sampleSize: sample)
            if json {
                print(try JSON.string(diff))
                return
            }
            for d in diff.domains {
                guard d.builtInKitchen else {
                    print("\(d.domain): not built in the kitchen yet (reads \(diff.parent)'s v\(d.parentVersion ?? 0))")
                    continue
                }
                print(
                    "\(d.domain): \(diff.parent) v\(d.parentVersion.map(String.init) ?? "-") → kitchen v\(d.kitchenVersion ?? 0)"
                        + (d.codeChanged ? ", code changed" : "")
                        + (d.parameterChanges.isEmpty
                            ? ""
                            : ", parameters "
                                + d.parameterChanges.sorted { $0.key < $1.key }.map {
                                    "\($0.key) \($0.value[0]) → \($0.value[1])"
                                }.joined(separator: ", ")))
                let rows = d.tables.map { t -> [String] in
                    [
                        t.table, t.parentRows.map(Console.number) ?? "-", t.kitchenRows.map(Console.number) ?? "-",
                        "+\(t.addedRows) -\(t.removedRows) ~\(t.changedRows)",
                        (t.addedColumns.map { "+\($0)" } + t.removedColumns.map { "-\($0)" }).joined(separator: " "),
                    ]
                }
                print(
                    Console.table(
                        ["TABLE", "PARENT ROWS", "KITCHEN ROWS", "ROWS +ADDED -REMOVED ~CHANGED", "COLUMNS"], rows))
                for t in d.tables {
                    if !t.addedSample.isEmpty {
                        print(
                            "  rows only in the kitchen's \(t.table) (\(t.addedRows), the first by \(t.table)'s grain):"
                        )
                        for row in t.addedSample { print("    + \(row["row"] ?? "")") }
                    }
                    if !t.removedSample.isEmpty {
                        print("  rows only in \(diff.parent)'s \(t.table) (\(t.removedRows)):")
                        for row in t.removedSample { print("    - \(row["row"] ?? "")") }
                    }
                    if !t.sample.isEmpty {
                        print("  changed rows of \(t.table) (\(t.changedRows)):")
                        for row in t.sample {
                            print("    ~ \(row["key"] ?? ""): \(row["parent"] ?? "") → \(row["kitchen"] ?? "")")
                        }
                    }
                    if let partition = t.partition, !t.partitionCounts.isEmpty {
                        print("  rows per \(partition) of \(t.table), where they differ (\(diff.parent) → kitchen):")
                        for count in t.partitionCounts.prefix(20) {
                            print(
                                "    \(count.partition): \(Console.number(count.parentRows)) → \(Console.number(count.kitchenRows))"
                            )
                        }
                        if t.partitionCounts.count > 20 {
                            print("    … \(t.partitionCounts.count - 20) more (--json lists all)")
                        }
                    }
                }
                let differing = d.tests.filter { $0.parent != $0.kitchen }
                print("  tests: \(d.tests.count) in all, \(differing.count) with another result in the kitchen")
                if !differing.isEmpty {
                    print(
                        Console.table(
                            ["STEP", "TEST", "PARENT", "KITCHEN"],
                            differing.map {
                                [$0.step.isEmpty ? "(outputs)" : $0.step, $0.test, $0.parent ?? "-", $0.kitchen ?? "-"]
                            }))
                }
            }
        }
    }

    struct Promote: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Publish the kitchen's builds into its parent (only when tests and the sync check pass).")
        @OptionGroup var mesh: MeshOptions
        @Argument(help: "The kitchen.") var name: String

        func run() async throws {
            let kitchens = mesh.kitchens
            let report = try await kitchens.promote(
                name, base: try mesh.baseRegistry(), variations: try VariationSet.load(from: mesh.configURL),
                logger: { Console.error($0) })
            let from = try kitchens.manifest(name).from
            guard let runID = report.runID else {
                print(
                    "nothing to promote: the kitchen builds what \(from) builds (\(report.unchanged.map(\.rawValue).joined(separator: ", ")) unchanged)"
                )
                return
            }
            print("promoted kitchen \(name) into \(from) as run \(runID):")
            for p in report.promoted { print("  \(p.domain): kitchen v\(p.kitchenVersion) → \(from) v\(p.version)") }
            for file in report.recipeFiles { print("  recipe: \(file)") }
            // Production's PostgreSQL serves the promoted versions too.
            if from == "production", let settings = try PostgresSettings.load(home: mesh.homeURL) {
                let loaded = try await PostgresEngine(settings: settings).catchUp(try mesh.open()) {
                    Console.error("  " + $0)
                }
                if !loaded.isEmpty { print("  postgresql now serves \(loaded.joined(separator: ", "))") }
            }
            if !report.staleDownstream.isEmpty {
                print(
                    "stale until the next run of \(from): \(report.staleDownstream.map(\.rawValue).joined(separator: ", "))"
                )
            }
        }
    }

    struct Delete: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a kitchen (and nothing else).")
        @OptionGroup var mesh: MeshOptions
        @Argument(help: "The kitchen.") var name: String
        func run() throws {
            try mesh.kitchens.delete(name)
            print("deleted kitchen \(name)")
        }
    }
}
