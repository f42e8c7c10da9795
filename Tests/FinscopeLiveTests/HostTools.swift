import FinscopeFlows
import FinscopeWire
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Running the host's own tools (ss, ip, python3, runuser) from tests.
enum HostTools {
    struct Output {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static func isRoot() -> Bool { geteuid() == 0 }

    /// The first of `candidates` that exists and is executable.
    static func find(_ names: String...) -> String? {
        for name in names {
            for folder in ["/usr/sbin", "/usr/bin", "/sbin", "/bin"] {
                let path = "\(folder)/\(name)"
                if access(path, X_OK) == 0 { return path }
            }
        }
        return nil
    }

    @discardableResult
    static func run(_ executable: String, _ arguments: [String]) throws -> Output {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        // Read both pipes while the process runs (large outputs would block it otherwise).
        final class Box: @unchecked Sendable { var data = Data() }
        let errBox = Box()
        let group = DispatchGroup()
        group.enter()
        let errHandle = err.fileHandleForReading
        DispatchQueue.global().async {
            errBox.data = errHandle.readDataToEndOfFile()
            group.leave()
        }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        let errData = errBox.data
        process.waitUntilExit()
        return Output(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                      stderr: String(decoding: errData, as: UTF8.self))
    }

    /// `ss`'s endpoints for the TCP sockets in CLOSE_WAIT to `port` (optionally inside a
    /// named namespace): `ss -tanH state close-wait` lines are `Recv-Q Send-Q local peer`.
    static func ssCloseWait(remotePort port: UInt16, namespace: String? = nil) throws -> Set<[EndpointAddress]> {
        guard let ss = find("ss") else { throw Missing(tool: "ss") }
        var arguments = ["-tanH"]
        if let namespace { arguments = ["-N", namespace] + arguments }
        arguments += ["state", "close-wait", "dport", "=", ":\(port)"]
        let output = try run(ss, arguments)
        guard output.status == 0 else { throw Missing(tool: "ss (\(output.stderr))") }
        var result: Set<[EndpointAddress]> = []
        for line in output.stdout.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 4, let local = endpoint(fields[2]), let remote = endpoint(fields[3]) else { continue }
            result.insert([local, remote])
        }
        return result
    }

    /// `ss -tinH state close-wait dport = :PORT`: local endpoint → min(lastrcv, lastack) in ms
    /// (ss omits a zero value; a missing one counts as 0).
    static func ssLastReceived(remotePort port: UInt16) throws -> [EndpointAddress: UInt32] {
        guard let ss = find("ss") else { throw Missing(tool: "ss") }
        let output = try run(ss, ["-tinH", "state", "close-wait", "dport", "=", ":\(port)"])
        var result: [EndpointAddress: UInt32] = [:]
        var current: EndpointAddress?
        for line in output.stdout.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if !line.hasPrefix("\t") && !line.hasPrefix(" "), fields.count >= 4 {
                current = endpoint(fields[2])
                continue
            }
            guard let local = current else { continue }
            func value(_ name: String) -> UInt32 {
                fields.first { $0.hasPrefix(name + ":") }.flatMap { UInt32($0.dropFirst(name.count + 1)) } ?? 0
            }
            result[local] = min(value("lastrcv"), value("lastack"))
        }
        return result
    }

    /// `127.0.0.1:8282`, `[::1]:8282`, `[::ffff:127.0.0.1]:8282` (as IPv4).
    static func endpoint<Text: StringProtocol>(_ text: Text) -> EndpointAddress? {
        guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]) else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("[") { host = String(host.dropFirst().dropLast()) }
        if host.hasPrefix("::ffff:"), host.contains(".") { host = String(host.dropFirst(7)) }
        guard let ip = IPAddress(host) else { return nil }
        return EndpointAddress(ip: ip, port: port)
    }

    static func namespaceInode(_ path: String) -> UInt64? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return UInt64(info.st_ino)
    }

    struct Missing: Error, CustomStringConvertible {
        var tool: String
        var description: String { "\(tool) not available" }
    }
}

/// A python3 process holding `count` client sockets in CLOSE_WAIT: it runs a server on
/// 127.0.0.1 that accepts each connection, sends two bytes, shuts it down and closes it; the
/// client reads to EOF and never closes. It prints "PID PORT" and lives until its stdin closes.
final class CloseWaitHolder {
    let process = Process()
    let input = Pipe()
    let pid: Int32
    let port: UInt16

    static let script = """
        import os, socket, sys
        n = int(sys.argv[1])
        server = socket.socket(); server.bind(("127.0.0.1", 0)); server.listen(128)
        port = server.getsockname()[1]
        clients = []
        for _ in range(n):
            c = socket.create_connection(("127.0.0.1", port))
            a, _ = server.accept()
            a.sendall(b"hi"); a.shutdown(socket.SHUT_RDWR); a.close()
            while c.recv(16): pass
            clients.append(c)
        print(os.getpid(), port, flush=True)
        sys.stdin.read()
        """

    /// Starts the holder, inside network namespace `namespace` when given (`ip netns exec`).
    init(count: Int, namespace: String? = nil) throws {
        guard let python = HostTools.find("python3") else { throw HostTools.Missing(tool: "python3") }
        if let namespace {
            guard let ip = HostTools.find("ip") else { throw HostTools.Missing(tool: "ip") }
            process.executableURL = URL(fileURLWithPath: ip)
            process.arguments = ["netns", "exec", namespace, python, "-c", Self.script, String(count)]
        } else {
            process.executableURL = URL(fileURLWithPath: python)
            process.arguments = ["-c", Self.script, String(count)]
        }
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        var line = Data()
        while true {
            let byte = output.fileHandleForReading.readData(ofLength: 1)
            if byte.isEmpty || byte == Data([10]) { break }
            line += byte
        }
        let fields = String(decoding: line, as: UTF8.self).split(separator: " ")
        guard fields.count == 2, let pid = Int32(fields[0]), let port = UInt16(fields[1]) else {
            process.terminate()
            throw HostTools.Missing(tool: "the python3 CLOSE_WAIT holder (printed '\(String(decoding: line, as: UTF8.self))')")
        }
        self.pid = pid
        self.port = port
    }

    /// Closes its stdin: the process exits and its sockets close.
    func stop() {
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
    }
}

/// A network namespace made for one test (`ip netns add fstest-…`), loopback up; deleted by `remove`.
final class TestNamespace {
    let name: String
    let ip: String

    init() throws {
        guard let ip = HostTools.find("ip") else { throw HostTools.Missing(tool: "ip") }
        self.ip = ip
        name = "fstest-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let added = try HostTools.run(ip, ["netns", "add", name])
        guard added.status == 0 else { throw HostTools.Missing(tool: "ip netns add (\(added.stderr))") }
        let up = try HostTools.run(ip, ["-n", name, "link", "set", "lo", "up"])
        guard up.status == 0 else {
            remove()
            throw HostTools.Missing(tool: "ip link set lo up (\(up.stderr))")
        }
    }

    var path: String { "/run/netns/\(name)" }

    func remove() {
        _ = try? HostTools.run(ip, ["netns", "del", name])
    }
}
