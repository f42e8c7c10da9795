import FinscopeFlows
import FinscopeWire

/// One socket line of `/proc/net/tcp` or `/proc/net/tcp6`.
public struct TCPSocketEntry: Sendable, Equatable {
    /// Kernel TCP state numbers (include/net/tcp_states.h).
    public static let closeWait: UInt8 = 0x08

    public var local: EndpointAddress
    public var remote: EndpointAddress
    public var state: UInt8
    public var uid: UInt32
    public var inode: UInt64

    public init(local: EndpointAddress, remote: EndpointAddress, state: UInt8, uid: UInt32, inode: UInt64) {
        self.local = local
        self.remote = remote
        self.state = state
        self.uid = uid
        self.inode = inode
    }
}

/// Parses the kernel's TCP socket tables.
///
/// A line reads `sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid
/// timeout inode ...`, e.g.
///
///     0: 0100007F:1F6A 0100007F:9C40 08 00000000:00000000 00:00000000 00000000  1000  0 123456 ...
///
/// Addresses are the kernel's in-memory network-order bytes printed as native 32-bit words
/// (`%08X`), so on a little-endian machine each word's bytes come out reversed:
/// `0100007F` is 127.0.0.1, and IPv6 `::1` is `00000000000000000000000001000000`. Ports are
/// already converted to host order (`%04X`). IPv4-mapped IPv6 addresses (a dual-stack socket
/// talking IPv4) are returned as IPv4, the way the packets on the wire show them.
public enum ProcNetTCP {
    /// The byte order of the machine that wrote the table.
    public enum WordOrder: Sendable {
        case littleEndian, bigEndian
        public static var host: WordOrder { 1.littleEndian == 1 ? .littleEndian : .bigEndian }
    }

    /// Every socket in `/proc/net/tcp` and `/proc/net/tcp6` (a missing file counts as empty).
    /// The files are read in chunks and parsed line by line, whatever their size (100,000
    /// sockets make about 15 MB of text).
    public static func read(procRoot: String = "/proc") -> [TCPSocketEntry] {
        var entries: [TCPSocketEntry] = []
        for name in ["tcp", "tcp6"] {
            forEachLine(of: "\(procRoot)/net/\(name)") { line in
                if let entry = parse(line: line) { entries.append(entry) }
            }
        }
        return entries
    }

    /// The socket lines of a whole table (its header line is skipped).
    public static func parse(_ text: String, order: WordOrder = .host) -> [TCPSocketEntry] {
        text.split(separator: "\n").compactMap { parse(line: $0, order: order) }
    }

    /// One socket line; nil for the header or a line that does not parse.
    public static func parse<Line: StringProtocol>(line: Line, order: WordOrder = .host) -> TCPSocketEntry? {
        let fields = line.split(separator: " ", omittingEmptySubsequences: true)
        guard fields.count >= 10, fields[0].hasSuffix(":"),
              let local = endpoint(fields[1], order: order),
              let remote = endpoint(fields[2], order: order),
              let state = UInt8(fields[3], radix: 16),
              let uid = UInt32(fields[7]),
              let inode = UInt64(fields[9]) else { return nil }
        return TCPSocketEntry(local: local, remote: remote, state: state, uid: uid, inode: inode)
    }

    /// `0100007F:1F6A` → 127.0.0.1:8042.
    static func endpoint<Text: StringProtocol>(_ text: Text, order: WordOrder) -> EndpointAddress? {
        let parts = text.split(separator: ":")
        guard parts.count == 2, let port = UInt16(parts[1], radix: 16) else { return nil }
        let hex = parts[0]
        guard hex.count == 8 || hex.count == 32 else { return nil }
        var words: [UInt32] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 8)
            guard let word = UInt32(hex[index..<next], radix: 16) else { return nil }
            // The word's bytes, lowest address first, are the address in network order.
            words.append(order == .littleEndian ? word.byteSwapped : word)
            index = next
        }
        let ip: IPAddress
        if words.count == 1 {
            ip = IPAddress(ipv4: words[0])
        } else {
            let high = UInt64(words[0]) << 32 | UInt64(words[1])
            let low = UInt64(words[2]) << 32 | UInt64(words[3])
            ip = high == 0 && low >> 32 == 0xffff
                ? IPAddress(ipv4: UInt32(truncatingIfNeeded: low))
                : IPAddress(ipv6High: high, low: low)
        }
        return EndpointAddress(ip: ip, port: port)
    }
}
