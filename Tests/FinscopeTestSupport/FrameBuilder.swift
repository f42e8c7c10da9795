// Byte-exact frames for decoder and flow tests. Checksums are left zero unless given:
// finscope does not check them.

/// Raw TCP option bytes (concatenate them into `TCPHeader.options`).
public enum TCPOption {
    public static let end: [UInt8] = [0]
    public static let nop: [UInt8] = [1]
    public static func mss(_ value: UInt16) -> [UInt8] { [2, 4, UInt8(value >> 8), UInt8(value & 0xff)] }
    public static func windowScale(_ shift: UInt8) -> [UInt8] { [3, 3, shift] }
    public static let sackPermitted: [UInt8] = [4, 2]
    public static func sack(_ blocks: [(left: UInt32, right: UInt32)]) -> [UInt8] {
        var out: [UInt8] = [5, UInt8(2 + 8 * blocks.count)]
        for block in blocks {
            out.append32(block.left)
            out.append32(block.right)
        }
        return out
    }
    public static func timestamps(value: UInt32, echo: UInt32) -> [UInt8] {
        var out: [UInt8] = [8, 10]
        out.append32(value)
        out.append32(echo)
        return out
    }
    /// The options Linux puts on a SYN: MSS, SACK-permitted, timestamps, NOP, window scale (20 bytes).
    public static func linuxSYN(mss: UInt16 = 1460, windowScale shift: UInt8 = 7, timestamp: UInt32 = 1) -> [UInt8] {
        Self.mss(mss) + sackPermitted + timestamps(value: timestamp, echo: 0) + nop + windowScale(shift)
    }
}

/// A TCP header plus payload.
public struct TCPHeader: Sendable, Equatable {
    public var sourcePort: UInt16
    public var destinationPort: UInt16
    public var sequence: UInt32
    public var acknowledgment: UInt32
    public var flags: TCPFlags
    public var window: UInt16
    public var checksum: UInt16 = 0
    public var urgentPointer: UInt16 = 0
    /// Option bytes; padded with zeros (end of list) to a multiple of 4.
    public var options: [UInt8]
    /// Data offset in 32-bit words written instead of the computed one (0...15).
    public var dataOffsetOverride: UInt8?
    /// The four reserved bits next to the data offset.
    public var reservedBits: UInt8 = 0
    public var payload: [UInt8]

    public init(sourcePort: UInt16 = 40000, destinationPort: UInt16 = 80, sequence: UInt32 = 0, acknowledgment: UInt32 = 0,
                flags: TCPFlags = .ack, window: UInt16 = 65535, options: [UInt8] = [], payload: [UInt8] = [],
                dataOffsetOverride: UInt8? = nil) {
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
        self.sequence = sequence
        self.acknowledgment = acknowledgment
        self.flags = flags
        self.window = window
        self.options = options
        self.payload = payload
        self.dataOffsetOverride = dataOffsetOverride
    }

    /// Same, with `payloadLength` filler bytes as payload.
    public init(sourcePort: UInt16 = 40000, destinationPort: UInt16 = 80, sequence: UInt32 = 0, acknowledgment: UInt32 = 0,
                flags: TCPFlags = .ack, window: UInt16 = 65535, options: [UInt8] = [], payloadLength: Int,
                dataOffsetOverride: UInt8? = nil) {
        self.init(sourcePort: sourcePort, destinationPort: destinationPort, sequence: sequence, acknowledgment: acknowledgment,
                  flags: flags, window: window, options: options, payload: FrameBuilder.filler(payloadLength),
                  dataOffsetOverride: dataOffsetOverride)
    }

    public var paddedOptions: [UInt8] {
        var out = options
        while out.count % 4 != 0 { out.append(0) }
        return out
    }

    /// Header length in bytes as built (20 + padded options), ignoring the override.
    public var headerLength: Int { 20 + paddedOptions.count }

