import Crypto
import Foundation

/// Lineage in the open standard: every domain run becomes OpenLineage run events (a START, then COMPLETE,
/// FAIL or ABORT; job = the domain; inputs and outputs = the tables of the domain versions read and
/// published, with schema, version and row-count facets), appended to `HOME/openlineage/RUN.jsonl` after
/// each mesh run, so that a catalog such as Marquez can read them.
package enum OpenLineage {
    /// The producer of events built without a program's identity (`ProductIdentity.generic`).
    package static let producer = ProductIdentity.generic.producer
    package static let runEventSchema = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
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
    static let meshRunFacet = ProductIdentity.generic.runFacetSchema
    /// The namespace of jobs and datasets built without a program's identity.
    package static let namespace = ProductIdentity.generic.name

    package static func folder(home: URL) -> URL { home.appendingPathComponent("openlineage") }

    /// A UUID that is the same for the same mesh run and domain (OpenLineage wants one per job run).
    package static func runUUID(_ run: RunID, _ domain: DomainID) -> String {
        var bytes = Array(SHA256.hash(data: Data("\(run)/\(domain)".utf8)).prefix(16))
        bytes[6] = (bytes[6] & 0x0F) | 0x50
        bytes[8] = (bytes[8] & 0x3F) | 0x80
        let hex = Fingerprint.hex(bytes)
        let parts = [0..<8, 8..<12, 12..<16, 16..<20, 20..<32].map { range in
            String(
                hex[
                    hex.index(
                        hex.startIndex, offsetBy: range.lowerBound)..<hex.index(
                            hex.startIndex, offsetBy: range.upperBound)])
        }
        return parts.joined(separator: "-")
    }

    /// One OpenLineage RunEvent, as written.
    package struct RunEvent: Encodable, Sendable {
        package var eventType: String
        package var eventTime: String
        package var run: Run
        package var job: Job
        package var inputs: [Dataset]
        package var outputs: [Dataset]
        package var producer = OpenLineage.producer
        package var schemaURL = OpenLineage.runEventSchema
    }
    package struct Run: Encodable, Sendable {
        package var runId: String
        package var facets: [String: MeshRunFacet]
    }
    package struct MeshRunFacet: Encodable, Sendable {
        var _producer = OpenLineage.producer
        var _schemaURL = OpenLineage.meshRunFacet
        var meshRunId: String
        var status: String
        var reason: String
        var codeVersion: String
        var parameters: [String: String]
    }
    package struct Job: Encodable, Sendable {
        package var namespace = OpenLineage.namespace
        package var name: String
        var facets: JobFacets
    }
    struct JobFacets: Encodable, Sendable {
        struct Documentation: Encodable, Sendable {
            var _producer = OpenLineage.producer
            var _schemaURL = OpenLineage.documentationFacet
            var description: String
        }
        struct Ownership: Encodable, Sendable {
            struct Owner: Encodable, Sendable {
                var name: String
                var type: String
            }
            var _producer = OpenLineage.producer
            var _schemaURL = OpenLineage.ownershipFacet
            var owners: [Owner]
        }
        var documentation: Documentation?
        var ownership: Ownership?
    }
    package struct Dataset: Encodable, Sendable {
        package var namespace = OpenLineage.namespace
        package var name: String
        var facets: DatasetFacets
        var outputFacets: OutputFacets?
    }
    struct DatasetFacets: Encodable, Sendable {
        struct Schema: Encodable, Sendable {
            struct Field: Encodable, Sendable {
                var name: String
                var type: String
            }
            var _producer = OpenLineage.producer
            var _schemaURL = OpenLineage.schemaFacet
            var fields: [Field]
        }
        struct Version: Encodable, Sendable {
            var _producer = OpenLineage.producer
            var _schemaURL = OpenLineage.versionFacet
            var datasetVersion: String
        }
        var schema: Schema?
        var version: Version?
    }
    struct OutputFacets: Encodable, Sendable {
        struct Statistics: Encodable, Sendable {
            var _producer = OpenLineage.producer
            var _schemaURL = OpenLineage.statisticsFacet
            var rowCount: Int
        }
        var outputStatistics: Statistics
    }

    /// The events of one mesh run, built from its history.
    package static func events(of runID: RunID, mesh: Mesh) throws -> [RunEvent] {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        var events: [RunEvent] = []
        // Versions and their datasets repeat across the domain runs of a mesh run.
        var datasets: [String: [Dataset]] = [:]
        func tables(_ domain: DomainID, _ number: Int, output: Bool) throws -> [Dataset] {
            let key = "\(domain)@\(number)/\(output)"
            if let known = datasets[key] { return known }
            let record = try mesh.store.version(domain, number)
            let result = (record?.schema.keys.sorted() ?? []).map {
                dataset(domain: domain.rawValue, table: $0, record: record, output: output)
            }
            datasets[key] = result
            return result
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
            let job = Job(
                name: run.domain.rawValue,
                facets: JobFacets(
                    documentation: domain.map { .init(description: $0.description) },
                    ownership: domain.map { .init(owners: [.init(name: "team:\($0.owner.team)", type: "MAINTAINER")]) })
            )
            var inputs: [Dataset] = []
            for (input, number) in run.inputVersions.sorted(by: { $0.key < $1.key }) {
                inputs += try tables(DomainID(input), number, output: false)
            }
            let runInfo = Run(
                runId: runUUID(runID, run.domain),
                facets: [
                    "meshRun": MeshRunFacet(
                        meshRunId: runID.rawValue, status: run.status.rawValue, reason: run.reason,
                        codeVersion: run.codeVersion, parameters: run.parameters)
                ])
            events.append(
                RunEvent(
                    eventType: "START", eventTime: formatter.string(from: run.startedAt), run: runInfo, job: job,
                    inputs: inputs, outputs: []))
            let outputs =
                try run.version.map { ending == "COMPLETE" ? try tables(run.domain, $0, output: true) : [] } ?? []
            events.append(
                RunEvent(
                    eventType: ending, eventTime: formatter.string(from: run.finishedAt ?? run.startedAt), run: runInfo,
                    job: job, inputs: inputs, outputs: outputs))
        }
        return events.map { stamped($0, by: mesh.configuration.product) }
    }

    /// An event as the program names itself: its producer on the event and every facet, its namespace on the
    /// job and the datasets.
    static func stamped(_ event: RunEvent, by product: ProductIdentity) -> RunEvent {
        var event = event
        let producer = product.producer
        event.producer = producer
        event.run.facets = event.run.facets.mapValues { facet in
            var facet = facet
            facet._producer = producer
            facet._schemaURL = product.runFacetSchema
            return facet
        }
        event.job.namespace = product.name
        event.job.facets.documentation?._producer = producer
        event.job.facets.ownership?._producer = producer
        func stamp(_ dataset: Dataset) -> Dataset {
            var dataset = dataset
            dataset.namespace = product.name
            dataset.facets.schema?._producer = producer
            dataset.facets.version?._producer = producer
            dataset.outputFacets?.outputStatistics._producer = producer
            return dataset
        }
        event.inputs = event.inputs.map(stamp)
        event.outputs = event.outputs.map(stamp)
        return event
    }

    static func dataset(domain: String, table: String, record: VersionRecord?, output: Bool) -> Dataset {
        var facets = DatasetFacets()
        if let record {
            facets.schema = .init(
                fields: (record.schema[table] ?? []).map { column in
                    let parts = column.split(separator: " ", maxSplits: 1).map(String.init)
                    return .init(
                        name: parts.first ?? column, type: parts.count > 1 && !parts[1].isEmpty ? parts[1] : "ANY")
                })
            facets.version = .init(datasetVersion: "\(record.version)")
        }
        return Dataset(
            name: "\(domain).\(table)", facets: facets,
            outputFacets: output ? record?.rowCounts[table].map { .init(outputStatistics: .init(rowCount: $0)) } : nil)
    }

    /// Writes the run's events as JSON lines; returns the file (nil when the run built nothing).
    @discardableResult
    package static func record(_ runID: RunID, mesh: Mesh) throws -> URL? {
        let events = try events(of: runID, mesh: mesh)
        guard !events.isEmpty else { return nil }
        let folder = folder(home: mesh.home)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let file = folder.appendingPathComponent("\(runID).jsonl")
        try jsonLines(events).write(to: file, options: .atomic)
        return file
    }

    /// The events as JSON lines, one event a line, as `record` writes them: the JSON of `JSONEncoder` with the
    /// keys in declaration order.
    package static func jsonLines(_ events: [RunEvent]) -> Data {
        var writer = JSONLineWriter()
        for event in events { writer.write(event) }
        return Data(writer.bytes)
    }

    /// Writes run events as JSON lines, keys in declaration order (the order `JSONEncoder` would not keep:
    /// it wrote them in hash order, so the same run gave other bytes), and without `JSONEncoder`'s cost: a mesh
    /// run of the demo writes about 400 KB of events (`JSONEncoder` was 1.5 % of the demo's CPU).
    struct JSONLineWriter {
        private(set) var bytes: [UInt8] = []
        /// Per open object or array: whether its next member needs a comma first.
        private var needsComma: [Bool] = []

        mutating func write(_ event: RunEvent) {
            open("{")
            text("eventType", event.eventType)
            text("eventTime", event.eventTime)
            key("run")
            open("{")
            text("runId", event.run.runId)
            key("facets")
            open("{")
            for (name, facet) in event.run.facets.sorted(by: { $0.key < $1.key }) {
                self.facet(name, facet._producer, facet._schemaURL)
                text("meshRunId", facet.meshRunId)
                text("status", facet.status)
                text("reason", facet.reason)
                text("codeVersion", facet.codeVersion)
                key("parameters")
                open("{")
                for (name, value) in facet.parameters.sorted(by: { $0.key < $1.key }) { text(name, value) }
                close("}")
                close("}")
            }
            close("}")
            close("}")
            key("job")
            write(event.job)
            key("inputs")
            open("[")
            for dataset in event.inputs { write(dataset) }
            close("]")
            key("outputs")
            open("[")
            for dataset in event.outputs { write(dataset) }
            close("]")
            text("producer", event.producer)
            text("schemaURL", event.schemaURL)
            close("}")
            bytes.append(0x0A)
        }

        private mutating func write(_ job: Job) {
            open("{")
            text("namespace", job.namespace)
            text("name", job.name)
            key("facets")
            open("{")
            if let documentation = job.facets.documentation {
                facet("documentation", documentation._producer, documentation._schemaURL)
                text("description", documentation.description)
                close("}")
            }
            if let ownership = job.facets.ownership {
                facet("ownership", ownership._producer, ownership._schemaURL)
                namesAndTypes("owners", ownership.owners.map { ($0.name, $0.type) })
                close("}")
            }
            close("}")
            close("}")
        }

        private mutating func write(_ dataset: Dataset) {
            open("{")
            text("namespace", dataset.namespace)
            text("name", dataset.name)
            key("facets")
            open("{")
            if let schema = dataset.facets.schema {
                facet("schema", schema._producer, schema._schemaURL)
                namesAndTypes("fields", schema.fields.map { ($0.name, $0.type) })
                close("}")
            }
            if let version = dataset.facets.version {
                facet("version", version._producer, version._schemaURL)
                text("datasetVersion", version.datasetVersion)
                close("}")
            }
            close("}")
            if let statistics = dataset.outputFacets?.outputStatistics {
                key("outputFacets")
                open("{")
                facet("outputStatistics", statistics._producer, statistics._schemaURL)
                key("rowCount")
                bytes.append(contentsOf: String(statistics.rowCount).utf8)
                close("}")
                close("}")
            }
            close("}")
        }

        /// Opens a facet's object under `name` with its producer and schema URL; the caller closes it.
        private mutating func facet(_ name: String, _ producer: String, _ schemaURL: String) {
            key(name)
            open("{")
            text("_producer", producer)
            text("_schemaURL", schemaURL)
        }

        /// An array of `{"name": …, "type": …}` objects under `name`.
        private mutating func namesAndTypes(_ name: String, _ items: [(String, String)]) {
            key(name)
            open("[")
            for (itemName, type) in items {
                open("{")
                text("name", itemName)
                text("type", type)
                close("}")
            }
            close("]")
        }

        /// Starts an object or array, as a member of the one open (after its key) or on its own.
        private mutating func open(_ bracket: Unicode.Scalar) {
            if let last = needsComma.indices.last {
                // After a key, the key wrote the comma; an array's element has one before all but the first.
                if needsComma[last] && bytes.last != UInt8(ascii: ":") { bytes.append(UInt8(ascii: ",")) }
                needsComma[last] = true
            }
            bytes.append(UInt8(ascii: bracket))
            needsComma.append(false)
        }

        private mutating func close(_ bracket: Unicode.Scalar) {
            needsComma.removeLast()
            bytes.append(UInt8(ascii: bracket))
        }

        /// A member's key, with the comma before it when it is not the first.
        private mutating func key(_ name: String) {
            if needsComma[needsComma.count - 1] { bytes.append(UInt8(ascii: ",")) }
            needsComma[needsComma.count - 1] = true
            string(name)
            bytes.append(UInt8(ascii: ":"))
        }

        private mutating func text(_ name: String, _ value: String) {
            key(name)
            string(value)
        }

        /// A JSON string: quotes, backslashes and control characters escaped; everything else as UTF-8.
        private mutating func string(_ text: String) {
            bytes.append(UInt8(ascii: "\""))
            defer { bytes.append(UInt8(ascii: "\"")) }
            // Most text needs no escape: one copy.
            guard text.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") })
            else {
                bytes.append(contentsOf: text.utf8)
                return
            }
            for byte in text.utf8 {
                switch byte {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"): bytes.append(contentsOf: [UInt8(ascii: "\\"), byte])
                case UInt8(ascii: "\n"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
                case UInt8(ascii: "\r"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
                case UInt8(ascii: "\t"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
                case 0..<0x20:
                    let hex = Array("0123456789abcdef".utf8)
                    bytes.append(contentsOf: Array("\\u00".utf8))
                    bytes.append(hex[Int(byte >> 4)])
                    bytes.append(hex[Int(byte & 0x0F)])
                default: bytes.append(byte)
                }
            }
        }
    }

    /// The recorded events, newest runs last; of one run, or of one domain's runs.
    package static func recorded(home: URL, run: RunID? = nil, domain: DomainID? = nil, limit: Int = 1000) throws
        -> [[String: Any]]
    {
        let folder = folder(home: home)
        // No folder yet: no run has written events.
        guard FileManager.default.fileExists(atPath: folder.path) else { return [] }
        var files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter {
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
