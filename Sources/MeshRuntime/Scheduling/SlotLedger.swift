import Foundation

/// The build slots of a mesh run: which domains wait, which take a finished input's slot without waiting, and
/// which roots the first slots still wait for. Bookkeeping only: the run's actor waits on its `AsyncSemaphore`
/// as these answers say, one answer per statement, so that no suspension comes between a choice and its record.
struct SlotLedger {
    /// The slowest chain of readers below each domain, by typical build times: the critical path gets a free slot
    /// first.
    let priorities: [DomainID: Int]
    /// Each domain's readers.
    let readers: [DomainID: [DomainID]]
    /// The domains of the run with no input in it, which start at once: the first slots wait until each has
    /// asked for one or finished without (`AsyncSemaphore.expecting`), so the longest chains start first.
    let roots: Set<DomainID>
    /// Domains whose task in this run has finished (built, up to date, skipped or failed).
    var finished: Set<DomainID> = []
    /// Domains a finished input handed its build slot to: they take it without waiting.
    private var handoffs: Set<DomainID> = []
    /// Roots that asked for a slot.
    private var rootsWaited: Set<DomainID> = []

    init(priorities: [DomainID: Int], readers: [DomainID: [DomainID]], roots: Set<DomainID>) {
        self.priorities = priorities
        self.readers = readers
        self.roots = roots
    }

    func priority(of id: DomainID) -> Int { priorities[id] ?? 0 }

    /// Takes the slot handed to `id`, if one was; false when it must wait for one.
    mutating func takeHandoff(_ id: DomainID) -> Bool { handoffs.remove(id) != nil }

    /// `id` is about to wait for a slot: a root no longer holds back the first slots.
    mutating func willWait(_ id: DomainID) {
        if roots.contains(id) { rootsWaited.insert(id) }
    }

    /// True, once, when a root stops counting as one the first slots wait for without having asked for a slot.
    mutating func stopsCountingAsRoot(_ id: DomainID) -> Bool { roots.contains(id) && rootsWaited.insert(id).inserted }

    /// True for a root that finished without ever asking for a slot.
    func isRootThatNeverWaited(_ id: DomainID) -> Bool { roots.contains(id) && !rootsWaited.contains(id) }

    /// Hands the slot of `id`, which finished, to its reader that is ready to build (every input of it in the
    /// run finished) and leads a slower chain than any domain `waiting`; records it and returns true. False:
    /// the slot goes back to the semaphore.
    mutating func handOff(
        from id: DomainID, waiting: Int, inRun: (DomainID) -> Bool, inputs: (DomainID) -> [DomainID]
    ) -> Bool {
        let ready = (readers[id] ?? []).filter { reader in
            inRun(reader) && !finished.contains(reader) && !handoffs.contains(reader)
                && inputs(reader).allSatisfy { finished.contains($0) || !inRun($0) }
        }
        let best = ready.max { a, b in (priority(of: a), b.rawValue) < (priority(of: b), a.rawValue) }
        guard let best, priority(of: best) > waiting else { return false }
        handoffs.insert(best)
        return true
    }
}
