/// Decodes a captured frame down to its TCP header, in place, allocating nothing.
///
/// `wireLength` is the frame's length on the wire (pcap's `len`); the captured bytes may
/// be shorter (snaplen). IP length fields are checked against the wire length, so a
/// capture made with `tcpdump -s 96` still yields correct payload lengths, while a
/// header that claims more bytes than the frame ever had is `malformed`.
///
/// Each level's length rules live in its header view (`check`); this type only walks
/// from one header to the next. `origin` (the address of the frame's first byte, as an
/// integer: cheaper to pass than an optional pointer) travels down so the segment can
/// say where its payload starts (`TCPSegment.payloadOffset`).
public enum FrameDecoder {
    /// VLAN tags followed before giving up (802.1Q, 802.1ad, and the old QinQ types).
    static let maximumVLANTags = 8
    /// IPv6 extension headers followed before calling the chain malformed.
    static let maximumExtensionHeaders = 16

    /// The frame's segment, or why it has none.
    public static func decode(_ frame: UnsafeRawBufferPointer, wireLength: Int, link: LinkKind) -> DecodeOutcome {
        var segment = TCPSegment()
        if let reason = decode(frame, wireLength: wireLength, link: link, into: &segment) { return .skipped(reason) }
        return .segment(segment)
    }

    /// The per-frame form: decodes into the caller's `segment` (every field written when
    /// it returns nil, some when it returns the reason for a skip), so the segment is
    /// never built in one place and copied to another. Inlinable: the caller's loop jumps
    /// straight to the link type's function.
    @inlinable @inline(__always)
    public static func decode(_ frame: UnsafeRawBufferPointer, wireLength: Int, link: LinkKind,
                              into segment: inout TCPSegment) -> SkipReason? {
        let wire = max(wireLength, frame.count)
        let origin = Int(bitPattern: frame.baseAddress)
        switch link {
        case .ethernet: return decodeEthernet(frame, wire: wire, origin: origin, into: &segment)
        case .linuxCooked: return decodeLinuxCooked(frame, wire: wire, origin: origin, into: &segment)
        case .linuxCooked2: return decodeLinuxCooked2(frame, wire: wire, origin: origin, into: &segment)
        default: return decodeOther(frame, wire: wire, origin: origin, link: link, into: &segment)
        }
    }

    /// Every link type but the three most captured.
    @usableFromInline
    static func decodeOther(_ frame: UnsafeRawBufferPointer, wire: Int, origin: Int, link: LinkKind,
                            into segment: inout TCPSegment) -> SkipReason? {
        switch link {
        case .ethernet:
            return decodeEthernet(frame, wire: wire, origin: origin, into: &segment)
        case .linuxCooked:
            return decodeLinuxCooked(frame, wire: wire, origin: origin, into: &segment)
        case .linuxCooked2:
            return decodeLinuxCooked2(frame, wire: wire, origin: origin, into: &segment)
        case .null, .loop:
            if let problem = LoopbackHeaderView.check(frame) { return problem.skipReason }
            let loopback = LoopbackHeaderView(checked: frame)
            let family = link == .null ? loopback.eitherOrderFamily : loopback.networkOrderFamily
            let packet = frame.tail(from: LoopbackHeaderView.length)
            let packetWire = wire - LoopbackHeaderView.length
            if family == 2 { return decodeIPv4(packet, wire: packetWire, origin: origin, into: &segment) }
            if LoopbackHeaderView.isIPv6Family(family) { return decodeIPv6(packet, wire: packetWire, origin: origin, into: &segment) }
            return .notTCP
        case .rawIP:
            guard frame.count >= 1 else { return .truncated }
            switch frame.u8(0) >> 4 {
            case 4: return decodeIPv4(frame, wire: wire, origin: origin, into: &segment)
            case 6: return decodeIPv6(frame, wire: wire, origin: origin, into: &segment)
            default: return .malformed
            }
        case .ipv4:
            return decodeIPv4(frame, wire: wire, origin: origin, into: &segment)
        case .ipv6:
            return decodeIPv6(frame, wire: wire, origin: origin, into: &segment)
        case .nflog:
            return decodeNFLOG(frame, wire: wire, origin: origin, into: &segment)
        case .ppp:
            return decodePPP(frame, wire: wire, origin: origin, into: &segment)
        case .pppHDLC:
            // DLT_PPP_SERIAL also carries Cisco HDLC framing, told apart by the first byte.
            if frame.count >= 1, frame.u8(0) == CiscoHDLCHeaderView.unicast || frame.u8(0) == CiscoHDLCHeaderView.broadcast {
                return decodeCiscoHDLC(frame, wire: wire, origin: origin, into: &segment)
            }
            return decodePPP(frame, wire: wire, origin: origin, into: &segment)
        case .ciscoHDLC:
            return decodeCiscoHDLC(frame, wire: wire, origin: origin, into: &segment)
        case .pflog:
            return decodePflog(frame, wire: wire, origin: origin, into: &segment)
        case .ipOverInfiniBand:
            if let problem = IPoIBHeaderView.check(frame) { return problem.skipReason }
            let ipoib = IPoIBHeaderView(checked: frame)
            return decodeEtherType(ipoib.protocolType, frame, offset: IPoIBHeaderView.length, wire: wire, origin: origin, into: &segment)
        case .ieee80211:
            return decodeIEEE80211(frame, wire: wire, origin: origin, dataPad: false, into: &segment)
        case .ieee80211Radiotap:
            return decodeRadiotap(frame, wire: wire, origin: origin, into: &segment)
        case .ppi:
            return decodePPI(frame, wire: wire, origin: origin, into: &segment)
        }
    }

