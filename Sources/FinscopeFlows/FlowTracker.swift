import FinscopeWire

/// Follows every connection in a stream of TCP segments. Knows nothing of libpcap: feed
/// it decoded segments with their capture times, then ask for the report.
public struct FlowTracker {
    public struct Configuration: Sendable {
        /// A CLOSE_WAIT (or unacknowledged FIN) lasting at least this long is a finding.
        public var closeWaitThreshold: Nanoseconds = 5_000_000_000
        public init(closeWaitThreshold: Nanoseconds = 5_000_000_000) {
            self.closeWaitThreshold = closeWaitThreshold
        }
    }

    public let configuration: Configuration
    private var table = FlowTable()
    private var flows: [FlowState] = []
    /// Segments decoded, duplicates included.
    public private(set) var segments = 0
    public private(set) var duplicates = 0

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    public var flowCount: Int { flows.count }

    /// One decoded segment: one flow-table lookup, then fixed-size state updates.
    @inline(__always)
    public mutating func process(_ segment: TCPSegment, at time: Nanoseconds) {
        segments += 1
        let key = FlowKey(segment)
        var index: Int
        if let found = table.find(key) {
            index = found
            let flags = segment.flags
            if flags.contains(.syn), !flags.contains(.ack), !flags.contains(.rst),
               !flows[index].isRetransmittedSYN(segment) {
                // Port reuse: a new connection on the same 4-tuple ends the old one here.
                if flows[index].replacedAt == nil { flows[index].replacedAt = time }
                index = startFlow(key, segment, at: time)
            }
        } else {
            index = startFlow(key, segment, at: time)
        }
        if !flows[index].process(segment, at: time) { duplicates += 1 }
    }

    private mutating func startFlow(_ key: FlowKey, _ segment: TCPSegment, at time: Nanoseconds) -> Int {
        let index = flows.count
        flows.append(FlowState(id: index + 1, first: segment, at: time))
        table.set(key, to: index)
        return index
    }

    /// Reports every flow, in order of first appearance, as of `captureEnd`.
    public func reports(captureEnd: Nanoseconds) -> [FlowReport] {
        flows.map { $0.report(captureEnd: captureEnd, threshold: configuration.closeWaitThreshold) }
    }
}
