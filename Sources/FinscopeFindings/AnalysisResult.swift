import FinscopeFlows
import FinscopeWire

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
    /// When the capture stopped, as the capture tool recorded it (pcapng `isb_endtime`);
    /// only a hint: the capture's end stays the last frame.
    public var stoppedAt: Nanoseconds?

    public init(kind: Kind, name: String) {
        self.kind = kind
        self.name = name
    }

    public func skippedCount(_ reason: SkipReason) -> Int { skipped[reason.rawValue] }

    @inlinable  // every frame, from the Analysis module
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
    /// Changed only through `updateFlows`, so `groups` can never go stale.
    public private(set) var flows: [FlowReport]
    public var tally: FlowTally
    /// The findings grouped by the service (SPEC §4), derived from `flows`.
    public private(set) var groups: [FindingGroup]
    /// Sockets the kernel holds in CLOSE_WAIT that no captured flow explains (SPEC §7);
    /// changed only through `updateKernelSockets`.
    public private(set) var kernelSockets: [KernelSocketReport] = []
    /// What the host's own view could and could not see (live mode, `--proc`).
    public var host: HostContext?
    /// How long each endpoint still in CLOSE_WAIT at the end had been in it, for those below
    /// the threshold (no finding yet).
    public var closeWaitBelowThreshold: [Nanoseconds] = []

    public init(source: SourceSummary, closeWaitThreshold: Nanoseconds, flows: [FlowReport], tally: FlowTally? = nil) {
        self.source = source
        self.closeWaitThreshold = closeWaitThreshold
        self.flows = flows
        self.tally = tally ?? flows.reduce(into: FlowTally()) { $0.add($1) }
        self.groups = FindingGroup.group(flows)
    }

    /// Changes the flows (e.g. names the owning processes) and derives the groups again.
    public mutating func updateFlows(_ change: (inout [FlowReport]) -> Void) {
        change(&flows)
        groups = FindingGroup.group(flows, kernelSockets: kernelSockets)
    }

    /// Changes the kernel-only sockets and derives the groups again.
    public mutating func updateKernelSockets(_ change: (inout [KernelSocketReport]) -> Void) {
        change(&kernelSockets)
        groups = FindingGroup.group(flows, kernelSockets: kernelSockets)
    }

    /// The flows by id.
    public var flowsByID: [Int: FlowReport] {
        Dictionary(flows.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
    }

    public func count(_ kind: CloseKind) -> Int { tally.count(kind) }
    public func count(_ kind: FindingKind) -> Int { tally.count(kind) }
}

