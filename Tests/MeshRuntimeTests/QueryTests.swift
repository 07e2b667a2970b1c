import Foundation
import GRDB
import MeshTestSupport
import Testing

@testable import MeshRuntime

struct QueryTests {
    private func mesh(_ dir: TemporaryDirectory) async throws -> Mesh {
        let mesh = try ToyMesh.mesh(
            [
                ToyMesh.source("orders", source: "s"),
                ToyMesh.derived(
                    "order-totals", from: ["orders"],
                    sql: "CREATE TABLE items AS SELECT SUM(value) AS value FROM orders.items"),
            ], home: dir.url)
        _ = try await mesh.run(
            RunRequest(sourceStates: ["s": try ToyMesh.writeSource("s", values: [1, 2, 3], home: dir.url)]))
        return mesh
    }

    @Test func selectsAcrossDomainsWithTheVersionsRead() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let mesh = try await mesh(dir)
        let result = try mesh.query(
            "SELECT o.value, t.value AS total FROM orders.items o, order_totals.items AS t WHERE o.value > 1 ORDER BY o.value"
        )
        #expect(result.columns == ["value", "total"])
        #expect(result.rows == [[.integer(2), .integer(6)], [.integer(3), .integer(6)]])
        #expect(result.versions == ["orders": 1, "order-totals": 1])
        let limited = try mesh.query("SELECT value FROM orders.items", maxRows: 2)
        #expect(limited.rows.count == 2 && limited.truncated)
        #expect(try mesh.query("SELECT 'a.b' AS text").rows == [[.text("a.b")]])
    }

    @Test(arguments: [
        "DELETE FROM orders.items",
        "INSERT INTO orders.items VALUES (9)",
        "UPDATE orders.items SET value = 0",
        "CREATE TABLE x (a)",
        "DROP TABLE orders.items",
        "ATTACH DATABASE '/tmp/x.sqlite' AS x",
        "PRAGMA query_only = 0",
        "SELECT 1; DELETE FROM orders.items",
        "VACUUM",
    ])
    func writesAreRefused(sql: String) async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let mesh = try await mesh(dir)
        let error = #expect(throws: MeshError.self) { try mesh.query(sql) }
        #expect(error?.code == .readOnly)
        #expect(try mesh.query("SELECT COUNT(*) FROM orders.items").rows == [[.integer(3)]])
    }

    @Test func commonTableExpressionsAndSubqueryAliasesAreNotSchemas() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let mesh = try await mesh(dir)
        let cte = try mesh.query(
            """
            WITH big AS (SELECT value FROM orders.items WHERE value > 1), top(v) AS MATERIALIZED (SELECT MAX(value) FROM big)
            SELECT big.value, top.v FROM big, top ORDER BY big.value
            """)
        #expect(cte.rows == [[.integer(2), .integer(3)], [.integer(3), .integer(3)]])
        let subquery = try mesh.query(
            "SELECT g.n FROM orders.items o JOIN (SELECT COUNT(*) AS n FROM orders.items) g ON g.n = o.value")
        #expect(subquery.rows == [[.integer(3)]])
        let unknown = #expect(throws: MeshError.self) {
            try mesh.query("WITH big AS (SELECT 1) SELECT * FROM orderz.items, big")
        }
        #expect(unknown?.message.hasPrefix("unknown schema 'orderz'") == true)
    }

    @Test func errorsNameCloseAlternatives() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let mesh = try await mesh(dir)
        let schema = #expect(throws: MeshError.self) { try mesh.query("SELECT * FROM order_total.items") }
        #expect(schema?.message == "unknown schema 'order_total'; did you mean order_totals?")
        let table = #expect(throws: MeshError.self) { try mesh.query("SELECT * FROM orders.item") }
        #expect(table?.message == "no such table: orders.item; did you mean orders.items?")
    }

    @Test func aQueryKeepsItsVersionsWhileARunPublishes() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let mesh = try await mesh(dir)
        let (queue, versions) = try mesh.snapshot(attaching: ["orders"])
        _ = try await mesh.run(
            RunRequest(sourceStates: ["s": try ToyMesh.writeSource("s", values: [5], home: dir.url)]))
        #expect(versions["orders"]?.version == 1)
        #expect(
            try await queue.read { db in try Int.fetchAll(db, sql: "SELECT value FROM orders.items ORDER BY 1") } == [
                1, 2, 3,
            ])
        #expect(try mesh.query("SELECT value FROM orders.items").rows == [[.integer(5)]])
    }
}

struct QueryLimitTests {
    @Test func aRunawayQueryIsStoppedAtTheTimeLimit() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let mesh = try ToyMesh.mesh([ToyMesh.source("a", source: "s")], home: dir.url)
        let runaway = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT COUNT(*) FROM n"
        let error = #expect(throws: MeshError.self) { try mesh.query(runaway, timeout: 0.3) }
        #expect(error?.message == "the query ran longer than 0.3 s and was stopped; narrow it or add a LIMIT")
    }
}
