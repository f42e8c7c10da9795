import Testing
@testable import FinscopeWire
import FinscopeTestSupport

/// Properties every link type shares: where the payload is, what a cut frame yields,
/// and that no byte pattern traps.
@Suite("Every link type")
struct EveryLinkTests {
    static let links: [Link] = [
        .ethernet, .vlan([10]), .qinq([100, 10]), .sll, .sll2, .null, .nullBigEndian, .loop, .raw,
        .rawLinkType(228), .rawLinkType(229), .nflog, .ppp, .pppHDLC, .ciscoHDLC, .pflog, .ipoib,
        .ieee80211, .radiotap, .ppi,
    ]

    static func kind(_ link: Link) -> LinkKind? { LinkKind(linkType: Int32(link.linkType)) }

    static func frame(_ link: Link, ipv6: Bool, payload: [UInt8]) -> [UInt8] {
        let tcp = TCPHeader(sourcePort: 40000, destinationPort: 80, sequence: Fixture.sequence,
                            acknowledgment: Fixture.acknowledgment, flags: [.psh, .ack], window: Fixture.window,
                            options: TCPOption.timestamps(value: 1, echo: 2), payload: payload)
        let packet = ipv6 ? Fixture.ipv6(tcp) : Fixture.ipv4(tcp)
        return link.frame(ipPacket: packet, isIPv6: ipv6)
    }

    @Test("payloadOffset points at the payload's first byte inside the frame", arguments: links)
    func payloadOffset(_ link: Link) throws {
        let kind = try #require(Self.kind(link))
        let payload: [UInt8] = Array("GET / HTTP/1.1\r\n".utf8)
        for ipv6 in [false, true] where !(link == .rawLinkType(228) && ipv6) && !(link == .rawLinkType(229) && !ipv6) {
            let frame = Self.frame(link, ipv6: ipv6, payload: payload)
            let outcome = decode(frame, link: kind)
            guard case .segment(let segment) = outcome else { Issue.record("\(link) ipv6=\(ipv6): \(outcome)"); continue }
            #expect(Int(segment.payloadLength) == payload.count)
            let end = min(frame.count, segment.payloadOffset + Int(segment.payloadLength))
            #expect(Array(frame[segment.payloadOffset..<end]) == payload, "\(link) ipv6=\(ipv6)")
            // Cut right after the TCP header: the payload offset is the frame's end, no bytes.
            let cut = Array(frame.prefix(segment.payloadOffset))
            guard case .segment(let short) = decode(cut, wire: frame.count, link: kind) else {
                Issue.record("\(link): cut after the TCP header"); continue
            }
            #expect(short.payloadOffset == cut.count)
            #expect(short.payloadLength == segment.payloadLength)
        }
    }

    @Test("a frame cut anywhere before the end of its TCP header is truncated", arguments: links)
    func truncationAtEveryBoundary(_ link: Link) throws {
        let kind = try #require(Self.kind(link))
        let ipv6 = link == .rawLinkType(229)
        let frame = Self.frame(link, ipv6: ipv6, payload: FrameBuilder.filler(10))
        guard case .segment(let segment) = decode(frame, link: kind) else { Issue.record("\(link) does not decode"); return }
        let headerEnd = segment.payloadOffset
        for length in 0..<headerEnd {
            #expect(decode(Array(frame.prefix(length)), wire: frame.count, link: kind) == .skipped(.truncated),
                    "\(link) cut at \(length) of \(headerEnd)")
        }
        for length in headerEnd...frame.count {
            #expect(decode(Array(frame.prefix(length)), wire: frame.count, link: kind) == .segment(segment))
        }
    }

    @Test("a frame that was short on the wire too is never a segment and never traps", arguments: links)
    func shortOnTheWire(_ link: Link) throws {
        let kind = try #require(Self.kind(link))
        let frame = Self.frame(link, ipv6: link == .rawLinkType(229), payload: FrameBuilder.filler(10))
        guard case .segment(let segment) = decode(frame, link: kind) else { Issue.record("\(link) does not decode"); return }
        for length in 0..<segment.payloadOffset {
            let outcome = decode(Array(frame.prefix(length)), link: kind)
            #expect(outcome != .segment(segment), "\(link) at \(length)")
        }
    }

    @Test("random bytes and random damage to valid frames never trap, on every kind")
    func randomBytes() {
        var random = SplitMix(seed: 0x5eed)
        for kind in LinkKind.allCases {
            for _ in 0..<1500 {
                let count = Int(random.next() % 160)
                let bytes = (0..<count).map { _ in UInt8(truncatingIfNeeded: random.next()) }
                let wire = count + Int(random.next() % 3) * Int(random.next() % 70000)
                _ = decode(bytes, wire: wire, link: kind)
            }
        }
        for link in Self.links {
            guard let kind = Self.kind(link) else { continue }
            let frame = Self.frame(link, ipv6: link == .rawLinkType(229), payload: FrameBuilder.filler(10))
            for _ in 0..<1500 {
                var damaged = frame
                for _ in 0..<(1 + random.next() % 3) {
                    damaged[Int(random.next() % UInt64(damaged.count))] = UInt8(truncatingIfNeeded: random.next())
                }
                let outcome = decode(damaged, link: kind)
                if case .segment(let segment) = outcome {
                    #expect(segment.payloadOffset <= damaged.count)
                    #expect(segment.payloadOffset >= 20)
                }
            }
        }
    }
}

/// A small deterministic generator (SplitMix64) so failures reproduce.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}
