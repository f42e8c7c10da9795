import Foundation
import Testing
import FinscopeWire
import FinscopeFindings
import FinscopeAnalysis
import FinscopeCapture
import FinscopeFlows
import FinscopeReport
import FinscopeTestSupport

/// Behaviour over longer captures with several flows: a flow is one connection for the
/// whole capture (SPEC §1; only a SYN with another ISN starts a new flow on a tracked
/// 4-tuple, SPEC §5), and the capture's end is the latest frame in the file.
@Suite("Long captures")
struct LongCaptureTests {
    /// Another connection busy from `from` to `to` (one exchange per second), so that the
    /// analyzer sees plenty of unrelated segments in between.
    func background(from: Double, to: Double) -> Conversation {
        var other = conversation(client: "10.0.0.7:41000", server: "10.0.0.8:8080", clientISN: 77_000, serverISN: 88_000)
        other.handshake(at: from)
        var t = from + 1
        while t < to {
            other.data(.client, bytes: 10, at: t)
            other.ack(.server, at: t + 0.001)
            t += 1
        }
        return other
    }

    @Test("an RST long after a complete close still belongs to the same flow (resetBy set, no new flow)")
    func lateResetAfterCompleteClose() throws {
        var c = clientFirstConversation()              // closed by 1.301
        c.rst(.server, at: 30.0)                       // seq = server FIN + 1 = the client's last ack
        let other = background(from: 0.5, to: 40)
        let report = try analyze(writer: Conversation.pcapWriter([c, other]))

        #expect(report.flows.count == 2, "flows: \(report.flows.map { "\($0.clientAddress)→\($0.serverAddress) \($0.close ?? "?")" })")
        let flow = try #require(report.flows.first { $0.serverAddress == "10.0.0.2:80" })
        #expect(flow.roles == "handshake")
        #expect(flow.close == "client-first")
        #expect(flow.resetBy == "server")
        #expect(flow.server.resetAt == T(30.0))
        #expect(flow.lastSeen == T(30.0))
    }

    @Test("a FIN retransmitted long after a complete close is counted on the same flow")
    func lateFinRetransmissionAfterCompleteClose() throws {
        var c = clientFirstConversation()
        c.retransmitLast(.server, at: 25.0)   // the server's FIN again (its last ACK was lost)
        c.ack(.client, at: 25.001)
        let other = background(from: 0.5, to: 40)
        let report = try analyze(writer: Conversation.pcapWriter([c, other]))

        #expect(report.flows.count == 2)
        let flow = try #require(report.flows.first { $0.serverAddress == "10.0.0.2:80" })
        #expect(flow.close == "client-first")
        #expect(flow.server == EndpointJSON(finAt: T(1.3), finAckedAt: T(1.301), finRetransmits: 1, path: clientFirstServerPath))
        #expect(flow.client == EndpointJSON(finAt: T(1.0), finAckedAt: T(1.001), path: clientFirstClientPath))
    }

    @Test("after an accepted RST, segments long afterwards stay on the same flow (nothing changes but resetAt)")
    func lateSegmentsAfterReset() throws {
        var c = established()
        c.rst(.client, at: 1.0)
        c.data(.server, bytes: 100, at: 20.0)   // the server had not seen the RST
        c.rst(.client, at: 20.001)
        let other = background(from: 0.5, to: 40)
        let report = try analyze(writer: Conversation.pcapWriter([c, other]))

        #expect(report.flows.count == 2)
        #expect(report.summaryClose("reset") == 1)
        let flow = try #require(report.flows.first { $0.serverAddress == "10.0.0.2:80" })
        #expect(flow.roles == "handshake")
        #expect(flow.close == "reset")
        #expect(flow.resetBy == "client")
        #expect(flow.client == EndpointJSON(resetAt: T(1.0), path: [EST, CLOSED]))
        #expect(flow.server == EndpointJSON(path: [EST, CLOSED]))
        #expect(flow.lastSeen == T(20.001))
    }

    @Test("with a filter, the capture still ends at the file's latest frame (frames the filter rejects included)")
    func filterKeepsCaptureEnd() throws {
        var leak = conversation()
        serverClosesClientAcks(&leak)                  // client CLOSE_WAIT since 0.301
        let other = background(from: 0.5, to: 21)      // port 8080, last segment at 20.501
        let writer = Conversation.pcapWriter([leak, other])
        let report = try analyze(writer: writer, options: AnalysisOptions(filter: "tcp port 80"))
        let flow = try report.onlyFlow()
        #expect(report.sourceEnd == T(20.501))
        #expect(flow.findings == [FindingJSON("close-wait", "client", since: T(0.301), seconds: D(20.2), activity: "silent")])
    }
}
