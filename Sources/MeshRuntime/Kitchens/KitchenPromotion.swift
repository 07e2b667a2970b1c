import Foundation
import GRDB

/// What a promotion did.
package struct PromotionReport: Sendable {
    /// The parent's run that recorded the promotion; nil when there was nothing to promote.
    package var runID: RunID?
    /// domain, kitchen version, version published in the parent.
    package var promoted: [(domain: DomainID, kitchenVersion: Int, version: Int)]
    /// Recipe files copied into the parent's `recipes/` folder.
    package var recipeFiles: [String]
    /// The parent's domains that read a promoted one: its next run rebuilds them.
    package var staleDownstream: [DomainID]
    /// The kitchen's domains whose code and parameters are the parent's: nothing of theirs is promoted.
    package var unchanged: [DomainID] = []

    /// True when the kitchen builds what its parent builds: the promotion changed nothing.
    package var nothingToPromote: Bool { runID == nil }
}

extension Kitchens {
    /// The registry a home builds with: the code's registry with the recipe changes of production, then of
    /// each kitchen down to this one.
    package func effectiveRegistry(for kitchen: String?, base: DomainRegistry) throws -> DomainRegistry {
        guard let kitchen else { return try base.applyingRecipeOverrides(from: root.appendingPathComponent("recipes")) }
        let manifest = try manifest(kitchen)
        let parent = try effectiveRegistry(for: manifest.from == "production" ? nil : manifest.from, base: base)
        return try parent.applyingRecipeOverrides(from: home(of: kitchen).appendingPathComponent("recipes"))
    }

    /// The parameters a home resolves for a domain: its variation, then its own parameters (a kitchen's).
    func resolvedParameters(
        of domain: Domain, in home: String, variations: VariationSet
    ) throws -> [String: String] {
        let manifest = home == "production" ? nil : try self.manifest(home)
        let (_, variation) = try variations.variation(named: manifest?.variation)
        return VariationSet.resolve(
            domain: domain, variation: variation, overrides: manifest?.parameters[domain.id.rawValue] ?? [:])
    }

    /// Publishes the kitchen's changes into its parent through the same atomic path as a build.
    ///
    /// A domain is promoted when the kitchen's code or parameters for it differ from the parent's (and the
    /// kitchen domains built on it); an unedited kitchen promotes nothing and says so. A changed domain goes
    /// only when the kitchen's last build of it is of its current code and passed its `fail` tests, was built
    /// from the parent's current versions (the sync check), and the parent will build the same code with the
    /// same parameters once the kitchen's SQL is copied. Each refusal says which side must move and the exact
    /// command. Records the promotion as a run of the parent (trigger `kitchen:NAME`) with its OpenLineage
    /// events.
    package func promote(
        _ name: String, base: DomainRegistry, variations: VariationSet, now: Date = Date(),
        logger: @escaping @Sendable (String) -> Void = { _ in }
    ) async throws -> PromotionReport {
        let manifest = try manifest(name)
        let parentName = manifest.from == "production" ? nil : manifest.from
        let parentHome = parentHome(of: manifest)
        let home = home(of: name)
        let parentLock = try MeshLock.acquire(home: parentHome, holder: "kitchen promote \(name)", wait: 0)
        let kitchenLock = try MeshLock.acquire(home: home, holder: "kitchen promote \(name)", wait: 0)
        defer { withExtendedLifetime((parentLock, kitchenLock)) {} }

        let parent = try RuntimeStore(home: parentHome)
        let kitchen = try RuntimeStore(home: home)
        let kitchenRegistry = try effectiveRegistry(for: name, base: base)
        let parentRegistry = try effectiveRegistry(for: parentName, base: base)
        let plan = try promotionPlan(
            manifest, kitchenRegistry: kitchenRegistry, parentRegistry: parentRegistry,
            parentCurrent: try parent.currentVersions(), kitchenCurrent: try kitchen.currentVersions(),
            kitchen: kitchen, variations: variations)
        guard !plan.candidates.isEmpty else {
            return PromotionReport(
                runID: nil, promoted: [], recipeFiles: [], staleDownstream: [], unchanged: manifest.domains)
        }
        guard plan.problems.isEmpty else {
            var error = MeshError(
                .invalid,
                "promotion of kitchen \(name) refused, nothing changed:\n  - "
                    + plan.problems.map { $0.sentence(product.command) }.joined(separator: "\n  - "))
            error.refusals = plan.problems
            throw error
        }
        var report = try await publish(
            plan, of: manifest, parent: parent, kitchen: kitchen, base: base, now: now, logger: logger)
        report.unchanged = manifest.domains.filter { !plan.candidates.contains($0) }
        // The parent's OpenLineage events of the promotion, as a run of its own writes them.
        do {
            var configuration = MeshConfiguration(home: parentHome)
            configuration.product = product
            let parentMesh = try Mesh(
                registry: try parentRegistry.applyingRecipeOverrides(
                    from: home.appendingPathComponent("recipes")),
                configuration: configuration)
            if let runID = report.runID { _ = try OpenLineage.record(runID, mesh: parentMesh) }
        } catch {
            logger("warning: the OpenLineage events of the promotion were not written: \(MeshError.describe(error))")
        }
        return report
    }

