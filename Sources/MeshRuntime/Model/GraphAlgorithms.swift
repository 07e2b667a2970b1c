/// Pure graph queries over ids, apart from any scheduling.
private enum Mark { case visiting, done }

public enum GraphAlgorithms {
    /// A cycle in the graph, as the list of nodes along it with the first repeated at the end, or nil.
    /// `edges[n]` lists the nodes `n` depends on.
    public static func findCycle<ID: Hashable & Comparable>(nodes: [ID], edges: [ID: [ID]]) -> [ID]? {
        var marks: [ID: Mark] = [:]
        var stack: [ID] = []
        func visit(_ node: ID) -> [ID]? {
            if marks[node] == .done { return nil }
            if marks[node] == .visiting {
                let start = stack.firstIndex(of: node)!
                return Array(stack[start...]) + [node]
            }
            marks[node] = .visiting
            stack.append(node)
            for next in (edges[node] ?? []).sorted() {
                if let cycle = visit(next) { return cycle }
            }
            stack.removeLast()
            marks[node] = .done
            return nil
        }
        for node in nodes.sorted() {
            if let cycle = visit(node) { return cycle.reversed() }
        }
        return nil
    }

    /// The nodes in dependency order (dependencies first), ties broken by id. Assumes no cycle.
    public static func topologicalOrder<ID: Hashable & Comparable>(nodes: [ID], edges: [ID: [ID]]) -> [ID] {
        let nodeSet = Set(nodes)
        var remaining = Dictionary(
            uniqueKeysWithValues: nodes.map { ($0, Set((edges[$0] ?? []).filter(nodeSet.contains))) })
        var order: [ID] = []
        while !remaining.isEmpty {
            let ready = remaining.filter { $0.value.isEmpty }.keys.sorted()
            guard !ready.isEmpty else { break }
            for node in ready {
                order.append(node)
                remaining[node] = nil
            }
            for key in remaining.keys { remaining[key]!.subtract(ready) }
        }
        return order
    }

    /// Every node reachable downstream of `roots` (the roots included). `dependents[n]` lists who reads `n`.
    public static func downstreamClosure<ID: Hashable>(of roots: Set<ID>, dependents: [ID: [ID]]) -> Set<ID> {
        var result = roots
        var queue = Array(roots)
        while let node = queue.popLast() {
            for next in dependents[node] ?? [] where result.insert(next).inserted { queue.append(next) }
        }
        return result
    }

    /// Every node reachable upstream of `roots` (the roots excluded).
    public static func upstreamClosure<ID: Hashable>(of roots: Set<ID>, edges: [ID: [ID]]) -> Set<ID> {
        var result = Set<ID>()
        var queue = Array(roots)
        while let node = queue.popLast() {
            for next in edges[node] ?? [] where result.insert(next).inserted { queue.append(next) }
        }
        return result
    }
}
