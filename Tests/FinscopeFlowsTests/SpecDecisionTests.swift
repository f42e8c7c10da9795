import Foundation
import Testing
import FinscopeWire
import FinscopeFindings
import FinscopeAnalysis
import FinscopeFlows
import FinscopeTestSupport

// Issue 10, defect 6: where finscope disagreed with SPEC §2. Each case is a small capture
// written to a file and read through `OfflineAnalysis` (the real reading path); the report
// is checked typed. The packet-level reading of each capture was checked with tshark
// (`tshark -r FILE -o tcp.relative_sequence_numbers:FALSE`), quoted in the comments.

private func ns(_ offset: Double) -> Nanoseconds { CaptureTime(epoch).adding(offset).totalNanoseconds }

private func analyzeTyped(_ writer: PcapWriter) throws -> AnalysisResult {
    let dir = try TemporaryDirectory()
    return try withExtendedLifetime(dir) {
        let url = dir.url(for: "capture.pcap")
        try writer.write(to: url)
        // FINSCOPE_KEEP_CAPTURES=DIR keeps the file, to look at it with tshark.
        if let keep = ProcessInfo.processInfo.environment["FINSCOPE_KEEP_CAPTURES"] {
            try? writer.write(to: URL(fileURLWithPath: keep).appendingPathComponent("\(Test.current?.name ?? "capture").pcap"))
        }
        return try OfflineAnalysis.analyze(paths: [url.path])
    }
}

private func onlyFlow(_ result: AnalysisResult, sourceLocation: SourceLocation = #_sourceLocation) throws -> FlowReport {
    #expect(result.flows.count == 1, "flows: \(result.flows.count)", sourceLocation: sourceLocation)
    return try #require(result.flows.first, sourceLocation: sourceLocation)
}

@Suite("SPEC §2 decisions (issue 10)")
struct SpecDecisionTests {
    /// After the first accepted RST nothing changes but `resetAt`: a later RST, even one
    /// outside the window, is not an ignored RST.
    ///
    /// tshark -o tcp.relative_sequence_numbers:FALSE: frames 1–7 are the handshake and the
    /// exchange (frame 5: the server's last ack, 1101, window 65535; frame 7: the client's,
    /// 5201; no window scaling: the SYN and SYN+ACK carry no option), then
    ///    8 1.000000 10.0.0.1 → 10.0.0.2 40000 → 80 [RST] Seq=1101
    ///    9 1.100000 10.0.0.1 → 10.0.0.2 40000 → 80 [RST] Seq=2001101
    ///   10 1.200000 10.0.0.2 → 10.0.0.1 80 → 40000 [RST] Seq=5201
    /// Frame 9 is 2,000,000 past the server's ack: outside one window, so it would be
    /// ignored were it the first; it comes after an accepted RST (frame 8).
    @Test("RSTs after the first accepted RST are not counted in ignoredResets")
    func resetsAfterTheFirst() throws {
        var c = established()
        c.rst(.client, at: 1.0)                                   // seq 1101: accepted
        c.rst(.client, at: 1.1, seq: .value(1101 + 2_000_000))    // far outside the window
        c.rst(.server, at: 1.2)                                   // seq 5201, at the client's ack
        let flow = try onlyFlow(analyzeTyped(c.pcapWriter()))
        #expect(flow.ignoredResets == 0)
        #expect(flow.close == .reset)
        #expect(flow.resetBy == .client)
        #expect(flow.clientEndpoint.resetAt == ns(1.0))
        // The server's own RST is in its window: its `resetAt` is the one thing that changes.
        #expect(flow.serverEndpoint.resetAt == ns(1.2))
        #expect(flow.clientEndpoint.path == [.established, .closed])
        #expect(flow.serverEndpoint.path == [.established, .closed])
    }

