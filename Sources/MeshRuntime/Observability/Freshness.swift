import Foundation
import GRDB

/// When a domain is expected to be updated: a deadline on a daily, weekly or monthly cadence (UTC). The
/// domain is on time when it published in the period that ends at the latest deadline (or after it).
///
/// ```swift
/// domain.freshness = FreshnessSLA(.weekly(weekday: 2), hour: 9, description: "by Monday 09:00 after the weekly Xponent delivery")
/// ```
public struct FreshnessSLA: Sendable, Hashable, Codable {
    public enum Cadence: Sendable, Hashable, Codable {
        case daily
        /// 1 is Sunday, 2 Monday, … 7 Saturday.
        case weekly(weekday: Int)
        /// The day of the month (1–28).
        case monthly(day: Int)
    }
    public var cadence: Cadence
    public var hour: Int
    public var minute: Int
    public var description: String

    public init(_ cadence: Cadence, hour: Int, minute: Int = 0, description: String) {
        self.cadence = cadence
        self.hour = hour
        self.minute = minute
        self.description = description
    }

    static let calendar: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar
    }()

    /// The latest deadline at or before `date`.
    public func deadline(atOrBefore date: Date) -> Date {
        let c = Self.calendar
        var parts = c.dateComponents([.year, .month, .day], from: date)
        parts.hour = hour
        parts.minute = minute
        var candidate = c.date(from: parts)!
        switch cadence {
        case .daily:
            if candidate > date { candidate = c.date(byAdding: .day, value: -1, to: candidate)! }
        case .weekly(let weekday):
            while c.component(.weekday, from: candidate) != weekday || candidate > date {
                candidate = c.date(byAdding: .day, value: -1, to: candidate)!
            }
        case .monthly(let day):
            parts.day = day
            candidate = c.date(from: parts)!
            if candidate > date { candidate = c.date(byAdding: .month, value: -1, to: candidate)! }
        }
        return candidate
    }

    /// The deadline before this one.
    public func deadline(before deadline: Date) -> Date {
        let c = Self.calendar
        switch cadence {
        case .daily: return c.date(byAdding: .day, value: -1, to: deadline)!
        case .weekly: return c.date(byAdding: .day, value: -7, to: deadline)!
        case .monthly: return c.date(byAdding: .month, value: -1, to: deadline)!
        }
    }
}

/// Whether a domain is on time against its service level, and whether what it reads is.
public struct FreshnessVerdict: Sendable, Hashable, Codable {
    public enum State: String, Sendable, Codable, Hashable {
        /// Published in the period of the latest deadline, or after it.
        case onTime = "on_time"
        /// Missed the latest deadline.
        case late
        /// Missed two deadlines or more (or never published).
        case stale
        /// No service level declared.
        case noLevel = "no_level"
    }
    public var state: State
    public var expected: String?
    /// The deadline the verdict is about.
    public var deadline: Date?
    public var lastPublished: Date?
    /// The first deadline the domain missed since it last published: when it went overdue.
    public var overdueSince: Date?
    /// Seconds since it went overdue (`overdueSince`), for machines.
    public var lateBySeconds: Int?
    /// For people: `overdue since 2026-12-08 09:00 (2 d 1 h)`.
    public var overdue: String?
    /// Direct inputs that are late or stale: the domain is reading a stale upstream.
    public var lateUpstream: [String]

    enum CodingKeys: String, CodingKey {
        case state, expected, deadline, lastPublished = "last_published", overdueSince = "overdue_since"
        case lateBySeconds = "late_by_seconds", overdue, lateUpstream = "late_upstream"
    }

    public init(
        state: State, expected: String?, deadline: Date?, lastPublished: Date?, overdueSince: Date? = nil,
        lateBySeconds: Int?, lateUpstream: [String]
    ) {
        self.state = state
        self.expected = expected
        self.deadline = deadline
        self.lastPublished = lastPublished
        self.overdueSince = overdueSince
        self.lateBySeconds = lateBySeconds
        self.lateUpstream = lateUpstream
        if let overdueSince, let lateBySeconds {
            overdue = "overdue since \(Self.minute.string(from: overdueSince)) (\(Self.span(lateBySeconds)))"
        }
    }

    static let minute: DateFormatter = {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd HH:mm"
        return formatter
    }()

