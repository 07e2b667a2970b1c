import Foundation

/// A step that says which input tables it reads to write each of its tables, when its SQL (if any) does not
/// show it: a Swift step that copies or derives tables.
///
/// ```swift
/// extension CopyDimensions: DeclaresReads {
///     func reads(writing table: String) -> [String]? { tables.contains(table) ? ["conformed_dims.\(table)"] : nil }
/// }
/// ```
public protocol DeclaresReads: Step {
    /// The tables the step writes.
    var writes: [String] { get }
    /// The tables (`schema.table`, or a table of the same build) it reads to write `table`.
    func reads(writing table: String) -> [String]
}

/// The lineage of one table: every table it is built from, across domains, each once, with the edges between
/// them. Read from what each step's SQL names (or declares, `DeclaresReads`); a table written by a step that
/// shows neither is taken to read all of its domain's inputs, and says so.
public struct TableLineage: Codable, Sendable {
    public struct Node: Codable, Sendable, Hashable {
        /// `domain.table`; a domain's id where a step reads some of its tables without naming them; or
        /// `source:NAME` for an external source.
        public var id: String
        public var domain: DomainID
        /// Nil for a whole domain or a source.
        public var table: String?
        public var version: Int?
        /// True when the table's reads are its domain's inputs as a whole, not read from its SQL.
        public var wholeDomain: Bool
    }
    public struct Edge: Codable, Sendable, Hashable {
        /// What is read, and what reads it.
        public var from: String
        public var to: String
    }
    public var root: String
    /// Every node once: the root first, then breadth-first upstream.
    public var nodes: [Node]
    public var edges: [Edge]

    /// The node's direct upstream, in the order found.
    public func upstream(of id: String) -> [String] { edges.filter { $0.to == id }.map(\.from) }
}

extension Mesh {
    /// The lineage of `table` of a domain's current version, down to the external sources.
    public func lineage(of domain: DomainID, table: String) throws -> TableLineage {
        guard let definition = registry[domain] else {
            throw MeshError(.unknownDomain, "unknown domain '\(domain)'")
        }
        guard definition.outputs.contains(where: { $0.table == table }) else {
            throw MeshError(
                .notFound,
                "\(domain) publishes no table \(table); its tables are: \(definition.outputs.map(\.table).joined(separator: ", "))"
            )
        }
        let current = try store.currentVersions()
        let root = "\(domain).\(table)"
        var nodes: [TableLineage.Node] = []
        var edges: [TableLineage.Edge] = []
        var seen: Set<String> = []
        // A table, or a whole domain (table nil) where the steps do not say which of its tables are read.
        var queue: [(DomainID, String?)] = [(domain, table)]
        while !queue.isEmpty {
            let (id, name) = queue.removeFirst()
            let key = name.map { "\(id).\($0)" } ?? id.rawValue
            guard seen.insert(key).inserted, let owner = registry[id] else { continue }
            let (reads, whole): ([TableRead], Bool) =
                if let name { Self.tablesRead(by: name, in: owner, registry: registry) } else {
                    (owner.upstreamDomains.map { TableRead.domain($0) } + owner.sources.map { .source($0) }, false)
                }
            nodes.append(
                .init(id: key, domain: id, table: name, version: current[id]?.version, wholeDomain: whole))
            for read in reads {
                switch read {
                case .table(let input, let inputTable):
                    edges.append(.init(from: "\(input).\(inputTable)", to: key))
                    queue.append((input, inputTable))
                case .domain(let input):
                    edges.append(.init(from: input.rawValue, to: key))
                    queue.append((input, nil))
                case .source(let source):
                    let sourceID = "source:\(source)"
                    edges.append(.init(from: sourceID, to: key))
                    if seen.insert(sourceID).inserted {
                        nodes.append(
                            .init(
                                id: sourceID, domain: DomainID(sourceID), table: nil, version: nil, wholeDomain: false))
                    }
                }
            }
        }
        var unique: [TableLineage.Edge] = []
        var known: Set<TableLineage.Edge> = []
        for edge in edges where known.insert(edge).inserted { unique.append(edge) }
        return TableLineage(root: root, nodes: nodes, edges: unique)
    }

    enum TableRead: Hashable {
        case table(DomainID, String)
        /// Some tables of a domain, which the reading step does not name.
        case domain(DomainID)
        case source(String)
    }

