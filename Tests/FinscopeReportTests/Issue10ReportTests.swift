import FinscopeWire
import FinscopeFindings
import FinscopeAnalysis
import FinscopeCapture
import FinscopeFlows
import FinscopeReport
import FinscopeTestSupport
import Foundation
import Testing

private func ns(_ offset: Double) -> Nanoseconds { CaptureTime(1_700_000_000).adding(offset).totalNanoseconds }

/// JSON seconds → nanoseconds, rounded to the JSON's microseconds.
private func micros(_ value: Any?) -> Int64? {
    guard let number = value as? NSNumber else { return nil }
    return Int64((number.doubleValue * 1e6).rounded())
}

/// FINSCOPE_KEEP_CAPTURES=DIR keeps a copy of a test's capture (to read it with tshark).
private func keep(_ file: URL) {
    guard let folder = ProcessInfo.processInfo.environment["FINSCOPE_KEEP_CAPTURES"] else { return }
    let target = URL(fileURLWithPath: folder).appendingPathComponent(file.lastPathComponent)
    try? FileManager.default.removeItem(at: target)
    try? FileManager.default.copyItem(at: file, to: target)
}

/// Issue 10, defects 3 and 4: the ladder and the HTML timeline draw the analysis's own
/// transitions, so they cannot contradict the JSON.
@Suite struct Issue10ReportTests {
    func ladderModel(_ path: String, flow id: Int) throws -> (Ladder.Model, FlowReport, AnalysisResult) {
        let result = try analyze([path])
        let flow = try #require(result.flows.first { $0.id == id })
        let packets = try FlowPackets.segments(paths: [path], options: AnalysisOptions(), flows: [flow])
        let segments = (packets[id] ?? []).map { LadderSegment(time: $0.time, segment: $0.segment, placement: $0.placement) }
        return (Ladder.model(flow, segments: segments), flow, result)
    }

    /// The client's ACK of the server's FIN is captured before the FIN (a capture point
    /// whose queues reorder), followed by an older ACK and the FIN; a later ACK repeats the
    /// acknowledgement (F = 5201: the client's acks of 5202 cover the FIN, 5201 does not).
    /// Whatever segment takes the CLOSE_WAIT step, the ladder, the transitions and the
    /// JSON's finAckedAt must name the same one.
    ///
    /// tshark -o tcp.relative_sequence_numbers:FALSE:
    ///    8 0.999500 10.0.0.1 → 10.0.0.2 [TCP ACKed unseen segment] 40000 → 80 [ACK] Seq=1101 Ack=5202
    ///    9 0.999700 10.0.0.1 → 10.0.0.2 40000 → 80 [ACK] Seq=1101 Ack=5201
    ///   10 1.000000 10.0.0.2 → 10.0.0.1 80 → 40000 [FIN, ACK] Seq=5201 Ack=1101
    ///   11 1.001000 10.0.0.1 → 10.0.0.2 40000 → 80 [ACK] Seq=1101 Ack=5202
    ///
    /// Before the restructure the ladder placed CLOSE_WAIT by its own rule (the client's last
    /// segment before the FIN: frame 9, 0.9997) while the analysis, which looked only at the
    /// client's latest ack when the FIN appeared (frame 9's 5201), set finAckedAt at frame
    /// 11 (1.001): the diagram and the JSON disagreed.
    @Test("ACK of the FIN captured before the FIN, then an older ACK: the ladder's CLOSE_WAIT row is the JSON's finAckedAt")
    func closeWaitRowIsFinAckedAt() throws {
        let directory = try TemporaryDirectory()
        var c = Conversation(client: "10.0.0.1:40000", server: "10.0.0.2:80", start: 1_700_000_000,
                             clientISN: 1000, serverISN: 5000)
        c.handshake(at: 0)
        c.data(.client, bytes: 100, at: 0.1)
        c.ack(.server, at: 0.11)
        c.data(.server, bytes: 200, at: 0.2)
        c.ack(.client, at: 0.21)
        #expect(c.nextSequence(.server) == 5201)
        c.ack(.client, at: 0.9995, ack: .value(5202))
        c.ack(.client, at: 0.9997, ack: .value(5201))
        c.fin(.server, at: 1.0)
        c.ack(.client, at: 1.001)
        #expect(c.frames.last?.acknowledgment == 5202)
        let file = try c.writePcap(to: directory.url(for: "early-ack.pcap"))
        keep(file)

        let (model, flow, result) = try ladderModel(file.path, flow: 1)
        let json = try jsonObject(JSONReport.render(result))
        let flowJSON = try #require((json["flows"] as? [Any])?.first as? [String: Any])
        let server = try #require((flowJSON["endpoints"] as? [String: Any])?["server"] as? [String: Any])
        let finAckedAt = try #require(micros(server["finAckedAt"]), "the server's FIN is acknowledged")

        let closeWaitRows = model.rows.filter { $0.clientStates.contains(.closeWait) }
        #expect(closeWaitRows.count == 1)
        let row = try #require(closeWaitRows.first)
        #expect(row.direction == .toServer)
        #expect(row.time / 1000 == finAckedAt, "ladder CLOSE_WAIT row at \(row.time), JSON finAckedAt \(finAckedAt) µs")
        #expect(flow.serverEndpoint.finAckedAt == row.time)
        let transition = try #require(flow.transitions.first { $0.endpoint == .client && $0.state == .closeWait })
        #expect(transition.time == row.time)
        // SPEC §1/§2: CLOSE_WAIT at the client's first segment acknowledging the FIN in its
        // sending order, frame 8 (0.9995), although the FIN itself is captured later.
        #expect(row.time == ns(0.9995))
        #expect(flow.clientEndpoint.path == [.established, .closeWait])
        #expect(Ladder.columnStates(model).client == flow.clientEndpoint.path)
        #expect(Ladder.columnStates(model).server == flow.serverEndpoint.path)
    }

