import FinscopeTestSupport
import Foundation
import Testing

/// The `finscope` binary as a user runs it: output, exit status, error lines.
struct Run {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// The built executable, beside the test bundle in the build products folder.
let finscopeBinary: URL = {
    var folder = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for _ in 0..<4 {
        let candidate = folder.appendingPathComponent("finscope")
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        folder = folder.deletingLastPathComponent()
    }
    return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent(".build/debug/finscope")
}()

func finscope(_ arguments: [String]) throws -> Run {
    let process = Process()
    process.executableURL = finscopeBinary
    process.arguments = arguments
    // A UTF-8 locale unless one is set: with none, finscope falls back to ASCII text.
    process.environment = cliEnvironment()
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    // Read before waiting so a large report cannot fill the pipe and stall the child.
    let stdout = out.fileHandleForReading.readDataToEndOfFile()
    let stderr = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return Run(status: process.terminationStatus,
               stdout: String(decoding: stdout, as: UTF8.self), stderr: String(decoding: stderr, as: UTF8.self))
}

/// One capture with every kind of finding: a close-wait leak, a slow close ended by a FIN,
/// a slow close ended by the peer's reset, an unacknowledged FIN, and a clean close.
func findingsCapture(in directory: TemporaryDirectory) throws -> URL {
    var leak = Conversation(client: "10.0.0.5:40001", server: "10.0.0.9:8282", start: 1_700_000_000)
    leak.handshake(at: 0)
    leak.data(.client, bytes: 100, at: 0.01)
    leak.data(.server, bytes: 200, at: 0.02)
    leak.ack(.client, at: 0.03)
    leak.fin(.server, at: 1)
    leak.ack(.client, at: 1.001)  // CLOSE_WAIT from here to the capture's end (19 s)

    var slow = Conversation(client: "10.0.0.5:40002", server: "10.0.0.9:8282", start: 1_700_000_000)
    slow.handshake(at: 0.1)
    slow.fin(.server, at: 2)
    slow.ack(.client, at: 2.001)
    slow.fin(.client, at: 10)  // 7.999 s in CLOSE_WAIT
    slow.ack(.server, at: 10.001)

    var killed = Conversation(client: "10.0.0.5:40003", server: "10.0.0.9:8282", start: 1_700_000_000)
    killed.handshake(at: 0.2)
    killed.fin(.server, at: 3)
    killed.ack(.client, at: 3.001)
    killed.rst(.server, at: 12)  // the client's CLOSE_WAIT ended by the peer's reset

    var gone = Conversation(client: "10.0.0.5:40004", server: "10.0.0.7:22", start: 1_700_000_000)
    gone.handshake(at: 0.3)
    gone.fin(.client, at: 4, delivered: false)  // never acknowledged

    var clean = Conversation(client: "10.0.0.5:40005", server: "10.0.0.9:8282", start: 1_700_000_000)
    clean.handshake(at: 0.4)
    clean.fin(.client, at: 5)
    clean.ack(.server, at: 5.001)
    clean.fin(.server, at: 5.002)
    clean.ack(.client, at: 20)  // the capture's last frame

    return try Conversation.writePcap([leak, slow, killed, gone, clean], to: directory.url(for: "findings.pcap"))
}

@Suite struct CLITests {
    @Test func jsonHoldsEverySpecFieldWithTheRightType() throws {
        let directory = try TemporaryDirectory()
        let capture = try findingsCapture(in: directory)
        let run = try finscope(["analyze", "--json", capture.path])
        #expect(run.status == 0, "\(run.stderr)")
        let document = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])

        #expect(document["schema"] as? Int == 1)
        let source = try #require(document["source"] as? [String: Any])
        #expect(source["kind"] as? String == "file")
        #expect(source["name"] as? String == capture.path)
        for key in ["packets", "tcpSegments", "duplicates"] { #expect(source[key] is Int, "source.\(key)") }
        for key in ["start", "end"] { #expect(source[key] is Double, "source.\(key)") }
        let skipped = try #require(source["skipped"] as? [String: Any])
        #expect(Set(skipped.keys) == ["notTCP", "unsupported", "fragment", "truncated", "malformed"])
        #expect(skipped.values.allSatisfy { $0 is Int })

        let summary = try #require(document["summary"] as? [String: Any])
        #expect(summary["flows"] as? Int == 5)
        let close = try #require(summary["close"] as? [String: Int])
        #expect(close == ["client-first": 1, "server-first": 1, "simultaneous": 0, "crossed": 0,
                          "reset": 1, "half-closed": 2, "open": 0])
        let findings = try #require(summary["findings"] as? [String: Int])
        #expect(findings == ["close-wait": 1, "slow-close": 2, "fin-unacked": 1])

