import FinscopeWire

/// Nanoseconds since the Unix epoch; finscope keeps capture times exact and converts to
/// seconds only when printing.
public typealias Nanoseconds = Int64

public enum Role: String, Sendable, CaseIterable {
    case client, server
    public var peer: Role { self == .client ? .server : .client }
}

/// How the client and server were told apart (SPEC §1).
public enum RoleOrigin: String, Sendable {
    case handshake, inferred
}

/// RFC 9293 connection states as finscope reports them.
public enum TCPState: String, Sendable {
    case synSent = "SYN_SENT"
    case synReceived = "SYN_RECEIVED"
    case established = "ESTABLISHED"
    case finWait1 = "FIN_WAIT_1"
    case finWait2 = "FIN_WAIT_2"
    case closing = "CLOSING"
    case timeWait = "TIME_WAIT"
    case closeWait = "CLOSE_WAIT"
    case lastAck = "LAST_ACK"
    case closed = "CLOSED"
}

/// How a flow closed (SPEC §3).
public enum CloseKind: String, Sendable, CaseIterable {
    case clientFirst = "client-first"
    case serverFirst = "server-first"
    case simultaneous
    case crossed
    case reset
    case halfClosed = "half-closed"
    case open
}

public enum FindingKind: String, Sendable, CaseIterable {
    case closeWait = "close-wait"
    case slowClose = "slow-close"
    case finUnacked = "fin-unacked"
}

/// What the stuck endpoint (or, for fin-unacked, its peer) sent while the state lasted.
public enum Activity: UInt8, Sendable, Comparable {
    case silent = 0, ackOnly = 1, data = 2
    public static func < (a: Activity, b: Activity) -> Bool { a.rawValue < b.rawValue }
    public var name: String {
        switch self {
        case .silent: return "silent"
        case .ackOnly: return "ack-only"
        case .data: return "data"
        }
    }
}

/// What ended a slow close.
public enum EndedBy: String, Sendable {
    case fin
    case reset
    case peerReset = "peer-reset"
}

public struct EndpointAddress: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var ip: IPAddress
    public var port: UInt16
    public init(ip: IPAddress, port: UInt16) {
        self.ip = ip
        self.port = port
    }
    public static func < (a: EndpointAddress, b: EndpointAddress) -> Bool {
        (a.ip, a.port) < (b.ip, b.port)
    }
    /// "10.0.0.5:8282", "[fd00::1]:8282".
    public var description: String {
        ip.isIPv6 ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }
}

public struct Finding: Sendable, Equatable {
    public var kind: FindingKind
    public var endpoint: Role
    public var since: Nanoseconds
    public var duration: Nanoseconds
    public var activity: Activity
    public var endedBy: EndedBy?
    /// The owning process, when known (live capture or `--proc`).
    public var process: OwningProcess?
}

public struct OwningProcess: Sendable, Equatable, Hashable {
    public var pid: Int32
    public var command: String
    public init(pid: Int32, command: String) {
        self.pid = pid
        self.command = command
    }
}

public struct EndpointReport: Sendable, Equatable {
    public var finAt: Nanoseconds?
    public var finAckedAt: Nanoseconds?
    public var finRetransmits: Int
    public var resetAt: Nanoseconds?
    public var path: [TCPState]
    /// How long the flow had carried no payload (either direction) when this endpoint sent
    /// its FIN: an idle timeout shows as similar values across flows. nil without a FIN.
    public var idleBeforeFin: Nanoseconds? = nil
    /// The last element of `path`; nil when the path is empty (a server that never answered).
    public var state: TCPState? { path.last }
}

public struct FlowReport: Sendable, Equatable {
    public var id: Int
    public var client: EndpointAddress
    public var server: EndpointAddress
    public var roles: RoleOrigin
    public var firstSeen: Nanoseconds
    public var lastSeen: Nanoseconds
    public var close: CloseKind
    public var threeWay: Bool
    public var resetBy: Role?
    public var clientEndpoint: EndpointReport
    public var serverEndpoint: EndpointReport
    public var ignoredResets: Int
    public var findings: [Finding]
    /// Segments of this flow, duplicates excluded.
    public var segments: Int

    public func address(of role: Role) -> EndpointAddress { role == .client ? client : server }
    public func endpoint(_ role: Role) -> EndpointReport { role == .client ? clientEndpoint : serverEndpoint }
}

