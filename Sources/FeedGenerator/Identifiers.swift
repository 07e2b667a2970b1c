import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A short deterministic hex hash.
func hexHash(_ text: String, length: Int = 16) -> String {
    var a: UInt64 = 0xCBF2_9CE4_8422_2325
    var b: UInt64 = 0x8422_2325_CBF2_9CE4
    for byte in text.utf8 {
        a = (a ^ UInt64(byte)) &* 0x100_0000_01B3
        b = (b ^ UInt64(byte)) &* 0x100_0000_01B3 &+ 7
    }
    let hex = String(a, radix: 16) + String(b, radix: 16)
    return String(String(repeating: "0", count: max(0, length - hex.count)) + hex).prefix(length).description
}

/// The NPI check digit (Luhn over 80840 + the first nine digits).
func npiCheckDigit(_ nine: String) -> Int {
    let digits = [8, 0, 8, 4, 0] + nine.map { Int(String($0))! }
    var sum = 0
    for (offset, digit) in digits.reversed().enumerated() {
        let d = offset % 2 == 0 ? digit * 2 : digit
        sum += d > 9 ? d - 9 : d
    }
    return (10 - sum % 10) % 10
}
