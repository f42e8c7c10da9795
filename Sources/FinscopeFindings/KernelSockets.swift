import FinscopeFlows
import FinscopeWire

/// A socket the kernel holds in CLOSE_WAIT that no captured flow explains: it was stuck
/// before the capture started (SPEC §7, `kernelSockets`).
public struct KernelSocketReport: Sendable, Equatable {
    /// The stuck endpoint (this host's side) and its peer.
    public var local: EndpointAddress
    public var remote: EndpointAddress
    /// The kernel's state name ("CLOSE_WAIT").
    public var state: String
    /// The kernel's time since the socket last received a segment (min of tcp_info's
    /// last-data and last-ACK received): a lower bound of its time in the state; nil when
    /// the table came from /proc/net/tcp (no tcp_info).
    public var atLeast: Nanoseconds?
    /// The holder, first seen (with `exited` once it has gone); nil when not known.
    public var process: OwningProcess?
    /// The inode of its network namespace.
    public var netns: UInt64?
    /// Whether the stuck endpoint serves (its port is a LISTEN socket in its namespace, or
    /// by SPEC §1's inferred-role rule) or is the client.
    public var role: Role

    public init(local: EndpointAddress, remote: EndpointAddress, state: String = "CLOSE_WAIT", atLeast: Nanoseconds?,
                process: OwningProcess?, netns: UInt64?, role: Role) {
        self.local = local
        self.remote = remote
        self.state = state
        self.atLeast = atLeast
        self.process = process
        self.netns = netns
        self.role = role
    }

    /// The server side's address:port (SPEC §4's service).
    public var service: EndpointAddress { role == .server ? local : remote }

    /// SPEC §1's inferred-role rule on a socket's two ports: the endpoint with a port below
    /// 1024, else the lower port, serves; with equal ports the remote side serves.
    public static func inferredRole(local: UInt16, remote: UInt16) -> Role {
        if (local < 1024) != (remote < 1024) { return local < 1024 ? .server : .client }
        return local < remote ? .server : .client
    }
}

/// What the host's own view adds to a result (SPEC §7), and the offline hints.
public struct HostContext: Sendable, Equatable {
    /// What the kernel scan could not see (namespaces not entered, owners unknown), one line each.
    public var unseen: [String] = []
    /// When the kernel's tables were last read.
    public var checkedAt: Nanoseconds?
    /// Close-wait findings whose socket the scan did not find owned: why, in words
    /// (another host, another namespace, already closed), with how many.
    public var unattributed: [String] = []
    /// The scan failed altogether.
    public var failure: String?
    public init() {}
}

extension FindingGroup {
    /// Kernel sockets (stuck before the capture started) in this group.
    public var kernelSockets: Int { kernelMembers.count }
    /// The longest `atLeast` of the group's kernel sockets.
    public var maxKernelAtLeast: Nanoseconds? { kernelMembers.compactMap(\.atLeast).max() }

    /// Groups the findings of `flows`, then adds each kernel socket to the close-wait group of
    /// the same endpoint address, role and service (a group of kernel sockets only when none).
    /// Sorted as SPEC §6 says, with kernel sockets breaking ties of `flows`.
    public static func group(_ flows: [FlowReport], kernelSockets: [KernelSocketReport]) -> [FindingGroup] {
        var groups = group(flows)
        guard !kernelSockets.isEmpty else { return groups }
        for socket in kernelSockets {
            if let index = groups.firstIndex(where: {
                $0.kind == .closeWait && $0.endpointIP == socket.local.ip && $0.role == socket.role && $0.service == socket.service
            }) {
                groups[index].kernelMembers.append(socket)
            } else {
                groups.append(FindingGroup(kind: .closeWait, endpointIP: socket.local.ip, role: socket.role,
                                           service: socket.service, members: [], kernelMembers: [socket]))
            }
        }
        return groups.sorted { a, b in
            if a.members.count != b.members.count { return a.members.count > b.members.count }
            if a.kernelMembers.count != b.kernelMembers.count { return a.kernelMembers.count > b.kernelMembers.count }
            if a.kind != b.kind { return a.kind.rank < b.kind.rank }
            if a.endpointIP != b.endpointIP { return a.endpointIP < b.endpointIP }
            return a.service < b.service
        }
    }
}

extension AnalysisResult {
    /// Sets the kernel-only sockets and derives the groups again.
    public mutating func setKernelSockets(_ sockets: [KernelSocketReport]) {
        updateKernelSockets { $0 = sockets }
    }
}
