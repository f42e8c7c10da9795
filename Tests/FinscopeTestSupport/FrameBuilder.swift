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

    // MARK: Link layers of SPEC §5's 2026-12-01 revision (formats: docs/link-types.md)

    /// One NFLOG TLV: length (4 + value, unpadded) and type in `order`, value, zero padding to 4.
    public static func nflogTLV(type: UInt16, value: [UInt8], byteOrder order: ByteOrder = .little) -> [UInt8] {
        var out: [UInt8] = []
        out.append16(UInt16(4 + value.count), order)
        out.append16(type, order)
        out += value
        while out.count % 4 != 0 { out.append(0) }
        return out
    }

    /// Linux NFLOG: family (2 or 10), version 0, resource id (log group, big-endian), then
    /// the TLVs a kernel writes before the packet (NFULA_PACKET_HDR, NFULA_PREFIX "",
    /// NFULA_IFINDEX_OUTDEV 2, NFULA_UID 0) unless `tlvsBefore` replaces them, then
    /// NFULA_PAYLOAD (9) with `payload`.
    public static func nflog(family: UInt8, resourceID: UInt16 = 5, byteOrder order: ByteOrder = .little,
                             tlvsBefore: [UInt8]? = nil, payload: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [family, 0]
        out.append16(resourceID)
        let etherType: UInt16 = family == 10 ? EtherType.ipv6 : EtherType.ipv4
        out += tlvsBefore ?? (nflogTLV(type: 1, value: [UInt8(etherType >> 8), UInt8(etherType & 0xff), 3, 0], byteOrder: order)
            + nflogTLV(type: 10, value: [0], byteOrder: order)
            + nflogTLV(type: 5, value: [0, 0, 0, 2], byteOrder: order)
            + nflogTLV(type: 11, value: [0, 0, 0, 0], byteOrder: order))
        return out + nflogTLV(type: 9, value: payload, byteOrder: order)
    }

    /// PPP: `addressControl` adds 0xff 0x03; `compressed` writes a one-byte protocol
    /// (protocol-field compression, for protocols below 0x100).
    public static func ppp(protocolNumber: UInt16, addressControl: Bool = false, compressed: Bool = false,
                           payload: [UInt8]) -> [UInt8] {
        var out: [UInt8] = addressControl ? [0xff, 0x03] : []
        if compressed { out.append(UInt8(protocolNumber & 0xff)) } else { out.append16(protocolNumber) }
        return out + payload
    }

    /// Cisco HDLC: address (0x0f unicast, 0x8f broadcast), control 0, EtherType.
    public static func ciscoHDLC(address: UInt8 = 0x0f, protocolType: UInt16, payload: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [address, 0]
        out.append16(protocolType)
        return out + payload
    }

    /// pflog: a `length`-byte header (padded to 4) with `family` at byte 1, interface
    /// "em0", action pass, direction out, then the packet.
    public static func pflog(family: UInt8, length: UInt8 = 61, payload: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: (Int(length) + 3) & ~3)
        out[0] = length
        out[1] = family
        if out.count >= 7 { out[4] = 0x65; out[5] = 0x6d; out[6] = 0x30 }  // "em0"
        if out.count > 60 { out[60] = 2 }  // PF_OUT, where NetBSD/macOS put the direction
        return out + payload
    }

    /// IP over InfiniBand as libpcap on Linux writes it: 20 zero bytes, the 20-byte
    /// destination address (flags + QPN, GID), EtherType, 2 reserved bytes.
    public static func ipoib(protocolType: UInt16, payload: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 20)
        out += [0x80, 0x00, 0x05, 0x50]  // connected-mode flag, QPN 0x000550
        out += [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0x00, 0x10, 0xe0, 0x00, 0x66, 0x4a, 0xb4, 0x51]  // GID fe80::10:e000:664a:b451
        out.append16(protocolType)
        out += [0, 0]
        return out + payload
    }

    /// An 802.11 data frame (subtype 0 data, 8 QoS data, 4/12 null) from station to AP
    /// (ToDS) unless `flags` says otherwise, with `payload` as its body (add LLC/SNAP
    /// with `llcSnap`). QoS frames get a QoS control field, `qosControl`, and with the
    /// order flag (0x80) a 4-byte HT control field.
    public static func ieee80211(type: UInt8 = 2, subtype: UInt8 = 0, flags: UInt8 = 0x01, fragment: UInt8 = 0,
                                 qosControl: UInt16 = 0, payload: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [subtype << 4 | (type & 3) << 2, flags]
        out += [0x2c, 0x00]  // duration
        out += [0x00, 0x14, 0xa5, 0xcd, 0x74, 0x7b]  // address 1 (BSSID)
        out += [0x00, 0x14, 0xa5, 0xcb, 0x6e, 0x1a]  // address 2 (source)
        out += [0x00, 0x01, 0x02, 0x27, 0xf9, 0xb2]  // address 3 (destination)
        out += [0x10 | fragment & 0x0f, 0x01]  // sequence control
        if flags & 0x03 == 0x03 { out += [0x02, 0, 0, 0, 0, 0x09] }  // address 4
        if type == 2, subtype & 0x08 != 0 {
            out.append16(qosControl, .little)
            if flags & 0x80 != 0 { out += [0, 0, 0, 0] }  // HT control
        }
        return out + payload
    }

    /// A radiotap header: `present` bitmap words (little-endian) then `fields`, padded
    /// to make the stated length; `lengthOverride` writes another length.
    public static func radiotap(present: [UInt32], fields: [UInt8], lengthOverride: UInt16? = nil) -> [UInt8] {
        var out: [UInt8] = [0, 0, 0, 0]
        for word in present { out.append32(word, .little) }
        out += fields
        let length = lengthOverride ?? UInt16(out.count)
        out[2] = UInt8(length & 0xff)
        out[3] = UInt8(length >> 8)
        return out
    }

    /// The radiotap header of a Linux mac80211 monitor interface, shortened: TSFT, Flags
    /// and Rate present; `flags` as given (0x10: FCS at end, 0x20: data pad).
    public static func radiotapTSFTFlags(flags: UInt8) -> [UInt8] {
        // present: TSFT | Flags | Rate; fields start at 8 (8-aligned): TSFT 8 bytes, Flags, Rate.
        radiotap(present: [0x0000_0007], fields: [1, 2, 3, 4, 5, 6, 7, 8, flags, 0x0c])
    }

    /// A PPI header (version 0, flags 0) for `linkType` with one 802.11-Common field
    /// (type 2, 20 bytes) whose flags are `commonFlags` (0x0001: FCS present).
    public static func ppi(linkType: UInt32 = 105, commonFlags: UInt16? = 0x0001) -> [UInt8] {
        var fields: [UInt8] = []
        if let commonFlags {
            fields.append16(2, .little)
            fields.append16(20, .little)
            fields.append64(0x0000_0000_f3cd_91a7, .little)  // TSF timer
            fields.append16(commonFlags, .little)
            fields.append16(0x0002, .little)  // rate
            fields.append16(2437, .little)  // channel frequency (MHz)
            fields.append16(0x00c0, .little)  // channel flags
            fields += [0, 0, 0xd1, 0xa0]  // FHSS, signal, noise
        }
        var out: [UInt8] = [0, 0]
        out.append16(UInt16(8 + fields.count), .little)
        out.append32(linkType, .little)
        return out + fields
    }

    /// A 4-byte FCS placeholder for frames that end with one (finscope does not check it).
    public static let fcs: [UInt8] = [0xde, 0xad, 0xbe, 0xef]

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
    /// Linux NFLOG (LINKTYPE 239), log group 5, little-endian TLVs.
    case nflog
    /// PPP (DLT 9) without address/control, 2-byte protocol.
    case ppp
    /// PPP in HDLC framing (DLT 50): 0xff 0x03, then the protocol.
    case pppHDLC
    /// Cisco HDLC (DLT 104).
    case ciscoHDLC
    /// pflog (DLT 117), OpenBSD-style 100-byte header (AF_INET6 = 24).
    case pflog
    /// IP over InfiniBand (LINKTYPE 242), 44-byte header.
    case ipoib
    /// 802.11 QoS data to the AP, LLC/SNAP, no FCS (DLT 105).
    case ieee80211
    /// Radiotap (TSFT, Flags with FCS at end) + 802.11 data + FCS (DLT 127).
    case radiotap
    /// PPI with an 802.11-Common field (FCS present) + 802.11 QoS data + FCS (DLT 192).
    case ppi

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
        case .nflog: return 239
        case .ppp: return 9
        case .pppHDLC: return 50
        case .ciscoHDLC: return 104
        case .pflog: return 117
        case .ipoib: return 242
        case .ieee80211: return 105
        case .radiotap: return 127
        case .ppi: return 192
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
        case .nflog:
            return FrameBuilder.nflog(family: isIPv6 ? 10 : 2, payload: ipPacket)
        case .ppp:
            return FrameBuilder.ppp(protocolNumber: isIPv6 ? 0x0057 : 0x0021, payload: ipPacket)
        case .pppHDLC:
            return FrameBuilder.ppp(protocolNumber: isIPv6 ? 0x0057 : 0x0021, addressControl: true, payload: ipPacket)
        case .ciscoHDLC:
            return FrameBuilder.ciscoHDLC(protocolType: etherType, payload: ipPacket)
        case .pflog:
            return FrameBuilder.pflog(family: isIPv6 ? 24 : 2, length: 100, payload: ipPacket)
        case .ipoib:
            return FrameBuilder.ipoib(protocolType: etherType, payload: ipPacket)
        case .ieee80211:
            return FrameBuilder.ieee80211(subtype: 8, flags: outgoing ? 0x01 : 0x02,
                                          payload: FrameBuilder.llcSnap(etherType: etherType, payload: ipPacket))
        case .radiotap:
            return FrameBuilder.radiotapTSFTFlags(flags: 0x10)
                + FrameBuilder.ieee80211(subtype: 8, flags: outgoing ? 0x01 : 0x02,
                                         payload: FrameBuilder.llcSnap(etherType: etherType, payload: ipPacket))
                + FrameBuilder.fcs
        case .ppi:
            return FrameBuilder.ppi()
                + FrameBuilder.ieee80211(subtype: 8, flags: outgoing ? 0x01 : 0x02,
                                         payload: FrameBuilder.llcSnap(etherType: etherType, payload: ipPacket))
                + FrameBuilder.fcs
        }
    }
}