    /// What a published table of a domain reads: the input tables its producing steps name, following the
    /// domain's own intermediate tables; or, when no step shows what it reads, every input of the domain.
    static func tablesRead(by table: String, in domain: Domain, registry: DomainRegistry) -> ([TableRead], Bool) {
        let schemas = Dictionary(
            uniqueKeysWithValues: domain.upstreamDomains.map { ($0.schemaName.lowercased(), $0) })
        let steps = Self.flattenedSteps(domain.recipe)
        var result: [TableRead] = []
        var visited: Set<String> = []
        var whole = false
        func follow(_ name: String) {
            guard visited.insert(name.lowercased()).inserted else { return }
            let producers = steps.filter { Self.writes($0, table: name) }
            if producers.isEmpty && name.lowercased() == table.lowercased() {
                whole = true
                return
            }
            for step in producers {
                for reference in Self.references(of: step, writing: name) {
                    let parts = reference.split(separator: ".", maxSplits: 1).map(String.init)
                    if parts.count == 2, let input = schemas[parts[0].lowercased()] {
                        if registry[input]?.outputs.contains(where: { $0.table == parts[1] }) == true {
                            result.append(.table(input, parts[1]))
                        }
                    } else if parts.count == 1 || parts[0].lowercased() == "main" {
                        let local = parts.last!
                        if local.lowercased() != name.lowercased(),
                            steps.contains(where: { Self.writes($0, table: local) })
                        {
                            follow(local)
                        }
                    }
                }
            }
        }
        follow(table)
        // A domain that reads only external sources (a raw domain) reads exactly them: that is not a guess.
        if whole { result = domain.upstreamDomains.map { TableRead.domain($0) } }
        whole = whole && !domain.upstreamDomains.isEmpty
        result += domain.sources.map { TableRead.source($0) }
        var unique: [TableRead] = []
        for read in result where !unique.contains(read) { unique.append(read) }
        return (unique, whole)
    }

    static func flattenedSteps(_ recipe: Recipe) -> [any Step] {
        recipe.nodes.flatMap { node -> [any Step] in
            if let nested = node.step as? NestedRecipe { return flattenedSteps(nested.recipe) }
            return [node.step]
        }
    }

    static func writes(_ step: any Step, table: String) -> Bool {
        if let declared = step as? any DeclaresReads { return declared.writes.contains(table) }
        guard let sql = (step as? any EditableSQL)?.editableSQL else { return false }
        return statements(of: sql).contains { statementWrites($0, table: table) }
    }

    /// Whether one SQL statement creates or inserts into the table.
    static func statementWrites(_ statement: String, table: String) -> Bool {
        let name = NSRegularExpression.escapedPattern(for: table)
        let pattern =
            "(?i)^\\s*(CREATE\\s+(TEMP\\s+|TEMPORARY\\s+)?TABLE\\s+(IF\\s+NOT\\s+EXISTS\\s+)?|(WITH\\b.*\\b)?INSERT\\s+(OR\\s+\\w+\\s+)?INTO\\s+)(main\\.)?\"?\(name)\"?\\b"
        return statement.range(of: pattern, options: .regularExpression) != nil
    }

    /// A script's statements, comments removed (split at semicolons outside string literals).
    static func statements(of sql: String) -> [String] {
        let text = sql.replacingOccurrences(of: "--[^\n]*", with: " ", options: .regularExpression)
        var result: [String] = []
        var current = ""
        var quoted = false
        for character in text {
            if character == "'" { quoted.toggle() }
            if character == ";" && !quoted {
                result.append(current)
                current = ""
            } else {
                current.append(character)
            }
        }
        result.append(current)
        return result.filter { !$0.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty }
    }

    /// The table names read (after FROM or JOIN, qualified or not) by the statements of a step that write the
    /// table, or what the step declares.
    static func references(of step: any Step, writing table: String) -> [String] {
        if let declared = step as? any DeclaresReads { return declared.reads(writing: table) }
        guard let sql = (step as? any EditableSQL)?.editableSQL else { return [] }
        return references(ofSQL: sql, writing: table)
    }

    /// The table names read (after FROM or JOIN) by the statements of a script that write the table.
    static func references(ofSQL sql: String, writing table: String) -> [String] {
        let regex = try! NSRegularExpression(
            pattern: "(?i)\\b(?:FROM|JOIN)\\s+\"?([A-Za-z_][\\w]*(?:\"?\\.\"?[A-Za-z_][\\w]*)?)\"?")
        return statements(of: sql).filter { statementWrites($0, table: table) }.flatMap { statement in
            regex.matches(in: statement, range: NSRange(statement.startIndex..., in: statement)).compactMap {
                Range($0.range(at: 1), in: statement).map {
                    String(statement[$0]).replacingOccurrences(of: "\"", with: "")
                }
            }
        }
    }
}
