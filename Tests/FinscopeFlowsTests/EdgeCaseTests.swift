import Foundation
import Testing
import FinscopeWire
import FinscopeFindings
import FinscopeAnalysis
import FinscopeCapture
import FinscopeFlows
import FinscopeReport
import FinscopeTestSupport

/// Finer points of SPEC §1–§5 that a plausible implementation could get wrong.
@Suite("Edge cases")
struct EdgeCaseTests {
    @Test("segments with RST acknowledge nothing: an RST+ACK covering the FIN does not put the sender in CLOSE_WAIT")
    func resetAckDoesNotAcknowledgeFin() throws {
        var c = established()
        c.fin(.server, at: 1.0)
        c.rst(.client, at: 1.001, withAck: true)  // ack = server FIN + 1
        let flow = try analyze(c, extra: [(20, udpFrame())]).onlyFlow()
        #expect(flow.close == "reset")
        #expect(flow.resetBy == "client")
        #expect(flow.client == EndpointJSON(resetAt: T(1.001), path: [EST, CLOSED]))
        #expect(flow.server == EndpointJSON(finAt: T(1.0), finAckedAt: nil, path: [EST, FW1, CLOSED]))
        #expect(flow.findings == [])
    }

    @Test("payload length comes from the IP length, not the captured length (snaplen cuts the FIN's payload)")
    func payloadFromIPLength() throws {
        var c = established()
        c.fin(.client, at: 1.0, payload: 100)            // FP. with 100 bytes: F = seq + 100
        c.segment(.server, flags: .ack, ack: .relative(-51), at: 1.001)  // acks 50 of the 100 bytes only
        c.ack(.server, at: 1.2)                          // acks data and FIN
        c.fin(.server, at: 1.3)
        c.ack(.client, at: 1.301)
        var writer = c.pcapWriter(captureLength: 54)     // Ethernet + IPv4 + TCP headers only
        writer.snaplen = 54
        let report = try analyze(writer: writer)
        let flow = try report.onlyFlow()
        #expect(report.skipped("truncated") == 0)
        #expect(flow.close == "client-first")
        #expect(flow.client == EndpointJSON(finAt: T(1.0), finAckedAt: T(1.2), path: clientFirstClientPath))
        #expect(flow.server == EndpointJSON(finAt: T(1.3), finAckedAt: T(1.301), path: clientFirstServerPath))
    }

    @Test("VLAN tags are not part of the flow identity: each direction on its own VLAN is one flow")
    func vlanNotInIdentity() throws {
        let c = clientFirstConversation()
        var writer = PcapWriter(linkType: 1)
        for frame in c.frames {
            writer.append(c.bytes(of: frame, link: .vlan([frame.side == .client ? 100 : 200])), time: frame.time)
        }
        let flow = try analyze(writer: writer).onlyFlow()
        #expect(flow.close == "client-first")
        #expect(flow.client.path == clientFirstClientPath)
        #expect(flow.server.path == clientFirstServerPath)
    }

    @Test("the FIN sequence number counts the SYN when one segment carries both (SYN+ACK+FIN)")
    func synAckFin() throws {
        var c = conversation()
        c.syn(at: 0)
        c.segment(.server, flags: [.syn, .ack, .fin], at: 0.0001)  // F = ISN + 1
        c.ack(.client, at: 0.0002)  // ack = ISN + 2: acknowledges SYN and FIN
        #expect(c.frames.last?.acknowledgment == 5002)
        c.data(.client, bytes: 10, at: 0.1)
        c.ack(.server, at: 0.11)
        let flow = try analyze(c, extra: [(10.0002, udpFrame())]).onlyFlow()
        #expect(flow.close == "half-closed")
        #expect(flow.server == EndpointJSON(finAt: T(0.0001), finAckedAt: T(0.0002), path: [EST, FW1, FW2]))
        #expect(flow.client == EndpointJSON(path: [EST, CW]))
        #expect(flow.findings == [FindingJSON("close-wait", "client", since: T(0.0002), seconds: D(10), activity: "data")])
    }