    // One function per link type on the hot path: `decode`, inlined into the caller, picks
    // one, and each writes its outcome straight into the caller's segment.
    @usableFromInline @inline(never)
    static func decodeEthernet(_ frame: UnsafeRawBufferPointer, wire: Int, origin: Int, into segment: inout TCPSegment) -> SkipReason? {
        if let problem = EthernetHeaderView.check(frame) { return problem.skipReason }
        let ethernet = EthernetHeaderView(checked: frame)
        return decodeEtherType(ethernet.etherType, frame, offset: EthernetHeaderView.length, wire: wire, origin: origin, into: &segment)
    }

    @usableFromInline @inline(never)
    static func decodeLinuxCooked(_ frame: UnsafeRawBufferPointer, wire: Int, origin: Int, into segment: inout TCPSegment) -> SkipReason? {
        if let problem = LinuxCookedHeaderView.check(frame) { return problem.skipReason }
        let cooked = LinuxCookedHeaderView(checked: frame)
        return decodeEtherType(cooked.protocolType, frame, offset: LinuxCookedHeaderView.length, wire: wire, origin: origin, into: &segment)
    }

    @usableFromInline @inline(never)
    static func decodeLinuxCooked2(_ frame: UnsafeRawBufferPointer, wire: Int, origin: Int, into segment: inout TCPSegment) -> SkipReason? {
        if let problem = LinuxCooked2HeaderView.check(frame) { return problem.skipReason }
        let cooked = LinuxCooked2HeaderView(checked: frame)
        return decodeEtherType(cooked.protocolType, frame, offset: LinuxCooked2HeaderView.length, wire: wire, origin: origin, into: &segment)
    }

    /// Walks stacked VLAN tags, then dispatches on the EtherType.
    @inline(__always)  // the per-frame path: one function, no copies of the outcome between levels
    static func decodeEtherType(_ first: UInt16, _ frame: UnsafeRawBufferPointer, offset start: Int, wire: Int,
                                origin: Int, into segment: inout TCPSegment) -> SkipReason? {
        var etherType = first
        var offset = start
        var tags = 0
        while etherType == 0x8100 || etherType == 0x88a8 || etherType == 0x9100 || etherType == 0x9200 {
            tags += 1
            guard tags <= maximumVLANTags else { return .malformed }
            let tagBytes = frame.tail(from: offset)
            if let problem = VLANTagView.check(tagBytes) { return problem.skipReason }
            etherType = VLANTagView(checked: tagBytes).etherType
            offset += VLANTagView.length
        }
        switch etherType {
        case 0x0800: return decodeIPv4(frame.tail(from: offset), wire: wire - offset, origin: origin, into: &segment)
        case 0x86dd: return decodeIPv6(frame.tail(from: offset), wire: wire - offset, origin: origin, into: &segment)
        case 0x8847, 0x8848, 0x8863, 0x8864: return .unsupported  // MPLS, PPPoE
        case ..<0x0600: return .unsupported  // an 802.3 length: LLC/SNAP follows
        default: return .notTCP
        }
    }

    /// IP protocol numbers of encapsulations finscope does not open.
    @inline(__always)
    static func otherProtocol(_ number: UInt8) -> SkipReason {
        switch number {
        case 4, 41, 47, 50, 51, 137: return .unsupported  // IP-in-IP, IPv6-in-IP, GRE, ESP, AH, MPLS-in-IP
        default: return .notTCP
        }
    }

