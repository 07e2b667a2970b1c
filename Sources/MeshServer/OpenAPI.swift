import Foundation

/// The OpenAPI 3.1 description of every route. Written by hand, apart from the router: a test checks
/// that the two list the same operations and that each documented operation is served by its route.
enum OpenAPI {
    struct Parameter {
        var name: String
        var location: String
        var required: Bool
        var type: String
        var description: String
    }
    struct Operation {
        var method: String
        var path: String
        var summary: String
        var open: Bool = false
        var parameters: [Parameter] = []
        var body: String? = nil
        var responses: [String: String]
        var produces: String = "application/json"
    }

    static let domain = Parameter(
        name: "domain", location: "path", required: true, type: "string",
        description: "The domain id, for example physician-mart.")
    static let kitchen = Parameter(
        name: "kitchen", location: "path", required: true, type: "string", description: "A kitchen's name.")
    static let run = Parameter(name: "run", location: "path", required: true, type: "string", description: "A run id.")
    static let limit = Parameter(
        name: "limit", location: "query", required: false, type: "integer", description: "At most this many items.")
    static let format = Parameter(
        name: "format", location: "query", required: false, type: "string",
        description: "json (the default for programs) or html (the default for browsers).")
    static let denied = [
        "401": "No token, or an unknown, expired or revoked one.",
        "403": "The token does not cover the domain, or lacks the role.",
    ]

