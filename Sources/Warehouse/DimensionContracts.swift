import MeshRuntime

/// The physician, product, plan and geography dimensions' contracts, shared by the marts that copy them.
enum DimensionContracts {
    static let date = OutputPort(
        table: "dim_date", description: "Calendar days 2020–2030 (key 0: unknown)", grain: ["date_key"],
        columns: Marts.columns([
            ("date_key", "INTEGER", "YYYYMMDD"), ("date", "TEXT", "ISO date"),
            ("week_ending", "TEXT", "the Friday ending the day's week (Xponent weeks end on Fridays)"),
            ("week_key", "INTEGER", "date_key of week_ending"), ("month", "TEXT", "YYYY-MM"),
            ("quarter", "TEXT", "YYYYQn"), ("year", "INTEGER", "calendar year"),
            ("day_of_week", "INTEGER", "0 Sunday … 6 Saturday"),
        ]))
    static let product = OutputPort(
        table: "dim_product", description: "The market basket (key 0: unknown product)", grain: ["product_key"],
        columns: Marts.columns([
            ("product_key", "INTEGER", "the NDC11 as a number"), ("ndc11", "TEXT", "11 digits"),
            ("brand", "TEXT", "brand name"), ("generic", "TEXT", "generic (molecule) name"),
            ("market", "TEXT", "market basket"),
            ("manufacturer", "TEXT", "labeller"), ("is_own_brand", "INTEGER", "1 for Zentavia"),
            ("launch_date", "TEXT", "the product's launch date"), ("wac_per_unit", "REAL", "list price per unit, USD"),
        ]))
    static let physician = OutputPort(
        table: "dim_physician",
        description: "Golden physician records of one physician-master version (key 0: unknown physician)",
        grain: ["physician_key"],
        columns: Marts.columns([
            ("physician_key", "INTEGER", "= physician_id, stable across versions"),
            ("physician_id", "INTEGER", "physician-master's stable id"), ("npi", "TEXT", "10-digit NPI"),
            ("me_number", "TEXT", "AMA ME number"), ("first_name", "TEXT", "golden first name"),
            ("last_name", "TEXT", "golden last name (NPPES legal name)"),
            ("credential", "TEXT", "credential text (M.D., D.O., NP …)"), ("specialty", "TEXT", "normalised specialty"),
            ("city", "TEXT", "practice city"), ("state", "TEXT", "two-letter state"),
            ("zip5", "TEXT", "five-digit ZIP"),
            (
                "status", "TEXT",
                "active, deactivated, retired, deceased, or provisional (known only from Rx or claims ids)"
            ),
            ("is_prescriber", "INTEGER", "1 when the physician writes prescriptions in any source"),
            ("territory_id", "TEXT", "through the practice ZIP's alignment"),
            ("geo_key", "INTEGER", "dim_geo key of the practice ZIP"),
            ("master_version", "INTEGER", "the physician-master version this dimension was built from"),
            (
                "provider_type", "TEXT",
                "physician, nurse_practitioner, physician_assistant, pharmacist, dentist, other or unknown"
            ),
        ]))
    static let geo = OutputPort(
        table: "dim_geo", description: "ZIP codes with their alignment (key 0: unknown)", grain: ["geo_key"],
        columns: Marts.columns([
            ("geo_key", "INTEGER", "the ZIP5 as a number"), ("zip5", "TEXT", "five-digit ZIP"),
            ("state", "TEXT", "the state most physicians practising in the ZIP give"),
            ("territory_id", "TEXT", "sales territory id"), ("territory_name", "TEXT", "territory name"),
            ("district", "TEXT", "sales district"),
            ("region", "TEXT", "sales region"),
            ("dma_code", "TEXT", "no feed maps ZIPs to DMAs, so NULL until one does (see dim_dma)"),
        ]))
    static let plan = OutputPort(
        table: "dim_plan", description: "Plans with payer and PBM (key 0: unknown or unresolved plan)",
        grain: ["plan_key"],
        columns: Marts.columns([
            ("plan_key", "INTEGER", "stable surrogate: kept across versions, new plans get the next numbers"),
            ("plan_id", "TEXT", "formulary plan id"), ("plan_name", "TEXT", "plan name"),
            ("payer_id", "TEXT", "formulary payer id"),
            ("payer_name", "TEXT", "payer name"), ("pbm_id", "TEXT", "pharmacy benefit manager id"),
            ("pbm_name", "TEXT", "PBM name"),
            ("channel", "TEXT", "COMMERCIAL, MEDICARE_D, MEDICAID or VA_DOD"), ("lives", "INTEGER", "covered lives"),
            ("state", "TEXT", "two-letter state"),
        ]))
    static let dma = OutputPort(
        table: "dim_dma", description: "Nielsen-style TV markets media is bought in (key 0: unknown)",
        grain: ["dma_key"],
        columns: Marts.columns([
            ("dma_key", "INTEGER", "the DMA code as a number"), ("dma_code", "TEXT", "DMA code"),
            ("dma_name", "TEXT", "DMA name"),
        ]))
}
