import Testing
@testable import FinscopeWire
import FinscopeTestSupport

/// IEEE 802.11 data frames: plain (DLT 105), behind radiotap (127) and PPI (192).
@Suite("802.11, radiotap, PPI")
struct WirelessTests {
    static func body(_ packet: [UInt8] = Fixture.ipv4(), etherType: UInt16 = EtherType.ipv4) -> [UInt8] {
        FrameBuilder.llcSnap(etherType: etherType, payload: packet)
    }

    @Test("data frame, ToDS: 24-byte header, LLC/SNAP, IPv4; the builder's literal layout")
    func plainData() {
        let frame = FrameBuilder.ieee80211(subtype: 0, flags: 0x01, payload: Self.body())
        #expect(Array(frame.prefix(2)) == [0x08, 0x01])  // type 2 subtype 0, ToDS
        #expect(Array(frame[24..<33]) == [0xaa, 0xaa, 0x03, 0x00, 0x00, 0x00, 0x08, 0x00, 0x45])
        #expect(decode(frame, link: .ieee80211) == Fixture.expected())
    }

    @Test("QoS data (+2), four addresses (+6), +HTC (+4), IPv6, FromDS, 802.1H bridge-tunnel OUI")
    func headerLengths() {
        let qos = FrameBuilder.ieee80211(subtype: 8, flags: 0x01, payload: Self.body())
        #expect(qos[0] == 0x88)
        #expect(Array(qos[26..<28]) == [0xaa, 0xaa])
        #expect(decode(qos, link: .ieee80211) == Fixture.expected())
        let wds = FrameBuilder.ieee80211(subtype: 8, flags: 0x03, payload: Self.body())
        #expect(Array(wds[32..<34]) == [0xaa, 0xaa])
        #expect(decode(wds, link: .ieee80211) == Fixture.expected())
        let htc = FrameBuilder.ieee80211(subtype: 8, flags: 0x83, payload: Self.body())
        #expect(Array(htc[36..<38]) == [0xaa, 0xaa])
        #expect(decode(htc, link: .ieee80211) == Fixture.expected())
        // The order bit on a non-QoS data frame adds nothing.
        #expect(decode(FrameBuilder.ieee80211(subtype: 0, flags: 0x82, payload: Self.body()), link: .ieee80211) == Fixture.expected())
        #expect(decode(FrameBuilder.ieee80211(subtype: 0, flags: 0x02, payload: Self.body(Fixture.ipv6(), etherType: EtherType.ipv6)),
                       link: .ieee80211) == Fixture.expected(ipv6: true))
        var tunnel = Self.body()
        tunnel[5] = 0xf8
        #expect(decode(FrameBuilder.ieee80211(payload: tunnel), link: .ieee80211) == Fixture.expected())
    }

    @Test("management and control frames, null data, and EAPOL are not TCP")
    func notTCP() {
        #expect(decode(FrameBuilder.ieee80211(type: 0, subtype: 8, flags: 0, payload: FrameBuilder.filler(40)), link: .ieee80211)
            == .skipped(.notTCP))  // beacon
        #expect(decode([0xd4, 0x00, 0x00, 0x00, 0x02, 0, 0, 0, 0, 1], link: .ieee80211) == .skipped(.notTCP))  // ACK, 10 bytes
        #expect(decode(FrameBuilder.ieee80211(subtype: 4, payload: []), link: .ieee80211) == .skipped(.notTCP))  // null
        #expect(decode(FrameBuilder.ieee80211(subtype: 12, payload: []), link: .ieee80211) == .skipped(.notTCP))  // QoS null
        #expect(decode(FrameBuilder.ieee80211(payload: Self.body(FrameBuilder.filler(99), etherType: 0x888e)), link: .ieee80211)
            == .skipped(.notTCP))
    }

    @Test("protected frames, plain LLC, A-MSDU, MAC fragments and protocol version 1")
    func unsupported() {
        #expect(decode(FrameBuilder.ieee80211(subtype: 8, flags: 0x41, payload: FrameBuilder.filler(80)), link: .ieee80211)
            == .skipped(.unsupported))
        #expect(decode(FrameBuilder.ieee80211(payload: [0x42, 0x42, 0x03] + FrameBuilder.filler(60)), link: .ieee80211)
            == .skipped(.unsupported))
        #expect(decode(FrameBuilder.ieee80211(subtype: 8, qosControl: 0x0080, payload: Self.body()), link: .ieee80211)
            == .skipped(.unsupported))
        #expect(decode(FrameBuilder.ieee80211(flags: 0x05, payload: Self.body()), link: .ieee80211) == .skipped(.unsupported))
        #expect(decode(FrameBuilder.ieee80211(fragment: 1, payload: FrameBuilder.filler(60)), link: .ieee80211)
            == .skipped(.fragment))
        var pv1 = FrameBuilder.ieee80211(payload: Self.body())
        pv1[0] |= 1
        #expect(decode(pv1, link: .ieee80211) == .skipped(.unsupported))
    }

    @Test("radiotap with TSFT + Flags: FCS at the end is dropped, data padding is skipped")
    func radiotap() {
        let mac = FrameBuilder.ieee80211(subtype: 8, payload: Self.body())
        let header = FrameBuilder.radiotapTSFTFlags(flags: 0x10)
        #expect(Array(header.prefix(8)) == [0x00, 0x00, 0x12, 0x00, 0x07, 0x00, 0x00, 0x00])
        #expect(header[16] == 0x10)
        let withFCS = header + mac + FrameBuilder.fcs
        #expect(decode(withFCS, link: .ieee80211Radiotap) == Fixture.expected())
        // The same frame with a wrong IP length check would see the FCS as wire bytes:
        // with the flag honoured, a total length reaching into the FCS is malformed.
        var long = withFCS
        long.set16(54, at: header.count + 26 + 8 + 2)
        #expect(decode(long, link: .ieee80211Radiotap) == .skipped(.malformed))
        #expect(decode(FrameBuilder.radiotapTSFTFlags(flags: 0) + mac, link: .ieee80211Radiotap) == Fixture.expected())
        // QoS header is 26 bytes: padded to 28 when the data-pad flag is set.
        let padded = FrameBuilder.radiotapTSFTFlags(flags: 0x20) + mac.prefix(26) + [0, 0] + mac.dropFirst(26)
        #expect(decode(padded, link: .ieee80211Radiotap) == Fixture.expected())
        // Flags without TSFT sit right after the bitmap; after two bitmap words at 12.
        let flagsOnly = FrameBuilder.radiotap(present: [0x0000_0002], fields: [0x10, 0])
        #expect(decode(flagsOnly + mac + FrameBuilder.fcs, link: .ieee80211Radiotap) == Fixture.expected())
        let extended = FrameBuilder.radiotap(present: [0x8000_0003, 0x0000_0000], fields: [0, 0, 0, 0] + [UInt8](repeating: 9, count: 8) + [0x10, 0])
        #expect(extended.count == 26 && extended[24] == 0x10)
        #expect(decode(extended + mac + FrameBuilder.fcs, link: .ieee80211Radiotap) == Fixture.expected())
        // Bad FCS: corrupt bytes, not a segment.
        #expect(decode(FrameBuilder.radiotapTSFTFlags(flags: 0x50) + mac + FrameBuilder.fcs, link: .ieee80211Radiotap)
            == .skipped(.malformed))
    }

    @Test("radiotap: version, lengths below 8 or beyond the frame, bitmaps running past the header")
    func radiotapMalformed() {
        let mac = FrameBuilder.ieee80211(payload: Self.body())
        var version = FrameBuilder.radiotapTSFTFlags(flags: 0) + mac
        version[0] = 1
        #expect(decode(version, link: .ieee80211Radiotap) == .skipped(.malformed))
        for length: UInt16 in [0, 7, 0xffff] {
            #expect(decode(FrameBuilder.radiotap(present: [0], fields: [], lengthOverride: length) + mac, link: .ieee80211Radiotap)
                == .skipped(.malformed), "length \(length)")
        }
        // Every present word says another follows: the walk stops at the header's end.
        let endless = FrameBuilder.radiotap(present: [0x8000_0002, 0x8000_0000, 0x8000_0000], fields: [])
        #expect(decode(endless + mac, link: .ieee80211Radiotap) == Fixture.expected())
        #expect(decode([0, 0, 8, 0, 0, 0, 0], wire: 100, link: .ieee80211Radiotap) == .skipped(.truncated))
        #expect(decode([0, 0, 8], link: .ieee80211Radiotap) == .skipped(.malformed))
    }

    /// Frame 5 of libpcap's tests/filter/http_PPI.pcap (the public corpus), from `tshark
    /// -x`: PPI (84 bytes, 802.11-Common with "FCS present"), QoS data, LLC/SNAP, IPv4.
    /// tshark: 192.168.1.132:3827 → 130.192.73.1:80, SYN, seq 888888568, window 65535,
    /// window scale 3.
    static let libpcapFrame: [UInt8] = [
        0x00, 0x00, 0x54, 0x00, 0x69, 0x00, 0x00, 0x00, 0x02, 0x00, 0x14, 0x00, 0xa7, 0x91, 0xcd, 0xf3,
        0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x58, 0x02, 0x76, 0x09, 0xc0, 0x00, 0x00, 0x00, 0xc7, 0xa0,
        0x04, 0x00, 0x30, 0x00, 0x06, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x0f, 0x02, 0x27,
        0x22, 0x20, 0x1d, 0xff, 0x23, 0x26, 0x20, 0xff, 0x8a, 0x09, 0xc0, 0x00, 0xc2, 0xa0, 0xc0, 0xa0,
        0xbd, 0xa0, 0x80, 0x80, 0x18, 0x18, 0x27, 0x19, 0x19, 0x11, 0x24, 0x1c, 0x23, 0x21, 0x1a, 0x17,
        0x00, 0x00, 0x00, 0x00, 0x88, 0x01, 0x2c, 0x00, 0x00, 0x14, 0xa5, 0xcd, 0x74, 0x7b, 0x00, 0x14,
        0xa5, 0xcb, 0x6e, 0x1a, 0x00, 0x01, 0x02, 0x27, 0xf9, 0xb2, 0xb0, 0xed, 0x00, 0x00, 0xaa, 0xaa,
        0x03, 0x00, 0x00, 0x00, 0x08, 0x00, 0x45, 0x00, 0x00, 0x40, 0x8d, 0x07, 0x40, 0x00, 0x80, 0x06,
        0xdf, 0xc2, 0xc0, 0xa8, 0x01, 0x84, 0x82, 0xc0, 0x49, 0x01, 0x0e, 0xf3, 0x00, 0x50, 0x34, 0xfb,
        0x5c, 0xf8, 0x00, 0x00, 0x00, 0x00, 0xb0, 0x02, 0xff, 0xff, 0x06, 0xda, 0x00, 0x00, 0x02, 0x04,
        0x05, 0xb4, 0x01, 0x03, 0x03, 0x03, 0x01, 0x01, 0x08, 0x0a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x01, 0x01, 0x04, 0x02, 0x2c, 0xba, 0x2c, 0xff,
    ]

    @Test("a real PPI frame (libpcap's http_PPI.pcap, frame 5) decodes as tshark reads it")
    func libpcapPPIFrame() {
        #expect(Self.libpcapFrame.count == 186)
        let outcome = decode(Self.libpcapFrame, link: .ppi)
        guard case .segment(let segment) = outcome else { Issue.record("\(outcome)"); return }
        #expect(segment == TCPSegment(source: IPAddress(literal: "192.168.1.132"), destination: IPAddress(literal: "130.192.73.1"),
                                      sourcePort: 3827, destinationPort: 80, sequence: 888_888_568, acknowledgment: 0,
                                      flags: .syn, window: 65535, payloadLength: 0, windowScale: 3))
        // PPI 84 + QoS header 26 + LLC/SNAP 8 + IP 20 + TCP 44; the FCS follows.
        #expect(segment.payloadOffset == 84 + 26 + 8 + 20 + 44)
        #expect(segment.payloadOffset == Self.libpcapFrame.count - 4)
    }

    @Test("PPI: the FCS flag honoured, FCS-invalid malformed, Ethernet inside, other DLTs unsupported")
    func ppi() {
        let mac = FrameBuilder.ieee80211(subtype: 8, payload: Self.body())
        let header = FrameBuilder.ppi()
        #expect(Array(header.prefix(12)) == [0x00, 0x00, 0x20, 0x00, 0x69, 0x00, 0x00, 0x00, 0x02, 0x00, 0x14, 0x00])
        #expect(decode(header + mac + FrameBuilder.fcs, link: .ppi) == Fixture.expected())
        #expect(decode(FrameBuilder.ppi(commonFlags: 0) + mac, link: .ppi) == Fixture.expected())
        #expect(decode(FrameBuilder.ppi(commonFlags: nil) + mac, link: .ppi) == Fixture.expected())
        #expect(decode(FrameBuilder.ppi(commonFlags: 0x0005) + mac + FrameBuilder.fcs, link: .ppi) == .skipped(.malformed))
        #expect(decode(FrameBuilder.ppi(linkType: 1, commonFlags: nil) + Fixture.ethernet(Fixture.ipv4()), link: .ppi)
            == Fixture.expected())
        #expect(decode(FrameBuilder.ppi(linkType: 127, commonFlags: nil) + mac, link: .ppi) == .skipped(.unsupported))
        #expect(decode(FrameBuilder.ppi(linkType: 192, commonFlags: nil) + header + mac, link: .ppi) == .skipped(.unsupported))
    }

    @Test("PPI: version, lengths below 8 or beyond the frame, a field running past the header")
    func ppiMalformed() {
        let mac = FrameBuilder.ieee80211(payload: Self.body())
        var version = FrameBuilder.ppi() + mac
        version[0] = 2
        #expect(decode(version, link: .ppi) == .skipped(.malformed))
        for length: UInt16 in [0, 7, 0x7fff] {
            var bad = FrameBuilder.ppi() + mac
            bad[2] = UInt8(length & 0xff)
            bad[3] = UInt8(length >> 8)
            #expect(decode(bad, link: .ppi) == .skipped(.malformed), "length \(length)")
        }
        // A field claiming 0xffff bytes: the walk leaves the header, no flags are read.
        var field = FrameBuilder.ppi() + mac
        field[10] = 0xff
        field[11] = 0xff
        field[8] = 7  // not the 802.11-Common type
        #expect(decode(field, link: .ppi) == Fixture.expected())
        #expect(decode([0, 0, 8, 0, 105, 0, 0], wire: 60, link: .ppi) == .skipped(.truncated))
    }
}
