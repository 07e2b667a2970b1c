import Foundation

extension Generation {
    struct RxRow {
        var physician: Int
        var product: Int
        var week: Int
        var trx: Double
        var nrx: Double
    }

    func binomial(_ n: Int, _ p: Double, _ r: inout SeededRandom) -> Int {
        var k = 0
        for _ in 0..<n where r.unit() < p { k += 1 }
        return k
    }

    /// Xponent-style weekly Rx (projected) and the pharmacy claims behind a share of them.
    func writeRxAndClaims() throws {
        var r = random.fork("rx")
        var claimRandom = random.fork("claims")
        let xHeader = "PRESCRIBER_ID,NPI,ME_NUMBER,PRODUCT_NDC11,WEEK_ENDING,NRX,TRX,NQTY,TQTY"
        let cHeader =
            "CLAIM_ID|PATIENT_TOKEN|FILL_DATE|NDC11|PRESCRIBER_NPI|BIN|PCN|GROUP_ID|DAYS_SUPPLY|QUANTITY|CLAIM_STATUS|REJECT_CODE|PATIENT_PAY|REVERSES_CLAIM_ID"
        var recent: [[RxRow]] = []
        var seenPrescriber = [Bool](repeating: false, count: physicians.count)
        var claimCounter = 0
        var carried: [String] = []  // late claims and reversals for the next batch
        var total = 0.0
        planCumulative = plans.map {
            total += Double($0.lives)
            return total
        }
        seenClaimNPI = [Bool](repeating: false, count: physicians.count)
        partdCounts = Array(repeating: 0, count: physicians.count * 6)
        let writers = physicians.filter { $0.size > 0 }
        let projection = physicians.map { 1.15 + Double(($0.index * 7_919) % 450) / 1_000 }

        for week in 0..<Timeline.weeks {
            let friday = Timeline.friday(week)
            let month = Timeline.month(ofDay: friday)
            let phase = Timeline.phase(week: week)
            let share = Timeline.ownShare(week: week)
            let genericShare =
                week < Timeline.genericWeek ? 0 : min(0.6, Double(week - Timeline.genericWeek + 1) / 30 * 0.6)
            let growth = 1 + 0.004 * Double(max(0, week - Timeline.genericWeek))
            var rows: [RxRow] = []
            var claims: [String] = []
            for p in writers {
                if p.status == "deceased" && Day.ofMonth(changeMonth(p, 4)) < friday { continue }
                if p.status == "retired" && Day.ofMonth(changeMonth(p, 3)) < friday { continue }
                let count = r.poisson(p.size * growth)
                guard count > 0 else { continue }
                let targeted = p.inCRM && p.size > 0.6
                let ownP = min(0.9, share * (targeted ? 1.6 : 0.6) * p.loyalty)
                let own = binomial(count, ownP, &r)
                let rest = count - own
                let acidrexAll = binomial(rest, 0.58, &r)
                let generic = binomial(acidrexAll, genericShare, &r)
                let counts = [own, acidrexAll - generic, rest - acidrexAll, generic]
                for (product, c) in counts.enumerated() where c > 0 {
                    let trx = Double(c) * projection[p.index]
                    let nrxShare = product == 0 && phase == .launch ? 0.72 : product == 0 ? 0.4 : 0.36
                    let nrx = min(trx, (trx * nrxShare * 1_000).rounded() / 1_000)
                    rows.append(RxRow(physician: p.index, product: product, week: week, trx: trx, nrx: nrx))
                    let year = friday < 366 ? 0 : friday < 731 ? 1 : 2
                    if year < 2 && product < 3 { partdCounts[p.index * 6 + year * 3 + product] += Int32(c) }
                    // Claims: a sub-national panel sees about a quarter of prescriptions.
                    for _ in 0..<c where claimRandom.chance(0.25) {
                        claimCounter += 1
                        let line = claimLine(
                            id: claimCounter, physician: p, product: product, friday: friday, month: month,
                            r: &claimRandom)
                        if claimRandom.chance(0.03) { carried.append(line.text) } else { claims.append(line.text) }
                        if line.paid && claimRandom.chance(0.02) {
                            claimCounter += 1
                            let fields = line.text.split(separator: "|", omittingEmptySubsequences: false).map(
                                String.init)
                            var reversal = fields
                            reversal[0] = "C\(String(claimCounter).leftPad(10))"
                            reversal[2] = Day.compact(friday + 3)
                            reversal[10] = "X"
                            reversal[11] = ""
                            reversal[12] = "0.00"
                            reversal[13] = fields[0]
                            carried.append(reversal.joined(separator: "|"))
                            keys("claims", 1)
                        }
                        keys("claims", 1)
                    }
                }
                if !seenPrescriber[p.index] {
                    seenPrescriber[p.index] = true
                    truth.line("xponent,\(p.prescriberID),\(p.truthID)")
                }
            }
            // Xponent: the new week, and restated rows of the four weeks before (only rows whose values changed).
            // `recent` holds the latest delivered values, so a restatement always differs from what it replaces.
            var restated: [RxRow] = []
            for k in recent.indices {
                for i in recent[k].indices where r.chance(0.05) {
                    let row = recent[k][i]
                    var changed = row
                    changed.trx = (row.trx * (0.95 + 0.1 * r.unit()) * 1_000).rounded() / 1_000
                    if changed.trx == row.trx { changed.trx += 0.001 }
                    changed.nrx = min(changed.trx, row.nrx)
                    restated.append(changed)
                    recent[k][i] = changed
                }
            }
            try batch("xponent", day: friday + 3, file: "xponent_weekly_\(Day.compact(friday)).csv", header: xHeader) {
                w in
                for row in rows + restated { w.line(xponentLine(row)) }
            }
            keys("xponent", rows.count)
            recent.append(rows)
            if recent.count > 4 { recent.removeFirst() }

            // Claims: this week's, plus last week's late arrivals and reversals.
            // The last week carries nothing over: every counted claim is delivered.
            let previouslyCarried = week == 0 ? [] : carriedFromLastWeek
            let isLast = week == Timeline.weeks - 1
            carriedFromLastWeek = isLast ? [] : carried
            let delivered = previouslyCarried + claims + (isLast ? carried : [])
            carried = []
            let day = friday + 4
            if week == Timeline.incidentWeek {
                // The staged incident: a delivery with a few broken rows, then a corrected re-delivery two days later.
                try batch("claims", day: day, file: "claims_\(Day.compact(friday)).txt", header: cHeader) { w in
                    for (i, line) in delivered.enumerated() { w.line(i < 3 ? corrupt(line, i) : line) }
                }
                summaries["claims", default: FeedSummary()].invalidRows += min(3, delivered.count)
                try batch("claims", day: day + 2, file: "claims_\(Day.compact(friday))_redelivery.txt", header: cHeader)
                { w in
                    for line in delivered { w.line(line) }
                }
            } else {
                try batch("claims", day: day, file: "claims_\(Day.compact(friday)).txt", header: cHeader) { w in
                    for line in delivered { w.line(line) }
                }
            }
            if week % 13 == 12 { progress("xponent and claims: week \(week + 1) of \(Timeline.weeks)") }
        }
        progress("xponent: \(summaries["xponent"]!.rows) rows; claims: \(summaries["claims"]!.rows) rows")
    }

