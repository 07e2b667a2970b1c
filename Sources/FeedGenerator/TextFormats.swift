import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Fixed-point decimal text, independent of locale: `milli` thousandths with `places` places shown.
func decimal(_ value: Double, places: Int) -> String {
    var scale = 1.0
    for _ in 0..<places { scale *= 10 }
    let scaled = Int64((value * scale).rounded())
    let negative = scaled < 0
    let magnitude = negative ? -scaled : scaled
    let whole = magnitude / Int64(scale)
    var text = "\(negative ? "-" : "")\(whole)"
    if places > 0 {
        let fraction = String(magnitude % Int64(scale))
        text += "." + String(repeating: "0", count: places - fraction.count) + fraction
    }
    return text
}

/// CSV quoting where needed.
func csv(_ fields: [String]) -> String {
    fields.map { f in
        f.contains(",") || f.contains("\"") || f.contains("\n")
            ? "\"" + f.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : f
    }.joined(separator: ",")
}

/// Always quoted, as NPPES writes.
func quotedCSV(_ fields: [String]) -> String {
    fields.map { "\"" + $0.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }.joined(separator: ",")
}

/// A JSON string literal.
func json(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}
