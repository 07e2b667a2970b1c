import Foundation
import Testing

@testable import FeedFormats

/// JSON Lines: one object a line; a line that is not one is quarantined with where it broke, the rest loads.
struct JSONLinesReaderTests {
    @Test func anInvalidLineIsQuarantinedAndTheRestLoads() throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        let text = """
            {"event_id":"e1","event_type":"open","ts":"2024-03-01T23:30:00-05:00","campaign_id":"C1","audience":"HCP","recipient_hash":"h","npi":"1234567893"}
            {"event_id":"e2","event_type":"open",
            {"event_id":"e3","event_type":"zap","ts":"2024-03-01T10:00:00Z","campaign_id":"C1","audience":"HCP"}

            {"event_id":"e4","event_type":"click","ts":"2024-03-01T10:00:00.123+01:30","campaign_id":"C1","audience":"CONSUMER","url":null}
            {"event_id":"e5","event_type":"click","ts":"2024-03-01 10:00:00","campaign_id":"C1","audience":"HCP"}
            {"event_id":"e6" "event_type":"open"}
            [1, 2]
            {"event_id":"e8"} trailing
            {"event_id":"e9","event_type":"open","ts":"2024-03-01T10:00:00Z","campaign_id":"C1","audience":"HCP","url":{"a":1}}
            {"event_id":"e10","event_type":"open","ts":"2024-03-01T10:00:00Z","campaign_id":"C1"
            """
        let read = try Read("email_events", try fixture.file("e.jsonl", text))
        #expect(read.rows.map(\.line) == [1, 5])
        #expect(read.rows[0].values[2] == .text("2024-03-02T04:30:00Z"))
        #expect(read.rows[0].values[6] == .text("1234567893"))
        #expect(read.rows[1].values[2] == .text("2024-03-01T08:30:00Z"))
        #expect(read.rows[1].values[7] == .null)
        #expect(
            read.problems == [
                "2 (line): invalid JSON at character 38: expected a key in double quotes (the line ends first)",
                "3 event_type: not one of sent, delivered, open, click, bounce, unsubscribe: \"zap\"",
                "6 ts: not an ISO 8601 timestamp with a UTC offset (YYYY-MM-DDTHH:MM:SS±HH:MM or Z): \"2024-03-01 10:00:00\"",
                "7 (line): invalid JSON at character 18: expected \",\" or \"}\" after a value",
                "8 (line): invalid JSON at character 1: expected \"{\" to open an object",
                "9 (line): invalid JSON at character 19: unexpected text after the object",
                "10 url: expected a string, number, true, false or null, found a JSON object",
                "11 (line): invalid JSON at character 85: expected \",\" or \"}\" after a value (the line ends first) (the file's last line has no line end: truncated delivery?)",
            ])
        #expect(read.issues[0].rawValue == #"{"event_id":"e2","event_type":"open","#)
    }

    @Test func stringsNumbersBooleansAndNullsAreTyped() throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        let calls = try Read(
            "crm_calls",
            try fixture.file(
                "c.jsonl",
                #"{"Id":"a1","Account_vod__c":"acc","Call_Date_vod__c":"2024-03-04","Call_Type_vod__c":"Detail","Samples":2,"Status_vod__c":"Submitted","Extra":{"nested":[1,{"x":null}]}}"#
                    + "\r\n"
                    + #"{"Id":"a2","Account_vod__c":"acc","Call_Date_vod__c":"2024-03-04","Samples":2.5}"# + "\r\n"))
        #expect(calls.rows.count == 1)
        #expect(calls.rows[0].values[7] == .integer(2))
        #expect(calls.rows[0].values[3] == .null)  // Territory_vod__c absent
        #expect(calls.problems == ["2 Samples: not a whole number: \"2.5\""])

        let accounts = try Read(
            "crm_accounts",
            try fixture.file(
                "a.jsonl",
                #"{"Id":"A","NPI_vod__c":"","FirstName":"Bill \"W.\"","LastName":"Caf\u00e9 \ud83d\ude00","IsDeleted":true,"LastModifiedDate":"2024-03-04T10:00:00Z"}"#
                    + "\n"
                    + #"{"Id":"B","NPI_vod__c":1234567893,"IsDeleted":false,"LastModifiedDate":"2024-03-04T10:00:00+0200"}"#
                    + "\n" + #"{"Id":"C","IsDeleted":"maybe"}"#))
        #expect(accounts.rows.count == 2)
        let bill = accounts.rows[0].values
        #expect(bill[1] == .null)
        #expect(bill[2] == .text("Bill \"W.\""))
        #expect(bill[3] == .text("Café 😀"))
        #expect(bill[10] == .integer(1))
        #expect(bill[12] == .integer(0))  // npi_valid
        let b = accounts.rows[1].values
        #expect(b[1] == .text("1234567893"))
        #expect(b[10] == .integer(0))
        #expect(b[11] == .text("2024-03-04T08:00:00Z"))
        #expect(b[12] == .integer(1))
        #expect(
            accounts.problems == [
                "3 IsDeleted: not a flag (Y/N, 1/0, true/false): \"maybe\" (the file's last line has no line end: truncated delivery?)"
            ])
    }

    @Test func aMissingRequiredKeyRejectsTheLine() throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        let read = try Read(
            "email_events", try fixture.file("e.jsonl", #"{"event_id":"e1","event_type":"open"}"# + "\n"))
        #expect(read.problems == ["1 ts: empty, but a value is required"])
    }

    @Test func badEscapesAndControlCharactersAreInvalidJSON() throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        let text = #"{"event_id":"e\q"}"# + "\n" + #"{"event_id":"e\u12"}"# + "\n" + "{\"event_id\":\"e\u{01}\"}\n"
        let read = try Read("email_events", try fixture.file("e.jsonl", text))
        #expect(
            read.problems == [
                "1 (line): invalid JSON at character 16: unknown escape \\q",
                "2 (line): invalid JSON at character 16: expected four hex digits after \\u",
                "3 (line): invalid JSON at character 15: a control character inside a string (escape it)",
            ])
    }

    @Test func anEmptyFileIsRejected() throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        let error = readError("crm_calls", try fixture.file("c.jsonl", "\n\n"))
        #expect(error?.code == .emptyFile)
        #expect(
            error?.description
                == "c.jsonl: the file is empty (no JSON line); the batch is rejected. Ask the sender to re-deliver it.")
    }
}
