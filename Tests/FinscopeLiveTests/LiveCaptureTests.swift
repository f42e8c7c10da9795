import FinscopeWire
import FinscopeFindings
import FinscopeAnalysis
import FinscopeCapture
import FinscopeTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Whether this test process may open a live capture (CI runs as root).
let mayCapture = LiveSource.canCapture(on: "lo")

/// The built executable, beside the test bundle in the build products folder.
let finscopeBinary: String = {
    var folder = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for _ in 0..<4 {
        let candidate = folder.appendingPathComponent("finscope")
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate.path }
        folder = folder.deletingLastPathComponent()
    }
    return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent(".build/debug/finscope").path
}()

/// `finscope` run as a child, its output in files (no pipe to fill up while it runs).
final class FinscopeRun {
    let process = Process()
    let directory: TemporaryDirectory
    let stdoutURL: URL
    let stderrURL: URL

    init(_ arguments: [String], executable: String = finscopeBinary) throws {
        directory = try TemporaryDirectory(prefix: "finscope-live")
        stdoutURL = directory.url(for: "stdout")
        stderrURL = directory.url(for: "stderr")
        _ = FileManager.default.createFile(atPath: stdoutURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrURL.path, contents: nil)
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = try FileHandle(forWritingTo: stdoutURL)
        process.standardError = try FileHandle(forWritingTo: stderrURL)
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    var stdout: String { (try? String(contentsOf: stdoutURL, encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOf: stderrURL, encoding: .utf8)) ?? "" }

    /// Waits for the capture to be open (its banner on stderr).
    func waitUntilCapturing(seconds: Double = 10) throws {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if stderr.contains("capturing on") { return }
            if !process.isRunning { break }
            usleep(20_000)
        }
        throw RunFailure(description: "finscope did not start capturing; stderr: \(stderr)")
    }

    /// Sends `signal` (if given) and waits for the exit; kills it after `seconds`.
    @discardableResult
    func finish(signal: Int32? = nil, seconds: Double = 10) throws -> Int32 {
        if let signal { kill(process.processIdentifier, signal) }
        let end = Date().addingTimeInterval(seconds)
        while process.isRunning, Date() < end { usleep(20_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            throw RunFailure(description: "finscope did not stop within \(seconds) s; stderr: \(stderr)")
        }
        process.waitUntilExit()
        return process.terminationStatus
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}

struct RunFailure: Error, CustomStringConvertible {
    var description: String
}

/// Runs finscope to completion (for error paths).
func finscope(_ arguments: [String], prefix: [String] = []) throws -> (status: Int32, stdout: String, stderr: String) {
    let run = try FinscopeRun(prefix.isEmpty ? arguments : Array(prefix.dropFirst()) + [finscopeBinary] + arguments,
                              executable: prefix.first ?? finscopeBinary)
    let status = try run.finish(seconds: 10)
    return (status, run.stdout, run.stderr)
}

func jsonObject(_ text: String) throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
}

@Suite("finscope live on lo", .serialized)
struct LiveCaptureTests {
    @Test("reports exactly the leaked connections, on the client, held by this process",
          .enabled(if: mayCapture, "needs CAP_NET_RAW: run as root"), .timeLimit(.minutes(1)))
    func namesTheLeakedConnections() throws {
        let server = try LoopbackServer()
        defer { server.close() }
        let run = try FinscopeRun(["live", "--interface", "lo", "--filter", "tcp port \(server.port)",
                                   "--close-wait-threshold", "1", "--report-every", "1", "--json"])
        try run.waitUntilCapturing()

        let total = 8, leakedCount = 3
        var leaked: [(fd: Int32, port: UInt16)] = []
        defer { leaked.forEach { close($0.fd) } }
        for index in 0..<total {
            let client = try server.exchange()
            if index % 3 == 0 { leaked.append(client) } else { close(client.fd) }
        }
        #expect(leaked.count == leakedCount)
        usleep(2_300_000)  // past the threshold, and a progress report after it
        let status = try run.finish(signal: SIGTERM)
        #expect(status == 0, "stderr: \(run.stderr)")

        let report = try jsonObject(run.stdout)
        let source = try #require(report["source"] as? [String: Any])
        #expect(source["kind"] as? String == "live")
        #expect(source["name"] as? String == "lo")
        #expect(source["dropped"] as? Int == 0)
        #expect(source["ifDropped"] is Int)
        let summary = try #require(report["summary"] as? [String: Any])
        #expect(summary["flows"] as? Int == total)
        let closes = try #require(summary["close"] as? [String: Int])
        #expect(closes["server-first"] == total - leakedCount)
        #expect(closes["half-closed"] == leakedCount)
        let findingCounts = try #require(summary["findings"] as? [String: Int])
        #expect(findingCounts == ["close-wait": leakedCount, "slow-close": 0, "fin-unacked": 0])

        let flows = try #require(report["flows"] as? [[String: Any]])
        var stuckPorts = Set<Int>()
        for flow in flows {
            for finding in flow["findings"] as? [[String: Any]] ?? [] {
                #expect(finding["kind"] as? String == "close-wait")
                #expect(finding["endpoint"] as? String == "client")
                let process = finding["process"] as? [String: Any]
                #expect(process?["pid"] as? Int == Int(getpid()), "the owner is this test process")
                if let port = (flow["client"] as? [String: Any])?["port"] as? Int { stuckPorts.insert(port) }
            }
        }
        #expect(stuckPorts == Set(leaked.map { Int($0.port) }))
        let groups = try #require(report["groups"] as? [[String: Any]])
        #expect(groups.count == 1)
        #expect((groups.first?["endpoint"] as? [String: Any])?["role"] as? String == "client")
        #expect((groups.first?["peer"] as? [String: Any])?["port"] as? Int == Int(server.port))
        #expect(groups.first?["flows"] as? Int == leakedCount)
        // Progress reports go to stderr with --json, with the owner named.
        #expect(run.stderr.contains("STUCK IN CLOSE_WAIT"))
        #expect(run.stderr.contains("(pid \(getpid())) holds \(leakedCount) sockets in CLOSE_WAIT to 127.0.0.1:\(server.port)"))
    }

