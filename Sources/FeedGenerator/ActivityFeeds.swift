import Foundation

extension Generation {
    /// The glossary's deciles over expected basket volume: writers ranked by weekly TRx (ties by index), decile
    /// = 10 − floor(cumulative share before × 10); non-writers 0. Calls and the truth file use it.
    func deciles() -> [Int] {
        let writers = physicians.filter { $0.size > 0 }.sorted { ($0.size, -$0.index) > ($1.size, -$1.index) }
        let total = writers.reduce(0) { $0 + $1.size }
        var result = [Int](repeating: 0, count: physicians.count)
        var before = 0.0
        for p in writers {
            result[p.index] = min(10, max(1, 10 - Int((before / total * 10).rounded(.down))))
            before += p.size
        }
        return result
    }

    /// The territory of a ZIP on a day, following the alignment file (a 2025 realignment moves every 50th ZIP).
    func territory(ofZip zip: Int, onDay day: Int) -> Int {
        return day >= Day.ofMonth(12) && zip % 50 == 7
            ? (zips[zip].territory + 1) % territoryCount : zips[zip].territory
    }

    /// Field calls, daily on working days, by the rep of the physician's territory.
    ///
    /// Launch: calls start on decile 9–10 targets and widen to decile 7–8 by month 3. Growth: decile 7–10 targets
    /// get about 3 calls a month (heaviest most), with occasional calls further down. Maturity: about 2 a month.
    func writeCalls() throws {
        var r = random.fork("calls")
        let decile = deciles()
        let accounts = physicians.filter { $0.inCRM && decile[$0.index] >= 4 }
        var callID = 0
        let out = DeliveryBuffer(self, feed: "crm_calls", header: nil, fileStem: "calls", fileExtension: "jsonl")
        for day in Timeline.launchDay..<Timeline.days where (day % 7) < 5 {
            let week = day / 7
            let phase = Timeline.phase(week: week)
            for p in accounts {
                if p.status == "deceased" && Day.ofMonth(changeMonth(p, 4)) < day { continue }
                if p.status == "retired" && Day.ofMonth(changeMonth(p, 3)) < day { continue }
                let d = decile[p.index]
                let perMonth: Double
                switch phase {
                case .launch:
                    let ramp = min(1, Double(week - 2) / 10)
                    perMonth = d >= 9 ? 1.5 + 1.5 * ramp : d >= 7 ? (week >= 10 ? 2.0 * ramp : 0) : 0
                case .growth: perMonth = d >= 9 ? 3.6 : d >= 7 ? 2.8 : 0.3
                case .maturity: perMonth = d >= 9 ? 2.4 : d >= 7 ? 1.9 : 0.15
                }
                guard perMonth > 0, r.chance(perMonth / 21.7) else { continue }
                callID += 1
                let t = territory(
                    ofZip: p.movedZip.map { changeMonth(p, 2) <= Timeline.month(ofDay: day) ? $0 : p.zip } ?? p.zip,
                    onDay: day)
                let type = r.pick(["Detail", "Detail", "Detail", "Detail", "Virtual", "Lunch", "Group"])
                let products =
                    phase == .maturity && r.chance(0.2)
                    ? "Zentavia;Gastrozol" : r.chance(0.1) ? "Zentavia;Acidrex" : "Zentavia"
                let status = r.chance(0.04) ? "Saved" : "Submitted"
                let samples = type == "Detail" || type == "Lunch" ? r.int(0..<(phase == .launch ? 8 : 4)) : 0
                let delivery = day + 1 + (r.chance(0.03) ? 1 + r.int(0..<3) : 0)  // late sync from the rep's device
                out.add(
                    "{\"Id\":\(json("a04" + String(callID).leftPad(12) + "AAA")),\"Account_vod__c\":\(json(p.crmID)),"
                        + "\"Call_Date_vod__c\":\(json(Day.iso(day))),\"Territory_vod__c\":\(json("T" + String(t + 1).leftPad(3))),"
                        + "\"Rep_Id\":\(json("REP" + String(t + 1).leftPad(4))),\"Call_Type_vod__c\":\(json(type)),"
                        + "\"Detailed_Products_vod__c\":\(json(products)),\"Samples\":\(samples),"
                        + "\"Status_vod__c\":\(json(status))}", deliveredOn: delivery)
            }
            try out.flush(before: day - 7)
        }
        try out.finish()
        keys("crm_calls", callID)
        progress("crm_calls: \(callID) calls")
    }