    /// What a promotion would publish, and why it cannot yet.
    struct PromotionPlan {
        var candidates: [DomainID] = []
        var problems: [KitchenRefusal] = []
        var recipeFiles: [(URL, String)] = []
        var kitchenCurrent: [DomainID: VersionRecord] = [:]
    }

    /// Every check first, so that a refusal changes nothing.
    func promotionPlan(
        _ manifest: KitchenManifest, kitchenRegistry: DomainRegistry, parentRegistry: DomainRegistry,
        parentCurrent: [DomainID: VersionRecord], kitchenCurrent: [DomainID: VersionRecord], kitchen: RuntimeStore,
        variations: VariationSet
    ) throws -> PromotionPlan {
        let name = manifest.name
        var plan = PromotionPlan(kitchenCurrent: kitchenCurrent)
        var parameters: [DomainID: (kitchen: [String: String], parent: [String: String])] = [:]
        var changed: Set<DomainID> = []
        for id in manifest.domains {
            let mine = try resolvedParameters(of: kitchenRegistry[id]!, in: name, variations: variations)
            let theirs = try resolvedParameters(of: parentRegistry[id]!, in: manifest.from, variations: variations)
            parameters[id] = (mine, theirs)
            if kitchenRegistry[id]!.codeVersion != parentRegistry[id]!.codeVersion || mine != theirs {
                changed.insert(id)
            }
        }
        // The kitchen's builds on a changed domain go with it: production would otherwise keep versions built
        // from the code the promotion replaces.
        let order = GraphAlgorithms.topologicalOrder(
            nodes: manifest.domains, edges: kitchenRegistry.domains.mapValues(\.upstreamDomains))
        var candidates: [DomainID] = []
        for id in order {
            let readsCandidate = kitchenRegistry[id]!.upstreamDomains.contains(where: candidates.contains)
            let builtHere = kitchenCurrent[id]?.retained == true
            if changed.contains(id) || (readsCandidate && builtHere) { candidates.append(id) }
        }
        plan.candidates = candidates
        for id in candidates {
            guard let record = kitchenCurrent[id], record.retained,
                record.codeVersion == kitchenRegistry[id]!.codeVersion
            else {
                plan.problems.append(try notBuiltProblem(id, kitchen: kitchen, name: name))
                continue
            }
            plan.problems += syncProblems(
                of: record, manifest: manifest, candidates: candidates, kitchenCurrent: kitchenCurrent,
                parentCurrent: parentCurrent)
            if let (mine, theirs) = parameters[id], mine != theirs {
                plan.problems.append(.parametersDiffer(id, parent: manifest.from, kitchen: mine, parentValues: theirs))
            }
        }
        // The parent must build the same code: copy the kitchen's changed SQL, then compare code versions.
        var parentAfter = parentRegistry
        for id in candidates {
            let changedSQL = DomainRegistry.sqlSteps(of: kitchenRegistry[id]!.recipe).filter { step, sql in
                DomainRegistry.sqlSteps(of: parentRegistry[id]!.recipe).first { $0.0 == step }?.1 != sql
            }
            for (step, sql) in changedSQL {
                plan.recipeFiles.append(
                    (parentHome(of: manifest).appendingPathComponent("recipes/\(id)/\(step).sql"), sql))
                var domain = parentAfter[id]!
                domain.recipe = DomainRegistry.replacing(
                    step: step.split(separator: ".").map(String.init), sql: sql, in: domain.recipe)!
                try parentAfter.replace(domain)
            }
            if let record = kitchenCurrent[id], record.retained,
                parentAfter[id]!.codeVersion != record.codeVersion
            {
                plan.problems.append(
                    .otherProgram(
                        id, kitchen: name, parent: manifest.from, built: record.codeVersion,
                        parentWouldBuild: parentAfter[id]!.codeVersion))
            }
        }
        return plan
    }

