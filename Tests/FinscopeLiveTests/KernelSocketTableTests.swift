import FinscopeFlows
@testable import FinscopeHost
import FinscopeWire
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

private func monotonicMilliseconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Double(now.tv_sec) * 1000 + Double(now.tv_nsec) / 1e6
}

/// The kernel's socket table read through NETLINK_SOCK_DIAG, checked against `ss`.
@Suite("kernel socket table (netlink sock_diag)", .serialized)
struct KernelSocketTableTests {
    static let haveSS = HostTools.find("ss") != nil
    static let rootWithIP = HostTools.isRoot() && HostTools.find("ip") != nil && HostTools.find("python3") != nil

    @Test("a leak made here: exactly the sockets ss lists, this pid as owner, lastReceived within the elapsed time",
          .enabled(if: haveSS, "needs ss (iproute2)"))
    func leakInThisProcess() throws {
        let server = try LoopbackServer()
        defer { server.close() }
        let started = monotonicMilliseconds()
        var clients: [Int32] = []
        defer { clients.forEach { _ = Glibc.close($0) } }
        for _ in 0..<6 { clients.append(try server.exchange().fd) }
        usleep(300_000)

        let scan = try KernelSocketTable.read(states: [.closeWait], namespaces: .current)
        let elapsed = monotonicMilliseconds() - started
        let ss = try HostTools.ssCloseWait(remotePort: server.port)
        let ssTimes = try HostTools.ssLastReceived(remotePort: server.port)

        let ours = scan.sockets.filter { $0.remote.port == server.port && $0.remote.ip == IPAddress("127.0.0.1")! }
        #expect(ss.count == 6)
        #expect(Set(ours.map { [$0.local, $0.remote] }) == ss)
        #expect(ours.count == 6)  // no duplicates
        let ownNamespace = HostTools.namespaceInode("/proc/self/ns/net")
        for socket in ours {
            #expect(socket.state == .closeWait)
            #expect(socket.netns == ownNamespace)
            #expect(socket.uid == geteuid())
            #expect(socket.inode != 0)
            #expect(scan.owner(of: socket)?.pid == getpid())
            #expect(scan.owner(of: socket)?.exited == false)
            let last = try #require(socket.lastReceivedMilliseconds)
            #expect(Double(last) >= 250)          // the FIN came before the 300 ms sleep
            #expect(Double(last) <= elapsed + 20) // and after the test started (jiffy rounding)
            // ss read tcp_info a moment later: its min(lastrcv, lastack) is at least ours.
            let theirs = try #require(ssTimes[socket.local])
            #expect(theirs >= last)
            #expect(theirs - last < 2_000)
        }
        #expect(scan.namespaces == [ownNamespace].compactMap { $0 })
        #expect(abs(scan.checkedAt - Date().timeIntervalSince1970) < 10)
    }

