import FeedFormats
import Foundation
import GRDB
import MeshRuntime

/// The steward's forced matches and non-matches, from a CSV file kept in the repository.
public struct StewardOverrides: Sendable {
    var matches: [(PhysicianMatcher.PersonKey, PhysicianMatcher.PersonKey)] = []
    var nonMatches: Set<PhysicianMatcher.PairKey> = []
    /// The file's content hash, so that an edited file rebuilds the domain.
    public var fingerprint = "none"

    public init() {}

    /// Reads `action,source,source_id,other_source,other_source_id,note` rows (`action` is `match` or
    /// `non_match`). A missing file means no overrides; a bad row is an error naming the line.
    public static func load(from url: URL) throws -> StewardOverrides {
        var overrides = StewardOverrides()
        guard let text = try? String(contentsOf: url, encoding: .utf8) else { return overrides }
        overrides.fingerprint = Fingerprint.sha256Hex(text).prefix(12).description
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
        where number > 0 {
            let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            let f = trimmed.split(separator: ",", omittingEmptySubsequences: false).map {
                $0.trimmingCharacters(in: .whitespaces)
            }
            guard f.count >= 5, let a = PhysicianSource(rawValue: f[1]), let b = PhysicianSource(rawValue: f[3]),
                f[0] == "match" || f[0] == "non_match"
            else {
                throw MeshError(
                    .invalidDefinition,
                    "\(url.lastPathComponent) line \(number + 1): expected action (match|non_match),source,source_id,other_source,other_source_id[,note] with sources nppes, ama, crm, xponent or claims"
                )
            }
            let x = PhysicianMatcher.PersonKey(source: a, id: f[2])
            let y = PhysicianMatcher.PersonKey(source: b, id: f[4])
            if f[0] == "match" { overrides.matches.append((x, y)) } else { overrides.nonMatches.insert(.init(x, y)) }
        }
        return overrides
    }
}

/// `physician-master`: one golden record per real physician, with a cross-walk of every source id.
enum PhysicianMaster {
    static let owner = Owner(team: "master data: customer", contact: "customer-mdm@pharma-mesh.example")

