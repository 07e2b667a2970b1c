import Foundation

/// One node of a recipe: a step, the steps it runs after, and the tests that check its result.
public struct RecipeNode: Sendable {
    public var id: StepID
    public var step: any Step
    public var after: [StepID]
    public var tests: [any DataTest]

    public init(_ id: StepID, step: any Step, after: [StepID] = [], tests: [any DataTest] = []) {
        self.id = id
        self.step = step
        self.after = after
        self.tests = tests
    }

    /// A SQL step.
    public static func sql(_ id: StepID, after: [StepID] = [], tests: [any DataTest] = [], _ sql: String) -> RecipeNode
    {
        RecipeNode(id, step: SQLStep(sql), after: after, tests: tests)
    }

    /// A SQL step whose `keeps` tables stay as published while every input table it `reads` is unchanged.
    public static func sql(
        _ id: StepID, after: [StepID] = [], tests: [any DataTest] = [], reads: [String], keeps: [String],
        _ sql: String
    ) -> RecipeNode {
        RecipeNode(id, step: SQLStep(sql, keptWhenUnchanged: (reads, keeps)), after: after, tests: tests)
    }

    /// A Swift step.
    public static func swift(
        _ id: StepID, after: [StepID] = [], version: String = "1", tests: [any DataTest] = [],
        _ body: @escaping @Sendable (StepContext) async throws -> StepReport
    ) -> RecipeNode {
        RecipeNode(id, step: SwiftStep(id.rawValue, version: version, body), after: after, tests: tests)
    }

    /// An external program.
    public static func command(
        _ id: StepID, after: [StepID] = [], tests: [any DataTest] = [], _ executable: String,
        _ arguments: [String] = [],
        environment: [String: String] = [:]
    ) -> RecipeNode {
        RecipeNode(id, step: CommandStep(executable, arguments, environment: environment), after: after, tests: tests)
    }

    /// A nested recipe, run as one step of this one.
    public static func recipe(_ id: StepID, after: [StepID] = [], tests: [any DataTest] = [], _ recipe: Recipe)
        -> RecipeNode
    {
        RecipeNode(id, step: NestedRecipe(recipe), after: after, tests: tests)
    }
}

/// A directed acyclic graph of steps. Steps with no path between them may run concurrently.
public struct Recipe: Sendable {
    public var nodes: [RecipeNode]
    public init(_ nodes: [RecipeNode]) { self.nodes = nodes }

    /// Checks the step ids are unique, every dependency exists, and there is no cycle.
    public func validate(domain: DomainID) throws {
        var seen = Set<StepID>()
        for node in nodes {
            guard seen.insert(node.id).inserted else {
                throw MeshError(.invalidDefinition, "domain \(domain): step \(node.id) is declared twice")
            }
        }
        for node in nodes {
            for dependency in node.after where !seen.contains(dependency) {
                throw MeshError(
                    .invalidDefinition,
                    "domain \(domain): step \(node.id) runs after \(dependency), which is not a step of the recipe")
            }
            if let nested = node.step as? NestedRecipe { try nested.recipe.validate(domain: domain) }
        }
        let edges = Dictionary(uniqueKeysWithValues: nodes.map { ($0.id, $0.after) })
        if let cycle = GraphAlgorithms.findCycle(nodes: nodes.map(\.id), edges: edges) {
            throw MeshError(
                .cycle, "domain \(domain): the recipe has a cycle: \(cycle.map(\.rawValue).joined(separator: " → "))")
        }
    }

    func definitionLines(prefix: String) -> [String] {
        nodes.sorted { $0.id < $1.id }.flatMap { node -> [String] in
            var lines = [
                "\(prefix)step \(node.id) after \(node.after.map(\.rawValue).sorted().joined(separator: ",")) \(node.step.kind)"
            ]
            if let nested = node.step as? NestedRecipe {
                lines.append(contentsOf: nested.recipe.definitionLines(prefix: prefix + "  "))
            } else {
                lines.append(node.step.definition)
            }
            lines.append(contentsOf: node.tests.map { "\(prefix)  test \($0.definition)" })
            return lines
        }
    }

    /// Every step id, nested ones as dotted paths, in a stable order.
    public var allStepIDs: [StepID] {
        nodes.flatMap { node -> [StepID] in
            if let nested = node.step as? NestedRecipe {
                return [node.id] + nested.recipe.allStepIDs.map { StepID("\(node.id).\($0)") }
            }
            return [node.id]
        }
    }
}

/// A recipe used as a step: the runner descends into it, so its steps are recorded and tested one by one.
public struct NestedRecipe: Step {
    public var recipe: Recipe
    public init(_ recipe: Recipe) { self.recipe = recipe }
    public var kind: String { "recipe" }
    public var definition: String { recipe.definitionLines(prefix: "").joined(separator: "\n") }
    public func run(in context: StepContext) async throws -> StepReport {
        // The builder executes nested recipes itself; this path is only taken if someone calls it directly.
        throw MeshError(.invalidDefinition, "nested recipe \(context.step) must be run by the domain builder")
    }
}