    /// Approved email: HCP and consumer campaigns; some events arrive late (up to 3 days) and some twice.
    func writeEmail() throws {
        var r = random.fork("email")
        let hcps = physicians.filter { $0.inCRM && $0.size > 0 }
        let out = DeliveryBuffer(
            self, feed: "email_events", header: nil, fileStem: "email_events", fileExtension: "jsonl")
        var eventID = 0
        var campaignEvents = 0
        for day in Timeline.launchDay..<Timeline.days {
            let phase = Timeline.phase(week: day / 7)
            let scale = activity
            let hcpSends = r.poisson((phase == .launch ? 3 : phase == .growth ? 1.5 : 0.5) * scale)
            let consumerSends = r.poisson((phase == .launch ? 5 : phase == .growth ? 3 : 1) * scale)
            let quarter = day / 91
            for audience in ["HCP", "CONSUMER"] {
                let sends = audience == "HCP" ? hcpSends : consumerSends
                let campaign = "ZEN-\(audience == "HCP" ? "HCP" : "DTC")-\(String(quarter + 1).leftPad(2))"
                for _ in 0..<sends {
                    let p = audience == "HCP" && !hcps.isEmpty ? hcps[r.int(0..<hcps.count)] : nil
                    let recipient = hexHash(p.map { "hcp\($0.index)" } ?? "consumer\(r.int(0..<1_000_000))", length: 24)
                    let npi = p.map { $0.index % 5 == 0 ? "" : $0.npi } ?? ""
                    var types = ["sent"]
                    if r.chance(0.04) {
                        types.append("bounce")
                    } else {
                        types.append("delivered")
                        let openRate = phase == .launch ? 0.27 : phase == .growth ? 0.22 : 0.17
                        if r.chance(openRate) {
                            types.append("open")
                            if r.chance(0.16) { types.append("click") }
                        }
                        if r.chance(0.003) { types.append("unsubscribe") }
                    }
                    for (k, type) in types.enumerated() {
                        eventID += 1
                        let ts =
                            "\(Day.iso(day))T\(String(9 + k * 2 + r.int(0..<3)).leftPad(2)):\(String(r.int(0..<60)).leftPad(2)):00-05:00"
                        let url =
                            type == "click"
                            ? "https://www.zentavia.example/\(audience == "HCP" ? "hcp/dosing" : "savings")" : ""
                        let line =
                            "{\"event_id\":\(json("ev" + String(eventID).leftPad(10))),\"event_type\":\(json(type)),\"ts\":\(json(ts)),"
                            + "\"campaign_id\":\(json(campaign)),\"audience\":\(json(audience)),\"recipient_hash\":\(json(recipient)),"
                            + "\"npi\":\(audience == "HCP" && !npi.isEmpty ? json(npi) : "null"),\"url\":\(url.isEmpty ? "null" : json(url))}"
                        let delay = r.chance(0.05) ? 1 + r.int(0..<3) : 0
                        out.add(line, deliveredOn: day + 1 + delay)
                        if r.chance(0.01) { out.add(line, deliveredOn: day + 2 + delay) }  // delivered twice
                        campaignEvents += 1
                    }
                }
            }
            try out.flush(before: day - 12)
        }
        try out.finish()
        keys("email_events", campaignEvents)
        progress("email_events: \(campaignEvents) events")
    }

