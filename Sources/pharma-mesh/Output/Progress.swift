import Foundation
import MeshRuntime

/// Shows a run while it happens, in the manner of cargo and dbt: why each domain builds, a line per finished
/// domain, and on a terminal a live line with the count done of the run's total, the elapsed time and what is
/// building (`[7/24] 12.3 s · building physician-mart (2.1 s), payer-mart (0.4 s)`). Piped, the lines are plain
/// and nothing is redrawn.
actor ProgressDisplay {
    private let live: Bool
    private var running: [DomainID: Date] = [:]
    /// Domains of the run that are done (built, failed, skipped or up to date), and how many the run plans.
    private var done = 0
    private var total = 0
    private var started = Date()
    private var liveLineShown = false
    private var progress: [DomainID: String] = [:]
    /// What happens before the domains build (landing), shown on the live line.
    private var phase: String?
    private var lastPlainProgress = Date.distantPast
    private var ticker: Task<Void, Never>?

    init(live: Bool = Console.isTerminal) { self.live = live }

    /// Subscribes the display to a mesh's events.
    static func attach(to mesh: Mesh, quiet: Bool = false) async -> ProgressDisplay {
        let display = ProgressDisplay(live: !quiet && Console.isTerminal)
        guard !quiet else { return display }
        await mesh.events.subscribe(Subscription("progress") { event in await display.handle(event) })
        await display.startTicking()
        return display
    }

    /// Redraws the live line a few times a second, so the elapsed times move while nothing else happens.
    private func startTicking() {
        guard live, ticker == nil else { return }
        ticker = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(250))
                await self?.drawLiveLine()
            }
        }
    }

    /// Work before the run's domains (landing batches), on the live line; piped, a line now and then.
    func phase(_ text: String?) {
        phase = text
        if let text, !live, Date().timeIntervalSince(lastPlainProgress) > 5 {
            lastPlainProgress = Date()
            emit("  … \(text)")
        }
        drawLiveLine()
    }

    func handle(_ event: MeshEvent) {
        guard let domain = event.domain else {
            if event.kind == .runStarted, let run = event.runID {
                done = 0
                total = Int(event.payload["domains"] ?? "") ?? 0
                started = Date()
                phase = nil
                emit("run \(run) started (variation \(event.payload["variation"] ?? ""))")
            }
            return
        }
        switch event.kind {
        case .domainStarted:
            running[domain] = Date()
            emit("  ▶ \(domain): \(event.payload["reason"] ?? "")")
        case .domainFinished, .domainSkipped:
            let began = running.removeValue(forKey: domain)
            progress[domain] = nil
            done += 1
            let status = event.payload["status"] ?? ""
            let symbol = ["success": "✔", "warn": "⚠", "skipped": "↷"][status] ?? "✘"
            let elapsed = began.map { String(format: " %.1fs", Date().timeIntervalSince($0)) } ?? ""
            let detail = [event.payload["message"], event.kind == .domainSkipped ? event.payload["reason"] : nil]
                .compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: "; ")
            let count = live ? "\(counter) " : ""
            emit("  \(symbol) \(count)\(domain) \(status)\(elapsed)\(detail.isEmpty ? "" : ": \(detail)")")
        case .domainUpToDate:
            done += 1
        case .stepProgress:
            guard running[domain] != nil else { return }
            progress[domain] = event.payload["message"]
            if !live && Date().timeIntervalSince(lastPlainProgress) > 5 {
                lastPlainProgress = Date()
                emit("    … \(domain): \(event.payload["message"] ?? "")")
            }
        case .syncViolation:
            emit("  ⇄ sync check \(domain): \(event.payload["conflicts"] ?? "")")
        case .syncResolved:
            emit("  ⇄ sync check \(domain): resolved by bringing the lagging input up to date")
        case .testWarned:
            emit("    ⚠ \(domain) test \(event.payload["test"] ?? ""): \(event.payload["message"] ?? "")")
        case .testFailed:
            emit("    ✘ \(domain) test \(event.payload["test"] ?? ""): \(event.payload["message"] ?? "")")
        default:
            break
        }
        drawLiveLine()
    }

    /// `[7/24]`: domains done of the run's total (which grows when the sync check brings in a lagging input).
    private var counter: String {
        total = max(total, done + running.count)
        return "[\(done)/\(total)]"
    }

    private func emit(_ line: String) {
        if live && liveLineShown { print("\r\u{1B}[2K", terminator: "") }
        liveLineShown = false
        print(line)
    }

    private func drawLiveLine() {
        guard live else { return }
        let now = Date()
        let text: String
        if !running.isEmpty {
            let names = running.sorted { $0.value < $1.value }.map { id, began in
                let seconds = String(format: "%.1f s", now.timeIntervalSince(began))
                return "\(id) (\(progress[id].map { "\(seconds), \($0)" } ?? seconds))"
            }
            text =
                "\(counter) \(String(format: "%.1f s", now.timeIntervalSince(started))) · building "
                + names.joined(separator: ", ")
        } else if let phase {
            text = phase
        } else {
            return
        }
        let width = Console.terminalWidth
        let line = text.count > width - 1 ? String(text.prefix(max(10, width - 2))) + "…" : text
        print("\r\u{1B}[2K\(line)", terminator: "")
        fflush(nil)
        liveLineShown = true
    }

    func close() {
        ticker?.cancel()
        ticker = nil
        if live && liveLineShown { print("\r\u{1B}[2K", terminator: "") }
        liveLineShown = false
    }
}
