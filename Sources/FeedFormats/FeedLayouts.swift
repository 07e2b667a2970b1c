import Foundation

/// The declared layout of every feed of shared/spec/feeds.md: header names as vendors send them, our column
/// names and types, keys, and row rules.
///
/// The tables, in output-column order (`!` a value is required, `[a|b]` the accepted values, `← SOURCE` the
/// vendor's header name or JSON key or XML attribute when it differs, `(derived)` computed per row; decimals carry
/// their places; dates and timestamps are delivered in ISO form, timestamps in UTC):
///
/// - `products` (key ndc11): ndc11 text! ← NDC11; brand_name text ← BRAND_NAME; generic_name text ← GENERIC_NAME;
///   market text! ← MARKET; manufacturer text ← MANUFACTURER; is_own_brand flag ← IS_OWN_BRAND; launch_date date(iso) ←
///   LAUNCH_DATE; wac_per_unit decimal(4) ← WAC_PER_UNIT; units_per_pack integer ← UNITS_PER_PACK
/// - `nppes` (key npi): npi text! ← NPI; entity_type_code integer [1|2] ← Entity Type Code; organization_name text ←
///   Provider Organization Name (Legal Business Name); last_name text ← Provider Last Name (Legal Name); first_name
///   text ← Provider First Name; middle_name text ← Provider Middle Name; credential text ← Provider Credential Text;
///   address_line1 text ← Provider First Line Business Practice Location Address; city text ← Provider Business
///   Practice Location Address City Name; state text ← Provider Business Practice Location Address State Name;
///   postal_code text ← Provider Business Practice Location Address Postal Code; taxonomy_code text ← the
///   `Healthcare Provider Taxonomy Code_N` whose `Healthcare Provider Primary Taxonomy Switch_N` is `Y` (slot 1 when
///   none is: ``ColumnLayout/Slots``); enumeration_date date(monthDayYear) ← Provider Enumeration Date;
///   deactivation_date date(monthDayYear) ← NPI Deactivation Date; reactivation_date date(monthDayYear) ← NPI
///   Reactivation Date; deactivated flag (derived: a deactivation date and no reactivation on or after it);
///   npi_valid flag (derived)
/// - `ama` (key me_number): me_number text! ← ME_NUMBER; last_name text ← LAST_NAME; first_name text ← FIRST_NAME;
///   middle_name text ← MIDDLE_NAME; suffix text ← SUFFIX; birth_year integer ← BIRTH_YEAR; gender text [M|F|U] ←
///   GENDER; primary_specialty text ← PRIMARY_SPECIALTY; secondary_specialty text ← SECONDARY_SPECIALTY; address_line1
///   text ← MAILING_ADDRESS; city text ← CITY; state text ← STATE; zip text ← ZIP; npi text ← NPI; mpa text ← MPA;
///   dead_ind flag ← DEAD_IND; npi_valid flag (derived)
/// - `crm_accounts` (key account_id): account_id text! ← Id; npi text ← NPI_vod__c; first_name text ← FirstName;
///   last_name text ← LastName; specialty text ← Specialty_1_vod__c; address_line1 text ← Primary_Address_Line_1; city
///   text ← City; state text ← State; zip text ← Zip; territory_id text ← Territory_vod__c; is_deleted flag ←
///   IsDeleted; last_modified timestamp ← LastModifiedDate; npi_valid flag (derived)
/// - `alignment` (key zip): zip text! ← ZIP; territory_id text! ← TERRITORY_ID; territory_name text ← TERRITORY_NAME;
///   district text ← DISTRICT; region text ← REGION; rep_id text ← REP_ID; effective_date date(iso) ← EFFECTIVE_DATE
/// - `xponent` (key week_ending, prescriber_id, ndc11): prescriber_id text! ← PRESCRIBER_ID; npi text ← NPI; me_number
///   text ← ME_NUMBER; ndc11 text! ← PRODUCT_NDC11; week_ending date(iso)! ← WEEK_ENDING; nrx decimal(3)! ← NRX; trx
///   decimal(3)! ← TRX; nqty decimal(3) ← NQTY; tqty decimal(3) ← TQTY; npi_valid flag (derived); trx_lt_nrx flag
///   (derived)
/// - `claims` (key claim_id): claim_id text! ← CLAIM_ID; patient_token text ← PATIENT_TOKEN; fill_date date(compact)! ←
///   FILL_DATE; ndc11 text! ← NDC11; prescriber_npi text ← PRESCRIBER_NPI; bin text ← BIN; pcn text ← PCN; group_id
///   text ← GROUP_ID; days_supply integer ← DAYS_SUPPLY; quantity decimal(3) ← QUANTITY; claim_status text! [P|R|X] ←
///   CLAIM_STATUS; reject_code text ← REJECT_CODE; patient_pay decimal(2) ← PATIENT_PAY; reverses_claim_id text ←
///   REVERSES_CLAIM_ID; npi_valid flag (derived)
/// - `formulary_payer` (key as_of, payer_id): as_of date(iso)! ← asOf; payer_id text! ← id; payer_name text ← name
/// - `formulary_pbm` (key as_of, pbm_id, payer_id): as_of date(iso)! ← asOf; pbm_id text! ← id; pbm_name text ← name;
///   payer_id text! ← payer
/// - `formulary_plan` (key as_of, plan_id): as_of date(iso)! ← asOf; plan_id text! ← id; plan_name text ← name;
///   payer_id text! ← payer; pbm_id text ← pbm; channel text [COMMERCIAL|MEDICARE_D|MEDICAID|VA_DOD]; lives integer;
///   state text
/// - `formulary_plan_key` (key as_of, plan_id, bin, pcn, group_id): as_of date(iso)! ← asOf; plan_id text! ← plan; bin
///   text!; pcn text; group_id text ← group
/// - `formulary_coverage` (key as_of, plan_id, ndc11): as_of date(iso)! ← asOf; plan_id text! ← plan; ndc11 text!; tier
///   text [1|2|3|4|5|6|NC]; pa flag; st flag; ql flag; effective date(iso)
/// - `rebates` (key invoice_id): invoice_id text! ← INVOICE_ID; contract_id text ← CONTRACT_ID; payer_id text! ←
///   PAYER_ID; plan_id text ← PLAN_ID; ndc11 text! ← NDC11; quarter text! ← QUARTER; units decimal(3) ← UNITS;
///   wac_amount decimal(2) ← WAC_AMOUNT; rebate_pct decimal(4) ← REBATE_PCT; rebate_amount decimal(2) ← REBATE_AMOUNT
/// - `crm_calls` (key call_id): call_id text! ← Id; account_id text! ← Account_vod__c; call_date date(iso)! ←
///   Call_Date_vod__c; territory_id text ← Territory_vod__c; rep_id text ← Rep_Id; call_type text
///   [Detail|Virtual|Lunch|Group] ← Call_Type_vod__c; detailed_products text ← Detailed_Products_vod__c; samples
///   integer ← Samples; status text [Submitted|Saved] ← Status_vod__c
/// - `email_events` (key event_id): event_id text!; event_type text! [sent|delivered|open|click|bounce|unsubscribe]; ts
///   timestamp!; campaign_id text!; audience text! [HCP|CONSUMER]; recipient_hash text; npi text; url text
/// - `web_sessions` (key session_id): session_id text!; date date(iso)!; channel text
///   [organic|paid_search|email|display|referral]; landing_page text; pages integer; duration_s integer;
///   copay_card_signup flag; dma_code text; device text
/// - `media` (key week_ending, dma_code, channel, campaign_id): week_ending date(iso)! ← WEEK_ENDING; dma_code text! ←
///   DMA_CODE; dma_name text ← DMA_NAME; channel text! [RADIO|TV|DISPLAY|SOCIAL] ← CHANNEL; campaign_id text! ←
///   CAMPAIGN_ID; grps decimal(3) ← GRPS; impressions integer ← IMPRESSIONS; spend_usd decimal(2) ← SPEND_USD
/// - `partd` (key data_year, prscrbr_npi, brnd_name, gnrc_name): prscrbr_npi text! ← Prscrbr_NPI; prscrbr_last_org_name
///   text ← Prscrbr_Last_Org_Name; prscrbr_first_name text ← Prscrbr_First_Name; prscrbr_city text ← Prscrbr_City;
///   prscrbr_state_abrvtn text ← Prscrbr_State_Abrvtn; prscrbr_state_fips text ← Prscrbr_State_FIPS; prscrbr_type text
///   ← Prscrbr_Type; prscrbr_type_src text ← Prscrbr_Type_Src; brnd_name text! ← Brnd_Name; gnrc_name text! ←
///   Gnrc_Name; tot_clms integer ← Tot_Clms; tot_30day_fills decimal(3) ← Tot_30day_Fills; tot_day_suply integer ←
///   Tot_Day_Suply; tot_drug_cst decimal(2) ← Tot_Drug_Cst; tot_benes integer ← Tot_Benes; ge65_sprsn_flag text ←
///   GE65_Sprsn_Flag; ge65_tot_clms integer ← GE65_Tot_Clms; ge65_tot_30day_fills decimal(3) ← GE65_Tot_30day_Fills;
///   ge65_tot_drug_cst decimal(2) ← GE65_Tot_Drug_Cst; ge65_tot_day_suply integer ← GE65_Tot_Day_Suply;
///   ge65_bene_sprsn_flag text ← GE65_Bene_Sprsn_Flag; ge65_tot_benes integer ← GE65_Tot_Benes; data_year integer
///   ← Data_Year or Year when the file has the column, else the file name's `DYnn` as CMS names it, else its first
///   four-digit year, as in `partd_2024.csv` (``FileNameDefault``; a file with none is rejected); npi_valid flag
///   (derived)
///
/// Row rules that reject: xponent `WEEK_ENDING` must be a Friday; a claims reversal (`X`) must name
/// `REVERSES_CLAIM_ID`; rebates `QUARTER` must read like `2025Q1`; an NPPES row needs an `Entity Type Code` unless
/// it has an `NPI Deactivation Date` (CMS empties every other field of a deactivated NPI); a product needs a
/// `BRAND_NAME` when it is our own brand, else a brand or a generic name (generics have no brand). Flags that do not reject: `npi_valid` (10 digits
/// with a Luhn check digit over `80840` + the first nine, see ``NPI/isValid(_:)``) and xponent `trx_lt_nrx`.
///
/// ```swift
/// let layout = FeedLayouts.layout(for: "nppes")!
/// layout.tables[0].columns[1].source  // "Entity Type Code"
/// layout.tables[0].key                // ["npi"]
/// ```
public enum FeedLayouts {
    public static let all: [FeedLayout] = [
        products, nppes, ama, crmAccounts, alignment, xponent, claims, formulary, rebates, crmCalls, emailEvents,
        webSessions, media, partd,
    ]

