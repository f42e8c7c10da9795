import Foundation
import Testing
import FinscopeWire
import FinscopeFindings
import FinscopeAnalysis
import FinscopeCapture
import FinscopeFlows
import FinscopeReport
import FinscopeTestSupport

/// SPEC §2 (endpoint paths) and §3 (`close`, `threeWay`, `resetBy`).
@Suite("Close kinds")
struct CloseKindTests {
    @Test("client-first 4-way close: whole flow object, source and summary")
    func clientFirstFourWay() throws {
        let c = clientFirstConversation()
        let report = try analyze(c)
        let flow = try report.onlyFlow()

        #expect(flow.id == 1)
        #expect(flow.clientAddress == "10.0.0.1:40000")
        #expect(flow.serverAddress == "10.0.0.2:80")
        #expect(flow.roles == "handshake")
        #expect(flow.firstSeen == T(0))
        #expect(flow.lastSeen == T(1.301))
        #expect(flow.close == "client-first")
        #expect(flow.threeWay == false)
        #expect(flow.resetByIsNull)
        #expect(flow.ignoredResets == 0)
        #expect(flow.client == EndpointJSON(finAt: T(1.0), finAckedAt: T(1.001), path: clientFirstClientPath))
        #expect(flow.server == EndpointJSON(finAt: T(1.3), finAckedAt: T(1.301), path: clientFirstServerPath))
        // The server's CLOSE_WAIT lasted 0.299 s: far below the 5 s threshold.
        #expect(flow.findings == [])

        #expect(jsonInt(report.json["schema"]) == 1)
        #expect(jsonString(report.source["kind"]) == "file")
        #expect(report.packets == 11)
        #expect(report.tcpSegments == 11)
        #expect(report.duplicates == 0)
        #expect(report.sourceStart == T(0))
        #expect(report.sourceEnd == T(1.301))
        for reason in ["notTCP", "unsupported", "fragment", "truncated", "malformed"] {
            #expect(report.skipped(reason) == 0, "skipped.\(reason)")
        }
        #expect(jsonInt(report.summary["flows"]) == 1)
        for kind in ["client-first", "server-first", "simultaneous", "crossed", "reset", "half-closed", "open"] {
            #expect(report.summaryClose(kind) == (kind == "client-first" ? 1 : 0), "summary.close.\(kind)")
        }
        for kind in ["close-wait", "slow-close", "fin-unacked"] {
            #expect(report.summaryFindings(kind) == 0, "summary.findings.\(kind)")
        }
        #expect(report.groups.isEmpty)
    }

    @Test("server-first 4-way close")
    func serverFirstFourWay() throws {
        var c = established()
        c.fin(.server, at: 1.0)
        c.ack(.client, at: 1.001)
        c.fin(.client, at: 1.3)
        c.ack(.server, at: 1.301)
        let flow = try analyze(c).onlyFlow()

        #expect(flow.close == "server-first")
        #expect(flow.threeWay == false)
        #expect(flow.resetByIsNull)
        #expect(flow.client == EndpointJSON(finAt: T(1.3), finAckedAt: T(1.301), path: [EST, CW, LA, CLOSED]))
        #expect(flow.server == EndpointJSON(finAt: T(1.0), finAckedAt: T(1.001), path: [EST, FW1, FW2, TW]))
        #expect(flow.findings == [])
    }

    @Test("three-way close (F, F., .): active closer FIN_WAIT_1 → TIME_WAIT; passive closer passes CLOSE_WAIT and LAST_ACK")
    func threeWayClientFirst() throws {
        var c = established()
        c.fin(.client, at: 1.0)
        c.fin(.server, at: 1.001)  // carries the first acknowledgement of the client's FIN
        c.ack(.client, at: 1.002)
        let flow = try analyze(c).onlyFlow()

        #expect(flow.close == "client-first")
        #expect(flow.threeWay == true)
        #expect(flow.resetByIsNull)
        #expect(flow.client == EndpointJSON(finAt: T(1.0), finAckedAt: T(1.001), path: [EST, FW1, TW]))
        #expect(flow.server == EndpointJSON(finAt: T(1.001), finAckedAt: T(1.002), path: [EST, CW, LA, CLOSED]))
    }