    /// Why a changed domain has no promotable build, and the command that makes one.
    func notBuiltProblem(_ id: DomainID, kitchen: RuntimeStore, name: String) throws -> KitchenRefusal {
        if let last = try kitchen.domainRuns(of: id, limit: 5).first(where: { $0.status != .skipped }),
            last.status.failed
        {
            let failed = try kitchen.testResults(of: id, run: last.runID).filter {
                $0.status == .fail || $0.status == .error
            }
            return .lastRunFailed(
                id, kitchen: name, run: last.runID, status: last.status, message: last.message,
                failedTests: failed.map(\.test))
        }
        return .notBuilt(id, kitchen: name)
    }

    /// The sync check of a promotion: the kitchen's build must have read the parent's current versions. When the
    /// kitchen read them but they lag themselves, the parent must move first.
    func syncProblems(
        of record: VersionRecord, manifest: KitchenManifest, candidates: [DomainID],
        kitchenCurrent: [DomainID: VersionRecord], parentCurrent: [DomainID: VersionRecord]
    ) -> [KitchenRefusal] {
        let id = record.domain
        var problems: [KitchenRefusal] = []
        let parentLags = record.inputVersions.allSatisfy { input, used in
            candidates.contains(DomainID(input)) || parentCurrent[DomainID(input)]?.version == used
        }
        for (upstream, used) in record.upstreamVersions.sorted(by: { $0.key < $1.key }) {
            let upstreamID = DomainID(upstream)
            if candidates.contains(upstreamID) {
                if kitchenCurrent[upstreamID]?.version != used {
                    problems.append(
                        .kitchenInputMoved(
                            id, kitchen: manifest.name, upstream: upstream, used: used,
                            now: kitchenCurrent[upstreamID]?.version))
                }
                continue
            }
            let now = parentCurrent[upstreamID]?.version
            guard now != used else { continue }
            if parentLags {
                // The kitchen read the parent's current inputs, and they were built from an older upstream: only
                // a run of the parent brings them up to date.
                problems.append(
                    .parentOutOfDate(
                        id, kitchen: manifest.name, parent: manifest.from, upstream: upstream, used: used, now: now))
            } else {
                problems.append(
                    .parentMovedOn(
                        id, kitchen: manifest.name, parent: manifest.from, upstream: upstream, used: used, now: now))
            }
        }
        return problems
    }

