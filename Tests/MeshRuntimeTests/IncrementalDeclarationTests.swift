import Foundation
import GRDB
import MeshTestSupport
import Testing

@testable import MeshRuntime

/// The declarations of the incremental kind: partitions, lookups and input indexes each render every SQL they
/// take part in from one declaration.
struct IncrementalDeclarationTests {
    @Test func partitionsRenderBareAndQualified() {
        #expect(Partition.week(of: "fill_date").sql == "date(fill_date, 'weekday 5')")
        #expect(Partition.week(of: "fill_date").sql(qualifiedBy: "c") == "date(c.fill_date, 'weekday 5')")
        #expect(Partition.day(of: "ts").sql == "substr(ts, 1, 10)")
        #expect(Partition.week(of: .day(of: "ts")).sql(qualifiedBy: "e") == "date(substr(e.ts, 1, 10), 'weekday 5')")
        #expect(Partition.week(of: "d", endingOn: .sunday).sql == "date(d, 'weekday 0')")
        #expect(Partition.column("week_ending").sql(qualifiedBy: "x") == "x.week_ending")
        let key: RowExpression = "COALESCE({a}, '') || '|' || {b}"
        #expect(key.sql == "COALESCE(a, '') || '|' || b")
        #expect(key.sql(qualifiedBy: "t") == "COALESCE(t.a, '') || '|' || t.b")
        #expect(RowExpression("plain").sql(qualifiedBy: "t") == "t.plain")
    }

    /// One lookup declaration gives both the rows change detection compares and the JOIN of the SELECT.
    @Test func aLookupGivesItsComparisonAndItsJoin() throws {
        let lookup = Lookup(
            "customer", table: "crm.xref", alias: "a", key: "source_id", value: "account_id",
            filter: "{system} = 'web'", input: "customer_id")
        #expect(lookup.mappingSQL == "SELECT source_id, account_id FROM crm.xref WHERE system = 'web'")
        #expect(
            lookup.joinSQL(sourceAlias: "o")
                == "LEFT JOIN crm.xref a ON a.system = 'web' AND a.source_id = o.customer_id")
        let chained = Lookup(
            "plan", table: "s.xref", alias: "x", key: "code", value: "COALESCE({key}, 0)", input: "{p} || {q}",
            join: .inner, through: .init("s.keys", alias: "k", key: "id", matches: "plan_id"))
        #expect(chained.joinSQL(sourceAlias: nil).hasPrefix("JOIN s.xref x ON x.code = p || q\n"))
        #expect(chained.joinSQL(sourceAlias: nil).hasSuffix("LEFT JOIN s.keys k ON k.id = x.plan_id"))

