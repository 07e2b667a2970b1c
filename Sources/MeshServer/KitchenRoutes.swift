import Foundation
import HTTPTypes
import Hummingbird
import MeshRuntime
import NIOCore

/// Development linkage over HTTP: re-create domains in a kitchen, change their SQL, run, compare, promote.
extension MeshHTTPServer {
    func kitchenSupport() throws -> KitchenSupport {
        guard let support = configuration.kitchens else {
            throw APIError(.notFound, "kitchens are not served by this server")
        }
        return support
    }

    /// The kitchen named in the path, whose every domain the caller's token must cover with `role`.
    ///
    /// A token that does not cover every domain gets the same 403 whether the kitchen exists or not (a
    /// kitchen's name and domains are for those who may see them); only a token that covers every domain
    /// hears that a kitchen does not exist.
    func kitchen(_ context: BasicRequestContext, _ caller: Caller, role: AccessRole) throws -> (
        KitchenSupport, KitchenManifest
    ) {
        let support = try kitchenSupport()
        let token = try caller.require()
        let name = context.parameters.get("kitchen") ?? ""
        let everything = token.domains.contains("*")
        let hidden = AccessDenied.forbidden("the token \(token.name) does not cover kitchen '\(name)'")
        if everything, token.role < role {
            throw AccessDenied.forbidden(
                "the token \(token.name) is a \(token.role.rawValue); this needs the \(role.rawValue) role")
        }
        let manifest: KitchenManifest
        do {
            manifest = try support.kitchens.manifest(name)
        } catch {
            if everything { throw error }
            throw hidden
        }
        guard manifest.domains.allSatisfy(token.covers) else { throw hidden }
        for domain in manifest.domains { _ = try caller.require(role, on: domain) }
        return (support, manifest)
    }

    struct KitchenView: Encodable {
        var kitchen: KitchenManifest
        var url: String
        var domains: [DomainSummary]
        var recipes: [String: [String: String]]
        var diffURL: String
        enum CodingKeys: String, CodingKey { case kitchen, url, domains, recipes, diffURL = "diff_url" }
    }

