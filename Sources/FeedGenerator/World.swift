import Foundation

/// Scales of synthetic data.
public enum Scale: String, Sendable, CaseIterable, Codable {
    case sample, region, national

    var physicians: Int { self == .sample ? 2_000 : self == .region ? 100_000 : 1_000_000 }
    var territories: Int { self == .sample ? 8 : self == .region ? 160 : 1_200 }
    var plans: Int { self == .sample ? 40 : self == .region ? 300 : 1_500 }
}

public struct GeneratorOptions: Sendable {
    public var scale: Scale
    public var seed: UInt64
    public var outputDirectory: URL
    /// Overrides the scale's physician count (tests use a tiny world).
    public var physicianCount: Int?
    /// How noisy the AMA and CRM person records are (`standard` is what `sample-data/` holds).
    public var noise: Noise

    public init(
        scale: Scale, seed: UInt64, outputDirectory: URL, physicianCount: Int? = nil, noise: Noise = .standard
    ) {
        self.scale = scale
        self.seed = seed
        self.outputDirectory = outputDirectory
        self.physicianCount = physicianCount
        self.noise = noise
    }
}

/// One true physician.
struct TruePhysician {
    var index: Int
    var truthID: String { "TP\(String(index + 1).leftPad(7))" }
    var first: String
    var middle: String
    var last: String
    var gender: String
    var birthYear: Int
    var specialty: Int  // index into Catalog.specialties
    var npi: String
    var me: String?
    var street: String
    var zip: Int  // index into the world's zips
    var movedZip: Int?
    var movedStreet: String?
    var status: String  // active, deactivated, retired, deceased
    /// Weekly market TRx when writing; 0 for non-writers.
    var size: Double
    var loyalty: Double
    var inCRM: Bool
    var crmID: String
    var prescriberID: String
    var credential: String
}

struct Zip {
    var code: String
    var city: String
    var state: String
    var territory: Int
    var dma: Int
}

struct Plan {
    var id: String
    var name: String
    var payer: Int
    var channel: String
    var lives: Int
    var state: String
    var triples: [(String, String, String)]
    /// The month the own brand wins tier 3 (growth), and whether maturity tightens PA and ST.
    var winMonth: Int
    var tightenPA: Bool
    var tightenST: Bool
}

