import FinscopeFlows
import FinscopeWire

/// A kernel TCP state (include/net/tcp_states.h), as `ss` names it.
public enum KernelTCPState: UInt8, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case established = 1, synSent, synReceived, finWait1, finWait2, timeWait, close, closeWait,
         lastAck, listen, closing, newSynReceived

    /// The name the kernel's headers (and SPEC §7) use: "CLOSE_WAIT".
    public var description: String {
        switch self {
        case .established: "ESTABLISHED"
        case .synSent: "SYN_SENT"
        case .synReceived: "SYN_RECV"
        case .finWait1: "FIN_WAIT1"
        case .finWait2: "FIN_WAIT2"
        case .timeWait: "TIME_WAIT"
        case .close: "CLOSE"
        case .closeWait: "CLOSE_WAIT"
        case .lastAck: "LAST_ACK"
        case .listen: "LISTEN"
        case .closing: "CLOSING"
        case .newSynReceived: "NEW_SYN_RECV"
        }
    }

    public init?(name: String) {
        guard let state = Self.allCases.first(where: { $0.description == name }) else { return nil }
        self = state
    }

    /// The kernel's state-filter bitmask (`idiag_states`) for a set of states.
    public static func mask(_ states: Set<KernelTCPState>) -> UInt32 {
        states.reduce(0) { $0 | (1 << UInt32($1.rawValue)) }
    }
}

/// One TCP socket as the kernel's socket table holds it.
public struct KernelSocket: Sendable, Hashable {
    public var local: EndpointAddress
    public var remote: EndpointAddress
    public var state: KernelTCPState
    /// The socket's inode (`socket:[inode]` in /proc/PID/fd); 0 for a socket no file refers to.
    public var inode: UInt64
    public var uid: UInt32
    /// Milliseconds since the socket last received a segment: the smaller of tcp_info's
    /// `tcpi_last_data_recv` and `tcpi_last_ack_recv` (`ss -ti`: lastrcv, lastack). nil when
    /// the kernel gave no tcp_info (the /proc/net/tcp fallback never has it).
    public var lastReceivedMilliseconds: UInt32?
    /// The network namespace's inode (`stat -L /proc/PID/ns/net`); nil when unknown.
    public var netns: UInt64?

    public init(local: EndpointAddress, remote: EndpointAddress, state: KernelTCPState, inode: UInt64,
                uid: UInt32, lastReceivedMilliseconds: UInt32? = nil, netns: UInt64? = nil) {
        self.local = local
        self.remote = remote
        self.state = state
        self.inode = inode
        self.uid = uid
        self.lastReceivedMilliseconds = lastReceivedMilliseconds
        self.netns = netns
    }

    /// SPEC §7 `atLeastSeconds`: a lower bound of the socket's time in its state.
    public var atLeastSeconds: Double? { lastReceivedMilliseconds.map { Double($0) / 1000 } }
}

/// Why a netlink reply could not be used.
public enum InetDiagError: Error, Equatable, CustomStringConvertible {
    /// The kernel answered NLMSG_ERROR (or a NLMSG_DONE carrying an error): errno.
    case kernel(errno: Int32)
    /// A message or attribute claims more bytes than the reply holds.
    case truncated(offset: Int, needed: Int, available: Int)
    /// A length field that cannot be right (shorter than its own header).
    case malformed(offset: Int, reason: String)
    /// The datagram was bigger than the receive buffer (MSG_TRUNC).
    case datagramTruncated(size: Int, buffer: Int)
    /// The kernel sent nothing for the receive timeout, before NLMSG_DONE.
    case timedOut(seconds: Int)

    public var description: String {
        switch self {
        case .kernel(let code):
            "the kernel refused the socket dump: \(errnoName(code))"
        case .truncated(let offset, let needed, let available):
            "truncated netlink reply: \(needed) bytes needed at offset \(offset), \(available) available"
        case .malformed(let offset, let reason):
            "malformed netlink reply at offset \(offset): \(reason)"
        case .datagramTruncated(let size, let buffer):
            "netlink datagram of \(size) bytes does not fit the \(buffer)-byte buffer"
        case .timedOut(let seconds):
            "no answer from the kernel's socket dump for \(seconds) s"
        }
    }
}

