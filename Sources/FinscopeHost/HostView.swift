import FinscopeFindings
import FinscopeFlows
import FinscopeWire

#if canImport(Glibc)
import Glibc
#endif

extension KernelSocketTable {
    /// The scan the reports use: the CLOSE_WAIT sockets of every namespace with their owners,
    /// plus the LISTEN sockets (without owners) that decide which side of a kernel-only
    /// socket serves.
    public static func readForReport(namespaces: NamespaceSelection = .all) throws -> KernelScan {
        var scan = try read(states: [.closeWait], namespaces: namespaces, owners: true)
        if let listening = try? read(states: [.listen], namespaces: namespaces, owners: false) {
            scan.sockets += listening.sockets
        }
        return scan
    }
}

/// The host's own view applied to an analysis (SPEC §7), kept across the reports of one run:
/// findings whose socket the kernel still holds in CLOSE_WAIT get `kernel` and run to the
/// check; owners are recorded the first time they are seen and kept, `exited` once gone;
/// CLOSE_WAIT sockets no captured flow explains become `kernelSockets`.
public struct HostView {
    public private(set) var owners: OwnerCache
    /// The namespace each CLOSE_WAIT socket was first seen in, by its endpoints (to find its
    /// owner in `owners` once the socket is gone).
    private var namespaceOf: [SocketPair: UInt64?] = [:]
    /// Whether the capture would have seen a socket's packets (the BPF filter); nil: all.
    public var captures: ((_ local: EndpointAddress, _ remote: EndpointAddress) -> Bool)?

    public init(captures: ((EndpointAddress, EndpointAddress) -> Bool)? = nil, procRoot: String = "/proc") {
        owners = OwnerCache(procRoot: procRoot)
        self.captures = captures
    }