    @inline(__always)
    static func decodeIPv4(_ packet: UnsafeRawBufferPointer, wire: Int, origin: Int, into segment: inout TCPSegment) -> SkipReason? {
        if let problem = IPv4HeaderView.check(packet, wireLength: wire) { return problem.skipReason }
        let ip = IPv4HeaderView(checked: packet)
        let headerLength = ip.headerLength
        var totalLength = ip.totalLength
        // TCP segmentation offload: a sender-side capture may show a zero total length.
        if totalLength == 0 { totalLength = wire }
        guard totalLength >= headerLength, totalLength <= wire else { return .malformed }
        guard ip.protocolNumber == 6 else { return otherProtocol(ip.protocolNumber) }
        guard ip.fragmentOffset == 0 else { return .fragment }
        return decodeTCP(packet.tail(from: headerLength), ipPayloadLength: totalLength - headerLength,
                         source: ip.source, destination: ip.destination, origin: origin, into: &segment)
    }

    static func decodeIPv6(_ packet: UnsafeRawBufferPointer, wire: Int, origin: Int, into segment: inout TCPSegment) -> SkipReason? {
        if let problem = IPv6HeaderView.check(packet) { return problem.skipReason }
        let ip = IPv6HeaderView(checked: packet)
        var payloadLength = ip.payloadLength
        if payloadLength == 0 { payloadLength = wire - IPv6HeaderView.length }  // jumbogram or offload
        guard IPv6HeaderView.length + payloadLength <= wire else { return .malformed }
        var next = ip.nextHeader
        var offset = IPv6HeaderView.length
        var remaining = payloadLength
        // Up to `maximumExtensionHeaders` extension headers, then the upper-layer header.
        for _ in 0...maximumExtensionHeaders {
            switch next {
            case 6:
                return decodeTCP(packet.tail(from: offset), ipPayloadLength: remaining,
                                 source: ip.source, destination: ip.destination, origin: origin, into: &segment)
            case 0, 43, 60:  // hop-by-hop, routing, destination options
                // Hop-by-hop is valid only right after the fixed header (RFC 8200 §4.1); a
                // stack drops the packet otherwise, so decoding it would let a sender insert
                // segments the endpoint never saw.
                if next == 0, offset != IPv6HeaderView.length { return .malformed }
                let bytes = packet.tail(from: offset)
                if let problem = IPv6ExtensionHeaderView.check(bytes, remaining: remaining) {
                    return problem.skipReason
                }
                let header = IPv6ExtensionHeaderView(checked: bytes)
                next = header.nextHeader
                offset += header.headerLength
                remaining -= header.headerLength
            case 44:  // fragment
                let bytes = packet.tail(from: offset)
                if let problem = IPv6FragmentHeaderView.check(bytes, remaining: remaining) {
                    return problem.skipReason
                }
                let fragment = IPv6FragmentHeaderView(checked: bytes)
                next = fragment.nextHeader
                if fragment.fragmentOffset != 0 {
                    // What follows a later fragment's header is data, not headers (RFC 8200 §4.5).
                    switch next {
                    case 6, 0, 43, 60: return .fragment
                    default: return next == 59 ? .notTCP : otherProtocol(next)
                    }
                }
                offset += IPv6FragmentHeaderView.length
                remaining -= IPv6FragmentHeaderView.length
            default:
                return next == 59 ? .notTCP : otherProtocol(next)
            }
        }
        return .malformed
    }

    @inline(__always)
    static func decodeTCP(_ bytes: UnsafeRawBufferPointer, ipPayloadLength: Int,
                          source: IPAddress, destination: IPAddress, origin: Int, into segment: inout TCPSegment) -> SkipReason? {
        if let problem = TCPHeaderView.check(bytes, ipPayloadLength: ipPayloadLength) { return problem.skipReason }
        let tcp = TCPHeaderView(checked: bytes)
        let headerLength = tcp.headerLength
        let flags = tcp.flags
        var scale: Int8 = -1
        if flags.contains(.syn), let shift = tcp.windowScale { scale = Int8(shift) }
        let headerOffset = Int(bitPattern: bytes.baseAddress) &- origin
        // Field by field into the caller's segment: nothing is built here and copied out.
        segment.source = source
        segment.destination = destination
        segment.sourcePort = tcp.sourcePort
        segment.destinationPort = tcp.destinationPort
        segment.sequence = tcp.sequence
        segment.acknowledgment = tcp.acknowledgment
        segment.flags = flags
        segment.window = tcp.window
        segment.payloadLength = UInt32(ipPayloadLength - headerLength)
        segment.windowScale = scale
        segment.payloadOffset = headerOffset + headerLength
        return nil
    }

    // MARK: Link types beyond Ethernet and loopback

