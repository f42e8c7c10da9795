import Testing
@testable import FinscopeWire
import FinscopeTestSupport

/// The per-frame form `decode(_:wireLength:link:into:)` writes into storage the caller
/// keeps from frame to frame: nothing of an earlier frame may survive into a later one.
@Suite("Decoding into the caller's segment")
struct DecodeIntoTests {
    static func decodeInto(_ frame: [UInt8], wire: Int? = nil, link: LinkKind, _ segment: inout TCPSegment) -> SkipReason? {
        frame.withUnsafeBytes { FrameDecoder.decode($0, wireLength: wire ?? frame.count, link: link, into: &segment) }
    }

    @Test("a later segment overwrites every field of an earlier one")
    func storageReused() {
        var segment = TCPSegment()
        // First an IPv6 SYN with a window-scale option (NOP, WS 7) and 5 payload bytes...
        let syn = Fixture.ethernet(Fixture.ipv6(Fixture.tcp(flags: [.syn], options: [1, 3, 3, 7], payloadLength: 5)),
                                   etherType: EtherType.ipv6)
        #expect(Self.decodeInto(syn, link: .ethernet, &segment) == nil)
        #expect(segment.windowScale == 7)
        #expect(segment.source.isIPv6)
        // ...then an IPv4 ACK with none: nothing of the SYN may remain.
        let ack = Fixture.ethernet(Fixture.ipv4(Fixture.tcp(flags: [.ack], payloadLength: 0)))
        #expect(Self.decodeInto(ack, link: .ethernet, &segment) == nil)
        guard case .segment(let expected) = Fixture.expected(flags: [.ack], payloadLength: 0) else { return }
        #expect(segment == expected)
        #expect(!segment.source.isIPv6 && !segment.destination.isIPv6)
        #expect(segment.windowScale == -1)
        // `==` leaves the offset out: Ethernet 14 + IPv4 20 + TCP 20 bytes.
        #expect(segment.payloadOffset == 54)
    }

    @Test("a frame without a segment returns why, as the outcome form says")
    func skipReasons() {
        var segment = TCPSegment()
        let arp = FrameBuilder.ethernet(vlanTags: [], etherType: EtherType.arp, payload: [UInt8](repeating: 0, count: 28))
        #expect(Self.decodeInto(arp, link: .ethernet, &segment) == .notTCP)
        #expect(decode(arp, link: .ethernet) == .skipped(.notTCP))
        // A snapshot length that cut the TCP header after 10 of its 20 bytes.
        let whole = Fixture.ethernet(Fixture.ipv4())
        let cut = Array(whole.prefix(14 + 20 + 10))
        #expect(Self.decodeInto(cut, wire: whole.count, link: .ethernet, &segment) == .truncated)
        #expect(decode(cut, wire: whole.count, link: .ethernet) == .skipped(.truncated))
    }

    @Test("the all-zero segment")
    func zero() {
        let zero = TCPSegment()
        #expect(zero.source == IPAddress(ipv4: 0) && zero.destination == IPAddress(ipv4: 0))
        #expect(zero.flags.rawValue == 0 && zero.payloadLength == 0 && zero.payloadOffset == 0)
        #expect(zero.windowScale == -1)
    }
}
