import FinscopeWire
import FinscopeFindings
import FinscopeAnalysis
import FinscopeCapture
import FinscopeFlows
import FinscopeReport
import FinscopeTestSupport
import Foundation
import Testing

/// Ladder diagrams: the states beside the arrows are the flow's paths, at the right rows.
@Suite struct LadderTests {
    func ladder(_ paths: [String], flow id: Int) throws -> (Ladder.Model, String, FlowReport) {
        let result = try analyze(paths)
        let flow = try #require(result.flows.first { $0.id == id })
        let packets = try FlowPackets.segments(paths: paths, options: AnalysisOptions(), flows: [flow])
        let model = Ladder.model(flow, segments: (packets[id] ?? []).map { LadderSegment(time: $0.time, segment: $0.segment, placement: $0.placement) })
        return (model, Ladder.render(model, captureEnd: result.source.end), flow)
    }

    /// The rendered text's rows: (left state column, arrow, right state column).
    func textRows(_ text: String) -> [(left: String, arrow: String, right: String)] {
        text.split(separator: "\n").compactMap { line in
            guard line.hasPrefix("+"), let start = line.firstIndex(where: { $0 == "─" || $0 == "<" }),
                  let end = line.lastIndex(where: { $0 == "─" || $0 == ">" }) else { return nil }
            let left = line[line.index(line.startIndex, offsetBy: 11)..<start].trimmingCharacters(in: .whitespaces)
            let right = line[line.index(after: end)...].trimmingCharacters(in: .whitespaces)
            return (left, String(line[start...end]), right)
        }
    }

    @Test func clientFirstCloseReadsLikeTheTextbook() throws {
        let directory = try TemporaryDirectory()
        var c = Conversation(client: "10.0.0.1:40000", server: "10.0.0.2:80", start: 1_700_000_000,
                             clientISN: 1000, serverISN: 5000)
        c.handshake(at: 0)
        c.data(.client, bytes: 100, at: 0.1)
        c.ack(.server, at: 0.11)
        c.fin(.client, at: 1.0)
        c.ack(.server, at: 1.001)
        c.fin(.server, at: 1.5)
        c.ack(.client, at: 1.501)
        let file = try c.writePcap(to: directory.url(for: "client-first.pcap"))
        let (model, text, flow) = try ladder([file.path], flow: 1)
        #expect(flow.close == .clientFirst)

        let states = Ladder.columnStates(model)
        #expect(states.client == [.established, .finWait1, .finWait2, .timeWait])
        #expect(states.server == [.established, .closeWait, .lastAck, .closed])
        #expect(states.client == flow.clientEndpoint.path && states.server == flow.serverEndpoint.path)

        // Each state beside the segment that caused it, with seq/ack relative to the FINs
        // (x = the client's FIN: 1000 + SYN + 100 bytes = 1101; y = the server's: 5001).
        let rows = textRows(text)
        let closing = Array(rows.suffix(4))
        #expect(closing.map(\.left) == ["FIN_WAIT_1", "FIN_WAIT_2", "TIME_WAIT", ""])
        #expect(closing.map(\.right) == ["", "CLOSE_WAIT", "LAST_ACK", "CLOSED"])
        #expect(closing[0].arrow.contains("FIN,ACK seq=x ack=y") && closing[0].arrow.hasSuffix(">"))
        #expect(closing[1].arrow.contains("ACK seq=y ack=x+1") && closing[1].arrow.hasPrefix("<"))
        #expect(closing[2].arrow.contains("FIN,ACK seq=y ack=x+1") && closing[2].arrow.hasPrefix("<"))
        #expect(closing[3].arrow.contains("ACK seq=x+1 ack=y+1") && closing[3].arrow.hasSuffix(">"))
        #expect(text.contains("x = the client's FIN sequence number (1101)"))
        #expect(text.contains("y = the server's FIN sequence number (5001)"))
        #expect(text.contains("+1.000 s"))
    }

