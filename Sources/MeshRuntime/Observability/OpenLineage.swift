import Crypto
import Foundation

/// Lineage in the open standard: every domain run becomes OpenLineage run events (a START, then COMPLETE,
/// FAIL or ABORT; job = the domain; inputs and outputs = the tables of the domain versions read and
/// published, with schema, version and row-count facets), appended to `HOME/openlineage/RUN.jsonl` after
/// each mesh run, so that a catalog such as Marquez can read them.
public enum OpenLineage {
    public static let producer = "https://github.com/pharma-mesh/pharma-mesh"
    public static let runEventSchema = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
    static let schemaFacet =
        "https://openlineage.io/spec/facets/1-1-1/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet"
    static let versionFacet =
        "https://openlineage.io/spec/facets/1-0-1/DatasetVersionDatasetFacet.json#/$defs/DatasetVersionDatasetFacet"
    static let statisticsFacet =
        "https://openlineage.io/spec/facets/1-0-2/OutputStatisticsOutputDatasetFacet.json#/$defs/OutputStatisticsOutputDatasetFacet"
    static let documentationFacet =
        "https://openlineage.io/spec/facets/1-0-1/DocumentationJobFacet.json#/$defs/DocumentationJobFacet"
    static let ownershipFacet =
        "https://openlineage.io/spec/facets/1-0-1/OwnershipJobFacet.json#/$defs/OwnershipJobFacet"
    static let meshRunFacet = "https://github.com/pharma-mesh/pharma-mesh/blob/main/docs/architecture.md#openlineage"
    /// The namespace of jobs and datasets.
    public static let namespace = "pharma-mesh"

    public static func folder(home: URL) -> URL { home.appendingPathComponent("openlineage") }

    /// A UUID that is the same for the same mesh run and domain (OpenLineage wants one per job run).
    public static func runUUID(_ run: RunID, _ domain: DomainID) -> String {
        var bytes = Array(SHA256.hash(data: Data("\(run)/\(domain)".utf8)).prefix(16))
        bytes[6] = (bytes[6] & 0x0F) | 0x50
        bytes[8] = (bytes[8] & 0x3F) | 0x80
        let hex = bytes.map { String(format: "%02x", $0) }.joined()
        let parts = [0..<8, 8..<12, 12..<16, 16..<20, 20..<32].map { range in
            String(
                hex[
                    hex.index(
                        hex.startIndex, offsetBy: range.lowerBound)..<hex.index(
                            hex.startIndex, offsetBy: range.upperBound)])
        }
        return parts.joined(separator: "-")
    }

    /// The events of one mesh run, built from its history.
    public static func events(of runID: RunID, mesh: Mesh) throws -> [[String: Any]] {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        var events: [[String: Any]] = []
        // Versions repeat across the domain runs of a mesh run (every mart reads the same dimensions).
        var versions: [String: VersionRecord?] = [:]
        func version(_ domain: DomainID, _ number: Int) throws -> VersionRecord? {
            let key = "\(domain)@\(number)"
            if let known = versions[key] { return known }
            let record = try mesh.store.version(domain, number)
            versions[key] = record
            return record
        }
        for run in try mesh.store.domainRuns(in: runID) {
            let ending: String
            switch run.status {
            case .success, .warn: ending = "COMPLETE"
            case .fail, .error: ending = "FAIL"
            case .interrupted: ending = "ABORT"
            case .skipped, .upToDate, .running: continue
            }
            let domain = mesh.registry[run.domain]
            let runFacet: [String: Any] = [
                "meshRun": [
                    "_producer": producer, "_schemaURL": meshRunFacet, "meshRunId": runID.rawValue,
                    "status": run.status.rawValue, "reason": run.reason, "codeVersion": run.codeVersion,
                    "parameters": run.parameters,
                ] as [String: Any]
            ]
            var jobFacets: [String: Any] = [:]
            if let domain {
                jobFacets["documentation"] = [
                    "_producer": producer, "_schemaURL": documentationFacet, "description": domain.description,
                ]
                jobFacets["ownership"] = [
                    "_producer": producer, "_schemaURL": ownershipFacet,
                    "owners": [["name": "team:\(domain.owner.team)", "type": "MAINTAINER"]],
                ]
            }
            let job: [String: Any] = ["namespace": namespace, "name": run.domain.rawValue, "facets": jobFacets]
            var inputs: [[String: Any]] = []
            for (input, number) in run.inputVersions.sorted(by: { $0.key < $1.key }) {
                let record = try version(DomainID(input), number)
                for table in (record?.schema.keys.sorted() ?? []) {
                    inputs.append(dataset(domain: input, table: table, record: record, output: false))
                }
            }
            let runUUID = runUUID(runID, run.domain)
            let base: [String: Any] = [
                "run": ["runId": runUUID, "facets": runFacet], "job": job, "producer": producer,
                "schemaURL": runEventSchema,
            ]
            var start = base
            start["eventType"] = "START"
            start["eventTime"] = formatter.string(from: run.startedAt)
            start["inputs"] = inputs
            start["outputs"] = [[String: Any]]()
            events.append(start)
            var end = base
            end["eventType"] = ending
            end["eventTime"] = formatter.string(from: run.finishedAt ?? run.startedAt)
            end["inputs"] = inputs
            let published = try run.version.flatMap {
                ending == "COMPLETE" ? try mesh.store.version(run.domain, $0) : nil
            }
            end["outputs"] = (published?.schema.keys.sorted() ?? []).map {
                dataset(domain: run.domain.rawValue, table: $0, record: published, output: true)
            }
            events.append(end)
        }
        return events
    }