    public static func layout(for feed: String) -> FeedLayout? { all.first { $0.feed == feed } }

    static let csv = FileFormat.delimited(delimiter: UInt8(ascii: ","), quoted: true)
    static let pipe = FileFormat.delimited(delimiter: UInt8(ascii: "|"), quoted: false)

    /// `npi_valid`: 1 when the column holds an NPI with a correct check digit.
    static func npiValid(_ column: Int) -> DerivedColumn {
        DerivedColumn("npi_valid", .flag) { row, _ in
            if case .text(let npi) = row[column] { return .integer(NPI.isValid(npi) ? 1 : 0) }
            return .integer(0)
        }
    }

    static let products = FeedLayout(
        feed: "products", format: csv,
        tables: [
            TableLayout(
                name: "products",
                columns: [
                    ColumnLayout("NDC11", "ndc11", nullable: false, length: 11, digits: true),
                    // Generics have no brand name: only our own brand must carry one (the row rule).
                    ColumnLayout("BRAND_NAME", "brand_name"),
                    ColumnLayout("GENERIC_NAME", "generic_name"),
                    ColumnLayout("MARKET", "market", nullable: false),
                    ColumnLayout("MANUFACTURER", "manufacturer"),
                    ColumnLayout("IS_OWN_BRAND", "is_own_brand", .flag),
                    ColumnLayout("LAUNCH_DATE", "launch_date", .date(.iso)),
                    ColumnLayout("WAC_PER_UNIT", "wac_per_unit", .decimal(places: 4)),
                    ColumnLayout("UNITS_PER_PACK", "units_per_pack", .integer),
                ], key: ["ndc11"],
                rowRule: { row in
                    guard case .null = row[1] else { return nil }
                    if case .integer(1) = row[5] {
                        return ("BRAND_NAME", "empty, but our own brand (IS_OWN_BRAND Y) needs a brand name")
                    }
                    if case .null = row[2] {
                        return ("BRAND_NAME", "empty, and so is GENERIC_NAME: a product needs one of them")
                    }
                    return nil
                })
        ])

