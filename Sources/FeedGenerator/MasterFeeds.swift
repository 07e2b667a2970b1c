import Foundation

extension Generation {
    func writeProducts() throws {
        let header =
            "NDC11,BRAND_NAME,GENERIC_NAME,MARKET,MANUFACTURER,IS_OWN_BRAND,LAUNCH_DATE,WAC_PER_UNIT,UNITS_PER_PACK"
        func row(
            _ p: (
                ndc: String, brand: String, generic: String, manufacturer: String, own: Bool, launch: String,
                wac: String, pack: Int
            )
        ) -> String {
            csv([
                p.ndc, p.brand, p.generic, Catalog.market, p.manufacturer, p.own ? "Y" : "N", p.launch, p.wac,
                String(p.pack),
            ])
        }
        try batch("products", day: 0, file: "products.csv", header: header) { w in
            for p in Catalog.products.prefix(3) { w.line(row(p)) }
        }
        try batch("products", day: Timeline.friday(Timeline.genericWeek), file: "products.csv", header: header) { w in
            for p in Catalog.products { w.line(row(p)) }
        }
        keys("products", Catalog.products.count)
        progress("products: 4 products in 2 deliveries")
    }

    static let nppesHeader = quotedCSV([
        "NPI", "Entity Type Code", "Provider Organization Name (Legal Business Name)",
        "Provider Last Name (Legal Name)",
        "Provider First Name", "Provider Middle Name", "Provider Name Suffix Text", "Provider Credential Text",
        "Provider First Line Business Practice Location Address",
        "Provider Business Practice Location Address City Name",
        "Provider Business Practice Location Address State Name",
        "Provider Business Practice Location Address Postal Code",
        "Healthcare Provider Taxonomy Code_1", "Provider Enumeration Date", "NPI Deactivation Date",
    ])

    func nppesRow(_ p: TruePhysician, moved: Bool, deactivated: Bool, r: inout SeededRandom) -> String {
        let (street, zip) = address(p, moved: moved)
        let type = Catalog.streetTypes[(p.index + (moved ? 1 : 0)) % Catalog.streetTypes.count]
        let postal = r.chance(0.5) ? zip9(zip, &r) : zip.code
        let deactivation = deactivated ? Day.monthDayYear(Day.ofMonth(changeMonth(p, 1)) + 3) : ""
        return quotedCSV([
            p.npi, "1", "", p.last, p.first, p.middle, "", p.credential, "\(street) \(type.1)", zip.city, zip.state,
            postal,
            Catalog.specialties[p.specialty].1, Day.monthDayYear(Day.ofMonth(0) - 400 - p.index % 3_000), deactivation,
        ])
    }

    /// Month 0 is a full extract; later months carry the records that changed (moves, deactivations).
    func writeNPPES() throws {
        var r = random.fork("nppes")
        let organisations = max(3, physicianCount / 20)
        var changes = [[Int]](repeating: [], count: 36)
        for p in physicians {
            if p.movedZip != nil { changes[changeMonth(p, 2)].append(p.index) }
            if p.status == "deactivated" { changes[changeMonth(p, 1)].append(p.index) }
        }
        try batch("nppes", day: Day.ofMonth(0) + 2, file: "npidata_pfile_20240101.csv", header: Self.nppesHeader) { w in
            for p in physicians {
                w.line(nppesRow(p, moved: false, deactivated: false, r: &r))
                truth.line("nppes,\(p.npi),\(p.truthID)")
            }
            for i in 0..<organisations {
                let nine = String(900_000_000 + i * 11)
                let npi = nine + String(npiCheckDigit(nine))
                let zip = zips[i % zips.count]
                truth.line("nppes,\(npi),TO\(String(i + 1).leftPad(7))")  // an organisation, not a physician
                w.line(
                    quotedCSV([
                        npi, "2", "\(r.pick(Catalog.cities)) MEDICAL GROUP \(i + 1)", "", "", "", "", "",
                        "1 CLINIC WAY", zip.city, zip.state, zip.code, "261QM1300X", "01/02/2010", "",
                    ]))
            }
        }
        keys("nppes", physicians.count + organisations)
        for month in 1..<36 where !changes[month].isEmpty {
            try batch(
                "nppes", day: Day.ofMonth(month) + 2, file: "npidata_pfile_\(Day.compact(Day.ofMonth(month))).csv",
                header: Self.nppesHeader
            ) { w in
                for index in Set(changes[month]).sorted() {
                    let p = physicians[index]
                    let moved = p.movedZip != nil && changeMonth(p, 2) <= month
                    let deactivated = p.status == "deactivated" && changeMonth(p, 1) <= month
                    w.line(nppesRow(p, moved: moved, deactivated: deactivated, r: &r))
                }
            }
        }
        progress("nppes: \(summaries["nppes"]!.rows) rows in \(summaries["nppes"]!.batches) monthly batches")
    }

