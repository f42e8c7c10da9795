import Testing
@testable import FinscopeWire
import FinscopeTestSupport

/// PPP (DLT 9), PPP in HDLC framing (DLT 50), Cisco HDLC (DLT 104), IP over InfiniBand (242).
@Suite("Serial and InfiniBand link types")
struct SerialLinkTests {
    @Test("PPP: 2-byte protocol, 1-byte compressed protocol, optional address/control, IPv4 and IPv6")
    func ppp() {
        let plain = FrameBuilder.ppp(protocolNumber: 0x0021, payload: Fixture.ipv4())
        #expect(Array(plain.prefix(3)) == [0x00, 0x21, 0x45])
        #expect(decode(plain, link: .ppp) == Fixture.expected())
        let compressed = FrameBuilder.ppp(protocolNumber: 0x0021, compressed: true, payload: Fixture.ipv4())
        #expect(Array(compressed.prefix(2)) == [0x21, 0x45])
        #expect(decode(compressed, link: .ppp) == Fixture.expected())
        let framed = FrameBuilder.ppp(protocolNumber: 0x0057, addressControl: true, payload: Fixture.ipv6())
        #expect(Array(framed.prefix(5)) == [0xff, 0x03, 0x00, 0x57, 0x60])
        #expect(decode(framed, link: .ppp) == Fixture.expected(ipv6: true))
        #expect(decode(FrameBuilder.ppp(protocolNumber: 0x57, compressed: true, payload: Fixture.ipv6()), link: .ppp)
            == Fixture.expected(ipv6: true))
    }

    @Test("PPP: control protocols are not TCP; VJ-compressed TCP, MPLS, compressed datagrams are unsupported",
          arguments: [(UInt16(0xc021), SkipReason.notTCP), (0x8021, .notTCP), (0xc223, .notTCP), (0x8057, .notTCP),
                      (0x002d, .unsupported), (0x002f, .unsupported), (0x0281, .unsupported), (0x00fd, .unsupported)])
    func pppOtherProtocols(_ number: UInt16, _ reason: SkipReason) {
        #expect(decode(FrameBuilder.ppp(protocolNumber: number, payload: FrameBuilder.filler(20)), link: .ppp) == .skipped(reason))
    }

    @Test("PPP: empty, address without control, a cut 2-byte protocol")
    func pppShort() {
        #expect(decode([], wire: 60, link: .ppp) == .skipped(.truncated))
        #expect(decode([0xff], wire: 60, link: .ppp) == .skipped(.truncated))
        #expect(decode([0xff, 0x03], wire: 60, link: .ppp) == .skipped(.truncated))
        #expect(decode([0xff, 0x03, 0x00], wire: 60, link: .ppp) == .skipped(.truncated))
        #expect(decode([0x00], wire: 60, link: .ppp) == .skipped(.truncated))
        #expect(decode([0xff, 0x05, 0x00, 0x21] + Fixture.ipv4(), link: .ppp) == .skipped(.malformed))
    }

    @Test("PPP_SERIAL (DLT 50): PPP in HDLC framing, and Cisco HDLC framing on the same link type")
    func pppSerial() throws {
        let link = try #require(LinkKind(linkType: 50))
        #expect(decode(FrameBuilder.ppp(protocolNumber: 0x0021, addressControl: true, payload: Fixture.ipv4()), link: link)
            == Fixture.expected())
        #expect(decode(FrameBuilder.ciscoHDLC(protocolType: EtherType.ipv6, payload: Fixture.ipv6()), link: link)
            == Fixture.expected(ipv6: true))
        #expect(decode(FrameBuilder.ciscoHDLC(address: 0x8f, protocolType: EtherType.ipv4, payload: Fixture.ipv4()), link: link)
            == Fixture.expected())
    }

    @Test("Cisco HDLC: unicast and broadcast address, IPv4 and IPv6; SLARP is not TCP, MPLS unsupported")
    func ciscoHDLC() {
        let v4 = FrameBuilder.ciscoHDLC(protocolType: EtherType.ipv4, payload: Fixture.ipv4())
        #expect(Array(v4.prefix(5)) == [0x0f, 0x00, 0x08, 0x00, 0x45])
        #expect(decode(v4, link: .ciscoHDLC) == Fixture.expected())
        #expect(decode(FrameBuilder.ciscoHDLC(address: 0x8f, protocolType: EtherType.ipv6, payload: Fixture.ipv6()), link: .ciscoHDLC)
            == Fixture.expected(ipv6: true))
        #expect(decode(FrameBuilder.ciscoHDLC(protocolType: 0x8035, payload: FrameBuilder.filler(20)), link: .ciscoHDLC)
            == .skipped(.notTCP))
        #expect(decode(FrameBuilder.ciscoHDLC(protocolType: EtherType.mplsUnicast,
                                              payload: FrameBuilder.mpls(labels: [16], payload: Fixture.ipv4())), link: .ciscoHDLC)
            == .skipped(.unsupported))
        for length in 0..<4 { #expect(decode(Array(v4.prefix(length)), wire: v4.count, link: .ciscoHDLC) == .skipped(.truncated)) }
    }

    /// Frame 9 of tcpdump's tests/ipoib.pcap (the public corpus), from `tshark -x`;
    /// tshark: 192.168.56.10:34170 → 192.168.56.24:22, SYN with ECE+CWR, seq 798232822,
    /// window 32983, window scale 8, no payload.
    static let tcpdumpFrame: [UInt8] = [
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x30, 0x20, 0x00, 0x03, 0x80, 0x00, 0x05, 0x50, 0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x10, 0xe0, 0x00, 0x66, 0x4a, 0xb4, 0x51, 0x08, 0x00, 0x00, 0x00, 0x45, 0x00, 0x00, 0x3c,
        0x00, 0x44, 0x40, 0x00, 0x40, 0x06, 0x49, 0x05, 0xc0, 0xa8, 0x38, 0x0a, 0xc0, 0xa8, 0x38, 0x18,
        0x85, 0x7a, 0x00, 0x16, 0x2f, 0x94, 0x10, 0xf6, 0x00, 0x00, 0x00, 0x00, 0xa0, 0xc2, 0x80, 0xd7,
        0xef, 0xae, 0x00, 0x00, 0x02, 0x04, 0xff, 0xc8, 0x04, 0x02, 0x08, 0x0a, 0x03, 0xb5, 0x21, 0x61,
        0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x08,
    ]

    @Test("a real IPoIB frame (tcpdump's ipoib.pcap, frame 9) decodes as tshark reads it")
    func tcpdumpIPoIBFrame() {
        let outcome = decode(Self.tcpdumpFrame, link: .ipOverInfiniBand)
        guard case .segment(let segment) = outcome else { Issue.record("\(outcome)"); return }
        #expect(segment == TCPSegment(source: IPAddress(literal: "192.168.56.10"), destination: IPAddress(literal: "192.168.56.24"),
                                      sourcePort: 34170, destinationPort: 22, sequence: 798_232_822, acknowledgment: 0,
                                      flags: [.syn, .ece, .cwr], window: 32983, payloadLength: 0, windowScale: 8))
        #expect(segment.payloadOffset == 44 + 20 + 40)
    }

    @Test("IPoIB: the builder's 44-byte header, IPv4 and IPv6, ARP not TCP, every short header truncated")
    func ipoib() {
        let v4 = FrameBuilder.ipoib(protocolType: EtherType.ipv4, payload: Fixture.ipv4())
        #expect(Array(v4[40..<45]) == [0x08, 0x00, 0x00, 0x00, 0x45])
        #expect(Array(v4[20..<44]) == Array(Self.tcpdumpFrame[20..<44]))
        #expect(decode(v4, link: .ipOverInfiniBand) == Fixture.expected())
        #expect(decode(FrameBuilder.ipoib(protocolType: EtherType.ipv6, payload: Fixture.ipv6()), link: .ipOverInfiniBand)
            == Fixture.expected(ipv6: true))
        #expect(decode(FrameBuilder.ipoib(protocolType: EtherType.arp, payload: FrameBuilder.filler(28)), link: .ipOverInfiniBand)
            == .skipped(.notTCP))
        for length in 0..<44 {
            #expect(decode(Array(v4.prefix(length)), wire: v4.count, link: .ipOverInfiniBand) == .skipped(.truncated))
        }
    }
}
