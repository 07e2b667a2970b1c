import Foundation
import Testing

@testable import FeedFormats

/// Field typing straight from bytes: NPI check digits, exact decimals, dates, timestamps, flags.
struct FieldParsingTests {
    func bytes<R>(_ text: String, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        Array(text.utf8).withUnsafeBufferPointer(body)
    }

    @Test func npiCheckDigitsFollowLuhnWithThe80840Prefix() {
        #expect(NPI.isValid("1234567893"))  // CMS's own example
        #expect(NPI.isValid("1245319599"))
        #expect(!NPI.isValid("1234567890"))
        #expect(!NPI.isValid("123456789"))
        #expect(!NPI.isValid("12345678930"))
        #expect(!NPI.isValid("12345678a3"))
        #expect(!NPI.isValid(""))
        #expect(NPI.checkDigit(forFirstNine: [1, 2, 3, 4, 5, 6, 7, 8, 9]) == 3)
        // By hand: 80840 100000000, doubling every second digit from the right starting with the ninth:
        // the prefix gives 0 + 8 + 8 + 0 + 8 = 24, the leading 1 doubled gives 2; 26 → check digit 4.
        #expect(NPI.checkDigit(forFirstNine: [1, 0, 0, 0, 0, 0, 0, 0, 0]) == 4)
        #expect(NPI.isValid("1000000004"))
        // Every nine-digit stem has exactly one valid check digit, and it is the computed one.
        for stem in ["100030921", "199999999", "154873921", "987654321"] {
            let nine = stem.map { Int(String($0))! }
            let valid = (0...9).filter { NPI.isValid(stem + String($0)) }
            #expect(valid == [NPI.checkDigit(forFirstNine: nine)], "\(stem)")
        }
    }

    @Test func decimalsAreExactCountsOfTheirPlaces() {
        func parse(_ text: String, _ places: Int = 3) -> Int64? {
            bytes(text) { FieldParsing.decimal($0, places: places) }
        }
        #expect(parse("12.345") == 12345)
        #expect(parse("0.1") == 100)
        #expect(parse("-2") == -2000)
        #expect(parse("+2.5") == 2500)
        #expect(parse(".5") == 500)
        #expect(parse("3.") == 3000)
        #expect(parse("1.2345") == 1235)  // past the places: half away from zero
        #expect(parse("1.2344999") == 1234)
        #expect(parse("-1.2345") == -1235)
        #expect(parse("1.230000000000000000000") == 1230)
        #expect(parse("999999999999999") == 999_999_999_999_999_000)
        #expect(parse("9999999999999999") == nil)  // would overflow Int64 thousandths
        #expect(parse("1.2.3") == nil)
        #expect(parse("1e5") == nil)
        #expect(parse("1,000") == nil)
        #expect(parse(".") == nil)
        #expect(parse("-") == nil)
        #expect(parse("12a") == nil)
    }

    @Test func decimalValuesAreTheDoublesNearestTheExactCount() {
        let rule = FieldRule(ColumnLayout("X", "x", .decimal(places: 3)))
        #expect(bytes("0.1") { rule.parse($0) }.value == .real(0.1))
        #expect(bytes(" 2.675 ") { rule.parse($0) }.value == .real(2.675))
        #expect(bytes("") { rule.parse($0) }.value == .null)
        #expect(bytes("12a") { rule.parse($0) }.problem == "not a number: \"12a\"")
        // The exact thousandths come back from the double.
        let parsed = bytes("123456.789", { rule.parse($0) }).value
        guard case .real(let v)? = parsed else {
            Issue.record("expected a real, got \(String(describing: parsed))")
            return
        }
        #expect(Int64((v * 1000).rounded()) == 123_456_789)
    }

    @Test func datesAreRealCalendarDatesInTheirDeclaredForm() {
        func date(_ text: String, _ format: DateFormat) -> String? {
            bytes(text) { FieldParsing.date($0, format: format) }
        }
        #expect(date("2024-02-29", .iso) == "2024-02-29")
        #expect(date("2023-02-29", .iso) == nil)
        #expect(date("2024-04-31", .iso) == nil)
        #expect(date("2024-13-01", .iso) == nil)
        #expect(date("2024-3-1", .iso) == nil)
        #expect(date("05/23/2007", .monthDayYear) == "2007-05-23")
        #expect(date("23/05/2007", .monthDayYear) == nil)
        #expect(date("20240305", .compact) == "2024-03-05")
        #expect(date("2024030", .compact) == nil)
        #expect(date("1899-12-31", .iso) == nil)
    }

    @Test func timestampsAreNormalisedToUTC() {
        func utc(_ text: String) -> String? { bytes(text) { FieldParsing.timestamp($0) } }
        #expect(utc("2024-03-01T23:30:00-05:00") == "2024-03-02T04:30:00Z")
        #expect(utc("2024-12-31T23:00:00-02:00") == "2025-01-01T01:00:00Z")
        #expect(utc("2024-01-01T00:30:00+01:00") == "2023-12-31T23:30:00Z")
        #expect(utc("2024-03-01T10:00:00.123+01:30") == "2024-03-01T08:30:00Z")
        #expect(utc("2024-03-01T10:00:00+0130") == "2024-03-01T08:30:00Z")
        #expect(utc("2024-03-01T10:00:00+01") == "2024-03-01T09:00:00Z")
        #expect(utc("2024-03-01T10:00:00Z") == "2024-03-01T10:00:00Z")
        #expect(utc("2024-02-29T10:00:00z") == "2024-02-29T10:00:00Z")
        #expect(utc("2024-03-01T10:00:00") == nil)  // no offset: local time of where?
        #expect(utc("2024-03-01T25:00:00Z") == nil)
        #expect(utc("2024-03-01T10:00:00.Z") == nil)
        #expect(utc("2024-03-01T10:00:00+1:00") == nil)
    }

    @Test func flagsAcceptTheUsualSpellings() {
        let rule = FieldRule(ColumnLayout("F", "f", .flag))
        for (text, value) in [("Y", 1), ("n", 0), ("1", 1), ("0", 0), ("true", 1), ("FALSE", 0), ("yes", 1), ("", 0)] {
            #expect(bytes(text) { rule.parse($0) }.value == .integer(Int64(value)), "\(text)")
        }
        #expect(bytes("2") { rule.parse($0) }.problem == "not a flag (Y/N, 1/0, true/false): \"2\"")
    }

    @Test func fridaysAreFridays() {
        #expect(FieldParsing.weekday(ofISO: "2024-03-08") == 5)
        #expect(FieldParsing.weekday(ofISO: "1970-01-01") == 4)
        #expect(FieldParsing.weekday(ofISO: "2026-01-02") == 5)
        #expect(FieldParsing.weekday(ofISO: "2024-03-10") == 0)
        #expect(FieldParsing.weekday(ofISO: "not a date") == nil)
    }

    @Test func longValuesAreCutInReasons() {
        let rule = FieldRule(ColumnLayout("N", "n", .integer))
        let problem = bytes(String(repeating: "x", count: 50)) { rule.parse($0) }.problem
        #expect(problem == "not a whole number: \"\(String(repeating: "x", count: 40))…\"")
    }
}

extension Result where Success == FieldValue, Failure == FieldProblem {
    var value: FieldValue? { try? get() }
    var problem: String? {
        if case .failure(let problem) = self { return problem.description }
        return nil
    }
}
