import Foundation
import Testing
@testable import FinscopeWire
import FinscopeTestSupport

/// Checks of the test-support library itself, through the decoder where possible.
@Suite("Test support")
struct TestSupportTests {
    @Test("pcap header and record, microseconds, little endian")
    func pcapMicroLittle() {
        var writer = PcapWriter(linkType: 1, snaplen: 65535)
        writer.append([0xaa, 0xbb], at: 1_700_000_000.25, originalLength: 60)
        let bytes = writer.bytes
        #expect(bytes.count == 24 + 16 + 2)
        #expect(Array(bytes[0..<4]) == [0xd4, 0xc3, 0xb2, 0xa1])
        #expect(Array(bytes[4..<8]) == [2, 0, 4, 0])
        #expect(Array(bytes[16..<24]) == [0xff, 0xff, 0, 0, 1, 0, 0, 0])
        // 1_700_000_000 = 0x6553f100; 250000 µs = 0x0003d090
        #expect(Array(bytes[24..<40]) == [0x00, 0xf1, 0x53, 0x65, 0x90, 0xd0, 0x03, 0x00, 2, 0, 0, 0, 60, 0, 0, 0])
        #expect(Array(bytes[40...]) == [0xaa, 0xbb])
    }

    @Test("pcap header and record, nanoseconds, big endian, exact nanoseconds")
    func pcapNanoBig() {
        var writer = PcapWriter(linkType: 276, precision: .nanoseconds, byteOrder: .big, snaplen: 96)
        writer.append([1, 2, 3, 4, 5], nanoseconds: 1_700_000_000_000_000_001, captureLength: 3)
        let bytes = writer.bytes
        #expect(Array(bytes[0..<4]) == [0xa1, 0xb2, 0x3c, 0x4d])
        #expect(Array(bytes[16..<24]) == [0, 0, 0, 96, 0, 0, 0x01, 0x14])
        #expect(Array(bytes[24..<40]) == [0x65, 0x53, 0xf1, 0x00, 0, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0, 5])
        #expect(Array(bytes[40...]) == [1, 2, 3])
    }

    @Test("Double timestamps round to the microsecond with carry")
    func microsecondCarry() {
        #expect(CaptureTime(1_700_000_000.001).microsecondParts == (1_700_000_000, 1000))
        #expect(CaptureTime(seconds: 5, nanoseconds: 999_999_600).microsecondParts == (6, 0))
        #expect(CaptureTime(1_700_000_000).adding(9.001).microsecondParts == (1_700_000_009, 1000))
        #expect(CaptureTime(nanoseconds: 1_500_000_000) == CaptureTime(seconds: 1, nanoseconds: 500_000_000))
    }

