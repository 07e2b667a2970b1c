import Foundation
import HTTPTypes
import Hummingbird
import MeshRuntime
import NIOCore
import ServiceLifecycle

extension MeshHTTPServer {
    /// `GET /events`: server-sent events of runs, tests and publications, read from the run history, so runs
    /// started by other processes show too.
    ///
    /// From the newest event on by default; `?after=ID` (or the `Last-Event-ID` header a reconnecting browser
    /// sends) replays from there. `?domain=` and `?kind=` (a prefix such as `domain.`) filter; `?limit=N` ends
    /// the stream after N events. Events of domains the token does not cover are left out.
    func eventStream(_ request: Request, _ caller: Caller) throws -> Response {
        let token = try caller.require()
        let store = mesh.store
        let resume = request.headers[HTTPField.Name("Last-Event-ID")!] ?? caller.query["after"]
        let first: Int64
        if let resume {
            guard let id = Int64(resume), id >= 0 else {
                throw APIError(
                    .badRequest, "?after= (or Last-Event-ID) takes an event id, a whole number; '\(resume)' is not one")
            }
            first = id
        } else {
            first = try store.latestEventID()
        }
        let limit = try caller.integer("limit", default: Int.max, max: Int.max)
        let domainFilter = caller.query["domain"].map(DomainID.init)
        let kindFilter = caller.query["kind"]
        let poll = configuration.eventPollInterval
        let heartbeat = configuration.eventHeartbeat
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        let body = ResponseBody { writer in
            var start = first
            var sent = 0
            var lastWrite = ContinuousClock.now
            try await writer.write(ByteBuffer(string: ": \(token.name) connected\nretry: 2000\n\n"))
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                let events = try store.events(after: start, limit: 500)
                for event in events {
                    start = event.id ?? start
                    if let domain = event.domain, !token.covers(domain) { continue }
                    if let domainFilter, event.domain != domainFilter { continue }
                    if let kindFilter, !event.kind.rawValue.hasPrefix(kindFilter) { continue }
                    let json = String(decoding: try encoder.encode(event), as: UTF8.self)
                    try await writer.write(
                        ByteBuffer(string: "id: \(event.id ?? 0)\nevent: \(event.kind.rawValue)\ndata: \(json)\n\n"))
                    lastWrite = .now
                    sent += 1
                    if sent >= limit {
                        try await writer.finish(nil)
                        return
                    }
                }
                if events.isEmpty {
                    if ContinuousClock.now - lastWrite >= heartbeat {
                        try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))
                        lastWrite = .now
                    }
                    try? await Task.sleep(for: poll)
                }
            }
            try await writer.finish(nil)
        }
        return Response(
            status: .ok,
            headers: [.contentType: "text/event-stream; charset=utf-8", .cacheControl: "no-cache"], body: body)
    }
}
