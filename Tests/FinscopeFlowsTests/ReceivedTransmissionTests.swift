import Foundation
import Testing
import FinscopeWire
import FinscopeFindings
import FinscopeAnalysis
import FinscopeCapture
import FinscopeFlows
import FinscopeReport
import FinscopeTestSupport

/// SPEC §1/§2: the FIN transmission an endpoint *received* (the last one before its first
/// acknowledgement) decides the active closer's path, not the first transmission.
@Suite("Received FIN transmission")
struct ReceivedTransmissionTests {
    @Test("server FIN lost and retransmitted after the server acked the client's FIN: client FIN_WAIT_2, server CLOSING → crossed")
    func serverFinLostThenRetransmitted() throws {
        var c = established()
        c.fin(.client, at: 1.0)
        // Sent before the client's FIN arrived (its ack does not cover it) and lost.
        c.segment(.server, flags: [.fin, .ack], ack: .relative(-1), at: 1.0005, delivered: false)
        c.ack(.server, at: 1.001)                       // first ack of the client's FIN
        c.retransmitLast(.server, at: 1.2, refreshAck: true)
        c.ack(.client, at: 1.201)
        let flow = try analyze(c).onlyFlow()

        // Client: the server acked (1.001) before the FIN transmission the client received
        // (1.2) → FIN_WAIT_2 → TIME_WAIT. Server: the client's FIN (1.0) came before the
        // client's ack (1.201) → CLOSING → TIME_WAIT. Using the first transmission (1.0005)
        // instead would wrongly make both CLOSING (simultaneous).
        #expect(flow.close == "crossed")
        #expect(flow.threeWay == false)
        #expect(flow.client == EndpointJSON(finAt: T(1.0), finAckedAt: T(1.001), path: [EST, FW1, FW2, TW]))
        #expect(flow.server == EndpointJSON(finAt: T(1.0005), finAckedAt: T(1.201), finRetransmits: 1,
                                            path: [EST, FW1, CLOSING, TW]))
    }

    @Test("three-way close after the first FIN was retransmitted")
    func threeWayAfterRetransmittedFin() throws {
        var c = established()
        c.fin(.client, at: 1.0, delivered: false)
        c.retransmitLast(.client, at: 1.2)
        c.fin(.server, at: 1.201)
        c.ack(.client, at: 1.202)
        let flow = try analyze(c).onlyFlow()
        #expect(flow.close == "client-first")
        #expect(flow.threeWay == true)
        #expect(flow.client == EndpointJSON(finAt: T(1.0), finAckedAt: T(1.201), finRetransmits: 1, path: [EST, FW1, TW]))
        #expect(flow.server == EndpointJSON(finAt: T(1.201), finAckedAt: T(1.202), path: [EST, CW, LA, CLOSED]))
    }

    @Test("passive closer's CLOSE_WAIT starts at its first acknowledgement, not at a later one")
    func closeWaitAtFirstAck() throws {
        var c = established()
        c.fin(.server, at: 1.0, delivered: false)
        c.retransmitLast(.server, at: 1.4)
        c.ack(.client, at: 1.401)
        c.ack(.client, at: 2.0, window: 30000)
        let flow = try analyze(c, extra: [(11.401, udpFrame())]).onlyFlow()
        #expect(flow.server == EndpointJSON(finAt: T(1.0), finAckedAt: T(1.401), finRetransmits: 1, path: [EST, FW1, FW2]))
        #expect(flow.client == EndpointJSON(path: [EST, CW]))
        #expect(flow.findings == [FindingJSON("close-wait", "client", since: T(1.401), seconds: D(10), activity: "ack-only")])
    }

    @Test("never established: the server resets after its SYN+ACK")
    func resetAfterSynAck() throws {
        var c = conversation()
        c.syn(at: 0)
        c.synAck(at: 0.0001)
        c.rst(.server, at: 0.5, withAck: true)  // seq ISN + 1, ack ISN + 1 (acknowledges the SYN)
        let flow = try analyze(c).onlyFlow()
        #expect(flow.close == "reset")
        #expect(flow.resetBy == "server")
        #expect(flow.client == EndpointJSON(path: [SYN_SENT, CLOSED]))
        #expect(flow.server == EndpointJSON(resetAt: T(0.5), path: [SYN_RECEIVED, CLOSED]))
    }
}