    /// Header + payload.
    public var bytes: [UInt8] {
        let options = paddedOptions
        let offset = dataOffsetOverride ?? UInt8((20 + options.count) / 4)
        var out: [UInt8] = []
        out.append16(sourcePort)
        out.append16(destinationPort)
        out.append32(sequence)
        out.append32(acknowledgment)
        out.append(offset << 4 | (reservedBits & 0x0f))
        out.append(flags.rawValue)
        out.append16(window)
        out.append16(checksum)
        out.append16(urgentPointer)
        out += options
        out += payload
        return out
    }
}

/// An IPv4 header (RFC 791); `packet(payload:)` appends the payload and fills lengths.
public struct IPv4Header: Sendable, Equatable {
    public var source: IPAddress
    public var destination: IPAddress
    public var protocolNumber: UInt8 = 6
    public var ttl: UInt8 = 64
    public var tos: UInt8 = 0
    public var identification: UInt16 = 0
    public var dontFragment = false
    public var moreFragments = false
    /// In 8-byte units (0 for an unfragmented packet or a first fragment).
    public var fragmentOffset: UInt16 = 0
    /// Option bytes; padded with zeros (end of list) to a multiple of 4.
    public var options: [UInt8] = []
    /// Written instead of the computed total length.
    public var totalLengthOverride: UInt16?
    /// Written instead of the computed IHL (in 32-bit words).
    public var ihlOverride: UInt8?
    public var version: UInt8 = 4
    public var checksum: UInt16 = 0

    public init(source: IPAddress = IPAddress(literal: "10.0.0.1"), destination: IPAddress = IPAddress(literal: "10.0.0.2"),
                protocolNumber: UInt8 = 6, options: [UInt8] = []) {
        self.source = source
        self.destination = destination
        self.protocolNumber = protocolNumber
        self.options = options
    }

    public init(_ source: String, _ destination: String, protocolNumber: UInt8 = 6, options: [UInt8] = []) {
        self.init(source: IPAddress(literal: source), destination: IPAddress(literal: destination),
                  protocolNumber: protocolNumber, options: options)
    }

    public var paddedOptions: [UInt8] {
        var out = options
        while out.count % 4 != 0 { out.append(0) }
        return out
    }

    public func packet(payload: [UInt8]) -> [UInt8] {
        let options = paddedOptions
        let headerLength = 20 + options.count
        let ihl = ihlOverride ?? UInt8(headerLength / 4)
        var out: [UInt8] = []
        out.append(version << 4 | (ihl & 0x0f))
        out.append(tos)
        out.append16(totalLengthOverride ?? UInt16(headerLength + payload.count))
        out.append16(identification)
        var flagsFragment = fragmentOffset & 0x1fff
        if dontFragment { flagsFragment |= 0x4000 }
        if moreFragments { flagsFragment |= 0x2000 }
        out.append16(flagsFragment)
        out.append(ttl)
        out.append(protocolNumber)
        out.append16(checksum)
        out += source.networkBytes
        out += destination.networkBytes
        out += options
        out += payload
        return out
    }
}

/// One IPv6 extension header (RFC 8200). Options are padded with Pad1/PadN to a
/// multiple of 8 bytes.
public enum IPv6ExtensionHeader: Sendable, Equatable {
    case hopByHop(options: [UInt8] = [])
    /// `data` follows the 4 fixed bytes (type, segments left); padded with zeros to a multiple of 8.
    case routing(type: UInt8 = 0, segmentsLeft: UInt8 = 0, data: [UInt8] = [])
    /// `offset` in 8-byte units.
    case fragment(offset: UInt16 = 0, moreFragments: Bool = false, identification: UInt32 = 1)
    case destinationOptions(options: [UInt8] = [])
    /// Any header: the next-header byte is filled in, then `body` (length byte included) as-is.
    case custom(protocolNumber: UInt8, body: [UInt8])

    public var protocolNumber: UInt8 {
        switch self {
        case .hopByHop: return 0
        case .routing: return 43
        case .fragment: return 44
        case .destinationOptions: return 60
        case .custom(let number, _): return number
        }
    }

    static func padOptions(_ options: [UInt8]) -> [UInt8] {
        let missing = (8 - (2 + options.count) % 8) % 8
        switch missing {
        case 0: return options
        case 1: return options + [0]  // Pad1
        default: return options + [1, UInt8(missing - 2)] + [UInt8](repeating: 0, count: missing - 2)  // PadN
        }
    }

