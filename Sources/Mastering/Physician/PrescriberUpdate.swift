import FeedFormats
import GRDB
import MeshRuntime

/// physician-master's weekly path: when only Rx and claims rows arrived (NPPES, AMA and CRM unchanged), the
/// identity records' clusters cannot change. Rx and claims records carry ids only, and each one is matched by
/// a lookup of its NPI or ME number, so only the prescriber ids whose identifiers changed are matched again,
/// in place on the copy of the previous version. The result is what matching every record would publish;
/// `PhysicianMasterTests` compares the two.
///
/// What it keeps between versions (retained tables):
/// - `prescriber_rows`: how many raw Xponent rows carry each (prescriber id, valid NPI, ME number), so that
///   the change log's inserted and deleted rows keep the per-prescriber maxima exact without reading every
///   raw row;
/// - `claims_npis`: how many claims rows name each prescriber NPI;
/// - `prescriber_record`: each Rx and claims record as the last build matched it, with its physician.
enum PrescriberUpdate {
    static let retainedTables = ["prescriber_rows", "claims_npis", "prescriber_record"]
    static let identityTables = ["raw_nppes.nppes", "raw_ama.ama", "raw_crm_accounts.crm_accounts"]

    /// One row per prescriber id with its identifiers from any delivery, from `prescriber_rows`.
    static let xponentRecords = """
        SELECT prescriber_id, MAX(npi) AS npi, MAX(me_number) AS me_number FROM main.prescriber_rows
        GROUP BY prescriber_id ORDER BY prescriber_id
        """

    /// Counts every raw Xponent and claims row by the identifiers it carries (a full resolution).
    static func createCounts(_ db: Database) throws {
        try db.execute(
            sql: """
                DROP TABLE IF EXISTS main.prescriber_rows;
                DROP TABLE IF EXISTS main.claims_npis;
                CREATE TABLE main.prescriber_rows (prescriber_id TEXT NOT NULL, npi TEXT, me_number TEXT, n INTEGER NOT NULL);
                INSERT INTO main.prescriber_rows
                SELECT prescriber_id, CASE WHEN npi_valid = 1 THEN npi END, me_number, COUNT(*)
                FROM raw_xponent.xponent GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;
                CREATE INDEX main.prescriber_rows_id ON prescriber_rows (prescriber_id);
                CREATE TABLE main.claims_npis (npi TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
                INSERT INTO main.claims_npis
                SELECT prescriber_npi, COUNT(*) FROM raw_claims.claims WHERE prescriber_npi IS NOT NULL GROUP BY 1;
                """)
    }

    /// Records every Rx and claims record with its physician (a full resolution). Returns the rows written.
    static func writeRecords(
        _ result: PhysicianMatcher.Result, records: [PersonRecord], ids: [Int: Int64], db: Database
    ) throws -> Int {
        try db.execute(
            sql: """
                CREATE TABLE IF NOT EXISTS main.prescriber_record (source TEXT NOT NULL, source_id TEXT NOT NULL, npi TEXT,
                    me_number TEXT, physician_id INTEGER, PRIMARY KEY (source, source_id)) WITHOUT ROWID;
                CREATE INDEX IF NOT EXISTS main.prescriber_record_physician ON prescriber_record (physician_id);
                """)
        var sync = try TableSync("prescriber_record", keyColumns: 2, in: db)
        for (i, r) in records.enumerated() where !r.source.isIdentity {
            try sync.put([r.source.rawValue, r.sourceID, r.npi, r.me, result.decisions[i].cluster.map { ids[$0]! }])
        }
        return try sync.finish()
    }

    /// True when the weekly path applies, once `updateCounts` brought the counts up to date on the copy of the
    /// previous version of the same definition: the identity feeds are unchanged, and no steward override names
    /// a prescriber id (a forced match of one could join two physicians).
    static func applies(_ context: StepContext, overrides: StewardOverrides) -> Bool {
        identityTables.allSatisfy(context.inputTableUnchanged)
            && overrides.matches.allSatisfy { $0.0.source.isIdentity && $0.1.source.isIdentity }
    }

    private struct Change {
        var source: PhysicianSource
        var id: String
        var npi: String?
        var me: String?
        var present: Bool
        var known: Bool
        var before: Int64?
    }

    private struct Member {
        var source: PhysicianSource
        var id: String
        var npi: String?
        var me: String?
    }