    @Test func kernelClientFirstCapture() throws {
        let (model, text, flow) = try ladder([capture("client-first.pcap")], flow: 1)
        let states = Ladder.columnStates(model)
        #expect(states.client == ["ESTABLISHED", "FIN_WAIT_1", "FIN_WAIT_2", "TIME_WAIT"].map { TCPState(rawValue: $0)! })
        #expect(states.server == ["ESTABLISHED", "CLOSE_WAIT", "LAST_ACK", "CLOSED"].map { TCPState(rawValue: $0)! })
        #expect(states.server == flow.serverEndpoint.path)
        #expect(text.contains("FIN,ACK seq=x"))
    }

    @Test func leakShowsTheWaitUntilTheCaptureEnds() throws {
        let directory = try TemporaryDirectory()
        let file = try Conversation.writePcap(leakConversations(count: 1, idle: 60, end: 200), to: directory.url(for: "leak.pcap"))
        let (model, text, _) = try ladder([file.path], flow: 1)
        #expect(Ladder.columnStates(model).client == [.established, .closeWait])
        #expect(Ladder.columnStates(model).server == [.established, .finWait1, .finWait2])
        #expect(text.contains("⋮ 60.0 s"))  // the idle minute before the server's FIN
        #expect(text.contains("until the capture ends: client still in CLOSE_WAIT"))
    }

    /// Every connection of every kernel-made capture: the diagram's columns are the paths.
    @Test func everyCaptureFlowAgreesWithItsPaths() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: packageRoot.appendingPathComponent("captures").path)
            .filter { $0.hasSuffix(".pcap") || $0.hasSuffix(".pcapng") }.sorted()
        #expect(names.count > 10)
        for name in names {
            let paths = [capture(name)]
            let result = try analyze(paths)
            let flows = Array(result.flows.prefix(300))
            let packets = try FlowPackets.segments(paths: paths, options: AnalysisOptions(), flows: flows)
            for flow in flows {
                let segments = (packets[flow.id] ?? []).map { LadderSegment(time: $0.time, segment: $0.segment, placement: $0.placement) }
                #expect(segments.count >= flow.segments, "\(name) #\(flow.id): segments found again")
                let model = Ladder.model(flow, segments: segments)
                let states = Ladder.columnStates(model)
                #expect(states.client == flow.clientEndpoint.path, "\(name) #\(flow.id) client")
                #expect(states.server == flow.serverEndpoint.path, "\(name) #\(flow.id) server")
                // Each state sits on the row of the segment that caused it: the row's time is
                // the transition's time (issue 10: the ladder once placed states by its own
                // rules and could contradict the JSON's times).
                for role in Role.allCases {
                    let drawn = model.rows.flatMap { row in
                        (role == .client ? row.clientStates : row.serverStates).map { (state: $0, time: row.time) }
                    }
                    let steps = flow.transitions.filter { $0.endpoint == role }
                    #expect(drawn.map(\.state) == steps.map(\.state), "\(name) #\(flow.id) \(role) states")
                    #expect(drawn.map(\.time) == steps.map(\.time), "\(name) #\(flow.id) \(role): row times vs transition times")
                }
            }
        }
    }

    @Test func simultaneousCloseHasClosingOnBothSides() throws {
        let (model, _, flow) = try ladder([capture("simultaneous.pcap")], flow: 1)
        #expect(flow.close == .simultaneous)
        let states = Ladder.columnStates(model)
        #expect(states.client.contains(.closing) && states.server.contains(.closing))
        // Both FIN_WAIT_1 rows come before either CLOSING row.
        let fw1 = model.rows.firstIndex { $0.clientStates.contains(.finWait1) || $0.serverStates.contains(.finWait1) }!
        let closing = model.rows.firstIndex { $0.clientStates.contains(.closing) || $0.serverStates.contains(.closing) }!
        #expect(fw1 < closing)
    }
}