    static let operations: [Operation] = [
        Operation(
            method: "GET", path: "/health", summary: "Liveness: the server answers and knows its domains.", open: true,
            responses: ["200": "ok"]),
        Operation(
            method: "GET", path: "/openapi.json", summary: "This document.", open: true,
            responses: ["200": "The OpenAPI document."]),
        Operation(
            method: "GET", path: "/login",
            summary:
                "The sign-in form, which posts the token to POST /login; a token in the URL is refused (400), since URLs end up in histories and logs.",
            open: true,
            parameters: [
                Parameter(
                    name: "next", location: "query", required: false, type: "string",
                    description: "Where to go after signing in: a path of this server.")
            ], responses: ["200": "The sign-in form.", "400": "A token was given in the URL."],
            produces: "text/html"),
        Operation(
            method: "POST", path: "/login",
            summary:
                "Signs a browser in (form fields `token` and `next`): keeps the token in an HTTP-only cookie, then redirects to `next` when it is a path of this server, else to /.",
            open: true, body: "application/x-www-form-urlencoded",
            responses: ["303": "Signed in.", "401": "The token is not valid.", "413": "The form is too large."],
            produces: "text/html"),
        Operation(
            method: "GET", path: "/",
            summary:
                "The mesh: every domain the token covers with its status and sync verdict; a page with the domain graph in a browser.",
            parameters: [format], responses: ["200": "The domains."].merging(denied) { $1 }),
        Operation(
            method: "GET", path: "/mesh.svg", summary: "The domain graph, coloured by status and sync.",
            responses: ["200": "SVG."].merging(denied) { $1 }, produces: "image/svg+xml"),
        Operation(
            method: "GET", path: "/domains",
            summary: "Every domain the token covers: version, built, last status, tests, sync verdict.",
            parameters: [format], responses: ["200": "The domains."].merging(denied) { $1 }),
        Operation(
            method: "GET", path: "/domains/{domain}",
            summary:
                "The four W's and an H: what (tables, dictionary), where (how to connect), when (runs, tests), with what (exact input versions, sync), how (recipe, code version, parameters).",
            parameters: [domain, format],
            responses: ["200": "The domain.", "404": "No such domain."].merging(denied) { $1 }),
        Operation(
            method: "GET", path: "/domains/{domain}/runs", summary: "The domain's runs, newest first.",
            parameters: [domain, limit], responses: ["200": "Runs.", "404": "No such domain."].merging(denied) { $1 }),
        Operation(
            method: "POST", path: "/domains/{domain}/runs",
            summary:
                "Process linkage: start a run of the domain with parameters. Needs the runner role on the domain. Returns at once with the run's URL.",
            parameters: [domain],
            body:
                "application/json: {\"parameters\": {NAME: VALUE}, \"variation\": NAME, \"force\": bool, \"full_refresh\": bool}",
            responses: [
                "202": "Queued; poll the `url`.", "400": "Unknown parameter or variation, or a malformed body.",
                "404": "No such domain.",
            ].merging(denied) { $1 }),
        Operation(
            method: "GET", path: "/domains/{domain}/runs/{run}",
            summary: "The domain's part in one run: steps, test results, log lines.", parameters: [domain, run],
            responses: ["200": "The run.", "404": "No such run of this domain."].merging(denied) { $1 }),
        Operation(
            method: "GET", path: "/domains/{domain}/tests", summary: "Test results, newest first, or those of one run.",
            parameters: [
                domain, limit,
                Parameter(
                    name: "run", location: "query", required: false, type: "string",
                    description: "Only this run's results."),
            ],
            responses: ["200": "Test results.", "404": "No such domain."].merging(denied) { $1 }),
        Operation(
            method: "GET", path: "/domains/{domain}/lineage",
            summary: "What the current version was built from, down to the sources, and who reads it.",
            parameters: [domain], responses: ["200": "Lineage.", "404": "No such domain."].merging(denied) { $1 }),
        Operation(
            method: "GET", path: "/domains/{domain}/lineage.svg", summary: "The lineage as a graph.",
            parameters: [domain], responses: ["200": "SVG.", "404": "No such domain."].merging(denied) { $1 },
            produces: "image/svg+xml"),
        Operation(
            method: "GET", path: "/domains/{domain}/versions",
            summary: "Every published version: fingerprint, inputs, parameters, row counts.", parameters: [domain],
            responses: ["200": "Versions.", "404": "No such domain."].merging(denied) { $1 }),
        Operation(
            method: "GET", path: "/domains/{domain}/catalog",
            summary: "The data dictionary of the published tables, with row counts.", parameters: [domain],
            responses: ["200": "The catalog.", "404": "No such domain."].merging(denied) { $1 }),
        Operation(
            method: "GET", path: "/runs",
            summary: "Recent mesh runs, with the domains each touched (those the token covers).", parameters: [limit],
            responses: ["200": "Runs."].merging(denied) { $1 }),
        Operation(
            method: "GET", path: "/runs/{run}", summary: "One mesh run; a page in a browser.",
            parameters: [run, format], responses: ["200": "The run.", "404": "No such run."].merging(denied) { $1 }),
        Operation(
            method: "GET", path: "/domains/{domain}/tests/history",
            summary:
                "One test (or every test) of the domain run by run, oldest first, with what measured tests measured.",
            parameters: [
                domain, limit,
                Parameter(
                    name: "test", location: "query", required: false, type: "string", description: "The test's name."),
            ], responses: ["200": "Results over time.", "404": "No such domain."].merging(denied) { $1 }),
        Operation(
            method: "GET", path: "/domains/{domain}/problems",
            summary: "Problems consumers reported against the domain.",
            parameters: [
                domain,
                Parameter(
                    name: "open", location: "query", required: false, type: "integer", description: "1: only open ones."
                ),
            ], responses: ["200": "Problems.", "404": "No such domain."].merging(denied) { $1 }),
        Operation(
            method: "POST", path: "/domains/{domain}/problems",
            summary: "Report a problem against the domain (any role on it).",
            parameters: [domain], body: "application/json: {\"title\": TEXT, \"detail\": TEXT}",
            responses: [
                "201": "Recorded; shown on the domain's page until its owner closes it.", "400": "No title.",
                "404": "No such domain.",
            ].merging(denied) { $1 }),
        Operation(
            method: "POST", path: "/domains/{domain}/problems/{problem}/close",
            summary: "Close a problem (the owner role), naming the run that fixed it.",
            parameters: [
                domain,
                Parameter(
                    name: "problem", location: "path", required: true, type: "integer",
                    description: "The problem's number."),
            ],
            body: "application/json: {\"resolution\": TEXT, \"fixed_by_run\": RUN}",
            responses: ["200": "Closed.", "400": "Closed already, or no such run.", "404": "No such problem."].merging(
                denied
            ) { $1 }),
        Operation(
            method: "GET", path: "/domains/{domain}/openlineage",
            summary: "The domain's OpenLineage run events (START, COMPLETE, FAIL, ABORT).",
            parameters: [domain, limit],
            responses: ["200": "OpenLineage RunEvents.", "404": "No such domain."].merging(denied) { $1 }),
        Operation(
            method: "GET", path: "/openlineage",
            summary: "OpenLineage run events of the domains the token covers, for a catalog such as Marquez.",
            parameters: [
                limit,
                Parameter(
                    name: "run", location: "query", required: false, type: "string",
                    description: "Only this mesh run's events."),
            ],
            responses: ["200": "OpenLineage RunEvents."].merging(denied) { $1 }),
        Operation(
            method: "GET", path: "/metrics",
            summary:
                "Prometheus text exposition: requests, run durations, rows published, tests by outcome, lateness, sync, open problems.",
            responses: ["200": "text/plain; version=0.0.4"].merging(denied) { $1 }, produces: "text/plain"),
        Operation(
            method: "GET", path: "/kitchens", summary: "The kitchens whose domains the token covers.",
            responses: ["200": "Kitchens."].merging(denied) { $1 }),
        Operation(
            method: "POST", path: "/kitchens",
            summary:
                "Development linkage: re-create domains in a kitchen (the owner role on each); instant, no data copied.",
            body: "application/json: {\"name\": NAME, \"from\": \"production\"|KITCHEN, \"domains\": [DOMAIN]}",
            responses: ["201": "Created.", "400": "A bad name, an unknown domain, or the name is taken."].merging(
                denied
            ) { $1 }),
        Operation(
            method: "GET", path: "/kitchens/{kitchen}",
            summary: "A kitchen: its domains' status and the SQL of their steps.",
            parameters: [kitchen], responses: ["200": "The kitchen.", "404": "No such kitchen."].merging(denied) { $1 }),
        Operation(
            method: "PUT", path: "/kitchens/{kitchen}/recipes/{domain}/{step}",
            summary: "Change the SQL of one step of a kitchen's domain (the owner role); the body is the SQL.",
            parameters: [
                kitchen, domain,
                Parameter(
                    name: "step", location: "path", required: true, type: "string",
                    description: "A SQL step, nested ones as parent.child."),
            ],
            body: "text/plain",
            responses: ["200": "Saved.", "404": "No such kitchen, domain or SQL step."].merging(denied) { $1 }),
        Operation(
            method: "POST", path: "/kitchens/{kitchen}/runs",
            summary:
                "Run the kitchen (the runner role): reads the parent's current versions, builds the kitchen's domains; production untouched.",
            parameters: [kitchen],
            body: "application/json: {\"parameters\": {DOMAIN: {NAME: VALUE}}, \"variation\": NAME, \"force\": bool}",
            responses: ["200": "The run's outcome.", "404": "No such kitchen."].merging(denied) { $1 }),
        Operation(
            method: "GET", path: "/kitchens/{kitchen}/diff",
            summary: "What the kitchen changed: schema, rows, a keyed sample of changed rows, tests side by side.",
            parameters: [
                kitchen,
                Parameter(
                    name: "sample", location: "query", required: false, type: "integer",
                    description: "Changed rows shown per table."),
            ],
            responses: ["200": "The diff.", "404": "No such kitchen."].merging(denied) { $1 }),
        Operation(
            method: "POST", path: "/kitchens/{kitchen}/promote",
            summary:
                "Promote the kitchen's builds into its parent (the owner role), when tests and the sync check pass.",
            parameters: [kitchen],
            responses: [
                "200": "Promoted.", "400": "Refused: every reason listed, nothing changed.",
                "409": "A run holds the lock.",
            ].merging(denied) { $1 }),
        Operation(
            method: "DELETE", path: "/kitchens/{kitchen}",
            summary: "Delete the kitchen (the owner role), and nothing else.",
            parameters: [kitchen],
            responses: ["200": "Deleted.", "400": "Another kitchen was made from it."].merging(denied) { $1 }),
        Operation(
            method: "GET", path: "/events",
            summary: "Server-sent events of runs, tests and publications (of the domains the token covers).",
            parameters: [
                Parameter(
                    name: "after", location: "query", required: false, type: "integer",
                    description: "Replay from after this event id (or send Last-Event-ID); default: only new events."),
                Parameter(
                    name: "domain", location: "query", required: false, type: "string",
                    description: "Only this domain's events."),
                Parameter(
                    name: "kind", location: "query", required: false, type: "string",
                    description: "Only kinds with this prefix, for example `domain.`."),
                Parameter(
                    name: "limit", location: "query", required: false, type: "integer",
                    description: "End the stream after this many events."),
            ], responses: ["200": "text/event-stream"].merging(denied) { $1 }, produces: "text/event-stream"),
        Operation(
            method: "GET", path: "/query",
            summary:
                "Read-only SQL over the published domains the token covers; each domain is a schema named after it with - turned into _.",
            parameters: [
                Parameter(
                    name: "sql", location: "query", required: true, type: "string",
                    description: "One SELECT (or WITH … SELECT)."),
                Parameter(
                    name: "limit", location: "query", required: false, type: "integer",
                    description: "At most this many rows (the server has its own cap)."),
                Parameter(
                    name: "format", location: "query", required: false, type: "string",
                    description: "json (default) or csv."),
            ],
            responses: [
                "200":
                    "columns, rows, row_count, truncated (and truncated_by: rows or bytes), versions read, elapsed_ms.",
                "400": "Not read-only, unknown schema or table, or stopped by the time limit.",
                "413": "The SQL is too long.",
                "429": "The token runs as many queries as one token may at once (Retry-After).",
                "503": "The server runs as many queries as it may at once, or is stopping (Retry-After).",
            ].merging(denied) { $1 }),
    ]