    @Test("three-way close started by the server")
    func threeWayServerFirst() throws {
        var c = established()
        c.fin(.server, at: 1.0)
        c.fin(.client, at: 1.05)
        c.ack(.server, at: 1.051)
        let flow = try analyze(c).onlyFlow()

        #expect(flow.close == "server-first")
        #expect(flow.threeWay == true)
        #expect(flow.client == EndpointJSON(finAt: T(1.05), finAckedAt: T(1.051), path: [EST, CW, LA, CLOSED]))
        #expect(flow.server == EndpointJSON(finAt: T(1.0), finAckedAt: T(1.05), path: [EST, FW1, TW]))
    }

    @Test("simultaneous close: both FINs cross, neither acknowledges the other, both pass CLOSING")
    func simultaneous() throws {
        var c = established()
        c.fin(.server, at: 1.0)
        // The client's FIN was sent before the server's arrived: its ack does not cover it.
        c.segment(.client, flags: [.fin, .ack], ack: .relative(-1), at: 1.0005)
        c.ack(.client, at: 1.001)   // acknowledges the server's FIN
        c.ack(.server, at: 1.0012)  // acknowledges the client's FIN
        let flow = try analyze(c).onlyFlow()

        #expect(flow.close == "simultaneous")
        #expect(flow.threeWay == false)
        #expect(flow.resetByIsNull)
        #expect(flow.client == EndpointJSON(finAt: T(1.0005), finAckedAt: T(1.0012), path: [EST, FW1, CLOSING, TW]))
        #expect(flow.server == EndpointJSON(finAt: T(1.0), finAckedAt: T(1.001), path: [EST, FW1, CLOSING, TW]))
        #expect(flow.findings == [])
    }

    @Test("order is judged per endpoint: captured at the client, the client's FIN shows first, yet the close is simultaneous")
    func simultaneousCapturedAtClient() throws {
        var c = established()
        c.fin(.client, at: 1.0)
        // Arrives 20 ms later, but the server sent it before the client's FIN reached it.
        c.segment(.server, flags: [.fin, .ack], ack: .relative(-1), at: 1.02)
        c.ack(.client, at: 1.0201)
        c.ack(.server, at: 1.04)
        let flow = try analyze(c).onlyFlow()

        #expect(flow.close == "simultaneous")
        #expect(flow.threeWay == false)
        #expect(flow.client == EndpointJSON(finAt: T(1.0), finAckedAt: T(1.04), path: [EST, FW1, CLOSING, TW]))
        #expect(flow.server == EndpointJSON(finAt: T(1.02), finAckedAt: T(1.0201), path: [EST, FW1, CLOSING, TW]))
    }

