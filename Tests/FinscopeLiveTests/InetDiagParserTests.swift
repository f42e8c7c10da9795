import FinscopeFlows
@testable import FinscopeHost
import FinscopeWire
import Testing

/// Hand-built netlink replies: every offset written out here from the kernel's uapi layouts
/// (nlmsghdr 16 bytes; inet_diag_msg 72; rtattr 4 + payload; tcp_info last_data_recv at 52,
/// last_ack_recv at 56), not from the parser's constants.
@Suite("NETLINK_SOCK_DIAG message parsing")
struct InetDiagParserTests {
    static let seq: UInt32 = 0x0102_0304

    static func le16(_ v: UInt16) -> [UInt8] { [UInt8(v & 0xff), UInt8(v >> 8)] }
    static func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8((v >> (8 * $0)) & 0xff) } }

    static func header(length: Int, type: UInt16, seq: UInt32 = seq) -> [UInt8] {
        le32(UInt32(length)) + le16(type) + le16(0x2) /* NLM_F_MULTI */ + le32(seq) + le32(0)
    }

    /// inet_diag_msg: family, state, timer, retrans; sport, dport (big-endian); src[16], dst[16];
    /// if, cookie[2]; expires, rqueue, wqueue, uid, inode.
    static func diagMessage(family: UInt8, state: UInt8, sport: UInt16, dport: UInt16,
                            src: [UInt8], dst: [UInt8], uid: UInt32, inode: UInt32) -> [UInt8] {
        var bytes: [UInt8] = [family, state, 0, 0, UInt8(sport >> 8), UInt8(sport & 0xff), UInt8(dport >> 8), UInt8(dport & 0xff)]
        bytes += src + [UInt8](repeating: 0, count: 16 - src.count)
        bytes += dst + [UInt8](repeating: 0, count: 16 - dst.count)
        bytes += [UInt8](repeating: 0, count: 4 + 8 + 12)  // if, cookie, expires, rqueue, wqueue
        bytes += le32(uid) + le32(inode)
        precondition(bytes.count == 72)
        return bytes
    }

    /// rtattr INET_DIAG_INFO (type 2) holding a tcp_info of `size` bytes.
    static func tcpInfo(lastDataReceived: UInt32, lastAckReceived: UInt32, size: Int = 232) -> [UInt8] {
        var info = [UInt8](repeating: 0, count: size)
        if size >= 60 {
            info.replaceSubrange(52..<56, with: le32(lastDataReceived))
            info.replaceSubrange(56..<60, with: le32(lastAckReceived))
        }
        info[0] = 8  // tcpi_state
        let padded = info + [UInt8](repeating: 0, count: (4 - size % 4) % 4)
        return le16(UInt16(4 + size)) + le16(2) + padded
    }

    static func message(_ body: [UInt8], type: UInt16 = 20, seq: UInt32 = seq) -> [UInt8] {
        header(length: 16 + body.count, type: type, seq: seq) + body
    }

    static let done = message(le32(0), type: 3)

    func parse(_ bytes: [UInt8], seq: UInt32 = Self.seq) throws -> ([KernelSocket], InetDiag.Progress) {
        var sockets: [KernelSocket] = []
        let progress = try bytes.withUnsafeBytes { try InetDiag.parse($0, sequence: seq, netns: 77, into: &sockets) }
        return (sockets, progress)
    }

    static let ipv4Socket = message(
        diagMessage(family: 2, state: 8, sport: 40000, dport: 8282, src: [127, 0, 0, 1], dst: [10, 0, 1, 5], uid: 1000, inode: 4_242_123)
            + tcpInfo(lastDataReceived: 1500, lastAckReceived: 900))

    @Test("an IPv4 CLOSE_WAIT socket with tcp_info, then NLMSG_DONE")
    func ipv4() throws {
        let (sockets, progress) = try parse(Self.ipv4Socket + Self.done)
        #expect(progress.done)
        #expect(sockets.count == 1)
        let socket = try #require(sockets.first)
        #expect(socket.local == EndpointAddress(ip: IPAddress("127.0.0.1")!, port: 40000))
        #expect(socket.remote == EndpointAddress(ip: IPAddress("10.0.1.5")!, port: 8282))
        #expect(socket.state == .closeWait)
        #expect(socket.uid == 1000)
        #expect(socket.inode == 4_242_123)
        #expect(socket.lastReceivedMilliseconds == 900)  // the smaller of lastrcv and lastack
        #expect(socket.atLeastSeconds == 0.9)
        #expect(socket.netns == 77)
    }

    @Test("IPv6, and IPv4-mapped IPv6 reported as IPv4")
    func ipv6() throws {
        let v6 = Self.message(Self.diagMessage(family: 10, state: 8, sport: 8290, dport: 54321,
                                               src: [UInt8](repeating: 0, count: 15) + [1],
                                               dst: [0xfd, 0] + [UInt8](repeating: 0, count: 13) + [2], uid: 0, inode: 5))
        let mapped = Self.message(Self.diagMessage(family: 10, state: 8, sport: 1, dport: 2,
                                                   src: [UInt8](repeating: 0, count: 10) + [0xff, 0xff, 10, 0, 0, 5],
                                                   dst: [UInt8](repeating: 0, count: 10) + [0xff, 0xff, 127, 0, 0, 1], uid: 0, inode: 6))
        let (sockets, progress) = try parse(v6 + mapped)
        #expect(!progress.done)  // no NLMSG_DONE in this datagram: the reader keeps reading
        #expect(sockets.map(\.local.description) == ["[::1]:8290", "10.0.0.5:1"])
        #expect(sockets.map(\.remote.description) == ["[fd00::2]:54321", "127.0.0.1:2"])
        #expect(sockets[0].lastReceivedMilliseconds == nil)  // no INET_DIAG_INFO attribute
    }

    @Test("a tcp_info too short to hold the receive times gives none")
    func shortTCPInfo() throws {
        let bytes = Self.message(Self.diagMessage(family: 2, state: 8, sport: 1, dport: 2, src: [1, 2, 3, 4], dst: [5, 6, 7, 8], uid: 0, inode: 1)
                                 + Self.tcpInfo(lastDataReceived: 5, lastAckReceived: 5, size: 56))
        let (sockets, _) = try parse(bytes)
        #expect(sockets.count == 1)
        #expect(sockets[0].lastReceivedMilliseconds == nil)
    }

    @Test("NLMSG_ERROR is the kernel's errno")
    func kernelError() {
        // struct nlmsgerr: int error (-EPERM = -1), then the request's header.
        let error = Self.message(Self.le32(UInt32(bitPattern: -1)) + Self.header(length: 72, type: 20), type: 2)
        #expect(throws: InetDiagError.kernel(errno: 1)) { try parse(error) }
        let doneWithError = Self.message(Self.le32(UInt32(bitPattern: -105)), type: 3)  // -ENOBUFS
        #expect(throws: InetDiagError.kernel(errno: 105)) { try parse(doneWithError) }
        #expect(InetDiagError.kernel(errno: 1).description.contains("errno 1"))
    }

    @Test("truncated and malformed replies are errors, never traps")
    func truncated() {
        let whole = Self.ipv4Socket
        // A header cut short.
        #expect(throws: InetDiagError.truncated(offset: 0, needed: 16, available: 10)) { try parse(Array(whole[0..<10])) }
        // A header whose length runs past the datagram.
        #expect(throws: InetDiagError.truncated(offset: 0, needed: whole.count, available: 100)) { try parse(Array(whole[0..<100])) }
        // A length shorter than the header itself.
        var short = whole
        short.replaceSubrange(0..<4, with: Self.le32(8))
        #expect(throws: InetDiagError.malformed(offset: 0, reason: "message length 8 is shorter than its header")) { try parse(short) }
        // A message too short for inet_diag_msg.
        let tiny = Self.message([2, 8, 0, 0])
        #expect(throws: InetDiagError.truncated(offset: 16, needed: 72, available: 4)) { try parse(tiny) }
        // An attribute claiming more than the message holds.
        var badAttribute = Self.message(Self.diagMessage(family: 2, state: 8, sport: 1, dport: 2, src: [1, 2, 3, 4], dst: [5, 6, 7, 8], uid: 0, inode: 1)
                                        + Self.le16(200) + Self.le16(2) + [0, 0, 0, 0])
        #expect(throws: InetDiagError.truncated(offset: 16 + 72, needed: 200, available: 8)) { try parse(badAttribute) }
        badAttribute.replaceSubrange((16 + 72)..<(16 + 74), with: Self.le16(2))
        #expect(throws: InetDiagError.malformed(offset: 16 + 72, reason: "attribute length 2 is shorter than its header")) { try parse(badAttribute) }
        // An error message without its errno.
        #expect(throws: InetDiagError.truncated(offset: 16, needed: 4, available: 0)) { try parse(Self.header(length: 16, type: 2)) }
    }

    @Test("messages of another sequence number, unknown families and states are skipped")
    func skipped() throws {
        let other = Self.message(Self.diagMessage(family: 2, state: 8, sport: 1, dport: 2, src: [1, 2, 3, 4], dst: [5, 6, 7, 8], uid: 0, inode: 1), seq: 99)
        let unix = Self.message(Self.diagMessage(family: 1, state: 8, sport: 1, dport: 2, src: [], dst: [], uid: 0, inode: 2))
        let badState = Self.message(Self.diagMessage(family: 2, state: 0, sport: 1, dport: 2, src: [], dst: [], uid: 0, inode: 3))
        let otherDone = Self.message(Self.le32(0), type: 3, seq: 99)
        let (sockets, progress) = try parse(other + unix + badState + otherDone + Self.ipv4Socket + Self.done)
        #expect(sockets.map(\.inode) == [4_242_123])
        #expect(progress.skipped == 4)
        #expect(progress.done)
    }

    @Test("the dump request: nlmsghdr + inet_diag_req_v2 as the kernel reads it")
    func request() {
        let bytes = InetDiag.request(family: 10, states: KernelTCPState.mask([.closeWait]), sequence: 7)
        #expect(bytes.count == 72)
        #expect(Array(bytes[0..<16]) == Self.le32(72) + Self.le16(20) + Self.le16(0x301) + Self.le32(7) + Self.le32(0))
        // family AF_INET6, IPPROTO_TCP, ext = 1 << (INET_DIAG_INFO - 1), pad, states = 1 << 8.
        #expect(Array(bytes[16..<24]) == [10, 6, 2, 0] + Self.le32(0x100))
        #expect(bytes[24...].allSatisfy { $0 == 0 })  // the socket id: any
        #expect(KernelTCPState.mask([.closeWait, .established]) == 0x102)
    }
}

