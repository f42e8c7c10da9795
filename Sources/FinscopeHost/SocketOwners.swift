import FinscopeFlows
import FinscopeWire

#if canImport(Glibc)
import Glibc
#endif

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

    /// The first `count` bytes of `link` as `socket:[123456]` → 123456.
    static func socketInode(bytes link: [UInt8], count: Int) -> UInt64? {
        // "socket:[" is 8 bytes, then at least one digit, then "]".
        guard count >= 10, count <= link.count, link[count - 1] == 93,
              link[0] == 115, link[1] == 111, link[2] == 99, link[3] == 107, link[4] == 101,
              link[5] == 116, link[6] == 58, link[7] == 91 else { return nil }
        var value: UInt64 = 0
        for byte in link[8..<(count - 1)] {
            guard (48...57).contains(byte) else { return nil }
            let (times, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times.addingReportingOverflow(UInt64(byte - 48))
            guard !overflow1, !overflow2 else { return nil }
            value = sum
        }
        return value
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

extension SocketOwners {
    /// The holder of each of `inodes`, with its container and start time, found in one pass
    /// over /proc/*/fd (the lowest pid when several processes share a socket), and how many
    /// processes' fd directories could not be read (permission denied).
    public static func kernelOwners(of inodes: Set<UInt64>, procRoot: String = "/proc")
        -> (owners: [UInt64: SocketOwner], unreadable: Int) {
        guard !inodes.isEmpty else { return ([:], 0) }
        var found: [UInt64: SocketOwner] = [:]
        var unreadable = 0
        for pid in directoryEntries(procRoot).compactMap({ Int32($0) }).sorted() {
            let fdDirectory = "\(procRoot)/\(pid)/fd"
            let dirFD = open(fdDirectory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            guard dirFD >= 0 else {
                if errno == EACCES || errno == EPERM { unreadable += 1 }
                continue
            }
            guard let dir = fdopendir(dirFD) else { close(dirFD); continue }
            var owner: SocketOwner?
            // readlinkat on the directory: no path strings per descriptor (a process may hold
            // 100,000 of them), and `socket:[N]` parsed from the bytes.
            var link = [UInt8](repeating: 0, count: 64)
            while let entry = readdir(dir) {
                let count = withUnsafePointer(to: entry.pointee.d_name) { name in
                    name.withMemoryRebound(to: CChar.self, capacity: 256) { name in
                        link.withUnsafeMutableBytes { readlinkat(dirFD, name, $0.baseAddress!.assumingMemoryBound(to: CChar.self), $0.count) }
                    }
                }
                guard count > 0, let inode = socketInode(bytes: link, count: count),
                      inodes.contains(inode), found[inode] == nil else { continue }
                if owner == nil {
                    let container = readTextFile("\(procRoot)/\(pid)/cgroup").flatMap { ContainerIdentity.parse(cgroupFile: $0) }
                    owner = SocketOwner(pid: pid, command: commandLine(pid: pid, procRoot: procRoot),
                                        containerID: container?.id, pod: container?.pod,
                                        startTime: ProcessStart.read(pid: pid, procRoot: procRoot)?.startTime)
                }
                found[inode] = owner
            }
            closedir(dir)
            if found.count == inodes.count { break }
        }
        return (found, unreadable)
    }
}

/// A process's identity over time: /proc/PID/stat's start time (field 22) and state.
public struct ProcessStart: Sendable, Equatable {
    public var startTime: UInt64
    /// The one-letter state (R, S, D, Z, …).
    public var state: Character

    /// Reads /proc/PID/stat; nil when the process is gone.
    public static func read(pid: Int32, procRoot: String = "/proc") -> ProcessStart? {
        readTextFile("\(procRoot)/\(pid)/stat").flatMap(parse(stat:))
    }

    /// `4242 (some (odd) name) S 1 … starttime …`: the command may hold spaces and
    /// parentheses, so fields are counted after the last ')'.
    public static func parse(stat text: String) -> ProcessStart? {
        guard let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ", omittingEmptySubsequences: true)
        // After the command: field 3 (state) is fields[0], so field 22 is fields[19].
        guard fields.count >= 20, let state = fields[0].first, fields[0].count == 1,
              let start = UInt64(fields[19]) else { return nil }
        return ProcessStart(startTime: start, state: state)
    }
}