/// The NETLINK_SOCK_DIAG wire format for TCP (include/uapi/linux/netlink.h, inet_diag.h,
/// tcp.h), read as bytes at named offsets, every read bounds-checked. Netlink is host
/// byte order; the addresses and ports inside `inet_diag_sockid` are network order.
public enum InetDiag {
    // struct nlmsghdr: u32 len, u16 type, u16 flags, u32 seq, u32 pid.
    static let headerSize = 16
    static let messageDone: UInt16 = 3       // NLMSG_DONE
    static let messageError: UInt16 = 2      // NLMSG_ERROR
    static let sockDiagByFamily: UInt16 = 20 // SOCK_DIAG_BY_FAMILY
    static let flagRequest: UInt16 = 0x1     // NLM_F_REQUEST
    static let flagDump: UInt16 = 0x300      // NLM_F_ROOT | NLM_F_MATCH

    // struct inet_diag_req_v2 (56 bytes): u8 family, u8 protocol, u8 ext, u8 pad,
    // u32 states, struct inet_diag_sockid id (48 bytes).
    static let requestSize = 56
    // struct inet_diag_msg (72 bytes): u8 family, u8 state, u8 timer, u8 retrans,
    // sockid at 4 (be16 sport at 4, be16 dport at 6, be32 src[4] at 8, be32 dst[4] at 24,
    // u32 if at 40, u32 cookie[2] at 44), u32 expires at 52, rqueue 56, wqueue 60,
    // uid 64, inode 68.
    static let diagMessageSize = 72
    static let attributeInfo: UInt16 = 2     // INET_DIAG_INFO: struct tcp_info
    // struct tcp_info: 8 bytes of u8 fields, then u32 rto, ato, snd_mss, rcv_mss, unacked,
    // sacked, lost, retrans, fackets (8...43), last_data_sent 44, last_ack_sent 48,
    // last_data_recv 52, last_ack_recv 56.
    static let lastDataReceivedOffset = 52
    static let lastAckReceivedOffset = 56

