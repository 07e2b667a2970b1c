import Foundation

/// Collects the lines of a daily feed by delivery day and writes each batch once it is complete.
///
/// At `sample` scale the daily feeds are delivered weekly (every Monday, one file covering the week) so that
/// the committed sample stays under 25 MB: thousands of tiny folders cost more than their contents. Other
/// scales deliver every day.
final class DeliveryBuffer {
    let generation: Generation
    let feed: String
    let header: String?
    let fileStem: String
    let fileExtension: String
    let weekly: Bool
    private var pending: [Int: [String]] = [:]

    init(_ generation: Generation, feed: String, header: String?, fileStem: String, fileExtension: String) {
        self.generation = generation
        self.feed = feed
        self.header = header
        self.fileStem = fileStem
        self.fileExtension = fileExtension
        self.weekly = generation.scale == .sample
    }

    /// The day a line delivered on `day` is actually delivered: the next Monday when weekly.
    func deliveryDay(_ day: Int) -> Int { weekly ? (day + 6) / 7 * 7 : day }

    func add(_ line: String, deliveredOn day: Int) { pending[deliveryDay(day), default: []].append(line) }

    /// Writes every batch delivered before `day`.
    func flush(before day: Int) throws {
        for delivery in pending.keys.sorted() where delivery < day {
            let lines = pending.removeValue(forKey: delivery)!
            let covered =
                weekly ? Day.compact(delivery - 7) + "_" + Day.compact(delivery - 1) : Day.compact(delivery - 1)
            let day = min(delivery, Timeline.days - 1 + 7)
            let file = "\(fileStem)_\(covered).\(fileExtension)"
            try generation.batch(feed, day: day, file: file, header: header) { w in
                for line in lines { w.line(line) }
            }
            // A whole delivery sent twice: the same file, byte for byte, lands again the next day.
            if feed == "web_sessions" && delivery == deliveryDay(Generation.duplicatedWebDay) {
                try generation.batch(feed, day: day + 1, file: file, header: header) { w in
                    for line in lines { w.line(line) }
                }
            }
        }
    }

    func finish() throws { try flush(before: Int.max) }
}