    /// Applies the logged Rx and claims rows to the kept counts. Returns false, changing nothing the caller
    /// keeps, when the log is unknown or disagrees with the counts (a deleted row that was never counted): the
    /// counts must then be taken again from every raw row.
    static func updateCounts(_ context: StepContext, db: Database) throws -> Bool {
        guard let rx = context.changes(of: "raw_xponent.xponent"),
            let claims = context.changes(of: "raw_claims.claims")
        else { return false }
        try db.execute(
            sql: """
                DROP TABLE IF EXISTS temp.pm_delta_x;
                CREATE TEMP TABLE pm_delta_x AS
                    SELECT prescriber_id, npi, me_number, SUM(n) AS n FROM (
                        SELECT prescriber_id, CASE WHEN npi_valid = 1 THEN npi END AS npi, me_number, mesh_sign AS n FROM \(rx))
                    GROUP BY 1, 2, 3 HAVING SUM(n) <> 0;
                DROP TABLE IF EXISTS temp.pm_delta_c;
                CREATE TEMP TABLE pm_delta_c AS
                    SELECT prescriber_npi AS npi, SUM(mesh_sign) AS n FROM \(claims)
                    WHERE prescriber_npi IS NOT NULL GROUP BY 1 HAVING SUM(mesh_sign) <> 0;
                UPDATE main.prescriber_rows AS p SET n = p.n + d.n FROM temp.pm_delta_x AS d
                    WHERE p.prescriber_id = d.prescriber_id AND p.npi IS d.npi AND p.me_number IS d.me_number;
                INSERT INTO main.prescriber_rows SELECT d.* FROM temp.pm_delta_x AS d WHERE NOT EXISTS (
                    SELECT 1 FROM main.prescriber_rows p
                    WHERE p.prescriber_id = d.prescriber_id AND p.npi IS d.npi AND p.me_number IS d.me_number);
                INSERT INTO main.claims_npis SELECT npi, n FROM temp.pm_delta_c WHERE 1
                    ON CONFLICT (npi) DO UPDATE SET n = n + excluded.n;
                """)
        let negative = try Bool.fetchOne(
            db,
            sql: """
                SELECT EXISTS (SELECT 1 FROM main.prescriber_rows
                               WHERE n < 0 AND prescriber_id IN (SELECT prescriber_id FROM temp.pm_delta_x))
                    OR EXISTS (SELECT 1 FROM main.claims_npis WHERE n < 0 AND npi IN (SELECT npi FROM temp.pm_delta_c))
                """)
        if negative != false { return false }
        try db.execute(
            sql: """
                DELETE FROM main.prescriber_rows WHERE n = 0 AND prescriber_id IN (SELECT prescriber_id FROM temp.pm_delta_x);
                DELETE FROM main.claims_npis WHERE n = 0 AND npi IN (SELECT npi FROM temp.pm_delta_c);
                """)
        return true
    }

