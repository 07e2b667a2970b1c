/// The national provider identifier's check digit.
public enum NPI {
    /// True when `npi` is 10 digits whose last is the Luhn check digit over `80840` and the first nine.
    ///
    /// ```swift
    /// NPI.isValid("1234567893")  // true
    /// ```
    public static func isValid(_ npi: String) -> Bool {
        var npi = npi
        return npi.withUTF8 { bytes in
            guard bytes.count == 10 else { return false }
            // Luhn over 80840 + nine digits: the prefix contributes 24; double every second digit from the right.
            var sum = 24
            for i in 0..<9 {
                let digit = Int(bytes[i]) - 48
                guard (0...9).contains(digit) else { return false }
                let doubled = (8 - i) % 2 == 0 ? digit * 2 : digit
                sum += doubled > 9 ? doubled - 9 : doubled
            }
            let last = Int(bytes[9]) - 48
            return (0...9).contains(last) && (10 - sum % 10) % 10 == last
        }
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