    /// Brand web sessions: rising through launch, peaking in growth, falling with NPP spend in maturity.
    func writeWeb() throws {
        var r = random.fork("web")
        let header = "session_id,date,channel,landing_page,pages,duration_s,copay_card_signup,dma_code,device"
        var session = 0
        let out = DeliveryBuffer(
            self, feed: "web_sessions", header: header, fileStem: "web_sessions", fileExtension: "csv")
        for day in Timeline.launchDay..<Timeline.days {
            let week = day / 7
            let base: Double =
                week < 26
                ? 8 + 17 * Double(week) / 26
                : week < 104 ? 25 + 10 * Double(week - 26) / 78 : 35 - 15 * Double(week - 104) / 52
            do {
                for _ in 0..<r.poisson(base * activity * 0.6) {
                    session += 1
                    let channel = r.pick([
                        "organic", "organic", "paid_search", "paid_search", "email", "display", "referral",
                    ])
                    let page = r.pick(["/", "/savings", "/about-zentavia", "/hcp", "/side-effects"])
                    let pages = 1 + r.poisson(2)
                    out.add(
                        csv([
                            "s" + String(session).leftPad(10), Day.iso(day), channel, page, String(pages),
                            String(20 + pages * r.int(10..<90)),
                            r.chance(page == "/savings" ? 0.12 : 0.02) ? "1" : "0",
                            String(500 + r.int(0..<Catalog.dmaNames.count)),
                            r.pick(["mobile", "mobile", "desktop", "tablet"]),
                        ]), deliveredOn: day + 1)
                }
            }
            try out.flush(before: day - 7)
        }
        try out.finish()
        keys("web_sessions", session)
        progress("web_sessions: \(session) sessions")
    }

    /// Paid media by DMA, channel and week: heavy at launch, falling through maturity.
    func writeMedia() throws {
        var r = random.fork("media")
        let header = "WEEK_ENDING,DMA_CODE,DMA_NAME,CHANNEL,CAMPAIGN_ID,GRPS,IMPRESSIONS,SPEND_USD"
        var rows = 0
        let dmas = min(Catalog.dmaNames.count, scale == .sample ? 10 : 20)
        for week in 1..<Timeline.weeks {
            let phase = Timeline.phase(week: week)
            let channels =
                phase == .launch
                ? ["TV", "RADIO", "DISPLAY", "SOCIAL"] : phase == .growth ? ["DISPLAY", "SOCIAL", "TV"] : ["SOCIAL"]
            let intensity = phase == .launch ? 1.0 : phase == .growth ? 0.5 : 0.15
            try batch(
                "media", day: Timeline.friday(week) + 5, file: "media_\(Day.compact(Timeline.friday(week))).csv",
                header: header
            ) { w in
                for d in 0..<dmas {
                    for channel in channels where !(channel == "TV" && phase == .growth && week % 4 != 0) {
                        let grps =
                            (channel == "TV" ? 120 : channel == "RADIO" ? 60 : 30) * intensity * (0.7 + 0.6 * r.unit())
                            / Double(1 + d / 5)
                        let impressions = Int(grps * 40_000)
                        let cpm = channel == "TV" ? 32.0 : channel == "RADIO" ? 12.0 : 8.0
                        w.line(
                            csv([
                                Day.iso(Timeline.friday(week)), String(500 + d), Catalog.dmaNames[d], channel,
                                "ZEN-\(channel)-\(phase.rawValue.uppercased())", decimal(grps, places: 2),
                                String(impressions),
                                decimal(Double(impressions) / 1_000 * cpm, places: 2),
                            ]))
                        rows += 1
                    }
                }
            }
        }
        keys("media", rows)
        progress("media: \(rows) rows")
    }

