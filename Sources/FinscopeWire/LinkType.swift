/// The link-layer header types finscope decodes, by the numbers libpcap reports
/// (`pcap_datalink`, which gives DLT_ values) and the LINKTYPE_ values files carry.
public enum LinkKind: Sendable, Equatable {
    case ethernet
    /// BSD loopback: a 4-byte address family in the capturing host's byte order.
    case null
    /// OpenBSD loopback: the same, in network byte order.
    case loop
    case rawIP
    case ipv4
    case ipv6
    case linuxCooked
    case linuxCooked2

    /// nil for a link type finscope does not decode.
    public init?(linkType: Int32) {
        switch linkType {
        case 1: self = .ethernet
        case 0: self = .null
        case 108: self = .loop
        case 12, 14, 101: self = .rawIP  // DLT_RAW differs by platform; LINKTYPE_RAW is 101
        case 228: self = .ipv4
        case 229: self = .ipv6
        case 113: self = .linuxCooked
        case 276: self = .linuxCooked2
        default: return nil
        }
    }
}
