import Testing
@testable import FinscopeWire
import FinscopeTestSupport

@Suite("IPv4")
struct IPv4Tests {
    static func header() -> IPv4Header { IPv4Header(source: Fixture.v4Source, destination: Fixture.v4Destination) }

    @Test("options: IHL 6 through 15", arguments: 6...15)
    func options(_ ihl: Int) {
        var header = Self.header()
        // NOPs, ending in an EOL when there is room (record-route-like bytes are as good as any).
        header.options = [UInt8](repeating: 1, count: (ihl - 5) * 4 - 1) + [0]
        let packet = Fixture.ipv4(header: header)
        #expect(packet[0] == 0x40 | UInt8(ihl))
        #expect(decode(Fixture.ethernet(packet), link: .ethernet) == Fixture.expected())
        #expect(decode(packet, link: .rawIP) == Fixture.expected())
    }

    @Test("options cut by the snaplen are truncated")
    func optionsTruncated() {
        var header = Self.header()
        header.options = [UInt8](repeating: 1, count: 40)  // IHL 15
        let frame = Fixture.ethernet(Fixture.ipv4(header: header))
        #expect(decode(Array(frame.prefix(14 + 40)), wire: frame.count, link: .ethernet) == .skipped(.truncated))
    }

    @Test("IHL below 5 is malformed", arguments: 0...4)
    func shortIHL(_ ihl: Int) {
        var header = Self.header()
        header.ihlOverride = UInt8(ihl)
        #expect(decode(Fixture.ethernet(Fixture.ipv4(header: header)), link: .ethernet) == .skipped(.malformed))
    }

    @Test("an IP header shorter than 20 bytes is truncated", arguments: [0, 1, 10, 19])
    func shortHeader(_ captured: Int) {
        let frame = Fixture.ethernet(Fixture.ipv4())
        #expect(decode(Array(frame.prefix(14 + captured)), wire: frame.count, link: .ethernet) == .skipped(.truncated))
    }

    @Test("a version nibble other than 4 under EtherType 0x0800 is malformed", arguments: [UInt8(0), 5, 6, 15])
    func wrongVersion(_ version: UInt8) {
        var header = Self.header()
        header.version = version
        #expect(decode(Fixture.ethernet(Fixture.ipv4(header: header)), link: .ethernet) == .skipped(.malformed))
    }

    @Test("snaplen truncation: 96 captured bytes of a 1514-byte frame give payload 1448")
    func snaplen() {
        let tcp = Fixture.tcp(flags: .ack, options: TCPOption.nop + TCPOption.nop + TCPOption.timestamps(value: 7, echo: 9),
                              payloadLength: 1448)
        let frame = Fixture.ethernet(Fixture.ipv4(tcp))
        #expect(frame.count == 1514)
        #expect(decode(Array(frame.prefix(96)), wire: 1514, link: .ethernet) == Fixture.expected(flags: .ack, payloadLength: 1448))
        // Cut exactly at the end of the TCP header (14 + 20 + 32).
        #expect(decode(Array(frame.prefix(66)), wire: 1514, link: .ethernet) == Fixture.expected(flags: .ack, payloadLength: 1448))
    }

