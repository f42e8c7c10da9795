import Testing
@testable import FinscopeWire
import FinscopeTestSupport

@Suite("TCP header")
struct TCPHeaderTests {
    static func frame(_ tcp: TCPHeader) -> [UInt8] { Fixture.ethernet(Fixture.ipv4(tcp)) }

    @Test("every field, at their extremes")
    func fields() {
        let tcp = TCPHeader(sourcePort: 65535, destinationPort: 1, sequence: 0xffff_ffff, acknowledgment: 0,
                            flags: TCPFlags(rawValue: 0xff), window: 0, payloadLength: 0)
        let expected = TCPSegment(source: Fixture.v4Source, destination: Fixture.v4Destination, sourcePort: 65535, destinationPort: 1,
                                  sequence: 0xffff_ffff, acknowledgment: 0, flags: [.fin, .syn, .rst, .psh, .ack, .urg, .ece, .cwr],
                                  window: 0, payloadLength: 0, windowScale: -1)
        #expect(decode(Self.frame(tcp), link: .ethernet) == .segment(expected))
    }

    @Test("each flag bit", arguments: [(UInt8(0x01), TCPFlags.fin), (0x02, .syn), (0x04, .rst), (0x08, .psh),
                                       (0x10, .ack), (0x20, .urg), (0x40, .ece), (0x80, .cwr)])
    func flagBits(_ bit: UInt8, _ flag: TCPFlags) {
        var bytes = Self.frame(Fixture.tcp(flags: []))
        bytes[14 + 20 + 13] = bit
        guard case .segment(let segment) = decode(bytes, link: .ethernet) else {
            Issue.record("not decoded")
            return
        }
        #expect(segment.flags == flag)
        #expect(segment.flags.rawValue == bit)
    }

    @Test("flags print as tcpdump does")
    func flagText() {
        #expect(TCPFlags.syn.description == "S")
        #expect(TCPFlags([.syn, .ack]).description == "S.")
        #expect(TCPFlags([.fin, .ack]).description == "F.")
        #expect(TCPFlags([.psh, .ack]).description == "P.")
        #expect(TCPFlags.rst.description == "R")
        #expect(TCPFlags([.rst, .ack]).description == "R.")
        #expect(TCPFlags([]).description == "none")
    }

    @Test("window scale is read from a SYN, after MSS, SACK-permitted and timestamps")
    func windowScaleOnSYN() {
        let syn = Fixture.tcp(flags: .syn, options: TCPOption.linuxSYN(windowScale: 7), payloadLength: 0)
        #expect(syn.headerLength == 40)
        #expect(decode(Self.frame(syn), link: .ethernet) == Fixture.expected(flags: .syn, payloadLength: 0, windowScale: 7))
        let synAck = Fixture.tcp(flags: [.syn, .ack], options: TCPOption.mss(1460) + TCPOption.nop + TCPOption.windowScale(9),
                                 payloadLength: 0)
        #expect(decode(Self.frame(synAck), link: .ethernet) == Fixture.expected(flags: [.syn, .ack], payloadLength: 0, windowScale: 9))
        // Shift 0 is "scaling on, factor 1", not "absent".
        let zero = Fixture.tcp(flags: .syn, options: TCPOption.nop + TCPOption.windowScale(0), payloadLength: 0)
        #expect(decode(Self.frame(zero), link: .ethernet) == Fixture.expected(flags: .syn, payloadLength: 0, windowScale: 0))
    }

    @Test("window scale is picked up only on SYN segments")
    func windowScaleOnlyOnSYN() {
        for flags: TCPFlags in [.ack, [.psh, .ack], [.fin, .ack], .rst] {
            let tcp = Fixture.tcp(flags: flags, options: TCPOption.nop + TCPOption.windowScale(7), payloadLength: 5)
            #expect(decode(Self.frame(tcp), link: .ethernet) == Fixture.expected(flags: flags, payloadLength: 5, windowScale: -1))
        }
    }

    @Test("a SYN without the option has no window scale")
    func synWithoutWindowScale() {
        let tcp = Fixture.tcp(flags: .syn, options: TCPOption.mss(1460) + TCPOption.sackPermitted + TCPOption.nop + TCPOption.nop
                                  + TCPOption.timestamps(value: 1, echo: 0), payloadLength: 0)
        #expect(decode(Self.frame(tcp), link: .ethernet) == Fixture.expected(flags: .syn, payloadLength: 0, windowScale: -1))
        let bare = Fixture.tcp(flags: .syn, payloadLength: 0)
        #expect(decode(Self.frame(bare), link: .ethernet) == Fixture.expected(flags: .syn, payloadLength: 0, windowScale: -1))
    }

    @Test("a shift above 14 is used as 14 (RFC 7323 §2.3)")
    func windowScaleClamped() {
        let tcp = Fixture.tcp(flags: .syn, options: TCPOption.windowScale(15) + TCPOption.nop, payloadLength: 0)
        #expect(decode(Self.frame(tcp), link: .ethernet) == Fixture.expected(flags: .syn, payloadLength: 0, windowScale: 14))
    }

