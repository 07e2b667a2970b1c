import Foundation

/// Runs queries on threads of their own, at most `limit` at once and `perCaller` for one caller, and
/// refuses the next one at once instead of queueing it.
///
/// The threads are neither the Swift concurrency pool nor Dispatch's global queues: a query that runs for
/// its whole time limit holds one of these threads and nothing else, so `/health` and the metadata routes,
/// which run on the concurrency pool, never wait behind queries. A thread stays for `idleTimeout` after its
/// last query, ready for the next, then ends.
///
/// ```swift
/// let workers = QueryWorkers(limit: 4, perCaller: 3)
/// let rows = try await workers.run(caller: token.id) { try mesh.query(sql) }   // or QueryWorkers.Refusal
/// ```
final class QueryWorkers: @unchecked Sendable {
    // @unchecked: every mutable field is read and written with `condition` locked.

    /// Why a query was not started.
    enum Refusal: Error, Equatable {
        /// `limit` queries run already.
        case serverBusy(limit: Int)
        /// This caller runs `perCaller` already.
        case callerBusy(limit: Int)
    }

    let limit: Int
    let perCaller: Int
    static let idleTimeout: TimeInterval = 30

    private let condition = NSCondition()
    private var jobs: [() -> Void] = []
    private var idle = 0
    private var running = 0
    private var byCaller: [String: Int] = [:]
    private var refusedServer = 0
    private var refusedCaller = 0

    init(limit: Int, perCaller: Int) {
        self.limit = max(1, limit)
        self.perCaller = max(1, min(perCaller, limit))
    }

    /// Queries running now, and the ones refused so far because the server or their caller was at its limit.
    var counts: (running: Int, refusedServer: Int, refusedCaller: Int) {
        condition.lock()
        defer { condition.unlock() }
        return (running, refusedServer, refusedCaller)
    }

    /// Runs `work` on a query thread and returns its result; throws `Refusal` at once when at a limit.
    func run<T: Sendable>(caller: String, _ work: @escaping @Sendable () throws -> T) async throws -> T {
        try admit(caller)
        return try await withCheckedThrowingContinuation { continuation in
            submit {
                let result = Result { try work() }
                self.release(caller)
                continuation.resume(with: result)
            }
        }
    }

    private func admit(_ caller: String) throws {
        condition.lock()
        defer { condition.unlock() }
        guard running < limit else {
            refusedServer += 1
            throw Refusal.serverBusy(limit: limit)
        }
        guard byCaller[caller, default: 0] < perCaller else {
            refusedCaller += 1
            throw Refusal.callerBusy(limit: perCaller)
        }
        running += 1
        byCaller[caller, default: 0] += 1
    }

    private func release(_ caller: String) {
        condition.lock()
        defer { condition.unlock() }
        running -= 1
        let left = byCaller[caller, default: 1] - 1
        byCaller[caller] = left > 0 ? left : nil
    }

    /// Hands the job to an idle thread, or starts one: there are never more jobs waiting than idle threads,
    /// so no job waits behind another.
    private func submit(_ job: @escaping () -> Void) {
        condition.lock()
        jobs.append(job)
        if jobs.count <= idle {
            condition.signal()
            condition.unlock()
            return
        }
        condition.unlock()
        let thread = Thread { [self] in work() }
        thread.name = "mesh-query"
        thread.start()
    }

    private func work() {
        condition.lock()
        while true {
            if !jobs.isEmpty {
                let job = jobs.removeFirst()
                condition.unlock()
                job()
                condition.lock()
                continue
            }
            idle += 1
            let woken = condition.wait(until: Date().addingTimeInterval(Self.idleTimeout))
            idle -= 1
            if !woken && jobs.isEmpty { break }
        }
        condition.unlock()
    }
}