    @Test("only the states asked for: ESTABLISHED finds a live connection, CLOSE_WAIT does not")
    func stateFilter() throws {
        let server = try LoopbackServer()
        defer { server.close() }
        let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        defer { Glibc.close(client) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        address.sin_port = server.port.bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(client, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        try #require(connected == 0)
        let port = LoopbackServer.localPort(client)
        let established = try KernelSocketTable.read(states: [.established], namespaces: .current, owners: false)
        #expect(established.sockets.contains { $0.local.port == port && $0.remote.port == server.port && $0.state == .established })
        let closeWait = try KernelSocketTable.read(states: [.closeWait], namespaces: .current, owners: false)
        #expect(!closeWait.sockets.contains { $0.local.port == port })
        let listening = try KernelSocketTable.read(states: [.listen], namespaces: .current, owners: false)
        #expect(listening.sockets.contains { $0.local.port == server.port && $0.state == .listen })
    }

    @Test("a request the kernel rejects comes back as NLMSG_ERROR: a clear error, not a hang")
    func kernelRejectsRequest() throws {
        let fd = try NetlinkDiagSocket.open()
        defer { Glibc.close(fd) }
        // Address family 99 is beyond AF_MAX: sock_diag answers -EINVAL.
        #expect(throws: InetDiagError.kernel(errno: EINVAL)) {
            try NetlinkDiagSocket.dump(fd: fd, states: [.closeWait], netns: nil, families: [99])
        }
        // The socket still works afterwards.
        #expect(throws: Never.self) { try NetlinkDiagSocket.dump(fd: fd, states: [.closeWait], netns: nil) }
    }

    @Test("the /proc/net/tcp fallback reads the same sockets, without receive times")
    func procFallbackAgrees() throws {
        let server = try LoopbackServer()
        defer { server.close() }
        var clients: [Int32] = []
        defer { clients.forEach { _ = Glibc.close($0) } }
        for _ in 0..<3 { clients.append(try server.exchange().fd) }
        let netlink = try KernelSocketTable.read(states: [.closeWait], namespaces: .current, source: .netlink)
        let proc = try KernelSocketTable.read(states: [.closeWait], namespaces: .current, source: .procNetTCP)
        func ours(_ scan: KernelScan) -> Set<KernelSocket> {
            Set(scan.sockets.filter { $0.remote.port == server.port }.map { var s = $0; s.lastReceivedMilliseconds = nil; return s })
        }
        #expect(ours(netlink).count == 3)
        #expect(ours(netlink) == ours(proc))
        #expect(proc.sockets.allSatisfy { $0.lastReceivedMilliseconds == nil })
        #expect(netlink.sockets.filter { $0.remote.port == server.port }.allSatisfy { $0.lastReceivedMilliseconds != nil })
    }

    @Test("a namespace made here: its sockets carry its inode and the python process as owner",
          .enabled(if: rootWithIP && haveSS, "needs root, ip, ss and python3"))
    func leakInAnotherNamespace() throws {
        let namespace = try TestNamespace()
        defer { namespace.remove() }
        let holder = try CloseWaitHolder(count: 4, namespace: namespace.name)
        defer { holder.stop() }
        let inode = try #require(HostTools.namespaceInode(namespace.path))
        #expect(inode != HostTools.namespaceInode("/proc/self/ns/net"))

        let scan = try KernelSocketTable.read(states: [.closeWait], namespaces: .all)
        let ss = try HostTools.ssCloseWait(remotePort: holder.port, namespace: namespace.name)
        let ours = scan.sockets.filter { $0.netns == inode }
        #expect(ss.count == 4)
        #expect(Set(ours.map { [$0.local, $0.remote] }) == ss)
        #expect(ours.count == 4)
        #expect(scan.namespaces.contains(inode))
        for socket in ours {
            let owner = try #require(scan.owner(of: socket))
            #expect(owner.pid == holder.pid)
            #expect(owner.command.contains("python"))
            #expect(owner.startTime == ProcessStart.read(pid: holder.pid)?.startTime)
            #expect(socket.lastReceivedMilliseconds != nil)
        }
        // This process's own namespace was not left: its sockets are still those of ss here.
        #expect(HostTools.namespaceInode("/proc/thread-self/ns/net") == HostTools.namespaceInode("/proc/self/ns/net"))

        // Asking for that namespace alone, by path.
        let alone = try KernelSocketTable.read(states: [.closeWait], namespaces: .paths([namespace.path]))
        #expect(alone.namespaces == [inode])
        #expect(Set(alone.sockets.map { [$0.local, $0.remote] }) == ss)
    }

    @Test("a namespace path that does not exist is listed as unseen; nothing read at all is an error")
    func badNamespacePath() throws {
        #expect(throws: KernelSocketTableError.self) {
            try KernelSocketTable.read(namespaces: .paths(["/nonexistent/ns/net"]))
        }
        let scan = try KernelSocketTable.read(namespaces: .paths(["/proc/self/ns/net", "/nonexistent/ns/net"]))
        #expect(scan.unseen.contains { $0.contains("/nonexistent/ns/net") })
        #expect(scan.namespaces == [HostTools.namespaceInode("/proc/self/ns/net")].compactMap { $0 })
    }

    @Test("an owner outlives its process: exited once the process is gone",
          .enabled(if: HostTools.find("python3") != nil, "needs python3"))
    func ownerOutlivesProcess() throws {
        let holder = try CloseWaitHolder(count: 2)
        let scan = try KernelSocketTable.read(states: [.closeWait], namespaces: .current)
        let ours = scan.sockets.filter { $0.remote.port == holder.port }
        #expect(ours.count == 2)
        var cache = OwnerCache()
        cache.record(scan)
        for socket in ours {
            let owner = try #require(cache.owner(OwnerCache.Key(socket)))
            #expect(owner.pid == holder.pid)
            #expect(!owner.exited)
        }
        holder.stop()
        // The process has been reaped: /proc/PID is gone (or is another process now).
        let after = try KernelSocketTable.read(states: [.closeWait], namespaces: .current)
        #expect(!after.sockets.contains { $0.remote.port == holder.port })
        cache.record(after)
        for socket in ours {
            let owner = try #require(cache.owner(netns: socket.netns, local: socket.local, remote: socket.remote))
            #expect(owner.pid == holder.pid)
            #expect(owner.command.contains("python"))
            #expect(owner.exited)
        }
    }

    @Test("pid reuse: an owner whose start time differs from the pid's current process has exited")
    func pidReuse() throws {
        let now = try #require(ProcessStart.read(pid: getpid()))
        #expect(!OwnerCache.hasExited(SocketOwner(pid: getpid(), command: "x", startTime: now.startTime)))
        #expect(OwnerCache.hasExited(SocketOwner(pid: getpid(), command: "x", startTime: now.startTime + 1)))
        // The first owner seen is kept.
        let socket = KernelSocket(local: EndpointAddress(ip: IPAddress("127.0.0.1")!, port: 1),
                                  remote: EndpointAddress(ip: IPAddress("127.0.0.1")!, port: 2),
                                  state: .closeWait, inode: 9, uid: 0, netns: 1)
        var cache = OwnerCache()
        cache.record(KernelScan(sockets: [socket], owners: [9: SocketOwner(pid: getpid(), command: "first", startTime: now.startTime)]))
        cache.record(KernelScan(sockets: [socket], owners: [9: SocketOwner(pid: 1, command: "second")]))
        #expect(cache.owner(OwnerCache.Key(socket))?.command == "first")
        #expect(cache.owner(netns: 2, local: socket.local, remote: socket.remote) == nil)  // another namespace
    }

