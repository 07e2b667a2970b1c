import Foundation

@testable import FeedGenerator

/// A tiny generated world in its own temporary folder; call `remove()` when done.
struct TinyWorld {
    let root: URL
    let summary: GenerationSummary

    init(seed: UInt64 = 7, physicians: Int = 120, noise: Noise = .standard) throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("feedgen-\(UUID().uuidString.prefix(8))")
        summary = try FeedGenerator.generate(
            GeneratorOptions(
                scale: .sample, seed: seed, outputDirectory: root, physicianCount: physicians, noise: noise))
    }

    func remove() { try? FileManager.default.removeItem(at: root) }

    /// Every file of a feed, in delivery order: (batch folder, file name, text).
    func files(_ feed: String) throws -> [(batch: String, name: String, text: String)] {
        let folder = root.appendingPathComponent("feeds/\(feed)")
        var result: [(String, String, String)] = []
        for batch in try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted() {
            let dir = folder.appendingPathComponent(batch)
            for name in try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() {
                result.append((batch, name, try String(contentsOf: dir.appendingPathComponent(name), encoding: .utf8)))
            }
        }
        return result
    }

    /// The rows of a delimited feed as dictionaries keyed by header name, in delivery order.
    func records(_ feed: String) throws -> [(batch: String, name: String, fields: [String: String])] {
        var result: [(String, String, [String: String])] = []
        for (batch, name, text) in try files(feed) {
            let delimiter: Character = name.hasSuffix(".txt") ? "|" : ","
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
            let header = splitDelimited(String(lines.first ?? ""), delimiter)
            for line in lines.dropFirst() {
                let values = splitDelimited(String(line), delimiter)
                result.append((batch, name, Dictionary(uniqueKeysWithValues: zip(header, values))))
            }
        }
        return result
    }

    /// The objects of a JSON Lines feed, in delivery order.
    func objects(_ feed: String) throws -> [[String: Any]] {
        try files(feed).flatMap { file in
            try file.text.split(separator: "\n").map {
                try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
            }
        }
    }
}

/// Splits one delimited line, honouring double quotes.
func splitDelimited(_ line: String, _ delimiter: Character) -> [String] {
    var fields: [String] = []
    var current = ""
    var quoted = false
    var previousQuote = false
    for c in line {
        if quoted {
            if c == "\"" { quoted = false; previousQuote = true } else { current.append(c) }
        } else if c == "\"" {
            if previousQuote { current.append("\"") }
            quoted = true
            previousQuote = false
        } else if c == delimiter {
            fields.append(current)
            current = ""
            previousQuote = false
        } else {
            current.append(c)
            previousQuote = false
        }
    }
    fields.append(current)
    return fields
}