enum Catalog {
    static let firstNamesM = [
        "WILLIAM", "ROBERT", "JAMES", "JOHN", "MICHAEL", "DAVID", "RICHARD", "THOMAS", "JOSEPH", "CHARLES", "DANIEL",
        "MATTHEW",
        "ANTHONY", "STEVEN", "ANDREW", "KENNETH", "EDWARD", "BRIAN", "RAJ", "WEI", "CARLOS", "AHMED", "GREGORY",
        "PETER",
    ]
    static let firstNamesF = [
        "ELIZABETH", "MARY", "PATRICIA", "JENNIFER", "SUSAN", "MARGARET", "KATHERINE", "DEBORAH", "BARBARA", "JESSICA",
        "LINDA",
        "KAREN", "NANCY", "PRIYA", "MEI", "MARIA", "ANNA", "REBECCA", "VICTORIA", "SAMANTHA", "AMANDA", "CYNTHIA",
    ]
    static let nicknames: [String: String] = [
        "WILLIAM": "BILL", "ROBERT": "BOB", "JAMES": "JIM", "JOHN": "JACK", "MICHAEL": "MIKE", "DAVID": "DAVE",
        "RICHARD": "RICK", "THOMAS": "TOM", "JOSEPH": "JOE", "CHARLES": "CHUCK", "DANIEL": "DAN", "MATTHEW": "MATT",
        "ANTHONY": "TONY", "STEVEN": "STEVE", "ANDREW": "ANDY", "KENNETH": "KEN", "EDWARD": "ED", "GREGORY": "GREG",
        "PETER": "PETE", "ELIZABETH": "LIZ", "PATRICIA": "PAT", "JENNIFER": "JEN", "SUSAN": "SUE", "MARGARET": "MAGGIE",
        "KATHERINE": "KATE", "DEBORAH": "DEB", "BARBARA": "BARB", "JESSICA": "JESS", "REBECCA": "BECKY",
        "VICTORIA": "VICKY",
        "SAMANTHA": "SAM", "AMANDA": "MANDY", "CYNTHIA": "CINDY",
    ]
    static let lastNames = [
        "SMITH", "JOHNSON", "WILLIAMS", "BROWN", "JONES", "GARCIA", "MILLER", "DAVIS", "RODRIGUEZ", "MARTINEZ",
        "HERNANDEZ",
        "LOPEZ", "GONZALEZ", "WILSON", "ANDERSON", "THOMAS", "TAYLOR", "MOORE", "JACKSON", "MARTIN", "LEE", "PEREZ",
        "THOMPSON",
        "WHITE", "HARRIS", "SANCHEZ", "CLARK", "RAMIREZ", "LEWIS", "ROBINSON", "WALKER", "YOUNG", "ALLEN", "KING",
        "WRIGHT",
        "SCOTT", "TORRES", "NGUYEN", "HILL", "FLORES", "GREEN", "ADAMS", "NELSON", "BAKER", "HALL", "RIVERA",
        "CAMPBELL",
        "MITCHELL", "CARTER", "ROBERTS", "PATEL", "SHAH", "CHEN", "WANG", "KIM", "PARK", "OBRIEN", "MURPHY", "COHEN",
        "KAPLAN",
        "FISCHER", "WEBER", "SCHMIDT", "ROSSI", "RUSSO", "COSTA", "SILVA", "NOVAK", "KOWALSKI", "IVANOV", "SINGH",
        "KHAN", "ALI",
        "OKAFOR", "MENSAH", "TANAKA", "SATO", "SUZUKI", "BERG", "LINDQVIST", "DUBOIS", "MOREAU", "BECKER", "HOFFMAN",
        "WOLF",
    ]
    static let middle = ["A", "B", "C", "D", "E", "F", "G", "H", "J", "K", "L", "M", "N", "P", "R", "S", "T", "W", ""]
    static let streets = [
        "MAIN", "OAK", "PINE", "MAPLE", "CEDAR", "ELM", "WASHINGTON", "LAKE", "HILL", "PARK", "RIVER", "CHURCH", "HIGH",
        "CENTER", "MILL", "SPRING", "RIDGE", "FOREST", "MEADOW", "SUNSET", "BROAD", "MARKET", "UNION", "FRANKLIN",
        "LINCOLN",
    ]
    static let streetTypes = [
        ("STREET", "ST"), ("AVENUE", "AVE"), ("ROAD", "RD"), ("BOULEVARD", "BLVD"), ("DRIVE", "DR"),
    ]
    static let states = [
        "NJ", "NY", "PA", "CT", "MA", "MD", "VA", "NC", "GA", "FL", "OH", "MI", "IL", "WI", "MN", "TX", "AZ", "CO",
        "CA", "WA",
    ]
    /// Two-digit state FIPS codes, as the Part D file carries them.
    static let stateFIPS: [String: String] = [
        "NJ": "34", "NY": "36", "PA": "42", "CT": "09", "MA": "25", "MD": "24", "VA": "51", "NC": "37", "GA": "13",
        "FL": "12", "OH": "39", "MI": "26", "IL": "17", "WI": "55", "MN": "27", "TX": "48", "AZ": "04", "CO": "08",
        "CA": "06", "WA": "53",
    ]
    static let cities = [
        "SPRINGFIELD", "RIVERSIDE", "FRANKLIN", "GREENVILLE", "BRISTOL", "CLINTON", "FAIRVIEW", "SALEM", "MADISON",
        "GEORGETOWN",
        "ARLINGTON", "ASHLAND", "DOVER", "OXFORD", "JACKSON", "BURLINGTON", "MANCHESTER", "MILTON", "NEWPORT", "AUBURN",
    ]
    /// (AMA code, taxonomy, CRM text, weight, prescribes in the basket)
    static let specialties: [(String, String, String, Double, Bool)] = [
        ("IM", "207R00000X", "Internal Medicine", 0.32, true), ("FM", "207Q00000X", "Family Medicine", 0.30, true),
        ("GE", "207RG0100X", "Gastroenterology", 0.08, true), ("NP", "363L00000X", "Nurse Practitioner", 0.10, true),
        ("CD", "207RC0000X", "Cardiology", 0.06, false), ("PD", "208000000X", "Pediatrics", 0.06, false),
        ("D", "207N00000X", "Dermatology", 0.04, false), ("P", "2084P0800X", "Psychiatry", 0.04, false),
    ]
    static let crmSpecialtyVariants: [String: String] = [
        "Internal Medicine": "Internal Med", "Family Medicine": "Family Practice", "Gastroenterology": "GI",
    ]
    static let dmaNames = [
        "NEW YORK", "LOS ANGELES", "CHICAGO", "PHILADELPHIA", "DALLAS-FT. WORTH", "SAN FRANCISCO-OAK-SAN JOSE",
        "ATLANTA",
        "HOUSTON", "WASHINGTON, DC", "BOSTON", "PHOENIX", "SEATTLE-TACOMA", "TAMPA-ST. PETE", "MINNEAPOLIS-ST. PAUL",
        "DETROIT", "DENVER", "ORLANDO-DAYTONA BCH", "MIAMI-FT. LAUDERDALE", "CLEVELAND-AKRON",
        "SACRAMNTO-STKTON-MODESTO",
    ]

    /// The market basket: own brand, two competitor brands, and a generic of the first competitor.
    static let products:
        [(
            ndc: String, brand: String, generic: String, manufacturer: String, own: Bool, launch: String, wac: String,
            pack: Int
        )] = [
            ("50090123401", "ZENTAVIA", "ZENTAPRAZOLE", "ZENTA PHARMACEUTICALS", true, "2024-01-15", "14.2500", 30),
            ("00071455010", "ACIDREX", "ACIDOPRAZOLE", "NORTHBRIDGE LABS", false, "2016-04-01", "11.8000", 30),
            ("00378226190", "GASTROZOL", "GASTROPRAZOLE", "MERIDIAN HEALTH", false, "2019-09-15", "12.6000", 30),
            ("68180051201", "ACIDOPRAZOLE", "ACIDOPRAZOLE", "GENERIQ INC", false, "2026-01-02", "2.9500", 30),
        ]
    static let market = "ACID_SUPPRESSION_RX"
}

extension String {
    func leftPad(_ width: Int, _ pad: Character = "0") -> String {
        count >= width ? self : String(repeating: pad, count: width - count) + self
    }
}
