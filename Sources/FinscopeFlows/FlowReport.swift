import FinscopeWire

public struct Finding: Sendable, Equatable {
    public var kind: FindingKind
    public var endpoint: Role
    public var since: Nanoseconds
    public var duration: Nanoseconds
    public var activity: Activity
    public var endedBy: EndedBy?
    /// The owning process, when known (live capture or `--proc`).
    public var process: OwningProcess?
    /// The kernel still held the socket in this state at the check (SPEC §7): `duration` then
    /// runs to `kernel.checkedAt`.
    public var kernel: KernelConfirmation?
}

public struct OwningProcess: Sendable, Equatable, Hashable {
    public var pid: Int32
    public var command: String
    /// The process has gone since it was first seen holding the socket (SPEC §7).
    public var exited: Bool
    /// Its container (64 hex digits), when its cgroup names one.
    public var containerID: String?
    /// The inode of the network namespace its socket lives in, when known.
    public var netns: UInt64?
    public init(pid: Int32, command: String, exited: Bool = false, containerID: String? = nil, netns: UInt64? = nil) {
        self.pid = pid
        self.command = command
        self.exited = exited
        self.containerID = containerID
        self.netns = netns
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
    /// Payload bytes this endpoint sent (retransmissions and capture duplicates excluded)
    /// and segments it sent (capture duplicates excluded), SPEC §8.
    public var bytes: Int = 0
    public var segments: Int = 0
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
    /// Every state change after each endpoint's first state (the client's, then the
    /// server's, each in path order), with the segment that caused it: the ladder and the
    /// HTML timeline draw these.
    public var transitions: [StateTransition] = []
    /// Why and when the flow stopped being followed.
    public var end: FlowEnd
    /// What the connection carried (SPEC §8), nil when nothing was recognised.
    public var app: AppHint? {
        get { appBox?.hint }
        set { appBox = newValue.map(AppHintBox.init) }
    }
    /// Out of line: an `AppHint` holds five optional strings (~120 bytes), and `--json` keeps
    /// every flow's report; most flows have none, and a reference is 8 bytes.
    var appBox: AppHintBox? = nil
    /// The snapshot length cut the client's first payload segment (the code path may be
    /// missing for that reason).
    public var clientPayloadCut = false

    public func address(of role: Role) -> EndpointAddress { role == .client ? client : server }
    public func endpoint(_ role: Role) -> EndpointReport { role == .client ? clientEndpoint : serverEndpoint }
}

/// Why a flow left the flow table, and when: the time its findings run to.
public struct FlowEnd: Sendable, Equatable {
    public enum Reason: String, Sendable {
        /// Completely closed (both FINs acknowledged, or an accepted RST) and lingered.
        case closed
        /// A new connection on the same 4-tuple (port reuse) began at `at`.
        case replaced
        /// No segment for the idle timeout (live mode).
        case idle
        /// Evicted at the flow limit (`--max-flows`).
        case evicted
        /// Still followed when the capture ended (or at a live report).
        case captureEnd = "capture-end"
    }
    public var reason: Reason
    public var at: Nanoseconds
    public init(reason: Reason, at: Nanoseconds) {
        self.reason = reason
        self.at = at
    }
}

/// One of an endpoint's own segments, by its place in that endpoint's sending order.
public struct SegmentRef: Sendable, Equatable, Hashable {
    public var sender: Role
    public var index: UInt32
    public init(sender: Role, index: UInt32) {
        self.sender = sender
        self.index = index
    }
}

/// One step of an endpoint's state path and the segment that caused it.
public struct StateTransition: Sendable, Equatable {
    public var endpoint: Role
    public var state: TCPState
    public var time: Nanoseconds
    /// nil for the state the capture first found the endpoint in.
    public var cause: SegmentRef?
}

/// Where a segment landed in the flow table.
public struct SegmentPlacement: Sendable, Equatable {
    public var flowID: Int
    public var sender: Role
    /// The segment's place in the sender's order (a duplicate: the segment it repeats).
    public var index: UInt32
    /// A capture duplicate (SPEC §5): ignored by the analysis.
    public var duplicate: Bool
    public var ref: SegmentRef { SegmentRef(sender: sender, index: index) }
}

/// Counts over every flow, kept even when individual reports are not.
public struct FlowTally: Sendable, Equatable {
    public var flows = 0
    public var close = [Int](repeating: 0, count: CloseKind.allCases.count)
    public var threeWay = [Int](repeating: 0, count: CloseKind.allCases.count)
    /// Flows whose close is `reset` and whose first accepted RST came from the client.
    public var resetByClient = 0
    public var findings = [Int](repeating: 0, count: FindingKind.allCases.count)