    public func bytes(nextHeader: UInt8) -> [UInt8] {
        switch self {
        case .hopByHop(let options), .destinationOptions(let options):
            let padded = Self.padOptions(options)
            return [nextHeader, UInt8((2 + padded.count) / 8 - 1)] + padded
        case let .routing(type, segmentsLeft, data):
            var body = [type, segmentsLeft] + data
            while (2 + body.count) % 8 != 0 { body.append(0) }
            return [nextHeader, UInt8((2 + body.count) / 8 - 1)] + body
        case let .fragment(offset, more, identification):
            var out: [UInt8] = [nextHeader, 0]
            out.append16(offset << 3 | (more ? 1 : 0))
            out.append32(identification)
            return out
        case let .custom(_, body):
            return [nextHeader] + body
        }
    }
}

/// An IPv6 header with its extension header chain.
public struct IPv6Header: Sendable, Equatable {
    public var source: IPAddress
    public var destination: IPAddress
    /// The upper-layer protocol after the last extension header.
    public var nextHeader: UInt8 = 6
    public var hopLimit: UInt8 = 64
    public var trafficClass: UInt8 = 0
    public var flowLabel: UInt32 = 0
    public var extensionHeaders: [IPv6ExtensionHeader] = []
    /// Written instead of the computed payload length.
    public var payloadLengthOverride: UInt16?
    public var version: UInt8 = 6

    public init(source: IPAddress = IPAddress(literal: "fd00::1"), destination: IPAddress = IPAddress(literal: "fd00::2"),
                nextHeader: UInt8 = 6, extensionHeaders: [IPv6ExtensionHeader] = []) {
        self.source = source
        self.destination = destination
        self.nextHeader = nextHeader
        self.extensionHeaders = extensionHeaders
    }

    public init(_ source: String, _ destination: String, nextHeader: UInt8 = 6, extensionHeaders: [IPv6ExtensionHeader] = []) {
        self.init(source: IPAddress(literal: source), destination: IPAddress(literal: destination),
                  nextHeader: nextHeader, extensionHeaders: extensionHeaders)
    }

    public func packet(payload: [UInt8]) -> [UInt8] {
        var chain: [UInt8] = []
        for (index, header) in extensionHeaders.enumerated() {
            let next = index + 1 < extensionHeaders.count ? extensionHeaders[index + 1].protocolNumber : nextHeader
            chain += header.bytes(nextHeader: next)
        }
        var out: [UInt8] = []
        out.append32(UInt32(version) << 28 | UInt32(trafficClass) << 20 | (flowLabel & 0xfffff))
        out.append16(payloadLengthOverride ?? UInt16(chain.count + payload.count))
        out.append(extensionHeaders.first?.protocolNumber ?? nextHeader)
        out.append(hopLimit)
        out += source.networkBytes
        out += destination.networkBytes
        out += chain
        out += payload
        return out
    }
}

/// An 802.1Q / 802.1ad tag.
public struct VLANTag: Sendable, Equatable {
    public var tpid: UInt16
    public var vid: UInt16
    public var priority: UInt8 = 0
    public var dropEligible = false

    public init(tpid: UInt16 = 0x8100, vid: UInt16, priority: UInt8 = 0) {
        self.tpid = tpid
        self.vid = vid
        self.priority = priority
    }

    public static func dot1q(_ vid: UInt16) -> VLANTag { VLANTag(tpid: 0x8100, vid: vid) }
    public static func dot1ad(_ vid: UInt16) -> VLANTag { VLANTag(tpid: 0x88a8, vid: vid) }
}

/// EtherType / protocol-number constants used by the builders.
public enum EtherType {
    public static let ipv4: UInt16 = 0x0800
    public static let arp: UInt16 = 0x0806
    public static let vlan: UInt16 = 0x8100
    public static let qinq: UInt16 = 0x88a8
    public static let ipv6: UInt16 = 0x86dd
    public static let mplsUnicast: UInt16 = 0x8847
    public static let mplsMulticast: UInt16 = 0x8848
    public static let pppoeDiscovery: UInt16 = 0x8863
    public static let pppoeSession: UInt16 = 0x8864
}