    func amaRow(_ p: TruePhysician, quarter: Int, r: inout SeededRandom) -> String {
        var first = p.first
        var last = p.last
        let variant = (p.index * 13 + 7) % 100
        if variant < 12, let nick = Catalog.nicknames[first] { first = nick }
        if variant >= 12 && variant < 15 { last = typo(last, &r) }
        let moved = p.movedZip != nil && changeMonth(p, 2) / 3 <= quarter
        let (street, zip) = address(p, moved: moved)
        let type = Catalog.streetTypes[p.index % Catalog.streetTypes.count]
        let retired = p.status == "retired" && changeMonth(p, 3) / 3 <= quarter
        let dead = p.status == "deceased" && changeMonth(p, 4) / 3 <= quarter
        let npi = (p.index * 7) % 10 < 4 ? p.npi : ""
        let mpa =
            retired ? "RET" : p.size == 0 && p.index >= physicianCount ? "RES" : (p.index % 5 == 0 ? "HPR" : "OFF")
        let plus4 = r.chance(0.3) ? "-\(String(r.int(0..<9_999)).leftPad(4))" : ""
        var (line, city, code) = ("\(street.capitalized) \(type.0.capitalized)", zip.city, zip.code)
        if options.noise == .hard {
            let noisy = PersonNoise(
                p, source: "ama", seed: options.seed, first: first, last: last, street: line, city: city, zip: code,
                nickname: Catalog.nicknames[p.first], surnames: Catalog.lastNames)
            (first, last, line, city, code) = (noisy.first, noisy.last, noisy.street, noisy.city, noisy.zip)
        }
        return [
            p.me!, title(last), title(first), p.middle, "", String(p.birthYear), p.gender,
            Catalog.specialties[p.specialty].0, "", line, city.capitalized, zip.state,
            code.isEmpty ? "" : code + plus4, npi, mpa, dead ? "Y" : "",
        ].joined(separator: "|")
    }

    /// Quarter 0 is the full masterfile; later quarters carry changed records (deaths, retirements, moves).
    func writeAMA() throws {
        var r = random.fork("ama")
        let header =
            "ME_NUMBER|LAST_NAME|FIRST_NAME|MIDDLE_NAME|SUFFIX|BIRTH_YEAR|GENDER|PRIMARY_SPECIALTY|SECONDARY_SPECIALTY|MAILING_ADDRESS|CITY|STATE|ZIP|NPI|MPA|DEAD_IND"
        let people = physicians.filter { $0.me != nil } + extraAMA
        try batch("ama", day: 9, file: "ama_masterfile_2024Q1.txt", header: header) { w in
            for p in people {
                w.line(amaRow(p, quarter: 0, r: &r))
                truth.line("ama,\(p.me!),\(p.truthID)")
            }
        }
        keys("ama", people.count)
        for quarter in 1..<12 {
            let changed = physicians.filter { p in
                p.me != nil
                    && ((p.status == "retired" && changeMonth(p, 3) / 3 == quarter)
                        || (p.status == "deceased" && changeMonth(p, 4) / 3 == quarter)
                        || (p.movedZip != nil && changeMonth(p, 2) / 3 == quarter))
            }
            guard !changed.isEmpty else { continue }
            try batch(
                "ama", day: Day.ofMonth(quarter * 3) + 9,
                file: "ama_masterfile_\(2024 + quarter / 4)Q\(quarter % 4 + 1).txt", header: header
            ) { w in
                for p in changed { w.line(amaRow(p, quarter: quarter, r: &r)) }
            }
        }
        progress("ama: \(summaries["ama"]!.rows) rows in \(summaries["ama"]!.batches) quarterly batches")
    }

