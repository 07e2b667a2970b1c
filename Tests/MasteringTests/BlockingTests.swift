import Testing

@testable import Mastering

/// Blocking as a union of capped rules: each rule reaches a pair that the other three miss, and a block over the
/// cap is refined instead of compared whole.
struct BlockingTests {
    static func record(
        _ source: PhysicianSource, _ id: String, first: String = "", last: String = "", state: String = "",
        zip: String = "", address: String? = nil, city: String = ""
    ) -> PersonRecord {
        var r = PersonRecord(source: source, sourceID: id)
        r.first = NameNormalizer.clean(first)
        r.firstCanonical = NameNormalizer.canonicalFirst(r.first)
        r.last = NameNormalizer.clean(last)
        r.state = state
        r.zip5 = zip
        r.address = Comparators.streetWords(address)
        r.streetNumber = Comparators.streetNumber(address)
        r.city = city
        return r
    }

    /// The rules that reach `query` from `candidate` when the index holds the candidate alone.
    static func reaching(_ query: PersonRecord, _ candidate: PersonRecord) -> [String] {
        let index = BlockIndex([candidate], candidates: [0])
        return index.rulesReaching(query, candidate: 0)
    }

    @Test func theZipAloneReachesASurnameWithAnotherFirstLetter() {
        let nppes = Self.record(
            .nppes, "1", first: "ROBERT", last: "KRAMER", state: "NJ", zip: "07102", address: "100 Main St",
            city: "NEWARK")
        let crm = Self.record(
            .crm, "c", first: "RON", last: "CRAMER", state: "NJ", zip: "07102", address: "102 Main St", city: "NEWARK")
        #expect(Self.reaching(crm, nppes) == ["zip5"])
    }

    @Test func theInitialsAloneReachAWrongZipDigitWithNoState() {
        let nppes = Self.record(
            .nppes, "1", first: "JOHN", last: "SMITH", state: "NJ", zip: "07102", address: "10 Main St",
            city: "NEWARK")
        let crm = Self.record(
            .crm, "c", first: "JOHN", last: "SMYTH", zip: "07182", address: "12 Main St", city: "NEWARK")
        #expect(Self.reaching(crm, nppes) == ["surname_and_first_initials"])
        // Swapped names still share the (sorted) initials.
        let swapped = Self.record(.crm, "s", first: "SMITH", last: "JOHN", zip: "07182")
        #expect(Self.reaching(swapped, nppes) == ["surname_and_first_initials"])
    }

    @Test func theSoundexAloneReachesAFirstNameTypoInItsFirstLetter() {
        let nppes = Self.record(
            .nppes, "1", first: "PHILIP", last: "SMITH", state: "NJ", zip: "07102", address: "10 Main St",
            city: "NEWARK")
        let crm = Self.record(
            .crm, "c", first: "FILIP", last: "SMYTHE", state: "NJ", zip: "08540", address: "77 Oak Ave", city: "NEWARK")
        #expect(Self.reaching(crm, nppes) == ["surname_soundex_and_state"])
    }

    @Test func theStreetNumberAloneReachesARecordWithNoNameAndNoZip() {
        let nppes = Self.record(
            .nppes, "1", first: "MARY", last: "JONES", state: "NJ", zip: "08608", address: "22 Oak Ave",
            city: "TRENTON")
        let crm = Self.record(.crm, "c", address: "22 Oak Avenue", city: "TRENTON")
        #expect(Self.reaching(crm, nppes) == ["street_number_and_city"])
    }

    @Test func theFirstNameAloneReachesASurnameTypoInItsFirstLetterWithAWrongZipAndStreet() {
        let nppes = Self.record(
            .nppes, "1", first: "MARY", last: "JONES", state: "NJ", zip: "08608", address: "22 Oak Ave",
            city: "TRENTON")
        let crm = Self.record(
            .crm, "c", first: "MARY", last: "HONES", state: "NJ", zip: "08680", address: "25 Oak Ave", city: "TRENTON")
        #expect(Self.reaching(crm, nppes) == ["first_name_soundex_and_state"])
    }

    @Test func aBlockOverTheCapIsRefinedNotComparedWhole() {
        let lasts = ["ADAMS", "BAKER", "CLARK", "DAVIS", "EVANS"]
        let records = lasts.enumerated().map { i, last in
            Self.record(.nppes, "\(i)", first: "ANNA", last: last, zip: "07102")
        }
        let index = BlockIndex(records, candidates: Array(records.indices), rules: [.zip], cap: 3)
        #expect(index.statistics.first?.refined == 1)
        var reached: [Int] = []
        index.forEachCandidate(of: Self.record(.crm, "c", first: "ZOE", last: "CLARKE", zip: "07102")) { c, _ in
            reached.append(c)
        }
        #expect(reached == [2])  // the ZIP's block of five, refined by the surname's initial
        let small = BlockIndex(records, candidates: Array(records.indices), rules: [.zip], cap: 5)
        var all: [Int] = []
        small.forEachCandidate(of: Self.record(.crm, "c", first: "ZOE", last: "CLARKE", zip: "07102")) { c, _ in
            all.append(c)
        }
        #expect(all == [0, 1, 2, 3, 4])
    }
}