        // Both run: the comparison gives the lookup's rows, the fact's SELECT joins them.
        let queue = try DatabaseQueue()
        try queue.inDatabase { db in
            try db.execute(
                sql: """
                    ATTACH ':memory:' AS crm;
                    CREATE TABLE crm.xref (source_id TEXT, account_id INTEGER, system TEXT);
                    INSERT INTO crm.xref VALUES ('c1', 10, 'web'), ('c1', 99, 'store'), ('c2', 20, 'web');
                    CREATE TABLE orders (customer_id TEXT, day TEXT);
                    INSERT INTO orders VALUES ('c1', 'd1'), ('c2', 'd1'), ('c3', 'd2');
                    """)
            let mapped = try GRDB.Row.fetchAll(db, sql: lookup.mappingSQL + " ORDER BY 1").map { "\($0[0] as String)" }
            #expect(mapped == ["c1", "c2"])
            let fact = IncrementalFact(
                table: "fact", partitionColumn: "day", create: "CREATE TABLE fact (day TEXT, account INTEGER)",
                source: .init("orders", alias: "o", partition: .column("day")), lookups: [lookup],
                insert:
                    "INSERT INTO fact SELECT {partition}, COALESCE(a.account_id, 0) FROM orders o {lookup:customer} WHERE {partitions}"
            )
            try db.execute(sql: "CREATE TABLE fact (day TEXT, account INTEGER)")
            try db.execute(sql: try fact.renderedInsert(touched: nil))
            #expect(try Int.fetchAll(db, sql: "SELECT account FROM fact ORDER BY day, account") == [10, 20, 0])
            #expect(
                try fact.renderedInsert(touched: "temp.touched").contains(
                    "WHERE (o.day) IN (SELECT p FROM temp.touched)"))
        }
        let typo = IncrementalFact(
            table: "fact", partitionColumn: "day", create: "CREATE TABLE fact (day TEXT)",
            source: .init("orders", partition: .column("day")),
            insert: "INSERT INTO fact SELECT day FROM orders {lookup:nope}")
        #expect(throws: MeshError.self) { try typo.renderedInsert(touched: nil) }
    }

    /// A consumer's input indexes reach the domain producing the table, once each and in a stable order, and
    /// change its code version.
    @Test func inputIndexesAreHandedToTheirProducer() throws {
        let producer = ToyMesh.source("raw-orders", source: "orders")
        func consumer(_ id: DomainID, _ indexes: [InputIndex]) -> Domain {
            var domain = ToyMesh.derived(id, from: ["raw-orders"], sql: "CREATE TABLE items AS SELECT 1 AS value")
            domain.recipe = Recipe([
                RecipeNode(
                    "fact",
                    step: IncrementalFact(
                        table: "items", partitionColumn: "value", create: "CREATE TABLE items (value INTEGER)",
                        source: .init("raw_orders.items", partition: .column("value")), indexes: indexes,
                        insert: "INSERT INTO items SELECT value FROM raw_orders.items WHERE {partitions}"))
            ])
            return domain
        }
        let alone = try DomainRegistry([producer])
        let registry = try DomainRegistry([
            producer,
            consumer(
                "b-mart", [InputIndex("raw_orders.items", .week(of: "day")), InputIndex("raw_orders.items", "k")]),
            consumer("a-mart", [InputIndex("raw_orders.items", .week(of: "day"))]),
        ])
        let served = try #require(registry["raw-orders"]).servedIndexes
        #expect(served.map(\.expression) == ["date(day, 'weekday 5')", "k"])
        #expect(served.map(\.table) == ["items", "items"])
        #expect(served.first?.consumers == ["a-mart", "b-mart"])
        #expect(registry["raw-orders"]?.codeVersion != alone["raw-orders"]?.codeVersion)
    }
}

/// A fact added to a domain with its SQL and its declaration only: no code of its own, yet it builds in full
/// once, then rebuilds only the partitions a new batch touched, and the steps after it learn which.
///
///     toy-raw ──▶ toy-new-fact   (fact_weekly: week × target; then a step that records what it touched)
extension IncrementalDeclarationTests {
    /// A later step of the same build, reading the fact's touched partitions through the context.
    struct RecordTouched: Step {
        var kind: String { "swift" }
        var definition: String { "record touched v1" }
        func run(in context: StepContext) async throws -> StepReport {
            let touched = context.touchedPartitions(of: "fact_weekly")
            let text: String
            switch touched {
            case .all: text = "all"
            case .only(let values):
                text = values.compactMap { String.fromDatabaseValue($0) }.sorted().joined(separator: ",")
            case nil: text = "unknown"
            }
            try await context.database.write { db in
                try db.execute(sql: "DROP TABLE IF EXISTS main.touched_log")
                try db.execute(sql: "CREATE TABLE main.touched_log AS SELECT ? AS touched", arguments: [text])
            }
            return StepReport()
        }
    }