    static func domain(overrides: StewardOverrides) -> Domain {
        let statusValues = ["active", "deactivated", "retired", "deceased", "provisional"]
        var domain = Domain(
            id: "physician-master", layer: "mastered", owner: owner,
            description:
                "Golden physician records resolved from NPPES, AMA, CRM, Xponent and claims, with stable ids and a cross-walk.",
            inputs: [
                .domain("raw-nppes"), .domain("raw-ama"), .domain("raw-crm_accounts"), .domain("raw-xponent"),
                .domain("raw-claims"),
            ],
            outputs: [
                OutputPort(
                    table: "physician", description: "One golden record per physician", grain: ["physician_id"],
                    columns: [
                        ColumnContract("physician_id", "INTEGER", "stable surrogate, never reused"),
                        ColumnContract("npi", "TEXT", "national provider id"),
                        ColumnContract("me_number", "TEXT", "AMA ME number"),
                        ColumnContract("first_name", "TEXT"), ColumnContract("last_name", "TEXT"),
                        ColumnContract("middle_name", "TEXT"),
                        ColumnContract("credential", "TEXT"),
                        ColumnContract("specialty", "TEXT", "one normalised vocabulary"),
                        ColumnContract("address_line1", "TEXT"), ColumnContract("city", "TEXT"),
                        ColumnContract("state", "TEXT"),
                        ColumnContract("zip5", "TEXT"), ColumnContract("birth_year", "INTEGER"),
                        ColumnContract(
                            "status", "TEXT",
                            "active, deactivated, retired, deceased, or provisional (known only from Xponent or claims ids)"
                        ),
                        ColumnContract("is_prescriber", "INTEGER", "1 when Xponent or claims name the physician"),
                        ColumnContract(
                            "provider_type", "TEXT",
                            "physician, nurse_practitioner, physician_assistant, pharmacist, dentist, other or unknown"),
                    ]),
                OutputPort(
                    table: "physician_xref",
                    description:
                        "Every source id seen, mapped to one physician (its own when it matched no other record), or unmatched with a reason",
                    grain: ["source", "source_id"],
                    columns: [
                        ColumnContract("source", "TEXT", "nppes, ama, crm, xponent or claims"),
                        ColumnContract("source_id", "TEXT"),
                        ColumnContract("physician_id", "INTEGER", "NULL only for a claims NPI that is not valid"),
                        ColumnContract(
                            "match_rule", "TEXT",
                            "anchor, npi, me_number, probabilistic, steward, singleton, provisional, or unmatched"),
                        ColumnContract(
                            "match_probability", "REAL",
                            "0–1: 1 for an identifier, the model's for a probabilistic link, the best candidate's for a singleton"
                        ),
                        ColumnContract(
                            "unmatched_reason", "TEXT", "why a singleton, provisional or unmatched id stands alone"),
                    ]),
                OutputPort(
                    table: "steward_queue",
                    description:
                        "Records with two candidates close in probability, or a valid NPI naming a physician they disagree with, for a steward to decide",
                    grain: ["source", "source_id", "candidate_source", "candidate_source_id"],
                    columns: [
                        ColumnContract("source", "TEXT"), ColumnContract("source_id", "TEXT"),
                        ColumnContract("candidate_source", "TEXT"),
                        ColumnContract("candidate_source_id", "TEXT"),
                        ColumnContract("candidate_physician_id", "INTEGER"),
                        ColumnContract("match_probability", "REAL", "the model's, for this candidate"),
                        ColumnContract("kind", "TEXT", "ambiguous or npi_conflict"),
                        ColumnContract("explanation", "TEXT", "JSON: each comparison's agreement level and weight"),
                    ]),
                OutputPort(
                    table: "match_explanation",
                    description: "Why each probabilistic link was made: the comparisons' agreement levels and weights",
                    grain: ["source", "source_id"],
                    columns: [
                        ColumnContract("source", "TEXT"), ColumnContract("source_id", "TEXT"),
                        ColumnContract("candidate_source", "TEXT"), ColumnContract("candidate_source_id", "TEXT"),
                        ColumnContract("match_probability", "REAL"),
                        ColumnContract("match_weight", "REAL", "log2 of the posterior odds"),
                        ColumnContract(
                            "explanation", "TEXT",
                            "JSON: prior, and per comparison the level, its weight and any term-frequency adjustment"),
                    ]),
                OutputPort(
                    table: "match_model",
                    description:
                        "The Fellegi–Sunter model this build estimated: m and u per comparison level, and the prior",
                    grain: ["comparison", "level"],
                    columns: [
                        ColumnContract("comparison", "TEXT", "a compared field, or (prior)"),
                        ColumnContract("level", "TEXT"), ColumnContract("level_index", "INTEGER"),
                        ColumnContract("m_probability", "REAL", "P(level | one person); λ for the prior"),
                        ColumnContract("u_probability", "REAL", "P(level | two people)"),
                        ColumnContract("weight", "REAL", "log2(m/u), bits"),
                    ]),
                OutputPort(
                    table: "physician_history",
                    description: "Creations, merges and splits of physician ids, never renumbered",
                    columns: [
                        ColumnContract(
                            "master_version", "INTEGER", "the physician-master version that recorded the event"),
                        ColumnContract("physician_id", "INTEGER"),
                        ColumnContract("event", "TEXT"),
                        ColumnContract("other_physician_id", "INTEGER"), ColumnContract("detail", "TEXT"),
                    ]),
                OutputPort(
                    table: "physician_field_source", description: "Which source won each golden field (survivorship)",
                    grain: ["physician_id", "field"],
                    columns: [
                        ColumnContract("physician_id", "INTEGER"), ColumnContract("field", "TEXT"),
                        ColumnContract("source", "TEXT"),
                        ColumnContract("source_id", "TEXT"),
                    ]),
            ],
            recipe: Recipe([
                .swift("resolve", version: "3-\(overrides.fingerprint)") { context in
                    try await resolve(context, overrides: overrides)
                }
            ]),
            tests: [
                Unique(table: "physician", grain: ["physician_id"]),
                CustomSQLTest(
                    "one_golden_record_per_npi",
                    sql:
                        "SELECT npi, COUNT(*) AS physicians FROM physician WHERE npi IS NOT NULL GROUP BY npi HAVING COUNT(*) > 1"
                ),
                CustomSQLTest(
                    "no_physician_with_two_npis",
                    sql: """
                        SELECT x.physician_id, COUNT(DISTINCT x.source_id) AS npis FROM physician_xref x
                        WHERE x.source = 'nppes' AND x.physician_id IS NOT NULL GROUP BY x.physician_id HAVING COUNT(DISTINCT x.source_id) > 1
                        """),
                Relationship(
                    table: "physician_xref", column: "physician_id", references: "physician", column: "physician_id"),
                Unique(table: "physician_xref", grain: ["source", "source_id"]),
                AcceptedValues(table: "physician", column: "status", values: statusValues),
                // The trend: the share of unmatched source ids may not jump between two published versions.
                TrendTest(
                    "unmatched_share_trend",
                    metric: "SELECT AVG(physician_id IS NULL) FROM {schema}physician_xref", maxIncrease: 0.02,
                    severity: .fail),
                CustomSQLTest(
                    "unmatched_share_under_threshold", severity: .warn,
                    sql: """
                        SELECT source, COUNT(*) AS ids, SUM(physician_id IS NULL) AS unmatched FROM physician_xref
                        WHERE source IN ('crm', 'xponent', 'claims')
                        GROUP BY source HAVING 1.0 * SUM(physician_id IS NULL) / COUNT(*) > CAST(:max_unmatched_share AS REAL)
                        """),
            ],
            parameters: [
                "max_unmatched_share": "0.05", "match_probability": "0.9", "ambiguity_bits": "3", "block_cap": "500",
            ],
            retainedTables: ["id_state"] + PrescriberUpdate.retainedTables,
            // A week that brings only Rx and claims rows updates the prescriber ids in place (`PrescriberUpdate`),
            // and consumers read the golden records and cross-walk rows it changed from the change log.
            buildsOnPreviousVersion: true)
        domain.changeLogs = ["physician", "physician_xref"]
        return domain
    }