    static func dataset(domain: String, table: String, record: VersionRecord?, output: Bool) -> [String: Any] {
        var facets: [String: Any] = [:]
        if let record {
            facets["schema"] =
                [
                    "_producer": producer, "_schemaURL": schemaFacet,
                    "fields": (record.schema[table] ?? []).map { column -> [String: String] in
                        let parts = column.split(separator: " ", maxSplits: 1).map(String.init)
                        return [
                            "name": parts.first ?? column,
                            "type": parts.count > 1 && !parts[1].isEmpty ? parts[1] : "ANY",
                        ]
                    },
                ] as [String: Any]
            facets["version"] = [
                "_producer": producer, "_schemaURL": versionFacet, "datasetVersion": "\(record.version)",
            ]
        }
        var dataset: [String: Any] = ["namespace": namespace, "name": "\(domain).\(table)", "facets": facets]
        if output, let rows = record?.rowCounts[table] {
            dataset["outputFacets"] = [
                "outputStatistics": ["_producer": producer, "_schemaURL": statisticsFacet, "rowCount": rows]
            ]
        }
        return dataset
    }

    /// Writes the run's events as JSON lines; returns the file (nil when the run built nothing).
    @discardableResult
    public static func record(_ runID: RunID, mesh: Mesh) throws -> URL? {
        let events = try events(of: runID, mesh: mesh)
        guard !events.isEmpty else { return nil }
        let folder = folder(home: mesh.home)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var text = ""
        for event in events {
            let data = try JSONSerialization.data(
                withJSONObject: event, options: [.sortedKeys, .withoutEscapingSlashes])
            text += String(decoding: data, as: UTF8.self) + "\n"
        }
        let file = folder.appendingPathComponent("\(runID).jsonl")
        try text.write(to: file, atomically: true, encoding: .utf8)
        return file
    }

    /// The recorded events, newest runs last; of one run, or of one domain's runs.
    public static func recorded(home: URL, run: RunID? = nil, domain: DomainID? = nil, limit: Int = 1000) throws
        -> [[String: Any]]
    {
        let folder = folder(home: home)
        var files = ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).filter {
            $0.hasSuffix(".jsonl")
        }.sorted()
        if let run { files = files.filter { $0 == "\(run).jsonl" } }
        var events: [[String: Any]] = []
        for file in files.reversed() {
            let text = try String(contentsOf: folder.appendingPathComponent(file), encoding: .utf8)
            var batch: [[String: Any]] = []
            for line in text.split(separator: "\n") {
                guard let event = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                    continue
                }
                if let domain, (event["job"] as? [String: Any])?["name"] as? String != domain.rawValue { continue }
                batch.append(event)
            }
            events = batch + events
            if events.count >= limit { break }
        }
        return Array(events.suffix(limit))
    }
}