    static let newFact: Domain = {
        var domain = Domain(
            id: "toy-new-fact", layer: "integrated", owner: Owner(team: "t", contact: "t"), description: "a new fact",
            inputs: [.domain("toy-raw")],
            outputs: [
                OutputPort(table: "fact_weekly", grain: ["week", "target"], columns: [ColumnContract("week", "TEXT")]),
                OutputPort(table: "touched_log", columns: [ColumnContract("touched", "TEXT")]),
            ],
            recipe: Recipe([
                RecipeNode(
                    "weekly",
                    step: IncrementalFact(
                        table: "fact_weekly", partitionColumn: "week",
                        create: """
                            CREATE TABLE fact_weekly (week TEXT NOT NULL, target INTEGER NOT NULL, n INTEGER NOT NULL,
                                PRIMARY KEY (week, target)) WITHOUT ROWID
                            """,
                        source: .init("toy_raw.rows", alias: "r", partition: .column("week")),
                        lookups: [IncrementalFactTests.idLookup],
                        insert: """
                            INSERT INTO fact_weekly SELECT {partition}, COALESCE(m.target, 0), COUNT(*)
                            FROM toy_raw.rows r {lookup:id} WHERE {partitions} GROUP BY 1, 2
                            """)),
                RecipeNode("record", step: RecordTouched(), after: ["weekly"]),
            ]),
            retainedTables: ["fact_partition_state", "fact_mapping_state"])
        domain.buildsOnPreviousVersion = true
        return domain
    }()

    static func read(_ sql: String, in mesh: Mesh) throws -> [String] {
        let (queue, _) = try mesh.snapshot(attaching: ["toy-new-fact"])
        return try queue.read { db in try String.fetchAll(db, sql: sql) }
    }

    @Test func aNewFactNeedsOnlyItsSQLAndDeclaration() async throws {
        typealias Source = IncrementalFactTests.SourceRow
        let dir = try TemporaryDirectory("new-fact")
        defer { dir.remove() }
        let mesh = try ToyMesh.mesh([IncrementalFactTests.raw, Self.newFact], home: dir.url)
        var world = IncrementalFactTests.World(
            rows: [
                Source(id: "a", week: "w1", value: 1, batch: "b1", line: 1),
                Source(id: "b", week: "w1", value: 2, batch: "b1", line: 2),
                Source(id: "a", week: "w2", value: 4, batch: "b1", line: 3),
            ],
            map: ["a": 10, "b": 20])
        let rows = "SELECT week || ' ' || target || ' ' || n FROM toy_new_fact.fact_weekly ORDER BY week, target"
        let touched = "SELECT touched FROM toy_new_fact.touched_log"
        _ = try await mesh.run(RunRequest(sourceStates: try IncrementalFactTests.write(world, home: dir.url)))
        #expect(try Self.read(rows, in: mesh) == ["w1 10 1", "w1 20 1", "w2 10 1"])
        #expect(try Self.read(touched, in: mesh) == ["all"])

        // The next week's batch: only its partition is rebuilt, and the step after the fact is told so.
        world.rows += [
            Source(id: "a", week: "w3", value: 8, batch: "b2", line: 1),
            Source(id: "b", week: "w3", value: 8, batch: "b2", line: 2),
        ]
        _ = try await mesh.run(RunRequest(sourceStates: try IncrementalFactTests.write(world, home: dir.url)))
        #expect(try Self.read(rows, in: mesh) == ["w1 10 1", "w1 20 1", "w2 10 1", "w3 10 1", "w3 20 1"])
        #expect(try Self.read(touched, in: mesh) == ["w3"])
        let incremental = try #require(try mesh.store.currentVersion(of: "toy-new-fact"))

        let outcome = try await mesh.run(RunRequest(only: ["toy-new-fact"], force: ["toy-new-fact"], fullRefresh: true))
        #expect(
            outcome.outcomes["toy-new-fact"]?.status == .success, "\(outcome.outcomes["toy-new-fact"]?.message ?? "")")
        #expect(try Self.read(touched, in: mesh) == ["all"])
        let full = try #require(try mesh.store.currentVersion(of: "toy-new-fact"))
        #expect(full.version == incremental.version + 1)
        // The same rows either way (the log of what was touched aside).
        #expect(try Self.read(rows, in: mesh) == ["w1 10 1", "w1 20 1", "w2 10 1", "w3 10 1", "w3 20 1"])
    }
}