    /// NFLOG: walks at most `NFLOGHeaderView.maximumTLVs` TLVs to the payload one.
    static func decodeNFLOG(_ frame: UnsafeRawBufferPointer, wire: Int, origin: Int, into segment: inout TCPSegment) -> SkipReason? {
        if let problem = NFLOGHeaderView.check(frame) { return problem.skipReason }
        let family = NFLOGHeaderView(checked: frame).family
        guard family == 2 || family == 10 else { return .notTCP }
        var offset = NFLOGHeaderView.length
        // Host byte order, unless the first TLV only makes sense the other way round (a
        // file from a host of the other order, read without libpcap's rewriting).
        let first = frame.tail(from: offset)
        let swapped = NFLOGTLVView.check(first, wireRemaining: wire - offset, swapped: false) != nil
            && NFLOGTLVView.check(first, wireRemaining: wire - offset, swapped: true) == nil
        for _ in 0..<NFLOGHeaderView.maximumTLVs {
            // TLVs ran out without a payload: the rule logged no packet bytes.
            guard offset < wire else { return .truncated }
            let bytes = frame.tail(from: offset)
            if let problem = NFLOGTLVView.check(bytes, wireRemaining: wire - offset, swapped: swapped) {
                return problem.skipReason
            }
            let tlv = NFLOGTLVView(checked: bytes, swapped: swapped)
            if tlv.type == NFLOGHeaderView.payloadType {
                let packet = bytes.tail(from: NFLOGTLVView.Field.value).head(tlv.valueLength)
                let packetWire = nflogPacketLength(packet, family: family, logged: tlv.valueLength)
                return family == 2 ? decodeIPv4(packet, wire: packetWire, origin: origin, into: &segment)
                    : decodeIPv6(packet, wire: packetWire, origin: origin, into: &segment)
            }
            offset += tlv.paddedLength
        }
        return .malformed
    }

    /// The logged packet's length on the wire. NFLOG records only the bytes it copied: a
    /// copy range (`nft ... log group N snaplen 128`) shorter than the packet cuts it the
    /// way a snapshot length does, so the IP header's own length stands when it is larger.
    @inline(__always)
    static func nflogPacketLength(_ packet: UnsafeRawBufferPointer, family: UInt8, logged: Int) -> Int {
        if family == 2, packet.count >= IPv4HeaderView.Field.totalLength + 2 {
            return max(logged, Int(packet.u16(IPv4HeaderView.Field.totalLength)))
        }
        if family == 10, packet.count >= IPv6HeaderView.Field.payloadLength + 2 {
            let payload = Int(packet.u16(IPv6HeaderView.Field.payloadLength))
            return payload == 0 ? logged : max(logged, IPv6HeaderView.length + payload)
        }
        return logged
    }

    static func decodePPP(_ frame: UnsafeRawBufferPointer, wire: Int, origin: Int, into segment: inout TCPSegment) -> SkipReason? {
        if let problem = PPPHeaderView.check(frame) { return problem.skipReason }
        let ppp = PPPHeaderView(checked: frame)
        let offset = ppp.headerLength
        switch ppp.protocolNumber {
        case 0x0021: return decodeIPv4(frame.tail(from: offset), wire: wire - offset, origin: origin, into: &segment)
        case 0x0057: return decodeIPv6(frame.tail(from: offset), wire: wire - offset, origin: origin, into: &segment)
        // Van Jacobson compressed TCP (0x2d, 0x2f), bridging, multilink, encryption,
        // compressed datagrams, MPLS: TCP may be inside, but not readable here.
        case 0x002d, 0x002f, 0x0031, 0x003d, 0x0053, 0x00fb, 0x00fd, 0x0281, 0x0283: return .unsupported
        default: return .notTCP  // LCP, IPCP, CHAP, ...
        }
    }

    static func decodeCiscoHDLC(_ frame: UnsafeRawBufferPointer, wire: Int, origin: Int, into segment: inout TCPSegment) -> SkipReason? {
        if let problem = CiscoHDLCHeaderView.check(frame) { return problem.skipReason }
        let hdlc = CiscoHDLCHeaderView(checked: frame)
        return decodeEtherType(hdlc.protocolType, frame, offset: CiscoHDLCHeaderView.length, wire: wire, origin: origin, into: &segment)
    }

    static func decodePflog(_ frame: UnsafeRawBufferPointer, wire: Int, origin: Int, into segment: inout TCPSegment) -> SkipReason? {
        if let problem = PflogHeaderView.check(frame, wireLength: wire) { return problem.skipReason }
        let pflog = PflogHeaderView(checked: frame)
        let offset = pflog.headerLength
        let family = UInt32(pflog.addressFamily)
        if family == 2 { return decodeIPv4(frame.tail(from: offset), wire: wire - offset, origin: origin, into: &segment) }
        if family == 24 || family == 28 || family == 30 {  // AF_INET6: OpenBSD/NetBSD, FreeBSD, macOS
            return decodeIPv6(frame.tail(from: offset), wire: wire - offset, origin: origin, into: &segment)
        }
        return .notTCP
    }

