import Testing
@testable import FinscopeWire
import FinscopeTestSupport

/// NFLOG (LINKTYPE 239) and pflog (DLT 117).
@Suite("Logging link types: NFLOG, pflog")
struct LoggingLinkTests {
    /// Frame 1 of zeek's testing/btest/Traces/nflog-http.pcap (the public corpus), as
    /// `tshark -x` prints it; tshark: 10.0.2.15:49762 → 93.184.216.34:80, SYN, seq
    /// 1060289233, window 29200, window scale 7, no payload.
    static let zeekFrame: [UInt8] = [
        0x02, 0x00, 0x00, 0x2a, 0x08, 0x00, 0x01, 0x00, 0x00, 0x00, 0x03, 0x00, 0x05, 0x00, 0x0a, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x08, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x02, 0x08, 0x00, 0x0b, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x08, 0x00, 0x0e, 0x00, 0x00, 0x00, 0x00, 0x00, 0x40, 0x00, 0x09, 0x00,
        0x45, 0x00, 0x00, 0x3c, 0xe8, 0xef, 0x40, 0x00, 0x40, 0x06, 0x0f, 0xe3, 0x0a, 0x00, 0x02, 0x0f,
        0x5d, 0xb8, 0xd8, 0x22, 0xc2, 0x62, 0x00, 0x50, 0x3f, 0x32, 0xba, 0xd1, 0x00, 0x00, 0x00, 0x00,
        0xa0, 0x02, 0x72, 0x10, 0x42, 0x18, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a,
        0x00, 0x27, 0x52, 0x3e, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x07,
    ]