    // MARK: Loading

    /// The person records of every source; with `prescribers: false` only NPPES, AMA and CRM (which a database
    /// without physician-master's counted identifier tables can read).
    static func load(_ db: Database, prescribers: Bool = true) throws -> (
        records: [PersonRecord], organisations: [String]
    ) {
        var records: [PersonRecord] = []
        var organisations: [String] = []
        // A few dozen spellings recur across thousands of records: each is normalised once.
        var specialties: [String: String?] = [:]
        func specialty(_ value: String?) -> String? {
            guard let value else { return nil }
            if let known = specialties[value] { return known }
            let term = Specialty.normalize(value)
            specialties[value] = term
            return term
        }
        // Columns are read by position from a name table built once per query: GRDB's lookup by name compares
        // every column name case-insensitively on each access, a tenth of loading's samples.
        func rows(_ sql: String, _ body: (Row, Columns) throws -> Void) throws {
            let statement = try db.makeStatement(sql: sql)
            let columns = Columns(statement.columnNames)
            try Row.fetchCursor(statement).forEach { try body($0, columns) }
        }
        func person(_ source: PhysicianSource, _ id: String, _ row: Row, _ c: Columns) -> PersonRecord {
            func text(_ name: String) -> String? { c[name].flatMap { row[$0] } }
            func shown(_ value: String?) -> String? { value.flatMap { $0.isEmpty ? nil : $0 } }
            // Each value is read once, for matching (normalised) and for display (as the source spells it).
            let (first, last, middle) = (text("first_name"), text("last_name"), text("middle_name"))
            let (address, city) = (text("address_line1"), text("city"))
            var r = PersonRecord(source: source, sourceID: id)
            r.first = NameNormalizer.clean(first)
            r.firstCanonical = NameNormalizer.canonicalFirst(r.first)
            r.last = NameNormalizer.clean(last)
            r.middle = NameNormalizer.clean(middle)
            r.address = Comparators.streetWords(address)
            r.streetNumber = Comparators.streetNumber(address)
            r.city = NameNormalizer.words(city).joined(separator: " ")
            r.state = (text("state") ?? "").uppercased()
            r.batch = text("batch") ?? ""
            r.display = PersonRecord.Display(
                firstName: shown(first), lastName: shown(last), middleName: shown(middle),
                credential: shown(text("credential")), addressLine1: shown(address), city: shown(city))
            return r
        }
        try rows("SELECT * FROM raw_nppes.nppes ORDER BY npi") { row, c in
            let npi: String = row[try c.at("npi")]
            // A deactivated NPI that CMS sent empty (no entity type) stays a person record: its NPI carries the status.
            guard (row[try c.at("entity_type_code")] as Int?) != 2 else {
                organisations.append(npi)
                return
            }
            var r = person(.nppes, npi, row, c)
            r.npi = (row[try c.at("npi_valid")] as Int?) == 1 ? npi : nil
            r.zip5 = NameNormalizer.zip5(row[try c.at("postal_code")])
            r.specialty = specialty(row[try c.at("taxonomy_code")])
            r.providerType = ProviderType(taxonomy: row[try c.at("taxonomy_code")])
            r.deactivated = (row[try c.at("deactivated")] as Int?) == 1
            if let credential: String = row[try c.at("credential")] { r.credential = credential }
            records.append(r)
        }
        try rows("SELECT * FROM raw_ama.ama ORDER BY me_number") { row, c in
            let me: String = row[try c.at("me_number")]
            var r = person(.ama, me, row, c)
            r.me = me
            r.npi = (row[try c.at("npi_valid")] as Int?) == 1 ? row[try c.at("npi")] : nil
            r.zip5 = NameNormalizer.zip5(row[try c.at("zip")])
            r.specialty = specialty(row[try c.at("primary_specialty")])
            r.providerType = ProviderType(specialty: r.specialty)
            r.birthYear = row[try c.at("birth_year")]
            r.deceased = (row[try c.at("dead_ind")] as Int?) == 1
            r.retired = (row[try c.at("mpa")] as String?) == "RET"
            records.append(r)
        }
        try rows("SELECT * FROM raw_crm_accounts.crm_accounts ORDER BY account_id") { row, c in
            var r = person(.crm, row[try c.at("account_id")], row, c)
            r.npi = (row[try c.at("npi_valid")] as Int?) == 1 ? row[try c.at("npi")] : nil
            r.zip5 = NameNormalizer.zip5(row[try c.at("zip")])
            r.specialty = specialty(row[try c.at("specialty")])
            r.providerType = ProviderType(specialty: r.specialty)
            records.append(r)
        }
        guard prescribers else { return (records, organisations) }
        // One row per prescriber id with its identifiers (a valid NPI, an ME number) from any delivery, and one
        // per NPI that claims name, through the counted identifier tables `PrescriberUpdate` keeps up to date.
        try rows(PrescriberUpdate.xponentRecords) { row, _ in
            var r = PersonRecord(source: .xponent, sourceID: row[0])
            r.npi = row[1]
            r.me = row[2]
            records.append(r)
        }
        for npi in try String.fetchAll(db, sql: "SELECT npi FROM main.claims_npis ORDER BY npi") {
            var r = PersonRecord(source: .claims, sourceID: npi)
            r.npi = NPI.isValid(npi) ? npi : nil
            records.append(r)
        }
        return (records, organisations)
    }