/// The columns of shared/spec/feeds.md, in the order the spec lists them.
enum SpecColumns {
    static let delimited: [String: [String]] = [
        "products": [
            "NDC11", "BRAND_NAME", "GENERIC_NAME", "MARKET", "MANUFACTURER", "IS_OWN_BRAND", "LAUNCH_DATE",
            "WAC_PER_UNIT", "UNITS_PER_PACK",
        ],
        "nppes": [
            "NPI", "Entity Type Code", "Provider Last Name (Legal Name)", "Provider First Name", "Provider Middle Name",
            "Provider Credential Text", "Provider First Line Business Practice Location Address",
            "Provider Business Practice Location Address City Name",
            "Provider Business Practice Location Address State Name",
            "Provider Business Practice Location Address Postal Code", "Healthcare Provider Taxonomy Code_1",
            "Provider Enumeration Date", "NPI Deactivation Date",
        ],
        "ama": [
            "ME_NUMBER", "LAST_NAME", "FIRST_NAME", "MIDDLE_NAME", "SUFFIX", "BIRTH_YEAR", "GENDER",
            "PRIMARY_SPECIALTY", "SECONDARY_SPECIALTY", "MAILING_ADDRESS", "CITY", "STATE", "ZIP", "NPI", "MPA",
            "DEAD_IND",
        ],
        "alignment": ["ZIP", "TERRITORY_ID", "TERRITORY_NAME", "DISTRICT", "REGION", "REP_ID", "EFFECTIVE_DATE"],
        "xponent": ["PRESCRIBER_ID", "NPI", "ME_NUMBER", "PRODUCT_NDC11", "WEEK_ENDING", "NRX", "TRX", "NQTY", "TQTY"],
        "claims": [
            "CLAIM_ID", "PATIENT_TOKEN", "FILL_DATE", "NDC11", "PRESCRIBER_NPI", "BIN", "PCN", "GROUP_ID",
            "DAYS_SUPPLY", "QUANTITY", "CLAIM_STATUS", "REJECT_CODE", "PATIENT_PAY", "REVERSES_CLAIM_ID",
        ],
        "rebates": [
            "INVOICE_ID", "CONTRACT_ID", "PAYER_ID", "PLAN_ID", "NDC11", "QUARTER", "UNITS", "WAC_AMOUNT",
            "REBATE_PCT", "REBATE_AMOUNT",
        ],
        "web_sessions": [
            "session_id", "date", "channel", "landing_page", "pages", "duration_s", "copay_card_signup", "dma_code",
            "device",
        ],
        "media": [
            "WEEK_ENDING", "DMA_CODE", "DMA_NAME", "CHANNEL", "CAMPAIGN_ID", "GRPS", "IMPRESSIONS", "SPEND_USD",
        ],
        "partd": [
            "Prscrbr_NPI", "Prscrbr_Last_Org_Name", "Prscrbr_First_Name", "Prscrbr_City", "Prscrbr_State_Abrvtn",
            "Prscrbr_State_FIPS", "Prscrbr_Type", "Prscrbr_Type_Src", "Brnd_Name", "Gnrc_Name", "Tot_Clms",
            "Tot_30day_Fills", "Tot_Day_Suply", "Tot_Drug_Cst", "Tot_Benes", "GE65_Sprsn_Flag", "GE65_Tot_Clms",
            "GE65_Tot_30day_Fills", "GE65_Tot_Drug_Cst", "GE65_Tot_Day_Suply", "GE65_Bene_Sprsn_Flag",
            "GE65_Tot_Benes",
        ],
    ]
    static let jsonLines: [String: [String]] = [
        "crm_accounts": [
            "Id", "NPI_vod__c", "FirstName", "LastName", "Specialty_1_vod__c", "Primary_Address_Line_1", "City",
            "State", "Zip", "Territory_vod__c", "IsDeleted", "LastModifiedDate",
        ],
        "crm_calls": [
            "Id", "Account_vod__c", "Call_Date_vod__c", "Territory_vod__c", "Rep_Id", "Call_Type_vod__c",
            "Detailed_Products_vod__c", "Samples", "Status_vod__c",
        ],
        "email_events": ["event_id", "event_type", "ts", "campaign_id", "audience", "recipient_hash", "npi", "url"],
    ]
    /// The keys of feeds.md (formulary and partd as the raw domains keep them: per as-of date, per data year).
    static let keys: [String: [String]] = [
        "products": ["NDC11"], "nppes": ["NPI"], "ama": ["ME_NUMBER"], "alignment": ["ZIP"],
        "xponent": ["PRESCRIBER_ID", "PRODUCT_NDC11", "WEEK_ENDING"], "claims": ["CLAIM_ID"],
        "rebates": ["INVOICE_ID"], "web_sessions": ["session_id"],
        "media": ["WEEK_ENDING", "DMA_CODE", "CHANNEL", "CAMPAIGN_ID"],
        "partd": ["Prscrbr_NPI", "Brnd_Name", "Gnrc_Name"], "crm_accounts": ["Id"], "crm_calls": ["Id"],
        "email_events": ["event_id"],
    ]
}

/// The NPI check: Luhn over 80840 and the first nine digits.
func isValidNPI(_ npi: String) -> Bool {
    npi.count == 10 && npi.allSatisfy(\.isASCII) && npi.allSatisfy(\.isNumber)
        && npiCheckDigit(String(npi.prefix(9))) == Int(String(npi.last!))
}