    /// A server that answered twice with different ISNs (say, a retransmitted SYN reached
    /// a listener that had dropped the first half-open connection): the client acknowledges
    /// the first SYN+ACK, and the conversation then runs on the first ISN.
    ///
    /// tshark -o tcp.relative_sequence_numbers:FALSE:
    ///    1 0.000000 10.0.0.1 → 10.0.0.2 40000 → 80 [SYN] Seq=1000
    ///    2 0.000100 10.0.0.2 → 10.0.0.1 80 → 40000 [SYN, ACK] Seq=5000 Ack=1001
    ///    3 0.000200 10.0.0.2 → 10.0.0.1 [TCP Previous segment not captured] [TCP Port numbers reused]
    ///               80 → 40000 [SYN, ACK] Seq=9000 Ack=1001
    ///    4 0.000300 10.0.0.1 → 10.0.0.2 40000 → 80 [ACK] Seq=1001 Ack=5001
    ///               (SEQ/ACK analysis: "This is an ACK to the segment in frame: 2")
    ///    5 0.100000 client [PSH, ACK] Seq=1001 Ack=5001 Len=100;  6 server [ACK] Seq=5001 Ack=1101
    ///    7 0.200000 server [TCP Retransmission] [PSH, ACK] Seq=5001 Len=200;  8 client [ACK] Ack=5201
    ///    9 1.000000 server [TCP Retransmission] [FIN, ACK] Seq=5201 Ack=1101
    ///   10 1.001000 client [ACK] Seq=1101 Ack=5202
    ///   11 1.300000 client [FIN, ACK] Seq=1101 Ack=5202
    ///   12 1.301000 server [ACK] Seq=5202 Ack=1102
    /// tshark confirms frame 4 acknowledges frame 2 (the first SYN+ACK). It takes the last
    /// SYN+ACK's ISN as the server's, so it calls frames 7 and 9 retransmissions (they sit
    /// below 9001); the client's acks 5201/5202 show the server's data and FIN were received
    /// on the first ISN. Per SPEC §2 frame 4 establishes the connection; the server's FIN is
    /// F = 5201, acknowledged by frame 10 (5202 ≥ F + 1) before the client's FIN (frame 11,
    /// whose ack 5202 acknowledges it): server-first.
    @Test("two SYN+ACKs with different ISNs, the client acks the first: established, data both ways, server-first")
    func twoSynAcks() throws {
        var c = conversation()
        c.syn(at: 0)
        c.synAck(at: 0.0001)
        let second = Conversation.Frame(time: c.start.adding(0.0002), side: .server, sequence: 9000, acknowledgment: 1001,
                                        flags: [.syn, .ack])
        c.ack(.client, at: 0.0003)
        #expect(c.frames.last?.acknowledgment == 5001)
        c.data(.client, bytes: 100, at: 0.1)
        c.ack(.server, at: 0.11)
        c.data(.server, bytes: 200, at: 0.2)
        c.ack(.client, at: 0.21)
        c.fin(.server, at: 1.0)
        c.ack(.client, at: 1.001)
        c.fin(.client, at: 1.3)
        c.ack(.server, at: 1.301)
        var writer = c.pcapWriter()
        writer.append(c.bytes(of: second, link: .ethernet), time: second.time)
        writer.sortByTime()
        #expect(writer.records.count == 12)

        let flow = try onlyFlow(analyzeTyped(writer))
        #expect(flow.roles == .handshake)
        #expect(flow.close == .serverFirst)
        #expect(!flow.threeWay)
        #expect(flow.resetBy == nil)
        #expect(flow.serverEndpoint.path == [.established, .finWait1, .finWait2, .timeWait])
        #expect(flow.clientEndpoint.path == [.established, .closeWait, .lastAck, .closed])
        #expect(flow.serverEndpoint.finAt == ns(1.0))
        #expect(flow.serverEndpoint.finAckedAt == ns(1.001))
        #expect(flow.clientEndpoint.finAt == ns(1.3))
        #expect(flow.clientEndpoint.finAckedAt == ns(1.301))
        #expect(flow.clientEndpoint.finRetransmits == 0 && flow.serverEndpoint.finRetransmits == 0)
        #expect(flow.findings.isEmpty)
        #expect(flow.segments == 12)
        // Transitions at the causing segments: the client's ack of the FIN (1.001) and so on.
        #expect(flow.transitions.filter { $0.endpoint == .client }.map(\.time) == [ns(1.001), ns(1.3), ns(1.301)])
        #expect(flow.transitions.filter { $0.endpoint == .server }.map(\.time) == [ns(1.0), ns(1.001), ns(1.3)])
    }