    func xponentLine(_ row: RxRow) -> String {
        let p = physicians[row.physician]
        // Every prescriber id carries an NPI or an ME number (Xponent rows carry no names to match on).
        let npi = (p.index * 3 + 1) % 100 < 75 || p.me == nil ? p.npi : ""
        let me = p.me != nil && ((p.index * 7 + 2) % 100 < 60 || npi.isEmpty) ? p.me! : ""
        let pack = row.product == 3 ? 30.0 : 30.0
        return [
            p.prescriberID, npi, me, Catalog.products[row.product].ndc, Day.iso(Timeline.friday(row.week)),
            decimal(row.nrx, places: 3),
            decimal(row.trx, places: 3), decimal(row.nrx * pack, places: 3), decimal(row.trx * pack, places: 3),
        ].joined(separator: ",")
    }

    func claimLine(
        id: Int, physician p: TruePhysician, product: Int, friday: Int, month: Int, r: inout SeededRandom
    ) -> (text: String, paid: Bool) {
        // A plan drawn in proportion to its lives (binary search over the running totals).
        let target = r.unit() * planCumulative.last!
        var lo = 0
        var hi = planCumulative.count - 1
        while lo < hi {
            let mid = (lo + hi) / 2
            if planCumulative[mid] > target { hi = mid } else { lo = mid + 1 }
        }
        let chosen = lo
        let plan = plans[chosen]
        var triple = plan.triples[r.int(0..<plan.triples.count)]
        if r.chance(0.03) { triple = Self.unresolvableTriples[r.int(0..<Self.unresolvableTriples.count)] }
        var status = "P"
        var reject = ""
        var tier =
            product == 0
            ? ownCoverage(plan, month: month).0 : product == 3 ? "1" : product == 1 ? (month >= 24 ? "3" : "2") : "3"
        if product == 0 {
            let (t, pa, _) = ownCoverage(plan, month: month)
            tier = t
            if t == "NC" && r.chance(0.85) {
                (status, reject) = ("R", "70")
            } else if pa && r.chance(month >= 24 ? 0.6 : 0.4) {  // payers enforce PA harder once the generic is in
                (status, reject) = ("R", "75")
            } else if r.chance(0.015) {
                (status, reject) = ("R", "76")
            }
        } else if r.chance(0.02) {
            (status, reject) = ("R", "76")
        }
        let days = r.chance(0.2) ? 90 : 30
        let pay: Double = status == "R" ? 0 : (["1": 5.0, "2": 15.0, "3": 35.0, "4": 60.0, "NC": 140.0][tier] ?? 35.0)
        if status == "P" && product == 0 {
            let quarter = min(11, month / 3)
            ownUnits[chosen][quarter] += Double(days)
        }
        let npi = (p.index + id) % 100 < 97 ? p.npi : ""
        if !npi.isEmpty && !seenClaimNPI[p.index] {
            seenClaimNPI[p.index] = true
            truth.line("claims,\(npi),\(p.truthID)")
        }
        let fields = [
            "C\(String(id).leftPad(10))", hexHash("patient\(p.index)-\(id % 7)", length: 20),
            Day.compact(friday - r.int(0..<7)),
            Catalog.products[product].ndc, npi, triple.0, triple.1, triple.2, String(days),
            decimal(Double(days), places: 3), status,
            reject, decimal(pay * Double(days) / 30, places: 2), "",
        ]
        return (fields.joined(separator: "|"), status == "P")
    }

