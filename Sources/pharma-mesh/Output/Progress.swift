import Foundation
import MeshRuntime

/// Shows a run while it happens: a line per finished domain, and on a terminal a live line of what is running.
actor ProgressDisplay {
    private let live: Bool
    private var running: [DomainID: Date] = [:]
    private var finished = 0
    private var liveLineShown = false
    private var progress: [DomainID: String] = [:]
    private var lastPlainProgress = Date.distantPast

    init(live: Bool = Console.isTerminal) { self.live = live }

    /// Subscribes the display to a mesh's events.
    static func attach(to mesh: Mesh, quiet: Bool = false) async -> ProgressDisplay {
        let display = ProgressDisplay()
        guard !quiet else { return display }
        await mesh.events.subscribe(Subscription("progress") { event in await display.handle(event) })
        return display
    }

    func handle(_ event: MeshEvent) {
        guard let domain = event.domain else {
            if event.kind == .runStarted, let run = event.runID {
                emit("run \(run) started (variation \(event.payload["variation"] ?? ""))")
            }
            return
        }
        switch event.kind {
        case .domainStarted:
            running[domain] = Date()
            if !live { emit("  ▶ \(domain): \(event.payload["reason"] ?? "")") }
        case .domainFinished, .domainSkipped:
            let started = running.removeValue(forKey: domain)
            progress[domain] = nil
            finished += 1
            let status = event.payload["status"] ?? ""
            let symbol = ["success": "✔", "warn": "⚠", "skipped": "↷"][status] ?? "✘"
            let elapsed = started.map { String(format: " %.1fs", Date().timeIntervalSince($0)) } ?? ""
            let detail = [event.payload["message"], event.kind == .domainSkipped ? event.payload["reason"] : nil]
                .compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: "; ")
            emit("  \(symbol) \(domain) \(status)\(elapsed)\(detail.isEmpty ? "" : ": \(detail)")")
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

    private func emit(_ line: String) {
        if live && liveLineShown { print("\r\u{1B}[2K", terminator: "") }
        liveLineShown = false
        print(line)
    }

    private func drawLiveLine() {
        guard live, !running.isEmpty else { return }
        let names = running.keys.sorted().map { id in progress[id].map { "\(id) (\($0))" } ?? id.rawValue }
            .joined(separator: ", ")
        print("\r\u{1B}[2K  … building \(names) (\(finished) done)", terminator: "")
        fflush(nil)
        liveLineShown = true
    }

    func close() {
        if live && liveLineShown { print("\r\u{1B}[2K", terminator: "") }
        liveLineShown = false
    }
}
