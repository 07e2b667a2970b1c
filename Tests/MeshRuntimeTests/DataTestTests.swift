import Foundation
import GRDB
import Testing

@testable import MeshRuntime

struct DataTestTests {
    private func evaluate(_ test: any DataTest, hasPrevious: Bool = false) throws -> TestResult {
        let queue = try DatabaseQueue()
        return try queue.write { db in
            try db.execute(
                sql: """
                    CREATE TABLE fact (id INTEGER, customer TEXT, kind TEXT);
                    INSERT INTO fact VALUES (1, 'c1', 'A'), (2, 'c2', 'B'), (2, NULL, 'Z'), (4, 'c9', 'A');
                    ATTACH DATABASE ':memory:' AS master;
                    CREATE TABLE master.customer (customer_id TEXT);
                    INSERT INTO master.customer VALUES ('c1'), ('c2');
                    ATTACH DATABASE ':memory:' AS previous;
                    CREATE TABLE previous.fact (id INTEGER);
                    INSERT INTO previous.fact VALUES (1), (2);
                    """)
            return TestResult.evaluate(
                test, step: nil, in: db, context: TestContext(domain: "d", hasPrevious: hasPrevious))
        }
    }

    @Test func notNullFindsTheNullRow() throws {
        let result = try evaluate(NotNull(table: "fact", columns: ["id", "customer"]))
        #expect(result.status == .fail)
        #expect(result.failures == 1)
        #expect(result.sample.first?["kind"] == "Z")
    }

    @Test func uniqueReportsDuplicatedGrains() throws {
        let result = try evaluate(Unique(table: "fact", grain: ["id"], severity: .warn))
        #expect(result.status == .warn)
        #expect(result.sample == [["id": "2", "copies": "2"]])
        #expect(try evaluate(Unique(table: "fact", grain: ["id", "kind"])).status == .pass)
    }

    @Test func uniquePassesAtOnceWhenAUniqueKeyEnforcesTheGrain() throws {
        let queue = try DatabaseQueue()
        try queue.write { db in
            try db.execute(
                sql: """
                    CREATE TABLE keyed (a TEXT NOT NULL, b INTEGER NOT NULL, c TEXT, UNIQUE (b, a));
                    CREATE TABLE wide (a TEXT, b INTEGER, PRIMARY KEY (a, b)) WITHOUT ROWID;
                    CREATE TABLE rowid_key (id INTEGER PRIMARY KEY, v TEXT);
                    CREATE TABLE nullable (a TEXT, b INTEGER, UNIQUE (a, b));
                    CREATE TABLE other_collation (a TEXT NOT NULL COLLATE NOCASE, UNIQUE (a COLLATE BINARY));
                    CREATE TABLE partial (a INTEGER NOT NULL);
                    CREATE UNIQUE INDEX partial_a ON partial(a) WHERE a > 0;
                    INSERT INTO keyed VALUES ('x', 1, NULL), ('x', 2, NULL);
                    INSERT INTO nullable VALUES (NULL, 1), (NULL, 1);
                    INSERT INTO other_collation VALUES ('x'), ('X');
                    INSERT INTO partial VALUES (-1), (-1);
                    """)
            func check(_ table: String, _ grain: [String]) -> TestResult {
                TestResult.evaluate(
                    Unique(table: table, grain: grain), step: nil, in: db, context: TestContext(domain: "d"))
            }
            for (table, grain) in [("keyed", ["a", "b"]), ("wide", ["B", "a"]), ("rowid_key", ["id"])] {
                let result = check(table, grain)
                #expect(result.status == .pass, "\(table)")
                #expect(result.message == "enforced by the table's unique key", "\(table)")
            }
            // Not the key's exact columns: the rows are read (and found unique).
            #expect(check("keyed", ["a", "b", "c"]).message == "ok")
            #expect(check("keyed", ["a"]).status == .fail)
            // A unique key that lets NULLs repeat, compares otherwise, or covers part of the table proves nothing.
            #expect(check("nullable", ["a", "b"]).status == .fail)
            #expect(check("other_collation", ["a"]).status == .fail)
            #expect(check("partial", ["a"]).status == .fail)
        }
    }

    @Test func notNullPassesAtOnceWhenTheSchemaForbidsNulls() throws {
        let queue = try DatabaseQueue()
        try queue.write { db in
            try db.execute(
                sql: """
                    CREATE TABLE declared (a TEXT NOT NULL, b INTEGER NOT NULL, c TEXT);
                    CREATE TABLE clustered (a TEXT, b INTEGER, c TEXT, PRIMARY KEY (a, b)) WITHOUT ROWID;
                    CREATE TABLE rowid_pk (a TEXT PRIMARY KEY, c TEXT);
                    INSERT INTO declared VALUES ('x', 1, NULL);
                    INSERT INTO clustered VALUES ('x', 1, NULL);
                    INSERT INTO rowid_pk VALUES (NULL, 'y');
                    """)
            func check(_ table: String, _ columns: [String]) -> TestResult {
                TestResult.evaluate(
                    NotNull(table: table, columns: columns), step: nil, in: db, context: TestContext(domain: "d"))
            }
            for (table, columns) in [("declared", ["a", "B"]), ("clustered", ["a", "b"])] {
                let result = check(table, columns)
                #expect(result.status == .pass, "\(table)")
                #expect(result.message == "enforced by the table's NOT NULL columns", "\(table)")
            }
            // A column the schema lets be NULL is read, and found NULL.
            #expect(check("declared", ["a", "c"]).status == .fail)
            #expect(check("clustered", ["c"]).status == .fail)
            // A rowid table's PRIMARY KEY admits NULLs (SQLite's legacy rule): read, and found NULL.
            #expect(check("rowid_pk", ["a"]).status == .fail)
        }
    }