    /// A length of time in its two largest units: `2 d 1 h`, `3 h 12 min`, `45 min`, `30 s`.
    public static func span(_ seconds: Int) -> String {
        let s = max(0, seconds)
        let (d, h, m) = (s / 86_400, s % 86_400 / 3_600, s % 3_600 / 60)
        if d > 0 { return h > 0 ? "\(d) d \(h) h" : "\(d) d" }
        if h > 0 { return m > 0 ? "\(h) h \(m) min" : "\(h) h" }
        return m > 0 ? "\(m) min" : "\(s) s"
    }

    public static func evaluate(_ sla: FreshnessSLA?, lastPublished: Date?, now: Date) -> FreshnessVerdict {
        guard let sla else {
            return FreshnessVerdict(
                state: .noLevel, expected: nil, deadline: nil, lastPublished: lastPublished, lateBySeconds: nil,
                lateUpstream: [])
        }
        let deadline = sla.deadline(atOrBefore: now)
        let periodStart = sla.deadline(before: deadline)
        let state: State
        if let published = lastPublished, published > periodStart {
            state = .onTime
        } else if let published = lastPublished, published > sla.deadline(before: periodStart) {
            state = .late
        } else {
            state = .stale
        }
        guard state != .onTime else {
            return FreshnessVerdict(
                state: state, expected: sla.description, deadline: deadline, lastPublished: lastPublished,
                lateBySeconds: nil, lateUpstream: [])
        }
        // Back from the latest deadline to the first one whose period had no publication: a domain that last
        // published eight days ago on a daily cadence went overdue eight deadlines ago, not at the latest one.
        // A deadline was missed when nothing was published in its period (after the deadline before it).
        var since = deadline
        for _ in 0..<2_000 {
            let previous = sla.deadline(before: since)
            guard let published = lastPublished, sla.deadline(before: previous) >= published else { break }
            since = previous
        }
        return FreshnessVerdict(
            state: state, expected: sla.description, deadline: deadline, lastPublished: lastPublished,
            overdueSince: since, lateBySeconds: Int(now.timeIntervalSince(since)), lateUpstream: [])
    }
}

extension Mesh {
    /// Every domain's freshness at the mesh's clock, with the late inputs each one reads.
    public func freshness() throws -> [DomainID: FreshnessVerdict] {
        try freshness(current: store.currentVersions())
    }

    /// The same, from a set of current versions already read.
    func freshness(current: [DomainID: VersionRecord]) -> [DomainID: FreshnessVerdict] {
        let now = configuration.now()
        var verdicts: [DomainID: FreshnessVerdict] = [:]
        for id in registry.ids {
            verdicts[id] = FreshnessVerdict.evaluate(
                registry[id]!.freshness, lastPublished: current[id]?.publishedAt, now: now)
        }
        for id in registry.ids {
            verdicts[id]!.lateUpstream = registry[id]!.upstreamDomains.filter {
                verdicts[$0]?.state == .late || verdicts[$0]?.state == .stale
            }.map(\.rawValue)
        }
        return verdicts
    }

    /// Publishes a `freshness.late` event for each domain that missed its latest deadline, once per deadline.
    @discardableResult
    public func announceLateDomains() async throws -> [DomainID] {
        var announced: [DomainID] = []
        let late = try freshness().filter { $0.value.state == .late || $0.value.state == .stale }
        guard !late.isEmpty else { return [] }
        // The deadlines announced already, read once.
        let known = try await store.pool.read { db in
            Set(
                try Row.fetchAll(
                    db,
                    sql:
                        "SELECT domain, json_extract(payload, '$.deadline') FROM event WHERE kind = 'freshness.late'"
                ).map { "\($0[0] as String)|\(($0[1] as String?) ?? "")" })
        }
        for (id, verdict) in late.sorted(by: { $0.key < $1.key }) {
            guard let deadline = verdict.deadline else { continue }
            let stamp = ISO8601DateFormatter().string(from: deadline)
            guard !known.contains("\(id)|\(stamp)") else { continue }
            await events.publish(
                MeshEvent(
                    kind: .freshnessLate, domain: id, at: configuration.now(),
                    payload: [
                        "deadline": stamp, "state": verdict.state.rawValue, "expected": verdict.expected ?? "",
                        "late_by_seconds": "\(verdict.lateBySeconds ?? 0)",
                        "last_published": verdict.lastPublished.map { ISO8601DateFormatter().string(from: $0) } ?? "",
                    ]))
            announced.append(id)
        }
        return announced
    }
}