/// Address families as BSD loopback headers carry them.
public enum AddressFamily {
    public static let inet: UInt32 = 2
    public static let inet6Linux: UInt32 = 10
    public static let inet6Windows: UInt32 = 23
    public static let inet6OpenBSD: UInt32 = 24
    public static let inet6FreeBSD: UInt32 = 28
    public static let inet6Darwin: UInt32 = 30
}

/// Builders for link layers, IP packets and a few non-TCP payloads.
public enum FrameBuilder {
    public static let clientMAC: [UInt8] = [0x02, 0, 0, 0, 0, 0x01]
    public static let serverMAC: [UInt8] = [0x02, 0, 0, 0, 0, 0x02]

    /// `count` bytes of a recognisable pattern ("abc...").
    public static func filler(_ count: Int) -> [UInt8] {
        (0..<max(count, 0)).map { UInt8(0x61 + $0 % 26) }
    }

    // MARK: Link layers

    /// Ethernet II (14 bytes + 4 per tag). `padToMinimum` zero-pads to 60 bytes (without FCS).
    public static func ethernet(destination: [UInt8] = serverMAC, source: [UInt8] = clientMAC, vlanTags: [VLANTag] = [],
                                etherType: UInt16, payload: [UInt8], padToMinimum: Bool = false) -> [UInt8] {
        var out = destination + source
        for tag in vlanTags {
            out.append16(tag.tpid)
            out.append16(UInt16(tag.priority & 7) << 13 | (tag.dropEligible ? 0x1000 : 0) | (tag.vid & 0x0fff))
        }
        out.append16(etherType)
        out += payload
        if padToMinimum, out.count < 60 { out += [UInt8](repeating: 0, count: 60 - out.count) }
        return out
    }

    /// Linux cooked capture v1 (16 bytes): packet type, ARPHRD type, address length, 8 address bytes, protocol.
    public static func sll(protocolType: UInt16, payload: [UInt8], packetType: UInt16 = 0, arphrdType: UInt16 = 1,
                           address: [UInt8] = clientMAC) -> [UInt8] {
        var out: [UInt8] = []
        out.append16(packetType)
        out.append16(arphrdType)
        out.append16(UInt16(min(address.count, 8)))
        var addressField = Array(address.prefix(8))
        while addressField.count < 8 { addressField.append(0) }
        out += addressField
        out.append16(protocolType)
        out += payload
        return out
    }

    /// Linux cooked capture v2 (20 bytes): protocol, reserved, interface index, ARPHRD type,
    /// packet type, address length, 8 address bytes.
    public static func sll2(protocolType: UInt16, payload: [UInt8], interfaceIndex: UInt32 = 2, arphrdType: UInt16 = 1,
                            packetType: UInt8 = 0, address: [UInt8] = clientMAC) -> [UInt8] {
        var out: [UInt8] = []
        out.append16(protocolType)
        out.append16(0)
        out.append32(interfaceIndex)
        out.append16(arphrdType)
        out.append(packetType)
        out.append(UInt8(min(address.count, 8)))
        var addressField = Array(address.prefix(8))
        while addressField.count < 8 { addressField.append(0) }
        out += addressField
        out += payload
        return out
    }

    /// BSD loopback (DLT_NULL): the family in the capturing host's byte order.
    public static func null(family: UInt32, byteOrder: ByteOrder = .little, payload: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.append32(family, byteOrder)
        return out + payload
    }

    /// OpenBSD loopback (DLT_LOOP): the family in network byte order.
    public static func loop(family: UInt32, payload: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.append32(family, .big)
        return out + payload
    }

    // MARK: IP

    public static func ipv4(_ header: IPv4Header, payload: [UInt8]) -> [UInt8] { header.packet(payload: payload) }
    public static func ipv6(_ header: IPv6Header, payload: [UInt8]) -> [UInt8] { header.packet(payload: payload) }

