import FinscopeFlows
import FinscopeTestSupport
import FinscopeWire
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The kernel's view in the reports (SPEC §7), with real sockets and namespaces: sockets
/// stuck before the capture started, kernel confirmation of findings, owners that outlive
/// their process, and the offline hints. Root only (CI runs as root).
@Suite("the host's view in live and --proc reports", .serialized)
struct HostViewLiveTests {
    static let ready = mayCapture && HostTools.isRoot() && HostTools.find("ss") != nil && HostTools.find("python3") != nil
    static let readyWithIP = ready && HostTools.find("ip") != nil

    static func lines(_ text: String) throws -> [[String: Any]] {
        try text.split(separator: "\n").map { try jsonObject(String($0)) }
    }

    static func endpoint(_ object: Any?) -> EndpointAddress? {
        guard let object = object as? [String: Any], let ip = (object["ip"] as? String).flatMap(IPAddress.init),
              let port = object["port"] as? Int else { return nil }
        return EndpointAddress(ip: ip, port: UInt16(port))
    }

    static func monotonic() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }

    @Test("a leak made before finscope starts: the first report lists exactly the sockets ss shows, with this process and atLeastSeconds",
          .enabled(if: ready, "needs root, ss and python3"), .timeLimit(.minutes(1)))
    func leakBeforeStart() throws {
        let server = try LoopbackServer()
        defer { server.close() }
        var clients: [Int32] = []
        defer { clients.forEach { _ = close($0) } }
        let made = Self.monotonic()
        for _ in 0..<4 { clients.append(try server.exchange().fd) }
        usleep(1_200_000)
        let run = try FinscopeRun(["live", "--interface", "lo", "--filter", "tcp port \(server.port)",
                                   "--report-every", "0", "--duration", "1.5", "--ndjson"])
        #expect(try run.finish(seconds: 15) == 0, "stderr: \(run.stderr)")
        let elapsed = Self.monotonic() - made
        let ss = try HostTools.ssCloseWait(remotePort: server.port)
        #expect(ss.count == 4)

        let lines = try Self.lines(run.stdout)
        // The first lines are the start report's kernel sockets, before any flow or the summary.
        let first = lines.prefix { $0["type"] as? String == "kernelSocket" }.compactMap { $0["socket"] as? [String: Any] }
        #expect(Set(first.compactMap { socket in Self.endpoint(socket["local"]).flatMap { l in Self.endpoint(socket["remote"]).map { [l, $0] } } }) == ss)
        for socket in first {
            #expect(socket["state"] as? String == "CLOSE_WAIT")
            let process = socket["process"] as? [String: Any]
            #expect(process?["pid"] as? Int == Int(getpid()))
            #expect(process?["exited"] as? Bool == false)
            let atLeast = try #require(socket["atLeastSeconds"] as? Double)
            #expect(atLeast >= 1.0 && atLeast <= elapsed + 0.05, "atLeastSeconds \(atLeast), elapsed \(elapsed)")
            #expect(socket["netns"] as? Int == HostTools.namespaceInode("/proc/self/ns/net").map(Int.init))
            #expect(socket["role"] as? String == "client")
        }
        // The summary's group holds them: kernel sockets only, the client's group to the service.
        let summary = try #require(lines.last)
        #expect(summary["type"] as? String == "summary")
        let groups = try #require(summary["groups"] as? [[String: Any]])
        #expect(groups.count == 1)
        #expect(groups.first?["kernelSockets"] as? Int == 4)
        #expect(groups.first?["flows"] as? Int == 0)
        #expect(Self.endpoint(groups.first?["service"]) == EndpointAddress(ip: IPAddress("127.0.0.1")!, port: server.port))
        // The text start report on stderr.
        #expect(run.stderr.contains("at the start"))
        #expect(run.stderr.contains("4 sockets already in CLOSE_WAIT"))
        #expect(run.stderr.contains("4 sockets stuck before the capture started (kernel), at least"))
        #expect(run.stderr.contains("(pid \(getpid())) holds 4 sockets in CLOSE_WAIT to 127.0.0.1:\(server.port)"))
    }

    @Test("the same leak inside a namespace made here, reached over a veth and captured on the host's end: owner and netns named",
          .enabled(if: readyWithIP, "needs root, ip, ss and python3"), .timeLimit(.minutes(1)))
    func leakInNamespaceOverVeth() throws {
        let namespace = try TestNamespace()
        defer { namespace.remove() }
        let ip = namespace.ip
        let suffix = UInt32.random(in: 0..<0xffff)
        let hostEnd = "fsh\(suffix)", nsEnd = "fsn\(suffix)"
        let third = Int(suffix % 200) + 20
        let hostAddress = "10.213.\(third).1", nsAddress = "10.213.\(third).2"
        for arguments in [["link", "add", hostEnd, "type", "veth", "peer", "name", nsEnd],
                          ["link", "set", nsEnd, "netns", namespace.name],
                          ["addr", "add", "\(hostAddress)/30", "dev", hostEnd],
                          ["link", "set", hostEnd, "up"],
                          ["-n", namespace.name, "addr", "add", "\(nsAddress)/30", "dev", nsEnd],
                          ["-n", namespace.name, "link", "set", nsEnd, "up"]] {
            let result = try HostTools.run(ip, arguments)
            #expect(result.status == 0, "ip \(arguments.joined(separator: " ")): \(result.stderr)")
        }
        defer { _ = try? HostTools.run(ip, ["link", "del", hostEnd]) }
        // A server on the host's end that closes each connection after its answer, and a
        // client in the namespace that reads to EOF and never closes.
        let server = try PythonProcess(script: """
            import socket, sys
            s = socket.socket(); s.bind((sys.argv[1], 0)); s.listen(16)
            print(s.getsockname()[1], flush=True)
            while True:
                a, _ = s.accept(); a.sendall(b"hi"); a.shutdown(socket.SHUT_RDWR); a.close()
            """, arguments: [hostAddress])
        defer { server.stop() }
        let port = try #require(UInt16(server.firstLine))
        let client = try PythonProcess(script: """
            import os, socket, sys
            cs = []
            for _ in range(3):
                c = socket.create_connection((sys.argv[1], int(sys.argv[2])))
                while c.recv(16): pass
                cs.append(c)
            print(os.getpid(), flush=True)
            sys.stdin.read()
            """, arguments: [hostAddress, String(port)], namespace: namespace.name)
        defer { client.stop() }
        let clientPID = try #require(Int(client.firstLine))
        let inode = try #require(HostTools.namespaceInode(namespace.path))
        let ss = try HostTools.ssCloseWait(remotePort: port, namespace: namespace.name)
        #expect(ss.count == 3)

        let run = try FinscopeRun(["live", "--interface", hostEnd, "--filter", "tcp port \(port)",
                                   "--report-every", "0", "--duration", "1", "--json"])
        #expect(try run.finish(seconds: 15) == 0, "stderr: \(run.stderr)")
        let report = try jsonObject(run.stdout)
        let sockets = try #require(report["kernelSockets"] as? [[String: Any]])
        #expect(Set(sockets.compactMap { s in Self.endpoint(s["local"]).flatMap { l in Self.endpoint(s["remote"]).map { [l, $0] } } }) == ss)
        for socket in sockets {
            #expect(socket["netns"] as? Int == Int(inode))
            let process = socket["process"] as? [String: Any]
            #expect(process?["pid"] as? Int == clientPID)
            #expect(process?["netns"] as? Int == Int(inode))
            #expect((process?["command"] as? String)?.contains("python") == true)
            #expect(socket["role"] as? String == "client")
        }
        #expect(run.stderr.contains("netns \(inode)"))
    }

    @Test("analyze --proc on a capture stopped before the threshold: every socket still stuck is a close-wait finding with kernel",
          .enabled(if: ready, "needs root, ss and python3"), .timeLimit(.minutes(1)))
    func procConfirmsBelowThreshold() throws {
        let directory = try TemporaryDirectory(prefix: "finscope-proc")
        let file = directory.url(for: "early.pcap").path
        let server = try LoopbackServer()
        defer { server.close() }
        let run = try FinscopeRun(["live", "--interface", "lo", "--filter", "tcp port \(server.port)",
                                   "--report-every", "0", "--write", file])
        try run.waitUntilCapturing()
        var clients: [Int32] = []
        defer { clients.forEach { _ = close($0) } }
        for _ in 0..<3 { clients.append(try server.exchange().fd) }
        usleep(300_000)
        #expect(try run.finish(signal: SIGINT) == 0, "stderr: \(run.stderr)")

        // Offline, without the host: below the threshold, and the text says so.
        let plain = try finscope(["analyze", file])
        #expect(plain.status == 0)
        #expect(!plain.stdout.contains("No endpoint"))
        #expect(plain.stdout.contains("3 endpoints were in CLOSE_WAIT when the capture ended for less than the threshold"))
        #expect(plain.stdout.contains("--close-wait-threshold"))

        usleep(5_300_000)  // past the 5 s threshold since the FINs, the sockets still stuck
        let ss = try HostTools.ssCloseWait(remotePort: server.port)
        #expect(ss.count == 3)
        let proc = try finscope(["analyze", "--proc", "--json", file])
        #expect(proc.status == 0, "stderr: \(proc.stderr)")
        let report = try jsonObject(proc.stdout)
        var confirmed: Set<[EndpointAddress]> = []
        for flow in report["flows"] as? [[String: Any]] ?? [] {
            for finding in flow["findings"] as? [[String: Any]] ?? [] where finding["kind"] as? String == "close-wait" {
                let kernel = try #require(finding["kernel"] as? [String: Any])
                #expect(kernel["state"] as? String == "CLOSE_WAIT")
                let checkedAt = try #require(kernel["checkedAt"] as? Double)
                let since = try #require(finding["since"] as? Double), seconds = try #require(finding["seconds"] as? Double)
                #expect(abs(since + seconds - checkedAt) < 0.001)
                #expect(seconds >= 5)
                #expect((finding["process"] as? [String: Any])?["pid"] as? Int == Int(getpid()))
                if let client = Self.endpoint(flow["client"]), let server = Self.endpoint(flow["server"]) {
                    confirmed.insert([client, server])
                }
            }
        }
        #expect(confirmed == ss)
        let summary = try #require(report["summary"] as? [String: Any])
        #expect((summary["findings"] as? [String: Int])?["close-wait"] == 3)
        #expect((report["kernelSockets"] as? [Any])?.isEmpty == true || (report["kernelSockets"] as? [[String: Any]])?
            .allSatisfy { Self.endpoint($0["remote"])?.port != server.port } == true)
    }

    @Test("a leaking process that exits during finscope live is still named at the end, exited",
          .enabled(if: ready, "needs root, ss and python3"), .timeLimit(.minutes(1)))
    func ownerExitsDuringCapture() throws {
        let run = try FinscopeRun(["live", "--interface", "lo", "--filter", "tcp", "--close-wait-threshold", "1",
                                   "--report-every", "1", "--json"])
        try run.waitUntilCapturing()
        let holder = try CloseWaitHolder(count: 2)
        // Reports sample the owner while it lives: wait for one that names it.
        let named = Date().addingTimeInterval(10)
        while !run.stderr.contains("(pid \(holder.pid)) holds 2 sockets in CLOSE_WAIT"), Date() < named { usleep(100_000) }
        holder.stop()      // it exits: the kernel closes its sockets
        usleep(1_300_000)
        #expect(try run.finish(signal: SIGTERM) == 0, "stderr: \(run.stderr)")
        let report = try jsonObject(run.stdout)
        var namedCount = 0
        for flow in report["flows"] as? [[String: Any]] ?? [] {
            guard Self.endpoint(flow["server"])?.port == holder.port else { continue }
            for finding in flow["findings"] as? [[String: Any]] ?? [] where finding["endpoint"] as? String == "client" {
                let process = try #require(finding["process"] as? [String: Any], "finding \(finding)")
                #expect(process["pid"] as? Int == Int(holder.pid))
                #expect(process["exited"] as? Bool == true)
                namedCount += 1
            }
        }
        #expect(namedCount == 2)
        #expect(run.stderr.contains("(pid \(holder.pid)) holds 2 sockets in CLOSE_WAIT"))
    }

    @Test("as nobody: --proc says what it could not see, and nothing crashes",
          .enabled(if: readyWithIP && HostTools.find("runuser") != nil, "needs root, runuser, ip, ss and python3"),
          .timeLimit(.minutes(1)))
    func withoutPermission() throws {
        let namespace = try TestNamespace()
        defer { namespace.remove() }
        let holder = try CloseWaitHolder(count: 2, namespace: namespace.name)
        defer { holder.stop() }
        var template = Array("/tmp/finscope-nobody-XXXXXX".utf8CString)
        let directory = try #require(template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }.map { String(cString: $0) })
        defer { _ = try? FileManager.default.removeItem(atPath: directory) }
        chmod(directory, 0o755)
        let copy = directory + "/finscope"
        try FileManager.default.copyItem(atPath: finscopeBinary, toPath: copy)
        chmod(copy, 0o755)
        let file = directory + "/lo.pcap"
        let server = try LoopbackServer()
        defer { server.close() }
        let capture = try FinscopeRun(["live", "--interface", "lo", "--filter", "tcp port \(server.port)",
                                       "--report-every", "0", "--write", file])
        try capture.waitUntilCapturing()
        var clients: [Int32] = []
        defer { clients.forEach { _ = close($0) } }
        for _ in 0..<2 { clients.append(try server.exchange().fd) }
        usleep(200_000)
        #expect(try capture.finish(signal: SIGINT) == 0)
        chmod(file, 0o644)

        let run = try HostTools.run(HostTools.find("runuser")!, ["-u", "nobody", "--", copy, "analyze", "--proc",
                                                                  "--close-wait-threshold", "0", file])
        #expect(run.status == 0, "stderr: \(run.stderr)")
        #expect(run.stdout.contains("Host view"))
        #expect(run.stdout.contains("not entered (permission denied)"))
        #expect(run.stdout.contains("no owner for 2 close-wait findings: its process could not be read"))
        #expect(!run.stderr.contains("Fatal error"))
        let json = try HostTools.run(HostTools.find("runuser")!, ["-u", "nobody", "--", copy, "analyze", "--proc", "--json",
                                                                   "--close-wait-threshold", "0", file])
        let report = try jsonObject(json.stdout)
        let host = try #require(report["host"] as? [String: Any])
        #expect((host["unseen"] as? [String])?.contains { $0.contains("not entered") } == true)
        #expect(json.stderr.contains("finscope: note:"))
    }

    @Test("live --write x.pcapng: an interface statistics block with isb_endtime; analyze hints at it and --to-capture-stop reproduces the live durations",
          .enabled(if: ready, "needs root, ss and python3"), .timeLimit(.minutes(1)))
    func pcapngStopTime() throws {
        let directory = try TemporaryDirectory(prefix: "finscope-isb")
        let file = directory.url(for: "live.pcapng").path
        let server = try LoopbackServer()
        defer { server.close() }
        let run = try FinscopeRun(["live", "--interface", "lo", "--filter", "tcp port \(server.port)", "--close-wait-threshold", "0.5",
                                   "--report-every", "0", "--write", file, "--json", "--no-proc"])
        try run.waitUntilCapturing()
        var clients: [Int32] = []
        defer { clients.forEach { _ = close($0) } }
        for _ in 0..<2 { clients.append(try server.exchange().fd) }
        usleep(1_500_000)
        #expect(try run.finish(signal: SIGTERM) == 0, "stderr: \(run.stderr)")
        let live = try jsonObject(run.stdout)

        // The file: SHB, IDB, EPBs, then an ISB whose isb_endtime is the live stop, after the last frame.
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: file)))
        func u32(_ at: Int) -> UInt32 { (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[at + $1]) << (8 * UInt32($1)) } }
        var offset = 0, lastPacket: UInt64 = 0, endTime: UInt64?
        while offset + 12 <= bytes.count {
            let type = u32(offset), length = Int(u32(offset + 4))
            #expect(length >= 12 && length % 4 == 0)
            if type == 6 { lastPacket = UInt64(u32(offset + 12)) << 32 | UInt64(u32(offset + 16)) }
            if type == 5 {
                var option = offset + 20
                while option + 4 <= offset + length - 4 {
                    let code = Int(u32(option) & 0xffff), size = Int(u32(option) >> 16)
                    if code == 0 { break }
                    if code == 3 { endTime = UInt64(u32(option + 4)) << 32 | UInt64(u32(option + 8)) }
                    option += 4 + (size + 3) / 4 * 4
                }
            }
            offset += length
        }
        #expect(offset == bytes.count)
        let end = try #require(endTime)
        #expect(end > lastPacket)
        let liveEnd = try #require((live["source"] as? [String: Any])?["end"] as? Double)
        #expect(abs(Double(end) / 1e9 - liveEnd) < 1e-6)

        let text = try finscope(["analyze", "--close-wait-threshold", "0.5", file])
        #expect(text.stdout.contains("The capture tool recorded its stop at"))
        #expect(text.stdout.contains("after the last frame (pcapng isb_endtime)"))
        let again = try jsonObject(try finscope(["analyze", "--json", "--to-capture-stop", "--close-wait-threshold", "0.5", file]).stdout)
        func durations(_ report: [String: Any]) -> [String] {
            (report["flows"] as? [[String: Any]] ?? []).flatMap { flow in
                (flow["findings"] as? [[String: Any]] ?? []).map { "\(flow["id"]!) \($0["kind"]!) \(String(format: "%.6f", $0["seconds"] as? Double ?? -1))" }
            }.sorted()
        }
        #expect(durations(live).count == 2)
        #expect(durations(again) == durations(live))
        #expect((again["source"] as? [String: Any])?["end"] as? Double != liveEnd, "the capture's end stays the last frame")
    }
}

/// A python3 script run as a child (in a namespace when given), its first output line read.
final class PythonProcess {
    let process = Process()
    let input = Pipe()
    let firstLine: String

    init(script: String, arguments: [String], namespace: String? = nil) throws {
        guard let python = HostTools.find("python3") else { throw HostTools.Missing(tool: "python3") }
        if let namespace, let ip = HostTools.find("ip") {
            process.executableURL = URL(fileURLWithPath: ip)
            process.arguments = ["netns", "exec", namespace, python, "-c", script] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: python)
            process.arguments = ["-c", script] + arguments
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
        firstLine = String(decoding: line, as: UTF8.self)
    }

    func stop() {
        try? input.fileHandleForWriting.close()
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }
}
