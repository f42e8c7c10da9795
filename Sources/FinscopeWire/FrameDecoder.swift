/// Decodes a captured frame down to its TCP header, in place, allocating nothing.
///
/// `wireLength` is the frame's length on the wire (pcap's `len`); the captured bytes may
/// be shorter (snaplen). IP length fields are checked against the wire length, so a
/// capture made with `tcpdump -s 96` still yields correct payload lengths, while a
/// header that claims more bytes than the frame ever had is `malformed`.
public enum FrameDecoder {
    /// VLAN tags followed before giving up (802.1Q, 802.1ad, and the old QinQ types).
    static let maximumVLANTags = 8
    /// IPv6 extension headers followed before calling the chain malformed.
    static let maximumExtensionHeaders = 16

    public static func decode(_ frame: UnsafeRawBufferPointer, wireLength: Int, link: LinkKind) -> DecodeOutcome {
        let wire = max(wireLength, frame.count)
        switch link {
        case .ethernet:
            guard let ethernet = EthernetHeaderView(frame) else { return .skipped(.truncated) }
            return decodeEtherType(ethernet.etherType, frame, offset: EthernetHeaderView.length, wire: wire)
        case .linuxCooked:
            guard frame.count >= 16 else { return .skipped(.truncated) }
            return decodeEtherType(frame.u16(14), frame, offset: 16, wire: wire)
        case .linuxCooked2:
            guard frame.count >= 20 else { return .skipped(.truncated) }
            return decodeEtherType(frame.u16(0), frame, offset: 20, wire: wire)
        case .null, .loop:
            guard frame.count >= 4 else { return .skipped(.truncated) }
            var family = frame.u32(0)
            // DLT_NULL stores the family in the capturing host's byte order.
            if link == .null, family & 0xffff_0000 != 0 { family = family.byteSwapped }
            switch family {
            case 2: return decodeIPv4(frame.tail(from: 4), wire: wire - 4)
            case 10, 23, 24, 28, 30: return decodeIPv6(frame.tail(from: 4), wire: wire - 4)
            default: return .skipped(.notTCP)
            }
        case .rawIP:
            guard frame.count >= 1 else { return .skipped(.truncated) }
            switch frame.u8(0) >> 4 {
            case 4: return decodeIPv4(frame, wire: wire)
            case 6: return decodeIPv6(frame, wire: wire)
            default: return .skipped(.malformed)
            }
        case .ipv4:
            return decodeIPv4(frame, wire: wire)
        case .ipv6:
            return decodeIPv6(frame, wire: wire)
        }
    }

