import FinscopeFlows
import FinscopeWire

/// Findings grouped for the reader (SPEC §4): by kind, the stuck endpoint's address and
/// role, and the service — the server's address:port, which is the peer when the stuck
/// endpoint is a client and the endpoint itself when it is the server. One leaking program
/// produces many flows to (or of) one service from many ephemeral client ports; a client
/// port never splits a group.
public struct FindingGroup: Sendable, Equatable {
    /// One flow of the group.
    public struct Member: Sendable, Equatable {
        public var flowID: Int
        /// The stuck endpoint's port (an ephemeral port for a client).
        public var port: UInt16
        /// The other side's address and port.
        public var peerIP: IPAddress
        public var peerPort: UInt16
        public var duration: Nanoseconds

        /// The connection's client side: the stuck endpoint, or its peer when the stuck one serves.
        public func client(role: Role, endpointIP: IPAddress) -> EndpointAddress {
            role == .client ? EndpointAddress(ip: endpointIP, port: port) : EndpointAddress(ip: peerIP, port: peerPort)
        }
    }

    public var kind: FindingKind
    public var endpointIP: IPAddress
    public var role: Role
    public var service: EndpointAddress
    /// Flows in flow order.
    public var members: [Member]
    /// Sockets the kernel holds in CLOSE_WAIT that no captured flow explains (SPEC §7).
    public var kernelMembers: [KernelSocketReport] = []
    /// The most common applications among the group's flows (SPEC §8), at most five.
    public var apps: [AppCount] = []

    /// How many of a group's flows carried one (protocol, request or SNI, User-Agent).
    public struct AppCount: Sendable, Equatable, Hashable {
        public var `protocol`: AppHint.AppProtocol
        /// HTTP: the request ("PUT /heartbeat"); TLS: nil.
        public var request: String?
        /// TLS: the server name; HTTP: nil.
        public var sni: String?
        public var userAgent: String?
        public var flows: Int
        /// Requests each flow carried: the smallest and largest (HTTP).
        public var requests: ClosedRange<Int>?
        /// The first response's status of the flows, when they all agree.
        public var status: Int?
    }

    static let appsKept = 5

    public var flowIDs: [Int] { members.map(\.flowID) }
    public var durations: [Nanoseconds] { members.map(\.duration) }
    public var flowCount: Int { members.count }
    public var maxDuration: Nanoseconds { members.lazy.map(\.duration).max() ?? 0 }
    public var medianDuration: Nanoseconds { Self.median(members.map(\.duration)) }

    /// Distinct peer addresses.
    public var peers: Int { Set(members.map(\.peerIP)).count }

    /// The other side of the stuck endpoint (SPEC §6): the service for a client endpoint;
    /// for a server endpoint the client address with no port when every flow has the same
    /// client address, else nil.
    public var peer: (ip: IPAddress, port: UInt16?)? {
        if role == .client { return (service.ip, service.port) }
        guard let first = members.first?.peerIP, members.allSatisfy({ $0.peerIP == first }) else { return nil }
        return (first, nil)
    }

    /// The stuck endpoint's ports, lowest first, without repeats.
    public var ports: [UInt16] { Set(members.map(\.port)).sorted() }

    /// The median of `values` (the mean of the middle two for an even count); 0 when empty.
    public static func median(_ values: [Nanoseconds]) -> Nanoseconds {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return 0 }
        let mid = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
    }

    /// The finding of `flow` this group holds.
    public func finding(in flow: FlowReport) -> Finding? {
        flow.findings.first { $0.kind == kind && $0.endpoint == role }
    }

    /// Groups the findings of `flows`. Sorted as SPEC §6 says: by flows (descending), then
    /// kind (close-wait, slow-close, fin-unacked), endpoint address, service address and port.
    public static func group(_ flows: [FlowReport]) -> [FindingGroup] {
        struct Key: Hashable {
            var kind: FindingKind
            var ip: IPAddress
            var role: Role
            var service: EndpointAddress
        }
        var groups: [Key: FindingGroup] = [:]
        var appsByGroup: [Key: [AppKey: AppTally]] = [:]
        for flow in flows {
            for finding in flow.findings {
                let stuck = flow.address(of: finding.endpoint)
                let key = Key(kind: finding.kind, ip: stuck.ip, role: finding.endpoint, service: flow.server)
                let other = flow.address(of: finding.endpoint.peer)
                let member = Member(flowID: flow.id, port: stuck.port, peerIP: other.ip, peerPort: other.port,
                                    duration: finding.duration)
                groups[key, default: FindingGroup(kind: key.kind, endpointIP: key.ip, role: key.role,
                                                  service: key.service, members: [])].members.append(member)
                if let app = flow.app {
                    let appKey = AppKey(protocol: app.protocol, request: app.request, sni: app.sni, userAgent: app.userAgent)
                    appsByGroup[key, default: [:]][appKey, default: AppTally(first: flow.id)].add(app)
                }
            }
        }
        for (key, tallies) in appsByGroup {
            groups[key]!.apps = tallies.sorted { a, b in
                a.value.flows != b.value.flows ? a.value.flows > b.value.flows : a.value.first < b.value.first
            }.prefix(appsKept).map { appKey, tally in
                AppCount(protocol: appKey.protocol, request: appKey.request, sni: appKey.sni, userAgent: appKey.userAgent,
                         flows: tally.flows, requests: tally.requests, status: tally.statusAgrees ? tally.status : nil)
            }
        }
        return groups.values.sorted { a, b in
            if a.members.count != b.members.count { return a.members.count > b.members.count }
            if a.kind != b.kind { return a.kind.rank < b.kind.rank }
            if a.endpointIP != b.endpointIP { return a.endpointIP < b.endpointIP }
            return a.service < b.service
        }
    }
}

private struct AppKey: Hashable {
    var `protocol`: AppHint.AppProtocol
    var request: String?
    var sni: String?
    var userAgent: String?
}

private struct AppTally {
    var first: Int
    var flows = 0
    var requests: ClosedRange<Int>?
    var status: Int?
    var statusAgrees = true

    mutating func add(_ app: AppHint) {
        if flows == 0 { status = app.status } else if status != app.status { statusAgrees = false }
        flows += 1
        if app.protocol == .http {
            requests = requests.map { min($0.lowerBound, app.requests)...max($0.upperBound, app.requests) }
                ?? app.requests...app.requests
        }
    }
}

extension FindingKind {
    /// The order of SPEC §4's table: the most urgent first.
    public var rank: Int { FindingKind.allCases.firstIndex(of: self)! }
}
