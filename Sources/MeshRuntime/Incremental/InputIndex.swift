/// An index a consumer needs on a table of one of its inputs, built by the domain that produces the table.
///
/// A fact rebuilding one week of a table keyed by an event id seeks the week through an index of its
/// partition expression instead of reading every row; the index belongs to the producer's file, so the
/// consumer declares it and the runtime hands it to the producer (`Domain.servedIndexes`), which builds it
/// (`StepContext.servedIndexes(on:)`). A changed request changes the producer's code version.
///
/// ```swift
/// InputIndex("raw_orders.orders", .day(of: "ordered_at"))   // CREATE INDEX … ON orders (substr(ordered_at, 1, 10))
/// InputIndex("raw_orders.orders", "customer_id")            // a lookup's input, under a LEFT JOIN
/// ```
public struct InputIndex: Sendable, Hashable, CustomStringConvertible {
    /// The input table, `schema.table` (the schema is the producing domain's `schemaName`).
    public var table: String
    /// The indexed expression over the table's bare columns.
    public var expression: String

    public init(_ table: String, _ partition: Partition) { self.init(table, expression: partition.sql) }
    public init(_ table: String, _ expression: RowExpression) { self.init(table, expression: expression.sql) }
    init(_ table: String, expression: String) {
        self.table = table
        self.expression = expression
    }

    /// The schema part of `table`.
    public var schema: String { String(table.prefix { $0 != "." }) }
    /// The table part of `table`.
    public var tableName: String { String(table.drop { $0 != "." }.dropFirst()) }
    public var description: String { "\(table)(\(expression))" }
}

/// A step that needs indexes on its inputs' tables (see ``InputIndex``).
public protocol DeclaresInputIndexes {
    var inputIndexes: [InputIndex] { get }
}

/// An index a domain builds on one of its tables because a consumer asked for it.
public struct ServedIndex: Sendable, Hashable {
    /// The producer's table (no schema).
    public var table: String
    public var expression: String
    /// The consumers that asked for it.
    public var consumers: [DomainID]
}

extension Recipe {
    /// The input indexes its steps declare, nested recipes' included, in recipe order.
    var inputIndexes: [InputIndex] {
        nodes.flatMap { node -> [InputIndex] in
            if let nested = node.step as? NestedRecipe { return nested.recipe.inputIndexes }
            return (node.step as? any DeclaresInputIndexes)?.inputIndexes ?? []
        }
    }
}

extension Domain {
    /// The indexes this domain's steps need on its inputs' tables.
    public var inputIndexes: [InputIndex] { recipe.inputIndexes }
}

extension DomainRegistry {
    /// Hands every consumer's input indexes to the domains producing the tables, in a stable order: consumers
    /// by id, each in its recipe's order; an index two consumers ask for is built once.
    mutating func distributeInputIndexes() {
        var served: [DomainID: [ServedIndex]] = [:]
        let producers = Dictionary(domains.values.map { ($0.id.schemaName, $0.id) }) { first, _ in first }
        for consumer in domains.keys.sorted() {
            for index in domains[consumer]!.inputIndexes {
                guard let producer = producers[index.schema] else { continue }
                var list = served[producer, default: []]
                if let at = list.firstIndex(where: { $0.table == index.tableName && $0.expression == index.expression })
                {
                    if !list[at].consumers.contains(consumer) { list[at].consumers.append(consumer) }
                } else {
                    list.append(
                        ServedIndex(table: index.tableName, expression: index.expression, consumers: [consumer]))
                }
                served[producer] = list
            }
        }
        for id in domains.keys { domains[id]!.servedIndexes = served[id] ?? [] }
    }
}

extension StepContext {
    /// The index expressions consumers asked this domain to build on `table`, in a stable order (see
    /// ``InputIndex``): a step that creates the table builds them after its rows.
    public func servedIndexes(on table: String) -> [String] {
        indexesToServe.filter { $0.table == table }.map(\.expression)
    }
}