    static func document(title: String) throws -> String {
        var paths: [String: [String: Any]] = [:]
        for var op in operations {
            // Every route that reads a body refuses one past its limit with 413.
            if op.body != nil, op.responses["413"] == nil {
                op.responses["413"] = "The body is larger than this route accepts."
            }
            var operation: [String: Any] = [
                "summary": op.summary,
                "operationId": op.method.lowercased()
                    + op.path.replacingOccurrences(of: "/", with: "_")
                    .replacingOccurrences(of: "{", with: "").replacingOccurrences(of: "}", with: "")
                    .replacingOccurrences(of: ".", with: "_"),
                "responses": Dictionary(
                    uniqueKeysWithValues: op.responses.map { code, text in
                        // A JSON route answers a browser (Accept preferring text/html, or ?format=html) with a page.
                        var content: [String: Any] = [op.produces: [:] as [String: Any]]
                        if op.method == "GET", op.produces == "application/json", !op.path.hasSuffix(".json") {
                            content["text/html"] = [:] as [String: Any]
                        }
                        return (code, ["description": text, "content": content] as [String: Any])
                    }),
            ]
            if !op.parameters.isEmpty {
                operation["parameters"] = op.parameters.map {
                    [
                        "name": $0.name, "in": $0.location, "required": $0.required, "description": $0.description,
                        "schema": ["type": $0.type],
                    ] as [String: Any]
                }
            }
            if let body = op.body {
                operation["requestBody"] = [
                    "description": body,
                    "content": [body.hasPrefix("application/json") ? "application/json" : body: [:] as [String: Any]],
                ]
            }
            operation["security"] = op.open ? [] : [["bearer": [] as [String]]]
            paths[op.path, default: [:]][op.method.lowercased()] = operation
        }
        let document: [String: Any] = [
            "openapi": "3.1.0",
            "info": ["title": "\(title) HTTP API", "version": "1"],
            "paths": paths,
            "components": [
                "securitySchemes": [
                    "bearer": [
                        "type": "http", "scheme": "bearer",
                        "description": "A token from `pharma-mesh token create` (roles reader, runner, owner).",
                    ]
                ]
            ],
        ]
        let data = try JSONSerialization.data(
            withJSONObject: document, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self)
    }
}
