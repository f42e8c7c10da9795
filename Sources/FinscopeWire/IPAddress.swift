/// An IPv4 or IPv6 address held in 16 bytes (two words), without allocation.
/// IPv4 addresses live in the low 32 bits of `low` with `high == 0`.
public struct IPAddress: Hashable, Sendable, Comparable {
    public var high: UInt64
    public var low: UInt64
    public var isIPv6: Bool

    @inlinable
    public init(ipv4: UInt32) {
        high = 0
        low = UInt64(ipv4)
        isIPv6 = false
    }

    @inlinable
    public init(ipv6High: UInt64, low: UInt64) {
        high = ipv6High
        self.low = low
        isIPv6 = true
    }

    /// Parses dotted-quad IPv4 or RFC 4291 IPv6 text ("::1", "fd00::2", "::ffff:1.2.3.4").
    public init?(_ text: String) {
        if !text.contains(":") {
            let parts = text.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 4 else { return nil }
            var value: UInt32 = 0
            for part in parts {
                guard !part.isEmpty, part.allSatisfy({ $0.isASCII && $0.isNumber }), let octet = UInt8(part) else { return nil }
                value = value << 8 | UInt32(octet)
            }
            self.init(ipv4: value)
            return
        }
        var groups: [UInt16] = []
        var tailGroups: [UInt16] = []
        var sawGap = false
        var halves: [String] = []
        let chars = Array(text)
        if let gap = chars.indices.dropLast().first(where: { chars[$0] == ":" && chars[$0 + 1] == ":" }) {
            halves = [String(chars[..<gap]), String(chars[(gap + 2)...])]
            guard !halves[1].contains("::"), !halves[0].hasSuffix(":"), !halves[1].hasPrefix(":") else { return nil }
        } else {
            halves = [text]
        }
        // A dotted quad may only end the whole address.
        func parse(_ part: String, into out: inout [UInt16], mayEndInQuad: Bool) -> Bool {
            if part.isEmpty { return true }
            let fields = part.split(separator: ":", omittingEmptySubsequences: false)
            for (index, field) in fields.enumerated() {
                guard field.allSatisfy({ $0.isHexDigit || $0 == "." }) else { return false }
                if mayEndInQuad, index == fields.count - 1, field.contains(".") {
                    guard let v4 = IPAddress(String(field)), !v4.isIPv6 else { return false }
                    out.append(UInt16(truncatingIfNeeded: v4.low >> 16))
                    out.append(UInt16(truncatingIfNeeded: v4.low))
                } else {
                    guard field.count <= 4, let value = UInt16(field, radix: 16) else { return false }
                    out.append(value)
                }
            }
            return true
        }
        guard parse(halves[0], into: &groups, mayEndInQuad: halves.count == 1) else { return nil }
        if halves.count == 2 {
            sawGap = true
            guard parse(halves[1], into: &tailGroups, mayEndInQuad: true) else { return nil }
        }
        let total = groups.count + tailGroups.count
        if sawGap {
            guard total <= 7 else { return nil }
            groups += Array(repeating: 0, count: 8 - total) + tailGroups
        } else {
            guard total == 8 else { return nil }
        }
        var high: UInt64 = 0
        var low: UInt64 = 0
        for index in 0..<4 { high = high << 16 | UInt64(groups[index]) }
        for index in 4..<8 { low = low << 16 | UInt64(groups[index]) }
        self.init(ipv6High: high, low: low)
    }

    public static func < (lhs: IPAddress, rhs: IPAddress) -> Bool {
        (lhs.isIPv6 ? 1 : 0, lhs.high, lhs.low) < (rhs.isIPv6 ? 1 : 0, rhs.high, rhs.low)
    }
}

extension IPAddress: CustomStringConvertible {
    /// The usual text form: dotted quad, or compressed IPv6 (RFC 5952).
    public var description: String {
        if !isIPv6 {
            let v = UInt32(truncatingIfNeeded: low)
            return "\(v >> 24).\(v >> 16 & 0xff).\(v >> 8 & 0xff).\(v & 0xff)"
        }
        var groups = [UInt16](repeating: 0, count: 8)
        for index in 0..<4 {
            groups[index] = UInt16(truncatingIfNeeded: high >> (48 - 16 * UInt64(index)))
            groups[index + 4] = UInt16(truncatingIfNeeded: low >> (48 - 16 * UInt64(index)))
        }
        // IPv4-mapped addresses keep their dotted tail.
        if high == 0, low >> 32 == 0xffff {
            return "::ffff:" + IPAddress(ipv4: UInt32(truncatingIfNeeded: low)).description
        }
        // The longest run of two or more zero groups becomes "::" (first one on ties).
        var bestStart = -1, bestLength = 0, index = 0
        while index < 8 {
            if groups[index] == 0 {
                var end = index
                while end < 8, groups[end] == 0 { end += 1 }
                if end - index > bestLength { bestStart = index; bestLength = end - index }
                index = end
            } else {
                index += 1
            }
        }
        func hex(_ range: Range<Int>) -> String {
            groups[range].map { String($0, radix: 16) }.joined(separator: ":")
        }
        guard bestLength >= 2 else { return hex(0..<8) }
        return hex(0..<bestStart) + "::" + hex((bestStart + bestLength)..<8)
    }
}