    /// An 802.11 frame; `dataPad`: radiotap said the body starts at a multiple of 4.
    static func decodeIEEE80211(_ frame: UnsafeRawBufferPointer, wire: Int, origin: Int,
                                dataPad: Bool, into segment: inout TCPSegment) -> SkipReason? {
        if let problem = IEEE80211HeaderView.check(frame) { return problem.skipReason }
        let mac = IEEE80211HeaderView(checked: frame)
        guard mac.protocolVersion == 0 else { return .unsupported }
        guard mac.type == IEEE80211HeaderView.dataType else { return .notTCP }  // management, control
        guard !mac.hasNoBody else { return .notTCP }
        guard !mac.isProtected else { return .unsupported }  // encrypted (WEP, TKIP, CCMP, GCMP)
        guard mac.fragmentNumber == 0 else { return .fragment }
        // The first of several MAC fragments, or an A-MSDU: not reassembled or split here.
        guard !mac.moreFragments, !mac.isAggregate else { return .unsupported }
        var offset = mac.headerLength
        if dataPad { offset = (offset + 3) & ~3 }
        let llcBytes = frame.tail(from: offset)
        if let problem = LLCSNAPHeaderView.check(llcBytes) { return problem.skipReason }
        let llc = LLCSNAPHeaderView(checked: llcBytes)
        guard llc.carriesEtherType else { return .unsupported }
        return decodeEtherType(llc.etherType, frame, offset: offset + LLCSNAPHeaderView.length, wire: wire, origin: origin, into: &segment)
    }

    /// Drops a trailing 4-byte FCS (when present) before decoding an 802.11 frame.
    static func decodeIEEE80211(_ frame: UnsafeRawBufferPointer, wire: Int, origin: Int,
                                fcs: Bool, dataPad: Bool, into segment: inout TCPSegment) -> SkipReason? {
        guard fcs else { return decodeIEEE80211(frame, wire: wire, origin: origin, dataPad: dataPad, into: &segment) }
        guard wire >= 4 else { return .malformed }
        return decodeIEEE80211(frame.head(wire - 4), wire: wire - 4, origin: origin, dataPad: dataPad, into: &segment)
    }

    static func decodeRadiotap(_ frame: UnsafeRawBufferPointer, wire: Int, origin: Int, into segment: inout TCPSegment) -> SkipReason? {
        if let problem = RadiotapHeaderView.check(frame, wireLength: wire) { return problem.skipReason }
        let radiotap = RadiotapHeaderView(checked: frame)
        let flags = radiotap.flags
        // A frame that failed its FCS check carries corrupt bytes: not a segment anyone sent.
        guard flags & RadiotapHeaderView.Flag.badFCS == 0 else { return .malformed }
        let length = radiotap.headerLength
        return decodeIEEE80211(frame.tail(from: length), wire: wire - length, origin: origin,
                               fcs: flags & RadiotapHeaderView.Flag.fcsAtEnd != 0,
                               dataPad: flags & RadiotapHeaderView.Flag.dataPad != 0, into: &segment)
    }

    static func decodePPI(_ frame: UnsafeRawBufferPointer, wire: Int, origin: Int, into segment: inout TCPSegment) -> SkipReason? {
        if let problem = PPIHeaderView.check(frame, wireLength: wire) { return problem.skipReason }
        let ppi = PPIHeaderView(checked: frame)
        let length = ppi.headerLength
        let inner = frame.tail(from: length)
        switch ppi.linkType {
        case PPIHeaderView.ieee80211LinkType:
            let common = ppi.commonFlags
            guard common & PPIHeaderView.CommonFlag.fcsInvalid == 0 else { return .malformed }
            return decodeIEEE80211(inner, wire: wire - length, origin: origin,
                                   fcs: common & PPIHeaderView.CommonFlag.fcsPresent != 0, dataPad: false, into: &segment)
        case PPIHeaderView.ethernetLinkType:
            if let problem = EthernetHeaderView.check(inner) { return problem.skipReason }
            let ethernet = EthernetHeaderView(checked: inner)
            return decodeEtherType(ethernet.etherType, frame, offset: length + EthernetHeaderView.length,
                                   wire: wire, origin: origin, into: &segment)
        default:
            return .unsupported
        }
    }
}
