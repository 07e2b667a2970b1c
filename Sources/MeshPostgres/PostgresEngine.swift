import Foundation
import GRDB
import Logging
import MeshRuntime
import PostgresNIO

/// PostgreSQL as a second engine: it serves the published versions of chosen domains to analysts and tools
/// that share one server, while SQLite stays the build engine and the record.
///
/// Layout in the database, for a domain `physician-mart` (schema `physician_mart`):
/// - `physician_mart__v000012`: the tables of version 12, loaded by `COPY`, indexed on their grain and
///   commented with the data dictionary. One schema per version; the newest `keepVersions` stay.
/// - `physician_mart`: one view per output table over the current version's schema. Switching to a new
///   version re-points every view and records it in `mesh_catalog.served` in one transaction, so a reader
///   sees the whole of one version or the whole of the next.
/// - `mesh_catalog.served` (one row per domain: version, fingerprint, run, and the version record with its
///   exact upstream versions) and `mesh_catalog.publication` (every switch): the history and the sync check,
///   readable from SQL alone.
///
/// Analysts' SQL is the same on both engines for the names it uses: `physician_mart.fact_rx_weekly`.
public struct PostgresEngine: ServingEngine {
    public let settings: PostgresSettings
    let configuration: PostgresConnection.Configuration
    let logger: Logger

    public init(settings: PostgresSettings, logger: Logger = Logger(label: "mesh.postgres")) throws {
        self.settings = settings
        self.configuration = try settings.connection()
        self.logger = logger
    }

    public var name: String { "postgresql" }
    public func serves(_ domain: Domain) -> Bool { settings.serves(domain) }
    public func location(of domain: Domain) -> String? {
        serves(domain) ? "psql \(settings.displayURL) (schema \(domain.id.schemaName))" : nil
    }

    /// The schema that holds one version's tables.
    public static func versionSchema(_ domain: DomainID, _ version: Int) -> String {
        "\(domain.schemaName)__v\(String(format: "%06d", version))"
    }

    // MARK: Connections