    @Test("total length 0 (segmentation offload) takes the wire length")
    func offloadTotalLength() {
        var header = Self.header()
        header.totalLengthOverride = 0
        let frame = Fixture.ethernet(Fixture.ipv4(Fixture.tcp(payloadLength: 4000), header: header))
        #expect(decode(frame, link: .ethernet) == Fixture.expected(payloadLength: 4000))
        // Also when the capture kept only the headers.
        #expect(decode(Array(frame.prefix(54)), wire: frame.count, link: .ethernet) == Fixture.expected(payloadLength: 4000))
        // Raw IP: the whole frame is the IP packet.
        #expect(decode(Fixture.ipv4(Fixture.tcp(payloadLength: 4000), header: header), link: .rawIP)
            == Fixture.expected(payloadLength: 4000))
    }

    @Test("Ethernet padding does not count as payload")
    func ethernetPadding() {
        let packet = Fixture.ipv4(Fixture.tcp(flags: .ack, payloadLength: 0))
        let frame = FrameBuilder.ethernet(etherType: EtherType.ipv4, payload: packet, padToMinimum: true)
        #expect(frame.count == 60)
        #expect(decode(frame, link: .ethernet) == Fixture.expected(flags: .ack, payloadLength: 0))
        // One payload byte plus five padding bytes.
        let one = FrameBuilder.ethernet(etherType: EtherType.ipv4, payload: Fixture.ipv4(Fixture.tcp(payloadLength: 1)), padToMinimum: true)
        #expect(one.count == 60)
        #expect(decode(one, link: .ethernet) == Fixture.expected(payloadLength: 1))
        // Padding behind a VLAN tag.
        let tagged = FrameBuilder.ethernet(vlanTags: [.dot1q(9)], etherType: EtherType.ipv4, payload: packet, padToMinimum: true)
        #expect(decode(tagged + [0, 0, 0, 0], link: .ethernet) == Fixture.expected(flags: .ack, payloadLength: 0))
    }

    @Test("total length shorter than the IP header is malformed", arguments: [UInt16(1), 19])
    func totalBelowHeader(_ total: UInt16) {
        var header = Self.header()
        header.totalLengthOverride = total
        #expect(decode(Fixture.ethernet(Fixture.ipv4(header: header)), link: .ethernet) == .skipped(.malformed))
    }

    @Test("total length shorter than IP + TCP headers is malformed", arguments: [UInt16(20), 21, 39])
    func totalBelowTCPHeader(_ total: UInt16) {
        var header = Self.header()
        header.totalLengthOverride = total
        #expect(decode(Fixture.ethernet(Fixture.ipv4(header: header)), link: .ethernet) == .skipped(.malformed))
    }

    @Test("total length beyond the wire length is malformed (lengths that lie)")
    func totalBeyondWire() {
        var header = Self.header()
        header.totalLengthOverride = 51  // 20 + 20 + 10 bytes are there
        let frame = Fixture.ethernet(Fixture.ipv4(header: header))
        #expect(decode(frame, link: .ethernet) == .skipped(.malformed))
        // A wire length that covers it makes the same bytes a snaplen-truncated frame.
        #expect(decode(frame, wire: frame.count + 1, link: .ethernet) == Fixture.expected(payloadLength: 11))
        header.totalLengthOverride = 1500
        #expect(decode(Fixture.ethernet(Fixture.ipv4(header: header)), wire: 1000, link: .ethernet) == .skipped(.malformed))
    }

    @Test("first fragment decodes with the payload it carries")
    func firstFragment() {
        var header = Self.header()
        header.moreFragments = true
        header.identification = 0x1234
        let packet = Fixture.ipv4(Fixture.tcp(payloadLength: 1000), header: header)
        #expect(Array(packet[6..<8]) == [0x20, 0x00])
        #expect(decode(Fixture.ethernet(packet), link: .ethernet) == Fixture.expected(payloadLength: 1000))
    }

    @Test("don't-fragment flag set: decodes as usual")
    func dontFragment() {
        var header = Self.header()
        header.dontFragment = true
        #expect(decode(Fixture.ethernet(Fixture.ipv4(header: header)), link: .ethernet) == Fixture.expected())
    }

    @Test("non-first fragments are skipped as fragments", arguments: [UInt16(1), 185, 0x1fff])
    func laterFragment(_ offset: UInt16) {
        for more in [true, false] {
            var header = Self.header()
            header.fragmentOffset = offset
            header.moreFragments = more
            // The bytes after the IP header are not a TCP header; even too few bytes for one.
            #expect(decode(Fixture.ethernet(header.packet(payload: FrameBuilder.filler(8))), link: .ethernet) == .skipped(.fragment))
            #expect(decode(Fixture.ethernet(header.packet(payload: FrameBuilder.filler(400))), link: .ethernet) == .skipped(.fragment))
        }
    }

    @Test("UDP and ICMP are not TCP", arguments: [UInt8(17), 1, 2, 89, 132])
    func notTCP(_ protocolNumber: UInt8) {
        let header = IPv4Header(source: Fixture.v4Source, destination: Fixture.v4Destination, protocolNumber: protocolNumber)
        let payload = protocolNumber == 17 ? FrameBuilder.udp(sourcePort: 5353, destinationPort: 5353, payload: FrameBuilder.filler(30))
            : FrameBuilder.icmpEcho()
        #expect(decode(Fixture.ethernet(header.packet(payload: payload)), link: .ethernet) == .skipped(.notTCP))
    }

    @Test("VXLAN (UDP 4789 carrying TCP) is not TCP")
    func vxlan() {
        let inner = Fixture.ethernet(Fixture.ipv4())
        let vxlan: [UInt8] = [0x08, 0, 0, 0, 0, 0, 0x64, 0] + inner
        let header = IPv4Header(source: Fixture.v4Source, destination: Fixture.v4Destination, protocolNumber: 17)
        let frame = Fixture.ethernet(header.packet(payload: FrameBuilder.udp(sourcePort: 50000, destinationPort: 4789, payload: vxlan)))
        #expect(decode(frame, link: .ethernet) == .skipped(.notTCP))
    }

    @Test("GRE, AH, ESP, IP-in-IP and IPv6-in-IPv4 are unsupported", arguments: [UInt8(47), 51, 50, 4, 41])
    func unsupported(_ protocolNumber: UInt8) {
        let header = IPv4Header(source: Fixture.v4Source, destination: Fixture.v4Destination, protocolNumber: protocolNumber)
        let inner = protocolNumber == 41 ? Fixture.ipv6() : Fixture.ipv4()
        let payload = protocolNumber == 47 ? FrameBuilder.gre(payload: inner) : inner
        #expect(decode(Fixture.ethernet(header.packet(payload: payload)), link: .ethernet) == .skipped(.unsupported))
    }
}
