// Link-layer header views (wired and logging link types); formats and sources are in
// docs/link-types.md. Same shape as the IP views: `check`, `init(checked:)`, named
// offsets, accessors that cannot fail.

/// Ethernet II header; VLAN tags are walked by `FrameDecoder`.
struct EthernetHeaderView {
    static let length = 14
    enum Field {
        static let destination = 0
        static let source = 6
        static let etherType = 12
    }
    typealias Problem = HeaderProblem
    let bytes: UnsafeRawBufferPointer

    @inline(__always)
    static func check(_ bytes: UnsafeRawBufferPointer) -> Problem? {
        bytes.count >= length ? nil : .truncated
    }

    init(checked bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var etherType: UInt16 { bytes.u16(Field.etherType) }
}

/// One 802.1Q / 802.1ad tag: tag control, then the EtherType of what follows.
struct VLANTagView {
    static let length = 4
    enum Field {
        static let tagControl = 0
        static let etherType = 2
    }
    typealias Problem = HeaderProblem
    let bytes: UnsafeRawBufferPointer

    @inline(__always)
    static func check(_ bytes: UnsafeRawBufferPointer) -> Problem? {
        bytes.count >= length ? nil : .truncated
    }

    init(checked bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var etherType: UInt16 { bytes.u16(Field.etherType) }
}

/// Linux cooked capture v1 (LINKTYPE_LINUX_SLL, 113), 16 bytes.
struct LinuxCookedHeaderView {
    static let length = 16
    enum Field {
        static let packetType = 0
        static let arphrdType = 2
        static let addressLength = 4
        static let address = 6
        static let protocolType = 14
    }
    typealias Problem = HeaderProblem
    let bytes: UnsafeRawBufferPointer

    static func check(_ bytes: UnsafeRawBufferPointer) -> Problem? {
        bytes.count >= length ? nil : .truncated
    }

    init(checked bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var protocolType: UInt16 { bytes.u16(Field.protocolType) }
}

/// Linux cooked capture v2 (LINKTYPE_LINUX_SLL2, 276), 20 bytes, protocol first.
struct LinuxCooked2HeaderView {
    static let length = 20
    enum Field {
        static let protocolType = 0
        static let reserved = 2
        static let interfaceIndex = 4
        static let arphrdType = 8
        static let packetType = 10
        static let addressLength = 11
        static let address = 12
    }
    typealias Problem = HeaderProblem
    let bytes: UnsafeRawBufferPointer

    static func check(_ bytes: UnsafeRawBufferPointer) -> Problem? {
        bytes.count >= length ? nil : .truncated
    }

    init(checked bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var protocolType: UInt16 { bytes.u16(Field.protocolType) }
}

/// BSD loopback (DLT_NULL, DLT_LOOP): a 4-byte address family.
struct LoopbackHeaderView {
    static let length = 4
    enum Field { static let family = 0 }
    typealias Problem = HeaderProblem
    let bytes: UnsafeRawBufferPointer

    static func check(_ bytes: UnsafeRawBufferPointer) -> Problem? {
        bytes.count >= length ? nil : .truncated
    }

    init(checked bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    /// DLT_LOOP: network byte order.
    var networkOrderFamily: UInt32 { bytes.u32(Field.family) }

    /// DLT_NULL: the capturing host's byte order, which the file does not record. Every
    /// family is below 2^16, so a value with high bits set was written little-endian.
    var eitherOrderFamily: UInt32 {
        let family = bytes.u32(Field.family)
        return family & 0xffff_0000 != 0 ? family.byteSwapped : family
    }

    /// AF_INET6 as Linux, Windows, OpenBSD/NetBSD, FreeBSD and Darwin number it.
    static func isIPv6Family(_ family: UInt32) -> Bool {
        family == 10 || family == 23 || family == 24 || family == 28 || family == 30
    }
}

/// Linux NFLOG (LINKTYPE_NFLOG, 239): family, version, resource id (the log group),
/// then TLVs (`NFLOGTLVView`) up to the end of the frame.
struct NFLOGHeaderView {
    static let length = 4
    enum Field {
        static let family = 0
        static let version = 1
        static let resourceID = 2
    }
    /// NFULA_PAYLOAD: the logged packet, from its IP header on.
    static let payloadType: UInt16 = 9
    /// NFLOG packets carry about a dozen attributes; more than this is not a real one.
    static let maximumTLVs = 64
    typealias Problem = HeaderProblem
    let bytes: UnsafeRawBufferPointer

    static func check(_ bytes: UnsafeRawBufferPointer) -> Problem? {
        bytes.count >= length ? nil : .truncated
    }

    init(checked bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    /// AF_INET 2, AF_INET6 10 (Linux numbering).
    var family: UInt8 { bytes.u8(Field.family) }
}

/// One NFLOG TLV: 16-bit length (header included, value unpadded) and 16-bit type, both
/// in the byte order of the host that captured (libpcap rewrites them to the reading
/// host's order when it reads a file of the other order), then the value, padded to 4.
struct NFLOGTLVView {
    static let headerLength = 4
    enum Field {
        static let length = 0
        static let type = 2
        static let value = 4
    }
    typealias Problem = HeaderProblem
    let bytes: UnsafeRawBufferPointer
    /// Read the length and type byte-swapped (the file came from a host of the other order).
    let swapped: Bool

    /// `wireRemaining`: the frame's bytes on the wire from this TLV on.
    static func check(_ bytes: UnsafeRawBufferPointer, wireRemaining: Int, swapped: Bool) -> Problem? {
        guard bytes.count >= headerLength else { return wireRemaining >= headerLength ? .truncated : .malformed }
        let raw = bytes.u16host(Field.length)
        let length = Int(swapped ? raw.byteSwapped : raw)
        guard length >= headerLength, length <= wireRemaining else { return .malformed }
        return nil
    }

