/// What the exporter serves: plain values copied out of the capture at one moment, so a
/// scrape never touches the capture's state (docs/metrics.md).
public struct MetricsSnapshot: Sendable, Equatable {
    /// Endpoints in CLOSE_WAIT now that share an address, role, service and process.
    public struct Group: Sendable, Equatable {
        /// The stuck endpoint's IP address ("10.0.0.5", "fd00::1").
        public var endpoint: String
        /// "client" or "server": the stuck endpoint's role in its connections.
        public var role: String
        /// The server's address:port ("10.0.0.7:5432", "[fd00::7]:5432").
        public var service: String
        /// The command name of the process holding the sockets, when known.
        public var process: String?
        /// Endpoints of the group in CLOSE_WAIT (past the threshold) now.
        public var closeWaitEndpoints: Int
        /// The longest time one of them has been in CLOSE_WAIT, in seconds.
        public var closeWaitMaxSeconds: Double

        public init(endpoint: String, role: String, service: String, process: String?,
                    closeWaitEndpoints: Int, closeWaitMaxSeconds: Double) {
            self.endpoint = endpoint
            self.role = role
            self.service = service
            self.process = process
            self.closeWaitEndpoints = closeWaitEndpoints
            self.closeWaitMaxSeconds = closeWaitMaxSeconds
        }
    }

    public var groups: [Group]
    /// Findings raised since the start, by kind ("close-wait", "slow-close", "fin-unacked").
    public var findingsTotal: [String: Int]
    /// Connections by how they closed ("server-first", "reset", ...), since the start.
    public var closesTotal: [String: Int]
    /// Connections in finscope's table now.
    public var flowsTracked: Int
    /// Packets captured since the start.
    public var packetsTotal: Int
    /// libpcap's counters: dropped for lack of buffer space (kernel), and by the interface.
    public var droppedKernel: Int
    public var droppedInterface: Int

    public init(groups: [Group] = [], findingsTotal: [String: Int] = [:], closesTotal: [String: Int] = [:],
                flowsTracked: Int = 0, packetsTotal: Int = 0, droppedKernel: Int = 0, droppedInterface: Int = 0) {
        self.groups = groups
        self.findingsTotal = findingsTotal
        self.closesTotal = closesTotal
        self.flowsTracked = flowsTracked
        self.packetsTotal = packetsTotal
        self.droppedKernel = droppedKernel
        self.droppedInterface = droppedInterface
    }
}
