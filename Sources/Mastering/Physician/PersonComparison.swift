/// A person record's matching fields as bytes, computed once per build.
struct MatchFeatures: Sendable {
    var first: [UInt8]
    var firstCanonical: [UInt8]
    var last: [UInt8]
    var lastSoundex: [UInt8]
    /// For reading a record's names swapped: its first name's Soundex, its surname as a formal first name.
    var firstSoundex: [UInt8]
    var lastAsFirst: [UInt8]
    var middle: [UInt8]
    var street: [UInt8]
    var number: [UInt8]
    var city: [UInt8]
    var state: [UInt8]
    var zip: [UInt8]
    var specialty: String?
    /// The share of identity records with this surname and this formal first name (term frequencies).
    var lastFrequency = 0.0
    var firstFrequency = 0.0

    init(_ r: PersonRecord) {
        first = Array(r.first.utf8)
        firstCanonical = Array(r.firstCanonical.utf8)
        last = Array(r.last.utf8)
        lastSoundex = r.last.isEmpty ? [] : Array(NameNormalizer.soundex(r.last).utf8)
        firstSoundex = r.first.isEmpty ? [] : Array(NameNormalizer.soundex(r.first).utf8)
        lastAsFirst = Array(NameNormalizer.canonicalFirst(r.last).utf8)
        middle = Array(r.middle.utf8)
        street = Array(r.address.utf8)
        number = Array((r.streetNumber ?? "").utf8)
        city = Array(r.city.utf8)
        state = Array(r.state.utf8)
        zip = Array(r.zip5.utf8)
        specialty = r.specialty
    }

    var hasPlace: Bool { !zip.isEmpty || !city.isEmpty || !state.isEmpty }
    var hasAddress: Bool { !street.isEmpty || !number.isEmpty }
    /// Something to compare beyond a name: a record with none of it, and no name, cannot be matched.
    var comparable: Bool { !last.isEmpty || !first.isEmpty || hasAddress || !zip.isEmpty }
}

/// The comparisons of two person records (names, middle name, address, ZIP, city, state, specialty) as a
/// Fellegi–Sunter comparison vector, with the term frequencies of the names that agree exactly.
enum PersonComparison {
    static let first = 0
    static let last = 1
    static let middle = 2
    static let address = 3
    static let zip = 4
    static let city = 5
    static let state = 6
    static let specialty = 7

    static let comparisons: [Comparison] = [
        Comparison(
            name: "first_name",
            levels: ["missing", "exact", "nickname", "one_edit_or_jw_0.92", "initial", "jw_0.80", "different"],
            typicalM: [1, 0.78, 0.06, 0.06, 0.04, 0.03, 0.03],
            typicalU: [1, 0.02, 0.005, 0.01, 0.01, 0.05, 0.905]),
        Comparison(
            name: "last_name",
            levels: ["missing", "exact", "one_edit", "shares_a_word", "jw_0.88", "soundex_or_jw_0.80", "different"],
            typicalM: [1, 0.82, 0.07, 0.02, 0.03, 0.02, 0.04],
            typicalU: [1, 0.01, 0.002, 0.001, 0.01, 0.03, 0.947]),
        Comparison(
            name: "middle_name", levels: ["missing", "exact", "initial", "different"],
            typicalM: [1, 0.8, 0.12, 0.08], typicalU: [1, 0.06, 0.01, 0.93]),
        Comparison(
            name: "address",
            levels: ["missing", "exact", "number_and_jw_0.85", "street_jw_0.90", "number_only", "different"],
            typicalM: [1, 0.6, 0.15, 0.07, 0.03, 0.15], typicalU: [1, 0.001, 0.001, 0.01, 0.005, 0.983]),
        Comparison(
            name: "zip", levels: ["missing", "exact", "one_edit", "same_first_three", "different"],
            typicalM: [1, 0.8, 0.05, 0.05, 0.1], typicalU: [1, 0.001, 0.003, 0.01, 0.986]),
        Comparison(
            name: "city", levels: ["missing", "exact", "jw_0.90", "different"], typicalM: [1, 0.85, 0.05, 0.1],
            typicalU: [1, 0.05, 0.01, 0.94]),
        Comparison(
            name: "state", levels: ["missing", "exact", "different"], typicalM: [1, 0.92, 0.08],
            typicalU: [1, 0.1, 0.9]),
        Comparison(
            name: "specialty", levels: ["missing", "exact", "different"], typicalM: [1, 0.9, 0.1],
            typicalU: [1, 0.2, 0.8]),
    ]

    /// How alike two name parts are, coarsely, to choose between the direct and the swapped reading.
    private static func closeness(_ level: Int, exactish: Int) -> Int { level == 0 ? 1 : level <= exactish ? 0 : 2 }