@Suite("container ids from /proc/PID/cgroup")
struct ContainerIdentityTests {
    static let hex = "3f4e1c2b9a8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f"

    @Test("Docker with the systemd driver (cgroup v2)")
    func dockerSystemd() {
        let identity = ContainerIdentity.parse(cgroupFile: "0::/system.slice/docker-\(Self.hex).scope\n")
        #expect(identity == ContainerIdentity(id: Self.hex, pod: nil))
    }

    @Test("Docker with the cgroupfs driver (cgroup v1, several hierarchies)")
    func dockerCgroupfs() {
        let text = """
            12:pids:/docker/\(Self.hex)
            11:memory:/docker/\(Self.hex)
            1:name=systemd:/docker/\(Self.hex)
            0::/system.slice/containerd.service
            """
        #expect(ContainerIdentity.parse(cgroupFile: text) == ContainerIdentity(id: Self.hex, pod: nil))
    }

    @Test("containerd under Kubernetes, systemd driver: container id and pod UID")
    func kubernetesSystemd() {
        let line = "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod6b0d9f3e_2c1a_4b7e_9f3d_0a1b2c3d4e5f.slice/cri-containerd-\(Self.hex).scope"
        #expect(ContainerIdentity.parse(cgroupFile: line) == ContainerIdentity(id: Self.hex, pod: "6b0d9f3e-2c1a-4b7e-9f3d-0a1b2c3d4e5f"))
    }

