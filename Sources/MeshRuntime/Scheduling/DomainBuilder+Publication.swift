import Foundation
import GRDB
import Logging

extension DomainBuilder {
    /// Publishes a build whose tests passed: finalizes the working file, loads it into the serving engines,
    /// moves it into place and switches the engines. `finish` then records the version, which makes it the
    /// serving one; until then readers see the previous version.
    func publish(
        _ workspace: Workspace, copies: CopiedTables, phases: inout Phases, tally: Tally, logger: Logger
    ) async throws -> Ending {
        let finalized = try await finalize(workspace, copies: copies)
        phases.append(finalized.phases)
        if workspace.startedFromPrevious, let previous {
            let full = finalized.digests.keys.filter {
                !finalized.incremental.contains($0) && !finalized.copied.contains($0)
            }.sorted()
            log(
                "built on a copy of v\(previous.version); digested from changed rows: "
                    + "\(finalized.incremental.sorted().joined(separator: ", ").nonEmpty ?? "none"); "
                    + "digested fully: \(full.joined(separator: ", ").nonEmpty ?? "none")"
                    + (finalized.copied.isEmpty
                        ? "" : "; digests of their inputs: \(finalized.copied.sorted().joined(separator: ", "))"),
                logger: logger, tally: tally)
        }
        try workspace.database.close()
        // What the history could not record so far fails the build before anything is published.
        if let failure = tally.historyFailure { throw failure }
        let digests = finalized.digests
        // Never guessed: a number read wrongly would overwrite or skip a published file.
        let versionNumber = try recordingHistory("read the latest version number of \(domain.id)") {
            try store.latestVersionNumber(of: domain.id) + 1
        }
        let relativePath = "domains/\(domain.id.rawValue)/v\(String(format: "%06d", versionNumber)).sqlite"
        // Serving engines load the build before anything is published: a failure there publishes nothing.
        let engines = mesh.configuration.servingEngines.filter { $0.serves(domain) }
        var staged = StagedBuild(
            domain: domain, version: versionNumber, file: URL(fileURLWithPath: workspace.path), digests: digests,
            keepVersions: mesh.configuration.keepVersions, runID: runID,
            log: { [self] message in log(message, logger: logger, tally: tally) })
        for (index, engine) in engines.enumerated() {
            do { try await engine.stage(staged) } catch {
                for loaded in engines[...index] { await loaded.discard(staged) }
                return .failed(.error, "could not load the build into \(engine.name): \(error)")
            }
        }
        if !engines.isEmpty { phases.lap("serving engines") }
        try Self.durablyMove(
            URL(fileURLWithPath: workspace.path), to: mesh.home.appendingPathComponent(relativePath))
        phases.lap("fsync and rename")
        // With the time before the first step, which a build on the previous version spends mostly copying it.
        let setup =
            "; before the steps \(Self.seconds(workspace.setupTime))"
            + (workspace.startedFromPrevious ? " (the copy \(Self.seconds(workspace.copyTime)))" : "")
        log("publication: \(phases.laps.joined(separator: ", "))\(setup)", logger: logger, tally: tally)

        let warned = tally.tests.contains { $0.status == .warn }
        let version = versionRecord(versionNumber, path: relativePath, digests: digests, warned: warned)
        staged.record = version
        staged.file = mesh.home.appendingPathComponent(relativePath)
        for (index, engine) in engines.enumerated() {
            do { try await engine.makeCurrent(staged) } catch {
                // Engines switched before this one keep the new version: the next publication, or
                // `currentBuilds(for:)`, puts them back in line; the runtime does not record it.
                for pending in engines[index...] { await pending.discard(staged) }
                // Best-effort: the next run's recovery removes version files that have no record.
                try? FileManager.default.removeItem(at: staged.file)
                return .failed(.error, "could not switch \(engine.name) to the new version: \(error)")
            }
        }
        return .published(
            version, status: warned ? .warn : .success, rowsOut: digests.values.map(\.rowCount).reduce(0, +))
    }

    /// The record of the new version: its digests, and the versions it was built from.
    private func versionRecord(
        _ number: Int, path: String, digests: [String: Fingerprint.TableDigest], warned: Bool
    ) -> VersionRecord {
        var upstream: [String: Int] = [:]
        for (input, version) in inputs {
            upstream.merge(version.upstreamVersions) { max($0, $1) }
            upstream[input.rawValue] = version.version
        }
        return VersionRecord(
            domain: domain.id, version: number, fingerprint: Fingerprint.version(of: digests),
            path: path,
            runID: runID, publishedAt: now, status: warned ? .warn : .success, codeVersion: domain.codeVersion,
            codeCommit: mesh.configuration.codeCommit, variation: variation, parameters: parameters,
            inputVersions: inputVersions, upstreamVersions: upstream, sourceStates: sourceStates,
            rowCounts: digests.mapValues(\.rowCount), schema: digests.mapValues(\.columns), retained: true,
            tableDigests: digests.mapValues(\.digest))
    }

    /// What `finalize` found: each output's digest, how it was computed, and the time each part took.
    struct Finalized: Sendable {
        var digests: [String: Fingerprint.TableDigest]
        /// Tables digested from their changed rows.
        var incremental: Set<String>
        /// Tables that took an input's digest (verbatim copies, `StepContext.copyInputTable`).
        var copied: Set<String>
        var phases: [String]
    }