    @Test("a real NFLOG frame (zeek's nflog-http.pcap, frame 1) decodes as tshark reads it")
    func zeekNFLOGFrame() throws {
        let outcome = decode(Self.zeekFrame, link: .nflog)
        guard case .segment(let segment) = outcome else { Issue.record("\(outcome)"); return }
        #expect(segment == TCPSegment(source: IPAddress(literal: "10.0.2.15"), destination: IPAddress(literal: "93.184.216.34"),
                                      sourcePort: 49762, destinationPort: 80, sequence: 1_060_289_233, acknowledgment: 0,
                                      flags: .syn, window: 29200, payloadLength: 0, windowScale: 7))
        // Payload TLV at 44, its value (the IP packet) at 48, IP 20 + TCP 40 bytes.
        #expect(segment.payloadOffset == 48 + 20 + 40)
        #expect(segment.payloadOffset == Self.zeekFrame.count)
    }

    @Test("the NFLOG builder writes the layout of the real frame")
    func builderLayout() {
        let frame = FrameBuilder.nflog(family: 2, resourceID: 42, payload: Fixture.ipv4())
        #expect(Array(frame[0..<4]) == [0x02, 0x00, 0x00, 0x2a])
        #expect(Array(frame[4..<12]) == [0x08, 0x00, 0x01, 0x00, 0x08, 0x00, 0x03, 0x00])  // NFULA_PACKET_HDR
        #expect(Array(frame[12..<20]) == [0x05, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x00, 0x00])  // NFULA_PREFIX "", padded
        #expect(Array(frame[36..<40]) == [0x36, 0x00, 0x09, 0x00])  // NFULA_PAYLOAD, 4 + 50 bytes
        #expect(decode(frame, link: .nflog) == Fixture.expected())
    }

    @Test("NFLOG: IPv4 and IPv6, payload TLV first or after others, TLVs in the other byte order")
    func nflogVariants() {
        #expect(decode(FrameBuilder.nflog(family: 10, payload: Fixture.ipv6()), link: .nflog) == Fixture.expected(ipv6: true))
        #expect(decode(FrameBuilder.nflog(family: 2, tlvsBefore: [], payload: Fixture.ipv4()), link: .nflog) == Fixture.expected())
        // A big-endian host's file read without libpcap's rewriting.
        let other: ByteOrder = ByteOrder.host == .little ? .big : .little
        #expect(decode(FrameBuilder.nflog(family: 2, byteOrder: other, payload: Fixture.ipv4()), link: .nflog) == Fixture.expected())
        // The nested-attribute bit (0x8000) of the type is not part of the type.
        var nested = FrameBuilder.nflog(family: 2, tlvsBefore: [], payload: Fixture.ipv4())
        nested[7] |= ByteOrder.host == .little ? 0x80 : 0
        nested[6] |= ByteOrder.host == .big ? 0x80 : 0
        #expect(decode(nested, link: .nflog) == Fixture.expected())
    }

    @Test("NFLOG: another family, no payload TLV, a bad TLV length, too many TLVs")
    func nflogOthers() {
        #expect(decode(FrameBuilder.nflog(family: 7, payload: Fixture.ipv4()), link: .nflog) == .skipped(.notTCP))
        // The IP version must match the NFLOG family.
        #expect(decode(FrameBuilder.nflog(family: 2, payload: Fixture.ipv6()), link: .nflog) == .skipped(.malformed))
        // Only attributes, no packet bytes logged.
        let noPayload: [UInt8] = [2, 0, 0, 5] + FrameBuilder.nflogTLV(type: 1, value: [8, 0, 3, 0])
        #expect(decode(noPayload, link: .nflog) == .skipped(.truncated))
        // A TLV length below its own 4-byte header, or beyond the frame, in either order.
        for length: UInt16 in [0, 3, 0x0300, 200] {
            var bad = FrameBuilder.nflog(family: 2, tlvsBefore: [], payload: Fixture.ipv4())
            bad[4] = UInt8(length & 0xff)
            bad[5] = UInt8(length >> 8)
            #expect(decode(bad, link: .nflog) == .skipped(.malformed), "length \(length)")
        }
        // 64 attributes before the payload: the walk stops.
        let many = [UInt8]((0..<64).flatMap { _ in FrameBuilder.nflogTLV(type: 11, value: [0, 0, 0, 0]) })
        #expect(decode(FrameBuilder.nflog(family: 2, tlvsBefore: many, payload: Fixture.ipv4()), link: .nflog)
            == .skipped(.malformed))
        let fewer = [UInt8]((0..<63).flatMap { _ in FrameBuilder.nflogTLV(type: 11, value: [0, 0, 0, 0]) })
        #expect(decode(FrameBuilder.nflog(family: 2, tlvsBefore: fewer, payload: Fixture.ipv4()), link: .nflog)
            == Fixture.expected())
        // Trailing bytes too short for a TLV header.
        #expect(decode(noPayload + [0, 0], link: .nflog) == .skipped(.malformed))
    }

    @Test("NFLOG with a copy range shorter than the packet: lengths from the IP header, like a snaplen")
    func nflogCopyRange() {
        let packet = Fixture.ipv4()  // 20 + 20 + 10
        let cut = FrameBuilder.nflog(family: 2, payload: Array(packet.prefix(40)))
        #expect(decode(cut, link: .nflog) == Fixture.expected())
        let cut6 = FrameBuilder.nflog(family: 10, payload: Array(Fixture.ipv6().prefix(60)))
        #expect(decode(cut6, link: .nflog) == Fixture.expected(ipv6: true))
        // Cut inside the TCP header: truncated.
        #expect(decode(FrameBuilder.nflog(family: 2, payload: Array(packet.prefix(39))), link: .nflog) == .skipped(.truncated))
    }

    @Test("pflog: IPv4, and IPv6 under the AF_INET6 of OpenBSD/NetBSD, FreeBSD and macOS", arguments: [UInt8(24), 28, 30])
    func pflogIPv6(_ family: UInt8) {
        #expect(decode(FrameBuilder.pflog(family: family, payload: Fixture.ipv6()), link: .pflog) == Fixture.expected(ipv6: true))
    }

    @Test("pflog: header lengths 61 (→ 64), 69 (FreeBSD → 72), 100 (OpenBSD)", arguments: [UInt8(61), 69, 100])
    func pflogLengths(_ length: UInt8) {
        let frame = FrameBuilder.pflog(family: 2, length: length, payload: Fixture.ipv4())
        #expect(frame.count == (Int(length) + 3) / 4 * 4 + 50)
        #expect(Array(frame[0..<2]) == [length, 2])
        #expect(decode(frame, link: .pflog) == Fixture.expected())
    }

    @Test("pflog: a length below 61 or beyond the frame is malformed; another family is not TCP")
    func pflogOthers() {
        var short = FrameBuilder.pflog(family: 2, length: 61, payload: Fixture.ipv4())
        short[0] = 60
        #expect(decode(short, link: .pflog) == .skipped(.malformed))
        short[0] = 0
        #expect(decode(short, link: .pflog) == .skipped(.malformed))
        let headerOnly = Array(FrameBuilder.pflog(family: 2, length: 100, payload: []).prefix(64))
        #expect(decode(headerOnly, link: .pflog) == .skipped(.malformed))  // says 100 bytes, the frame had 64
        #expect(decode(headerOnly, wire: 200, link: .pflog) == .skipped(.truncated))
        #expect(decode(FrameBuilder.pflog(family: 10, payload: Fixture.ipv6()), link: .pflog) == .skipped(.notTCP))
        #expect(decode(FrameBuilder.pflog(family: 17, payload: Fixture.ipv4()), link: .pflog) == .skipped(.notTCP))
    }
}