    /// Column name → position in a query's result.
    struct Columns {
        private let positions: [String: Int]
        private let names: [String]
        init(_ names: [String]) {
            self.names = names
            positions = Dictionary(names.enumerated().map { ($1.lowercased(), $0) }) { first, _ in first }
        }
        subscript(_ name: String) -> Int? { positions[name] }
        /// The position of a column the query must have.
        func at(_ name: String) throws -> Int {
            guard let position = positions[name] else {
                throw MeshError(
                    .invalidDefinition,
                    "physician-master reads a raw column `\(name)` that is not there (columns: \(names.joined(separator: ", "))): the raw layout and the master disagree"
                )
            }
            return position
        }
    }

    // MARK: Resolution

    static func resolve(_ context: StepContext, overrides: StewardOverrides) async throws -> StepReport {
        try await context.database.writeWithoutTransaction { db in
            // On the copy of a previous version of the same definition, every table is brought to its new
            // content in place, writing only the rows that change; otherwise the tables are written afresh.
            let kept = outputTables + ["id_state"] + PrescriberUpdate.retainedTables
            let inPlace =
                try context.startedFromPrevious && context.definitionUnchanged
                && kept.allSatisfy { try db.tableExists($0, in: "main") }
            if context.startedFromPrevious && !inPlace {
                for table in kept { try db.execute(sql: "DROP TABLE IF EXISTS main.\(table)") }
            }
            var report: StepReport?
            try db.inTransaction {
                let counted = try inPlace && PrescriberUpdate.updateCounts(context, db: db)
                if !counted { try PrescriberUpdate.createCounts(db) }
                if counted, PrescriberUpdate.applies(context, overrides: overrides),
                    let weekly = try PrescriberUpdate.rematch(context, db: db)
                {
                    report = weekly
                    return .commit
                }
                let (records, organisations) = try load(db)
                context.progress("matching \(records.count) records")
                var matcher = PhysicianMatcher()
                if let p = context.parameters["match_probability"].flatMap(Double.init), p > 0, p < 1 {
                    matcher.matchProbability = p
                }
                if let bits = context.parameters["ambiguity_bits"].flatMap(Double.init) { matcher.ambiguityBits = bits }
                if let cap = context.parameters["block_cap"].flatMap(Int.init), cap > 0 { matcher.blockCap = cap }
                matcher.forcedMatches = overrides.matches
                matcher.forcedNonMatches = overrides.nonMatches
                let result = matcher.resolve(records)
                let ids = try assignStableIDs(result, records: records, db: db, context: context, inPlace: inPlace)
                let written = try write(result, records: records, organisations: organisations, ids: ids, db: db)
                let unmatched = result.decisions.filter { $0.cluster == nil }.count
                let singletons = result.decisions.filter { $0.rule == "singleton" }.count
                let provisional = result.decisions.filter { $0.rule == "provisional" }.count
                let model = result.model
                report = StepReport(
                    rowsIn: records.count, rowsOut: result.clusterCount,
                    message:
                        "\(result.clusterCount) physicians from \(records.count) records; \(result.links.count) probabilistic links, \(singletons) singletons, \(provisional) provisional prescriber ids, \(unmatched) unmatched; \(result.steward.count) for the steward; model from \(result.blockedPairs) blocked and \(model.randomPairs) random pairs, λ \(PersonComparison.rounded(model.lambda, 4)), EM \(model.iterations) iterations"
                        + (inPlace ? "; \(written) rows written in place" : ""))
                return .commit
            }
            return report!
        }
    }