    @Test("the root helper answers kernel-scan: every namespace, with owners",
          .enabled(if: FileManager.default.isExecutableFile(atPath: finscopeExecutable), "needs the built finscope binary"))
    func helperAnswersKernelScan() throws {
        let server = try LoopbackServer()
        defer { server.close() }
        var clients: [Int32] = []
        defer { clients.forEach { _ = Glibc.close($0) } }
        for _ in 0..<3 { clients.append(try server.exchange().fd) }
        let helper = try AttributionHelper(executable: finscopeExecutable)
        defer { helper.stop() }
        let scan = try #require(try helper.kernelScan())
        let own = HostTools.namespaceInode("/proc/self/ns/net")
        let ours = scan.sockets.filter { $0.remote.port == server.port && $0.netns == own }
        #expect(ours.count == 3)
        #expect(ours.allSatisfy { scan.owner(of: $0)?.pid == getpid() })
        #expect(ours.allSatisfy { $0.lastReceivedMilliseconds != nil })
        #expect(scan.namespaces.contains { $0 == own })
        // The old request still works on the same pipe.
        let snapshot = try #require(helper.snapshot())
        #expect(snapshot.owners.keys.filter { $0.remote.port == server.port }.count == 3)
        helper.stop()
        #expect(helper.snapshot() == nil)
    }

    @Test("the helper answers an unknown request with an error line and end, so no client hangs",
          .enabled(if: FileManager.default.isExecutableFile(atPath: finscopeExecutable), "needs the built finscope binary"))
    func helperUnknownRequest() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: finscopeExecutable)
        process.arguments = [AttributionHelper.subcommand]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        try input.fileHandleForWriting.write(contentsOf: Data("frobnicate\n".utf8))
        try input.fileHandleForWriting.close()
        let answer = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(answer == "e unknown request: frobnicate\nend\n")
        #expect(process.terminationStatus == 0)
    }

    @Test("as nobody: what could be read, plus what could not (namespaces not entered, owners unknown)",
          .enabled(if: rootWithIP && haveSS && HostTools.find("runuser") != nil
                       && FileManager.default.isExecutableFile(atPath: finscopeExecutable),
                   "needs root, runuser, ip, ss, python3 and the built finscope binary"))
    func withoutPermission() throws {
        let namespace = try TestNamespace()
        defer { namespace.remove() }
        let holder = try CloseWaitHolder(count: 2, namespace: namespace.name)
        defer { holder.stop() }
        let server = try LoopbackServer()
        defer { server.close() }
        var clients: [Int32] = []
        defer { clients.forEach { _ = Glibc.close($0) } }
        for _ in 0..<3 { clients.append(try server.exchange().fd) }

        // A copy of the binary nobody can run, in a world-readable temporary directory.
        var template = Array("/tmp/finscope-nobody-XXXXXX".utf8CString)
        let directory = try #require(template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }.map { String(cString: $0) })
        defer { _ = try? FileManager.default.removeItem(atPath: directory) }
        chmod(directory, 0o755)
        let copy = directory + "/finscope"
        try FileManager.default.copyItem(atPath: finscopeExecutable, toPath: copy)
        chmod(copy, 0o755)

        let run = try HostTools.run(HostTools.find("runuser")!, ["-u", "nobody", "--", copy, "kernel-sockets"])
        #expect(run.status == 0, "stderr: \(run.stderr)")
        let scan = try KernelScan.decode(lines: run.stdout.split(separator: "\n"))
        // Its own namespace is readable without privileges: this test's sockets are there…
        let ours = scan.sockets.filter { $0.remote.port == server.port }
        #expect(Set(ours.map { [$0.local, $0.remote] }) == (try HostTools.ssCloseWait(remotePort: server.port)))
        #expect(ours.count == 3)
        // …but held by root, whose /proc/PID/fd nobody cannot read.
        #expect(ours.allSatisfy { scan.owner(of: $0) == nil })
        #expect(scan.unseen.contains { $0.hasPrefix("owners unknown") && $0.contains("/proc/PID/fd not readable") })
        // The namespace made here could not be entered, and says so by name.
        #expect(scan.unseen.contains { $0.contains("not entered (permission denied)") && $0.contains(namespace.path) })
        let inode = HostTools.namespaceInode(namespace.path)
        #expect(!scan.namespaces.contains { $0 == inode })
        #expect(!scan.sockets.contains { $0.netns == inode })
    }
}

/// The built `finscope` executable, beside the test bundle in the build products folder.
let finscopeExecutable: String = finscopeBinary
