import Foundation
import MeshRuntime

/// One line of `/domains`: enough to choose a domain and follow its URL.
struct DomainSummary: Encodable, Sendable {
    var domain: DomainID
    var layer: String
    var description: String
    var owner: Owner
    var url: String
    var version: Int?
    var builtAt: Date?
    var lastStatus: RunStatus?
    var tests: TestTally
    var sync: SyncVerdict
    var inputVersions: [String: Int]
    var freshness: FreshnessVerdict
    var openProblems: Int

    init(_ status: DomainStatus) {
        domain = status.domain
        layer = status.layer
        description = status.description
        owner = status.owner
        url = "/domains/\(status.domain)"
        version = status.version
        builtAt = status.builtAt
        lastStatus = status.lastStatus
        tests = status.tests
        sync = status.sync
        inputVersions = status.inputVersions
        freshness = status.freshness
        openProblems = status.openProblems
    }

    enum CodingKeys: String, CodingKey {
        case domain, layer, description, owner, url, version, builtAt = "built_at", lastStatus = "last_status", tests
        case sync, inputVersions = "input_versions", freshness, openProblems = "open_problems"
    }
}

/// A domain's four W's and an H: what is in it, where it is, when it was built and tested, with what inputs,
/// and how it is made.
struct DomainDetail: Encodable, Sendable {
    struct Column: Encodable, Sendable {
        var name: String
        var type: String
        var description: String
    }
    struct Table: Encodable, Sendable {
        var table: String
        var description: String
        var grain: [String]
        var rows: Int?
        var columns: [Column]
    }
    struct What: Encodable, Sendable {
        var description: String
        var tables: [Table]
        var catalogURL: String
        enum CodingKeys: String, CodingKey { case description, tables, catalogURL = "catalog_url" }
    }
    struct Where: Encodable, Sendable {
        var engine: String
        var schema: String
        /// The published file, relative to the mesh home.
        var file: String?
        var attachSQL: String?
        var queryURL: String
        var commandLine: String
        /// Other engines serving the domain (PostgreSQL), and how to connect to them.
        var alsoServedBy: [Served] = []
        struct Served: Encodable, Sendable {
            var engine: String
            var connect: String
        }
        enum CodingKeys: String, CodingKey {
            case engine, schema, file, attachSQL = "attach_sql", queryURL = "query_url", commandLine = "command_line"
            case alsoServedBy = "also_served_by"
        }
    }
    struct When: Encodable, Sendable {
        var version: Int?
        var builtAt: Date?
        var builtBy: RunID?
        var lastStatus: RunStatus?
        var lastMessage: String?
        var tests: TestTally
        var recentRuns: [DomainRunRecord]
        /// Against the domain's service level, with the late inputs it reads.
        var freshness: FreshnessVerdict?
        var openProblems: [ProblemRecord]
        var runsURL: String
        var testsURL: String
        var versionsURL: String
        enum CodingKeys: String, CodingKey {
            case version, builtAt = "built_at", builtBy = "built_by", lastStatus = "last_status",
                lastMessage = "last_message", tests, recentRuns = "recent_runs", freshness,
                openProblems = "open_problems", runsURL = "runs_url",
                testsURL = "tests_url", versionsURL = "versions_url"
        }
    }
    struct Input: Encodable, Sendable {
        var domain: DomainID
        /// The version the current build read.
        var version: Int?
        /// The version serving now.
        var currentVersion: Int?
        var url: String
        enum CodingKeys: String, CodingKey { case domain, version, currentVersion = "current_version", url }
    }
    struct WithWhat: Encodable, Sendable {
        var inputs: [Input]
        var upstreamVersions: [String: Int]
        var sources: [String: String]
        var sync: SyncVerdict
        var lineageURL: String
        enum CodingKeys: String, CodingKey {
            case inputs, upstreamVersions = "upstream_versions", sources, sync, lineageURL = "lineage_url"
        }
    }
    struct RecipeStep: Encodable, Sendable {
        var step: String
        var kind: String
        var after: [String]
        var tests: [String]
        var definition: String
    }
    struct How: Encodable, Sendable {
        var recipe: [RecipeStep]
        var outputTests: [String]
        var codeVersion: String
        var codeCommit: String?
        var variation: String?
        var parameters: [String: String]
        var defaultParameters: [String: String]
        var startURL: String
        enum CodingKeys: String, CodingKey {
            case recipe, outputTests = "output_tests", codeVersion = "code_version", codeCommit = "code_commit",
                variation, parameters, defaultParameters = "default_parameters", startURL = "start_url"
        }
    }

    var domain: DomainID
    var layer: String
    var owner: Owner
    var url: String
    var what: What
    var `where`: Where
    var when: When
    var withWhat: WithWhat
    var how: How

    enum CodingKeys: String, CodingKey {
        case domain, layer, owner, url, what, `where`, when, withWhat = "with_what", how
    }

