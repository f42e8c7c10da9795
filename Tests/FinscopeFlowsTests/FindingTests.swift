import Foundation
import Testing
import FinscopeWire
import FinscopeFindings
import FinscopeAnalysis
import FinscopeCapture
import FinscopeFlows
import FinscopeReport
import FinscopeTestSupport

/// SPEC §4: close-wait, slow-close and fin-unacked, with since / seconds / activity / endedBy.
///
/// Most scenarios: the server closes at 0.3, the client acknowledges the FIN at 0.301
/// (CLOSE_WAIT since 0.301) and never closes.
@Suite("Findings")
struct FindingTests {
    // MARK: close-wait

    @Test("close-wait, silent; the capture ends at a later UDP frame")
    func closeWaitSilent() throws {
        var c = conversation()
        serverClosesClientAcks(&c)
        let report = try analyze(c, extra: [(10.301, udpFrame())])
        let flow = try report.onlyFlow()

        #expect(flow.close == "half-closed")
        #expect(flow.resetByIsNull)
        #expect(flow.client == EndpointJSON(path: [EST, CW]))
        #expect(flow.server == EndpointJSON(finAt: T(0.3), finAckedAt: T(0.301), path: [EST, FW1, FW2]))
        #expect(flow.findings == [FindingJSON("close-wait", "client", since: T(0.301), seconds: D(10), activity: "silent")])

        #expect(report.packets == 10)
        #expect(report.tcpSegments == 9)
        #expect(report.skipped("notTCP") == 1)
        #expect(report.sourceEnd == T(10.301))
        #expect(report.summaryFindings("close-wait") == 1)
        #expect(report.summaryClose("half-closed") == 1)
    }

    @Test("capture end is the latest timestamp of any frame: without a later frame there is no finding")
    func captureEndWithoutTrailingFrame() throws {
        var c = conversation()
        serverClosesClientAcks(&c)
        let report = try analyze(c)
        let flow = try report.onlyFlow()
        #expect(report.sourceEnd == T(0.301))
        #expect(flow.findings == [])
    }

    @Test("capture end extended by a trailing ARP frame")
    func captureEndByARP() throws {
        var c = conversation()
        serverClosesClientAcks(&c)
        let report = try analyze(c, extra: [(7.3015, arpFrame())])
        let flow = try report.onlyFlow()
        #expect(report.sourceEnd == T(7.3015))
        #expect(flow.findings == [FindingJSON("close-wait", "client", since: T(0.301), seconds: D(7.0005), activity: "silent")])
    }

    @Test("close-wait, ack-only: a window update")
    func closeWaitAckOnlyWindowUpdate() throws {
        var c = conversation()
        serverClosesClientAcks(&c)
        c.ack(.client, at: 3.0, window: 30000)
        let flow = try analyze(c, extra: [(10.301, udpFrame())]).onlyFlow()
        #expect(flow.findings == [FindingJSON("close-wait", "client", since: T(0.301), seconds: D(10), activity: "ack-only")])
    }

    @Test("close-wait, ack-only: a zero-byte keep-alive probe at next − 1", arguments: [false, true])
    func closeWaitKeepAlive(withByte: Bool) throws {
        var c = conversation()
        serverClosesClientAcks(&c)
        c.keepAlive(.client, at: 3.0, withByte: withByte)
        c.ack(.server, at: 3.0001)
        c.keepAlive(.client, at: 6.0, withByte: withByte)
        c.ack(.server, at: 6.0001)
        let flow = try analyze(c, extra: [(10.301, udpFrame())]).onlyFlow()
        #expect(flow.close == "half-closed")
        #expect(flow.findings == [FindingJSON("close-wait", "client", since: T(0.301), seconds: D(10), activity: "ack-only")])
    }

    @Test("close-wait, data: the client still writes after acknowledging the FIN")
    func closeWaitData() throws {
        var c = conversation()
        serverClosesClientAcks(&c)
        c.ack(.client, at: 2.0, window: 30000)
        c.data(.client, bytes: 50, at: 3.0)
        c.ack(.server, at: 3.0001)
        let flow = try analyze(c, extra: [(10.301, udpFrame())]).onlyFlow()
        #expect(flow.findings == [FindingJSON("close-wait", "client", since: T(0.301), seconds: D(10), activity: "data")])
    }

    @Test("close-wait, data: a retransmission of old data counts as data")
    func closeWaitRetransmissionIsData() throws {
        var c = conversation()
        serverClosesClientAcks(&c)
        c.retransmitLast(.client, at: 3.0)  // the 100-byte request again
        let flow = try analyze(c, extra: [(10.301, udpFrame())]).onlyFlow()
        #expect(flow.findings == [FindingJSON("close-wait", "client", since: T(0.301), seconds: D(10), activity: "data")])
    }