    /// Matches again the prescriber ids whose identifiers the counts' last update changed, in place, after
    /// `updateCounts`. Returns nil when the kept state is inconsistent (a physician it names is missing): the
    /// caller then matches every record, which brings every table to its content.
    static func rematch(_ context: StepContext, db: Database) throws -> StepReport? {
        // The records whose identifiers changed, appeared or vanished.
        var changes: [Change] = []
        try Row.fetchCursor(
            db,
            sql: """
                SELECT t.id, t.npi, t.me, t.present, r.source_id IS NOT NULL AS known, r.physician_id FROM (
                    SELECT d.prescriber_id AS id, MAX(p.npi) AS npi, MAX(p.me_number) AS me,
                           COUNT(p.prescriber_id) > 0 AS present
                    FROM (SELECT DISTINCT prescriber_id FROM temp.pm_delta_x) d
                    LEFT JOIN main.prescriber_rows p ON p.prescriber_id = d.prescriber_id
                    GROUP BY d.prescriber_id) t
                LEFT JOIN main.prescriber_record r ON r.source = 'xponent' AND r.source_id = t.id
                WHERE t.present <> (r.source_id IS NOT NULL) OR (t.present AND (t.npi IS NOT r.npi OR t.me IS NOT r.me_number))
                ORDER BY t.id
                """
        ).forEach { row in
            changes.append(
                Change(
                    source: .xponent, id: row[0], npi: row[1], me: row[2], present: row[3], known: row[4],
                    before: row[5]))
        }
        try Row.fetchCursor(
            db,
            sql: """
                SELECT d.npi, c.npi IS NOT NULL AS present, r.source_id IS NOT NULL AS known, r.physician_id
                FROM temp.pm_delta_c d
                LEFT JOIN main.claims_npis c ON c.npi = d.npi
                LEFT JOIN main.prescriber_record r ON r.source = 'claims' AND r.source_id = d.npi
                WHERE (c.npi IS NOT NULL) <> (r.source_id IS NOT NULL)
                ORDER BY d.npi
                """
        ).forEach { row in
            let npi: String = row[0]
            changes.append(
                Change(
                    source: .claims, id: npi, npi: NPI.isValid(npi) ? npi : nil, me: nil, present: row[1],
                    known: row[2], before: row[3]))
        }
        let touched =
            try Int.fetchOne(
                db,
                sql:
                    "SELECT (SELECT COUNT(DISTINCT prescriber_id) FROM temp.pm_delta_x) + (SELECT COUNT(*) FROM temp.pm_delta_c)"
            ) ?? 0

        // The anchors a record's identifiers name: the NPPES person with the NPI, else the first AMA record (by ME
        // number) with it; the AMA record with the ME number (the anchors of `PhysicianMatcher.resolve`).
        let byNPPES = try db.makeStatement(
            sql: """
                SELECT x.physician_id FROM raw_nppes.nppes n
                JOIN main.physician_xref x ON x.source = 'nppes' AND x.source_id = n.npi
                WHERE n.npi = ? AND n.npi_valid = 1 AND n.entity_type_code IS NOT 2
                """)
        let byME = try db.makeStatement(
            sql: "SELECT physician_id FROM main.physician_xref WHERE source = 'ama' AND source_id = ?")
        var anchorByNPI: [String: Int64] = [:]
        var amaWanted: Set<String> = []
        for change in changes where change.present {
            guard let npi = change.npi, anchorByNPI[npi] == nil, !amaWanted.contains(npi) else { continue }
            if let id = try Int64.fetchOne(byNPPES, arguments: [npi]) {
                anchorByNPI[npi] = id
            } else {
                amaWanted.insert(npi)
            }
        }
        if !amaWanted.isEmpty {
            try db.execute(sql: "DROP TABLE IF EXISTS temp.pm_npis; CREATE TEMP TABLE pm_npis (npi TEXT PRIMARY KEY)")
            let insert = try db.makeStatement(sql: "INSERT INTO temp.pm_npis VALUES (?)")
            for npi in amaWanted.sorted() { try insert.execute(arguments: [npi]) }
            try Row.fetchCursor(
                db,
                sql: """
                    SELECT a.npi, x.physician_id FROM (
                        SELECT npi, MIN(me_number) AS me FROM raw_ama.ama
                        WHERE npi_valid = 1 AND npi IN (SELECT npi FROM temp.pm_npis) GROUP BY npi) a
                    JOIN main.physician_xref x ON x.source = 'ama' AND x.source_id = a.me
                    """
            ).forEach { row in anchorByNPI[row[0]] = row[1] }
        }

        // The cross-walk rows and the kept records, then the golden records of every physician they touch.
        let upsertRecord = try db.makeStatement(
            sql: """
                INSERT INTO main.prescriber_record VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (source, source_id)
                DO UPDATE SET npi = excluded.npi, me_number = excluded.me_number, physician_id = excluded.physician_id
                """)
        let deleteRecord = try db.makeStatement(
            sql: "DELETE FROM main.prescriber_record WHERE source = ? AND source_id = ?")
        let deleteXref = try db.makeStatement(
            sql: "DELETE FROM main.physician_xref WHERE source = ? AND source_id = ?")
        let insertXref = try db.makeStatement(sql: "INSERT INTO main.physician_xref VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
        let updateXref = try db.makeStatement(
            sql: """
                UPDATE main.physician_xref SET physician_id = ?3, match_rule = ?4, match_probability = ?5, unmatched_reason = ?6
                WHERE source = ?1 AND source_id = ?2 AND (physician_id IS NOT ?3 OR match_rule IS NOT ?4
                    OR match_probability IS NOT ?5 OR unmatched_reason IS NOT ?6)
                """)
        // Each change resolved before anything is written. A prescriber id that names no registry record (a
        // provisional physician, or a CRM account's NPI), or one that belonged to a provisional physician, can
        // create, grow, shrink or merge a provisional physician: a full resolution does that (returns nil).
        let status = try db.makeStatement(sql: "SELECT status FROM main.physician WHERE physician_id = ?")
        var resolved: [(change: Change, physician: Int64?, rule: String, reason: String?)] = []
        for change in changes {
            if let before = change.before, try String.fetchOne(status, arguments: [before]) == "provisional" {
                return nil
            }
            guard change.present else {
                resolved.append((change, nil, "", nil))
                continue
            }
            let link = try PrescriberLink.resolve(
                source: change.source, npi: change.npi, me: change.me, anchorByNPI: { anchorByNPI[$0] },
                anchorByME: { try Int64.fetchOne(byME, arguments: [$0]) })
            switch link {
            case .byNPI(let anchor):
                resolved.append((change, anchor, link.rule, nil))
            case .byME(let anchor) where change.npi == nil:
                resolved.append((change, anchor, link.rule, nil))
            case .unmatched(let reason):
                resolved.append((change, nil, link.rule, reason))
            case .byME, .provisional:
                // An NPI that names no NPPES or AMA record may be a CRM account's or a provisional physician's,
                // which only a full resolution knows.
                return nil
            }
        }
        var affected = Set<Int64>()
        for (change, physician, rule, reason) in resolved {
            if let before = change.before { affected.insert(before) }
            guard change.present else {
                try deleteRecord.execute(arguments: [change.source.rawValue, change.id])
                try deleteXref.execute(arguments: [change.source.rawValue, change.id])
                continue
            }
            if let physician { affected.insert(physician) }
            try upsertRecord.execute(arguments: [change.source.rawValue, change.id, change.npi, change.me, physician])
            let probability = physician == nil ? 0.0 : 1.0
            let arguments: StatementArguments = [
                change.source.rawValue, change.id, physician, rule, probability, reason,
            ]
            try (change.known ? updateXref : insertXref).execute(arguments: arguments)
        }

        let members = try db.makeStatement(
            sql: "SELECT source, source_id, npi, me_number FROM main.prescriber_record WHERE physician_id = ?")
        let winners = try db.makeStatement(
            sql: """
                SELECT field, source FROM main.physician_field_source
                WHERE physician_id = ? AND field IN ('npi', 'me_number')
                """)
        let golden = try db.makeStatement(
            sql: "SELECT npi, me_number, is_prescriber FROM main.physician WHERE physician_id = ?")
        let updateGolden = try db.makeStatement(
            sql: """
                UPDATE main.physician SET npi = ?2, me_number = ?3, is_prescriber = ?4
                WHERE physician_id = ?1 AND (npi IS NOT ?2 OR me_number IS NOT ?3 OR is_prescriber IS NOT ?4)
                """)
        let deleteWinner = try db.makeStatement(
            sql: "DELETE FROM main.physician_field_source WHERE physician_id = ? AND field = ?")
        let upsertWinner = try db.makeStatement(
            sql: """
                INSERT INTO main.physician_field_source VALUES (?1, ?2, ?3, ?4) ON CONFLICT (physician_id, field)
                DO UPDATE SET source = excluded.source, source_id = excluded.source_id
                WHERE source IS NOT excluded.source OR source_id IS NOT excluded.source_id
                """)
        for physician in affected.sorted() {
            guard let row = try Row.fetchOne(golden, arguments: [physician]) else { return nil }
            var npi: String? = row[0]
            var me: String? = row[1]
            var kept: [String: String] = [:]
            for row in try Row.fetchAll(winners, arguments: [physician]) { kept[row[0] as String] = row[1] as String }
            let prescribers = try Row.fetchAll(members, arguments: [physician]).compactMap { row -> Member? in
                PhysicianSource(rawValue: row[0]).map { Member(source: $0, id: row[1], npi: row[2], me: row[3]) }
            }
            func choose(_ field: String, _ winner: Member?) throws {
                if let winner {
                    try upsertWinner.execute(arguments: [physician, field, winner.source.rawValue, winner.id])
                } else {
                    try deleteWinner.execute(arguments: [physician, field])
                }
            }
            // An identity record that won a field still wins it; otherwise the prescriber ids compete for it.
            func prescriberWinner(_ priority: [PhysicianSource], _ usable: (Member) -> Bool) -> Member? {
                Survivorship.winner(prescribers, priority, source: \.source, id: \.id, usable: usable)
            }
            if !Survivorship.outranksPrescribers(kept["npi"].flatMap(PhysicianSource.init), in: Survivorship.npi) {
                let winner = prescriberWinner(Survivorship.npi) { $0.npi != nil }
                npi = winner?.npi
                try choose("npi", winner)
            }
            if !Survivorship.outranksPrescribers(
                kept["me_number"].flatMap(PhysicianSource.init), in: Survivorship.meNumber)
            {
                let winner = prescriberWinner(Survivorship.meNumber) { $0.me != nil }
                me = winner?.me
                try choose("me_number", winner)
            }
            try updateGolden.execute(arguments: [physician, npi, me, prescribers.isEmpty ? 0 : 1])
        }
        let physicians = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM main.physician") ?? 0
        return StepReport(
            rowsIn: touched, rowsOut: physicians,
            message:
                "NPPES, AMA and CRM unchanged: \(changes.count) of \(touched) prescriber ids in the new rows matched again; \(affected.count) physicians updated in place"
        )
    }
}
