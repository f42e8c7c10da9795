import Foundation
import Testing
import FinscopeWire
import FinscopeFindings
import FinscopeAnalysis
import FinscopeCapture
import FinscopeFlows
import FinscopeReport
import FinscopeTestSupport

/// SPEC §5 capture hygiene (duplicates, port reuse), sequence-number wraparound,
/// mid-connection starts and connections that never got established.
@Suite("Capture hygiene and connection starts")
struct HygieneTests {
    // MARK: duplicates

    @Test("a capture duplicate within 1 ms is counted and ignored; tcpSegments still counts it")
    func duplicateWithinOneMillisecond() throws {
        var c = established()
        c.fin(.client, at: 1.0)
        c.duplicateLast(after: 0.0005)
        c.ack(.server, at: 1.001)
        c.fin(.server, at: 1.3)
        c.ack(.client, at: 1.301)
        let report = try analyze(c)
        let flow = try report.onlyFlow()

        #expect(report.duplicates == 1)
        #expect(report.tcpSegments == 12)
        #expect(report.packets == 12)
        #expect(flow.close == "client-first")
        #expect(flow.client == EndpointJSON(finAt: T(1.0), finAckedAt: T(1.001), finRetransmits: 0, path: clientFirstClientPath))
        #expect(flow.server == EndpointJSON(finAt: T(1.3), finAckedAt: T(1.301), path: clientFirstServerPath))
    }

    @Test("a repeat exactly 1 ms later is still a capture duplicate")
    func duplicateExactlyOneMillisecond() throws {
        var c = established()
        c.fin(.client, at: 1.0)
        c.duplicateLast(after: 0.001)
        c.ack(.server, at: 1.002)
        let report = try analyze(c)
        #expect(report.duplicates == 1)
        #expect(report.tcpSegments == 10)
        #expect(try report.onlyFlow().client.finRetransmits == 0)
    }

    @Test("an identical FIN 2 ms later is a retransmission (finRetransmits 1, duplicates 0)")
    func repeatAfterTwoMillisecondsIsRetransmission() throws {
        var c = established()
        c.fin(.client, at: 1.0)
        c.duplicateLast(after: 0.002)
        c.ack(.server, at: 1.003)
        c.fin(.server, at: 1.3)
        c.ack(.client, at: 1.301)
        let report = try analyze(c)
        let flow = try report.onlyFlow()

        #expect(report.duplicates == 0)
        #expect(report.tcpSegments == 12)
        #expect(flow.close == "client-first")
        #expect(flow.client == EndpointJSON(finAt: T(1.0), finAckedAt: T(1.003), finRetransmits: 1, path: clientFirstClientPath))
        #expect(flow.server == EndpointJSON(finAt: T(1.3), finAckedAt: T(1.301), path: clientFirstServerPath))
    }

    @Test("an identical FIN 1.001 ms later is a retransmission")
    func repeatJustOverOneMillisecond() throws {
        var c = established()
        c.fin(.client, at: 1.0)
        c.duplicateLast(after: 0.001001)
        c.ack(.server, at: 1.003)
        let report = try analyze(c)
        #expect(report.duplicates == 0)
        #expect(try report.onlyFlow().client.finRetransmits == 1)
    }

    @Test("a chain of duplicates each ≤ 1 ms after the previous one are all duplicates")
    func duplicateChain() throws {
        var c = established()
        c.fin(.client, at: 1.0)
        c.duplicateLast(after: 0.0008)  // 1.0008
        c.duplicateLast(after: 0.0008)  // 1.0016: 1.6 ms after the original, 0.8 ms after the previous
        c.duplicateLast(after: 0.0008)  // 1.0024
        c.ack(.server, at: 1.003)
        c.fin(.server, at: 1.3)
        c.ack(.client, at: 1.301)
        let report = try analyze(c)
        let flow = try report.onlyFlow()

        #expect(report.duplicates == 3)
        #expect(report.tcpSegments == 14)
        #expect(flow.close == "client-first")
        #expect(flow.client == EndpointJSON(finAt: T(1.0), finAckedAt: T(1.003), finRetransmits: 0, path: clientFirstClientPath))
    }