    /// Walks stacked VLAN tags, then dispatches on the EtherType.
    @inline(__always)  // the per-frame path: one function, no copies of the outcome between levels
    static func decodeEtherType(_ first: UInt16, _ frame: UnsafeRawBufferPointer, offset start: Int, wire: Int) -> DecodeOutcome {
        var etherType = first
        var offset = start
        var tags = 0
        while etherType == 0x8100 || etherType == 0x88a8 || etherType == 0x9100 || etherType == 0x9200 {
            tags += 1
            guard tags <= maximumVLANTags else { return .skipped(.malformed) }
            guard frame.count >= offset + 4 else { return .skipped(.truncated) }
            etherType = frame.u16(offset + 2)
            offset += 4
        }
        switch etherType {
        case 0x0800: return decodeIPv4(frame.tail(from: offset), wire: wire - offset)
        case 0x86dd: return decodeIPv6(frame.tail(from: offset), wire: wire - offset)
        case 0x8847, 0x8848, 0x8863, 0x8864: return .skipped(.unsupported)  // MPLS, PPPoE
        case ..<0x0600: return .skipped(.unsupported)  // an 802.3 length: LLC/SNAP follows
        default: return .skipped(.notTCP)
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
    static func decodeIPv4(_ packet: UnsafeRawBufferPointer, wire: Int) -> DecodeOutcome {
        if let problem = IPv4HeaderView.check(packet) {
            // An IHL reaching past the frame's wire length is a contradiction, not a short snapshot.
            let beyondWire = packet.count >= 1 && Int(packet.u8(0) & 0x0f) * 4 > wire
            return .skipped(problem == .truncated && !beyondWire ? .truncated : .malformed)
        }
        let ip = IPv4HeaderView(checked: packet)
        let headerLength = ip.headerLength
        var totalLength = ip.totalLength
        // TCP segmentation offload: a sender-side capture may show a zero total length.
        if totalLength == 0 { totalLength = wire }
        guard totalLength >= headerLength, totalLength <= wire else { return .skipped(.malformed) }
        guard ip.protocolNumber == 6 else { return .skipped(otherProtocol(ip.protocolNumber)) }
        guard ip.fragmentOffset == 0 else { return .skipped(.fragment) }
        return decodeTCP(packet.tail(from: headerLength), ipPayloadLength: totalLength - headerLength,
                         source: ip.source, destination: ip.destination)
    }

    static func decodeIPv6(_ packet: UnsafeRawBufferPointer, wire: Int) -> DecodeOutcome {
        guard let ip = IPv6HeaderView(packet) else {
            return .skipped(packet.count >= 1 && packet.u8(0) >> 4 != 6 ? .malformed : .truncated)
        }
        guard ip.version == 6 else { return .skipped(.malformed) }
        var payloadLength = ip.payloadLength
        if payloadLength == 0 { payloadLength = wire - IPv6HeaderView.length }  // jumbogram or offload
        guard IPv6HeaderView.length + payloadLength <= wire else { return .skipped(.malformed) }
        var next = ip.nextHeader
        var offset = IPv6HeaderView.length
        var remaining = payloadLength
        // Up to `maximumExtensionHeaders` extension headers, then the upper-layer header.
        for _ in 0...maximumExtensionHeaders {
            switch next {
            case 6:
                return decodeTCP(packet.tail(from: offset), ipPayloadLength: remaining,
                                 source: ip.source, destination: ip.destination)
            case 0, 43, 60:  // hop-by-hop, routing, destination options
                // Hop-by-hop is valid only right after the fixed header (RFC 8200 §4.1); a
                // stack drops the packet otherwise, so decoding it would let a sender insert
                // segments the endpoint never saw.
                if next == 0, offset != IPv6HeaderView.length { return .skipped(.malformed) }
                guard packet.count >= offset + 2 else { return .skipped(.truncated) }
                let length = (Int(packet.u8(offset + 1)) + 1) * 8
                guard length <= remaining else { return .skipped(.malformed) }
                next = packet.u8(offset)
                offset += length
                remaining -= length
            case 44:  // fragment
                guard packet.count >= offset + 8 else { return .skipped(.truncated) }
                guard remaining >= 8 else { return .skipped(.malformed) }
                next = packet.u8(offset)
                if packet.u16(offset + 2) >> 3 != 0 {
                    // What follows a later fragment's header is data, not headers (RFC 8200 §4.5).
                    switch next {
                    case 6, 0, 43, 60: return .skipped(.fragment)
                    default: return .skipped(next == 59 ? .notTCP : otherProtocol(next))
                    }
                }
                offset += 8
                remaining -= 8
            default:
                return .skipped(next == 59 ? .notTCP : otherProtocol(next))
            }
        }
        return .skipped(.malformed)
    }

    @inline(__always)
    static func decodeTCP(_ bytes: UnsafeRawBufferPointer, ipPayloadLength: Int,
                          source: IPAddress, destination: IPAddress) -> DecodeOutcome {
        guard ipPayloadLength >= TCPHeaderView.minimumLength else { return .skipped(.malformed) }
        guard bytes.count >= TCPHeaderView.minimumLength else { return .skipped(.truncated) }
        let tcp = TCPHeaderView(checked: bytes)
        let headerLength = tcp.headerLength
        guard headerLength >= TCPHeaderView.minimumLength, headerLength <= ipPayloadLength else {
            return .skipped(.malformed)
        }
        guard bytes.count >= headerLength else { return .skipped(.truncated) }
        let flags = tcp.flags
        var scale: Int8 = -1
        if flags.contains(.syn), let shift = tcp.windowScale { scale = Int8(shift) }
        return .segment(TCPSegment(
            source: source, destination: destination,
            sourcePort: tcp.sourcePort, destinationPort: tcp.destinationPort,
            sequence: tcp.sequence, acknowledgment: tcp.acknowledgment,
            flags: flags, window: tcp.window,
            payloadLength: UInt32(ipPayloadLength - headerLength), windowScale: scale))
    }
}