    @Test("an ack of only the SYN (ISN + 1) does not acknowledge a FIN carried on the SYN+ACK")
    func synAckFinOnlySynAcked() throws {
        var c = conversation()
        c.syn(at: 0)
        c.segment(.server, flags: [.syn, .ack, .fin], at: 0.0001)
        c.segment(.client, flags: .ack, ack: .relative(-1), at: 0.0002)  // ack ISN + 1
        let flow = try analyze(c, extra: [(10.0001, udpFrame())]).onlyFlow()
        #expect(flow.server == EndpointJSON(finAt: T(0.0001), finAckedAt: nil, path: [EST, FW1]))
        #expect(flow.client == EndpointJSON(path: [EST]))
        #expect(flow.findings == [FindingJSON("fin-unacked", "server", since: T(0.0001), seconds: D(10), activity: "ack-only")])
    }

    // MARK: duplicates, finer points

    @Test("a duplicate is judged against the previous segment in the same direction (the other direction may interleave)")
    func duplicateAcrossInterleavedDirection() throws {
        var c = established()
        c.fin(.client, at: 1.0)
        let fin = try #require(c.lastFrame(of: .client))
        c.ack(.server, at: 1.0003)
        var copy = fin
        copy.time = c.start.adding(1.0006)  // 0.6 ms after the FIN, a server segment in between
        c.record(copy)
        let report = try analyze(c)
        #expect(report.duplicates == 1)
        #expect(report.tcpSegments == 10)
        #expect(try report.onlyFlow().client.finRetransmits == 0)
    }

    @Test("a repeat that is not the immediately previous segment in its direction is not a duplicate")
    func repeatNotImmediatelyPrevious() throws {
        var c = established()
        c.data(.client, bytes: 50, at: 1.0)
        let first = try #require(c.lastFrame(of: .client))
        c.data(.client, bytes: 50, at: 1.0003)
        var again = first
        again.time = c.start.adding(1.0006)
        c.record(again)
        c.ack(.server, at: 1.001)
        let report = try analyze(c)
        #expect(report.duplicates == 0)
        #expect(report.tcpSegments == 11)
    }