    /// An IPv4 or IPv6 packet (by the source address) around a TCP header.
    public static func ipTCP(from source: IPAddress, to destination: IPAddress, tcp: TCPHeader) -> [UInt8] {
        if source.isIPv6 {
            return IPv6Header(source: source, destination: destination).packet(payload: tcp.bytes)
        }
        return IPv4Header(source: source, destination: destination).packet(payload: tcp.bytes)
    }

    /// A whole TCP frame on `link`, IPv4 or IPv6 from the addresses.
    public static func tcpFrame(link: Link = .ethernet, from source: HostPort, to destination: HostPort,
                                sequence: UInt32 = 0, acknowledgment: UInt32 = 0, flags: TCPFlags = .ack,
                                window: UInt16 = 65535, options: [UInt8] = [], payload: [UInt8] = []) -> [UInt8] {
        let tcp = TCPHeader(sourcePort: source.port, destinationPort: destination.port, sequence: sequence,
                            acknowledgment: acknowledgment, flags: flags, window: window, options: options, payload: payload)
        let packet = ipTCP(from: source.address, to: destination.address, tcp: tcp)
        return link.frame(ipPacket: packet, isIPv6: source.address.isIPv6)
    }

    // MARK: Non-TCP payloads

    /// A UDP header + payload (put it in an IP packet with protocol 17).
    public static func udp(sourcePort: UInt16, destinationPort: UInt16, payload: [UInt8] = [], lengthOverride: UInt16? = nil) -> [UInt8] {
        var out: [UInt8] = []
        out.append16(sourcePort)
        out.append16(destinationPort)
        out.append16(lengthOverride ?? UInt16(8 + payload.count))
        out.append16(0)
        return out + payload
    }

    /// An ICMP (or ICMPv6, type 128) echo request: protocol 1 / 58.
    public static func icmpEcho(type: UInt8 = 8, identifier: UInt16 = 1, sequence: UInt16 = 1, payload: [UInt8] = filler(8)) -> [UInt8] {
        var out: [UInt8] = [type, 0, 0, 0]
        out.append16(identifier)
        out.append16(sequence)
        return out + payload
    }

    /// An ARP request body (28 bytes) for EtherType 0x0806.
    public static func arpRequest(senderMAC: [UInt8] = clientMAC, senderIP: IPAddress = IPAddress(literal: "10.0.0.1"),
                                  targetIP: IPAddress = IPAddress(literal: "10.0.0.2")) -> [UInt8] {
        var out: [UInt8] = []
        out.append16(1)       // Ethernet
        out.append16(0x0800)  // IPv4
        out += [6, 4]
        out.append16(1)       // request
        out += senderMAC + senderIP.networkBytes
        out += [0, 0, 0, 0, 0, 0] + targetIP.networkBytes
        return out
    }

    /// An MPLS label stack (bottom-of-stack set on the last label) followed by `payload`.
    public static func mpls(labels: [UInt32], ttl: UInt8 = 64, payload: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        for (index, label) in labels.enumerated() {
            let bottom: UInt32 = index == labels.count - 1 ? 0x100 : 0
            out.append32(label << 12 | bottom | UInt32(ttl))
        }
        return out + payload
    }

    /// A PPPoE session header + PPP protocol (0x0021 IPv4, 0x0057 IPv6) + payload, for EtherType 0x8864.
    public static func pppoeSession(sessionID: UInt16 = 1, pppProtocol: UInt16 = 0x0021, payload: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x11, 0x00]
        out.append16(sessionID)
        out.append16(UInt16(2 + payload.count))
        out.append16(pppProtocol)
        return out + payload
    }

    /// An 802.2 LLC/SNAP header + payload: use `payload.count + 8` as the 802.3 length in
    /// place of an EtherType (a value below 0x0600).
    public static func llcSnap(etherType: UInt16 = 0x0800, payload: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0xaa, 0xaa, 0x03, 0, 0, 0]
        out.append16(etherType)
        return out + payload
    }

    /// A minimal GRE header (protocol 47) + payload.
    public static func gre(protocolType: UInt16 = 0x0800, payload: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0, 0]
        out.append16(protocolType)
        return out + payload
    }
}