    /// NPPES's taxonomy slots: `Healthcare Provider Taxonomy Code_N` and `Healthcare Provider Primary Taxonomy
    /// Switch_N`, N = 1…15.
    static let nppesTaxonomySlots = ColumnLayout.Slots(
        sources: (1...15).map { "Healthcare Provider Taxonomy Code_\($0)" },
        flags: (1...15).map { "Healthcare Provider Primary Taxonomy Switch_\($0)" }, flagValue: "Y")

    static let nppes = FeedLayout(
        feed: "nppes", format: csv,
        tables: [
            TableLayout(
                name: "nppes",
                columns: [
                    ColumnLayout("NPI", "npi", nullable: false, length: 10, digits: true),
                    // Empty on a deactivated NPI, as every field but the NPI and the deactivation date (row rule).
                    ColumnLayout("Entity Type Code", "entity_type_code", .integer, accepted: ["1", "2"]),
                    ColumnLayout(
                        "Provider Organization Name (Legal Business Name)", "organization_name", required: false),
                    ColumnLayout("Provider Last Name (Legal Name)", "last_name"),
                    ColumnLayout("Provider First Name", "first_name"),
                    ColumnLayout("Provider Middle Name", "middle_name", required: false),
                    ColumnLayout("Provider Credential Text", "credential", required: false),
                    ColumnLayout("Provider First Line Business Practice Location Address", "address_line1"),
                    ColumnLayout("Provider Business Practice Location Address City Name", "city"),
                    ColumnLayout("Provider Business Practice Location Address State Name", "state"),
                    ColumnLayout("Provider Business Practice Location Address Postal Code", "postal_code"),
                    // The slot the provider flags primary (`Switch_N = Y`), slot 1 when none does.
                    ColumnLayout("Healthcare Provider Taxonomy Code_1", "taxonomy_code", slots: nppesTaxonomySlots),
                    ColumnLayout("Provider Enumeration Date", "enumeration_date", .date(.monthDayYear)),
                    ColumnLayout("NPI Deactivation Date", "deactivation_date", .date(.monthDayYear)),
                    ColumnLayout(
                        "NPI Reactivation Date", "reactivation_date", .date(.monthDayYear), required: false),
                ],
                derived: [
                    // Deactivated and not reactivated since (1659374601: deactivated 2005-05-23, back the next day).
                    DerivedColumn("deactivated", .flag) { row, _ in
                        guard case .text(let off) = row[13] else { return .integer(0) }
                        if case .text(let on) = row[14], on >= off { return .integer(0) }
                        return .integer(1)
                    },
                    npiValid(0),
                ], key: ["npi"],
                rowRule: { row in
                    if case .null = row[1], case .null = row[13] {
                        return (
                            "Entity Type Code",
                            "empty, but a value is required (only a deactivated NPI, with an NPI Deactivation Date, "
                                + "may leave it empty)"
                        )
                    }
                    return nil
                })
        ],
        otherFilePrefixes: ["endpoint_pfile", "othername_pfile", "pl_pfile"])