/// Payload lengths with IPv4 options, TCP options and IPv6 extension headers, end to end.
@Suite("Header options end to end")
struct HeaderOptionTests {
    /// Client-first close where the client's FIN carries 100 bytes and the server first acks
    /// only 50 of them: the FIN is acknowledged at 1.2, not 1.001.
    func conversationWithFinPayload(client: HostPort, server: HostPort) -> Conversation {
        var c = established(client: client, server: server)
        c.fin(.client, at: 1.0, payload: 100)
        c.segment(.server, flags: .ack, ack: .relative(-51), at: 1.001)
        c.ack(.server, at: 1.2)
        c.fin(.server, at: 1.3)
        c.ack(.client, at: 1.301)
        return c
    }

    func check(_ report: Report, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let flow = try report.onlyFlow(sourceLocation: sourceLocation)
        #expect(report.tcpSegments == 12, sourceLocation: sourceLocation)
        #expect(flow.close == "client-first", sourceLocation: sourceLocation)
        #expect(flow.client == EndpointJSON(finAt: T(1.0), finAckedAt: T(1.2), path: clientFirstClientPath),
                sourceLocation: sourceLocation)
        #expect(flow.server == EndpointJSON(finAt: T(1.3), finAckedAt: T(1.301), path: clientFirstServerPath),
                sourceLocation: sourceLocation)
    }

    @Test("IPv4 options and TCP timestamps on every segment")
    func ipv4Options() throws {
        let c = conversationWithFinPayload(client: "10.0.0.1:40000", server: "10.0.0.2:80")
        var writer = PcapWriter(linkType: 1)
        for frame in c.frames {
            let from = c.endpoint(frame.side), to = c.endpoint(frame.side.peer)
            let tcp = TCPHeader(sourcePort: from.port, destinationPort: to.port, sequence: frame.sequence,
                                acknowledgment: frame.acknowledgment, flags: frame.flags, window: frame.window,
                                options: frame.options + TCPOption.nop + TCPOption.nop + TCPOption.timestamps(value: 7, echo: 9),
                                payload: frame.payload)
            let ip = IPv4Header(source: from.address, destination: to.address, options: [0x94, 0x04, 0x00, 0x00])  // router alert
            writer.append(FrameBuilder.ethernet(etherType: EtherType.ipv4, payload: ip.packet(payload: tcp.bytes)), time: frame.time)
        }
        try check(try analyze(writer: writer))
    }

    @Test("IPv6 with hop-by-hop, routing and destination-options headers on every segment")
    func ipv6ExtensionHeaders() throws {
        let c = conversationWithFinPayload(client: "[fd00::1]:40000", server: "[fd00::2]:80")
        var writer = PcapWriter(linkType: 1)
        for frame in c.frames {
            let from = c.endpoint(frame.side), to = c.endpoint(frame.side.peer)
            let tcp = TCPHeader(sourcePort: from.port, destinationPort: to.port, sequence: frame.sequence,
                                acknowledgment: frame.acknowledgment, flags: frame.flags, window: frame.window,
                                options: frame.options, payload: frame.payload)
            let ip = IPv6Header(source: from.address, destination: to.address,
                                extensionHeaders: [.hopByHop(), .routing(type: 4, segmentsLeft: 0), .destinationOptions()])
            writer.append(FrameBuilder.ethernet(etherType: EtherType.ipv6, payload: ip.packet(payload: tcp.bytes)), time: frame.time)
        }
        try check(try analyze(writer: writer))
    }
}
