/// One specialty vocabulary for AMA codes, NPPES taxonomy codes and CRM free text.
enum Specialty {
    static let amaCodes: [String: String] = [
        "IM": "Internal Medicine", "FM": "Family Medicine", "GP": "General Practice", "GE": "Gastroenterology",
        "CD": "Cardiology", "END": "Endocrinology", "OBG": "Obstetrics and Gynecology", "PD": "Pediatrics",
        "PUD": "Pulmonology", "NEP": "Nephrology", "ON": "Oncology", "P": "Psychiatry", "N": "Neurology",
        "GS": "General Surgery", "EM": "Emergency Medicine", "ANE": "Anesthesiology", "D": "Dermatology",
        "OTO": "Otolaryngology", "GER": "Geriatric Medicine", "NP": "Nurse Practitioner", "PA": "Physician Assistant",
    ]
    static let taxonomy: [String: String] = [
        "207R00000X": "Internal Medicine", "207Q00000X": "Family Medicine", "208D00000X": "General Practice",
        "207RG0100X": "Gastroenterology", "207RC0000X": "Cardiology", "207RE0101X": "Endocrinology",
        "207V00000X": "Obstetrics and Gynecology", "208000000X": "Pediatrics", "207RP1001X": "Pulmonology",
        "207RN0300X": "Nephrology", "207RX0202X": "Oncology", "2084P0800X": "Psychiatry", "2084N0400X": "Neurology",
        "208600000X": "General Surgery", "207P00000X": "Emergency Medicine", "207L00000X": "Anesthesiology",
        "207N00000X": "Dermatology", "207Y00000X": "Otolaryngology", "207RG0300X": "Geriatric Medicine",
        "363L00000X": "Nurse Practitioner", "363A00000X": "Physician Assistant",
    ]

    /// The vocabulary by its normalised words, built once (it was rebuilt for every record).
    static let termsByWords: [String: String] = Dictionary(
        amaCodes.values.map { (NameNormalizer.words($0).joined(separator: " "), $0) }, uniquingKeysWith: { min($0, $1) }
    )

    static let aliases = [
        "GASTRO": "Gastroenterology", "GI": "Gastroenterology", "FAMILY PRACTICE": "Family Medicine",
        "INTERNAL MED": "Internal Medicine", "IM": "Internal Medicine", "CARDIOVASCULAR DISEASE": "Cardiology",
        "OB GYN": "Obstetrics and Gynecology", "OBGYN": "Obstetrics and Gynecology", "PEDS": "Pediatrics",
        "NURSE PRACTITIONER FAMILY": "Nurse Practitioner",
    ]

    /// The vocabulary term for any source's spelling; nil when empty. A code without a vocabulary entry (an NPPES
    /// taxonomy code such as `213ES0103X`, an AMA code) is kept as the source wrote it: capitalising it as free
    /// text would make another code of it (`213Es0103X`).
    static func normalize(_ value: String?) -> String? {
        guard let value = value?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
        let upper = value.uppercased()
        if let term = amaCodes[upper] ?? taxonomy[upper] { return term }
        let words = NameNormalizer.words(value).joined(separator: " ")
        if let term = termsByWords[words] ?? aliases[words] { return term }
        return isCode(value) ? value : value.capitalized
    }

    /// One token of capitals and digits holding a digit (taxonomy codes), or of at most three capitals (AMA).
    static func isCode(_ value: String) -> Bool {
        guard value.unicodeScalars.allSatisfy({ ("A"..."Z").contains($0) || ("0"..."9").contains($0) }) else {
            return false
        }
        return value.unicodeScalars.contains { ("0"..."9").contains($0) } || value.unicodeScalars.count <= 3
    }
}