    static func firstLevel(_ a: [UInt8], _ aCanonical: [UInt8], _ b: [UInt8], _ bCanonical: [UInt8]) -> Int {
        if a.isEmpty || b.isEmpty { return 0 }
        if a == b { return 1 }
        if aCanonical == bCanonical && !aCanonical.isEmpty { return 2 }
        if a.count == 1 || b.count == 1 {
            let initial = a.count == 1 ? a[0] : b[0]
            let other = a.count == 1 ? (b, bCanonical) : (a, aCanonical)
            return initial == other.0[0] || initial == other.1.first ? 4 : 6
        }
        if Comparators.withinOneEdit(a, b) { return 3 }
        let jw = NameNormalizer.jaroWinkler(a, b)
        if jw >= 0.92 { return 3 }
        return jw >= 0.80 ? 5 : 6
    }

    static func lastLevel(_ a: [UInt8], _ aSoundex: [UInt8], _ b: [UInt8], _ bSoundex: [UInt8]) -> Int {
        if a.isEmpty || b.isEmpty { return 0 }
        if a == b { return 1 }
        if Comparators.withinOneEdit(a, b) { return 2 }
        if Comparators.sharesWord(a, b) { return 3 }
        let jw = NameNormalizer.jaroWinkler(a, b)
        if jw >= 0.88 { return 4 }
        return jw >= 0.80 || (aSoundex == bSoundex && !aSoundex.isEmpty) ? 5 : 6
    }

    static func middleLevel(_ a: [UInt8], _ b: [UInt8]) -> Int {
        if a.isEmpty || b.isEmpty { return 0 }
        if a == b { return 1 }
        return a[0] == b[0] ? 2 : 3
    }

    static func addressLevel(_ a: UnsafePointer<MatchFeatures>, _ b: UnsafePointer<MatchFeatures>) -> Int {
        guard a.pointee.hasAddress && b.pointee.hasAddress else { return 0 }
        let numbersEqual = !a.pointee.number.isEmpty && a.pointee.number == b.pointee.number
        let numbersAgree = a.pointee.number == b.pointee.number
        if numbersAgree && a.pointee.street == b.pointee.street { return 1 }
        let streetJW =
            a.pointee.street.isEmpty || b.pointee.street.isEmpty
            ? 0 : NameNormalizer.jaroWinkler(a.pointee.street, b.pointee.street)
        if numbersEqual && streetJW >= 0.85 { return 2 }
        if streetJW >= 0.90 { return 3 }
        return numbersEqual ? 4 : 5
    }

    static func zipLevel(_ a: [UInt8], _ b: [UInt8]) -> Int {
        if a.isEmpty || b.isEmpty { return 0 }
        if a == b { return 1 }
        // One wrong or two transposed digits.
        if a.count == b.count && Comparators.withinOneEdit(a, b) { return 2 }
        return a.count >= 3 && b.count >= 3 && a[0] == b[0] && a[1] == b[1] && a[2] == b[2] ? 3 : 4
    }

    static func cityLevel(_ a: [UInt8], _ b: [UInt8]) -> Int {
        if a.isEmpty || b.isEmpty { return 0 }
        if a == b { return 1 }
        return NameNormalizer.jaroWinkler(a, b) >= 0.9 ? 2 : 3
    }

    static func stateLevel(_ a: [UInt8], _ b: [UInt8]) -> Int {
        if a.isEmpty || b.isEmpty { return 0 }
        return a == b ? 1 : 2
    }

    static func specialtyLevel(_ a: String?, _ b: String?) -> Int {
        guard let a, let b else { return 0 }
        return a == b ? 1 : 2
    }

    /// The comparison vector of two records, and whether their names were read swapped (first against last).
    static func compare(_ a: MatchFeatures, _ b: MatchFeatures) -> (pattern: ComparisonPattern, swapped: Bool) {
        withUnsafePointer(to: a) { pa in withUnsafePointer(to: b) { pb in compare(pa, pb) } }
    }

