/// The national provider identifier's check digit.
public enum NPI {
    /// True when `npi` is 10 digits whose last is the Luhn check digit over `80840` and the first nine.
    ///
    /// ```swift
    /// NPI.isValid("1234567893")  // true
    /// ```
    public static func isValid(_ npi: String) -> Bool {
        let digits = npi.utf8.map { Int($0) - 48 }
        guard digits.count == 10, digits.allSatisfy({ (0...9).contains($0) }) else { return false }
        return checkDigit(forFirstNine: Array(digits.prefix(9))) == digits[9]
    }

    /// The check digit for nine leading digits.
    public static func checkDigit(forFirstNine nine: [Int]) -> Int {
        // Luhn over 80840 + nine digits: double every second digit from the right, starting with the last of the nine.
        let all = [8, 0, 8, 4, 0] + nine
        var sum = 0
        for (offset, digit) in all.reversed().enumerated() {
            if offset % 2 == 0 {
                let doubled = digit * 2
                sum += doubled > 9 ? doubled - 9 : doubled
            } else {
                sum += digit
            }
        }
        return (10 - sum % 10) % 10
    }
}