    static let ama = FeedLayout(
        feed: "ama", format: pipe,
        tables: [
            TableLayout(
                name: "ama",
                columns: [
                    ColumnLayout("ME_NUMBER", "me_number", nullable: false),
                    ColumnLayout("LAST_NAME", "last_name"),
                    ColumnLayout("FIRST_NAME", "first_name"),
                    ColumnLayout("MIDDLE_NAME", "middle_name", required: false),
                    ColumnLayout("SUFFIX", "suffix", required: false),
                    ColumnLayout("BIRTH_YEAR", "birth_year", .integer),
                    ColumnLayout("GENDER", "gender", accepted: ["M", "F", "U"]),
                    ColumnLayout("PRIMARY_SPECIALTY", "primary_specialty"),
                    ColumnLayout("SECONDARY_SPECIALTY", "secondary_specialty", required: false),
                    ColumnLayout("MAILING_ADDRESS", "address_line1"),
                    ColumnLayout("CITY", "city"),
                    ColumnLayout("STATE", "state"),
                    ColumnLayout("ZIP", "zip"),
                    ColumnLayout("NPI", "npi"),
                    ColumnLayout("MPA", "mpa"),
                    ColumnLayout("DEAD_IND", "dead_ind", .flag),
                ], derived: [npiValid(13)], key: ["me_number"])
        ])

