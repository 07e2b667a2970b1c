import Foundation
import GRDB

/// What happened. Events are typed, persisted with the run history, and delivered to subscribers.
public enum EventKind: String, Sendable, Codable, Hashable, CaseIterable, DatabaseValueConvertible {
    case runStarted = "run.started"
    case runFinished = "run.finished"
    case domainStarted = "domain.started"
    case domainFinished = "domain.finished"
    case domainSkipped = "domain.skipped"
    /// A domain of the run had nothing to do (delivered to subscribers as it happens, not kept in the history).
    case domainUpToDate = "domain.up_to_date"
    case stepFinished = "step.finished"
    case stepProgress = "step.progress"
    case testWarned = "test.warned"
    case testFailed = "test.failed"
    case domainPublished = "domain.published"
    case syncViolation = "sync.violation"
    case syncResolved = "sync.resolved"
    case runTriggered = "run.triggered"
    case freshnessLate = "freshness.late"
    case problemReported = "problem.reported"
    case problemClosed = "problem.closed"
    /// The engines that serve the published versions changed (`engine use`): a running server reloads them.
    case engineChanged = "engine.changed"
    case custom
}

/// One event of the mesh.
public struct MeshEvent: Codable, Sendable, Hashable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "event"
    /// Assigned when persisted; increases with time.
    public var id: Int64?
    public var kind: EventKind
    public var runID: RunID?
    public var domain: DomainID?
    public var at: Date
    public var payload: [String: String]

    public init(
        kind: EventKind, runID: RunID? = nil, domain: DomainID? = nil, at: Date = Date(),
        payload: [String: String] = [:]
    ) {
        self.kind = kind
        self.runID = runID
        self.domain = domain
        self.at = at
        self.payload = payload
    }

    enum CodingKeys: String, CodingKey { case id, kind, runID = "run_id", domain, at, payload }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

/// A subscriber: a name (unique, so delivery can be recorded once per subscriber), a filter and a handler.
public struct Subscription: Sendable {
    public var name: String
    public var filter: @Sendable (MeshEvent) -> Bool
    public var handler: @Sendable (MeshEvent) async -> Void
    public init(
        _ name: String, filter: @escaping @Sendable (MeshEvent) -> Bool = { _ in true },
        handler: @escaping @Sendable (MeshEvent) async -> Void
    ) {
        self.name = name
        self.filter = filter
        self.handler = handler
    }
}

/// Process linkage by events: when an event matches, run a domain with parameters.
///
/// ```swift
/// mesh.addTrigger(Trigger(name: "refresh-extracts", on: { $0.kind == .domainPublished && $0.domain == "orders-mart" },
///                         run: "orders-extract", parameters: ["window": "13"]))
/// ```
public struct Trigger: Sendable {
    public var name: String
    public var on: @Sendable (MeshEvent) -> Bool
    public var domain: DomainID
    public var parameters: [String: String]
    public init(
        name: String, on: @escaping @Sendable (MeshEvent) -> Bool, run domain: DomainID,
        parameters: [String: String] = [:]
    ) {
        self.name = name
        self.on = on
        self.domain = domain
        self.parameters = parameters
    }
}

/// Publish/subscribe inside the process. Every event is persisted before delivery, and delivery is
/// recorded per subscriber, so each subscriber sees each event once.
public actor EventBus {
    let store: RuntimeStore
    private var subscriptions: [Subscription] = []
    /// What the history could not record (events, deliveries) since a run last asked.
    private var unrecorded: [String] = []

    init(store: RuntimeStore) { self.store = store }

    public func subscribe(_ subscription: Subscription) {
        subscriptions.removeAll { $0.name == subscription.name }
        subscriptions.append(subscription)
    }

    public func unsubscribe(_ name: String) { subscriptions.removeAll { $0.name == name } }

    /// Delivers an event without persisting it (progress ticks), to the subscribers that want it.
    public func deliverTransient(_ event: MeshEvent) async {
        for subscription in subscriptions where subscription.filter(event) { await subscription.handler(event) }
    }

    /// Persists the event and delivers it to every matching subscriber that has not had it yet.
    @discardableResult
    public func publish(_ event: MeshEvent) async -> MeshEvent {
        var event = event
        do { try store.insert(&event) } catch {
            // Not delivered: a subscriber must never act on an event the history does not hold.
            keep(MeshError.history("record the event \(event.kind.rawValue)", error, file: store.path))
            return event
        }
        for subscription in subscriptions where subscription.filter(event) {
            guard let id = event.id else { continue }
            let first: Bool
            do { first = try store.markDelivered(eventID: id, to: subscription.name) } catch {
                // Not delivered either: an unrecorded delivery would be made again after a restart.
                keep(
                    MeshError.history(
                        "record the delivery of event \(id) to \(subscription.name)", error, file: store.path))
                continue
            }
            guard first else { continue }
            await subscription.handler(event)
        }
        return event
    }

    /// The failures to record events since the last call; the run that published them fails with them.
    func takeUnrecorded() -> [String] {
        defer { unrecorded = [] }
        return unrecorded
    }

    private func keep(_ failure: MeshError) {
        // One sentence per cause is enough: a full disk refuses every event after the first.
        guard unrecorded.count < 5, !unrecorded.contains(failure.message) else { return }
        unrecorded.append(failure.message)
    }
}