    /// Applies one scan to `result`. `recheck` is the same analysis with open flows run to
    /// the check (offline: `Pipeline.result(end: checkedAt)`); live, `result` already runs to
    /// now. `tracked` are the endpoints of every flow in the table (flows without findings
    /// explain kernel sockets too).
    public mutating func apply(_ scan: KernelScan, to result: inout AnalysisResult, recheck: AnalysisResult? = nil,
                               tracked: [(client: EndpointAddress, server: EndpointAddress)] = []) {
        owners.record(scan)
        let checkedAt = Nanoseconds((scan.checkedAt * 1e9).rounded())
        var stuck: [SocketPair: KernelSocket] = [:]
        var listening: [ListenKey: [IPAddress]] = [:]
        for socket in scan.sockets {
            switch socket.state {
            case .closeWait:
                let pair = SocketPair(local: socket.local, remote: socket.remote)
                if stuck[pair] == nil { stuck[pair] = socket }
                if namespaceOf[pair] == nil, namespaceOf.count < owners.capacity { namespaceOf[pair] = socket.netns }
            case .listen:
                listening[ListenKey(netns: socket.netns, port: socket.local.port), default: []].append(socket.local.ip)
            default:
                break
            }
        }
        let confirmation = KernelConfirmation(state: KernelTCPState.closeWait.description, checkedAt: checkedAt)

        // Kernel confirmation: close-wait findings (as of the check) whose socket is still stuck.
        var confirmed: [Int: [Finding]] = [:]
        var recheckFlows: [Int: FlowReport] = [:]
        for flow in (recheck ?? result).flows {
            for finding in flow.findings where finding.kind == .closeWait {
                let pair = SocketPair(local: flow.address(of: finding.endpoint), remote: flow.address(of: finding.endpoint.peer))
                guard stuck[pair] != nil else { continue }
                var finding = finding
                finding.kernel = confirmation
                finding.duration = max(finding.duration, checkedAt - finding.since)
                confirmed[flow.id, default: []].append(finding)
                recheckFlows[flow.id] = flow
            }
        }
        var exitedMemo: [Int32: SocketOwner?] = [:]
        func owner(_ pair: SocketPair) -> OwningProcess? {
            guard let netns = namespaceOf[pair], let first = owners.owners[OwnerCache.Key(netns: netns, local: pair.local, remote: pair.remote)] else { return nil }
            let now: SocketOwner?
            if let memo = exitedMemo[first.pid], memo?.startTime == first.startTime {
                now = memo
            } else {
                now = owners.owner(netns: netns, local: pair.local, remote: pair.remote)
                exitedMemo[first.pid] = now
            }
            guard let now else { return nil }
            return OwningProcess(pid: now.pid, command: now.command, exited: now.exited, containerID: now.containerID,
                                 netns: netns)
        }
        let local = LocalAddresses.current()
        var added = 0
        var noOwner: [String: Int] = [:]
        result.updateFlows { flows in
            var index: [Int: Int] = [:]
            for (position, flow) in flows.enumerated() { index[flow.id] = position }
            for (id, findings) in confirmed {
                if let position = index[id] {
                    for finding in findings {
                        if let at = flows[position].findings.firstIndex(where: { $0.kind == finding.kind && $0.endpoint == finding.endpoint }) {
                            let process = flows[position].findings[at].process
                            flows[position].findings[at] = finding
                            if finding.process == nil { flows[position].findings[at].process = process }
                        } else {
                            flows[position].findings.append(finding)
                            added += 1
                        }
                    }
                } else if var flow = recheckFlows[id] {
                    // Below the threshold at the last frame, stuck at the check: a finding now.
                    flow.findings = findings
                    added += findings.count
                    flows.append(flow)
                }
            }
            flows.sort { $0.id < $1.id }
            for position in flows.indices {
                let flow = flows[position]
                for at in flow.findings.indices where flow.findings[at].kind == .closeWait || flow.findings[at].kind == .slowClose {
                    let finding = flow.findings[at]
                    let pair = SocketPair(local: flow.address(of: finding.endpoint), remote: flow.address(of: finding.endpoint.peer))
                    if let process = owner(pair) {
                        flows[position].findings[at].process = process
                    } else if finding.kind == .closeWait, finding.process == nil {
                        let reason: String
                        if stuck[pair] != nil {
                            reason = "its process could not be read (another user's /proc/PID/fd needs root)"
                        } else if LocalAddresses.isLocal(pair.local.ip, in: local) {
                            reason = "the kernel holds no such socket now (already closed, or in a network namespace finscope cannot enter)"
                        } else {
                            reason = "not on this host (another host, or a network namespace finscope cannot enter)"
                        }
                        noOwner[reason, default: 0] += 1
                    }
                }
            }
        }
        result.tally.findings[FindingKind.allCases.firstIndex(of: .closeWait)!] += added

        // Kernel-only sockets: stuck, and no captured flow explains them.
        var explained = Set<SocketPair>()
        func explain(_ a: EndpointAddress, _ b: EndpointAddress) {
            explained.insert(SocketPair(local: a, remote: b))
            explained.insert(SocketPair(local: b, remote: a))
        }
        for flow in result.flows { explain(flow.client, flow.server) }
        for flow in recheck?.flows ?? [] { explain(flow.client, flow.server) }
        for pair in tracked { explain(pair.client, pair.server) }
        var kernelOnly: [KernelSocketReport] = []
        for (pair, socket) in stuck where !explained.contains(pair) {
            if let captures, !captures(pair.local, pair.remote) { continue }
            kernelOnly.append(KernelSocketReport(
                local: pair.local, remote: pair.remote, state: socket.state.description,
                atLeast: socket.lastReceivedMilliseconds.map { Nanoseconds($0) * 1_000_000 },
                process: owner(pair), netns: socket.netns,
                role: Self.role(of: socket, listening: listening)))
        }
        kernelOnly.sort { ($0.local, $0.remote) < ($1.local, $1.remote) }
        result.setKernelSockets(kernelOnly)

        var context = HostContext()
        context.unseen = scan.unseen
        context.checkedAt = checkedAt
        context.unattributed = noOwner.sorted { $0.value > $1.value }.map { reason, count in
            "no owner for \(count) close-wait finding\(count == 1 ? "" : "s"): \(reason)"
        }
        result.host = context
    }

    /// The scan failed: say so on the result (the reports print it; nothing else changes).
    public static func noteFailure(_ error: any Error, on result: inout AnalysisResult) {
        var context = result.host ?? HostContext()
        context.failure = "the kernel's socket table could not be read: \(error)"
        result.host = context
    }

    struct ListenKey: Hashable {
        var netns: UInt64?
        var port: UInt16
    }

    /// Which side of a CLOSE_WAIT socket serves, as `ss` users decide it: the side whose port
    /// is a LISTEN socket (on its address or a wildcard) in the socket's namespace; else the
    /// peer's exact address:port listening in another namespace of this host; else SPEC §1's
    /// inferred-role rule (a port below 1024, else the lower port).
    static func role(of socket: KernelSocket, listening: [ListenKey: [IPAddress]]) -> Role {
        func listens(_ endpoint: EndpointAddress) -> Bool {
            guard let addresses = listening[ListenKey(netns: socket.netns, port: endpoint.port)] else { return false }
            return addresses.contains { ($0.high == 0 && $0.low == 0) || $0 == endpoint.ip }
        }
        let localListens = listens(socket.local), remoteListens = listens(socket.remote)
        if localListens != remoteListens { return localListens ? .server : .client }
        // The peer in another namespace of this host (a container's client of a host
        // service, over a veth): its exact address:port listening anywhere finscope reads.
        if !localListens, listening.contains(where: { key, addresses in
            key.port == socket.remote.port && key.netns != socket.netns && addresses.contains(socket.remote.ip)
        }) {
            return .client
        }
        return KernelSocketReport.inferredRole(local: socket.local.port, remote: socket.remote.port)
    }
}