    /// The public Part D prescriber file, one per data year, as CMS publishes it (counts under 11 suppressed).
    func writePartD() throws {
        let header = [
            "Prscrbr_NPI", "Prscrbr_Last_Org_Name", "Prscrbr_First_Name", "Prscrbr_City", "Prscrbr_State_Abrvtn",
            "Prscrbr_State_FIPS",
            "Prscrbr_Type", "Prscrbr_Type_Src", "Brnd_Name", "Gnrc_Name", "Tot_Clms", "Tot_30day_Fills",
            "Tot_Day_Suply", "Tot_Drug_Cst",
            "Tot_Benes", "GE65_Sprsn_Flag", "GE65_Tot_Clms", "GE65_Tot_30day_Fills", "GE65_Tot_Drug_Cst",
            "GE65_Tot_Day_Suply",
            "GE65_Bene_Sprsn_Flag", "GE65_Tot_Benes",
        ].joined(separator: ",")
        var rows = 0
        for year in 0..<2 {
            try batch("partd", day: Day.ofMonth(12 * year + 16) + 14, file: "partd_\(2024 + year).csv", header: header)
            { w in
                for p in physicians where p.size > 0 {
                    for product in 0..<3 {
                        // Medicare Part D carries about 35% of the basket; a year's claims are summed.
                        let claims = Int(Double(partdCounts[p.index * 6 + year * 3 + product]) * 0.35 * 4)
                        guard claims >= 11 else { continue }
                        let zip = zips[p.zip]
                        let item = Catalog.products[product]
                        let benes = claims / 4
                        let ge65 = claims * 7 / 10
                        let suppressed = ge65 < 11
                        w.line(
                            csv([
                                p.npi, title(p.last), title(p.first), zip.city.capitalized, zip.state,
                                Catalog.stateFIPS[zip.state] ?? "",
                                Catalog.specialties[p.specialty].2, "S",
                                item.brand.capitalized, item.generic.capitalized, String(claims),
                                decimal(Double(claims) * 1.1, places: 1),
                                String(claims * 33), decimal(Double(claims) * 30 * (Double(item.wac) ?? 10), places: 2),
                                benes < 11 ? "" : String(benes),
                                suppressed ? "*" : "", suppressed ? "" : String(ge65),
                                suppressed ? "" : decimal(Double(ge65) * 1.1, places: 1),
                                suppressed ? "" : decimal(Double(ge65) * 30 * (Double(item.wac) ?? 10), places: 2),
                                suppressed ? "" : String(ge65 * 33),
                                benes * 7 / 10 < 11 ? "*" : "", benes * 7 / 10 < 11 ? "" : String(benes * 7 / 10),
                            ]))
                        rows += 1
                    }
                }
            }
        }
        keys("partd", rows)
        progress("partd: \(rows) rows in 2 yearly files")
    }