    /// The same through pointers into the features array: a record's fields are a dozen arrays, and copying
    /// the struct for every pair (retaining each) was most of the comparisons' time.
    static func compare(_ a: UnsafePointer<MatchFeatures>, _ b: UnsafePointer<MatchFeatures>) -> (
        pattern: ComparisonPattern, swapped: Bool
    ) {
        var firstL = firstLevel(a.pointee.first, a.pointee.firstCanonical, b.pointee.first, b.pointee.firstCanonical)
        var lastL = lastLevel(a.pointee.last, a.pointee.lastSoundex, b.pointee.last, b.pointee.lastSoundex)
        var swapped = false
        // First and last names entered the wrong way round: read them crossed when that fits clearly better.
        let direct = closeness(firstL, exactish: 3) + closeness(lastL, exactish: 2)
        // Crossed names that fit share a first letter on at least one side: a cheap test before two more
        // comparisons, which most pairs of two people would otherwise pay.
        if direct > 0 && !a.pointee.first.isEmpty && !a.pointee.last.isEmpty && !b.pointee.first.isEmpty
            && !b.pointee.last.isEmpty
            && (a.pointee.last[0] == b.pointee.first[0] || a.pointee.first[0] == b.pointee.last[0])
        {
            let crossedFirst = firstLevel(
                a.pointee.last, a.pointee.lastAsFirst, b.pointee.first, b.pointee.firstCanonical)
            let crossedLast = lastLevel(a.pointee.first, a.pointee.firstSoundex, b.pointee.last, b.pointee.lastSoundex)
            let crossed = closeness(crossedFirst, exactish: 3) + closeness(crossedLast, exactish: 2)
            if crossed < direct {
                (firstL, lastL, swapped) = (crossedFirst, crossedLast, true)
            }
        }
        var pattern = ComparisonPattern()
        pattern.set(first, firstL)
        pattern.set(last, lastL)
        pattern.set(middle, middleLevel(a.pointee.middle, b.pointee.middle))
        pattern.set(address, addressLevel(a, b))
        pattern.set(zip, zipLevel(a.pointee.zip, b.pointee.zip))
        pattern.set(city, cityLevel(a.pointee.city, b.pointee.city))
        pattern.set(state, stateLevel(a.pointee.state, b.pointee.state))
        pattern.set(specialty, specialtyLevel(a.pointee.specialty, b.pointee.specialty))
        return (pattern, swapped)
    }

    /// The term-frequency adjustments of a pair's exact name agreements, in bits: the candidate's value is the
    /// agreed one (read straight or swapped).
    static func termFrequencyAdjustment(
        _ pattern: ComparisonPattern, candidate b: MatchFeatures, model: FellegiSunterModel
    ) -> (first: Double, last: Double) {
        termFrequencyAdjustment(pattern, first: b.firstFrequency, last: b.lastFrequency, model: model)
    }

    static func termFrequencyAdjustment(
        _ pattern: ComparisonPattern, first firstFrequency: Double, last lastFrequency: Double,
        model: FellegiSunterModel
    ) -> (first: Double, last: Double) {
        (
            pattern.level(first) == 1 ? model.termFrequencyAdjustment(first, frequency: firstFrequency) : 0,
            pattern.level(last) == 1 ? model.termFrequencyAdjustment(last, frequency: lastFrequency) : 0
        )
    }

    /// The match weight of a pair: prior, comparisons and term-frequency adjustments.
    static func weight(_ pattern: ComparisonPattern, candidate b: MatchFeatures, model: FellegiSunterModel) -> Double {
        weight(pattern, first: b.firstFrequency, last: b.lastFrequency, model: model)
    }

    /// The same with the candidate's name frequencies.
    static func weight(
        _ pattern: ComparisonPattern, first firstFrequency: Double, last lastFrequency: Double,
        model: FellegiSunterModel
    ) -> Double {
        let tf = termFrequencyAdjustment(pattern, first: firstFrequency, last: lastFrequency, model: model)
        return model.weight(pattern) + tf.first + tf.last
    }

    /// Why two records were linked (or nearly): each comparison's level and weight, as a JSON object.
    static func explanation(_ a: MatchFeatures, _ b: MatchFeatures, model: FellegiSunterModel) -> String {
        let (pattern, swapped) = compare(a, b)
        let tf = termFrequencyAdjustment(pattern, candidate: b, model: model)
        let total = model.weight(pattern) + tf.first + tf.last
        var fields: [String] = []
        for k in comparisons.indices {
            let level = pattern.level(k)
            var field =
                "{\"field\":\"\(comparisons[k].name)\",\"level\":\"\(comparisons[k].levels[level])\",\"weight\":\(bits(model.weight(k, level: level)))"
            if k == first && level == 1 { field += ",\"term_frequency\":\(bits(tf.first))" }
            if k == last && level == 1 { field += ",\"term_frequency\":\(bits(tf.last))" }
            fields.append(field + "}")
        }
        return
            "{\"probability\":\(rounded(FellegiSunterModel.probability(total), 6)),\"weight\":\(bits(total)),\"prior\":\(bits(model.priorWeight)),\"names_swapped\":\(swapped),\"fields\":[\(fields.joined(separator: ","))]}"
    }

    static func bits(_ value: Double) -> String { rounded(value, 3) }

    /// Fixed decimals, locale-free, with no negative zero.
    static func rounded(_ value: Double, _ places: Int) -> String {
        var scale = 1.0
        for _ in 0..<places { scale *= 10 }
        let scaled = Int64((value * scale).rounded())
        let sign = scaled < 0 ? "-" : ""
        let magnitude = scaled.magnitude
        let whole = magnitude / UInt64(scale)
        let fraction = String(magnitude % UInt64(scale))
        return "\(sign)\(whole).\(String(repeating: "0", count: places - fraction.count))\(fraction)"
    }
}
