import Foundation

/// Why a kitchen cannot be promoted yet, and which side must move: the kitchen (run it again, fix its recipe,
/// rebuild it with this program) or its parent (bring it up to date first).
///
/// A refused promotion throws a `MeshError` whose `refusals` carry these; its message is their sentences,
/// with the commands of the program (`Kitchens.product`).
///
/// ```swift
/// KitchenRefusal.notBuilt("orders-mart", kitchen: "k").sentence(ProductIdentity.generic.command)
/// // orders-mart: the kitchen changed it but has not built the change yet; run `mesh kitchen run k`, ...
/// ```
package enum KitchenRefusal: Sendable, Hashable {
    /// The kitchen changed the domain but has not built the change.
    case notBuilt(DomainID, kitchen: String)
    /// The kitchen's last run of the domain failed (with the tests that failed, if any).
    case lastRunFailed(
        DomainID, kitchen: String, run: RunID, status: RunStatus, message: String?, failedTests: [String])
    /// The kitchen built the domain with parameters the parent does not resolve; a promotion carries SQL only.
    case parametersDiffer(DomainID, parent: String, kitchen: [String: String], parentValues: [String: String])
    /// The kitchen's build is of code the parent would not build even with the kitchen's SQL.
    case otherProgram(DomainID, kitchen: String, parent: String, built: String, parentWouldBuild: String)
    /// The build read a version of a kitchen domain that has since been rebuilt.
    case kitchenInputMoved(DomainID, kitchen: String, upstream: String, used: Int, now: Int?)
    /// The kitchen read the parent's current inputs, but they lag an upstream: the parent must run first.
    case parentOutOfDate(DomainID, kitchen: String, parent: String, upstream: String, used: Int, now: Int?)
    /// The parent's upstream moved on since the kitchen's build: the kitchen must run again.
    case parentMovedOn(DomainID, kitchen: String, parent: String, upstream: String, used: Int, now: Int?)

    /// The domain refused.
    package var domain: DomainID {
        switch self {
        case .notBuilt(let id, _), .lastRunFailed(let id, _, _, _, _, _), .parametersDiffer(let id, _, _, _),
            .otherProgram(let id, _, _, _, _), .kitchenInputMoved(let id, _, _, _, _),
            .parentOutOfDate(let id, _, _, _, _, _), .parentMovedOn(let id, _, _, _, _, _):
            id
        }
    }

    /// The refusal in words, with the commands as `command` spells them.
    package func sentence(_ command: (ProductIdentity.Command) -> String) -> String {
        func run(_ home: String) -> String {
            "`\(command(home == "production" ? .run : .kitchenRun(home, force: false)))`"
        }
        switch self {
        case .notBuilt(let id, let kitchen):
            return
                "\(id): the kitchen changed it but has not built the change yet; run \(run(kitchen)), check `\(command(.kitchenDiff(kitchen)))`, then promote"
        case .lastRunFailed(let id, let kitchen, let runID, let status, let message, let failedTests):
            return "\(id): its last kitchen run \(runID) ended in \(status.rawValue)"
                + (failedTests.isEmpty
                    ? (message.map { " (\($0))" } ?? "")
                    : "; failed tests: \(failedTests.joined(separator: ", "))")
                + "; fix the recipe and run the kitchen again (\(run(kitchen)))"
        case .parametersDiffer(let id, let parent, let mine, let theirs):
            let keys = Set(mine.keys).union(theirs.keys).filter { mine[$0] != theirs[$0] }.sorted()
            return
                "\(id) was built with \(keys.map { "\($0)=\(mine[$0] ?? "-")" }.joined(separator: ", ")) but \(parent) resolves \(keys.map { "\($0)=\(theirs[$0] ?? "-")" }.joined(separator: ", ")): a promotion carries SQL, not parameters; put them in the variation \(parent) runs (the home's config/variations.json), or run the kitchen with \(parent)'s parameters"
        case .otherProgram(let id, let kitchen, let parent, let built, let parentWouldBuild):
            return
                "\(id): the kitchen built it with code \(built), and \(parent) would build \(parentWouldBuild) even with the kitchen's SQL: the kitchen's build is of another program; rebuild it with this one (`\(command(.kitchenRun(kitchen, force: true)))`)"
        case .kitchenInputMoved(let id, let kitchen, let upstream, let used, let now):
            return
                "\(id) was built from the kitchen's \(upstream)@v\(used), which is now v\(now ?? 0): run the kitchen again (\(run(kitchen)))"
        case .parentOutOfDate(let id, let kitchen, let parent, let upstream, let used, let now):
            return
                "\(id) reads \(parent)'s current inputs, but they were built from \(upstream)@v\(used) and \(parent)'s \(upstream) is now v\(now.map(String.init) ?? "-"): \(parent) is out of date; run \(run(parent)) first, then \(run(kitchen)), then promote"
        case .parentMovedOn(let id, let kitchen, let parent, let upstream, let used, let now):
            return
                "\(id) was built from \(upstream)@v\(used), but \(parent)'s \(upstream) is now v\(now.map(String.init) ?? "-"): run \(run(kitchen)) (it reads \(parent)'s current versions), check the diff, then promote"
        }
    }
}
