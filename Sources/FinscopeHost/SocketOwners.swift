import FinscopeFlows
import FinscopeWire

/// Which process holds a socket, found through `/proc/PID/fd/*` → `socket:[inode]`.
///
/// Reading another user's `/proc/PID/fd` needs root (or CAP_SYS_PTRACE); without it those
/// processes are silently skipped and their sockets stay unattributed.
public enum SocketOwners {
    /// The process holding each of `inodes` (the lowest pid when several share a socket,
    /// e.g. after fork). Stops scanning once every inode is found.
    public static func owners(of inodes: Set<UInt64>, procRoot: String = "/proc") -> [UInt64: OwningProcess] {
        guard !inodes.isEmpty else { return [:] }
        var found: [UInt64: OwningProcess] = [:]
        let pids = directoryEntries(procRoot).compactMap { Int32($0) }.sorted()
        for pid in pids {
            let fdDirectory = "\(procRoot)/\(pid)/fd"
            var command: String?
            for fd in directoryEntries(fdDirectory) {
                guard let target = readLink("\(fdDirectory)/\(fd)"),
                      let inode = socketInode(target), inodes.contains(inode), found[inode] == nil else { continue }
                if command == nil { command = commandLine(pid: pid, procRoot: procRoot) }
                found[inode] = OwningProcess(pid: pid, command: command!)
            }
            if found.count == inodes.count { break }
        }
        return found
    }

    /// `socket:[123456]` → 123456.
    public static func socketInode<Text: StringProtocol>(_ link: Text) -> UInt64? {
        guard link.hasPrefix("socket:["), link.hasSuffix("]") else { return nil }
        return UInt64(link.dropFirst(8).dropLast())
    }

    /// The command line with its arguments separated by spaces ("java -jar app.jar"), or
    /// "[comm]" for a process without one (a kernel thread, a zombie).
    public static func commandLine(pid: Int32, procRoot: String = "/proc") -> String {
        if let bytes = readBytes("\(procRoot)/\(pid)/cmdline", limit: 4_096), !bytes.isEmpty {
            let arguments = bytes.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            let text = arguments.joined(separator: " ")
            return String(text.map { $0.isNewline ? " " : $0 })
        }
        let comm = readTextFile("\(procRoot)/\(pid)/comm")?.split(separator: "\n").first.map(String.init) ?? "?"
        return "[\(comm)]"
    }
}
