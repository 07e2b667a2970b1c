import Foundation

/// A step whose transformation is SQL a team can change without rebuilding the program: a kitchen writes it out
/// as a recipe file (`DOMAIN/STEP.sql`) and an override replaces it. `SQLStep` is one; an incremental kind that
/// keeps its own machinery (partitions, lookups) around a SELECT exposes that SELECT.
///
/// ```swift
/// struct Rollup: EditableSQL {
///     var sql: String
///     var editableSQL: String { sql }
///     func replacingSQL(_ sql: String) -> Rollup { Rollup(sql: sql) }
///     // kind, definition, run(in:) as for any step
/// }
/// ```
public protocol EditableSQL: Step {
    /// The SQL a kitchen writes out as the step's recipe file.
    var editableSQL: String { get }
    /// The same step with other SQL: everything else it declares stays, so an unedited file gives the same
    /// definition (and code version) as the code.
    func replacingSQL(_ sql: String) -> Self
}

extension SQLStep: EditableSQL {
    public var editableSQL: String { sql }
    public func replacingSQL(_ sql: String) -> SQLStep {
        var step = self
        step.sql = sql
        return step
    }
}

/// Editable steps can be changed without rebuilding the program: a file `DIR/DOMAIN/STEP.sql` replaces the SQL
/// of that step (a nested step is `parent.child.sql`). Kitchens export their domains' SQL this way for the team
/// to edit, and a promotion copies the changed files into the production home's `recipes/` folder, so that
/// production builds with the code it promoted (the code version hashes the SQL).
extension DomainRegistry {
    /// The registry with every override under `directory` applied; a file naming an unknown domain or a step
    /// that is not editable SQL is an error naming the file.
    public func applyingRecipeOverrides(from directory: URL) throws -> DomainRegistry {
        let fm = FileManager.default
        guard fm.fileExists(atPath: directory.path) else { return self }
        let domainNames = try fm.contentsOfDirectory(atPath: directory.path)
        var result = self
        for name in domainNames.sorted() where !name.hasPrefix(".") {
            guard var domain = self[DomainID(name)] else {
                throw MeshError(
                    .invalidDefinition,
                    "\(directory.appendingPathComponent(name).path): no domain \(name) in this mesh; remove the folder")
            }
            let folder = directory.appendingPathComponent(name)
            for file in (try fm.contentsOfDirectory(atPath: folder.path)).sorted() where file.hasSuffix(".sql") {
                let step = String(file.dropLast(4))
                let sql = try String(contentsOf: folder.appendingPathComponent(file), encoding: .utf8)
                guard
                    let recipe = Self.replacing(
                        step: step.split(separator: ".").map(String.init), sql: sql, in: domain.recipe)
                else {
                    throw MeshError(
                        .invalidDefinition,
                        "\(folder.appendingPathComponent(file).path): \(name) has no SQL step \(step); its SQL steps are: \(Self.sqlSteps(of: domain.recipe).map(\.0).joined(separator: ", "))"
                    )
                }
                domain.recipe = recipe
            }
            try result.replace(domain)
        }
        return result
    }

    /// Every editable SQL step of a recipe, nested ones as `parent.child`, with its SQL.
    public static func sqlSteps(of recipe: Recipe, prefix: String = "") -> [(String, String)] {
        recipe.nodes.flatMap { node -> [(String, String)] in
            let id = prefix + node.id.rawValue
            if let step = node.step as? any EditableSQL { return [(id, step.editableSQL)] }
            if let nested = node.step as? NestedRecipe { return sqlSteps(of: nested.recipe, prefix: id + ".") }
            return []
        }
    }

    static func replacing(step path: [String], sql: String, in recipe: Recipe) -> Recipe? {
        guard let first = path.first, let index = recipe.nodes.firstIndex(where: { $0.id.rawValue == first }) else {
            return nil
        }
        var recipe = recipe
        if path.count == 1 {
            // Only the SQL changes: the step keeps the rest of its declaration, so an unedited override gives the
            // same definition, and code version, as the code.
            guard let step = recipe.nodes[index].step as? any EditableSQL else { return nil }
            recipe.nodes[index].step = step.replacingSQL(sql)
            return recipe
        }
        guard let nested = recipe.nodes[index].step as? NestedRecipe,
            let inner = replacing(step: Array(path.dropFirst()), sql: sql, in: nested.recipe)
        else { return nil }
        recipe.nodes[index].step = NestedRecipe(inner)
        return recipe
    }
}