    @Test("crossed: client FIN lost after the capture point, retransmitted after the client acked the server's FIN")
    func crossedFinWait2() throws {
        var c = established()
        c.fin(.client, at: 1.0, delivered: false)
        c.fin(.server, at: 1.01)  // does not cover the client's FIN (never arrived)
        c.ack(.client, at: 1.011)
        c.retransmitLast(.client, at: 1.2, refreshAck: true)
        c.ack(.server, at: 1.201)
        let flow = try analyze(c).onlyFlow()

        // Client: the server sent its FIN (1.01) before acking the client's (1.201) → CLOSING.
        // Server: the client acked the server's FIN (1.011) before the FIN transmission the
        // server received (1.2) → FIN_WAIT_2 → TIME_WAIT. Not both CLOSING → crossed.
        #expect(flow.close == "crossed")
        #expect(flow.threeWay == false)
        #expect(flow.resetByIsNull)
        #expect(flow.client == EndpointJSON(finAt: T(1.0), finAckedAt: T(1.201), finRetransmits: 1,
                                            path: [EST, FW1, CLOSING, TW]))
        #expect(flow.server == EndpointJSON(finAt: T(1.01), finAckedAt: T(1.011), path: [EST, FW1, FW2, TW]))
    }

    @Test("crossed with straight TIME_WAIT: the retransmitted FIN carries the first ack of the peer's FIN and does not make it server-first")
    func crossedStraightTimeWait() throws {
        var c = established()
        c.fin(.client, at: 1.0, delivered: false)
        c.fin(.server, at: 1.01)
        // No separate ACK: the FIN retransmission is the client's first ack of the server's FIN.
        c.retransmitLast(.client, at: 1.2, refreshAck: true)
        c.ack(.server, at: 1.201)
        let flow = try analyze(c).onlyFlow()

        // SPEC §1: only the first observed transmission of a FIN can acknowledge the peer's FIN.
        #expect(flow.close == "crossed")
        #expect(flow.threeWay == false)
        #expect(flow.client == EndpointJSON(finAt: T(1.0), finAckedAt: T(1.201), finRetransmits: 1,
                                            path: [EST, FW1, CLOSING, TW]))
        #expect(flow.server == EndpointJSON(finAt: T(1.01), finAckedAt: T(1.2), path: [EST, FW1, TW]))
    }

    @Test("crossed FINs ended by an accepted RST before either FIN was received")
    func crossedEndedByReset() throws {
        var c = established()
        c.fin(.client, at: 1.0, delivered: false)
        c.fin(.server, at: 1.0005, delivered: false)
        c.rst(.client, at: 1.002)  // seq = client FIN + 1: one byte past the server's last ack
        let flow = try analyze(c).onlyFlow()

        #expect(flow.close == "crossed")
        #expect(flow.threeWay == false)
        #expect(flow.resetBy == "client")
        #expect(flow.ignoredResets == 0)
        #expect(flow.client == EndpointJSON(finAt: T(1.0), finAckedAt: nil, resetAt: T(1.002), path: [EST, FW1, CLOSED]))
        #expect(flow.server == EndpointJSON(finAt: T(1.0005), finAckedAt: nil, path: [EST, FW1, CLOSED]))
        // fin-unacked needs "no RST ended the flow".
        #expect(flow.findings == [])
    }

    @Test("reset by the client")
    func resetByClient() throws {
        var c = established()
        c.rst(.client, at: 1.0)
        let flow = try analyze(c).onlyFlow()

        #expect(flow.close == "reset")
        #expect(flow.threeWay == false)
        #expect(flow.resetBy == "client")
        #expect(flow.ignoredResets == 0)
        #expect(flow.client == EndpointJSON(resetAt: T(1.0), path: [EST, CLOSED]))
        #expect(flow.server == EndpointJSON(path: [EST, CLOSED]))
        #expect(flow.findings == [])
    }

    @Test("reset by the server (RST+ACK)")
    func resetByServer() throws {
        var c = established()
        c.rst(.server, at: 1.0, withAck: true)
        let flow = try analyze(c).onlyFlow()

        #expect(flow.close == "reset")
        #expect(flow.resetBy == "server")
        #expect(flow.client == EndpointJSON(path: [EST, CLOSED]))
        #expect(flow.server == EndpointJSON(resetAt: T(1.0), path: [EST, CLOSED]))
    }

    @Test("reset after one FIN: still reset (an accepted RST before both FINs were sent)")
    func resetAfterOneFin() throws {
        var c = established()
        c.fin(.client, at: 1.0)
        c.ack(.server, at: 1.001)
        c.rst(.server, at: 1.5)
        let flow = try analyze(c).onlyFlow()

        #expect(flow.close == "reset")
        #expect(flow.resetBy == "server")
        #expect(flow.client == EndpointJSON(finAt: T(1.0), finAckedAt: T(1.001), path: [EST, FW1, FW2, CLOSED]))
        #expect(flow.server == EndpointJSON(resetAt: T(1.5), path: [EST, CW, CLOSED]))
    }

    @Test("after the first accepted RST nothing changes but resetAt: a later FIN does not change kind or paths")
    func nothingChangesAfterReset() throws {
        var c = established()
        c.rst(.client, at: 1.0)
        c.fin(.server, at: 1.1)
        let flow = try analyze(c).onlyFlow()

        #expect(flow.close == "reset")
        #expect(flow.resetBy == "client")
        #expect(flow.client.path == [EST, CLOSED])
        #expect(flow.server.path == [EST, CLOSED])
        #expect(flow.findings == [])
    }

    @Test("an RST after both FINs keeps the FIN-based kind and sets resetBy")
    func resetAfterBothFins() throws {
        var c = established()
        c.fin(.client, at: 1.0)
        c.ack(.server, at: 1.001)
        c.fin(.server, at: 1.3)
        c.rst(.client, at: 1.301)  // instead of the final ACK (abortive close)
        let flow = try analyze(c).onlyFlow()

        #expect(flow.close == "client-first")
        #expect(flow.threeWay == false)
        #expect(flow.resetBy == "client")
        // The client never acknowledged the server's FIN, so it never received it (SPEC §1):
        // FIN_WAIT_2 (its FIN was acked), then CLOSED by the RST.
        #expect(flow.client == EndpointJSON(finAt: T(1.0), finAckedAt: T(1.001), resetAt: T(1.301),
                                            path: [EST, FW1, FW2, CLOSED]))
        #expect(flow.server == EndpointJSON(finAt: T(1.3), finAckedAt: nil, path: [EST, CW, LA, CLOSED]))
        #expect(flow.findings == [])
    }

    @Test("half-closed: the client closed, the server keeps sending")
    func halfClosed() throws {
        var c = established()
        c.fin(.client, at: 1.0)
        c.ack(.server, at: 1.001)
        c.data(.server, bytes: 500, at: 2.0)
        c.ack(.client, at: 2.001)
        let flow = try analyze(c).onlyFlow()

        #expect(flow.close == "half-closed")
        #expect(flow.threeWay == false)
        #expect(flow.resetByIsNull)
        #expect(flow.client == EndpointJSON(finAt: T(1.0), finAckedAt: T(1.001), path: [EST, FW1, FW2]))
        #expect(flow.server == EndpointJSON(path: [EST, CW]))
        #expect(flow.findings == [])  // CLOSE_WAIT lasted 1.0 s
    }

    @Test("open: no FIN, no RST")
    func open() throws {
        let c = established()
        let report = try analyze(c)
        let flow = try report.onlyFlow()

        #expect(flow.close == "open")
        #expect(flow.threeWay == false)
        #expect(flow.resetByIsNull)
        #expect(flow.client == EndpointJSON(path: [EST]))
        #expect(flow.server == EndpointJSON(path: [EST]))
        #expect(flow.findings == [])
        #expect(report.summaryClose("open") == 1)
    }

    @Test("FIN retransmissions are counted; finAt is the first transmission")
    func finRetransmissionsCounted() throws {
        var c = established()
        c.fin(.client, at: 1.0, delivered: false)
        c.retransmitLast(.client, at: 1.2, delivered: false)
        c.retransmitLast(.client, at: 1.6)
        c.ack(.server, at: 1.601)
        c.fin(.server, at: 1.7)
        c.ack(.client, at: 1.701)
        let flow = try analyze(c).onlyFlow()

        #expect(flow.close == "client-first")
        #expect(flow.threeWay == false)
        #expect(flow.client == EndpointJSON(finAt: T(1.0), finAckedAt: T(1.601), finRetransmits: 2,
                                            path: clientFirstClientPath))
        #expect(flow.server == EndpointJSON(finAt: T(1.7), finAckedAt: T(1.701), path: clientFirstServerPath))
    }

    @Test("a server FIN retransmitted with the same ack keeps a client-first close")
    func passiveFinRetransmitted() throws {
        var c = established()
        c.fin(.client, at: 1.0)
        c.ack(.server, at: 1.001)
        c.fin(.server, at: 1.3, delivered: false)
        c.retransmitLast(.server, at: 1.5)
        c.ack(.client, at: 1.501)
        let flow = try analyze(c).onlyFlow()

        #expect(flow.close == "client-first")
        #expect(flow.client == EndpointJSON(finAt: T(1.0), finAckedAt: T(1.001), path: clientFirstClientPath))
        #expect(flow.server == EndpointJSON(finAt: T(1.3), finAckedAt: T(1.501), finRetransmits: 1,
                                            path: clientFirstServerPath))
    }
}
