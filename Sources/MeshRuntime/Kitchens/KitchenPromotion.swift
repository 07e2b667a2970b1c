import Foundation
import GRDB

/// What a promotion did.
public struct PromotionReport: Sendable {
    public var runID: RunID
    /// domain, kitchen version, version published in the parent.
    public var promoted: [(domain: DomainID, kitchenVersion: Int, version: Int)]
    /// Recipe files copied into the parent's `recipes/` folder.
    public var recipeFiles: [String]
    /// The parent's domains that read a promoted one: its next run rebuilds them.
    public var staleDownstream: [DomainID]
}

extension Kitchens {
    /// The registry a home builds with: the code's registry with the recipe changes of production, then of
    /// each kitchen down to this one.
    public func effectiveRegistry(for kitchen: String?, base: DomainRegistry) throws -> DomainRegistry {
        guard let kitchen else { return try base.applyingRecipeOverrides(from: root.appendingPathComponent("recipes")) }
        let manifest = try manifest(kitchen)
        let parent = try effectiveRegistry(for: manifest.from == "production" ? nil : manifest.from, base: base)
        return try parent.applyingRecipeOverrides(from: home(of: kitchen).appendingPathComponent("recipes"))
    }

    /// Publishes the kitchen's builds into its parent through the same atomic path as a build: only when the
    /// last kitchen run of each domain passed its `fail` tests, the kitchen was built from the parent's
    /// current versions (the sync check), and the parent will build the same code with the same parameters.
    /// Records the promotion as a run of the parent (trigger `kitchen:NAME`).
    public func promote(
        _ name: String, base: DomainRegistry, variations: VariationSet, now: Date = Date(),
        logger: @escaping @Sendable (String) -> Void = { _ in }
    ) async throws -> PromotionReport {
        var manifest = try manifest(name)
        let parentName = manifest.from == "production" ? nil : manifest.from
        let parentHome = parentHome(of: manifest)
        let home = home(of: name)
        let parentLock = try MeshLock.acquire(home: parentHome, holder: "kitchen promote \(name)", wait: 0)
        let kitchenLock = try MeshLock.acquire(home: home, holder: "kitchen promote \(name)", wait: 0)
        defer { withExtendedLifetime((parentLock, kitchenLock)) {} }

        let parent = try RuntimeStore(home: parentHome)
        let kitchen = try RuntimeStore(home: home)
        let parentCurrent = try parent.currentVersions()
        let kitchenCurrent = try kitchen.currentVersions()
        let kitchenRegistry = try effectiveRegistry(for: name, base: base)
        var parentRegistry = try effectiveRegistry(for: parentName, base: base)

        let candidates = manifest.domains.filter { kitchenCurrent[$0]?.retained == true }
        guard !candidates.isEmpty else {
            throw MeshError(
                .invalid,
                "nothing to promote: kitchen \(name) has not built any of its domains yet; run `pharma-mesh kitchen run \(name)`"
            )
        }
        // Every check first, so that a refusal changes nothing.
        var problems: [String] = []
        for id in candidates {
            let record = kitchenCurrent[id]!
            // What is promoted is what the kitchen's code builds now: its current version must be of that code.
            if kitchenRegistry[id]!.codeVersion != record.codeVersion {
                if let last = try kitchen.domainRuns(of: id, limit: 5).first(where: { $0.status != .skipped }),
                    last.status.failed || last.status == .fail
                {
                    let failed = try kitchen.testResults(of: id, run: last.runID).filter {
                        $0.status == .fail || $0.status == .error
                    }
                    problems.append(
                        "\(id): its last kitchen run \(last.runID) ended in \(last.status.rawValue)"
                            + (failed.isEmpty
                                ? (last.message.map { " (\($0))" } ?? "")
                                : "; failed tests: \(failed.map(\.test).joined(separator: ", "))")
                            + "; fix the recipe and run the kitchen again")
                } else {
                    problems.append(
                        "\(id): its recipe changed since the kitchen built v\(record.version); run `pharma-mesh kitchen run \(name)` first"
                    )
                }
                continue
            }
            for (upstream, used) in record.upstreamVersions.sorted(by: { $0.key < $1.key }) {
                let upstreamID = DomainID(upstream)
                if candidates.contains(upstreamID) {
                    if kitchenCurrent[upstreamID]?.version != used {
                        problems.append(
                            "\(id) was built from the kitchen's \(upstream)@v\(used), which is now v\(kitchenCurrent[upstreamID]?.version ?? 0): run the kitchen again"
                        )
                    }
                } else if parentCurrent[upstreamID]?.version != used {
                    problems.append(
                        "\(id) was built from \(upstream)@v\(used), but \(manifest.from)'s \(upstream) is now v\(parentCurrent[upstreamID].map { String($0.version) } ?? "-"): run `pharma-mesh kitchen run \(name)` (it reads the parent's current versions), check the diff, then promote"
                    )
                }
            }
        }
        // The parent must build the same code: copy the kitchen's changed SQL, then compare code versions.
        var recipeFiles: [(URL, String)] = []
        for id in candidates {
            let changed = DomainRegistry.sqlSteps(of: kitchenRegistry[id]!.recipe).filter { step, sql in
                DomainRegistry.sqlSteps(of: parentRegistry[id]!.recipe).first { $0.0 == step }?.1 != sql
            }
            for (step, sql) in changed {
                recipeFiles.append((parentHome.appendingPathComponent("recipes/\(id)/\(step).sql"), sql))
                var domain = parentRegistry[id]!
                domain.recipe = DomainRegistry.replacing(
                    step: step.split(separator: ".").map(String.init), sql: sql, in: domain.recipe)!
                try parentRegistry.replace(domain)
            }
            let record = kitchenCurrent[id]!
            if parentRegistry[id]!.codeVersion != record.codeVersion {
                problems.append(
                    "\(id): the kitchen built it with code \(record.codeVersion), and \(manifest.from) would build \(parentRegistry[id]!.codeVersion) even with the kitchen's SQL: the program itself differs; deploy it to \(manifest.from) first"
                )
            }
            let parentManifest = parentName.flatMap { try? self.manifest($0) }
            let (_, variation) = try variations.variation(named: parentManifest?.variation)
            let expected = VariationSet.resolve(
                domain: parentRegistry[id]!, variation: variation,
                overrides: parentManifest?.parameters[id.rawValue] ?? [:])
            if expected != record.parameters {
                let keys = Set(expected.keys).union(record.parameters.keys).filter {
                    expected[$0] != record.parameters[$0]
                }.sorted()
                problems.append(
                    "\(id) was built with \(keys.map { "\($0)=\(record.parameters[$0] ?? "-")" }.joined(separator: ", ")) but \(manifest.from) resolves \(keys.map { "\($0)=\(expected[$0] ?? "-")" }.joined(separator: ", ")): put the parameters in the variation \(manifest.from) runs (config/variations.json) first"
                )
            }
        }
        guard problems.isEmpty else {
            throw MeshError(
                .invalid,
                "promotion of kitchen \(name) refused, nothing changed:\n  - " + problems.joined(separator: "\n  - "))
        }

        // Publish: files first (fsynced, renamed into place), then every record in one transaction.
        let runID = RunID.make(at: now)
        let order = GraphAlgorithms.topologicalOrder(
            nodes: candidates,
            edges: Dictionary(
                uniqueKeysWithValues: candidates.map { id in (id, base[id]!.upstreamDomains.filter(candidates.contains))
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
        for (file, sql) in recipeFiles {
            try FileManager.default.createDirectory(
                at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
            try sql.write(to: file, atomically: true, encoding: .utf8)
        }
        let published = records
        // The promoted versions' test results go into the parent's history under the promotion run.
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
                variation: published.first?.variation ?? "",
                trigger: "kitchen:\(name)", triggerEventID: nil, request: "promote kitchen \(name)",
                codeCommit: published.first?.codeCommit, message: "promoted from kitchen \(name): \(summary)"
            ).insert(db)
            for record in published {
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
        where domain.upstreamDomains.contains(where: candidates.contains) && !candidates.contains(domain.id) {
            dependents.insert(domain.id)
        }
        return PromotionReport(
            runID: runID, promoted: records.map { ($0.domain, kitchenCurrent[$0.domain]!.version, $0.version) },
            recipeFiles: recipeFiles.map { Self.relativePath(from: parentHome, to: $0.0) },
            staleDownstream: dependents.sorted())
    }
}