        let flows = try #require(document["flows"] as? [[String: Any]])
        #expect(flows.count == 5)
        for flow in flows {
            #expect(flow["id"] is Int)
            for role in ["client", "server"] {
                let address = try #require(flow[role] as? [String: Any])
                #expect(address["ip"] is String)
                #expect(address["port"] is Int)
            }
            #expect(["handshake", "inferred"].contains(flow["roles"] as? String))
            #expect(flow["firstSeen"] is Double)
            #expect(flow["lastSeen"] is Double)
            #expect(flow["close"] is String)
            #expect(flow["threeWay"] is Bool)
            #expect(flow["resetBy"] is NSNull || ["client", "server"].contains(flow["resetBy"] as? String))
            #expect(flow["ignoredResets"] is Int)
            let endpoints = try #require(flow["endpoints"] as? [String: [String: Any]])
            #expect(Set(endpoints.keys) == ["client", "server"])
            for (_, endpoint) in endpoints {
                for key in ["finAt", "finAckedAt", "resetAt"] {
                    #expect(endpoint[key] is NSNull || endpoint[key] is Double, "\(key)")
                }
                #expect(endpoint["finRetransmits"] is Int)
                let path = try #require(endpoint["path"] as? [String])
                #expect(endpoint["state"] as? String == path.last)
            }
            for finding in try #require(flow["findings"] as? [[String: Any]]) {
                #expect(["close-wait", "slow-close", "fin-unacked"].contains(finding["kind"] as? String))
                #expect(["client", "server"].contains(finding["endpoint"] as? String))
                #expect(finding["since"] is Double)
                #expect(finding["seconds"] is Double)
                #expect(["silent", "ack-only", "data"].contains(finding["activity"] as? String))
                if finding["kind"] as? String == "slow-close" {
                    #expect(["fin", "reset", "peer-reset"].contains(finding["endedBy"] as? String))
                } else {
                    #expect(finding["endedBy"] == nil)
                }
            }
        }
        // The leak: flow 1's client acknowledged the FIN at +1.001 s and stayed to +20 s.
        // (--json lists flows in finishing order: find flow 1 by its id.)
        let leak = try #require(flows.first { $0["id"] as? Int == 1 }?["findings"] as? [[String: Any]]).first
        #expect(leak?["kind"] as? String == "close-wait")
        #expect(leak?["endpoint"] as? String == "client")
        #expect(leak?["since"] as? Double == 1_700_000_001.001)
        #expect(abs((leak?["seconds"] as? Double ?? 0) - 18.999) < 1e-9)
        #expect(leak?["activity"] as? String == "silent")

        // SPEC §6: sorted by flows (descending), then kind.
        let groups = try #require(document["groups"] as? [[String: Any]])
        #expect(groups.count == 3)
        let slow = groups[0]
        #expect(slow["kind"] as? String == "slow-close")
        #expect(slow["flows"] as? Int == 2)
        let leakGroup = groups[1]
        #expect(leakGroup["kind"] as? String == "close-wait")
        #expect(leakGroup["endpoint"] as? [String: String] == ["ip": "10.0.0.5", "role": "client"])
        let service = try #require(leakGroup["service"] as? [String: Any])
        #expect(service["ip"] as? String == "10.0.0.9")
        #expect(service["port"] as? Int == 8282)
        // A client endpoint's peer is the service itself.
        let peer = try #require(leakGroup["peer"] as? [String: Any])
        #expect(peer["ip"] as? String == "10.0.0.9")
        #expect(peer["port"] as? Int == 8282)
        #expect(leakGroup["peers"] as? Int == 1)
        #expect(leakGroup["flows"] as? Int == 1)
        #expect(leakGroup["maxSeconds"] is Double)
        #expect(groups[2]["kind"] as? String == "fin-unacked")
    }

    @Test func textReportLeadsWithTheStuckEndpoint() throws {
        let directory = try TemporaryDirectory()
        let capture = try findingsCapture(in: directory)
        let run = try finscope(["analyze", capture.path])
        #expect(run.status == 0)
        let lines = run.stdout.split(separator: "\n").map(String.init)
        // The first section after the title names the close-wait culprit.
        #expect(lines.count > 3)
        #expect(lines[1].hasPrefix("STUCK IN CLOSE_WAIT — 1 connection"))
        #expect(lines[2].contains("10.0.0.5 (client, port 40001) → 10.0.0.9:8282: 1 connection"))
        #expect(run.stdout.contains("SLOW CLOSE"))
        #expect(run.stdout.contains("FIN NEVER ACKNOWLEDGED"))
        #expect(run.stdout.contains("client-first"))
        #expect(!run.stdout.contains("Flows\n"))
    }

    @Test func flowsListsEveryStatePath() throws {
        let directory = try TemporaryDirectory()
        let capture = try findingsCapture(in: directory)
        let run = try finscope(["analyze", "--flows", capture.path])
        #expect(run.status == 0)
        #expect(run.stdout.contains("#5 10.0.0.5:40005 → 10.0.0.9:8282  client-first"))
        #expect(run.stdout.contains("client: ESTABLISHED → FIN_WAIT_1 → FIN_WAIT_2 → TIME_WAIT"))
        #expect(run.stdout.contains("server: ESTABLISHED → CLOSE_WAIT → LAST_ACK → CLOSED"))
    }

    @Test func missingFileIsOneClearLineAndExitTwo() throws {
        let run = try finscope(["analyze", "/nonexistent/x.pcap"])
        #expect(run.status == 2)
        #expect(run.stdout.isEmpty)
        #expect(run.stderr == "finscope: error: cannot read /nonexistent/x.pcap: no such file\n")
    }

    @Test func notACaptureIsAClearError() throws {
        let directory = try TemporaryDirectory()
        let file = directory.url(for: "notes.txt")
        try Data("hello, this is not a capture\n".utf8).write(to: file)
        let run = try finscope(["analyze", file.path])
        #expect(run.status == 2)
        #expect(run.stderr.hasPrefix("finscope: error: cannot read \(file.path): not a pcap or pcapng capture"))
        #expect(run.stderr.split(separator: "\n").count == 1)
    }

    @Test func unsupportedLinkTypeIsAClearError() throws {
        let directory = try TemporaryDirectory()
        // ARCNET (Linux): not among SPEC §5's link types (PPI, used here before, now is).
        let file = directory.url(for: "arcnet.pcap")
        var writer = PcapWriter(linkType: 129)
        writer.append([0, 0, 8, 0, 0, 0, 0, 0], at: 1_700_000_000)
        try writer.write(to: file)
        let run = try finscope(["analyze", file.path])
        #expect(run.status == 2)
        #expect(run.stderr.contains("link type ARCNET_LINUX (129) is not supported"))
    }

    @Test func emptyCaptureIsAValidEmptyReport() throws {
        let directory = try TemporaryDirectory()
        let file = directory.url(for: "empty.pcap")
        try PcapWriter(linkType: 1).write(to: file)
        let run = try finscope(["analyze", "--json", file.path])
        #expect(run.status == 0)
        let document = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
        let source = try #require(document["source"] as? [String: Any])
        #expect(source["packets"] as? Int == 0)
        #expect(source["start"] is NSNull)
        #expect((document["flows"] as? [Any])?.isEmpty == true)
    }

    @Test func badFilterIsAClearError() throws {
        let directory = try TemporaryDirectory()
        let capture = try findingsCapture(in: directory)
        let run = try finscope(["analyze", "--filter", "tcp port banana", capture.path])
        #expect(run.status == 2)
        #expect(run.stderr.hasPrefix("finscope: error: invalid filter 'tcp port banana':"))
    }

    @Test func filterKeepsOnlyMatchingTraffic() throws {
        let directory = try TemporaryDirectory()
        let capture = try findingsCapture(in: directory)
        let run = try finscope(["analyze", "--json", "--filter", "tcp port 22", capture.path])
        #expect(run.status == 0)
        let document = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
        let summary = try #require(document["summary"] as? [String: Any])
        #expect(summary["flows"] as? Int == 1)
        #expect((summary["findings"] as? [String: Int])?["fin-unacked"] == 1)
    }

    @Test func thresholdOptionChangesFindings() throws {
        let directory = try TemporaryDirectory()
        let capture = try findingsCapture(in: directory)
        let run = try finscope(["analyze", "--json", "--close-wait-threshold", "60", capture.path])
        #expect(run.status == 0)
        let document = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
        let findings = (document["summary"] as? [String: Any])?["findings"] as? [String: Int]
        #expect(findings == ["close-wait": 0, "slow-close": 0, "fin-unacked": 0])
    }

    @Test func helpShowsExamples() throws {
        let run = try finscope(["analyze", "--help"])
        #expect(run.status == 0)
        #expect(run.stdout.contains("Examples:"))
        #expect(run.stdout.contains("--close-wait-threshold"))
    }
}

@Suite struct CLIOutputFileTests {
    @Test func jsonStillWritesTheExportAndHTMLFiles() throws {
        let directory = try TemporaryDirectory()
        let capture = try findingsCapture(in: directory)
        let export = directory.url(for: "flagged.pcap"), html = directory.url(for: "report.html")
        let run = try finscope(["analyze", "--json", "--export", export.path, "--html", html.path, capture.path])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) is [String: Any])
        // The export holds the flagged flows: 4 flows with findings, read back as a capture.
        let back = try finscope(["analyze", "--json", export.path])
        let document = try #require(try JSONSerialization.jsonObject(with: Data(back.stdout.utf8)) as? [String: Any])
        #expect((document["summary"] as? [String: Any])?["flows"] as? Int == 4)
        #expect(FileManager.default.fileExists(atPath: html.path))
    }
}