    @Test("window scale after an end-of-list option, or in a broken option list, is absent")
    func windowScaleBrokenOptions() {
        let afterEnd = Fixture.tcp(flags: .syn, options: TCPOption.end + TCPOption.windowScale(7), payloadLength: 0)
        #expect(decode(Self.frame(afterEnd), link: .ethernet) == Fixture.expected(flags: .syn, payloadLength: 0, windowScale: -1))
        // An MSS option claiming length 0, then a window scale: the walk stops.
        let zeroLength = Fixture.tcp(flags: .syn, options: [2, 0, 5, 0xb4] + TCPOption.windowScale(7), payloadLength: 0)
        #expect(decode(Self.frame(zeroLength), link: .ethernet) == Fixture.expected(flags: .syn, payloadLength: 0, windowScale: -1))
        // An option running past the header.
        let overrun = Fixture.tcp(flags: .syn, options: TCPOption.nop + TCPOption.nop + [8, 10], payloadLength: 0)
        #expect(decode(Self.frame(overrun), link: .ethernet) == Fixture.expected(flags: .syn, payloadLength: 0, windowScale: -1))
        // A window-scale kind with the wrong length is skipped, a later correct one found.
        let wrongLength = Fixture.tcp(flags: .syn, options: [3, 4, 7, 0] + TCPOption.nop + TCPOption.windowScale(5), payloadLength: 0)
        #expect(decode(Self.frame(wrongLength), link: .ethernet) == Fixture.expected(flags: .syn, payloadLength: 0, windowScale: 5))
    }

    @Test("data offset 6 through 15: options are skipped, payload length excludes them", arguments: 6...15)
    func dataOffsets(_ words: Int) {
        let optionBytes = (words - 5) * 4
        // NOPs, with the window scale in the last three bytes.
        let options = [UInt8](repeating: 1, count: optionBytes - 3) + TCPOption.windowScale(6)
        let syn = Fixture.tcp(flags: .syn, options: options, payloadLength: 0)
        #expect(syn.bytes[12] >> 4 == UInt8(words))
        #expect(decode(Self.frame(syn), link: .ethernet) == Fixture.expected(flags: .syn, payloadLength: 0, windowScale: 6))
        let data = Fixture.tcp(options: [UInt8](repeating: 1, count: optionBytes), payloadLength: 77)
        #expect(decode(Self.frame(data), link: .ethernet) == Fixture.expected(payloadLength: 77))
    }

    @Test("SACK blocks and timestamps on a data segment are skipped")
    func sackAndTimestamps() {
        let options = TCPOption.nop + TCPOption.nop + TCPOption.timestamps(value: 100, echo: 200)
            + TCPOption.nop + TCPOption.nop + TCPOption.sack([(left: 1, right: 2), (left: 3, right: 4)])
        let tcp = Fixture.tcp(flags: .ack, options: options, payloadLength: 0)
        #expect(tcp.headerLength == 52)
        #expect(decode(Self.frame(tcp), link: .ethernet) == Fixture.expected(flags: .ack, payloadLength: 0))
    }

    @Test("data offset below 5 is malformed", arguments: 0...4)
    func shortDataOffset(_ words: Int) {
        let tcp = Fixture.tcp(dataOffsetOverride: UInt8(words))
        #expect(decode(Self.frame(tcp), link: .ethernet) == .skipped(.malformed))
        #expect(decode(Fixture.ethernet(Fixture.ipv6(tcp), etherType: EtherType.ipv6), link: .ethernet) == .skipped(.malformed))
    }

    @Test("data offset beyond the IP payload is malformed")
    func dataOffsetBeyondPayload() {
        // 20 header bytes + 10 payload bytes; the header claims 32 and 60.
        for words: UInt8 in [8, 15] {
            let tcp = Fixture.tcp(dataOffsetOverride: words)
            #expect(decode(Self.frame(tcp), link: .ethernet) == .skipped(.malformed))
            #expect(decode(Fixture.ethernet(Fixture.ipv6(tcp), etherType: EtherType.ipv6), link: .ethernet) == .skipped(.malformed))
        }
        // Exactly the IP payload: a header without payload.
        let exact = Fixture.tcp(payloadLength: 0, dataOffsetOverride: 5)
        #expect(decode(Self.frame(exact), link: .ethernet) == Fixture.expected(payloadLength: 0))
    }

    @Test("options cut by the snaplen are truncated")
    func optionsTruncated() {
        let tcp = Fixture.tcp(flags: .syn, options: TCPOption.linuxSYN(), payloadLength: 0)  // 40-byte header
        let frame = Self.frame(tcp)
        for captured in [14 + 20 + 20, 14 + 20 + 39] {
            #expect(decode(Array(frame.prefix(captured)), wire: frame.count, link: .ethernet) == .skipped(.truncated))
        }
        #expect(decode(Array(frame.prefix(14 + 20 + 40)), wire: frame.count, link: .ethernet)
            == Fixture.expected(flags: .syn, payloadLength: 0, windowScale: 7))
    }

    @Test("a TCP header shorter than 20 bytes is truncated", arguments: [0, 1, 12, 13, 19])
    func shortTCPHeader(_ captured: Int) {
        let frame = Self.frame(Fixture.tcp(payloadLength: 100))
        #expect(decode(Array(frame.prefix(14 + 20 + captured)), wire: frame.count, link: .ethernet) == .skipped(.truncated))
        let v6 = Fixture.ethernet(Fixture.ipv6(Fixture.tcp(payloadLength: 100)), etherType: EtherType.ipv6)
        #expect(decode(Array(v6.prefix(14 + 40 + captured)), wire: v6.count, link: .ethernet) == .skipped(.truncated))
    }

    @Test("a wire length shorter than the captured bytes is treated as the captured length")
    func wireBelowCaptured() {
        let frame = Self.frame(Fixture.tcp())
        #expect(decode(frame, wire: 10, link: .ethernet) == Fixture.expected())
    }
}