    /// Routing triples that no formulary plan lists (discount cards, plans outside the vendor's file): they recur,
    /// as a real unknown plan would, and never resolve.
    static let unresolvableTriples: [(String, String, String)] = (0..<12).map {
        ("99\(String(4_000 + $0 * 37))", ["UNK", "DSC", "CASH"][$0 % 3], "X\(String(900 + $0 * 7))")
    }

    func corrupt(_ line: String, _ i: Int) -> String {
        var fields = line.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
        switch i {
        case 0: fields[9] = "3O"  // letter O for zero
        case 1: fields[2] = "20250230"
        default: fields[8] = "thirty"
        }
        return fields.joined(separator: "|")
    }

    /// Manufacturer rebate invoices, quarterly, about 45 days after each quarter; gross-to-net rises with maturity.
    func writeRebates() throws {
        var r = random.fork("rebates")
        let header = "INVOICE_ID,CONTRACT_ID,PAYER_ID,PLAN_ID,NDC11,QUARTER,UNITS,WAC_AMOUNT,REBATE_PCT,REBATE_AMOUNT"
        var invoice = 0
        for quarter in 0..<11 {
            let label = "\(2024 + quarter / 4)Q\(quarter % 4 + 1)"
            let basePct =
                quarter < 2
                ? 0.12 : quarter < 8 ? 0.16 + 0.015 * Double(quarter - 2) : 0.30 + 0.025 * Double(quarter - 8)
            try batch("rebates", day: Day.ofMonth(quarter * 3 + 4) + 14, file: "rebates_\(label).csv", header: header) {
                w in
                var payerLevel: [Int: (Double, Double)] = [:]
                for (i, plan) in plans.enumerated() where ownUnits[i][quarter] > 0 {
                    let units = ownUnits[i][quarter] * 4  // the panel sees a quarter of the market
                    let wac = units * 14.25
                    let pct = min(0.45, basePct + (plan.channel == "MEDICAID" ? 0.08 : 0) + 0.02 * r.unit())
                    if plan.payer % 5 == 0 {
                        let (u, a) = payerLevel[plan.payer] ?? (0, 0)
                        payerLevel[plan.payer] = (u + units, a + wac)
                        continue
                    }
                    invoice += 1
                    rebatedPlans.insert(plan.id)
                    w.line(
                        csv([
                            "INV\(String(invoice).leftPad(7))", "K\(plan.payer + 1)-\(2024 + quarter / 4)",
                            payers[plan.payer].id, plan.id,
                            Catalog.products[0].ndc, label, decimal(units, places: 3), decimal(wac, places: 2),
                            decimal(pct, places: 4),
                            decimal(wac * pct, places: 2),
                        ]))
                }
                for payer in payerLevel.keys.sorted() {
                    let (units, wac) = payerLevel[payer]!
                    invoice += 1
                    let pct = basePct + 0.01
                    w.line(
                        csv([
                            "INV\(String(invoice).leftPad(7))", "K\(payer + 1)-\(2024 + quarter / 4)", payers[payer].id,
                            "", Catalog.products[0].ndc,
                            label, decimal(units, places: 3), decimal(wac, places: 2), decimal(pct, places: 4),
                            decimal(wac * pct, places: 2),
                        ]))
                }
            }
        }
        keys("rebates", invoice)
        progress("rebates: \(invoice) invoices")
    }
}
