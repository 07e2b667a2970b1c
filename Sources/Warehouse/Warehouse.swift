import MeshRuntime

/// The star-schema marts (npp-mart, physician-mart, payer-mart) and the conformed dimensions they share.
public enum WarehouseDomains {
    public static func all() -> [Domain] {
        var marts = [NPPMart.domain, PhysicianMart.domain, PayerMart.domain]
        // The marts' facts rebuild only the partitions that changed, on a copy of their previous version.
        for index in marts.indices { marts[index].buildsOnPreviousVersion = true }
        // What the marts' consumers expect (UTC): NPP activity lands daily, Rx and claims weekly (Xponent on
        // Friday or Saturday), formulary and rebates monthly.
        marts[0].freshness = FreshnessSLA(
            .daily, hour: 6, description: "daily by 06:00 UTC, after the NPP activity feeds")
        marts[1].freshness = FreshnessSLA(
            .weekly(weekday: 2), hour: 9, description: "by Monday 09:00 UTC, after the weekly Xponent delivery")
        marts[2].freshness = FreshnessSLA(
            .monthly(day: 5), hour: 9, description: "by the 5th of the month 09:00 UTC, after the monthly formulary")
        var conformed = ConformedDimensions.domain
        conformed.freshness = FreshnessSLA(.weekly(weekday: 2), hour: 8, description: "by Monday 08:00 UTC")
        for index in marts.indices {
            marts[index].outputs = marts[index].outputs.map { port in
                var port = port
                port.partition = port.grain.first(where: timeColumns.contains)
                return port
            }
        }
        return [conformed] + marts
    }

    /// The time columns of the marts' grains, by which their facts are partitioned (what `kitchen diff` counts
    /// rows by).
    static let timeColumns: Set<String> = ["week_ending", "month", "quarter", "date", "call_date", "year", "period"]
}
