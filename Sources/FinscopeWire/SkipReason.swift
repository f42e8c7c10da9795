/// Why a frame yielded no TCP segment (SPEC §5, `source.skipped`).
public enum SkipReason: Int, CaseIterable, Sendable {
    /// Not TCP over a supported encapsulation (ARP, UDP, ICMP, tunnels over UDP, ...).
    case notTCP
    /// An encapsulation or link type finscope does not decode (MPLS, PPPoE, LLC/SNAP, GRE, AH, ...).
    case unsupported
    /// A non-first IP fragment.
    case fragment
    /// Cut (by the snapshot length) before the end of the TCP header.
    case truncated
    /// Header fields that contradict each other or the frame.
    case malformed

    /// The key used in JSON and reports.
    public var key: String {
        switch self {
        case .notTCP: return "notTCP"
        case .unsupported: return "unsupported"
        case .fragment: return "fragment"
        case .truncated: return "truncated"
        case .malformed: return "malformed"
        }
    }
}