    /// The kitchens, each kitchen's description, and its recipe changes.
    func addKitchenRoutes(_ routes: RouteTable) {
        routes.add(.get, "/kitchens") { _, _, caller in
            let token = try caller.require()
            return try self.answer(
                try self.kitchenSupport().kitchens.list().filter { $0.domains.allSatisfy(token.covers) }, caller,
                title: "kitchens")
        }
        routes.add(.post, "/kitchens") { request, _, caller in
            let support = try self.kitchenSupport()
            struct Body: Decodable {
                var name: String
                var from: String?
                var domains: [String]
            }
            let body: Body = try await Self.decode(
                request, example: #"{"name": "new-call-plan", "from": "production", "domains": ["field-extracts"]}"#)
            for domain in body.domains { _ = try caller.require(.owner, on: DomainID(domain)) }
            let from = body.from ?? "production"
            let registry = try support.kitchens.effectiveRegistry(
                for: from == "production" ? nil : from, base: support.base)
            let manifest = try support.kitchens.create(
                body.name, from: from, domains: body.domains.map(DomainID.init), registry: registry)
            var response = try Respond.json(manifest, status: .created)
            response.headers[.location] = "/kitchens/\(manifest.name)"
            return response
        }
        routes.add(.get, "/kitchens/{kitchen}") { _, context, caller in
            let (support, manifest) = try self.kitchen(context, caller, role: .reader)
            let mesh = try support.kitchens.mesh(
                manifest.name, base: support.base, configuration: self.mesh.configuration)
            var recipes: [String: [String: String]] = [:]
            for id in manifest.domains {
                recipes[id.rawValue] = Dictionary(
                    DomainRegistry.sqlSteps(of: mesh.registry[id]!.recipe), uniquingKeysWith: { a, _ in a })
            }
            return try self.answer(
                KitchenView(
                    kitchen: manifest, url: "/kitchens/\(manifest.name)",
                    domains: try mesh.status().filter { manifest.domains.contains($0.domain) }.map(DomainSummary.init),
                    recipes: recipes, diffURL: "/kitchens/\(manifest.name)/diff"), caller,
                title: "kitchen \(manifest.name)")
        }
        routes.add(.put, "/kitchens/{kitchen}/recipes/{domain}/{step}") { request, context, caller in
            let (support, manifest) = try self.kitchen(context, caller, role: .reader)
            let domain = DomainID(context.parameters.get("domain") ?? "")
            _ = try caller.require(.owner, on: domain)
            guard manifest.domains.contains(domain) else {
                throw APIError(.notFound, "kitchen \(manifest.name) does not build \(domain)")
            }
            let step = context.parameters.get("step") ?? ""
            let registry = try support.kitchens.effectiveRegistry(for: manifest.name, base: support.base)
            guard DomainRegistry.sqlSteps(of: registry[domain]!.recipe).contains(where: { $0.0 == step }) else {
                throw APIError(
                    .notFound,
                    "\(domain) has no SQL step \(step); its SQL steps are: \(DomainRegistry.sqlSteps(of: registry[domain]!.recipe).map(\.0).joined(separator: ", "))"
                )
            }
            let body = try await request.body.collect(upTo: 1 << 20)
            let sql = String(buffer: body)
            guard !sql.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
                throw APIError(.badRequest, "send the step's new SQL as the body")
            }
            let folder = support.kitchens.home(of: manifest.name).appendingPathComponent("recipes/\(domain)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try sql.write(to: folder.appendingPathComponent("\(step).sql"), atomically: true, encoding: .utf8)
            return try Respond.json([
                "kitchen": manifest.name, "domain": domain.rawValue, "step": step, "bytes": "\(sql.utf8.count)",
            ])
        }
        addKitchenWorkRoutes(routes)
    }

    /// A kitchen's runs, its diff with the parent, its promotion and its deletion.
    private func addKitchenWorkRoutes(_ routes: RouteTable) {
        routes.add(.post, "/kitchens/{kitchen}/runs") { request, context, caller in
            let (support, manifest) = try self.kitchen(context, caller, role: .runner)
            struct Body: Decodable {
                var parameters: [String: [String: String]]?
                var variation: String?
                var force: Bool?
            }
            let body: Body = try await Self.decode(
                request, example: #"{"parameters": {"DOMAIN": {"NAME": "VALUE"}}}"#, whenEmpty: Body())
            let (mesh, runRequest) = try support.kitchens.prepareRun(
                manifest.name, base: support.base, configuration: self.mesh.configuration,
                parameters: body.parameters ?? [:], variation: body.variation, force: body.force ?? false,
                sourceStates: try support.sourceStates())
            let summary = try await mesh.run(runRequest)
            return try Respond.json([
                "run_id": summary.runID.rawValue, "status": summary.status.rawValue,
                "built": summary.built.map(\.rawValue).joined(separator: ","),
                "failed": summary.failed.map(\.rawValue).joined(separator: ","),
                "diff_url": "/kitchens/\(manifest.name)/diff",
            ])
        }
        routes.add(.get, "/kitchens/{kitchen}/diff") { _, context, caller in
            let (support, manifest) = try self.kitchen(context, caller, role: .reader)
            let registry = try support.kitchens.effectiveRegistry(for: manifest.name, base: support.base)
            let sample = try caller.integer("sample", default: 5, max: 100)
            return try self.answer(
                try support.kitchens.diff(manifest.name, registry: registry, sampleSize: sample), caller,
                title: "kitchen \(manifest.name): what differs from \(manifest.from)")
        }
        routes.add(.post, "/kitchens/{kitchen}/promote") { _, context, caller in
            let (support, manifest) = try self.kitchen(context, caller, role: .owner)
            let report = try await support.kitchens.promote(
                manifest.name, base: support.base, variations: support.variations)
            struct Promoted: Encodable {
                var runID: String?
                var message: String
                var promoted: [[String: String]]
                var recipeFiles: [String]
                var staleDownstream: [String]
                var unchanged: [String]
                enum CodingKeys: String, CodingKey {
                    case runID = "run_id", message, promoted, recipeFiles = "recipe_files",
                        staleDownstream = "stale_downstream", unchanged
                }
            }
            return try Respond.json(
                Promoted(
                    runID: report.runID?.rawValue,
                    message: report.nothingToPromote
                        ? "nothing to promote: the kitchen builds what \(manifest.from) builds"
                        : "promoted \(report.promoted.map(\.domain.rawValue).joined(separator: ", ")) into \(manifest.from)",
                    promoted: report.promoted.map {
                        [
                            "domain": $0.domain.rawValue, "kitchen_version": "\($0.kitchenVersion)",
                            "version": "\($0.version)",
                        ]
                    }, recipeFiles: report.recipeFiles, staleDownstream: report.staleDownstream.map(\.rawValue),
                    unchanged: report.unchanged.map(\.rawValue)))
        }
        routes.add(.delete, "/kitchens/{kitchen}") { _, context, caller in
            let (support, manifest) = try self.kitchen(context, caller, role: .owner)
            try support.kitchens.delete(manifest.name)
            return try Respond.json(["deleted": manifest.name])
        }
    }
}
