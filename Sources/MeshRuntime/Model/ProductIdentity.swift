import Foundation

/// The program that runs the mesh, as the runtime names it to people and to other systems: its name (the
/// OpenLineage namespace), its OpenLineage producer, and the commands its messages suggest.
///
/// The runtime knows no program: the program sets its identity in `MeshConfiguration.product` and
/// `Kitchens.product`.
///
/// ```swift
/// let product = ProductIdentity(name: "acme-mesh", producer: "https://example.com/acme-mesh") { command in
///     switch command {
///     case .run: "acme-mesh run"
///     case .kitchenCreate: "acme-mesh kitchen create NAME --domains A,B"
///     case .kitchenRun(let name, let force): "acme-mesh kitchen run \(name)\(force ? " --force" : "")"
///     case .kitchenDiff(let name): "acme-mesh kitchen diff \(name)"
///     }
/// }
/// ```
public struct ProductIdentity: Sendable {
    /// A command the runtime's messages point people to.
    public enum Command: Sendable, Hashable {
        /// A run of the production mesh.
        case run
        /// Making a kitchen.
        case kitchenCreate
        /// A run of a kitchen, forced to rebuild its domains when `force`.
        case kitchenRun(String, force: Bool)
        /// The comparison of a kitchen with its parent.
        case kitchenDiff(String)
    }

    /// The program's name; the namespace of its OpenLineage jobs and datasets.
    public var name: String
    /// The OpenLineage producer: a URI naming the program.
    public var producer: String
    /// The schema URL of the OpenLineage run facet the runtime adds (`meshRun`).
    public var runFacetSchema: String
    /// How the program spells a command.
    public var command: @Sendable (Command) -> String

    public init(
        name: String, producer: String, runFacetSchema: String? = nil,
        command: @escaping @Sendable (Command) -> String
    ) {
        self.name = name
        self.producer = producer
        self.runFacetSchema = runFacetSchema ?? "\(producer)#meshRun"
        self.command = command
    }

    /// The identity of a program that sets none: commands of a program called `mesh`.
    public static let generic = ProductIdentity(name: "mesh", producer: "urn:mesh-runtime") { command in
        standardCommand(command, program: "mesh")
    }

    /// A command spelled the usual way for `program` (`program kitchen run NAME`, ...).
    public static func standardCommand(_ command: Command, program: String) -> String {
        switch command {
        case .run: "\(program) run"
        case .kitchenCreate: "\(program) kitchen create NAME --domains A,B"
        case .kitchenRun(let name, let force): "\(program) kitchen run \(name)\(force ? " --force" : "")"
        case .kitchenDiff(let name): "\(program) kitchen diff \(name)"
        }
    }
}