    static let crmAccounts = FeedLayout(
        feed: "crm_accounts", format: .jsonLines,
        tables: [
            TableLayout(
                name: "crm_accounts",
                columns: [
                    ColumnLayout("Id", "account_id", nullable: false),
                    ColumnLayout("NPI_vod__c", "npi"),
                    ColumnLayout("FirstName", "first_name"),
                    ColumnLayout("LastName", "last_name"),
                    ColumnLayout("Specialty_1_vod__c", "specialty"),
                    ColumnLayout("Primary_Address_Line_1", "address_line1"),
                    ColumnLayout("City", "city"),
                    ColumnLayout("State", "state"),
                    ColumnLayout("Zip", "zip"),
                    ColumnLayout("Territory_vod__c", "territory_id"),
                    ColumnLayout("IsDeleted", "is_deleted", .flag),
                    ColumnLayout("LastModifiedDate", "last_modified", .timestamp),
                ], derived: [npiValid(1)], key: ["account_id"])
        ])

    static let alignment = FeedLayout(
        feed: "alignment", format: csv,
        tables: [
            TableLayout(
                name: "alignment",
                columns: [
                    ColumnLayout("ZIP", "zip", nullable: false, length: 5, digits: true),
                    ColumnLayout("TERRITORY_ID", "territory_id", nullable: false),
                    ColumnLayout("TERRITORY_NAME", "territory_name"),
                    ColumnLayout("DISTRICT", "district"),
                    ColumnLayout("REGION", "region"),
                    ColumnLayout("REP_ID", "rep_id"),
                    ColumnLayout("EFFECTIVE_DATE", "effective_date", .date(.iso)),
                ], key: ["zip"])
        ])

    static let xponent = FeedLayout(
        feed: "xponent", format: csv,
        tables: [
            TableLayout(
                name: "xponent",
                columns: [
                    ColumnLayout("PRESCRIBER_ID", "prescriber_id", nullable: false),
                    ColumnLayout("NPI", "npi"),
                    ColumnLayout("ME_NUMBER", "me_number"),
                    ColumnLayout("PRODUCT_NDC11", "ndc11", nullable: false, length: 11, digits: true),
                    ColumnLayout("WEEK_ENDING", "week_ending", .date(.iso), nullable: false),
                    ColumnLayout("NRX", "nrx", .decimal(places: 3), nullable: false),
                    ColumnLayout("TRX", "trx", .decimal(places: 3), nullable: false),
                    ColumnLayout("NQTY", "nqty", .decimal(places: 3)),
                    ColumnLayout("TQTY", "tqty", .decimal(places: 3)),
                ],
                derived: [
                    npiValid(1),
                    // TRx = NRx + refills, so TRX < NRX is flagged (kept, not silently fixed).
                    // Both are correctly rounded from exact thousandths, so comparing the doubles is exact.
                    DerivedColumn("trx_lt_nrx", .flag) { row, _ in
                        if case .real(let nrx) = row[5], case .real(let trx) = row[6] {
                            return .integer(trx < nrx ? 1 : 0)
                        }
                        return .integer(0)
                    },
                ],
                key: ["week_ending", "prescriber_id", "ndc11"],
                rowRule: { row in
                    if case .text(let week) = row[4], let day = FieldParsing.weekday(ofISO: week), day != 5 {
                        return ("WEEK_ENDING", "\(week) is a \(FieldParsing.weekdayNames[day]), not a Friday")
                    }
                    return nil
                })
        ])

    static let claims = FeedLayout(
        feed: "claims", format: pipe,
        tables: [
            TableLayout(
                name: "claims",
                columns: [
                    ColumnLayout("CLAIM_ID", "claim_id", nullable: false),
                    ColumnLayout("PATIENT_TOKEN", "patient_token"),
                    ColumnLayout("FILL_DATE", "fill_date", .date(.compact), nullable: false),
                    ColumnLayout("NDC11", "ndc11", nullable: false, length: 11, digits: true),
                    ColumnLayout("PRESCRIBER_NPI", "prescriber_npi"),
                    ColumnLayout("BIN", "bin"),
                    ColumnLayout("PCN", "pcn"),
                    ColumnLayout("GROUP_ID", "group_id"),
                    ColumnLayout("DAYS_SUPPLY", "days_supply", .integer),
                    ColumnLayout("QUANTITY", "quantity", .decimal(places: 3)),
                    ColumnLayout("CLAIM_STATUS", "claim_status", nullable: false, accepted: ["P", "R", "X"]),
                    ColumnLayout("REJECT_CODE", "reject_code"),
                    ColumnLayout("PATIENT_PAY", "patient_pay", .decimal(places: 2)),
                    ColumnLayout("REVERSES_CLAIM_ID", "reverses_claim_id"),
                ],
                derived: [npiValid(4)],
                key: ["claim_id"],
                rowRule: { row in
                    if case .text("X") = row[10], case .null = row[13] {
                        return ("REVERSES_CLAIM_ID", "a reversal (status X) must name the claim it reverses")
                    }
                    return nil
                })
        ])