    func writeTruth() throws {
        let people = try FileWriter(root.appendingPathComponent("truth/physicians.csv"))
        people.line(
            "truth_id,npi,me_number,first_name,last_name,specialty,status,weekly_market_trx,decile,in_crm,territory_id")
        let decile = deciles()
        for p in physicians + extraAMA {
            people.line(
                csv([
                    p.truthID, p.index < physicianCount ? p.npi : "", p.me ?? "", p.first, p.last,
                    Catalog.specialties[p.specialty].2, p.status,
                    decimal(p.size, places: 3), String(p.index < physicianCount ? decile[p.index] : 0),
                    p.inCRM ? "1" : "0", "T\(String(zips[p.zip].territory + 1).leftPad(3))",
                ]))
        }
        people.close()
        let planMap = try FileWriter(root.appendingPathComponent("truth/plan_map.csv"))
        planMap.line("source,source_key,truth_plan_id")
        for plan in plans {
            planMap.line("formulary,\(plan.id),\(plan.id)")
            for t in plan.triples { planMap.line("claims,\(t.0)|\(t.1)|\(t.2),\(plan.id)") }
        }
        for t in Self.unresolvableTriples { planMap.line("claims,\(t.0)|\(t.1)|\(t.2),UNRESOLVED") }
        for id in rebatedPlans.sorted() { planMap.line("rebates,\(id),\(id)") }
        planMap.close()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(
            summaries.mapValues {
                [
                    "rows": $0.rows, "distinct_keys": $0.distinctKeys, "invalid_rows": $0.invalidRows,
                    "batches": $0.batches,
                ]
            }
        )
        .write(to: root.appendingPathComponent("truth/expected_counts.json"))
        let friday = Timeline.friday(Timeline.incidentWeek)
        let webDuplicate = DeliveryBuffer(
            self, feed: "web_sessions", header: nil, fileStem: "", fileExtension: ""
        ).deliveryDay(Self.duplicatedWebDay)
        let lateCRM = Self.lateCRMWeek * 7 + 2
        let first = "claims/\(Day.iso(friday + 4))/claims_\(Day.compact(friday)).txt"
        let second = "claims/\(Day.iso(friday + 6))/claims_\(Day.compact(friday))_redelivery.txt"
        try """
        # Staged incidents in these feeds

        There is exactly one staged incident in the main feeds:

        - **Broken claims delivery, then a corrected re-delivery** (growth phase, week ending \(Day.iso(friday))):
          `\(first)` carries three bad rows (line 2: QUANTITY `3O`, letter O for zero; line 3: FILL_DATE `20250230`,
          no such day; line 4: DAYS_SUPPLY `thirty`). Ingest quarantines those rows and warns; the rest of the batch
          loads. Two days later `\(second)` re-delivers the whole batch, corrected, with the same CLAIM_IDs; the
          latest delivery wins, so every key of the week is present after both land. `expected_counts.json` counts
          the three rows in `invalid_rows` and their keys in `distinct_keys` (the re-delivery supplies them).

        # Ordinary feed behaviour (not incidents)

        - **Restatements**: every Xponent batch carries the new week and restates about 5% of the rows of the four
          weeks before it; only rows whose values changed are re-sent (an unchanged row is not repeated), and the
          latest delivery of a key wins.
        - **Late and duplicate email events**: about 5% of events arrive one to three days late, about 1% twice
          (same `event_id`).
        - **Late claims**: about 3% of claims arrive in the following week's batch; reversals (status X) arrive
          after the claim they reverse and name it in REVERSES_CLAIM_ID.
        - **Unresolvable claims**: about 3% of claims carry a BIN/PCN/group that no formulary plan lists
          (`plan_map.csv` marks them `UNRESOLVED`).
        - **Late call syncs**: about 3% of calls arrive one to three days after the usual next-day delivery.
        - **A whole delivery twice**: the web_sessions delivery of \(Day.iso(webDuplicate)) arrives again, byte for
          byte, on \(Day.iso(webDuplicate + 1)) (same file name, its own batch folder). It is a new batch with the
          same content: its rows are counted in `rows` and `batches`, its keys once in `distinct_keys`.
        - **A late delivery**: the crm_accounts extract of \(Day.iso(lateCRM)) lands three days late, in folder
          \(Day.iso(lateCRM + 3)) (the file keeps its extract date), still before the next weekly extract.
        """.write(to: root.appendingPathComponent("truth/incidents.md"), atomically: true, encoding: .utf8)
        try """
        # Ground truth (never read by the pipeline)

        - `source_map.csv` (`source,source_id,truth_id`): every source record id seen in the feeds and the true
          physician (`TP…`) it belongs to. Sources: `nppes` (NPI; organisations, entity type 2, map to `TO…`),
          `ama` (ME_NUMBER), `crm` (crm_accounts Id), `xponent` (PRESCRIBER_ID), `claims` (PRESCRIBER_NPI; claims
          with an empty NPI carry no identifier and are not listed).
        - `plan_map.csv` (`source,source_key,truth_plan_id`): `formulary` plan id, `claims` BIN|PCN|GROUP
          (`UNRESOLVED` for triples no plan lists), `rebates` PLAN_ID (payer-level invoices have no plan id).
        - `physicians.csv`: one row per true person, with the decile of expected basket volume used by the call plan.
        - `expected_counts.json`: per feed, `rows` (data rows written, over all batches; formulary counts coverage
          elements), `batches`, `distinct_keys` after de-duplication and restatement (latest delivery wins) with the
          keys of feeds.md, except that `formulary` is keyed by as-of date × plan × ndc11 and `partd` by data year ×
          NPI × brand × generic, as the raw domains keep them; `invalid_rows` are rows made invalid on purpose.
        - `incidents.md`: the staged incident and the ordinary irregularities.
        """.write(to: root.appendingPathComponent("truth/README.md"), atomically: true, encoding: .utf8)
    }
}