    @Test func acceptedValuesListsTheOthers() throws {
        let result = try evaluate(AcceptedValues(table: "fact", column: "kind", values: ["A", "B"]))
        #expect(result.failures == 1)
        #expect(result.sample.first?["kind"] == "Z")
    }

    @Test func relationshipReachesIntoAnotherDomain() throws {
        let result = try evaluate(
            Relationship(table: "fact", column: "customer", references: "master.customer", column: "customer_id"))
        #expect(result.failures == 1)
        #expect(result.sample.first?["customer"] == "c9")
    }

    @Test func rowCountBoundsAndChange() throws {
        #expect(try evaluate(RowCountBounds(table: "fact", min: 1, max: 4)).status == .pass)
        #expect(try evaluate(RowCountBounds(table: "fact", max: 3)).sample == [["row_count": "4"]])
        // 2 → 4 rows is +100%.
        #expect(try evaluate(RowCountChange(table: "fact", maxPercent: 150), hasPrevious: true).status == .pass)
        let grown = try evaluate(RowCountChange(table: "fact", maxPercent: 50, severity: .fail), hasPrevious: true)
        #expect(grown.status == .fail)
        #expect(grown.sample.first?["change_percent"] == "100.0")
        #expect(
            try evaluate(RowCountChange(table: "fact", maxPercent: 50), hasPrevious: false).message == "not applicable")
    }

    @Test func customSQLAndBrokenTests() throws {
        #expect(try evaluate(CustomSQLTest("ids_positive", sql: "SELECT * FROM fact WHERE id <= 0")).status == .pass)
        let broken = try evaluate(CustomSQLTest("typo", sql: "SELECT * FROM no_such_table"))
        #expect(broken.status == .error)
        #expect(broken.isBlocking)
        #expect(broken.message.contains("no such table: no_such_table"))
    }
}

extension DataTestTests {
    /// A relationship the previous version passed, checked over a change set: the changed rows decide, and
    /// a scoped query that cannot run (the previous version lacks the referenced table) reads everything.
    @Test func aScopedRelationshipChecksTheChangesAndFallsBackWhenItCannotRun() throws {
        let queue = try DatabaseQueue()
        try queue.write { db in
            try db.execute(
                sql: """
                    CREATE TABLE dim (k INTEGER PRIMARY KEY);
                    INSERT INTO dim VALUES (1), (2);
                    CREATE TABLE fact (k INTEGER);
                    INSERT INTO fact VALUES (1), (2), (3);
                    CREATE TEMP TABLE changed AS SELECT 1 AS mesh_sign, * FROM fact WHERE k = 2;
                    ATTACH DATABASE ':memory:' AS previous;
                    CREATE TABLE previous.dim (k INTEGER PRIMARY KEY);
                    INSERT INTO previous.dim VALUES (1), (2);
                    """)
            let test = Relationship(table: "fact", column: "k", references: "dim", column: "k")
            let scoped = TestContext(
                domain: "d", hasPrevious: true, changes: ["fact": "temp.changed"], previouslyPassed: [test.name])
            // Only the changed row (k = 2) is checked: the orphan 3 predates the change set, so it is not seen.
            let passed = TestResult.evaluate(test, step: nil, in: db, context: scoped)
            #expect(passed.status == .pass && passed.message.hasPrefix("ok (checked the rows changed"))
            // Without the previous pass, the whole table is read and 3 is found.
            let whole = TestResult.evaluate(
                test, step: nil, in: db, context: TestContext(domain: "d", hasPrevious: true, changes: scoped.changes))
            #expect(whole.status == .fail && whole.failures == 1 && whole.message == "1 offending row")
            // A key the dimension lost (2, still referenced by the fact) fails the scoped check.
            try db.execute(sql: "DELETE FROM dim WHERE k = 2")
            let lost = TestResult.evaluate(test, step: nil, in: db, context: scoped)
            #expect(lost.status == .fail && lost.sample == [["k": "2", "rows": "1"]])
            // So does one the change set does not name (1): only the dimension's loss shows it.
            try db.execute(sql: "INSERT INTO dim VALUES (2); DELETE FROM dim WHERE k = 1")
            let lostUnchanged = TestResult.evaluate(test, step: nil, in: db, context: scoped)
            #expect(lostUnchanged.status == .fail && lostUnchanged.sample == [["k": "1", "rows": "1"]])
            try db.execute(sql: "INSERT INTO dim VALUES (1); DELETE FROM dim WHERE k = 2")
            // No previous dimension to compare with: the scoped query fails to run, and the whole query runs.
            try db.execute(sql: "DROP TABLE previous.dim")
            let fallback = TestResult.evaluate(test, step: nil, in: db, context: scoped)
            #expect(fallback.status == .fail && fallback.failures == 2 && fallback.message == "2 offending rows")
        }
    }
}