    static let formulary = FeedLayout(
        feed: "formulary", format: .formularyXML,
        tables: [
            TableLayout(
                name: "formulary_payer",
                columns: [
                    ColumnLayout("asOf", "as_of", .date(.iso), nullable: false),
                    ColumnLayout("id", "payer_id", nullable: false),
                    ColumnLayout("name", "payer_name"),
                ], key: ["as_of", "payer_id"]),
            TableLayout(
                name: "formulary_pbm",
                columns: [
                    ColumnLayout("asOf", "as_of", .date(.iso), nullable: false),
                    ColumnLayout("id", "pbm_id", nullable: false),
                    ColumnLayout("name", "pbm_name"),
                    ColumnLayout("payer", "payer_id", nullable: false),
                ], key: ["as_of", "pbm_id", "payer_id"]),
            TableLayout(
                name: "formulary_plan",
                columns: [
                    ColumnLayout("asOf", "as_of", .date(.iso), nullable: false),
                    ColumnLayout("id", "plan_id", nullable: false),
                    ColumnLayout("name", "plan_name"),
                    ColumnLayout("payer", "payer_id", nullable: false),
                    ColumnLayout("pbm", "pbm_id"),
                    ColumnLayout("channel", "channel", accepted: ["COMMERCIAL", "MEDICARE_D", "MEDICAID", "VA_DOD"]),
                    ColumnLayout("lives", "lives", .integer),
                    ColumnLayout("state", "state"),
                ], key: ["as_of", "plan_id"]),
            TableLayout(
                name: "formulary_plan_key",
                columns: [
                    ColumnLayout("asOf", "as_of", .date(.iso), nullable: false),
                    ColumnLayout("plan", "plan_id", nullable: false),
                    ColumnLayout("bin", "bin", nullable: false),
                    ColumnLayout("pcn", "pcn"),
                    ColumnLayout("group", "group_id"),
                ], key: ["as_of", "plan_id", "bin", "pcn", "group_id"]),
            TableLayout(
                name: "formulary_coverage",
                columns: [
                    ColumnLayout("asOf", "as_of", .date(.iso), nullable: false),
                    ColumnLayout("plan", "plan_id", nullable: false),
                    ColumnLayout("ndc11", "ndc11", nullable: false, length: 11, digits: true),
                    ColumnLayout("tier", "tier", accepted: ["1", "2", "3", "4", "5", "6", "NC"]),
                    ColumnLayout("pa", "pa", .flag),
                    ColumnLayout("st", "st", .flag),
                    ColumnLayout("ql", "ql", .flag),
                    ColumnLayout("effective", "effective", .date(.iso)),
                ], key: ["as_of", "plan_id", "ndc11"]),
        ])

    static let rebates = FeedLayout(
        feed: "rebates", format: csv,
        tables: [
            TableLayout(
                name: "rebates",
                columns: [
                    ColumnLayout("INVOICE_ID", "invoice_id", nullable: false),
                    ColumnLayout("CONTRACT_ID", "contract_id"),
                    ColumnLayout("PAYER_ID", "payer_id", nullable: false),
                    ColumnLayout("PLAN_ID", "plan_id"),
                    ColumnLayout("NDC11", "ndc11", nullable: false, length: 11, digits: true),
                    ColumnLayout("QUARTER", "quarter", nullable: false),
                    ColumnLayout("UNITS", "units", .decimal(places: 3)),
                    ColumnLayout("WAC_AMOUNT", "wac_amount", .decimal(places: 2)),
                    ColumnLayout("REBATE_PCT", "rebate_pct", .decimal(places: 4)),
                    ColumnLayout("REBATE_AMOUNT", "rebate_amount", .decimal(places: 2)),
                ],
                key: ["invoice_id"],
                rowRule: { row in
                    if case .text(let quarter) = row[5] {
                        let parts = quarter.split(separator: "Q")
                        if parts.count != 2 || Int(parts[0]) == nil || !["1", "2", "3", "4"].contains(String(parts[1]))
                        {
                            return ("QUARTER", "not a quarter such as 2025Q1")
                        }
                    }
                    return nil
                })
        ])