    /// A client stuck in CLOSE_WAIT whose 4-tuple is reused by a new connection (a SYN with
    /// another ISN): the old flow ends at that SYN (SPEC §4/§5), and so does its CLOSE_WAIT
    /// on the timeline, not at the capture's end.
    ///
    /// tshark -o tcp.relative_sequence_numbers:FALSE:
    ///    8 1.000000 10.0.0.2 → 10.0.0.1 80 → 40000 [FIN, ACK] Seq=5201 Ack=1101
    ///    9 1.001000 10.0.0.1 → 10.0.0.2 40000 → 80 [ACK] Seq=1101 Ack=5202
    ///   10 20.000000 10.0.0.1 → 10.0.0.2 [TCP Port numbers reused] 40000 → 80 [SYN] Seq=777000
    ///   11 20.000100 10.0.0.2 → 10.0.0.1 80 → 40000 [SYN, ACK] Seq=90000 Ack=777001
    ///   12 20.000200 10.0.0.1 → 10.0.0.2 40000 → 80 [ACK] Seq=777001 Ack=90001
    ///   13 60.000000 10.0.0.7 → 10.0.0.9 50000 → 22 [SYN]   (unrelated: the capture's end)
    @Test("port reuse: the replaced flow's CLOSE_WAIT interval ends at the new flow's SYN; its end is .replaced there")
    func replacedCloseWaitEndsAtTheSYN() throws {
        let directory = try TemporaryDirectory()
        var old = Conversation(client: "10.0.0.1:40000", server: "10.0.0.2:80", start: 1_700_000_000,
                               clientISN: 1000, serverISN: 5000)
        old.handshake(at: 0)
        old.data(.client, bytes: 100, at: 0.1)
        old.ack(.server, at: 0.11)
        old.data(.server, bytes: 200, at: 0.2)
        old.ack(.client, at: 0.21)
        old.fin(.server, at: 1.0)
        old.ack(.client, at: 1.001)
        var new = Conversation(client: "10.0.0.1:40000", server: "10.0.0.2:80", start: 1_700_000_000,
                               clientISN: 777_000, serverISN: 90_000)
        new.handshake(at: 20)
        var tail = Conversation(client: "10.0.0.7:50000", server: "10.0.0.9:22", start: 1_700_000_000)
        tail.syn(at: 60)
        let file = try Conversation.writePcap([old, new, tail], to: directory.url(for: "reuse.pcap"))
        keep(file)

        let result = try analyze([file.path])
        #expect(result.flows.count == 3)
        #expect(result.source.end == ns(60))
        let replaced = try #require(result.flows.first { $0.id == 1 })
        let successor = try #require(result.flows.first { $0.id == 2 })
        #expect(successor.client.port == 40000 && successor.firstSeen == ns(20))
        #expect(replaced.end == FlowEnd(reason: .replaced, at: ns(20)))
        #expect(replaced.clientEndpoint.path == [.established, .closeWait])
        // The finding runs to the SYN too (SPEC §4): 20 − 1.001 s.
        let finding = try #require(replaced.findings.first)
        #expect(finding.kind == .closeWait && finding.endpoint == .client)
        #expect(finding.since == ns(1.001))
        #expect(finding.duration == ns(20) - ns(1.001))

        let intervals = HTMLReport.closeWaitIntervals(result)
        // The client's CLOSE_WAIT (1.001 → 20). The new flow and the tail hold none.
        #expect(intervals.count == 1)
        let interval = try #require(intervals.first)
        #expect(interval.start == ns(1.001))
        #expect(interval.end == ns(20), "ends at the new SYN, not at the capture's end (\(ns(60)))")
        #expect(interval.end == successor.firstSeen)
    }
}
