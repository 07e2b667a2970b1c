import MeshRuntime

/// The lookups the marts' facts go through, declared once: the physician cross-walk, the product and plan
/// keys. Each fact's SELECT joins them by name (`{lookup:NAME}`), and its change detection compares them.
enum MartLookups {
    /// A claim's BIN|PCN|GROUP, the key payer-master's plan cross-walk maps claims by.
    static let claimKey: RowExpression =
        "COALESCE({bin}, '') || '|' || COALESCE({pcn}, '') || '|' || COALESCE({group_id}, '')"

    /// The physician a source's id belongs to, through physician-master's cross-walk (alias `m`). The
    /// cross-walk logs its changes, so a weekly build compares only the ids it changed.
    static func physician(
        _ name: String, source: String, input: RowExpression, join: Lookup.Join = .left
    ) -> Lookup {
        Lookup(
            name, table: "physician_master.physician_xref", alias: "m", key: "source_id", value: "physician_id",
            filter: RowExpression("{source} = '\(source)'"), input: input, join: join, logged: true)
    }

    /// The product of an NDC11 (alias `p`); the unknown member (key 0) maps no NDC.
    static func product(input: RowExpression) -> Lookup {
        Lookup(
            "product", table: "dim_product", alias: "p", key: "ndc11", value: "product_key",
            filter: "{product_key} <> 0", input: input)
    }

    /// The plan key of a claim's BIN|PCN|GROUP, through payer-master's cross-walk (alias `x`) and the stable
    /// plan keys (alias `k`); 0 for a cross-walk entry without a plan.
    static let plan = Lookup(
        "plan", table: "payer_master.plan_xref", alias: "x", key: "source_key", value: "COALESCE({plan_key}, 0)",
        filter: "{source} = 'claims'", input: claimKey,
        through: .init("conformed_dims.plan_key_map", alias: "k", key: "plan_id", matches: "plan_id"))
}