    static let crmCalls = FeedLayout(
        feed: "crm_calls", format: .jsonLines,
        tables: [
            TableLayout(
                name: "crm_calls",
                columns: [
                    ColumnLayout("Id", "call_id", nullable: false),
                    ColumnLayout("Account_vod__c", "account_id", nullable: false),
                    ColumnLayout("Call_Date_vod__c", "call_date", .date(.iso), nullable: false),
                    ColumnLayout("Territory_vod__c", "territory_id"),
                    ColumnLayout("Rep_Id", "rep_id"),
                    ColumnLayout("Call_Type_vod__c", "call_type", accepted: ["Detail", "Virtual", "Lunch", "Group"]),
                    ColumnLayout("Detailed_Products_vod__c", "detailed_products"),
                    ColumnLayout("Samples", "samples", .integer),
                    ColumnLayout("Status_vod__c", "status", accepted: ["Submitted", "Saved"]),
                ], key: ["call_id"])
        ])

    static let emailEvents = FeedLayout(
        feed: "email_events", format: .jsonLines,
        tables: [
            TableLayout(
                name: "email_events",
                columns: [
                    ColumnLayout("event_id", "event_id", nullable: false),
                    ColumnLayout(
                        "event_type", "event_type", nullable: false,
                        accepted: ["sent", "delivered", "open", "click", "bounce", "unsubscribe"]),
                    ColumnLayout("ts", "ts", .timestamp, nullable: false),
                    ColumnLayout("campaign_id", "campaign_id", nullable: false),
                    ColumnLayout("audience", "audience", nullable: false, accepted: ["HCP", "CONSUMER"]),
                    ColumnLayout("recipient_hash", "recipient_hash"),
                    ColumnLayout("npi", "npi"),
                    ColumnLayout("url", "url"),
                ], key: ["event_id"])
        ], latestWins: false)

    static let webSessions = FeedLayout(
        feed: "web_sessions", format: csv,
        tables: [
            TableLayout(
                name: "web_sessions",
                columns: [
                    ColumnLayout("session_id", "session_id", nullable: false),
                    ColumnLayout("date", "date", .date(.iso), nullable: false),
                    ColumnLayout(
                        "channel", "channel", accepted: ["organic", "paid_search", "email", "display", "referral"]),
                    ColumnLayout("landing_page", "landing_page"),
                    ColumnLayout("pages", "pages", .integer),
                    ColumnLayout("duration_s", "duration_s", .integer),
                    ColumnLayout("copay_card_signup", "copay_card_signup", .flag),
                    ColumnLayout("dma_code", "dma_code"),
                    ColumnLayout("device", "device"),
                ], key: ["session_id"])
        ])

    static let media = FeedLayout(
        feed: "media", format: csv,
        tables: [
            TableLayout(
                name: "media",
                columns: [
                    ColumnLayout("WEEK_ENDING", "week_ending", .date(.iso), nullable: false),
                    ColumnLayout("DMA_CODE", "dma_code", nullable: false),
                    ColumnLayout("DMA_NAME", "dma_name"),
                    ColumnLayout(
                        "CHANNEL", "channel", nullable: false, accepted: ["RADIO", "TV", "DISPLAY", "SOCIAL"]),
                    ColumnLayout("CAMPAIGN_ID", "campaign_id", nullable: false),
                    ColumnLayout("GRPS", "grps", .decimal(places: 3)),
                    ColumnLayout("IMPRESSIONS", "impressions", .integer),
                    ColumnLayout("SPEND_USD", "spend_usd", .decimal(places: 2)),
                ], key: ["week_ending", "dma_code", "channel", "campaign_id"])
        ])

