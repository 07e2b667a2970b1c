import MeshRuntime

/// What the marts share: their owner, the shape of their column lists, and SQL for exact sums and date keys.
enum Marts {
    static let owner = Owner(team: "commercial data warehouse", contact: "warehouse@pharma-mesh.example")

    static func columns(_ spec: [(String, String, String)]) -> [ColumnContract] {
        spec.map { ColumnContract($0.0, $0.1, $0.2) }
    }

    /// A volume with up to three decimals as an exact integer count of thousandths (`ROUND` then `CAST`), so sums
    /// never depend on the order rows are added in.
    static func milli(_ expression: String) -> String { "CAST(ROUND((\(expression)) * 1000) AS INTEGER)" }
    /// An amount in USD as exact integer cents.
    static func cents(_ expression: String) -> String { "CAST(ROUND((\(expression)) * 100) AS INTEGER)" }
    /// `YYYYMMDD` as an integer, the key of `dim_date`.
    static func dateKey(_ isoDate: String) -> String { "CAST(REPLACE(\(isoDate), '-', '') AS INTEGER)" }
    /// The key of the Friday ending the week of an ISO date.
    static func weekKey(_ isoDate: String) -> String { dateKey("date(\(isoDate), 'weekday 5')") }
}