    @Test("close-wait: the segment at `since` itself is not activity (the FIN's ack carried data)")
    func closeWaitAckingSegmentCarriesData() throws {
        var c = conversation()
        exchange(&c)
        c.fin(.server, at: 0.3)
        c.data(.client, bytes: 50, at: 0.301)  // acknowledges the FIN and carries data
        c.ack(.server, at: 0.302)
        let flow = try analyze(c, extra: [(10.301, udpFrame())]).onlyFlow()
        #expect(flow.findings == [FindingJSON("close-wait", "client", since: T(0.301), seconds: D(10), activity: "silent")])
    }

    @Test("close-wait on the server (the client closed first and the server never closes)")
    func closeWaitOnServer() throws {
        var c = established()
        c.fin(.client, at: 1.0)
        c.ack(.server, at: 1.001)
        let flow = try analyze(c, extra: [(31.001, udpFrame())]).onlyFlow()
        #expect(flow.close == "half-closed")
        #expect(flow.server == EndpointJSON(path: [EST, CW]))
        #expect(flow.client == EndpointJSON(finAt: T(1.0), finAckedAt: T(1.001), path: [EST, FW1, FW2]))
        #expect(flow.findings == [FindingJSON("close-wait", "server", since: T(1.001), seconds: D(30), activity: "silent")])
    }

    // MARK: threshold

    @Test("threshold: a close-wait exactly 5 s long counts")
    func closeWaitExactlyThreshold() throws {
        var c = conversation()
        serverClosesClientAcks(&c)
        let flow = try analyze(c, extra: [(5.301, udpFrame())]).onlyFlow()
        #expect(flow.findings == [FindingJSON("close-wait", "client", since: T(0.301), seconds: D(5), activity: "silent")])
    }

    @Test("threshold: a close-wait 1 µs short of 5 s does not count")
    func closeWaitJustBelowThreshold() throws {
        var c = conversation()
        serverClosesClientAcks(&c)
        let flow = try analyze(c, extra: [(5.300999, udpFrame())]).onlyFlow()
        #expect(flow.findings == [])
    }