    @Test("Kubernetes, cgroupfs driver")
    func kubernetesCgroupfs() {
        let line = "4:cpu,cpuacct:/kubepods/besteffort/pod6b0d9f3e-2c1a-4b7e-9f3d-0a1b2c3d4e5f/\(Self.hex)"
        #expect(ContainerIdentity.parse(cgroupFile: line) == ContainerIdentity(id: Self.hex, pod: "6b0d9f3e-2c1a-4b7e-9f3d-0a1b2c3d4e5f"))
    }

    @Test("Podman and CRI-O scopes")
    func otherRuntimes() {
        #expect(ContainerIdentity.parse(cgroupFile: "0::/machine.slice/libpod-\(Self.hex).scope")?.id == Self.hex)
        #expect(ContainerIdentity.parse(cgroupFile: "0::/kubepods.slice/crio-\(Self.hex).scope")?.id == Self.hex)
    }

    @Test("no container: a user session, the init scope, the Docker daemon itself, damaged lines")
    func none() {
        #expect(ContainerIdentity.parse(cgroupFile: "0::/user.slice/user-1000.slice/session-3.scope\n") == nil)
        #expect(ContainerIdentity.parse(cgroupFile: "0::/init.scope") == nil)
        #expect(ContainerIdentity.parse(cgroupFile: "0::/system.slice/docker.service") == nil)
        #expect(ContainerIdentity.parse(cgroupFile: "0::/system.slice/docker-\(Self.hex.dropLast()).scope") == nil)  // 63 hex
        #expect(ContainerIdentity.parse(cgroupFile: "0::/system.slice/docker-\(Self.hex.uppercased()).scope") == nil)
        #expect(ContainerIdentity.parse(cgroupFile: "/docker/\(Self.hex)") == nil)  // not a cgroup line
        #expect(ContainerIdentity.parse(cgroupFile: "") == nil)
    }