    static let outputTables = [
        "physician", "physician_xref", "steward_queue", "physician_history", "physician_field_source",
        "match_explanation", "match_model",
    ]

    /// A value rounded to `places` decimals, so that the published tables do not carry the last bits of a sum.
    static func round(_ value: Double, _ places: Int) -> Double {
        var scale = 1.0
        for _ in 0..<places { scale *= 10 }
        return (value * scale).rounded() / scale
    }

    /// Rules of records that matched no other record: their cross-walk row says why.
    static let standsAlone: Set<String> = ["singleton", "provisional", "unmatched"]

    /// Keeps every physician id across runs: a cluster keeps the id its members had; merges keep the
    /// smallest; a split gives the larger part the old id and the rest new ones. Ids are never reused.
    /// Only the identity records (NPPES, AMA, CRM) carry an id from one version to the next: a prescriber id
    /// of Rx or claims follows the physician its NPI or ME number names, and never moves an id itself.
    static func assignStableIDs(
        _ result: PhysicianMatcher.Result, records: [PersonRecord], db: Database, context: StepContext,
        inPlace: Bool
    ) throws -> [Int: Int64] {
        var previous: [String: Int64] = [:]
        var previousPrescribers: [String: Int64] = [:]
        var nextID: Int64 = 1
        if context.previousVersion != nil {
            try Row.fetchCursor(
                db,
                sql:
                    "SELECT source, source_id, physician_id FROM previous.physician_xref WHERE physician_id IS NOT NULL"
            ).forEach { row in
                let source: String = row[0]
                let key = "\(source)|\(row[1] as String)"
                if PhysicianSource(rawValue: source)?.isIdentity ?? false {
                    previous[key] = row[2]
                } else {
                    previousPrescribers[key] = row[2]
                }
            }
            nextID = try Int64.fetchOne(db, sql: "SELECT next_id FROM previous.id_state") ?? 1
            if !inPlace {
                try db.execute(sql: "CREATE TABLE main.physician_history AS SELECT * FROM previous.physician_history")
            }
        } else {
            try db.execute(
                sql:
                    "CREATE TABLE main.physician_history (master_version INTEGER, physician_id INTEGER, event TEXT, other_physician_id INTEGER, detail TEXT)"
            )
        }
        // A provisional physician's id is carried by its prescriber ids: ids no identity record held.
        let registryIDs = Set(previous.values)
        // Which clusters hold each previous id's members, and how many.
        var holders: [Int64: [Int: Int]] = [:]
        var provisionalHolders: [Int64: [Int: Int]] = [:]
        var members: [Int: [Int64]] = [:]
        var registered = [Bool](repeating: false, count: result.clusterCount)
        for (i, decision) in result.decisions.enumerated() {
            guard let cluster = decision.cluster else { continue }
            let key = "\(records[i].source.rawValue)|\(records[i].sourceID)"
            if records[i].source.isIdentity {
                registered[cluster] = true
                guard let old = previous[key] else { continue }
                holders[old, default: [:]][cluster, default: 0] += 1
                members[cluster, default: []].append(old)
            } else if let old = previousPrescribers[key], !registryIDs.contains(old) {
                provisionalHolders[old, default: [:]][cluster, default: 0] += 1
                members[cluster, default: []].append(old)
            }
        }
        func owners(_ holders: [Int64: [Int: Int]]) -> [Int: [Int64]] {
            var owned: [Int: [Int64]] = [:]
            for (old, clusters) in holders {
                let owner = clusters.max { a, b in a.value != b.value ? a.value < b.value : a.key > b.key }!.key
                owned[owner, default: []].append(old)
            }
            return owned
        }
        let owned = owners(holders)
        let ownedProvisional = owners(provisionalHolders)
        var ids: [Int: Int64] = [:]
        var events: [(Int64, String, Int64?, String)] = []
        for cluster in 0..<result.clusterCount {
            let mine = (owned[cluster] ?? []).sorted()
            let provisional = (ownedProvisional[cluster] ?? []).sorted()
            if let keep = mine.first {
                // A provisional physician that a registry record now names merges into the registry-backed one.
                ids[cluster] = keep
                for merged in mine.dropFirst() {
                    events.append((keep, "merged", merged, "physician \(merged) merged into \(keep)"))
                }
                for merged in provisional {
                    events.append((keep, "merged", merged, "provisional physician \(merged) merged into \(keep)"))
                }
            } else if let keep = provisional.first {
                ids[cluster] = keep
                for merged in provisional.dropFirst() {
                    events.append((keep, "merged", merged, "provisional physician \(merged) merged into \(keep)"))
                }
                if registered[cluster] {
                    events.append((keep, "registered", nil, "provisional physician \(keep) now has a registry record"))
                }
            } else {
                ids[cluster] = nextID
                if let from = members[cluster]?.min() {
                    events.append((nextID, "split", from, "split from physician \(from)"))
                } else {
                    events.append((nextID, "created", nil, registered[cluster] ? "" : "provisional"))
                }
                nextID += 1
            }
        }
        try db.execute(
            sql: """
                CREATE TABLE IF NOT EXISTS main.id_state (next_id INTEGER NOT NULL);
                DELETE FROM main.id_state;
                INSERT INTO main.id_state VALUES (?);
                """, arguments: [nextID])
        let insert = try db.makeStatement(sql: "INSERT INTO main.physician_history VALUES (?, ?, ?, ?, ?)")
        for (id, event, other, detail) in events.sorted(by: { ($0.0, $0.1) < ($1.0, $1.1) }) {
            try insert.execute(arguments: [(context.previousVersion ?? 0) + 1, id, event, other, detail])
        }
        return ids
    }