/// How `Conversation` and `FrameBuilder.tcpFrame` wrap IP packets, with the pcap link type.
public enum Link: Sendable, Equatable {
    case ethernet
    /// Ethernet with 802.1Q tags (0x8100), outermost first.
    case vlan([UInt16])
    /// Ethernet with an 802.1ad outer tag (0x88a8, first VID) and 802.1Q inner tags.
    case qinq([UInt16])
    /// Linux cooked v1 (LINKTYPE 113).
    case sll
    /// Linux cooked v2 (LINKTYPE 276).
    case sll2
    /// BSD loopback, little-endian host, AF_INET6 = 30 (Darwin).
    case null
    /// BSD loopback, big-endian host, AF_INET6 = 30.
    case nullBigEndian
    /// BSD loopback with a chosen byte order and AF_INET6 value.
    case nullFamily(ipv6: UInt32, byteOrder: ByteOrder)
    /// OpenBSD loopback (LINKTYPE 108), AF_INET6 = 24.
    case loop
    /// Raw IP (LINKTYPE_RAW 101).
    case raw
    /// Raw IP under another of its link-type numbers (12, 14, 101, 228 IPv4-only, 229 IPv6-only).
    case rawLinkType(UInt32)

    /// The LINKTYPE number for a pcap header or IDB.
    public var linkType: UInt32 {
        switch self {
        case .ethernet, .vlan, .qinq: return 1
        case .sll: return 113
        case .sll2: return 276
        case .null, .nullBigEndian, .nullFamily: return 0
        case .loop: return 108
        case .raw: return 101
        case .rawLinkType(let number): return number
        }
    }

    /// Wraps an IP packet. `outgoing` picks the SLL packet type (4 = outgoing, 0 = to us)
    /// and swaps the Ethernet MAC addresses.
    public func frame(ipPacket: [UInt8], isIPv6: Bool, outgoing: Bool = true) -> [UInt8] {
        let etherType = isIPv6 ? EtherType.ipv6 : EtherType.ipv4
        let source = outgoing ? FrameBuilder.clientMAC : FrameBuilder.serverMAC
        let destination = outgoing ? FrameBuilder.serverMAC : FrameBuilder.clientMAC
        switch self {
        case .ethernet:
            return FrameBuilder.ethernet(destination: destination, source: source, etherType: etherType, payload: ipPacket)
        case .vlan(let ids):
            return FrameBuilder.ethernet(destination: destination, source: source, vlanTags: ids.map(VLANTag.dot1q),
                                         etherType: etherType, payload: ipPacket)
        case .qinq(let ids):
            let tags = ids.enumerated().map { $0.offset == 0 ? VLANTag.dot1ad($0.element) : VLANTag.dot1q($0.element) }
            return FrameBuilder.ethernet(destination: destination, source: source, vlanTags: tags,
                                         etherType: etherType, payload: ipPacket)
        case .sll:
            return FrameBuilder.sll(protocolType: etherType, payload: ipPacket, packetType: outgoing ? 4 : 0, address: source)
        case .sll2:
            return FrameBuilder.sll2(protocolType: etherType, payload: ipPacket, packetType: outgoing ? 4 : 0, address: source)
        case .null:
            return FrameBuilder.null(family: isIPv6 ? AddressFamily.inet6Darwin : AddressFamily.inet, byteOrder: .little, payload: ipPacket)
        case .nullBigEndian:
            return FrameBuilder.null(family: isIPv6 ? AddressFamily.inet6Darwin : AddressFamily.inet, byteOrder: .big, payload: ipPacket)
        case let .nullFamily(ipv6, order):
            return FrameBuilder.null(family: isIPv6 ? ipv6 : AddressFamily.inet, byteOrder: order, payload: ipPacket)
        case .loop:
            return FrameBuilder.loop(family: isIPv6 ? AddressFamily.inet6OpenBSD : AddressFamily.inet, payload: ipPacket)
        case .raw, .rawLinkType:
            return ipPacket
        }
    }
}