    @Test("SIGINT mid-capture: the final report covers every connection completed before it",
          .enabled(if: mayCapture, "needs CAP_NET_RAW: run as root"), .timeLimit(.minutes(1)))
    func interruptKeepsEverything() throws {
        let server = try LoopbackServer()
        defer { server.close() }
        let directory = try TemporaryDirectory(prefix: "finscope-live-write")
        let saved = directory.url(for: "saved.pcap").path
        let run = try FinscopeRun(["live", "-i", "lo", "--filter", "tcp port \(server.port)", "--ndjson",
                                   "--close-wait-threshold", "0", "--write", saved])
        try run.waitUntilCapturing()
        let total = 20
        var leaked: [Int32] = []
        defer { leaked.forEach { close($0) } }
        for index in 0..<total {
            let client = try server.exchange()
            if index == 0 { leaked.append(client.fd) } else { close(client.fd) }
        }
        // The kept socket acknowledges the server's FIN with a bare ACK, which Linux may
        // delay (delayed ACK, at most 200 ms); until it is sent that connection is not
        // complete. Everything else has completed: the signal follows as soon as that ACK is due.
        usleep(300_000)
        let status = try run.finish(signal: SIGINT)
        #expect(status == 0, "stderr: \(run.stderr)")

        let lines = run.stdout.split(separator: "\n")
        let last = try jsonObject(String(try #require(lines.last)))
        #expect(last["type"] as? String == "summary")
        let summary = try #require(last["summary"] as? [String: Any])
        #expect(summary["flows"] as? Int == total)
        let closes = try #require(summary["close"] as? [String: Int])
        #expect(closes["server-first"] == total - 1)
        #expect(closes["half-closed"] == 1)
        // With a zero threshold every flow has a finding (close-wait or slow-close), so
        // every connection comes out on its own line before the summary.
        // (Kernel-socket lines of the start report, SPEC §7, may come first: other tests' sockets.)
        let flowLines = try lines.dropLast().map { try jsonObject(String($0)) }.filter { $0["type"] as? String != "kernelSocket" }
        #expect(flowLines.count == total)
        #expect(flowLines.allSatisfy { $0["type"] as? String == "flow" })
        let stuck = flowLines.filter { line in
            ((line["flow"] as? [String: Any])?["findings"] as? [[String: Any]])?.contains { $0["kind"] as? String == "close-wait" } == true
        }
        #expect(stuck.count == 1)
        let source = try #require(last["source"] as? [String: Any])
        let packets = try #require(source["packets"] as? Int)
        #expect(packets >= total * 9)

        // --write saved the same packets, and they analyze the same offline.
        let offline = try finscope(["analyze", "--json", saved])
        #expect(offline.status == 0)
        let offlineReport = try jsonObject(offline.stdout)
        #expect((offlineReport["source"] as? [String: Any])?["packets"] as? Int == packets)
        #expect((offlineReport["summary"] as? [String: Any])?["flows"] as? Int == total)
    }

    @Test("an unknown interface: one line listing the available ones, non-zero exit")
    func unknownInterface() throws {
        let result = try finscope(["live", "--interface", "finscope-nope0", "--duration", "1"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("no capture interface named 'finscope-nope0'"))
        #expect(result.stderr.contains("available:"))
        #expect(result.stderr.contains("lo"))
        #expect(result.stderr.split(separator: "\n").count == 1)
    }

    @Test("an invalid BPF filter: one line naming it, non-zero exit",
          .enabled(if: mayCapture, "needs CAP_NET_RAW: run as root (the filter compiles on an open capture)"))
    func badFilter() throws {
        let result = try finscope(["live", "--interface", "lo", "--filter", "tcp port", "--duration", "1"])
        #expect(result.status == 2)
        #expect(result.stderr.contains("invalid filter 'tcp port'"))
        #expect(result.stdout.isEmpty)
    }

    /// How to run finscope without capture permission: as nobody when we are root, as
    /// ourselves when we lack it; nil when neither is possible.
    static let unprivilegedPrefix: [String]? = {
        if getuid() == 0 {
            for runner in ["/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"]
            where FileManager.default.isExecutableFile(atPath: runner) {
                return [runner, "-u", "nobody", "--"]
            }
            return nil
        }
        return mayCapture ? nil : []
    }()

    @Test("without capture permission: one line saying how to fix it, non-zero exit",
          .enabled(if: LiveCaptureTests.unprivilegedPrefix != nil, "needs root (to run as nobody) or a user without capture permission"))
    func missingPermission() throws {
        // nobody must be able to run the binary whatever the checkout's permissions (a home
        // directory of mode 700, say): run a copy from a world-readable temporary directory.
        var template = Array("/tmp/finscope-nobody-XXXXXX".utf8CString)
        let directory = try #require(template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }.map { String(cString: $0) })
        defer { _ = try? FileManager.default.removeItem(atPath: directory) }
        chmod(directory, 0o755)
        let copy = directory + "/finscope"
        try FileManager.default.copyItem(atPath: finscopeBinary, toPath: copy)
        chmod(copy, 0o755)
        let prefix = Self.unprivilegedPrefix ?? []
        let arguments = ["live", "--interface", "lo", "--duration", "1"]
        let run = try FinscopeRun(prefix.isEmpty ? arguments : Array(prefix.dropFirst()) + [copy] + arguments,
                                  executable: prefix.first ?? copy)
        let result = (status: try run.finish(seconds: 10), stdout: run.stdout, stderr: run.stderr)
        #expect(!result.stderr.contains("runuser"), "nobody could not run the copy: \(result.stderr)")
        #expect(result.status == 2)
        #expect(result.stderr.contains("no permission to capture on lo"))
        #expect(result.stderr.contains("sudo"))
        #expect(result.stderr.contains("setcap cap_net_raw,cap_net_admin+eip"))
        #expect(result.stderr.split(separator: "\n").count == 1)
    }
}
