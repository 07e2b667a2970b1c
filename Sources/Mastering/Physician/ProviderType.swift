/// What kind of prescriber an individual is, from the NPPES taxonomy (or a specialty where there is no
/// taxonomy): NPPES lists pharmacists, nurse practitioners, physician assistants and dentists beside
/// physicians, and marts need to tell them apart.
enum ProviderType: String, Sendable {
    case physician, nursePractitioner = "nurse_practitioner", physicianAssistant = "physician_assistant"
    case pharmacist, dentist, other, unknown

    /// By the taxonomy code's grouping (NUCC): 20… allopathic and osteopathic physicians, 363L nurse
    /// practitioners, 363A physician assistants, 1835 pharmacists, 122 dentists; any other code is `other`.
    init(taxonomy: String?) {
        guard let code = taxonomy?.uppercased(), !code.isEmpty else {
            self = .unknown
            return
        }
        if code.hasPrefix("20") {
            self = .physician
        } else if code.hasPrefix("363L") {
            self = .nursePractitioner
        } else if code.hasPrefix("363A") {
            self = .physicianAssistant
        } else if code.hasPrefix("1835") {
            self = .pharmacist
        } else if code.hasPrefix("122") {
            self = .dentist
        } else {
            self = .other
        }
    }

    /// From a normalised specialty (AMA and CRM carry no taxonomy): nurse practitioners and physician
    /// assistants by name, anyone else with a specialty is a physician.
    init(specialty: String?) {
        switch specialty {
        case nil: self = .unknown
        case "Nurse Practitioner": self = .nursePractitioner
        case "Physician Assistant": self = .physicianAssistant
        case "Pharmacist", "Pharmacy": self = .pharmacist
        case "Dentist", "Dentistry", "General Dentistry": self = .dentist
        default: self = .physician
        }
    }
}
