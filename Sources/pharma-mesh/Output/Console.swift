import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Writing for people: standard error for problems, and whether standard output is a terminal.
enum Console {
    static func error(_ message: String) {
        FileHandle.standardError.write(Data((message + "\n").utf8))
    }

    /// The terminal's width in columns (the live progress line never wraps); 100 when unknown.
    static var terminalWidth: Int {
        var size = winsize()
        if ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 20 { return Int(size.ws_col) }
        return ProcessInfo.processInfo.environment["COLUMNS"].flatMap(Int.init) ?? 100
    }

    static var isTerminal: Bool { isatty(STDOUT_FILENO) == 1 && ProcessInfo.processInfo.environment["TERM"] != "dumb" }

    /// A table with aligned columns; numbers right-aligned.
    /// Columns aligned for a terminal: a column whose every cell is a number is right-aligned, header
    /// included, so digits line up; others are left-aligned.
    static func table(_ header: [String], _ rows: [[String]]) -> String {
        var widths = header.map(\.count)
        var numeric = header.map { _ in !rows.isEmpty }
        for row in rows {
            for (index, cell) in row.enumerated() where index < widths.count {
                widths[index] = max(widths[index], cell.count)
                if !cell.isEmpty && !isNumber(cell) { numeric[index] = false }
            }
        }
        func line(_ cells: [String]) -> String {
            let text = cells.enumerated().map { index, cell in
                let pad = String(repeating: " ", count: max(0, widths[index] - cell.count))
                return numeric[index] ? pad + cell : cell + pad
            }.joined(separator: "  ")
            // Only the end is trimmed: the start of a right-aligned first column is its alignment.
            return String(text.reversed().drop(while: { $0 == " " }).reversed())
        }
        let rule = widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")
        return ([line(header), rule] + rows.map(line)).joined(separator: "\n")
    }

    /// `12`, `-3.5`, `1,234`, `1e-05`: what a cell of a numeric column looks like.
    static func isNumber(_ cell: String) -> Bool {
        Double(cell.replacingOccurrences(of: ",", with: "")) != nil
            && cell.allSatisfy { $0.isNumber || ".,-+eE".contains($0) }
    }

    static func duration(ms: Int?) -> String {
        guard let ms else { return "" }
        return ms < 1000 ? "\(ms) ms" : String(format: "%.1f s", Double(ms) / 1000)
    }

    static func number(_ n: Int) -> String {
        let formatter = NumberFormatter()
        formatter.numberStyle = .decimal
        formatter.locale = Locale(identifier: "en_US")
        return formatter.string(from: NSNumber(value: n)) ?? "\(n)"
    }

    static func date(_ date: Date?) -> String {
        guard let date else { return "" }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss'Z'"
        return formatter.string(from: date)
    }
}