    /// Drops working tables, checks the output contract, and digests the outputs.
    ///
    /// With a tracker (the build started from a copy of the previous version), a table changed in place is
    /// digested from its changed rows only, and statistics are refreshed cheaply (or kept when nothing changed).
    private func finalize(_ workspace: Workspace, copies: CopiedTables) async throws -> Finalized {
        let outputs = Set(domain.outputs.map(\.table))
        let keep = outputs.union(domain.retainedTables).union(
            domain.changeLogs.isEmpty
                ? [] : [ChangeCapture.logTable] + domain.changeLogs.map(ChangeCapture.changesTable(of:)))
        let previousFingerprint = workspace.startedFromPrevious ? previous?.fingerprint : nil
        let (tracker, schemaAtStart, file) = (workspace.tracker, workspace.schemaAtStart, workspace.path)
        let (logCapture, logSequence) = (workspace.logCapture, workspace.logSequence)
        let captures = [workspace.logCapture, workspace.testCapture].compactMap { $0 }
        return try await workspace.database.writeWithoutTransaction { db in
            let started = ContinuousClock.now
            let unchanged = try tracker.map { try !$0.hasChanges(in: db) && Self.schemaText(db) == schemaAtStart }
            try dropWorkingObjects(keeping: keep, in: db)
            var result = Finalized(digests: [:], incremental: [], copied: [], phases: [])
            for output in domain.outputs {
                try Self.checkContract(of: output, in: db)
                if let tracker, let previous, let digest = previous.tableDigests[output.table],
                    let rowCount = previous.rowCounts[output.table], let columns = previous.schema[output.table],
                    let updated = try tracker.digest(
                        of: output.table,
                        previous: Fingerprint.TableDigest(columns: columns, rowCount: rowCount, digest: digest), in: db)
                {
                    result.digests[output.table] = updated
                    result.incremental.insert(output.table)
                } else if let schema = try copies.unmodifiedSource(of: output.table, in: db),
                    let input = schema == "previous"
                        ? previous : inputs.first(where: { $0.key.schemaName == schema })?.value,
                    let digest = input.tableDigests[output.table], let rowCount = input.rowCounts[output.table],
                    let columns = input.schema[output.table]
                {
                    // A verbatim copy of an input table has the input's digest: no need to read it again.
                    result.digests[output.table] = Fingerprint.TableDigest(
                        columns: columns, rowCount: rowCount, digest: digest)
                    result.copied.insert(output.table)
                } else {
                    result.digests[output.table] = try Fingerprint.digest(table: output.table, in: db, file: file)
                }
            }
            let digested = ContinuousClock.now
            if !domain.changeLogs.isEmpty {
                try ChangeCapture.commit(
                    logCapture, tables: domain.changeLogs, sequence: logSequence, before: previousFingerprint,
                    after: Fingerprint.version(of: result.digests), depth: domain.changeLogDepth, in: db)
            }
            for capture in captures { try capture.uninstall(in: db) }
            try copies.uninstall(in: db)
            if let tracker {
                try tracker.uninstall(in: db)
                // The copy carries the previous statistics: keep them when nothing changed, else refresh them
                // from a bounded sample of each index instead of a full scan.
                if unchanged != true { try db.execute(sql: "PRAGMA analysis_limit = 400; ANALYZE") }
            } else {
                try db.execute(sql: "PRAGMA analysis_limit = 1000; ANALYZE")
            }
            result.phases = [
                "digest \(Self.seconds(digested - started))",
                "statistics \(Self.seconds(ContinuousClock.now - digested))",
            ]
            return result
        }
    }

    /// Detaches the inputs and drops every table and view that is not published or kept.
    private func dropWorkingObjects(keeping keep: Set<String>, in db: Database) throws {
        // Each DDL statement makes GRDB reload the schema before its next lookup: one batch each.
        let attached = Set(try Row.fetchAll(db, sql: "PRAGMA database_list").map { $0["name"] as String })
        let detach = (["previous"] + inputs.keys.map(\.schemaName).sorted()).filter(attached.contains)
            .map { "DETACH DATABASE \(quoteQualified($0));" }
        if !detach.isEmpty { try db.execute(sql: detach.joined(separator: "\n")) }
        let objects = try Row.fetchAll(
            db,
            sql: "SELECT type, name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%'"
        )
        var drops: [String] = []
        for object in objects.sorted(by: { ($0["type"] as String) > ($1["type"] as String) }) {  // views first
            let name: String = object["name"]
            guard !keep.contains(name) else { continue }
            drops.append("DROP \((object["type"] as String) == "view" ? "VIEW" : "TABLE") \(quoteQualified(name));")
        }
        if !drops.isEmpty { try db.execute(sql: drops.joined(separator: "\n")) }
    }

    /// The output contract: the recipe created the table, with every declared column.
    private static func checkContract(of output: OutputPort, in db: Database) throws {
        guard try db.tableExists(output.table) || db.viewExists(output.table) else {
            throw MeshError(.stepFailed, "output contract: the recipe did not create table \(output.table)")
        }
        let present = Set(try db.columns(in: output.table).map { $0.name.lowercased() })
        let missing = output.columns.map(\.name).filter { !present.contains($0.lowercased()) }
        guard missing.isEmpty else {
            throw MeshError(
                .stepFailed,
                "output contract: table \(output.table) lacks column\(missing.count == 1 ? "" : "s") \(missing.joined(separator: ", "))"
            )
        }
    }
}