    /// Runs `body` on a new connection, closed afterwards; errors come out as sentences.
    public func withConnection<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        let connection: PostgresConnection
        do {
            connection = try await PostgresConnection.connect(
                configuration: configuration, id: Int.random(in: 1...Int(Int32.max)), logger: logger)
        } catch {
            throw PostgresEngineError(
                "cannot connect to PostgreSQL at \(settings.displayURL): \(PostgresEngineError.describe(error)); "
                    + "check that the server runs and the user, password ($PGPASSWORD) and database are right")
        }
        do {
            let value = try await body(connection)
            try? await connection.close()
            return value
        } catch {
            try? await connection.close()
            throw error is PostgresEngineError ? error : PostgresEngineError(PostgresEngineError.describe(error))
        }
    }

    /// Runs one statement whose text the engine built (identifiers quoted, no values from users).
    @discardableResult
    static func execute(_ sql: String, on connection: PostgresConnection, logger: Logger) async throws -> Int {
        var rows = 0
        for try await _ in try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger) { rows += 1 }
        return rows
    }

    static let catalogSQL = [
        "CREATE SCHEMA IF NOT EXISTS mesh_catalog",
        """
        CREATE TABLE IF NOT EXISTS mesh_catalog.served (domain text PRIMARY KEY, version integer NOT NULL,
            schema_name text NOT NULL, fingerprint text NOT NULL, run_id text NOT NULL,
            switched_at timestamptz NOT NULL DEFAULT now(), record jsonb NOT NULL)
        """,
        """
        CREATE TABLE IF NOT EXISTS mesh_catalog.publication (domain text NOT NULL, version integer NOT NULL,
            schema_name text NOT NULL, fingerprint text NOT NULL, run_id text NOT NULL,
            switched_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (domain, version, switched_at))
        """,
    ]

    static func ensureCatalog(on connection: PostgresConnection, logger: Logger) async throws {
        // Serialised: two first publications at once would otherwise race on CREATE IF NOT EXISTS.
        try await execute("BEGIN", on: connection, logger: logger)
        do {
            try await execute("SELECT pg_advisory_xact_lock(7318202611)", on: connection, logger: logger)
            for sql in catalogSQL { try await execute(sql, on: connection, logger: logger) }
            try await execute("COMMIT", on: connection, logger: logger)
        } catch {
            _ = try? await execute("ROLLBACK", on: connection, logger: logger)
            throw error
        }
    }

    // MARK: ServingEngine

    public func stage(_ build: StagedBuild) async throws {
        let schema = Self.versionSchema(build.domain.id, build.version)
        let clock = ContinuousClock.now
        try await withConnection { connection in
            try await Self.ensureCatalog(on: connection, logger: logger)
            try await Self.execute(
                "DROP SCHEMA IF EXISTS \(quoteIdentifier(schema)) CASCADE", on: connection, logger: logger)
            try await Self.execute("CREATE SCHEMA \(quoteIdentifier(schema))", on: connection, logger: logger)
        }
        // Tables go over `loadConnections` connections at once, the largest first, each to the least loaded.
        var lanes = Array(repeating: (rows: 0, ports: [OutputPort]()), count: max(1, settings.loadConnections))
        for port in build.domain.outputs.sorted(by: {
            (build.digests[$0.table]?.rowCount ?? 0, $1.table) > (build.digests[$1.table]?.rowCount ?? 0, $0.table)
        }) {
            let lane = lanes.indices.min { lanes[$0].rows < lanes[$1].rows }!
            lanes[lane].rows += max(1, build.digests[port.table]?.rowCount ?? 0)
            lanes[lane].ports.append(port)
        }
        let loadedRows = try await withThrowingTaskGroup(of: Int.self) { group in
            for lane in lanes where !lane.ports.isEmpty {
                group.addTask { try await self.load(lane.ports, of: build, into: schema) }
            }
            return try await group.reduce(0, +)
        }
        let seconds = Double((ContinuousClock.now - clock) / .milliseconds(1)) / 1000
        build.log(
            "postgresql: loaded \(loadedRows) rows of \(build.domain.outputs.count) tables into \(schema) in "
                + String(format: "%.2f s", seconds) + (settings.verify ? ", digests checked" : ""))
    }

    /// Loads tables on one connection: copy, statistics, then (when verifying) the read-back.
    private func load(_ ports: [OutputPort], of build: StagedBuild, into schema: String) async throws -> Int {
        let source = try Self.openReadOnly(build.file)
        defer { try? source.close() }
        return try await withConnection { connection in
            var rows = 0
            for port in ports {
                rows += try await TableCopy.load(
                    port, from: source, into: schema, on: connection, domain: build.domain.id, logger: logger)
                try await Self.execute(
                    "ANALYZE \(quoteIdentifier(schema)).\(quoteIdentifier(port.table))", on: connection, logger: logger)
                guard settings.verify, let expected = build.digests[port.table] else { continue }
                let actual = try await TableCopy.digest(table: port.table, in: schema, on: connection, logger: logger)
                guard actual.rowCount == expected.rowCount, actual.digest == expected.digest else {
                    throw PostgresEngineError(
                        "the copy of \(build.domain.id).\(port.table) in PostgreSQL differs from the build: "
                            + "\(actual.rowCount) rows with digest \(actual.digest), the build has \(expected.rowCount) "
                            + "with \(expected.digest) (a column holds values of mixed types?)")
                }
            }
            return rows
        }
    }

    public func makeCurrent(_ build: StagedBuild) async throws {
        guard let record = build.record else {
            throw PostgresEngineError("\(build.domain.id)@v\(build.version) has no version record to switch to")
        }
        let domain = build.domain
        let stable = domain.id.schemaName
        let schema = Self.versionSchema(domain.id, build.version)
        let recordJSON = String(decoding: try JSONEncoder().encode(record), as: UTF8.self)
        try await withConnection { connection in
            try await Self.ensureCatalog(on: connection, logger: logger)
            try await Self.execute("BEGIN", on: connection, logger: logger)
            do {
                // A reader's open transaction holds the views: wait for it a while, not forever.
                try await Self.execute("SET LOCAL lock_timeout = '60s'", on: connection, logger: logger)
                try await Self.execute(
                    "CREATE SCHEMA IF NOT EXISTS \(quoteIdentifier(stable))", on: connection, logger: logger)
                var existing: [String: [String]] = [:]
                let rows = try await connection.query(
                    """
                    SELECT c.relname, a.attname || ' ' || format_type(a.atttypid, a.atttypmod) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                    WHERE n.nspname = \(stable) AND c.relkind = 'v' ORDER BY c.relname, a.attnum
                    """, logger: logger)
                for try await (view, column) in rows.decode((String, String).self) {
                    existing[view, default: []].append(column)
                }
                let outputs = Set(domain.outputs.map(\.table))
                for view in existing.keys.sorted() where !outputs.contains(view) {
                    try await Self.execute(
                        "DROP VIEW \(quoteIdentifier(stable)).\(quoteIdentifier(view))", on: connection, logger: logger)
                }
                for port in domain.outputs {
                    let columns = try await TableCopy.columns(
                        of: port.table, in: schema, on: connection, logger: logger)
                    let names = columns.map { String($0.prefix { $0 != " " }) }
                    let select =
                        "SELECT \(names.map(quoteIdentifier).joined(separator: ", ")) FROM \(quoteIdentifier(schema)).\(quoteIdentifier(port.table))"
                    if let old = existing[port.table], old != columns {
                        // Changed columns or types cannot be replaced in place; still one transaction.
                        try await Self.execute(
                            "DROP VIEW \(quoteIdentifier(stable)).\(quoteIdentifier(port.table))", on: connection,
                            logger: logger)
                    }
                    try await Self.execute(
                        "CREATE OR REPLACE VIEW \(quoteIdentifier(stable)).\(quoteIdentifier(port.table)) AS \(select)",
                        on: connection,
                        logger: logger)
                    if !port.description.isEmpty {
                        try await Self.execute(
                            "COMMENT ON VIEW \(quoteIdentifier(stable)).\(quoteIdentifier(port.table)) IS \(quoteLiteral(port.description))",
                            on: connection, logger: logger)
                    }
                }
                let version = build.version
                let fingerprint = record.fingerprint
                let run = record.runID.rawValue
                let domainName = domain.id.rawValue
                try await connection.query(
                    """
                    INSERT INTO mesh_catalog.served (domain, version, schema_name, fingerprint, run_id, record)
                    VALUES (\(domainName), \(version), \(schema), \(fingerprint), \(run), \(recordJSON)::jsonb)
                    ON CONFLICT (domain) DO UPDATE SET version = excluded.version, schema_name = excluded.schema_name,
                        fingerprint = excluded.fingerprint, run_id = excluded.run_id, switched_at = now(),
                        record = excluded.record
                    """, logger: logger)
                try await connection.query(
                    """
                    INSERT INTO mesh_catalog.publication (domain, version, schema_name, fingerprint, run_id)
                    VALUES (\(domainName), \(version), \(schema), \(fingerprint), \(run))
                    """, logger: logger)
                try await Self.execute("COMMIT", on: connection, logger: logger)
            } catch {
                _ = try? await Self.execute("ROLLBACK", on: connection, logger: logger)
                throw error
            }
            build.log("postgresql: \(stable) now serves \(schema)")
            try await retire(domain.id, keeping: build.keepVersions, current: schema, on: connection, log: build.log)
        }
    }

    public func discard(_ build: StagedBuild) async {
        let schema = Self.versionSchema(build.domain.id, build.version)
        _ = try? await withConnection { connection in
            // Never the schema readers see: that one stays until a newer version replaces it.
            let served = try await Self.servedSchema(of: build.domain.id, on: connection, logger: logger)
            if served != schema {
                try await Self.execute(
                    "DROP SCHEMA IF EXISTS \(quoteIdentifier(schema)) CASCADE", on: connection, logger: logger)
            }
        }
    }

    /// Drops version schemas beyond the newest `keep` (never the current one, nor one another view uses).
    func retire(
        _ domain: DomainID, keeping keep: Int, current: String, on connection: PostgresConnection,
        log: @Sendable (String) -> Void
    ) async throws {
        guard keep > 0 else { return }
        let prefix = "\(domain.schemaName)__v"
        let rows = try await connection.query(
            "SELECT nspname FROM pg_namespace WHERE left(nspname, length(\(prefix))) = \(prefix) ORDER BY nspname DESC",
            logger: logger)
        var schemas: [String] = []
        for try await name in rows.decode(String.self) { schemas.append(name) }
        for old in schemas.dropFirst(keep) where old != current {
            do {
                try await Self.execute("DROP SCHEMA \(quoteIdentifier(old)) CASCADE", on: connection, logger: logger)
            } catch {
                log("postgresql: kept \(old): \(PostgresEngineError.describe(error))")
            }
        }
    }

    static func servedSchema(of domain: DomainID, on connection: PostgresConnection, logger: Logger) async throws
        -> String?
    {
        try await ensureCatalog(on: connection, logger: logger)
        let rows = try await connection.query(
            "SELECT schema_name FROM mesh_catalog.served WHERE domain = \(domain.rawValue)", logger: logger)
        for try await name in rows.decode(String.self) { return name }
        return nil
    }

    // MARK: What it serves

    /// The version record of every domain the server serves, from `mesh_catalog.served`.
    public func served() async throws -> [DomainID: VersionRecord] {
        try await withConnection { connection in
            try await Self.ensureCatalog(on: connection, logger: logger)
            let rows = try await connection.query("SELECT record::text FROM mesh_catalog.served", logger: logger)
            var served: [DomainID: VersionRecord] = [:]
            for try await json in rows.decode(String.self) {
                let record = try JSONDecoder().decode(VersionRecord.self, from: Data(json.utf8))
                served[record.domain] = record
            }
            return served
        }
    }

    /// Loads the current versions the server does not serve yet (a mesh that just chose PostgreSQL, or one
    /// whose server was unreachable during a run). Returns what it published.
    public func catchUp(_ mesh: Mesh, progress: @escaping @Sendable (String) -> Void = { _ in }) async throws
        -> [String]
    {
        let served = try await served()
        var published: [String] = []
        for var build in try mesh.currentBuilds(for: self) {
            guard
                served[build.domain.id]?.fingerprint != build.record?.fingerprint
                    || served[build.domain.id]?.version != build.version
            else { continue }
            let label = "\(build.domain.id)@v\(build.version)"
            progress("loading \(label) into PostgreSQL")
            build.log = progress
            do {
                try await stage(build)
                try await makeCurrent(build)
            } catch {
                await discard(build)
                throw PostgresEngineError(
                    "could not publish \(label) to PostgreSQL: \(PostgresEngineError.describe(error))")
            }
            published.append(label)
        }
        return published
    }

    // MARK: Queries

    /// Read-only SQL against the server, in a read-only transaction with a time limit. The result names the
    /// served version of each domain schema the SQL mentions.
    public func query(_ sql: String, maxRows: Int = 100_000, timeout: Double = 60) async throws -> QueryResult {
        let served = try await served()
        return try await withConnection { connection in
            try await Self.execute("BEGIN TRANSACTION READ ONLY", on: connection, logger: logger)
            try await Self.execute(
                "SET LOCAL statement_timeout = \(max(1, Int(timeout * 1000)))", on: connection, logger: logger)
            var columns: [String] = []
            var rows: [[QueryValue]] = []
            var truncated = false
            do {
                for try await row in try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger) {
                    if columns.isEmpty { columns = row.map(\.columnName) }
                    guard rows.count < maxRows else {
                        truncated = true
                        break
                    }
                    rows.append(try row.map(TableCopy.value))
                }
            } catch {
                _ = try? await Self.execute("ROLLBACK", on: connection, logger: logger)
                throw PostgresEngineError("PostgreSQL refused the query: \(PostgresEngineError.describe(error))")
            }
            _ = try? await Self.execute("ROLLBACK", on: connection, logger: logger)
            let lowered = sql.lowercased()
            let versions = served.filter { lowered.contains($0.key.schemaName + ".") }.mapValues(\.version)
            return QueryResult(columns: columns, rows: rows, versions: versions, truncated: truncated)
        }
    }

    static func openReadOnly(_ file: URL) throws -> DatabaseQueue {
        var configuration = Configuration()
        configuration.readonly = true
        configuration.label = "postgresql.source"
        return try DatabaseQueue(path: file.path, configuration: configuration)
    }
}
