import Testing
@testable import FinscopeWire
import FinscopeTestSupport

@Suite("Link layers")
struct LinkLayerTests {
    @Test("LINKTYPE / DLT numbers map to link kinds")
    func linkTypeNumbers() {
        #expect(LinkKind(linkType: 0) == .null)
        #expect(LinkKind(linkType: 1) == .ethernet)
        #expect(LinkKind(linkType: 12) == .rawIP)
        #expect(LinkKind(linkType: 14) == .rawIP)
        #expect(LinkKind(linkType: 101) == .rawIP)
        #expect(LinkKind(linkType: 108) == .loop)
        #expect(LinkKind(linkType: 113) == .linuxCooked)
        #expect(LinkKind(linkType: 228) == .ipv4)
        #expect(LinkKind(linkType: 229) == .ipv6)
        #expect(LinkKind(linkType: 276) == .linuxCooked2)
    }

    @Test("the 2026-12-01 link types: NFLOG, PPP, PPP serial, Cisco HDLC, pflog, IPoIB, 802.11, radiotap, PPI")
    func newLinkTypeNumbers() {
        #expect(LinkKind(linkType: 239) == .nflog)
        #expect(LinkKind(linkType: 9) == .ppp)
        #expect(LinkKind(linkType: 50) == .pppHDLC)
        #expect(LinkKind(linkType: 104) == .ciscoHDLC)
        #expect(LinkKind(linkType: 117) == .pflog)
        #expect(LinkKind(linkType: 242) == .ipOverInfiniBand)
        #expect(LinkKind(linkType: 105) == .ieee80211)
        #expect(LinkKind(linkType: 127) == .ieee80211Radiotap)
        #expect(LinkKind(linkType: 192) == .ppi)
    }

    @Test("every kind has one row: its written number reads back as itself, numbers are not shared")
    func linkTypeTable() {
        #expect(LinkKind.table.count == LinkKind.allCases.count)
        for kind in LinkKind.allCases {
            #expect(LinkKind.table.filter { $0.kind == kind }.count == 1, "\(kind)")
            #expect(LinkKind(linkType: kind.linkType) == kind, "\(kind)")
            #expect(!kind.name.isEmpty)
        }
        let numbers = LinkKind.table.flatMap(\.numbers)
        #expect(Set(numbers).count == numbers.count)
        // The DLT values pcap_open_dead takes on Linux (libpcap writes LINKTYPE_RAW 101 for 12).
        #expect(LinkKind.rawIP.linkType == 12)
        #expect(LinkKind.ethernet.linkType == 1)
        #expect(LinkKind.linuxCooked2.linkType == 276)
        #expect(LinkKind.nflog.name == "Linux NFLOG")
    }

