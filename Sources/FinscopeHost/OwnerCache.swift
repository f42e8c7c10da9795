import FinscopeFlows

/// Owners outlive their process (SPEC §7): the first owner seen for a socket — keyed by
/// network namespace, local and remote endpoint — is kept, and reported with
/// `exited: true` once its process is gone: /proc/PID missing, a zombie, or the pid now
/// belonging to a process with another start time (pid reuse).
public struct OwnerCache: Sendable {
    public struct Key: Hashable, Sendable {
        public var netns: UInt64?
        public var local: EndpointAddress
        public var remote: EndpointAddress
        public init(netns: UInt64?, local: EndpointAddress, remote: EndpointAddress) {
            self.netns = netns
            self.local = local
            self.remote = remote
        }
        public init(_ socket: KernelSocket) {
            self.init(netns: socket.netns, local: socket.local, remote: socket.remote)
        }
    }

    public private(set) var owners: [Key: SocketOwner] = [:]
    /// At most this many sockets are remembered; beyond it, new ones are not recorded.
    public var capacity: Int
    let procRoot: String

    public init(capacity: Int = 1_000_000, procRoot: String = "/proc") {
        self.capacity = capacity
        self.procRoot = procRoot
    }

    /// Records the owner of every socket of `scan` that has one and was not seen owned before.
    public mutating func record(_ scan: KernelScan) {
        for socket in scan.sockets {
            guard let owner = scan.owner(of: socket) else { continue }
            let key = Key(socket)
            if owners[key] == nil, owners.count < capacity { owners[key] = owner }
        }
    }

    /// The first owner seen for this socket, with `exited` as of now.
    public func owner(_ key: Key) -> SocketOwner? {
        guard var owner = owners[key] else { return nil }
        owner.exited = Self.hasExited(owner, procRoot: procRoot)
        return owner
    }

    public func owner(netns: UInt64?, local: EndpointAddress, remote: EndpointAddress) -> SocketOwner? {
        owner(Key(netns: netns, local: local, remote: remote))
    }

    /// Whether the process `owner` describes is gone.
    public static func hasExited(_ owner: SocketOwner, procRoot: String = "/proc") -> Bool {
        guard let now = ProcessStart.read(pid: owner.pid, procRoot: procRoot) else { return true }
        if now.state == "Z" || now.state == "X" { return true }
        if let then = owner.startTime, then != now.startTime { return true }
        return false
    }
}