    static let partdColumns: [ColumnLayout] = [
        ColumnLayout("Prscrbr_NPI", "prscrbr_npi", nullable: false, length: 10, digits: true),
        ColumnLayout("Prscrbr_Last_Org_Name", "prscrbr_last_org_name"),
        ColumnLayout("Prscrbr_First_Name", "prscrbr_first_name"),
        ColumnLayout("Prscrbr_City", "prscrbr_city"),
        ColumnLayout("Prscrbr_State_Abrvtn", "prscrbr_state_abrvtn"),
        ColumnLayout("Prscrbr_State_FIPS", "prscrbr_state_fips"),
        ColumnLayout("Prscrbr_Type", "prscrbr_type"),
        ColumnLayout("Prscrbr_Type_Src", "prscrbr_type_src"),
        ColumnLayout("Brnd_Name", "brnd_name", nullable: false),
        ColumnLayout("Gnrc_Name", "gnrc_name", nullable: false),
        ColumnLayout("Tot_Clms", "tot_clms", .integer),
        ColumnLayout("Tot_30day_Fills", "tot_30day_fills", .decimal(places: 3)),
        ColumnLayout("Tot_Day_Suply", "tot_day_suply", .integer),
        ColumnLayout("Tot_Drug_Cst", "tot_drug_cst", .decimal(places: 2)),
        ColumnLayout("Tot_Benes", "tot_benes", .integer),
        ColumnLayout("GE65_Sprsn_Flag", "ge65_sprsn_flag"),
        ColumnLayout("GE65_Tot_Clms", "ge65_tot_clms", .integer),
        ColumnLayout("GE65_Tot_30day_Fills", "ge65_tot_30day_fills", .decimal(places: 3)),
        ColumnLayout("GE65_Tot_Drug_Cst", "ge65_tot_drug_cst", .decimal(places: 2)),
        ColumnLayout("GE65_Tot_Day_Suply", "ge65_tot_day_suply", .integer),
        ColumnLayout("GE65_Bene_Sprsn_Flag", "ge65_bene_sprsn_flag"),
        ColumnLayout("GE65_Tot_Benes", "ge65_tot_benes", .integer),
    ]

    /// The data year a Part D file's name gives: CMS's `DYnn` token (`MUP_DPR_RY26_P04_V10_DY24_NPIBN.csv` →
    /// 2024; `RYnn` is the release year, not the data's), else the first run of exactly four digits that reads as
    /// a year 1900–2099 (`partd_2024.csv`).
    static func dataYear(fileName: String) -> Int64? {
        // Computed for every row of the file: bytes, not Characters.
        let bytes = Array(fileName.utf8)
        func isAlphanumeric(_ b: UInt8) -> Bool { (b | 0x20) &- 0x61 < 26 || b &- 0x30 < 10 }
        var i = 0
        while i + 4 <= bytes.count {
            if bytes[i] | 0x20 == UInt8(ascii: "d"), bytes[i + 1] | 0x20 == UInt8(ascii: "y"),
                bytes[i + 2] &- 0x30 < 10, bytes[i + 3] &- 0x30 < 10,
                i == 0 || !isAlphanumeric(bytes[i - 1]), i + 4 == bytes.count || !isAlphanumeric(bytes[i + 4])
            {
                return 2000 + Int64(bytes[i + 2] - 0x30) * 10 + Int64(bytes[i + 3] - 0x30)
            }
            i += 1
        }
        var run: Int64 = 0
        var length = 0
        for byte in bytes + [0] {
            if byte >= 0x30 && byte <= 0x39 {
                run = run * 10 + Int64(byte - 0x30)
                length += 1
                continue
            }
            if length == 4 && (1900...2099).contains(run) { return run }
            run = 0
            length = 0
        }
        return nil
    }

    /// Part D's data year: a `Data_Year` (or `Year`) column when the file has one, else the file's name.
    static let partdYearColumn = ColumnLayout("Data_Year", "data_year", .integer, required: false, aliases: ["Year"])

    static let partd = FeedLayout(
        feed: "partd", format: csv,
        tables: [
            TableLayout(
                name: "partd", columns: partdColumns + [partdYearColumn],
                derived: [npiValid(0)], key: ["data_year", "prscrbr_npi", "brnd_name", "gnrc_name"],
                rowRule: { row in
                    if case .integer(let year) = row[partdColumns.count], !(1900...2099).contains(year) {
                        return ("Data_Year", "\(year) is not a data year (1900–2099)")
                    }
                    return nil
                },
                fileRule: { file, hasColumn in
                    guard !hasColumn("data_year"), dataYear(fileName: file) == nil else { return nil }
                    return "no data year: the file name \"\(file)\" carries none and the file has no Data_Year "
                        + "column. Name the file as CMS does (MUP_DPR_RY26_P04_V10_DY24_NPIBN.csv, where DY24 is "
                        + "the data year 2024) or partd_2024.csv, and deliver it again as a new batch"
                },
                fileNameDefaults: [
                    FileNameDefault(
                        column: "data_year",
                        missingReason: "no data year: Data_Year is empty on this row and the file name carries none"
                    ) { file in dataYear(fileName: file).map { .integer($0) } ?? .null }
                ])
        ])
}