    func crmRow(_ p: TruePhysician, week: Int, r: inout SeededRandom) -> String {
        var first = title(p.first)
        var last = title(p.last)
        let variant = (p.index * 17 + 3) % 100
        if variant < 25, let nick = Catalog.nicknames[p.first] { first = title(nick) }
        if variant >= 25 && variant < 29 { last = title(typo(p.last, &r)) }
        if variant >= 29 && variant < 32 { swap(&first, &last) }
        if variant >= 32 && variant < 38 { last += " \(p.credential == "NP" ? "NP" : "MD")" }
        if variant >= 38 && variant < 42 { first = String(first.prefix(1)) + "." }  // an initial: W. for William
        let npiVariant = (p.index * 11 + 5) % 100
        var npi = npiVariant < (options.noise == .hard ? 40 : 65) ? p.npi : npiVariant < 90 ? "" : p.npi
        if npiVariant >= 90 {
            var digits = Array(npi)
            let i = 3 + p.index % 6
            digits[i] = digits[i] == "9" ? "0" : Character(String(Int(String(digits[i]))! + 1))
            npi = String(digits)
        }
        // Half the movers are still at the old address in CRM.
        let moved = p.movedZip != nil && changeMonth(p, 2) * 4 <= week && p.index % 2 == 0
        let (street, zip) = address(p, moved: moved)
        let specialty = Catalog.specialties[p.specialty].2
        let spelled = p.index % 3 == 0 ? (Catalog.crmSpecialtyVariants[specialty] ?? specialty) : specialty
        let territory = "T\(String(zip.territory + 1).leftPad(3))"
        var (line, city, code) = (street.capitalized + " St", zip.city.capitalized, zip.code)
        if options.noise == .hard {
            let noisy = PersonNoise(
                p, source: "crm", seed: options.seed, first: first.uppercased(), last: last.uppercased(), street: line,
                city: city.uppercased(), zip: code, nickname: Catalog.nicknames[p.first], surnames: Catalog.lastNames)
            (first, last, line, city, code) = (
                title(noisy.first), title(noisy.last), noisy.street, noisy.city.capitalized, noisy.zip
            )
        }
        let modified = "\(Day.iso(week * 7 + 2))T\(String(8 + p.index % 9).leftPad(2)):15:00Z"
        return
            "{\"Id\":\(json(p.crmID)),\"NPI_vod__c\":\(json(npi)),\"FirstName\":\(json(first)),\"LastName\":\(json(last)),"
            + "\"Specialty_1_vod__c\":\(json(spelled)),\"Primary_Address_Line_1\":\(json(line)),"
            + "\"City\":\(json(city)),\"State\":\(json(zip.state)),\"Zip\":\(json(code)),"
            + "\"Territory_vod__c\":\(json(territory)),\"IsDeleted\":\(p.status == "deceased" && week > changeMonth(p, 4) * 4 + 8),"
            + "\"LastModifiedDate\":\(json(modified))}"
    }

    /// Week 0 is the full account list; later weeks carry modified accounts.
    func writeCRMAccounts() throws {
        var r = random.fork("crm")
        let accounts = physicians.filter(\.inCRM)
        try batch("crm_accounts", day: 2, file: "accounts_20240103.jsonl", header: nil) { w in
            for p in accounts {
                w.line(crmRow(p, week: 0, r: &r))
                truth.line("crm,\(p.crmID),\(p.truthID)")
            }
        }
        keys("crm_accounts", accounts.count)
        for week in 1..<Timeline.weeks {
            let changed = accounts.filter {
                ($0.index + week * 7) % 97 == 0 || ($0.movedZip != nil && changeMonth($0, 2) * 4 == week)
            }
            guard !changed.isEmpty else { continue }
            // One extract lands three days late (the file keeps its extract date).
            try batch(
                "crm_accounts", day: week * 7 + 2 + (week == Self.lateCRMWeek ? 3 : 0),
                file: "accounts_\(Day.compact(week * 7 + 2)).jsonl", header: nil
            ) { w in
                for p in changed { w.line(crmRow(p, week: week, r: &r)) }
            }
        }
        progress(
            "crm_accounts: \(summaries["crm_accounts"]!.rows) rows in \(summaries["crm_accounts"]!.batches) weekly batches"
        )
    }