    @Test("pcapng: SHB, two IDBs with if_tsresol, EPBs on each")
    func pcapng() {
        var writer = PcapNGWriter()
        let ethernet = writer.addInterface(linkType: 1)
        let cooked = writer.addInterface(linkType: 276, snaplen: 128, tsresol: 9)
        writer.append([1, 2, 3], interface: ethernet, at: 2.5)
        writer.append([4, 5, 6, 7], interface: cooked, nanoseconds: 3_000_000_007, originalLength: 100)
        let bytes = writer.bytes
        // SHB: 28 bytes.
        #expect(Array(bytes[0..<12]) == [0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a])
        // IDB 0: 20 bytes, no options.
        #expect(Array(bytes[28..<48]) == [1, 0, 0, 0, 20, 0, 0, 0, 1, 0, 0, 0, 0, 0, 4, 0, 20, 0, 0, 0])
        // IDB 1: 16 + if_tsresol option (8) + end of options (4) = 32.
        #expect(Array(bytes[48..<80]) == [1, 0, 0, 0, 32, 0, 0, 0, 0x14, 0x01, 0, 0, 128, 0, 0, 0,
                                          9, 0, 1, 0, 9, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0, 0])
        // EPB on interface 0: 2.5 s in µs = 2_500_000 = 0x2625a0.
        #expect(Array(bytes[80..<116]) == [6, 0, 0, 0, 36, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xa0, 0x25, 0x26, 0,
                                           3, 0, 0, 0, 3, 0, 0, 0, 1, 2, 3, 0, 36, 0, 0, 0])
        // EPB on interface 1: 3_000_000_007 ns = 0xb2d05e07.
        #expect(Array(bytes[116..<152]) == [6, 0, 0, 0, 36, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0x07, 0x5e, 0xd0, 0xb2,
                                            4, 0, 0, 0, 100, 0, 0, 0, 4, 5, 6, 7, 36, 0, 0, 0])
        #expect(bytes.count == 152)
        #expect(PcapNGWriter.timestampUnits(CaptureTime(seconds: 1, nanoseconds: 500_000_000), tsresol: 0x80 | 10) == 1536)
    }

    @Test("HostPort parses IPv4 and bracketed IPv6")
    func hostPort() {
        let v4: HostPort = "10.0.0.1:40000"
        #expect(v4.address == IPAddress(ipv4: 0x0a00_0001) && v4.port == 40000)
        let v6: HostPort = "[fd00::1]:443"
        #expect(v6.address.description == "fd00::1" && v6.port == 443)
        #expect(v6.description == "[fd00::1]:443")
        #expect(HostPort(parsing: "fd00::1:443") == nil)
        #expect(HostPort(parsing: "10.0.0.1") == nil)
        #expect(HostPort(parsing: "10.0.0.1:70000") == nil)
    }

    @Test("IPv6 extension headers are built with correct lengths and padding")
    func extensionHeaderBytes() {
        #expect(IPv6ExtensionHeader.hopByHop().bytes(nextHeader: 6) == [6, 0, 1, 4, 0, 0, 0, 0])
        #expect(IPv6ExtensionHeader.destinationOptions(options: [1, 3, 0, 0, 0]).bytes(nextHeader: 17) == [17, 0, 1, 3, 0, 0, 0, 0])
        #expect(IPv6ExtensionHeader.destinationOptions(options: [0, 0, 0, 0, 0]).bytes(nextHeader: 6) == [6, 0, 0, 0, 0, 0, 0, 0])
        #expect(IPv6ExtensionHeader.fragment(offset: 185, moreFragments: true, identification: 9).bytes(nextHeader: 6)
            == [6, 0, 0x05, 0xc9, 0, 0, 0, 9])
        #expect(IPv6ExtensionHeader.routing(type: 4, segmentsLeft: 1, data: [UInt8](repeating: 0, count: 10)).bytes(nextHeader: 6).count == 16)
        let packet = IPv6Header("fd00::1", "fd00::2", extensionHeaders: [.hopByHop(), .fragment()]).packet(payload: [9, 9])
        #expect(packet[6] == 0 && packet[40] == 44 && packet[48] == 6)
        #expect(Array(packet[4..<6]) == [0, 18])
    }

    @Test("Conversation keeps sequence and acknowledgment numbers")
    func conversationNumbers() {
        var c = Conversation(client: "10.0.0.1:40000", server: "10.0.0.2:80", start: 1_700_000_000, clientISN: 1000, serverISN: 5000)
        c.handshake(at: 0.0)
        c.data(.client, bytes: 100, at: 0.1)
        c.ack(.server, at: 0.11)
        c.fin(.client, at: 1.0)
        c.ack(.server, at: 1.001)
        c.fin(.server, at: 9.0)
        c.ack(.client, at: 9.001)
        let f = c.frames
        #expect(f.map(\.flags) == [.syn, [.syn, .ack], .ack, [.psh, .ack], .ack, [.fin, .ack], .ack, [.fin, .ack], .ack])
        #expect(f.map(\.sequence) == [1000, 5000, 1001, 1001, 5001, 1101, 5001, 5001, 1102])
        #expect(f.map(\.acknowledgment) == [0, 1001, 5001, 5001, 1101, 5001, 1102, 1102, 5002])
        #expect(f.map(\.side) == [.client, .server, .client, .client, .server, .client, .server, .server, .client])
        #expect(f[6].seconds == 1_700_000_001.001)
        #expect(c.time(9.001) == f[8].seconds)
    }

    @Test("Conversation: a FIN lost after the capture point is not acknowledged; its retransmission is")
    func conversationLostFIN() {
        var c = Conversation(client: "10.0.0.1:40000", server: "10.0.0.2:80", clientISN: 0xffff_fff0, serverISN: 7)
        c.handshake(at: 0)
        c.data(.client, bytes: 15, at: 0.1)  // 0xfffffff1 + 15 wraps to 0
        #expect(c.nextSequence(.client) == 0)
        c.fin(.client, at: 1, delivered: false)
        c.ack(.server, at: 1.1)
        #expect(c.frames.last?.acknowledgment == 0)
        c.retransmitLast(.client, at: 1.5)
        c.ack(.server, at: 1.6)
        #expect(c.frames[c.frames.count - 2].sequence == 0)
        #expect(c.frames.last?.acknowledgment == 1)
        c.duplicateLast(after: 0.0005)
        #expect(c.frames.count == 9)
        #expect(c.frames[8].acknowledgment == 1 && c.frames[8].time == c.frames[7].time.adding(nanoseconds: 500_000))
        c.rst(.server, at: 2)
        #expect(c.frames.last?.flags == .rst && c.frames.last?.sequence == 8 && c.frames.last?.acknowledgment == 0)
        c.segment(.server, flags: [.fin, .ack], seq: .value(99), ack: .value(12345), payload: 0, window: 500, at: 3)
        #expect(c.frames.last.map { ($0.sequence, $0.acknowledgment, $0.window) } ?? (0, 0, 0) == (99, 12345, 500))
    }

    @Test("Conversation: out-of-order delivery is acknowledged once the gap is filled")
    func conversationReordering() {
        var c = Conversation(client: "10.0.0.1:40000", server: "10.0.0.2:80", clientISN: 100, serverISN: 200)
        c.handshake(at: 0)
        c.data(.client, bytes: 10, at: 1, delivered: false)  // 101..<111 lost
        c.data(.client, bytes: 10, at: 2)                    // 111..<121 held
        c.ack(.server, at: 2.1)
        #expect(c.frames.last?.acknowledgment == 101)
        c.segment(.client, flags: [.psh, .ack], seq: .value(101), payload: 10, at: 3)
        c.ack(.server, at: 3.1)
        #expect(c.frames.last?.acknowledgment == 121)
        c.ack(.server, at: 4, ack: .value(7))
        #expect(c.frames.last?.acknowledgment == 7)
    }

    @Test("Conversation: a new SYN with another ISN restarts the receiver's numbering")
    func conversationNewSYN() {
        var c = Conversation(client: "[fd00::1]:40000", server: "[fd00::2]:80", clientISN: 100, serverISN: 200)
        c.handshake(at: 0)
        c.syn(at: 5, seq: .value(9000))
        c.synAck(at: 5.001)
        #expect(c.frames.last?.acknowledgment == 9001)
        #expect(c.segments().last?.segment.destination.description == "fd00::1")
    }

    @Test("Conversation frames decode to what was scripted on every link", arguments: [
        Link.ethernet, .vlan([10]), .vlan([10, 20]), .qinq([100, 10]), .sll, .sll2, .null, .nullBigEndian,
        .nullFamily(ipv6: 28, byteOrder: .little), .loop, .raw, .rawLinkType(12), .rawLinkType(14),
        .nflog, .ppp, .pppHDLC, .ciscoHDLC, .pflog, .ipoib, .ieee80211, .radiotap, .ppi,
    ])
    func conversationDecodes(_ link: Link) throws {
        for (client, server) in [("10.0.0.1:40000", "10.0.0.2:80"), ("[fd00::1]:40000", "[fd00::2]:443")] {
            var c = Conversation(client: HostPort(client), server: HostPort(server))
            c.handshake(at: 0, clientWindowScale: 7, serverWindowScale: 9, mss: 1460)
            c.data(.server, bytes: 1000, at: 1)
            c.fin(.server, at: 2)
            c.ack(.client, at: 2.1)
            let kind = try #require(LinkKind(linkType: Int32(link.linkType)))
            for (frame, timed) in zip(c.frames, c.segments()) {
                #expect(decode(c.bytes(of: frame, link: link), link: kind) == .segment(timed.segment))
                let expected = TCPSegment(
                    source: c.endpoint(frame.side).address, destination: c.endpoint(frame.side.peer).address,
                    sourcePort: c.endpoint(frame.side).port, destinationPort: c.endpoint(frame.side.peer).port,
                    sequence: frame.sequence, acknowledgment: frame.acknowledgment, flags: frame.flags, window: frame.window,
                    payloadLength: UInt32(frame.payloadLength),
                    windowScale: frame.flags.contains(.syn) ? (frame.side == .client ? 7 : 9) : -1)
                #expect(decode(c.bytes(of: frame, link: link), link: kind) == .segment(expected))
            }
        }
    }

    @Test("Conversation writes a pcap file, truncated to a snaplen when asked")
    func conversationFile() throws {
        let directory = try TemporaryDirectory()
        var c = Conversation(client: "10.0.0.1:40000", server: "10.0.0.2:80")
        c.handshake(at: 0)
        c.data(.client, bytes: 1000, at: 1)
        let url = try c.writePcap(link: .sll2, to: directory.url(for: "c.pcap"), precision: .nanoseconds, captureLength: 80)
        let data = try Data(contentsOf: url)
        #expect(data.count == 24 + 4 * 16 + 3 * 60 + 80)
        #expect(Array(data[20..<24]) == [0x14, 0x01, 0, 0])
        let ng = try c.writePcapNG(link: .sll2, to: directory.url(for: "c.pcapng"), tsresol: 9)
        #expect(FileManager.default.fileExists(atPath: ng.path))
    }
}