    @Test("socket links read as bytes: socket:[N] only")
    func socketLinkBytes() {
        func inode(_ text: String) -> UInt64? {
            var bytes = Array(text.utf8)
            let count = bytes.count
            bytes += [UInt8](repeating: 0, count: 64 - count)
            return SocketOwners.socketInode(bytes: bytes, count: count)
        }
        #expect(inode("socket:[123456]") == 123_456)
        #expect(inode("socket:[]") == nil)
        #expect(inode("socket:[12a]") == nil)
        #expect(inode("pipe:[123456]") == nil)
        #expect(inode("socket:[99999999999999999999]") == nil)  // overflows UInt64
        #expect(inode("/dev/null") == nil)
    }

    @Test("/proc/PID/stat: fields counted after the last ')' of the command")
    func processStat() {
        let line = "4242 (my (odd) prog) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654321 1000000 200 18446744073709551615"
        #expect(ProcessStart.parse(stat: line) == ProcessStart(startTime: 987_654_321, state: "S"))
        #expect(ProcessStart.parse(stat: "4242 (x) Z 1 2 3") == nil)
        #expect(ProcessStart.parse(stat: "garbage") == nil)
    }
}

@Suite("the helper's kernel-scan lines")
struct KernelScanEncodingTests {
    @Test("a scan survives encoding, commands with spaces and '-' fields included")
    func roundTrip() throws {
        let a = KernelSocket(local: EndpointAddress(ip: IPAddress("127.0.0.1")!, port: 40000),
                             remote: EndpointAddress(ip: IPAddress("fd00::1")!, port: 8282),
                             state: .closeWait, inode: 123, uid: 1000, lastReceivedMilliseconds: 1500, netns: 4_026_531_840)
        let b = KernelSocket(local: EndpointAddress(ip: IPAddress("10.0.0.5")!, port: 1),
                             remote: EndpointAddress(ip: IPAddress("10.0.0.9")!, port: 2),
                             state: .closeWait, inode: 0, uid: 0, lastReceivedMilliseconds: nil, netns: nil)
        let scan = KernelScan(
            sockets: [a, b],
            owners: [123: SocketOwner(pid: 4242, command: "java -jar app.jar  --x", containerID: ContainerIdentityTests.hex,
                                      pod: "6b0d9f3e-2c1a-4b7e-9f3d-0a1b2c3d4e5f", startTime: 99)],
            unseen: ["3 network namespaces not entered (permission denied): /run/netns/a"],
            namespaces: [4_026_531_840], checkedAt: 1_764_590_000.25)
        let decoded = try KernelScan.decode(lines: scan.encoded().split(separator: "\n"))
        #expect(decoded == scan)
    }

    @Test("a damaged line or the helper's error line is an error")
    func errors() {
        #expect(throws: KernelScanDecodingError.self) { try KernelScan.decode(lines: ["s - CLOSE_WAIT 127.0.0.1 x 127.0.0.1 2 3 4 -"]) }
        #expect(throws: KernelScanDecodingError.self) { try KernelScan.decode(lines: ["s - SOMETHING 127.0.0.1 1 127.0.0.1 2 3 4 -"]) }
        #expect(throws: KernelScanDecodingError.self) { try KernelScan.decode(lines: ["what"]) }
        #expect(throws: KernelScanDecodingError(message: "no socket table could be read")) {
            try KernelScan.decode(lines: ["e no socket table could be read"])
        }
    }
}