    @Test("a duplicated ACK within 1 ms is not CLOSE_WAIT activity; 2 ms later it is (ack-only)")
    func duplicateIsNotActivity() throws {
        for (delay, duplicates, activity) in [(0.0005, 1, "silent"), (0.002, 0, "ack-only")] {
            var c = conversation()
            serverClosesClientAcks(&c)
            c.duplicateLast(after: delay)
            let report = try analyze(c, extra: [(10.301, udpFrame())])
            #expect(report.duplicates == duplicates, "delay \(delay)")
            #expect(try report.onlyFlow().findings
                == [FindingJSON("close-wait", "client", since: T(0.301), seconds: D(10), activity: activity)], "delay \(delay)")
        }
    }

    // MARK: port reuse

    @Test("port reuse: a SYN with another ISN starts flow 2; flow 1's close-wait ends at that SYN")
    func portReuse() throws {
        var first = conversation()
        serverClosesClientAcks(&first)  // client CLOSE_WAIT since 0.301
        var second = conversation(clientISN: 900_000, serverISN: 700_000)
        exchange(&second, base: 8.301)
        clientFirstClose(&second, base: 9.0)
        let report = try analyze(writer: Conversation.pcapWriter([first, second]))

        #expect(report.flows.count == 2)
        guard report.flows.count == 2 else { return }
        let one = report.flows[0], two = report.flows[1]
        #expect(one.id == 1)
        #expect(two.id == 2)
        #expect(one.close == "half-closed")
        #expect(one.client == EndpointJSON(path: [EST, CW]))
        #expect(one.server == EndpointJSON(finAt: T(0.3), finAckedAt: T(0.301), path: [EST, FW1, FW2]))
        // Ends at the new SYN (8.301), not at the capture end (9.301).
        #expect(one.findings == [FindingJSON("close-wait", "client", since: T(0.301), seconds: D(8), activity: "silent")])

        #expect(two.roles == "handshake")
        #expect(two.firstSeen == T(8.301))
        #expect(two.close == "client-first")
        #expect(two.client == EndpointJSON(finAt: T(9.0), finAckedAt: T(9.001), path: clientFirstClientPath))
        #expect(two.server == EndpointJSON(finAt: T(9.3), finAckedAt: T(9.301), path: clientFirstServerPath))
        #expect(two.findings == [])
        #expect(report.sourceEnd == T(9.301))
    }

    @Test("a retransmitted SYN with the same ISN does not start a new flow")
    func retransmittedSynSameFlow() throws {
        var c = conversation()
        c.syn(at: 0, delivered: false)
        c.syn(at: 1.0, seq: .value(1000))
        c.synAck(at: 1.0001)
        c.ack(.client, at: 1.0002)
        c.data(.client, bytes: 100, at: 1.1)
        c.ack(.server, at: 1.11)
        let report = try analyze(c)
        let flow = try report.onlyFlow()
        #expect(flow.roles == "handshake")
        #expect(flow.firstSeen == T(0))
        #expect(flow.close == "open")
        #expect(flow.client == EndpointJSON(path: [EST]))
        #expect(flow.server == EndpointJSON(path: [EST]))
    }

    @Test("SYN not captured: a SYN repeated with the SYN+ACK's ack − 1 is a retransmission")
    func retransmittedSynIsnFromSynAck() throws {
        var c = conversation()
        c.syn(at: 0)
        c.synAck(at: 0.0001, delivered: false)
        c.syn(at: 1.0, seq: .value(1000))
        c.synAck(at: 1.0001, seq: .value(5000))
        c.ack(.client, at: 1.0002)
        c.fin(.client, at: 2.0)
        c.fin(.server, at: 2.001)
        c.ack(.client, at: 2.002)
        var writer = c.pcapWriter()
        writer.records.removeFirst()  // the first SYN was not captured
        let report = try analyze(writer: writer)
        let flow = try report.onlyFlow()
        #expect(flow.close == "client-first")
        #expect(flow.threeWay == true)
        #expect(flow.client.path == [EST, FW1, TW])
        #expect(flow.server.path == [EST, CW, LA, CLOSED])
    }

    @Test("a SYN on a flow first seen mid-connection starts a new flow")
    func synOnMidConnectionFlow() throws {
        var mid = conversation(clientISN: 1000, serverISN: 5000)
        mid.data(.client, bytes: 100, at: 0)
        mid.ack(.server, at: 0.001)
        var fresh = conversation(clientISN: 50_000, serverISN: 60_000)
        exchange(&fresh, base: 1.0)
        let report = try analyze(writer: Conversation.pcapWriter([mid, fresh]))
        #expect(report.flows.count == 2)
        guard report.flows.count == 2 else { return }
        #expect(report.flows[0].roles == "inferred")
        #expect(report.flows[0].lastSeen == T(0.001))
        #expect(report.flows[1].roles == "handshake")
        #expect(report.flows[1].firstSeen == T(1.0))
        #expect(report.flows[1].client == EndpointJSON(path: [EST]))
    }

    // MARK: 32-bit wraparound

    @Test("sequence numbers wrap past 2^32 during the exchange; client-first close still recognised")
    func wraparoundClientFirst() throws {
        var c = conversation(clientISN: 0xFFFF_FFF0, serverISN: 0xFFFF_FFF8)
        exchange(&c)  // client 100 bytes and server 200 bytes both wrap
        clientFirstClose(&c)
        #expect(c.frames.contains { $0.flags.contains(.fin) && $0.sequence < 0x1000 })
        let flow = try analyze(c).onlyFlow()
        #expect(flow.close == "client-first")
        #expect(flow.threeWay == false)
        #expect(flow.client == EndpointJSON(finAt: T(1.0), finAckedAt: T(1.001), path: clientFirstClientPath))
        #expect(flow.server == EndpointJSON(finAt: T(1.3), finAckedAt: T(1.301), path: clientFirstServerPath))
    }

    @Test("a FIN at seq 0xFFFFFFFF is acknowledged by ack 0")
    func finAtTopOfSequenceSpace() throws {
        var c = conversation(clientISN: 0xFFFF_FFFE, serverISN: 0xFFFF_FFFE)
        c.handshake(at: 0)
        c.fin(.server, at: 0.3)  // seq 0xFFFFFFFF: F + 1 = 0
        c.ack(.client, at: 0.301)
        #expect(c.frames.last?.acknowledgment == 0)
        let flow = try analyze(c, extra: [(10.301, udpFrame())]).onlyFlow()
        #expect(flow.close == "half-closed")
        #expect(flow.server == EndpointJSON(finAt: T(0.3), finAckedAt: T(0.301), path: [EST, FW1, FW2]))
        #expect(flow.client == EndpointJSON(path: [EST, CW]))
        #expect(flow.findings == [FindingJSON("close-wait", "client", since: T(0.301), seconds: D(10), activity: "silent")])
    }

    @Test("an ack just below F + 1 across the wrap does not acknowledge the FIN")
    func wraparoundAckBelowFin() throws {
        var c = conversation(clientISN: 0xFFFF_FFFE, serverISN: 1000)
        c.handshake(at: 0)
        c.fin(.client, at: 1.0, delivered: false)  // seq 0xFFFFFFFF
        c.ack(.server, at: 1.001)                  // ack 0xFFFFFFFF: not F + 1
        #expect(c.frames.last?.acknowledgment == 0xFFFF_FFFF)
        let flow = try analyze(c, extra: [(7.0, udpFrame())]).onlyFlow()
        #expect(flow.client == EndpointJSON(finAt: T(1.0), finAckedAt: nil, path: [EST, FW1]))
        #expect(flow.findings == [FindingJSON("fin-unacked", "client", since: T(1.0), seconds: D(6), activity: "ack-only")])
    }

    // MARK: mid-connection

    @Test("mid-connection: the port below 1024 is the server even when it sent the first segment")
    func midConnectionWellKnownPort() throws {
        var c = conversation(client: "10.0.0.1:40000", server: "10.0.0.2:80")
        c.data(.server, bytes: 100, at: 0)
        c.ack(.client, at: 0.001)
        clientFirstClose(&c)
        let flow = try analyze(c).onlyFlow()
        #expect(flow.roles == "inferred")
        #expect(flow.clientAddress == "10.0.0.1:40000")
        #expect(flow.serverAddress == "10.0.0.2:80")
        #expect(flow.close == "client-first")
        #expect(flow.client == EndpointJSON(finAt: T(1.0), finAckedAt: T(1.001), path: clientFirstClientPath))
        #expect(flow.server == EndpointJSON(finAt: T(1.3), finAckedAt: T(1.301), path: clientFirstServerPath))
    }

    @Test("mid-connection: with both ports ≥ 1024 the lower port is the server")
    func midConnectionLowerPort() throws {
        var c = conversation(client: "10.0.0.1:50000", server: "10.0.0.2:8080")
        c.data(.server, bytes: 100, at: 0)  // first segment goes to the client
        c.ack(.client, at: 0.001)
        let flow = try analyze(c).onlyFlow()
        #expect(flow.roles == "inferred")
        #expect(flow.clientAddress == "10.0.0.1:50000")
        #expect(flow.serverAddress == "10.0.0.2:8080")
        #expect(flow.close == "open")
        #expect(flow.client == EndpointJSON(path: [EST]))
        #expect(flow.server == EndpointJSON(path: [EST]))
    }

    @Test("mid-connection: with equal ports the destination of the first segment is the server", arguments: [false, true])
    func midConnectionEqualPorts(firstFromHigherIP: Bool) throws {
        // The server is whichever host receives the first segment, whatever its address.
        let server: HostPort = firstFromHigherIP ? "10.0.0.1:7000" : "10.0.0.2:7000"
        let client: HostPort = firstFromHigherIP ? "10.0.0.2:7000" : "10.0.0.1:7000"
        var c = conversation(client: client, server: server)
        c.data(.client, bytes: 10, at: 0)
        c.data(.server, bytes: 10, at: 0.001)
        c.fin(.server, at: 1.0)
        c.ack(.client, at: 1.001)
        let flow = try analyze(c, extra: [(11.001, udpFrame())]).onlyFlow()
        #expect(flow.roles == "inferred")
        #expect(flow.clientAddress == client.description)
        #expect(flow.serverAddress == server.description)
        #expect(flow.close == "half-closed")
        #expect(flow.client == EndpointJSON(path: [EST, CW]))
        #expect(flow.server == EndpointJSON(finAt: T(1.0), finAckedAt: T(1.001), path: [EST, FW1, FW2]))
        #expect(flow.findings == [FindingJSON("close-wait", "client", since: T(1.001), seconds: D(10), activity: "silent")])
    }

    // MARK: never established

    @Test("never established: SYN only")
    func synOnly() throws {
        var c = conversation()
        c.syn(at: 0)
        let report = try analyze(c)
        let flow = try report.onlyFlow()
        #expect(flow.roles == "handshake")
        #expect(flow.clientAddress == "10.0.0.1:40000")
        #expect(flow.close == "open")
        #expect(flow.resetByIsNull)
        #expect(flow.client == EndpointJSON(path: [SYN_SENT]))
        #expect(flow.server == EndpointJSON(path: [], state: nil))
        let server = (flow.raw["endpoints"] as? [String: Any])?["server"] as? [String: Any] ?? [:]
        #expect(jsonIsNull(server, "state"))
    }

    @Test("never established: SYN and SYN+ACK without the final ACK")
    func synAndSynAck() throws {
        var c = conversation()
        c.syn(at: 0)
        c.synAck(at: 0.0001)
        let flow = try analyze(c).onlyFlow()
        #expect(flow.roles == "handshake")
        #expect(flow.close == "open")
        #expect(flow.client == EndpointJSON(path: [SYN_SENT]))
        #expect(flow.server == EndpointJSON(path: [SYN_RECEIVED]))
    }

    @Test("never established: SYN answered by RST+ACK (connection refused)")
    func synRefused() throws {
        var c = conversation()
        c.syn(at: 0)
        c.segment(.server, flags: [.rst, .ack], seq: .value(0), ack: .received, at: 0.0001)
        #expect(c.frames.last?.acknowledgment == 1001)
        let flow = try analyze(c).onlyFlow()
        #expect(flow.close == "reset")
        #expect(flow.resetBy == "server")
        #expect(flow.ignoredResets == 0)
        #expect(flow.client == EndpointJSON(path: [SYN_SENT, CLOSED]))
        #expect(flow.server == EndpointJSON(resetAt: T(0.0001), path: [CLOSED]))
    }

    @Test("an RST in SYN_SENT whose ack does not cover the SYN is ignored", arguments: [true, false])
    func synSentResetBadAck(withAckFlag: Bool) throws {
        var c = conversation()
        c.syn(at: 0)
        if withAckFlag {
            c.segment(.server, flags: [.rst, .ack], seq: .value(0), ack: .relative(-1), at: 0.0001)  // ack = ISN
        } else {
            c.segment(.server, flags: .rst, seq: .value(0), ack: .none, at: 0.0001)
        }
        let flow = try analyze(c).onlyFlow()
        #expect(flow.ignoredResets == 1)
        #expect(flow.close == "open")
        #expect(flow.resetByIsNull)
        #expect(flow.client == EndpointJSON(path: [SYN_SENT]))
        #expect(flow.server == EndpointJSON(path: [], state: nil))
    }

    @Test("established without a captured SYN+ACK: a client segment acknowledging something")
    func establishedWithoutSynAck() throws {
        var c = conversation()
        c.syn(at: 0)
        c.synAck(at: 0.0001)
        c.ack(.client, at: 0.0002)
        c.data(.client, bytes: 100, at: 0.1)
        c.ack(.server, at: 0.11)
        clientFirstClose(&c)
        var writer = c.pcapWriter()
        writer.records.remove(at: 1)  // the SYN+ACK was not captured
        let flow = try analyze(writer: writer).onlyFlow()
        #expect(flow.clientAddress == "10.0.0.1:40000")
        #expect(flow.close == "client-first")
        #expect(flow.client.path == clientFirstClientPath)
        #expect(flow.server.path == clientFirstServerPath)
    }
}