    /// The same with the second SYN+ACK acknowledged instead: also established (either
    /// SYN+ACK's ack establishes), and a client ack of neither (ISN + 2) does not.
    @Test("the client's ACK of the second SYN+ACK establishes too")
    func secondSynAckAcknowledged() throws {
        var c = conversation(serverISN: 9000)
        c.syn(at: 0)
        let first = Conversation.Frame(time: c.start.adding(0.0001), side: .server, sequence: 5000, acknowledgment: 1001,
                                       flags: [.syn, .ack])
        c.synAck(at: 0.0002)   // ISN 9000
        c.ack(.client, at: 0.0003)
        #expect(c.frames.last?.acknowledgment == 9001)
        c.fin(.client, at: 1.0)
        c.ack(.server, at: 1.001)
        var writer = c.pcapWriter()
        writer.append(c.bytes(of: first, link: .ethernet), time: first.time)
        writer.sortByTime()
        let flow = try onlyFlow(analyzeTyped(writer))
        #expect(flow.close == .halfClosed)
        #expect(flow.clientEndpoint.path == [.established, .finWait1, .finWait2])
        #expect(flow.serverEndpoint.path == [.established, .closeWait])
    }

    /// RFC 9293 §3.10.7 checks RST before SYN, and Linux's tcp_validate_incoming likewise:
    /// a segment with both is an RST. It is neither a new connection (port reuse) nor an ISN.
    ///
    /// tshark -o tcp.relative_sequence_numbers:FALSE:
    ///    7 0.210000 10.0.0.1 → 10.0.0.2 40000 → 80 [ACK] Seq=1101 Ack=5201   (the server's last ack: 1101)
    ///    8 1.000000 10.0.0.1 → 10.0.0.2 [TCP Port numbers reused] 40000 → 80 [SYN, RST] Seq=424242
    ///    9 1.100000 10.0.0.1 → 10.0.0.2 [TCP Port numbers reused] 40000 → 80 [SYN, RST] Seq=1101
    /// tshark's port-reuse heuristic looks at the SYN bit alone; finscope does not follow it
    /// here. Seq 424242 is not the client's ISN (1000): as a SYN it would start a new flow;
    /// as an RST it is judged against the server's ack 1101 and window 65535 (no scaling:
    /// neither SYN carried the option) — 423,141 beyond, outside: ignored. Frame 9 sits at
    /// the ack: accepted.
    @Test("a segment with SYN and RST is an RST")
    func synRstIsReset() throws {
        var c = established()
        c.segment(.client, flags: [.syn, .rst], seq: .value(424_242), ack: .none, at: 1.0)
        c.segment(.client, flags: [.syn, .rst], seq: .value(1101), ack: .none, at: 1.1)
        let result = try analyzeTyped(c.pcapWriter())
        let flow = try onlyFlow(result)
        #expect(flow.ignoredResets == 1)
        #expect(flow.close == .reset)
        #expect(flow.resetBy == .client)
        #expect(flow.clientEndpoint.resetAt == ns(1.1))
        #expect(flow.clientEndpoint.path == [.established, .closed])
        #expect(flow.serverEndpoint.path == [.established, .closed])
        #expect(flow.segments == 9)
        #expect(flow.end.reason == .captureEnd)
    }

    /// A SYN+RST as the first segment of a 4-tuple is no handshake: the roles are inferred
    /// (SPEC §1: the port below 1024 serves), and the RST (window unknown) is accepted.
    @Test("a SYN+RST first seen starts no handshake")
    func synRstFirst() throws {
        var c = conversation()
        c.segment(.client, flags: [.syn, .rst], seq: .value(1000), ack: .none, at: 0)
        let flow = try onlyFlow(analyzeTyped(c.pcapWriter()))
        #expect(flow.roles == .inferred)
        #expect(flow.server.port == 80)
        #expect(flow.close == .reset)
        #expect(flow.resetBy == .client)
        #expect(flow.clientEndpoint.path == [.established, .closed])
    }
}
