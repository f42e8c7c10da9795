// Header views over captured bytes, in the manner of smoltcp's wire module: each view's
// `check` decides once whether the bytes hold its header (truncated or malformed
// otherwise), `init(checked:)` wraps them, and every accessor after that reads a named
// field without failing. This file holds the IP and TCP views; LinkHeaders.swift and
// WirelessHeaders.swift the link layers.

/// Why a header view rejected its bytes; `FrameDecoder` turns it into a `SkipReason`.
enum HeaderProblem: Sendable, Equatable {
    /// The header is cut short by the snapshot length.
    case truncated
    /// Its fields contradict each other or the frame.
    case malformed

    var skipReason: SkipReason { self == .truncated ? .truncated : .malformed }
}

/// IPv4 header (RFC 791). Valid only if the whole header (IHL words) is captured.
struct IPv4HeaderView {
    enum Field {
        static let versionIHL = 0
        static let totalLength = 2
        static let flagsFragment = 6
        static let protocolNumber = 9
        static let source = 12
        static let destination = 16
    }
    static let minimumLength = 20
    typealias Problem = HeaderProblem
    let bytes: UnsafeRawBufferPointer

    /// Checks: version 4, IHL ≥ 5, the header fully captured, and (with `wireLength`)
    /// an IHL that fits the frame as it was on the wire (else a contradiction, not a
    /// short snapshot).
    @inline(__always)
    static func check(_ bytes: UnsafeRawBufferPointer, wireLength: Int = .max) -> Problem? {
        guard bytes.count >= 1 else { return .truncated }
        let versionIHL = bytes.u8(Field.versionIHL)
        guard versionIHL >> 4 == 4 else { return .malformed }
        let headerLength = Int(versionIHL & 0x0f) * 4
        guard headerLength >= minimumLength else { return .malformed }
        // (The wire length is looked at only here: a captured header always fits it.)
        guard bytes.count >= headerLength else { return headerLength > wireLength ? .malformed : .truncated }
        return nil
    }

    /// Call only after `check` returned nil.
    init(checked bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var headerLength: Int { Int(bytes.u8(Field.versionIHL) & 0x0f) * 4 }
    var totalLength: Int { Int(bytes.u16(Field.totalLength)) }
    var fragmentOffset: Int { Int(bytes.u16(Field.flagsFragment) & 0x1fff) }
    var protocolNumber: UInt8 { bytes.u8(Field.protocolNumber) }
    var source: IPAddress { IPAddress(ipv4: bytes.u32(Field.source)) }
    var destination: IPAddress { IPAddress(ipv4: bytes.u32(Field.destination)) }
}

/// IPv6 fixed header (RFC 8200).
struct IPv6HeaderView {
    static let length = 40
    enum Field {
        static let version = 0
        static let payloadLength = 4
        static let nextHeader = 6
        static let source = 8
        static let destination = 24
    }
    typealias Problem = HeaderProblem
    let bytes: UnsafeRawBufferPointer

    /// Checks: version 6 (as far as captured), the fixed header captured.
    static func check(_ bytes: UnsafeRawBufferPointer) -> Problem? {
        if bytes.count >= 1, bytes.u8(Field.version) >> 4 != 6 { return .malformed }
        guard bytes.count >= length else { return .truncated }
        return nil
    }

    init(checked bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var payloadLength: Int { Int(bytes.u16(Field.payloadLength)) }
    var nextHeader: UInt8 { bytes.u8(Field.nextHeader) }
    var source: IPAddress { Self.address(bytes, Field.source) }
    var destination: IPAddress { Self.address(bytes, Field.destination) }

    private static func address(_ bytes: UnsafeRawBufferPointer, _ at: Int) -> IPAddress {
        IPAddress(ipv6High: UInt64(bytes.u32(at)) << 32 | UInt64(bytes.u32(at + 4)),
                  low: UInt64(bytes.u32(at + 8)) << 32 | UInt64(bytes.u32(at + 12)))
    }
}

/// An IPv6 hop-by-hop, routing or destination-options header (RFC 8200 §4.3-4.6): next
/// header, then its length in 8-byte units not counting the first 8.
struct IPv6ExtensionHeaderView {
    enum Field {
        static let nextHeader = 0
        static let length = 1
    }
    /// The two bytes read here; the rest of the header is skipped, not read.
    static let fixedLength = 2
    typealias Problem = HeaderProblem
    let bytes: UnsafeRawBufferPointer

    /// `remaining`: the IPv6 payload bytes left from this header on (its length must fit).
    static func check(_ bytes: UnsafeRawBufferPointer, remaining: Int) -> Problem? {
        guard bytes.count >= fixedLength else { return .truncated }
        guard (Int(bytes.u8(Field.length)) + 1) * 8 <= remaining else { return .malformed }
        return nil
    }