    /// A dump request for one address family's TCP sockets in `states`, asking for tcp_info.
    public static func request(family: UInt8, states: UInt32, sequence: UInt32) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: headerSize + requestSize)
        put32(&bytes, 0, UInt32(bytes.count))
        put16(&bytes, 4, sockDiagByFamily)
        put16(&bytes, 6, flagRequest | flagDump)
        put32(&bytes, 8, sequence)
        bytes[headerSize] = family
        bytes[headerSize + 1] = 6  // IPPROTO_TCP
        bytes[headerSize + 2] = 1 << (attributeInfo - 1)
        put32(&bytes, headerSize + 4, states)
        return bytes
    }

    /// The end of a dump: `done` once NLMSG_DONE was read.
    public struct Progress: Sendable, Equatable {
        public var done = false
        public var skipped = 0  // messages of other types or sequence numbers, or unknown states
    }

    /// Parses one datagram of a dump reply, appending its sockets. Throws on NLMSG_ERROR
    /// (and on NLMSG_DONE with a negative status) and on any length that does not fit.
    public static func parse(_ data: UnsafeRawBufferPointer, sequence: UInt32, netns: UInt64?,
                             into sockets: inout [KernelSocket]) throws -> Progress {
        var progress = Progress()
        var offset = 0
        while offset < data.count {
            guard data.count - offset >= headerSize else {
                throw InetDiagError.truncated(offset: offset, needed: headerSize, available: data.count - offset)
            }
            let length = Int(load32(data, offset))
            let type = load16(data, offset + 4)
            let seq = load32(data, offset + 8)
            guard length >= headerSize else {
                throw InetDiagError.malformed(offset: offset, reason: "message length \(length) is shorter than its header")
            }
            guard length <= data.count - offset else {
                throw InetDiagError.truncated(offset: offset, needed: length, available: data.count - offset)
            }
            let body = UnsafeRawBufferPointer(rebasing: data[(offset + headerSize)..<(offset + length)])
            switch type {
            case messageError:
                guard body.count >= 4 else {
                    throw InetDiagError.truncated(offset: offset + headerSize, needed: 4, available: body.count)
                }
                let code = Int32(bitPattern: load32(body, 0))
                if code != 0 { throw InetDiagError.kernel(errno: -code) }
            case messageDone:
                if body.count >= 4 {
                    let code = Int32(bitPattern: load32(body, 0))
                    if code < 0 { throw InetDiagError.kernel(errno: -code) }
                }
                if seq == sequence { progress.done = true; return progress }
                progress.skipped += 1
            case sockDiagByFamily where seq == sequence:
                if let socket = try socket(body, at: offset + headerSize, netns: netns) {
                    sockets.append(socket)
                } else {
                    progress.skipped += 1
                }
            default:
                progress.skipped += 1
            }
            offset += (length + 3) & ~3  // NLMSG_ALIGN
        }
        return progress
    }

    /// One `inet_diag_msg` and its attributes; nil for a family or state this does not know.
    static func socket(_ body: UnsafeRawBufferPointer, at base: Int, netns: UInt64?) throws -> KernelSocket? {
        guard body.count >= diagMessageSize else {
            throw InetDiagError.truncated(offset: base, needed: diagMessageSize, available: body.count)
        }
        let family = body[0]
        guard let state = KernelTCPState(rawValue: body[1]) else { return nil }
        let localPort = UInt16(bigEndian: load16(body, 4))
        let remotePort = UInt16(bigEndian: load16(body, 6))
        let localIP: IPAddress, remoteIP: IPAddress
        switch Int32(family) {
        case 2:  // AF_INET
            localIP = IPAddress(ipv4: UInt32(bigEndian: load32(body, 8)))
            remoteIP = IPAddress(ipv4: UInt32(bigEndian: load32(body, 24)))
        case 10:  // AF_INET6
            localIP = ipv6(body, 8)
            remoteIP = ipv6(body, 24)
        default:
            return nil
        }
        var socket = KernelSocket(
            local: EndpointAddress(ip: localIP, port: localPort),
            remote: EndpointAddress(ip: remoteIP, port: remotePort),
            state: state, inode: UInt64(load32(body, 68)), uid: load32(body, 64), netns: netns)
        // Attributes (struct rtattr: u16 len, u16 type, payload), each 4-byte aligned.
        var offset = diagMessageSize
        while body.count - offset >= 4 {
            let length = Int(load16(body, offset))
            let type = load16(body, offset + 2) & 0x3fff  // without NLA_F_NESTED / NET_BYTEORDER
            guard length >= 4 else {
                throw InetDiagError.malformed(offset: base + offset, reason: "attribute length \(length) is shorter than its header")
            }
            guard length <= body.count - offset else {
                throw InetDiagError.truncated(offset: base + offset, needed: length, available: body.count - offset)
            }
            if type == attributeInfo, length - 4 >= lastAckReceivedOffset + 4 {
                let data = load32(body, offset + 4 + lastDataReceivedOffset)
                let ack = load32(body, offset + 4 + lastAckReceivedOffset)
                socket.lastReceivedMilliseconds = min(data, ack)
            }
            offset += (length + 3) & ~3
        }
        return socket
    }

    /// An IPv6 address at `offset`; IPv4-mapped addresses (dual-stack sockets) come back as
    /// IPv4, the way their packets show them.
    static func ipv6(_ data: UnsafeRawBufferPointer, _ offset: Int) -> IPAddress {
        let high = UInt64(bigEndian: data.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
        let low = UInt64(bigEndian: data.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self))
        if high == 0, low >> 32 == 0xffff { return IPAddress(ipv4: UInt32(truncatingIfNeeded: low)) }
        return IPAddress(ipv6High: high, low: low)
    }

    static func load16(_ data: UnsafeRawBufferPointer, _ offset: Int) -> UInt16 {
        data.loadUnaligned(fromByteOffset: offset, as: UInt16.self)
    }

    static func load32(_ data: UnsafeRawBufferPointer, _ offset: Int) -> UInt32 {
        data.loadUnaligned(fromByteOffset: offset, as: UInt32.self)
    }

    static func put16(_ bytes: inout [UInt8], _ offset: Int, _ value: UInt16) {
        withUnsafeBytes(of: value) { bytes.replaceSubrange(offset..<offset + 2, with: $0) }
    }

    static func put32(_ bytes: inout [UInt8], _ offset: Int, _ value: UInt32) {
        withUnsafeBytes(of: value) { bytes.replaceSubrange(offset..<offset + 4, with: $0) }
    }
}

func errnoName(_ code: Int32) -> String {
    #if canImport(Glibc)
    return "\(String(cString: strerror(code))) (errno \(code))"
    #else
    return "errno \(code)"
    #endif
}

#if canImport(Glibc)
import Glibc
#endif