    @Test("decodedNames lists each family once, in table order")
    func decodedNames() {
        #expect(LinkKind.decodedNames == "Ethernet, Linux cooked (SLL/SLL2), BSD loopback, raw IP, NFLOG, PPP, Cisco HDLC, "
            + "pflog, IPoIB, 802.11 (plain, radiotap, PPI)")
    }

    @Test("link types finscope does not decode map to nil", arguments: [Int32(6), 8, 129, 147, 163, 220, 240, -1, 70000])
    func unknownLinkTypes(_ number: Int32) {
        #expect(LinkKind(linkType: number) == nil)
    }

    @Test("Ethernet + IPv4")
    func ethernetIPv4() {
        #expect(decode(Fixture.ethernet(Fixture.ipv4()), link: .ethernet) == Fixture.expected())
    }

    @Test("Ethernet + IPv6")
    func ethernetIPv6() {
        let frame = Fixture.ethernet(Fixture.ipv6(), etherType: EtherType.ipv6)
        #expect(frame.count == 14 + 40 + 20 + 10)
        #expect(decode(frame, link: .ethernet) == Fixture.expected(ipv6: true))
    }

    @Test("one 802.1Q tag")
    func oneVLANTag() {
        let frame = Fixture.ethernet(Fixture.ipv4(), tags: [.dot1q(10)])
        #expect(Array(frame[12..<18]) == [0x81, 0x00, 0x00, 0x0a, 0x08, 0x00])
        #expect(decode(frame, link: .ethernet) == Fixture.expected())
    }

    @Test("two stacked tags: 802.1ad outer, 802.1Q inner, IPv4 and IPv6")
    func qinq() {
        let v4 = Fixture.ethernet(Fixture.ipv4(), tags: [.dot1ad(100), .dot1q(10)])
        #expect(Array(v4[12..<22]) == [0x88, 0xa8, 0x00, 0x64, 0x81, 0x00, 0x00, 0x0a, 0x08, 0x00])
        #expect(decode(v4, link: .ethernet) == Fixture.expected())
        let v6 = Fixture.ethernet(Fixture.ipv6(), etherType: EtherType.ipv6, tags: [.dot1ad(100), .dot1q(10)])
        #expect(decode(v6, link: .ethernet) == Fixture.expected(ipv6: true))
    }

    @Test("two 802.1Q tags and the legacy 0x9100 QinQ type")
    func otherStacks() {
        #expect(decode(Fixture.ethernet(Fixture.ipv4(), tags: [.dot1q(1), .dot1q(2)]), link: .ethernet) == Fixture.expected())
        #expect(decode(Fixture.ethernet(Fixture.ipv4(), tags: [VLANTag(tpid: 0x9100, vid: 7), .dot1q(2)]), link: .ethernet)
            == Fixture.expected())
    }

    @Test("eight stacked tags decode, a ninth is malformed")
    func tagLimit() {
        let eight = [VLANTag](repeating: .dot1q(5), count: 8)
        #expect(decode(Fixture.ethernet(Fixture.ipv4(), tags: eight), link: .ethernet) == Fixture.expected())
        let nine = [VLANTag](repeating: .dot1q(5), count: 9)
        #expect(decode(Fixture.ethernet(Fixture.ipv4(), tags: nine), link: .ethernet) == .skipped(.malformed))
    }

    @Test("a VLAN tag cut by the snaplen is truncated")
    func truncatedTag() {
        let frame = Fixture.ethernet(Fixture.ipv4(), tags: [.dot1q(10)])
        #expect(decode(Array(frame.prefix(16)), wire: frame.count, link: .ethernet) == .skipped(.truncated))
        #expect(decode(Array(frame.prefix(18)), wire: frame.count, link: .ethernet) == .skipped(.truncated))
    }

    @Test("an Ethernet header shorter than 14 bytes is truncated", arguments: [0, 1, 12, 13])
    func shortEthernet(_ length: Int) {
        let frame = Fixture.ethernet(Fixture.ipv4())
        #expect(decode(Array(frame.prefix(length)), wire: frame.count, link: .ethernet) == .skipped(.truncated))
    }

    @Test("Linux cooked v1 (16-byte header), IPv4 and IPv6")
    func linuxCooked() {
        let v4 = FrameBuilder.sll(protocolType: EtherType.ipv4, payload: Fixture.ipv4(), packetType: 4)
        #expect(v4.count == 16 + 20 + 20 + 10)
        #expect(Array(v4[14..<16]) == [0x08, 0x00])
        #expect(decode(v4, link: .linuxCooked) == Fixture.expected())
        let v6 = FrameBuilder.sll(protocolType: EtherType.ipv6, payload: Fixture.ipv6())
        #expect(decode(v6, link: .linuxCooked) == Fixture.expected(ipv6: true))
    }

    @Test("Linux cooked v1: VLAN-tagged protocol, ARP, and a short header")
    func linuxCookedOthers() {
        // With VLAN offload off, SLL may carry 0x8100 followed by the tag.
        var tagged: [UInt8] = [0x00, 0x0a, 0x08, 0x00]
        tagged += Fixture.ipv4()
        #expect(decode(FrameBuilder.sll(protocolType: EtherType.vlan, payload: tagged), link: .linuxCooked) == Fixture.expected())
        #expect(decode(FrameBuilder.sll(protocolType: EtherType.arp, payload: FrameBuilder.arpRequest()), link: .linuxCooked)
            == .skipped(.notTCP))
        let frame = FrameBuilder.sll(protocolType: EtherType.ipv4, payload: Fixture.ipv4())
        #expect(decode(Array(frame.prefix(15)), wire: frame.count, link: .linuxCooked) == .skipped(.truncated))
    }

    @Test("Linux cooked v2 (20-byte header), IPv4 and IPv6")
    func linuxCooked2() {
        let v4 = FrameBuilder.sll2(protocolType: EtherType.ipv4, payload: Fixture.ipv4(), interfaceIndex: 3)
        #expect(v4.count == 20 + 20 + 20 + 10)
        #expect(Array(v4[0..<2]) == [0x08, 0x00])
        #expect(decode(v4, link: .linuxCooked2) == Fixture.expected())
        let v6 = FrameBuilder.sll2(protocolType: EtherType.ipv6, payload: Fixture.ipv6())
        #expect(decode(v6, link: .linuxCooked2) == Fixture.expected(ipv6: true))
        #expect(decode(Array(v4.prefix(19)), wire: v4.count, link: .linuxCooked2) == .skipped(.truncated))
    }

    @Test("NULL, AF_INET in both byte orders", arguments: [ByteOrder.little, .big])
    func nullIPv4(_ order: ByteOrder) {
        let frame = FrameBuilder.null(family: AddressFamily.inet, byteOrder: order, payload: Fixture.ipv4())
        #expect(Array(frame.prefix(4)) == (order == .little ? [2, 0, 0, 0] : [0, 0, 0, 2]))
        #expect(decode(frame, link: .null) == Fixture.expected())
    }

    @Test("NULL, the AF_INET6 values of Linux, Windows, OpenBSD, FreeBSD, Darwin, in both byte orders",
          arguments: [UInt32(10), 23, 24, 28, 30], [ByteOrder.little, .big])
    func nullIPv6(_ family: UInt32, _ order: ByteOrder) {
        let frame = FrameBuilder.null(family: family, byteOrder: order, payload: Fixture.ipv6())
        #expect(decode(frame, link: .null) == Fixture.expected(ipv6: true))
    }

    @Test("NULL with another family is not TCP; a header under 4 bytes is truncated")
    func nullOthers() {
        #expect(decode(FrameBuilder.null(family: 7, payload: Fixture.ipv4()), link: .null) == .skipped(.notTCP))
        #expect(decode(FrameBuilder.null(family: 7, byteOrder: .big, payload: Fixture.ipv4()), link: .null) == .skipped(.notTCP))
        #expect(decode([2, 0, 0], wire: 60, link: .null) == .skipped(.truncated))
    }

    @Test("LOOP: family in network byte order")
    func loop() {
        #expect(decode(FrameBuilder.loop(family: AddressFamily.inet, payload: Fixture.ipv4()), link: .loop) == Fixture.expected())
        #expect(decode(FrameBuilder.loop(family: AddressFamily.inet6OpenBSD, payload: Fixture.ipv6()), link: .loop)
            == Fixture.expected(ipv6: true))
        // LOOP never swaps: a little-endian AF_INET is an unknown family.
        #expect(decode(FrameBuilder.null(family: AddressFamily.inet, byteOrder: .little, payload: Fixture.ipv4()), link: .loop)
            == .skipped(.notTCP))
        #expect(decode([0, 0], wire: 60, link: .loop) == .skipped(.truncated))
    }

    @Test("raw IP under DLT 12, 14 and LINKTYPE 101, IPv4 and IPv6", arguments: [Int32(12), 14, 101])
    func rawIP(_ number: Int32) throws {
        let link = try #require(LinkKind(linkType: number))
        #expect(decode(Fixture.ipv4(), link: link) == Fixture.expected())
        #expect(decode(Fixture.ipv6(), link: link) == Fixture.expected(ipv6: true))
    }

    @Test("raw IP: a version nibble other than 4 or 6 is malformed; an empty frame is truncated", arguments: [UInt8(0), 5, 7, 15])
    func rawIPBadVersion(_ version: UInt8) {
        var packet = Fixture.ipv4()
        packet[0] = version << 4 | 5
        #expect(decode(packet, link: .rawIP) == .skipped(.malformed))
        #expect(decode([], wire: 60, link: .rawIP) == .skipped(.truncated))
    }

    @Test("LINKTYPE_IPV4 (228) and LINKTYPE_IPV6 (229)")
    func ipv4AndIPv6LinkTypes() throws {
        let v4 = try #require(LinkKind(linkType: 228))
        let v6 = try #require(LinkKind(linkType: 229))
        #expect(decode(Fixture.ipv4(), link: v4) == Fixture.expected())
        #expect(decode(Fixture.ipv6(), link: v6) == Fixture.expected(ipv6: true))
        // The other version under each is malformed.
        #expect(decode(Fixture.ipv6(), link: v4) == .skipped(.malformed))
        #expect(decode(Fixture.ipv4(), link: v6) == .skipped(.malformed))
    }

    @Test("non-IP EtherTypes: ARP and LLDP are not TCP")
    func notIP() {
        #expect(decode(FrameBuilder.ethernet(etherType: EtherType.arp, payload: FrameBuilder.arpRequest(), padToMinimum: true),
                       link: .ethernet) == .skipped(.notTCP))
        #expect(decode(FrameBuilder.ethernet(etherType: 0x88cc, payload: FrameBuilder.filler(40)), link: .ethernet)
            == .skipped(.notTCP))
    }

    @Test("MPLS, PPPoE and LLC/SNAP are unsupported")
    func unsupportedEncapsulations() {
        let packet = Fixture.ipv4()
        #expect(decode(FrameBuilder.ethernet(etherType: EtherType.mplsUnicast, payload: FrameBuilder.mpls(labels: [16], payload: packet)),
                       link: .ethernet) == .skipped(.unsupported))
        #expect(decode(FrameBuilder.ethernet(etherType: EtherType.mplsMulticast, payload: FrameBuilder.mpls(labels: [16, 17], payload: packet)),
                       link: .ethernet) == .skipped(.unsupported))
        #expect(decode(FrameBuilder.ethernet(etherType: EtherType.pppoeSession, payload: FrameBuilder.pppoeSession(payload: packet)),
                       link: .ethernet) == .skipped(.unsupported))
        #expect(decode(FrameBuilder.ethernet(etherType: EtherType.pppoeDiscovery, payload: FrameBuilder.filler(20)),
                       link: .ethernet) == .skipped(.unsupported))
        let llc = FrameBuilder.llcSnap(payload: packet)
        #expect(decode(FrameBuilder.ethernet(etherType: UInt16(llc.count), payload: llc), link: .ethernet) == .skipped(.unsupported))
        // MPLS behind a VLAN tag too.
        #expect(decode(FrameBuilder.ethernet(vlanTags: [.dot1q(3)], etherType: EtherType.mplsUnicast,
                                             payload: FrameBuilder.mpls(labels: [16], payload: packet)), link: .ethernet)
            == .skipped(.unsupported))
    }
}
