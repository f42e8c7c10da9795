import FinscopeFlows
import FinscopeWire

#if canImport(Glibc)
import Glibc
#endif

/// The process holding a socket when the kernel was asked.
public struct SocketOwner: Sendable, Hashable {
    public var pid: Int32
    /// The command line, as `SocketOwners.commandLine` gives it.
    public var command: String
    /// The container id (64 hex digits) from /proc/PID/cgroup, when it names one.
    public var containerID: String?
    /// The Kubernetes pod UID, when the cgroup path is under kubepods.
    public var pod: String?
    /// Field 22 of /proc/PID/stat (clock ticks since boot): tells a reused pid apart.
    public var startTime: UInt64?
    /// The process has gone (or its pid now belongs to another process) since it was seen.
    public var exited: Bool

    public init(pid: Int32, command: String, containerID: String? = nil, pod: String? = nil,
                startTime: UInt64? = nil, exited: Bool = false) {
        self.pid = pid
        self.command = command
        self.containerID = containerID
        self.pod = pod
        self.startTime = startTime
        self.exited = exited
    }

    /// The report model's owner (pid and command).
    public var process: OwningProcess { OwningProcess(pid: pid, command: command) }
}

/// Which network namespaces a scan reads.
public enum NamespaceSelection: Sendable, Equatable {
    /// Only this process's own.
    case current
    /// Every one reachable through /proc/*/ns/net and /run/netns/* (containers count).
    case all
    /// The namespaces behind these nsfs paths (`/run/netns/NAME`, `/proc/PID/ns/net`).
    case paths([String])
}

/// What one scan of the kernel's socket tables found.
public struct KernelScan: Sendable, Equatable {
    public var sockets: [KernelSocket] = []
    /// The holder of each socket inode that has one (socket inodes are unique host-wide).
    public var owners: [UInt64: SocketOwner] = [:]
    /// What the scan could not see, one human-readable line each, e.g. "3 network namespaces
    /// not entered (permission denied): /run/netns/a, …".
    public var unseen: [String] = []
    /// The inodes of the network namespaces read.
    public var namespaces: [UInt64] = []
    /// When the tables were read: seconds since the Unix epoch.
    public var checkedAt: Double = 0

    public init(sockets: [KernelSocket] = [], owners: [UInt64: SocketOwner] = [:], unseen: [String] = [],
                namespaces: [UInt64] = [], checkedAt: Double = 0) {
        self.sockets = sockets
        self.owners = owners
        self.unseen = unseen
        self.namespaces = namespaces
        self.checkedAt = checkedAt
    }

    /// The holder of `socket`, if known.
    public func owner(of socket: KernelSocket) -> SocketOwner? {
        socket.inode == 0 ? nil : owners[socket.inode]
    }
}

public enum KernelSocketTableError: Error, Equatable, CustomStringConvertible {
    /// No namespace could be read at all; the lines say why.
    case nothingRead([String])
    public var description: String {
        switch self {
        case .nothingRead(let reasons): "no socket table could be read: " + reasons.joined(separator: "; ")
        }
    }
}

/// The kernel's TCP socket tables, read the way `ss` reads them: a NETLINK_SOCK_DIAG dump
/// (`inet_diag_req_v2`, `SOCK_DIAG_BY_FAMILY`, AF_INET then AF_INET6, a state filter, tcp_info
/// requested), in every network namespace asked for. `/proc/net/tcp{,6}` is the fallback
/// when netlink is refused (it has no tcp_info, so no `lastReceivedMilliseconds`).
public enum KernelSocketTable {
    public enum Source: Sendable, Equatable {
        /// Netlink, falling back to /proc/net/tcp per namespace when netlink is refused.
        case automatic
        /// Netlink only.
        case netlink
        /// /proc/net/tcp{,6} only (for comparison and benchmarks).
        case procNetTCP
    }

