@testable import FinscopeWire
import FinscopeTestSupport

/// Decodes a byte array; `wire` defaults to the captured length.
func decode(_ frame: [UInt8], wire: Int? = nil, link: LinkKind) -> DecodeOutcome {
    frame.withUnsafeBytes { FrameDecoder.decode($0, wireLength: wire ?? frame.count, link: link) }
}

/// The fixture most tests use: 10.0.0.1:40000 → 10.0.0.2:80, P., 10 payload bytes.
enum Fixture {
    static let v4Source = IPAddress(literal: "10.0.0.1")
    static let v4Destination = IPAddress(literal: "10.0.0.2")
    static let v6Source = IPAddress(literal: "fd00::1")
    static let v6Destination = IPAddress(literal: "fd00::2")
    static let sequence: UInt32 = 0x0102_0304
    static let acknowledgment: UInt32 = 0xa0b0_c0d0
    static let window: UInt16 = 502

    static func tcp(flags: TCPFlags = [.psh, .ack], options: [UInt8] = [], payloadLength: Int = 10,
                    dataOffsetOverride: UInt8? = nil) -> TCPHeader {
        TCPHeader(sourcePort: 40000, destinationPort: 80, sequence: sequence, acknowledgment: acknowledgment,
                  flags: flags, window: window, options: options, payloadLength: payloadLength,
                  dataOffsetOverride: dataOffsetOverride)
    }

    static func ipv4(_ tcp: TCPHeader = tcp(), header: IPv4Header = IPv4Header(source: v4Source, destination: v4Destination)) -> [UInt8] {
        header.packet(payload: tcp.bytes)
    }

    static func ipv6(_ tcp: TCPHeader = tcp(), header: IPv6Header = IPv6Header(source: v6Source, destination: v6Destination)) -> [UInt8] {
        header.packet(payload: tcp.bytes)
    }

    static func ethernet(_ packet: [UInt8], etherType: UInt16 = EtherType.ipv4, tags: [VLANTag] = []) -> [UInt8] {
        FrameBuilder.ethernet(vlanTags: tags, etherType: etherType, payload: packet)
    }

    static func expected(ipv6: Bool = false, flags: TCPFlags = [.psh, .ack], payloadLength: UInt32 = 10,
                         windowScale: Int8 = -1) -> DecodeOutcome {
        .segment(TCPSegment(source: ipv6 ? v6Source : v4Source, destination: ipv6 ? v6Destination : v4Destination,
                            sourcePort: 40000, destinationPort: 80, sequence: sequence, acknowledgment: acknowledgment,
                            flags: flags, window: window, payloadLength: payloadLength, windowScale: windowScale))
    }
}