    static func make(_ domain: Domain, mesh: Mesh, statuses: [DomainStatus]) throws -> DomainDetail {
        let current = try mesh.store.currentVersions()
        let version = current[domain.id]
        let status = statuses.first { $0.domain == domain.id }
        let url = "/domains/\(domain.id)"
        let schema = domain.id.schemaName
        let firstTable = domain.outputs.first?.table ?? "TABLE"
        var steps: [RecipeStep] = []
        func flatten(_ recipe: Recipe, prefix: String) {
            for node in recipe.nodes {
                let id = prefix + node.id.rawValue
                steps.append(
                    RecipeStep(
                        step: id, kind: node.step.kind, after: node.after.map { prefix + $0.rawValue },
                        tests: node.tests.map(\.definition), definition: node.step.definition))
                if let nested = node.step as? NestedRecipe { flatten(nested.recipe, prefix: id + ".") }
            }
        }
        flatten(domain.recipe, prefix: "")
        return DomainDetail(
            domain: domain.id, layer: domain.layer, owner: domain.owner, url: url,
            what: What(
                description: domain.description,
                tables: domain.outputs.map { output in
                    Table(
                        table: output.table, description: output.description, grain: output.grain,
                        rows: version?.rowCounts[output.table],
                        columns: output.columns.map {
                            Column(name: $0.name, type: $0.type, description: $0.description)
                        })
                }, catalogURL: url + "/catalog"),
            where: Where(
                engine: "sqlite", schema: schema, file: version?.path,
                attachSQL: version.map { "ATTACH DATABASE 'file:\($0.path)?mode=ro' AS \(schema)" },
                queryURL: "/query?sql=" + "SELECT * FROM \(schema).\(firstTable) LIMIT 10".addingPercentEncoding(
                    withAllowedCharacters: .urlQueryAllowed.subtracting(CharacterSet(charactersIn: "&=+")))!,
                commandLine: "pharma-mesh query \"SELECT * FROM \(schema).\(firstTable) LIMIT 10\"",
                alsoServedBy: mesh.configuration.servingEngines.compactMap { engine in
                    engine.location(of: domain).map { Where.Served(engine: engine.name, connect: $0) }
                }),
            when: When(
                version: version?.version, builtAt: version?.publishedAt, builtBy: version?.runID,
                lastStatus: status?.lastStatus, lastMessage: status?.lastMessage, tests: status?.tests ?? TestTally(),
                recentRuns: try mesh.store.domainRuns(of: domain.id, limit: 10), freshness: status?.freshness,
                openProblems: try mesh.store.problems(of: domain.id, includeClosed: false), runsURL: url + "/runs",
                testsURL: url + "/tests", versionsURL: url + "/versions"),
            withWhat: WithWhat(
                inputs: domain.upstreamDomains.map { input in
                    Input(
                        domain: input, version: version?.inputVersions[input.rawValue],
                        currentVersion: current[input]?.version, url: "/domains/\(input)")
                }, upstreamVersions: version?.upstreamVersions ?? [:], sources: version?.sourceStates ?? [:],
                sync: mesh.syncVerdict(of: domain, current: current), lineageURL: url + "/lineage"),
            how: How(
                recipe: steps, outputTests: domain.tests.map(\.definition), codeVersion: domain.codeVersion,
                codeCommit: version?.codeCommit, variation: version?.variation, parameters: version?.parameters ?? [:],
                defaultParameters: domain.parameters, startURL: url + "/runs"))
    }
}

/// `/domains/{domain}/catalog`: the data dictionary of the published tables, with the current row counts
/// and the columns the current version actually has.
struct Catalog: Encodable, Sendable {
    var domain: DomainID
    var version: Int?
    var fingerprint: String?
    var tables: [DomainDetail.Table]
    /// Columns present in the published file, table by table (what a query will see).
    var publishedSchema: [String: [String]]
    enum CodingKeys: String, CodingKey {
        case domain, version, fingerprint, tables, publishedSchema = "published_schema"
    }

    static func make(_ domain: Domain, mesh: Mesh) throws -> Catalog {
        let version = try mesh.store.currentVersion(of: domain.id)
        return Catalog(
            domain: domain.id, version: version?.version, fingerprint: version?.fingerprint,
            tables: domain.outputs.map { output in
                DomainDetail.Table(
                    table: output.table, description: output.description, grain: output.grain,
                    rows: version?.rowCounts[output.table],
                    columns: output.columns.map {
                        DomainDetail.Column(name: $0.name, type: $0.type, description: $0.description)
                    })
            }, publishedSchema: version?.schema ?? [:])
    }
}

/// One domain's part in one run: the run, its steps, test results and log lines.
struct DomainRunDetail: Encodable, Sendable {
    var run: DomainRunRecord
    var steps: [StepRunRecord]
    var tests: [TestResultRecord]
    var logs: [LogLine]
}

/// A mesh run and the domains it touched.
struct RunDetail: Encodable, Sendable {
    var run: MeshRunRecord
    var domains: [DomainRunRecord]
}

struct LineageAnswer: Encodable, Sendable {
    struct Consumer: Encodable, Sendable {
        var domain: DomainID
        var version: Int?
        var builtFrom: Int?
        enum CodingKeys: String, CodingKey { case domain, version, builtFrom = "built_from" }
    }
    var lineage: Mesh.LineageNode
    var consumers: [Consumer]
}