    /// Reads the sockets in `states` of the namespaces in `namespaces`, and (when `owners`)
    /// the process holding each. Whatever could not be seen is listed in `unseen`; throws only
    /// when not a single namespace could be read.
    public static func read(states: Set<KernelTCPState> = [.closeWait], namespaces: NamespaceSelection = .all,
                            owners wantOwners: Bool = true, source: Source = .automatic,
                            procRoot: String = "/proc") throws -> KernelScan {
        var scan = KernelScan()
        var timestamp = timespec()
        clock_gettime(CLOCK_REALTIME, &timestamp)
        scan.checkedAt = Double(timestamp.tv_sec) + Double(timestamp.tv_nsec) / 1e9
        let (targets, notes) = NetworkNamespaces.targets(namespaces, procRoot: procRoot)
        scan.unseen += notes
        var notEntered: [String: [String]] = [:]  // reason → paths
        var failures: [String] = notes
        for target in targets {
            do {
                scan.sockets += try readNamespace(target, states: states, source: source, procRoot: procRoot,
                                                  unseen: &scan.unseen)
                scan.namespaces.append(target.inode)
            } catch let error as NetworkNamespaces.EnterError {
                notEntered[error.reason, default: []].append(target.path ?? "net:[\(target.inode)]")
                failures.append("\(target.path ?? "net:[\(target.inode)]"): \(error.reason)")
            } catch {
                let line = "network namespace net:[\(target.inode)] (\(target.path ?? "current")) not read: \(error)"
                scan.unseen.append(line)
                failures.append(line)
            }
        }
        for (reason, paths) in notEntered.sorted(by: { $0.key < $1.key }) {
            let shown = paths.prefix(5).joined(separator: ", ") + (paths.count > 5 ? ", …" : "")
            scan.unseen.append("\(paths.count) network namespace\(paths.count == 1 ? "" : "s") not entered (\(reason)): \(shown)")
        }
        if scan.namespaces.isEmpty { throw KernelSocketTableError.nothingRead(failures) }
        if wantOwners {
            let inodes = Set(scan.sockets.lazy.map(\.inode).filter { $0 != 0 })
            let found = SocketOwners.kernelOwners(of: inodes, procRoot: procRoot)
            scan.owners = found.owners
            let missing = inodes.count - found.owners.count
            if missing > 0, found.unreadable > 0 {
                scan.unseen.append("owners unknown for \(missing) socket\(missing == 1 ? "" : "s"): /proc/PID/fd not readable for \(found.unreadable) process\(found.unreadable == 1 ? "" : "es") (needs root or CAP_SYS_PTRACE)")
            }
        }
        return scan
    }

    static func readNamespace(_ target: NetworkNamespaces.Target, states: Set<KernelTCPState>, source: Source,
                              procRoot: String, unseen: inout [String]) throws -> [KernelSocket] {
        let procTables = target.isCurrent ? procRoot : target.pid.map { "\(procRoot)/\($0)" }
        if source == .procNetTCP {
            guard let procTables else { throw NetworkNamespaces.EnterError(reason: "no process of it to read /proc/PID/net/tcp from") }
            return procSockets(procTables, states: states, netns: target.inode)
        }
        let fd: Int32
        do {
            fd = try target.isCurrent ? NetlinkDiagSocket.open() : NetworkNamespaces.netlinkSocket(in: target)
        } catch let error as NetlinkDiagSocket.Refused {
            guard source == .automatic, let procTables else { throw error }
            unseen.append("net:[\(target.inode)]: \(error); read \(procTables)/net/tcp instead (no last-received times)")
            return procSockets(procTables, states: states, netns: target.inode)
        }
        defer { close(fd) }
        do {
            return try NetlinkDiagSocket.dump(fd: fd, states: states, netns: target.inode)
        } catch InetDiagError.kernel(let code) where source == .automatic && procTables != nil
                    && (code == EPERM || code == EACCES || code == EOPNOTSUPP || code == ENOENT) {
            unseen.append("net:[\(target.inode)]: netlink sock_diag refused (\(errnoName(code))); read \(procTables!)/net/tcp instead (no last-received times)")
            return procSockets(procTables!, states: states, netns: target.inode)
        }
    }

    static func procSockets(_ root: String, states: Set<KernelTCPState>, netns: UInt64) -> [KernelSocket] {
        ProcNetTCP.read(procRoot: root).compactMap { entry in
            guard let state = KernelTCPState(rawValue: entry.state), states.contains(state) else { return nil }
            return KernelSocket(local: entry.local, remote: entry.remote, state: state, inode: entry.inode,
                                uid: entry.uid, lastReceivedMilliseconds: nil, netns: netns)
        }
    }
}

/// A NETLINK_SOCK_DIAG socket and its dump loop.
enum NetlinkDiagSocket {
    static let familyNetlink: Int32 = 16   // AF_NETLINK
    static let protocolSockDiag: Int32 = 4 // NETLINK_SOCK_DIAG
    static let bufferSize = 1 << 18
    static let receiveTimeout = 10

    struct Refused: Error, CustomStringConvertible {
        var code: Int32
        var description: String { "netlink sock_diag socket refused (\(errnoName(code)))" }
    }