    /// Publishes a checked plan: files first (fsynced, renamed into place), then every record in one transaction.
    func publish(
        _ plan: PromotionPlan, of manifest: KitchenManifest, parent: RuntimeStore, kitchen: RuntimeStore,
        base: DomainRegistry, now: Date, logger: @escaping @Sendable (String) -> Void
    ) async throws -> PromotionReport {
        var manifest = manifest
        let parentHome = parentHome(of: manifest)
        let kitchenCurrent = plan.kitchenCurrent
        let runID = RunID.make(at: now)
        let records = try copyVersions(of: plan, from: manifest, into: parent, base: base, runID: runID, now: now)
        for (file, sql) in plan.recipeFiles {
            try FileManager.default.createDirectory(
                at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
            try sql.write(to: file, atomically: true, encoding: .utf8)
        }
        try await record(records, of: manifest, in: parent, from: kitchen, plan: plan, runID: runID, now: now)
        for record in records {
            guard let hook = base[record.domain]?.afterPublish else { continue }
            do {
                try await hook(
                    PublishedVersion(
                        domain: record.domain, record: record, file: parentHome.appendingPathComponent(record.path),
                        home: parentHome, runID: runID, log: logger))
            } catch {
                logger("warning: \(record.domain): the publication hook failed after the promotion: \(error)")
            }
        }
        manifest.promotions.append(
            KitchenPromotion(
                at: now, runID: runID,
                versions: Dictionary(
                    uniqueKeysWithValues: records.map {
                        ($0.domain.rawValue, [kitchenCurrent[$0.domain]!.version, $0.version])
                    })))
        try save(manifest)
        var dependents: Set<DomainID> = []
        for domain in base.domains.values
        where domain.upstreamDomains.contains(where: plan.candidates.contains) && !plan.candidates.contains(domain.id) {
            dependents.insert(domain.id)
        }
        return PromotionReport(
            runID: runID, promoted: records.map { ($0.domain, kitchenCurrent[$0.domain]!.version, $0.version) },
            recipeFiles: plan.recipeFiles.map { Self.relativePath(from: parentHome, to: $0.0) },
            staleDownstream: dependents.sorted())
    }

    /// Copies each promoted version's file into the parent under its next version number (in dependency order,
    /// so that a promoted domain's record names the promoted versions of its inputs); returns the new records.
    private func copyVersions(
        of plan: PromotionPlan, from manifest: KitchenManifest, into parent: RuntimeStore, base: DomainRegistry,
        runID: RunID, now: Date
    ) throws -> [VersionRecord] {
        let parentHome = parentHome(of: manifest)
        let home = home(of: manifest.name)
        let candidates = plan.candidates
        let kitchenCurrent = plan.kitchenCurrent
        let order = GraphAlgorithms.topologicalOrder(
            nodes: candidates,
            edges: Dictionary(
                uniqueKeysWithValues: candidates.map { id in
                    (id, base[id]!.upstreamDomains.filter(candidates.contains))
                }))
        var numbers: [DomainID: Int] = [:]
        var records: [VersionRecord] = []
        for id in order {
            let source = kitchenCurrent[id]!
            let number = try parent.latestVersionNumber(of: id) + 1
            numbers[id] = number
            let relative = "domains/\(id.rawValue)/v\(String(format: "%06d", number)).sqlite"
            let destination = parentHome.appendingPathComponent(relative)
            try FileManager.default.createDirectory(
                at: destination.deletingLastPathComponent(), withIntermediateDirectories: true)
            let staging = destination.deletingLastPathComponent().appendingPathComponent(".promote-\(runID).sqlite")
            try DomainBuilder.copyFile(from: home.appendingPathComponent(source.path).path, to: staging.path)
            try DomainBuilder.durablyMove(staging, to: destination)
            var record = source
            record.version = number
            record.path = relative
            record.runID = runID
            record.publishedAt = now
            record.retained = true
            for (input, version) in record.inputVersions
            where numbers[DomainID(input)] != nil && kitchenCurrent[DomainID(input)]?.version == version {
                record.inputVersions[input] = numbers[DomainID(input)]
            }
            for (upstream, version) in record.upstreamVersions
            where numbers[DomainID(upstream)] != nil && kitchenCurrent[DomainID(upstream)]?.version == version {
                record.upstreamVersions[upstream] = numbers[DomainID(upstream)]
            }
            records.append(record)
        }
        return records
    }

    /// Records the promotion in the parent's history in one transaction: a run (trigger `kitchen:NAME`), each
    /// version made current with its domain run and event, and the kitchen's test results under the new run.
    private func record(
        _ records: [VersionRecord], of manifest: KitchenManifest, in parent: RuntimeStore, from kitchen: RuntimeStore,
        plan: PromotionPlan, runID: RunID, now: Date
    ) async throws {
        let name = manifest.name
        let kitchenCurrent = plan.kitchenCurrent
        var testResults: [TestResultRecord] = []
        for record in records {
            for var result in try kitchen.testResults(of: record.domain, run: kitchenCurrent[record.domain]!.runID) {
                result.runID = runID
                testResults.append(result)
            }
        }
        let copiedTests = testResults
        let summary = records.map { "\($0.domain) v\(kitchenCurrent[$0.domain]!.version) as v\($0.version)" }.joined(
            separator: ", ")
        try await parent.pool.write { db in
            try MeshRunRecord(
                runID: runID, startedAt: now, finishedAt: now, status: .success,
                variation: records.first?.variation ?? "",
                trigger: "kitchen:\(name)", triggerEventID: nil, request: "promote kitchen \(name)",
                codeCommit: records.first?.codeCommit, message: "promoted from kitchen \(name): \(summary)"
            ).insert(db)
            for record in records {
                try record.insert(db)
                try CurrentVersionRecord(domain: record.domain, version: record.version).upsert(db)
                let source = kitchenCurrent[record.domain]!
                try DomainRunRecord(
                    runID: runID, domain: record.domain, status: .success,
                    reason: "promoted from kitchen \(name) (its v\(source.version), built by run \(source.runID))",
                    startedAt: now, finishedAt: now, durationMS: 0, version: record.version,
                    inputVersions: record.inputVersions, parameters: record.parameters, codeVersion: record.codeVersion,
                    rowsIn: 0, rowsOut: record.rowCounts.values.reduce(0, +), message: nil
                ).insert(db)
                var event = MeshEvent(
                    kind: .domainPublished, runID: runID, domain: record.domain, at: now,
                    payload: [
                        "version": "\(record.version)", "fingerprint": record.fingerprint, "from": "kitchen:\(name)",
                    ])
                try event.insert(db)
            }
            for result in copiedTests { try result.insert(db) }
        }
    }
}
