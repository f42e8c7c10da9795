import FinscopeFlows
import FinscopeWire

/// A line of the helper's answer that does not parse, or the helper's own failure.
public struct KernelScanDecodingError: Error, Equatable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// Line-oriented text for the privileged helper's `kernel-scan` answer (see
/// `AttributionHelper`), one record a line, fields separated by one space, `-` for none:
///
///     t 1764590000.123456                                  checkedAt
///     ns 4026531840                                        a namespace read
///     s 4026531840 CLOSE_WAIT 127.0.0.1 40000 127.0.0.1 8282 123456 0 1500
///       (netns, state, local ip, port, remote ip, port, inode, uid, lastReceived ms)
///     o 123456 4242 98765 - - java -jar app.jar            inode, pid, start time,
///                                                          container id, pod, command (rest)
///     n 3 network namespaces not entered (permission denied): …
///     e no socket table could be read: …                   the scan failed
extension KernelScan {
    public func encoded() -> String {
        var out = "t \(checkedAt)\n"
        for inode in namespaces { out += "ns \(inode)\n" }
        for socket in sockets {
            out += "s \(socket.netns.map(String.init) ?? "-") \(socket.state) \(socket.local.ip) \(socket.local.port) "
                + "\(socket.remote.ip) \(socket.remote.port) \(socket.inode) \(socket.uid) "
                + "\(socket.lastReceivedMilliseconds.map(String.init) ?? "-")\n"
        }
        for (inode, owner) in owners.sorted(by: { $0.key < $1.key }) {
            out += "o \(inode) \(owner.pid) \(owner.startTime.map(String.init) ?? "-") \(owner.containerID ?? "-") "
                + "\(owner.pod ?? "-") \(oneLine(owner.command))\n"
        }
        for line in unseen { out += "n \(oneLine(line))\n" }
        return out
    }

    public static func decode<Lines: Sequence>(lines: Lines) throws -> KernelScan where Lines.Element: StringProtocol {
        var scan = KernelScan()
        for line in lines {
            let bad = KernelScanDecodingError(message: "bad kernel-scan line: \(line.prefix(200))")
            guard let space = line.firstIndex(of: " ") else { throw bad }
            let tag = line[..<space], rest = line[line.index(after: space)...]
            switch tag {
            case "t":
                guard let value = Double(String(rest)) else { throw bad }
                scan.checkedAt = value
            case "ns":
                guard let inode = UInt64(rest) else { throw bad }
                scan.namespaces.append(inode)
            case "s":
                let f = rest.split(separator: " ", omittingEmptySubsequences: false)
                guard f.count == 9, let state = KernelTCPState(name: String(f[1])),
                      let localIP = IPAddress(String(f[2])), let localPort = UInt16(f[3]),
                      let remoteIP = IPAddress(String(f[4])), let remotePort = UInt16(f[5]),
                      let inode = UInt64(f[6]), let uid = UInt32(f[7]) else { throw bad }
                let netns = f[0] == "-" ? nil : UInt64(f[0])
                let last = f[8] == "-" ? nil : UInt32(f[8])
                guard (netns != nil) == (f[0] != "-"), (last != nil) == (f[8] != "-") else { throw bad }
                scan.sockets.append(KernelSocket(
                    local: EndpointAddress(ip: localIP, port: localPort),
                    remote: EndpointAddress(ip: remoteIP, port: remotePort),
                    state: state, inode: inode, uid: uid, lastReceivedMilliseconds: last, netns: netns))
            case "o":
                let f = rest.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: false)
                guard f.count == 6, let inode = UInt64(f[0]), let pid = Int32(f[1]) else { throw bad }
                let start = f[2] == "-" ? nil : UInt64(f[2])
                guard (start != nil) == (f[2] != "-") else { throw bad }
                scan.owners[inode] = SocketOwner(pid: pid, command: String(f[5]),
                                                 containerID: f[3] == "-" ? nil : String(f[3]),
                                                 pod: f[4] == "-" ? nil : String(f[4]), startTime: start)
            case "n":
                scan.unseen.append(String(rest))
            case "e":
                throw KernelScanDecodingError(message: String(rest))
            default:
                throw bad
            }
        }
        return scan
    }
}

func oneLine(_ text: String) -> String {
    String(text.map { $0.isNewline ? " " : $0 })
}