    /// A sock_diag socket in the calling thread's network namespace.
    static func open() throws(Refused) -> Int32 {
        let fd = socket(familyNetlink, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), protocolSockDiag)
        guard fd >= 0 else { throw Refused(code: errno) }
        // Large dumps: a big receive buffer, so the kernel can queue while we parse; and a
        // timeout, so a kernel that never answers cannot hang the caller.
        var size: Int32 = 4 << 20
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        var timeout = timeval(tv_sec: receiveTimeout, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    static let sequenceLock = NSLockLike()

    /// Dumps both address families' sockets in `states` on `fd`.
    static func dump(fd: Int32, states: Set<KernelTCPState>, netns: UInt64?,
                     families: [UInt8] = [UInt8(AF_INET), UInt8(AF_INET6)]) throws -> [KernelSocket] {
        let mask = KernelTCPState.mask(states)
        guard mask != 0 else { return [] }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bufferSize, alignment: 8)
        defer { buffer.deallocate() }
        var sockets: [KernelSocket] = []
        for family in families {
            let seq = sequenceLock.next()
            let request = InetDiag.request(family: family, states: mask, sequence: seq)
            let sent = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
            guard sent == request.count else { throw InetDiagError.kernel(errno: errno) }
            while true {
                let count = recv(fd, buffer.baseAddress, buffer.count, Int32(MSG_TRUNC))
                if count < 0 {
                    if errno == EINTR { continue }
                    if errno == EAGAIN || errno == EWOULDBLOCK { throw InetDiagError.timedOut(seconds: receiveTimeout) }
                    throw InetDiagError.kernel(errno: errno)
                }
                guard count <= buffer.count else { throw InetDiagError.datagramTruncated(size: count, buffer: buffer.count) }
                guard count > 0 else { throw InetDiagError.truncated(offset: 0, needed: InetDiag.headerSize, available: 0) }
                let progress = try InetDiag.parse(UnsafeRawBufferPointer(rebasing: buffer[0..<count]),
                                                  sequence: seq, netns: netns, into: &sockets)
                if progress.done { break }
            }
        }
        return sockets
    }
}

/// A counter behind a pthread mutex (FinscopeHost avoids Foundation in the hot path).
final class NSLockLike: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    private var value: UInt32 = UInt32(truncatingIfNeeded: getpid()) << 16
    init() { pthread_mutex_init(&mutex, nil) }
    func next() -> UInt32 {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        value &+= 1
        return value
    }
}

/// Finding and entering network namespaces.
enum NetworkNamespaces {
    struct Target: Sendable, Equatable {
        var inode: UInt64
        /// An nsfs path to open for setns; nil for the current namespace.
        var path: String?
        /// A process in it (for /proc/PID/net/tcp); nil for a /run/netns namespace without one.
        var pid: Int32?
        var isCurrent: Bool
        /// More processes in it, tried in turn when `path`'s process exits before the namespace is entered.
        var others: [Int32] = []
    }

    struct EnterError: Error, CustomStringConvertible {
        var reason: String
        var description: String { reason }
    }

    static let cloneNewNet: Int32 = 0x4000_0000  // CLONE_NEWNET

    /// The inode of the namespace behind an nsfs path (following the /proc link); errno on failure.
    static func inode(_ path: String) -> Result<UInt64, EnterError> {
        var info = stat()
        guard stat(path, &info) == 0 else {
            let code = errno
            return .failure(EnterError(reason: code == EACCES || code == EPERM ? "permission denied" : errnoName(code)))
        }
        return .success(UInt64(info.st_ino))
    }

    static func targets(_ selection: NamespaceSelection, procRoot: String) -> ([Target], [String]) {
        var notes: [String] = []
        guard case .success(let own) = inode("\(procRoot)/self/ns/net") else {
            // No /proc/self/ns (very old kernel, or /proc not mounted): the current table only.
            return ([Target(inode: 0, path: nil, pid: nil, isCurrent: true)], ["network namespaces not enumerable: \(procRoot)/self/ns/net unreadable"])
        }
        var targets = [Target(inode: own, path: nil, pid: getpid(), isCurrent: true)]
        var seen: Set<UInt64> = [own]
        switch selection {
        case .current:
            return (targets, notes)
        case .paths(let paths):
            targets = []
            seen = []
            for path in paths {
                switch inode(path) {
                case .success(let inode):
                    guard seen.insert(inode).inserted else { continue }
                    targets.append(Target(inode: inode, path: path, pid: pidOf(path), isCurrent: inode == own))
                case .failure(let error):
                    notes.append("network namespace \(path) not read: \(error.reason)")
                }
            }
            return (targets, notes)
        case .all:
            var denied = 0
            var index: [UInt64: Int] = [:]
            for pid in directoryEntries(procRoot).compactMap({ Int32($0) }).sorted() {
                switch inode("\(procRoot)/\(pid)/ns/net") {
                case .success(let inode):
                    if seen.insert(inode).inserted {
                        targets.append(Target(inode: inode, path: "\(procRoot)/\(pid)/ns/net", pid: pid, isCurrent: false))
                        index[inode] = targets.count - 1
                    } else if let at = index[inode], targets[at].others.count < 3 {
                        targets[at].others.append(pid)
                    }
                case .failure(let error):
                    if error.reason == "permission denied" { denied += 1 }  // else: the process exited meanwhile
                }
            }
            for name in directoryEntries("/run/netns").sorted() {
                let path = "/run/netns/\(name)"
                if case .success(let inode) = inode(path), seen.insert(inode).inserted {
                    targets.append(Target(inode: inode, path: path, pid: nil, isCurrent: false))
                }
            }
            if denied > 0 {
                notes.append("network namespaces of \(denied) process\(denied == 1 ? "" : "es") unknown: /proc/PID/ns/net not readable (permission denied)")
            }
            return (targets, notes)
        }
    }

