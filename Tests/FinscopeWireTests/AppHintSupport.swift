@testable import FinscopeWire

/// Bytes from a hex string (whitespace and newlines ignored); traps on bad test data.
func hexBytes(_ text: String) -> [UInt8] {
    let digits = text.unicodeScalars.filter { !$0.properties.isWhitespace }.map { Character($0) }
    precondition(digits.count % 2 == 0, "odd hex")
    return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(digits[$0...$0 + 1]), radix: 16)! }
}

/// The text of `range` in `bytes`, for comparing with what a program sent.
func text(_ bytes: [UInt8], _ range: Range<Int>?) -> String? {
    guard let range else { return nil }
    return String(decoding: bytes[range], as: UTF8.self)
}

func parseRequest(_ bytes: [UInt8], payloadLength: Int? = nil) -> HTTPRequestStart? {
    bytes.withUnsafeBytes { HTTPRequestStart.parse($0, payloadLength: payloadLength ?? bytes.count) }
}

func beginsRequest(_ bytes: [UInt8]) -> Bool {
    bytes.withUnsafeBytes { HTTPRequestStart.begins($0) }
}

func parseStatus(_ bytes: [UInt8]) -> UInt16? {
    bytes.withUnsafeBytes { HTTPStatusLine.parse($0) }
}

func parseHello(_ bytes: [UInt8], payloadLength: Int? = nil) -> TLSClientHello? {
    bytes.withUnsafeBytes { TLSClientHello.parse($0, payloadLength: payloadLength ?? bytes.count) }
}

/// A small deterministic generator (SplitMix64), so random-input tests repeat exactly.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}