    /// Golden records by survivorship: per field, a source priority, then recency, then non-empty.
    static func write(
        _ result: PhysicianMatcher.Result, records: [PersonRecord], organisations: [String], ids: [Int: Int64],
        db: Database
    ) throws -> Int {
        try db.execute(
            sql: """
                CREATE TABLE IF NOT EXISTS main.physician (physician_id INTEGER PRIMARY KEY, npi TEXT, me_number TEXT, first_name TEXT, last_name TEXT,
                    middle_name TEXT, credential TEXT, specialty TEXT, address_line1 TEXT, city TEXT, state TEXT, zip5 TEXT,
                    birth_year INTEGER, status TEXT NOT NULL, is_prescriber INTEGER NOT NULL, provider_type TEXT NOT NULL);
                CREATE TABLE IF NOT EXISTS main.physician_xref (source TEXT NOT NULL, source_id TEXT NOT NULL, physician_id INTEGER, match_rule TEXT NOT NULL,
                    match_probability REAL NOT NULL, unmatched_reason TEXT, PRIMARY KEY (source, source_id));
                CREATE TABLE IF NOT EXISTS main.steward_queue (source TEXT NOT NULL, source_id TEXT NOT NULL, candidate_source TEXT NOT NULL,
                    candidate_source_id TEXT NOT NULL, candidate_physician_id INTEGER, match_probability REAL, kind TEXT, explanation TEXT,
                    PRIMARY KEY (source, source_id, candidate_source, candidate_source_id));
                CREATE TABLE IF NOT EXISTS main.match_explanation (source TEXT NOT NULL, source_id TEXT NOT NULL, candidate_source TEXT NOT NULL,
                    candidate_source_id TEXT NOT NULL, match_probability REAL NOT NULL, match_weight REAL NOT NULL, explanation TEXT NOT NULL,
                    PRIMARY KEY (source, source_id));
                CREATE TABLE IF NOT EXISTS main.match_model (comparison TEXT NOT NULL, level TEXT NOT NULL, level_index INTEGER NOT NULL,
                    m_probability REAL, u_probability REAL, weight REAL, PRIMARY KEY (comparison, level));
                CREATE TABLE IF NOT EXISTS main.physician_field_source (physician_id INTEGER, field TEXT, source TEXT, source_id TEXT,
                    PRIMARY KEY (physician_id, field));
                """)
        var clusters = [[Int]](repeating: [], count: result.clusterCount)
        for (i, d) in result.decisions.enumerated() { if let c = d.cluster { clusters[c].append(i) } }

        // An NPI belongs to the cluster of its NPPES record; no other golden record may carry it.
        var npiOwner: [String: Int] = [:]
        for (cluster, memberIndexes) in clusters.enumerated() {
            for i in memberIndexes where records[i].source == .nppes {
                if let npi = records[i].npi { npiOwner[npi] = cluster }
            }
        }
        var physicians = try TableSync("physician", keyColumns: 1, in: db)
        var sources = try TableSync("physician_field_source", keyColumns: 2, in: db)
        for (cluster, memberIndexes) in clusters.enumerated() {
            let id = ids[cluster]!
            /// The member that ranks first under `Survivorship` (with `byID: false`, a tie goes to the first in
            /// member order). One pass, no copies of records: they are read in place (`records[i].field`), as a
            /// `PersonRecord` copy retains a dozen strings.
            func best(_ priority: [PhysicianSource], byID: Bool, _ usable: (Int) -> Bool) -> Int? {
                var best: (index: Int, candidate: Survivorship.Candidate)?
                for i in memberIndexes {
                    guard let rank = priority.firstIndex(of: records[i].source), usable(i) else { continue }
                    let candidate = Survivorship.Candidate(rank: rank, batch: records[i].batch, id: records[i].sourceID)
                    if let current = best, !Survivorship.wins(candidate, over: current.candidate, byID: byID) {
                        continue
                    }
                    best = (i, candidate)
                }
                return best?.index
            }
            /// The member that wins a field: source priority, then the most recent delivery, then non-empty.
            func winner(_ field: String, _ priority: [PhysicianSource], _ value: (PersonRecord) -> String?) throws
                -> String?
            {
                guard let index = best(priority, byID: true, { !(value(records[$0]) ?? "").isEmpty }) else {
                    return nil
                }
                // `DatabaseValue`s, not existentials: these tables take tens of thousands of rows a build.
                try sources.put([
                    id.databaseValue, field.databaseValue, records[index].source.rawValue.databaseValue,
                    records[index].sourceID.databaseValue,
                ])
                return value(records[index])
            }
            let npi = try winner("npi", Survivorship.npi) { member in
                member.npi.flatMap { npiOwner[$0] == nil || npiOwner[$0] == cluster ? $0 : nil }
            }
            let me = try winner("me_number", Survivorship.meNumber) { $0.me }
            let first = try winner("first_name", Survivorship.name) { $0.display.firstName }
            let last = try winner("last_name", Survivorship.name) { $0.display.lastName }
            let middle = try winner("middle_name", Survivorship.name) { $0.display.middleName }
            let credential = try winner("credential", Survivorship.credential) { $0.display.credential }
            let specialty = try winner("specialty", Survivorship.specialty) { $0.specialty }
            let addressIndex = best(Survivorship.name, byID: false) { !records[$0].address.isEmpty }
            if let owner = addressIndex {
                try sources.put([
                    id.databaseValue, "address".databaseValue, records[owner].source.rawValue.databaseValue,
                    records[owner].sourceID.databaseValue,
                ])
            }
            let addressOwner = addressIndex.map { records[$0] }
            let birthYear = try winner("birth_year", Survivorship.birthYear) { $0.birthYear.map(String.init) }
            let registered = memberIndexes.contains { records[$0].source.isIdentity }
            let status =
                !registered
                ? "provisional"
                : memberIndexes.contains { records[$0].deceased }
                    ? "deceased"
                    : memberIndexes.contains { records[$0].retired }
                        ? "retired" : memberIndexes.contains { records[$0].deactivated } ? "deactivated" : "active"
            let prescriber = memberIndexes.contains { !records[$0].source.isIdentity }
            let providerType =
                best(Survivorship.providerType, byID: true) { records[$0].providerType != .unknown }
                .map { records[$0].providerType } ?? .unknown
            try physicians.put([
                id, npi, me, first, last, middle, credential, specialty, addressOwner?.display.addressLine1,
                addressOwner?.display.city,
                addressOwner?.state.isEmpty == false ? addressOwner?.state : nil,
                addressOwner.map { $0.zip5.isEmpty ? nil : $0.zip5 } ?? nil,
                birthYear.flatMap { Int($0) }, status, prescriber ? 1 : 0, providerType.rawValue,
            ])
        }
        var xref = try TableSync("physician_xref", keyColumns: 2, in: db)
        for (i, d) in result.decisions.enumerated() {
            try xref.put([
                records[i].source.rawValue.databaseValue, records[i].sourceID.databaseValue,
                (d.cluster.map { ids[$0]! }).databaseValue, (d.cluster == nil ? "unmatched" : d.rule).databaseValue,
                Self.round(d.probability, 6).databaseValue,
                (Self.standsAlone.contains(d.rule) || d.cluster == nil ? (d.reason ?? "no match") : nil).databaseValue,
            ])
        }
        for npi in organisations {
            try xref.put([
                "nppes", npi, nil, "unmatched", 0.0, "organisation (entity type 2): not a physician",
            ])
        }
        var queue = try TableSync("steward_queue", keyColumns: 4, in: db)
        for case_ in result.steward {
            let r = records[case_.record]
            let c = records[case_.candidate]
            try queue.put([
                r.source.rawValue, r.sourceID, c.source.rawValue, c.sourceID,
                result.decisions[case_.candidate].cluster.map { ids[$0]! },
                Self.round(case_.probability, 6), case_.kind,
                PersonComparison.explanation(
                    result.features[case_.record], result.features[case_.candidate], model: result.model),
            ])
        }
        var explanations = try TableSync("match_explanation", keyColumns: 2, in: db)
        for (record, candidate) in result.links {
            let (r, c) = (records[record], records[candidate])
            let (pattern, _) = PersonComparison.compare(result.features[record], result.features[candidate])
            let weight = PersonComparison.weight(pattern, candidate: result.features[candidate], model: result.model)
            try explanations.put([
                r.source.rawValue, r.sourceID, c.source.rawValue, c.sourceID,
                Self.round(FellegiSunterModel.probability(weight), 6),
                Self.round(weight, 3),
                PersonComparison.explanation(result.features[record], result.features[candidate], model: result.model),
            ])
        }
        var model = try TableSync("match_model", keyColumns: 2, in: db)
        let m = result.model
        try model.put(["(prior)", "lambda", 0, Self.round(m.lambda, 8), nil, Self.round(m.priorWeight, 4)])
        for (k, comparison) in m.comparisons.enumerated() {
            for level in 1..<comparison.levels.count {
                try model.put([
                    comparison.name, comparison.levels[level], level, Self.round(m.m[k][level], 8),
                    Self.round(m.u[k][level], 8), Self.round(m.weight(k, level: level), 4),
                ])
            }
        }
        let prescribers = try PrescriberUpdate.writeRecords(result, records: records, ids: ids, db: db)
        return try physicians.finish() + sources.finish() + xref.finish() + queue.finish() + explanations.finish()
            + model.finish() + prescribers
    }
}