    /// `/proc/4242/ns/net` → 4242.
    static func pidOf(_ path: String) -> Int32? {
        let parts = path.split(separator: "/")
        guard parts.count >= 4, parts[parts.count - 1] == "net", parts[parts.count - 2] == "ns" else { return nil }
        return Int32(parts[parts.count - 3])
    }

    typealias SetnsFunction = @convention(c) (Int32, Int32) -> Int32
    /// glibc's setns(2) wrapper (Swift's Glibc module does not export it).
    static let setnsFunction: SetnsFunction? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "setns") else { return nil }
        return unsafeBitCast(symbol, to: SetnsFunction.self)
    }()

    final class Entry {
        let namespaceFD: Int32
        let expectedInode: UInt64
        var socketFD: Int32 = -1
        var failure: String?
        var refused: Int32?
        init(namespaceFD: Int32, expectedInode: UInt64) {
            self.namespaceFD = namespaceFD
            self.expectedInode = expectedInode
        }
    }

    /// A sock_diag socket created inside the namespace at `target.path`: a fresh thread enters
    /// the namespace (setns affects only the calling thread), creates the socket and ends;
    /// the socket stays bound to that namespace. The rest of the process never moves.
    static func netlinkSocket(in target: Target) throws -> Int32 {
        guard let path = target.path else { return try NetlinkDiagSocket.open() }
        var nsFD = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        var code = errno
        // The process named by the path exited meanwhile: another process of the namespace.
        if nsFD < 0, code == ENOENT || code == ESRCH, let pid = target.pid {
            let root = String(path.dropLast("/\(pid)/ns/net".count))
            for other in target.others where nsFD < 0 {
                nsFD = Glibc.open("\(root)/\(other)/ns/net", O_RDONLY | O_CLOEXEC)
                code = errno
            }
        }
        guard nsFD >= 0 else {
            throw EnterError(reason: code == EACCES || code == EPERM ? "permission denied" : errnoName(code))
        }
        defer { close(nsFD) }
        let entry = Entry(namespaceFD: nsFD, expectedInode: target.inode)
        var thread = pthread_t()
        let created = pthread_create(&thread, nil, { argument in
            let entry = Unmanaged<Entry>.fromOpaque(argument!).takeUnretainedValue()
            guard let setns = NetworkNamespaces.setnsFunction else {
                entry.failure = "setns(2) not available"
                return nil
            }
            guard setns(entry.namespaceFD, NetworkNamespaces.cloneNewNet) == 0 else {
                let code = errno
                entry.failure = code == EPERM || code == EACCES ? "permission denied" : errnoName(code)
                return nil
            }
            // Check the thread really is in the namespace asked for.
            var info = stat()
            if stat("/proc/thread-self/ns/net", &info) == 0, UInt64(info.st_ino) != entry.expectedInode {
                entry.failure = "setns entered net:[\(info.st_ino)], not net:[\(entry.expectedInode)]"
                return nil
            }
            do throws(NetlinkDiagSocket.Refused) {
                entry.socketFD = try NetlinkDiagSocket.open()
            } catch {
                entry.refused = error.code
            }
            return nil
        }, Unmanaged.passUnretained(entry).toOpaque())
        guard created == 0 else { throw EnterError(reason: "pthread_create: \(errnoName(created))") }
        pthread_join(thread, nil)
        withExtendedLifetime(entry) {}
        if let failure = entry.failure { throw EnterError(reason: failure) }
        if let refused = entry.refused { throw NetlinkDiagSocket.Refused(code: refused) }
        return entry.socketFD
    }
}