    init(checked bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var nextHeader: UInt8 { bytes.u8(Field.nextHeader) }
    var headerLength: Int { (Int(bytes.u8(Field.length)) + 1) * 8 }
}

/// The IPv6 fragment header (RFC 8200 §4.5), 8 bytes.
struct IPv6FragmentHeaderView {
    static let length = 8
    enum Field {
        static let nextHeader = 0
        static let offsetFlags = 2
        static let identification = 4
    }
    typealias Problem = HeaderProblem
    let bytes: UnsafeRawBufferPointer

    static func check(_ bytes: UnsafeRawBufferPointer, remaining: Int) -> Problem? {
        guard bytes.count >= length else { return .truncated }
        guard remaining >= length else { return .malformed }
        return nil
    }

    init(checked bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var nextHeader: UInt8 { bytes.u8(Field.nextHeader) }
    /// In 8-byte units; non-zero for every fragment but the first.
    var fragmentOffset: Int { Int(bytes.u16(Field.offsetFlags) >> 3) }
}

/// TCP header (RFC 9293). Valid only once the whole header, options included, is captured.
struct TCPHeaderView {
    static let minimumLength = 20
    enum Field {
        static let sourcePort = 0
        static let destinationPort = 2
        static let sequence = 4
        static let acknowledgment = 8
        static let dataOffset = 12
        static let flags = 13
        static let window = 14
        static let options = 20
    }
    typealias Problem = HeaderProblem
    let bytes: UnsafeRawBufferPointer

    /// `ipPayloadLength`: the bytes the IP header says follow it (the TCP header must
    /// fit there); `bytes`: what was captured from the TCP header on.
    @inline(__always)
    static func check(_ bytes: UnsafeRawBufferPointer, ipPayloadLength: Int) -> Problem? {
        guard ipPayloadLength >= minimumLength else { return .malformed }
        guard bytes.count >= minimumLength else { return .truncated }
        let headerLength = Int(bytes.u8(Field.dataOffset) >> 4) * 4
        guard headerLength >= minimumLength, headerLength <= ipPayloadLength else { return .malformed }
        guard bytes.count >= headerLength else { return .truncated }
        return nil
    }

    init(checked bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var sourcePort: UInt16 { bytes.u16(Field.sourcePort) }
    var destinationPort: UInt16 { bytes.u16(Field.destinationPort) }
    var sequence: UInt32 { bytes.u32(Field.sequence) }
    var acknowledgment: UInt32 { bytes.u32(Field.acknowledgment) }
    var headerLength: Int { Int(bytes.u8(Field.dataOffset) >> 4) * 4 }
    var flags: TCPFlags { TCPFlags(rawValue: bytes.u8(Field.flags)) }
    var window: UInt16 { bytes.u16(Field.window) }

    /// The window-scale option's shift count (RFC 7323), or nil when absent. Only SYN
    /// segments carry it, so only they pay for walking the options.
    var windowScale: UInt8? {
        var offset = Field.options
        let end = headerLength
        while offset < end {
            let kind = bytes.u8(offset)
            if kind == 0 { return nil }  // end of option list
            if kind == 1 { offset += 1; continue }  // no-operation
            guard offset + 1 < end else { return nil }
            let length = Int(bytes.u8(offset + 1))
            guard length >= 2, offset + length <= end else { return nil }
            if kind == 3, length == 3 { return min(bytes.u8(offset + 2), 14) }
            offset += length
        }
        return nil
    }
}

/// TCP control bits.
public struct TCPFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt8
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }
    // Computed and inlinable rather than `static let`: another module reads a stored
    // static through a lazy-global accessor (a call and a once-check) at every use; these
    // fold to an 8-bit constant.
    @inlinable public static var fin: TCPFlags { TCPFlags(rawValue: 0x01) }
    @inlinable public static var syn: TCPFlags { TCPFlags(rawValue: 0x02) }
    @inlinable public static var rst: TCPFlags { TCPFlags(rawValue: 0x04) }
    @inlinable public static var psh: TCPFlags { TCPFlags(rawValue: 0x08) }
    @inlinable public static var ack: TCPFlags { TCPFlags(rawValue: 0x10) }
    @inlinable public static var urg: TCPFlags { TCPFlags(rawValue: 0x20) }
    @inlinable public static var ece: TCPFlags { TCPFlags(rawValue: 0x40) }
    @inlinable public static var cwr: TCPFlags { TCPFlags(rawValue: 0x80) }
}

extension TCPFlags: CustomStringConvertible {
    /// Short form as tcpdump prints it: "S", "S.", "F.", "R", "P.", ...
    public var description: String {
        var text = ""
        if contains(.syn) { text += "S" }
        if contains(.fin) { text += "F" }
        if contains(.rst) { text += "R" }
        if contains(.psh) { text += "P" }
        if contains(.urg) { text += "U" }
        if contains(.ece) { text += "E" }
        if contains(.cwr) { text += "W" }
        if contains(.ack) { text += "." }
        return text.isEmpty ? "none" : text
    }
}