    init(checked bytes: UnsafeRawBufferPointer, swapped: Bool) {
        self.bytes = bytes
        self.swapped = swapped
    }

    var length: Int {
        let raw = bytes.u16host(Field.length)
        return Int(swapped ? raw.byteSwapped : raw)
    }
    /// The low 15 bits; the top bit is netlink's "nested" flag.
    var type: UInt16 {
        let raw = bytes.u16host(Field.type)
        return (swapped ? raw.byteSwapped : raw) & 0x7fff
    }
    var valueLength: Int { length - Self.headerLength }
    /// Bytes from this TLV's start to the next one's.
    var paddedLength: Int { (length + 3) & ~3 }
}

/// PPP (DLT_PPP 9, and DLT_PPP_SERIAL 50 in HDLC-like framing, RFC 1662): an optional
/// address/control pair 0xff 0x03, then the protocol number, one byte when
/// protocol-field compression made it odd (RFC 1661 §6.5), else two.
struct PPPHeaderView {
    static let address: UInt8 = 0xff
    static let control: UInt8 = 0x03
    enum Field { static let address = 0, control = 1 }
    typealias Problem = HeaderProblem
    let bytes: UnsafeRawBufferPointer

    static func check(_ bytes: UnsafeRawBufferPointer) -> Problem? {
        guard bytes.count >= 1 else { return .truncated }
        // 0xff is the all-stations address, never a protocol byte: control must follow.
        if bytes.u8(Field.address) == address {
            guard bytes.count >= 2 else { return .truncated }
            guard bytes.u8(Field.control) == control else { return .malformed }
        }
        let start = protocolOffset(bytes)
        guard bytes.count > start else { return .truncated }
        let compressed = bytes.u8(start) & 1 == 1
        guard compressed || bytes.count >= start + 2 else { return .truncated }
        return nil
    }

    init(checked bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    private static func protocolOffset(_ bytes: UnsafeRawBufferPointer) -> Int {
        bytes.count >= 2 && bytes.u8(Field.address) == address && bytes.u8(Field.control) == control ? 2 : 0
    }

    var protocolNumber: UInt16 {
        let start = Self.protocolOffset(bytes)
        return bytes.u8(start) & 1 == 1 ? UInt16(bytes.u8(start)) : bytes.u16(start)
    }
    var headerLength: Int {
        let start = Self.protocolOffset(bytes)
        return start + (bytes.u8(start) & 1 == 1 ? 1 : 2)
    }
}

/// Cisco HDLC (DLT_C_HDLC 104, and DLT_PPP_SERIAL frames starting 0x0f or 0x8f):
/// address (0x0f unicast, 0x8f broadcast), control, then an EtherType.
struct CiscoHDLCHeaderView {
    static let length = 4
    static let unicast: UInt8 = 0x0f
    static let broadcast: UInt8 = 0x8f
    enum Field {
        static let address = 0
        static let control = 1
        static let protocolType = 2
    }
    typealias Problem = HeaderProblem
    let bytes: UnsafeRawBufferPointer

    static func check(_ bytes: UnsafeRawBufferPointer) -> Problem? {
        bytes.count >= length ? nil : .truncated
    }

    init(checked bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var protocolType: UInt16 { bytes.u16(Field.protocolType) }
}

/// pf's log header (DLT_PFLOG 117): its own length in byte 0 (61 bytes on NetBSD,
/// DragonFly and macOS, 69 on FreeBSD, 100 on OpenBSD), padded to 4; the packet's
/// address family in byte 1; the IP packet after the padded length.
struct PflogHeaderView {
    /// tcpdump's minimum (`MIN_PFLOG_HDRLEN`): the shortest header any BSD writes.
    static let minimumLength = 61
    enum Field {
        static let length = 0
        static let addressFamily = 1
        static let action = 2
        static let reason = 3
        static let interfaceName = 4
    }
    typealias Problem = HeaderProblem
    let bytes: UnsafeRawBufferPointer

    static func check(_ bytes: UnsafeRawBufferPointer, wireLength: Int) -> Problem? {
        guard bytes.count >= 2 else { return wireLength >= 2 ? .truncated : .malformed }
        let stated = Int(bytes.u8(Field.length))
        guard stated >= minimumLength else { return .malformed }
        let padded = (stated + 3) & ~3
        guard padded <= wireLength else { return .malformed }
        guard bytes.count >= padded else { return .truncated }
        return nil
    }

    init(checked bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    /// Where the IP packet starts (BPF_WORDALIGN of the length byte).
    var headerLength: Int { (Int(bytes.u8(Field.length)) + 3) & ~3 }
    var addressFamily: UInt8 { bytes.u8(Field.addressFamily) }
}

/// IP over InfiniBand as libpcap captures it on Linux (LINKTYPE_IPOIB 242): a 40-byte
/// pseudo-header (the Global Route Header, or 20 zero bytes then the 20-byte
/// destination address), then RFC 4391's 4-byte encapsulation header: an EtherType and
/// 2 reserved bytes. (Wireshark's packet-ipoib.c reads the same 44 bytes.)
struct IPoIBHeaderView {
    static let length = 44
    enum Field {
        static let pseudoHeader = 0
        static let protocolType = 40
        static let reserved = 42
    }
    typealias Problem = HeaderProblem
    let bytes: UnsafeRawBufferPointer

    static func check(_ bytes: UnsafeRawBufferPointer) -> Problem? {
        bytes.count >= length ? nil : .truncated
    }

    init(checked bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var protocolType: UInt16 { bytes.u16(Field.protocolType) }
}