    @Test("a repeat with a different window is not a duplicate")
    func differentWindowIsNotDuplicate() throws {
        var c = conversation()
        serverClosesClientAcks(&c)
        c.ack(.client, at: 0.3013, window: 30000)
        let report = try analyze(c, extra: [(10.301, udpFrame())])
        #expect(report.duplicates == 0)
        #expect(try report.onlyFlow().findings
            == [FindingJSON("close-wait", "client", since: T(0.301), seconds: D(10), activity: "ack-only")])
    }

    @Test("with nanosecond timestamps, a repeat 1 ms + 1 ns later is a retransmission; exactly 1 ms is a duplicate")
    func nanosecondBoundary() throws {
        for (delay, duplicates, retransmits) in [(0.001, 1, 0), (0.001000001, 0, 1)] {
            var c = established()
            c.fin(.client, at: 1.0)
            c.duplicateLast(after: delay)
            c.ack(.server, at: 1.003)
            let dir = try TemporaryDirectory()
            let report: Report = try withExtendedLifetime(dir) {
                let url = dir.url(for: "ns.pcap")
                try c.writePcap(to: url, precision: .nanoseconds)
                return try analyze(paths: [url.path])
            }
            #expect(report.duplicates == duplicates, "delay \(delay)")
            #expect(try report.onlyFlow().client.finRetransmits == retransmits, "delay \(delay)")
        }
    }

    // MARK: activity

    @Test("a one-byte segment at the next sequence number (not next − 1) is data, not a keep-alive")
    func oneByteAtNextIsData() throws {
        var c = conversation()
        serverClosesClientAcks(&c)
        c.segment(.client, flags: .ack, payloadBytes: [0], at: 3.0)
        c.ack(.server, at: 3.0001)
        let flow = try analyze(c, extra: [(10.301, udpFrame())]).onlyFlow()
        #expect(flow.findings == [FindingJSON("close-wait", "client", since: T(0.301), seconds: D(10), activity: "data")])
    }

    @Test("a two-byte probe at next − 1 is data")
    func twoBytesAtNextMinusOneIsData() throws {
        var c = conversation()
        serverClosesClientAcks(&c)
        c.segment(.client, flags: .ack, seq: .relative(-1), payloadBytes: [0, 0], at: 3.0, delivered: false)
        let flow = try analyze(c, extra: [(10.301, udpFrame())]).onlyFlow()
        #expect(flow.findings == [FindingJSON("close-wait", "client", since: T(0.301), seconds: D(10), activity: "data")])
    }

    // MARK: crossing FINs, one never acknowledged

    @Test("crossing FINs where one is never acknowledged: CLOSING on one side, FIN_WAIT_2 on the other → crossed")
    func crossedOneFinNeverAcked() throws {
        var c = established()
        c.fin(.client, at: 1.0, delivered: false)
        c.fin(.server, at: 1.0005)
        c.ack(.client, at: 1.001)  // the client acknowledges the server's FIN; the server never sees the client's
        let flow = try analyze(c).onlyFlow()
        // Client: received the server's FIN, its own never acknowledged → FIN_WAIT_1 → CLOSING.
        // Server: its FIN acknowledged, never received the client's → FIN_WAIT_2.
        #expect(flow.close == "crossed")
        #expect(flow.threeWay == false)
        #expect(flow.client == EndpointJSON(finAt: T(1.0), finAckedAt: nil, path: [EST, FW1, CLOSING]))
        #expect(flow.server == EndpointJSON(finAt: T(1.0005), finAckedAt: T(1.001), path: [EST, FW1, FW2]))
        #expect(flow.findings == [])
    }

    // MARK: wraparound and RST windows

    @Test("RST window check across the 2^32 wrap")
    func resetWindowAcrossWrap() throws {
        var c = conversation(clientISN: 0xFFFF_FF00, serverWindow: 1000)
        c.handshake(at: 0)
        c.data(.client, bytes: 100, at: 0.1)
        c.ack(.server, at: 0.11)
        let lastAck = c.received(.server)
        #expect(lastAck == 0xFFFF_FF65)
        c.rst(.client, at: 1.0, seq: .value(lastAck &+ 1001))  // wraps to a small number; beyond the window
        c.rst(.client, at: 2.0, seq: .value(lastAck &+ 1000))
        let flow = try analyze(c).onlyFlow()
        #expect(flow.ignoredResets == 1)
        #expect(flow.close == "reset")
        #expect(flow.client == EndpointJSON(resetAt: T(2.0), path: [EST, CLOSED]))
    }

    @Test("summary and groups cover slow-close and fin-unacked too")
    func summaryAllKinds() throws {
        var leak = conversation(client: "10.0.0.1:40001", server: "10.0.0.2:80")
        serverClosesClientAcks(&leak)  // close-wait 20 s
        var slow = conversation(client: "10.0.0.1:40002", server: "10.0.0.2:80")
        serverClosesClientAcks(&slow, base: 1)
        slow.fin(.client, at: 8.301)       // slow-close 6 s
        slow.ack(.server, at: 8.302)
        var lost = conversation(client: "10.0.0.1:40003", server: "10.0.0.2:80")
        exchange(&lost, base: 2)
        lost.fin(.client, at: 3.0, delivered: false)  // fin-unacked 17.301 s
        var writer = Conversation.pcapWriter([leak, slow, lost])
        writer.append(udpFrame(), time: CaptureTime(epoch).adding(20.301))
        writer.sortByTime()
        let report = try analyze(writer: writer)

        #expect(report.flows.count == 3)
        #expect(report.summaryFindings("close-wait") == 1)
        #expect(report.summaryFindings("slow-close") == 1)
        #expect(report.summaryFindings("fin-unacked") == 1)
        #expect(report.summaryClose("half-closed") == 2)
        #expect(report.summaryClose("server-first") == 1)
        guard report.flows.count == 3 else { return }
        #expect(report.flows[0].findings == [FindingJSON("close-wait", "client", since: T(0.301), seconds: D(20), activity: "silent")])
        #expect(report.flows[1].findings == [FindingJSON("slow-close", "client", since: T(1.301), seconds: D(7), activity: "silent",
                                                         endedBy: "fin")])
        #expect(report.flows[2].findings == [FindingJSON("fin-unacked", "client", since: T(3.0), seconds: D(17.301), activity: "silent")])
        let kinds = Set(report.groups.compactMap { jsonString($0["kind"]) })
        #expect(kinds == ["close-wait", "slow-close", "fin-unacked"])
        #expect(report.groups.count == 3)
    }
}
