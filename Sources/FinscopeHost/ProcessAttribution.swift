import FinscopeFindings
import FinscopeFlows
import FinscopeWire

/// A socket by its two endpoints, as this host sees it.
public struct SocketPair: Hashable, Sendable {
    public var local: EndpointAddress
    public var remote: EndpointAddress
    public init(local: EndpointAddress, remote: EndpointAddress) {
        self.local = local
        self.remote = remote
    }
}

/// This host's sockets in CLOSE_WAIT and, where /proc lets us read it, the process holding each.
public struct CloseWaitOwners: Sendable, Equatable {
    public var owners: [SocketPair: OwningProcess] = [:]
    /// CLOSE_WAIT sockets whose holder could not be read (another user's process, read
    /// without root): the socket's uid from /proc/net/tcp.
    public var unreadable: [SocketPair: UInt32] = [:]

    public init(owners: [SocketPair: OwningProcess] = [:], unreadable: [SocketPair: UInt32] = [:]) {
        self.owners = owners
        self.unreadable = unreadable
    }

    /// The CLOSE_WAIT sockets of finscope's own network namespace now, then their holders:
    /// through netlink sock_diag (`KernelSocketTable`, which falls back to /proc/net/tcp{,6}
    /// when netlink is refused); with another `procRoot` (a test tree), from its files.
    public static func read(procRoot: String = "/proc") -> CloseWaitOwners {
        if procRoot == "/proc", let scan = try? KernelSocketTable.read(states: [.closeWait], namespaces: .current) {
            var result = CloseWaitOwners()
            for socket in scan.sockets where socket.inode != 0 {
                let pair = SocketPair(local: socket.local, remote: socket.remote)
                if let owner = scan.owner(of: socket) {
                    result.owners[pair] = owner.process
                } else {
                    result.unreadable[pair] = socket.uid
                }
            }
            return result
        }
        let stuck = ProcNetTCP.read(procRoot: procRoot).filter { $0.state == TCPSocketEntry.closeWait && $0.inode != 0 }
        let holders = SocketOwners.owners(of: Set(stuck.map(\.inode)), procRoot: procRoot)
        var result = CloseWaitOwners()
        for entry in stuck {
            let pair = SocketPair(local: entry.local, remote: entry.remote)
            if let holder = holders[entry.inode] {
                result.owners[pair] = holder
            } else {
                result.unreadable[pair] = entry.uid
            }
        }
        return result
    }

    /// Line-oriented text for the privileged helper's answer (see `AttributionHelper`).
    public func encoded() -> String {
        var out = ""
        for (pair, owner) in owners {
            out += "o \(pair.local.ip) \(pair.local.port) \(pair.remote.ip) \(pair.remote.port) \(owner.pid) \(owner.command)\n"
        }
        for (pair, uid) in unreadable {
            out += "u \(pair.local.ip) \(pair.local.port) \(pair.remote.ip) \(pair.remote.port) \(uid)\n"
        }
        return out
    }

    public static func decode<Lines: Sequence>(lines: Lines) -> CloseWaitOwners where Lines.Element: StringProtocol {
        var result = CloseWaitOwners()
        for line in lines {
            let fields = line.split(separator: " ", maxSplits: 6, omittingEmptySubsequences: false)
            guard fields.count >= 6,
                  let localIP = IPAddress(String(fields[1])), let localPort = UInt16(fields[2]),
                  let remoteIP = IPAddress(String(fields[3])), let remotePort = UInt16(fields[4]) else { continue }
            let pair = SocketPair(local: EndpointAddress(ip: localIP, port: localPort),
                                  remote: EndpointAddress(ip: remoteIP, port: remotePort))
            if fields[0] == "o", fields.count == 7, let pid = Int32(fields[5]) {
                result.owners[pair] = OwningProcess(pid: pid, command: String(fields[6]))
            } else if fields[0] == "u", let uid = UInt32(fields[5]) {
                result.unreadable[pair] = uid
            }
        }
        return result
    }
}

/// Names the process behind each `close-wait` finding whose endpoint is on this host.
public enum ProcessAttribution {
    /// Whether any close-wait finding has a local endpoint (worth reading /proc for).
    public static func wanted(_ result: AnalysisResult, local: Set<IPAddress>) -> Bool {
        result.flows.contains { flow in
            flow.findings.contains { $0.kind == .closeWait && LocalAddresses.isLocal(flow.address(of: $0.endpoint).ip, in: local) }
        }
    }

    /// Sets `process` on every close-wait finding whose socket is in CLOSE_WAIT now; returns
    /// the sockets found stuck whose holder could not be read, by uid, and how many.
    @discardableResult
    public static func annotate(_ result: inout AnalysisResult, owners: CloseWaitOwners,
                                local: Set<IPAddress>) -> [UInt32: Int] {
        var unreadable: [UInt32: Int] = [:]
        result.updateFlows { flows in
            for flowIndex in flows.indices {
                let flow = flows[flowIndex]
                for findingIndex in flow.findings.indices {
                    let finding = flow.findings[findingIndex]
                    guard finding.kind == .closeWait else { continue }
                    let pair = SocketPair(local: flow.address(of: finding.endpoint),
                                          remote: flow.address(of: finding.endpoint.peer))
                    guard LocalAddresses.isLocal(pair.local.ip, in: local) else { continue }
                    if let owner = owners.owners[pair] {
                        flows[flowIndex].findings[findingIndex].process = owner
                    } else if let uid = owners.unreadable[pair] {
                        unreadable[uid, default: 0] += 1
                    }
                }
            }
        }
        return unreadable
    }

    /// Reads /proc in this process and annotates `result` (offline `--proc`, or live
    /// capture that kept its privileges).
    @discardableResult
    public static func annotateFromProc(_ result: inout AnalysisResult) -> [UInt32: Int] {
        let local = LocalAddresses.current()
        guard wanted(result, local: local) else { return [:] }
        return annotate(&result, owners: CloseWaitOwners.read(), local: local)
    }
}