    @Test("custom threshold through AnalysisOptions")
    func customThreshold() throws {
        var c = conversation()
        serverClosesClientAcks(&c)
        let extra: [(offset: Double, bytes: [UInt8])] = [(3.301, udpFrame())]
        #expect(try analyze(c, extra: extra).onlyFlow().findings == [])
        #expect(try analyze(c, extra: extra, threshold: 2_000_000_000).onlyFlow().findings
            == [FindingJSON("close-wait", "client", since: T(0.301), seconds: D(3), activity: "silent")])
        #expect(try analyze(c, extra: extra, threshold: 3_000_000_000).onlyFlow().findings
            == [FindingJSON("close-wait", "client", since: T(0.301), seconds: D(3), activity: "silent")])
        #expect(try analyze(c, extra: extra, threshold: 3_000_000_001).onlyFlow().findings == [])
    }

    // MARK: slow-close

    @Test("slow-close ended by the endpoint's own FIN")
    func slowCloseEndedByFin() throws {
        var c = conversation()
        serverClosesClientAcks(&c)
        c.fin(.client, at: 6.301)
        c.ack(.server, at: 6.302)
        let report = try analyze(c, extra: [(20, udpFrame())])
        let flow = try report.onlyFlow()

        #expect(flow.close == "server-first")
        #expect(flow.threeWay == false)
        #expect(flow.client == EndpointJSON(finAt: T(6.301), finAckedAt: T(6.302), path: [EST, CW, LA, CLOSED]))
        #expect(flow.server == EndpointJSON(finAt: T(0.3), finAckedAt: T(0.301), path: [EST, FW1, FW2, TW]))
        #expect(flow.findings == [FindingJSON("slow-close", "client", since: T(0.301), seconds: D(6), activity: "silent",
                                              endedBy: "fin")])
        #expect(report.summaryFindings("slow-close") == 1)
        #expect(report.summaryFindings("close-wait") == 0)
    }

    @Test("slow-close exactly at the threshold counts; 1 µs shorter does not")
    func slowCloseThresholdBoundary() throws {
        for (finAt, expected) in [(5.301, true), (5.300999, false)] {
            var c = conversation()
            serverClosesClientAcks(&c)
            c.fin(.client, at: finAt)
            c.ack(.server, at: finAt + 0.001)
            let flow = try analyze(c).onlyFlow()
            #expect(flow.close == "server-first")
            #expect(flow.findings == (expected
                ? [FindingJSON("slow-close", "client", since: T(0.301), seconds: D(5), activity: "silent", endedBy: "fin")]
                : []), "FIN at +\(finAt)")
        }
    }

    @Test("slow-close ended by the endpoint's own RST")
    func slowCloseEndedByReset() throws {
        var c = conversation()
        serverClosesClientAcks(&c)
        c.ack(.client, at: 2.0, window: 30000)
        c.rst(.client, at: 6.301)
        let flow = try analyze(c, extra: [(20, udpFrame())]).onlyFlow()

        #expect(flow.close == "reset")
        #expect(flow.resetBy == "client")
        #expect(flow.client == EndpointJSON(resetAt: T(6.301), path: [EST, CW, CLOSED]))
        #expect(flow.server == EndpointJSON(finAt: T(0.3), finAckedAt: T(0.301), path: [EST, FW1, FW2, CLOSED]))
        #expect(flow.findings == [FindingJSON("slow-close", "client", since: T(0.301), seconds: D(6), activity: "ack-only",
                                              endedBy: "reset")])
    }

    @Test("slow-close ended by the peer's RST, with the endpoint's activity before it")
    func slowCloseEndedByPeerReset() throws {
        var c = conversation()
        serverClosesClientAcks(&c)
        c.keepAlive(.client, at: 3.0)
        c.rst(.server, at: 6.301)
        c.data(.client, bytes: 10, at: 6.5)  // after the state ended: not activity
        let flow = try analyze(c, extra: [(20, udpFrame())]).onlyFlow()

        #expect(flow.close == "reset")
        #expect(flow.resetBy == "server")
        #expect(flow.client == EndpointJSON(path: [EST, CW, CLOSED]))
        #expect(flow.server == EndpointJSON(finAt: T(0.3), finAckedAt: T(0.301), resetAt: T(6.301), path: [EST, FW1, FW2, CLOSED]))
        #expect(flow.findings == [FindingJSON("slow-close", "client", since: T(0.301), seconds: D(6), activity: "ack-only",
                                              endedBy: "peer-reset")])
    }

    @Test("slow-close ended by the peer's RST, endpoint sent data in CLOSE_WAIT")
    func slowCloseEndedByPeerResetData() throws {
        var c = conversation()
        serverClosesClientAcks(&c)
        c.data(.client, bytes: 10, at: 3.0)
        c.ack(.server, at: 3.001)
        c.rst(.server, at: 9.301)
        let flow = try analyze(c).onlyFlow()
        #expect(flow.findings == [FindingJSON("slow-close", "client", since: T(0.301), seconds: D(9), activity: "data",
                                              endedBy: "peer-reset")])
    }

    // MARK: RSTs and close-wait

    @Test("no close-wait when an accepted RST ended the flow")
    func noCloseWaitAfterReset() throws {
        var c = conversation()
        serverClosesClientAcks(&c)
        c.rst(.server, at: 1.0)
        let report = try analyze(c, extra: [(20.301, udpFrame())])
        let flow = try report.onlyFlow()
        #expect(flow.close == "reset")
        #expect(flow.resetBy == "server")
        #expect(flow.findings == [])  // CLOSE_WAIT ended after 0.699 s
        #expect(report.summaryFindings("close-wait") == 0)
    }

    @Test("an ignored (out-of-window) RST does not end the close-wait")
    func ignoredResetKeepsCloseWait() throws {
        var c = conversation()
        serverClosesClientAcks(&c)
        // The client's window is 65535, unscaled (no window-scale options): 70000 beyond its ack.
        c.rst(.server, at: 1.0, seq: .relative(70000))
        let flow = try analyze(c, extra: [(20.301, udpFrame())]).onlyFlow()
        #expect(flow.ignoredResets == 1)
        #expect(flow.close == "half-closed")
        #expect(flow.resetByIsNull)
        #expect(flow.client == EndpointJSON(path: [EST, CW]))
        #expect(flow.server.resetAt == nil)
        #expect(flow.findings == [FindingJSON("close-wait", "client", since: T(0.301), seconds: D(20), activity: "silent")])
    }

    // MARK: fin-unacked

    @Test("fin-unacked, peer silent; since = first FIN transmission, capture ends at the last retransmission")
    func finUnackedSilent() throws {
        var c = established()
        c.fin(.client, at: 1.0, delivered: false)
        for offset in [1.2, 1.6, 2.4, 4.0, 7.2] { c.retransmitLast(.client, at: offset, delivered: false) }
        let report = try analyze(c)
        let flow = try report.onlyFlow()

        #expect(flow.close == "half-closed")
        #expect(flow.client == EndpointJSON(finAt: T(1.0), finAckedAt: nil, finRetransmits: 5, path: [EST, FW1]))
        #expect(flow.server == EndpointJSON(path: [EST]))
        #expect(flow.findings == [FindingJSON("fin-unacked", "client", since: T(1.0), seconds: D(6.2), activity: "silent")])
        #expect(report.summaryFindings("fin-unacked") == 1)
    }

    @Test("fin-unacked, peer ack-only")
    func finUnackedPeerAckOnly() throws {
        var c = established()
        c.fin(.client, at: 1.0, delivered: false)
        c.ack(.server, at: 2.0, window: 40000)  // its ack does not cover the FIN
        let flow = try analyze(c, extra: [(7.0, udpFrame())]).onlyFlow()
        #expect(flow.client == EndpointJSON(finAt: T(1.0), finAckedAt: nil, path: [EST, FW1]))
        #expect(flow.findings == [FindingJSON("fin-unacked", "client", since: T(1.0), seconds: D(6), activity: "ack-only")])
    }

    @Test("fin-unacked, peer sends data")
    func finUnackedPeerData() throws {
        var c = established()
        c.fin(.client, at: 1.0, delivered: false)
        c.data(.server, bytes: 300, at: 2.0)
        c.ack(.client, at: 2.001)
        let flow = try analyze(c, extra: [(7.0, udpFrame())]).onlyFlow()
        #expect(flow.findings == [FindingJSON("fin-unacked", "client", since: T(1.0), seconds: D(6), activity: "data")])
    }

    @Test("fin-unacked exactly at the threshold counts; below does not")
    func finUnackedThreshold() throws {
        for (end, expected) in [(6.0, true), (5.999999, false)] {
            var c = established()
            c.fin(.client, at: 1.0, delivered: false)
            let flow = try analyze(c, extra: [(end, udpFrame())]).onlyFlow()
            #expect(flow.findings == (expected
                ? [FindingJSON("fin-unacked", "client", since: T(1.0), seconds: D(5), activity: "silent")] : []),
                "capture end +\(end)")
        }
    }

    // MARK: groups

    @Test("groups: three leaked flows from one client IP to one server:port form one close-wait group")
    func groups() throws {
        var conversations: [Conversation] = []
        for (index, base) in [0.0, 2.0, 4.0].enumerated() {
            var c = conversation(client: HostPort("10.0.0.1:\(40001 + index)"), server: "10.0.0.2:80")
            serverClosesClientAcks(&c, base: base)
            conversations.append(c)
        }
        // A fourth leak from the same client, to another service: its own group.
        var other = conversation(client: "10.0.0.1:40004", server: "10.0.0.3:80")
        serverClosesClientAcks(&other, base: 1.0)
        conversations.append(other)

        var writer = Conversation.pcapWriter(conversations)
        writer.append(udpFrame(), time: CaptureTime(epoch).adding(20.301))
        writer.sortByTime()
        let report = try analyze(writer: writer)

        #expect(report.flows.count == 4)
        #expect(report.summaryFindings("close-wait") == 4)
        let durations = report.flows.map { $0.findings.map(\.seconds) }
        // Flow order is first appearance: bases 0, 1 (other), 2, 4.
        #expect(durations == [[D(20)], [D(19)], [D(18)], [D(16)]])

        let groups = report.groups
        #expect(groups.count == 2)
        let main = try #require(groups.first { group in
            let peer = group["peer"] as? [String: Any] ?? [:]
            return jsonString(peer["ip"]) == "10.0.0.2" && jsonInt(peer["port"]) == 80
        })
        #expect(jsonString(main["kind"]) == "close-wait")
        let endpoint = main["endpoint"] as? [String: Any] ?? [:]
        #expect(jsonString(endpoint["ip"]) == "10.0.0.1")
        #expect(jsonString(endpoint["role"]) == "client")
        #expect(jsonInt(main["flows"]) == 3)
        #expect(jsonMicros(main["maxSeconds"]) == D(20))

        let single = try #require(groups.first { group in
            jsonString((group["peer"] as? [String: Any])?["ip"]) == "10.0.0.3"
        })
        #expect(jsonInt(single["flows"]) == 1)
        #expect(jsonMicros(single["maxSeconds"]) == D(19))
    }
}