    /// Quarterly, the full ZIP → territory list; a realignment in 2025 moves some ZIPs.
    func writeAlignment() throws {
        let header = "ZIP,TERRITORY_ID,TERRITORY_NAME,DISTRICT,REGION,REP_ID,EFFECTIVE_DATE"
        let territories = Set(zips.map(\.territory)).count
        for quarter in 0..<12 {
            let effective = Day.ofMonth(quarter * 3)
            try batch(
                "alignment", day: max(0, effective - 3), file: "alignment_\(2024 + quarter / 4)Q\(quarter % 4 + 1).csv",
                header: header
            ) { w in
                for (i, zip) in zips.enumerated() {
                    let territory = quarter >= 4 && i % 50 == 7 ? (zip.territory + 1) % territories : zip.territory
                    let district = territory / 8
                    w.line(
                        csv([
                            zip.code, "T\(String(territory + 1).leftPad(3))",
                            "\(Catalog.cities[territory % Catalog.cities.count].capitalized) \(territory + 1)",
                            "D\(String(district + 1).leftPad(2))", "R\(district / 4 + 1)",
                            "REP\(String(territory + 1).leftPad(4))",
                            Day.iso(quarter >= 4 && i % 50 == 7 ? Day.ofMonth(12) : 0),
                        ]))
                }
            }
        }
        keys("alignment", zips.count)
        progress("alignment: \(zips.count) ZIPs, \(territories) territories, 12 quarterly files")
    }

    /// The own brand's coverage on a plan in a month: (tier, pa, st).
    func ownCoverage(_ plan: Plan, month: Int) -> (String, Bool, Bool) {
        if month >= plan.winMonth {
            let tight = month >= 24
            return ("3", tight && plan.tightenPA, tight && plan.tightenST)
        }
        let startsNC =
            plan.id.hasSuffix("1") || plan.id.hasSuffix("3") || plan.id.hasSuffix("5") || plan.id.hasSuffix("7")
            || plan.id.hasSuffix("9")
        if month < 6 && startsNC { return ("NC", false, false) }
        return ("4", true, month >= 24 && plan.tightenST)
    }

    func writeFormulary() throws {
        for month in 0..<36 {
            let asOf = Day.iso(Day.ofMonth(month))
            try batch(
                "formulary", day: Day.ofMonth(month), file: "formulary_\(Day.compact(Day.ofMonth(month))).xml",
                header: nil
            ) { w in
                w.line("<?xml version=\"1.0\" encoding=\"UTF-8\"?>")
                w.line("<formularyFile asOf=\"\(asOf)\">")
                for (p, payer) in payers.enumerated() {
                    w.line("  <payer id=\"\(payer.id)\" name=\"\(payer.name)\">")
                    let pbm = pbms[payer.pbm]
                    w.line("    <pbm id=\"\(pbm.id)\" name=\"\(pbm.name)\"/>")
                    for plan in plans where plan.payer == p {
                        let lives = plan.lives + (plan.lives / 200) * month
                        w.line(
                            "    <plan id=\"\(plan.id)\" name=\"\(plan.name)\" channel=\"\(plan.channel)\" lives=\"\(lives)\" state=\"\(plan.state)\">"
                        )
                        for t in plan.triples {
                            w.line("      <bin>\(t.0)</bin><pcn>\(t.1)</pcn><group>\(t.2)</group>")
                        }
                        let own = ownCoverage(plan, month: month)
                        var coverages = [
                            (Catalog.products[0].ndc, own.0, own.1, own.2),
                            (Catalog.products[1].ndc, month >= 24 ? "3" : "2", false, false),
                            (Catalog.products[2].ndc, "3", plan.lives % 3 == 0, false),
                        ]
                        if month >= 24 { coverages.append((Catalog.products[3].ndc, "1", false, false)) }
                        for c in coverages {
                            w.line(
                                "      <coverage ndc11=\"\(c.0)\" tier=\"\(c.1)\" pa=\"\(c.2 ? "Y" : "N")\" st=\"\(c.3 ? "Y" : "N")\" ql=\"N\" effective=\"\(asOf)\"/>"
                            )
                        }
                        w.line("    </plan>")
                    }
                    w.line("  </payer>")
                }
                w.line("</formularyFile>")
            }
            keys("formulary", plans.count * (month >= 24 ? 4 : 3))
        }
        summaries["formulary", default: FeedSummary()].rows = summaries["formulary"]!.distinctKeys
        progress("formulary: \(plans.count) plans, 36 monthly files")
    }
}