/// Findings grouped for the reader: one leaking program produces many flows to one service.
public struct FindingGroup: Sendable, Equatable {
    public var kind: FindingKind
    public var endpointIP: IPAddress
    public var role: Role
    public var peer: EndpointAddress
    /// Ids of the flows in the group, in flow order.
    public var flowIDs: [Int]
    public var durations: [Nanoseconds]
    public var maxDuration: Nanoseconds { durations.max() ?? 0 }
    public var medianDuration: Nanoseconds {
        let sorted = durations.sorted()
        guard !sorted.isEmpty else { return 0 }
        let mid = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
    }
}

/// What the capture layer counted about its input.
public struct SourceSummary: Sendable, Equatable {
    public enum Kind: String, Sendable { case file, live }
    public var kind: Kind
    public var name: String
    public var packets: Int = 0
    public var tcpSegments: Int = 0
    public var duplicates: Int = 0
    /// Earliest and latest frame timestamps (any frame); nil for an empty capture.
    public var start: Nanoseconds?
    public var end: Nanoseconds?
    public var skipped: [Int] = Array(repeating: 0, count: SkipReason.allCases.count)
    /// Flows dropped from the table before the end: idle past the timeout, or evicted
    /// because the table was full (`--max-flows`); each was reported as of that moment.
    public var expiredIdle = 0
    public var evicted = 0
    /// libpcap's counters in live mode.
    public var dropped: Int?
    public var interfaceDropped: Int?
    /// Problems met while reading that did not stop the analysis (a truncated file, ...).
    public var warnings: [String] = []

    public init(kind: Kind, name: String) {
        self.kind = kind
        self.name = name
    }

    public func skippedCount(_ reason: SkipReason) -> Int { skipped[reason.rawValue] }

    public mutating func noteTime(_ time: Nanoseconds) {
        if start == nil || time < start! { start = time }
        if end == nil || time > end! { end = time }
    }
}

/// The whole analysis of one input.
public struct AnalysisResult: Sendable {
    public var source: SourceSummary
    public var closeWaitThreshold: Nanoseconds
    /// Flow reports in order of first appearance: every flow, or (when the analysis was
    /// asked to keep only those) the flows with findings; `tally` always counts every flow.
    public var flows: [FlowReport]
    public var tally: FlowTally
    public var groups: [FindingGroup]

    public init(source: SourceSummary, closeWaitThreshold: Nanoseconds, flows: [FlowReport], tally: FlowTally? = nil) {
        self.source = source
        self.closeWaitThreshold = closeWaitThreshold
        self.flows = flows
        self.tally = tally ?? flows.reduce(into: FlowTally()) { $0.add($1) }
        self.groups = FindingGroup.group(flows)
    }

    public func count(_ kind: CloseKind) -> Int { tally.count(kind) }
    public func count(_ kind: FindingKind) -> Int { tally.count(kind) }
}

extension FindingGroup {
    /// Groups by kind, stuck endpoint address and role, and peer address:port; the biggest
    /// groups of each kind first (close-wait, slow-close, fin-unacked).
    public static func group(_ flows: [FlowReport]) -> [FindingGroup] {
        struct Key: Hashable {
            var kind: FindingKind
            var ip: IPAddress
            var role: Role
            var peer: EndpointAddress
        }
        var groups: [Key: FindingGroup] = [:]
        var order: [Key] = []
        for flow in flows {
            for finding in flow.findings {
                let key = Key(kind: finding.kind, ip: flow.address(of: finding.endpoint).ip,
                              role: finding.endpoint, peer: flow.address(of: finding.endpoint.peer))
                if groups[key] == nil {
                    groups[key] = FindingGroup(kind: key.kind, endpointIP: key.ip, role: key.role,
                                               peer: key.peer, flowIDs: [], durations: [])
                    order.append(key)
                }
                groups[key]!.flowIDs.append(flow.id)
                groups[key]!.durations.append(finding.duration)
            }
        }
        let kindRank: [FindingKind: Int] = [.closeWait: 0, .slowClose: 1, .finUnacked: 2]
        // Sort the groups themselves (stable by first appearance), not keys looked up per comparison.
        let ordered = order.enumerated().map { (position: $0.offset, group: groups[$0.element]!) }
        return ordered.sorted { a, b in
            if a.group.kind != b.group.kind { return kindRank[a.group.kind]! < kindRank[b.group.kind]! }
            if a.group.flowIDs.count != b.group.flowIDs.count { return a.group.flowIDs.count > b.group.flowIDs.count }
            return a.position < b.position
        }.map(\.group)
    }
}
