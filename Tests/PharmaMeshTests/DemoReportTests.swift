import Foundation
import Testing

@testable import pharma_mesh

/// The demo report's arithmetic: each phase's charts keep to the phase, numbers read as people write them.
struct DemoReportTests {
    @Test func numbersAreFormattedForPeople() {
        #expect(DemoFormat.money(36_021_161) == "$36,021,161")
        #expect(DemoFormat.money(999.6) == "$1,000")
        #expect(DemoFormat.count(1_234_567) == "1,234,567")
        #expect(DemoFormat.count(999) == "999")
        #expect(DemoFormat.count(-1000) == "-1,000")
        #expect(DemoFormat.number(12_345.6) == "12,346")
        #expect(DemoFormat.number(12.34) == "12.3")
        #expect(DemoFormat.number(0.0423) == "0.042")
        #expect(DemoFormat.number(.nan) == "–")
    }

    /// Weekly, monthly and quarterly series over three years, cut at a launch on 2024-03-01: the launch is
    /// its first 26 weeks, growth the weeks to 104, maturity the rest, as the replay closes them.
    @Test func eachPhaseChartsOnlyItsOwnPeriod() {
        let launch = "2024-03-01"
        let launchEnd = DemoDates.adding(weeks: 26, to: launch)
        let growthEnd = DemoDates.adding(weeks: 104, to: launch)
        #expect(launchEnd == "2024-08-30" && growthEnd == "2026-02-27")
        let weeks = (0..<160).map { (DemoDates.adding(weeks: $0, to: "2024-01-05"), Double($0)) }
        let months = (0..<36).map { ("\(2024 + $0 / 12)-\(String(format: "%02d", $0 % 12 + 1))", Double($0)) }
        let quarters = (0..<12).map { ("\(2024 + $0 / 4)Q\($0 % 4 + 1)", Double($0)) }
        let phases = [(launch, launchEnd), (launchEnd, growthEnd), (growthEnd, nil as String?)]

        for (from, to) in phases {
            let kept = DemoReport.window(weeks, from: from, to: to)
            #expect(!kept.isEmpty)
            let end = to ?? "9999-12-31"
            #expect(kept.allSatisfy { point in point.0 >= from && point.0 < end }, "\(from)")
        }
        // The launch charts start at the launch, not at the first delivery, and the phases share no week.
        #expect(DemoReport.window(weeks, from: launch, to: launchEnd).first?.0 == "2024-03-01")
        #expect(DemoReport.window(weeks, from: launch, to: launchEnd).count == 26)
        let all = phases.flatMap { DemoReport.window(weeks, from: $0.0, to: $0.1).map(\.0) }
        #expect(all.count == Set(all).count && all == weeks.map(\.0).filter { $0 >= launch })

        // A month or a quarter counts where any of its days does.
        let launchMonths = DemoReport.window(months, from: launch, to: launchEnd).map(\.0)
        #expect(launchMonths == ["2024-03", "2024-04", "2024-05", "2024-06", "2024-07", "2024-08"])
        #expect(DemoReport.window(quarters, from: growthEnd, to: nil).map(\.0).first == "2026Q1")
        #expect(DemoReport.window(quarters, from: launch, to: launchEnd).map(\.0) == ["2024Q1", "2024Q2", "2024Q3"])
        // Labels that are not dates (deciles) are kept whole.
        #expect(DemoReport.window([("10", 4), ("9", 7)], from: launch, to: launchEnd).count == 2)
        #expect(
            DemoReport.period(DemoPhase(name: "Launch", start: launch, end: launchEnd)) == "2024-03-01 to 2024-08-29")
    }
}