    public init() {}

    public mutating func add(_ report: FlowReport) { add(FlowOutcome(report)) }

    /// One flow's counts, from its report or straight from its state (`FlowState.outcome`).
    mutating func add(_ outcome: FlowOutcome) {
        flows += 1
        let kind = outcome.close.tallyIndex
        close[kind] += 1
        if outcome.threeWay { threeWay[kind] += 1 }
        if outcome.close == .reset, outcome.resetBy == .client { resetByClient += 1 }
        findings[0] += Int(outcome.closeWait)
        findings[1] += Int(outcome.slowClose)
        findings[2] += Int(outcome.finUnacked)
    }

    public func count(_ kind: CloseKind) -> Int { close[kind.tallyIndex] }
    public func threeWayCount(_ kind: CloseKind) -> Int { threeWay[kind.tallyIndex] }
    public func count(_ kind: FindingKind) -> Int { findings[kind.tallyIndex] }
}

/// What the tally counts of one flow: its close kind and how many findings of each kind.
struct FlowOutcome {
    var close: CloseKind
    var threeWay: Bool
    var resetBy: Role?
    // Per endpoint at most one of each kind: two a flow.
    var closeWait: UInt8 = 0
    var slowClose: UInt8 = 0
    var finUnacked: UInt8 = 0

    var hasFindings: Bool { closeWait | slowClose | finUnacked != 0 }

    init(close: CloseKind, threeWay: Bool, resetBy: Role?) {
        self.close = close
        self.threeWay = threeWay
        self.resetBy = resetBy
    }

    init(_ report: FlowReport) {
        self.init(close: report.close, threeWay: report.threeWay, resetBy: report.resetBy)
        for finding in report.findings { count(finding.kind) }
    }

    @inline(__always)
    mutating func count(_ kind: FindingKind) {
        switch kind {
        case .closeWait: closeWait += 1
        case .slowClose: slowClose += 1
        case .finUnacked: finUnacked += 1
        }
    }
}

// Positions in `allCases` without building the `allCases` array (an allocation) per flow.
extension CloseKind {
    var tallyIndex: Int {
        switch self {
        case .clientFirst: 0
        case .serverFirst: 1
        case .simultaneous: 2
        case .crossed: 3
        case .reset: 4
        case .halfClosed: 5
        case .open: 6
        }
    }
}

extension FindingKind {
    var tallyIndex: Int {
        switch self {
        case .closeWait: 0
        case .slowClose: 1
        case .finUnacked: 2
        }
    }
}

/// The box behind `FlowReport.app`.
final class AppHintBox: Sendable, Equatable {
    let hint: AppHint
    init(_ hint: AppHint) { self.hint = hint }
    static func == (a: AppHintBox, b: AppHintBox) -> Bool { a.hint == b.hint }
}

/// What a connection carried, from its first payload bytes (SPEC §8). Fields the capture's
/// snapshot length cut off are nil, never guessed.
public struct AppHint: Sendable, Equatable, Hashable {
    public enum AppProtocol: String, Sendable { case http, tls }
    public var `protocol`: AppProtocol
    /// HTTP: "METHOD /path", the query string cut off.
    public var request: String?
    public var host: String?
    public var userAgent: String?
    /// The first response's status.
    public var status: Int?
    /// Requests the client started on the connection (segments beginning a request line).
    public var requests: Int = 0
    /// TLS: the ClientHello's server name and ALPN protocols.
    public var sni: String?
    public var alpn: [String]?

    public init(protocol: AppProtocol, request: String? = nil, host: String? = nil, userAgent: String? = nil,
                status: Int? = nil, requests: Int = 0, sni: String? = nil, alpn: [String]? = nil) {
        self.protocol = `protocol`
        self.request = request
        self.host = host
        self.userAgent = userAgent
        self.status = status
        self.requests = requests
        self.sni = sni
        self.alpn = alpn
    }
}
