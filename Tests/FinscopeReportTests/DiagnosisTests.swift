import FinscopeWire
import FinscopeFindings
import FinscopeAnalysis
import FinscopeCapture
import FinscopeFlows
import FinscopeReport
import FinscopeTestSupport
import Foundation
import Testing

/// The sentence per group names the culprit, the count, the ports and the mechanism.
@Suite struct DiagnosisTests {
    func groupText(_ result: AnalysisResult, _ kind: FindingKind) throws -> (FindingGroup, String) {
        let group = try #require(result.groups.first { $0.kind == kind })
        let flows = Dictionary(uniqueKeysWithValues: result.flows.map { ($0.id, $0) })
        return (group, Diagnosis.text(group, flows: flows))
    }

    @Test func leakNamesEndpointCountPortsAndKeepAliveTimeout() throws {
        let directory = try TemporaryDirectory()
        let file = try Conversation.writePcap(leakConversations(count: 46, idle: 60, end: 300),
                                              to: directory.url(for: "leak.pcap"))
        let result = try analyze([file.path], retainAll: false)
        let (group, text) = try groupText(result, .closeWait)
        #expect(group.flowIDs.count == 46)
        #expect(text.hasPrefix("10.0.0.5 (client, 46 connections, ephemeral ports 40112–40157) acknowledged "
            + "10.0.0.9:8282's FIN and never closed"))
        #expect(text.contains("does not close connections its peer has closed — typically HTTP responses never released "
            + "or a pool that keeps dead connections."))
        #expect(text.contains("The server closes idle connections after ~60 s: a keep-alive timeout."))
        // Stuck from each ACK (start + 60.0205 s) to the capture's end (300 s): 239.98 s for
        // the first connection, 217.48 s for the last; the median is between the 23rd and 24th.
        #expect(text.contains("median \(durationText(group.medianDuration)), max 3 min 59 s"))
        #expect(!text.contains("kept sending data"))

        // Exactly the 46 connections: the service, the client address, every client port
        // (Wireshark 4.0 wants commas in a set; a range would take in other connections).
        let filter = Diagnosis.wiresharkFilter(group)
        let ports = (40112...40157).map(String.init).joined(separator: ", ")
        #expect(filter == "ip.addr==10.0.0.9 && tcp.port==8282 && ip.addr==10.0.0.5 && tcp.port in {\(ports)}")
    }

    @Test func closeAfterEachResponseIsNamed() throws {
        let directory = try TemporaryDirectory()
        let file = try Conversation.writePcap(leakConversations(count: 4, idle: 0.002, end: 60),
                                              to: directory.url(for: "close.pcap"))
        let result = try analyze([file.path])
        let (_, text) = try groupText(result, .closeWait)
        #expect(text.contains("(client, 4 connections, ephemeral ports 40112–40115)"))
        #expect(text.contains("The server closes each connection right after the last data"))
        let filter = Diagnosis.wiresharkFilter(result.groups[0])
        #expect(filter.hasSuffix("tcp.port in {40112, 40113, 40114, 40115}"))
    }

    @Test func spreadIdleTimesAreNotCalledATimeout() throws {
        let directory = try TemporaryDirectory()
        var conversations = leakConversations(count: 1, idle: 10, end: 200)
        conversations.insert(contentsOf: leakConversations(count: 1, idle: 50, end: 200, firstPort: 41000).dropLast(), at: 0)
        let file = try Conversation.writePcap(conversations, to: directory.url(for: "spread.pcap"))
        let (_, text) = try groupText(try analyze([file.path]), .closeWait)
        #expect(text.contains("ports 40112–41000"))
        #expect(text.contains("The server closed them after 10.0 s to 50.0 s without data"))
        #expect(!text.contains("keep-alive timeout"))
    }

    @Test func slowCloseAndFinUnacked() throws {
        let directory = try TemporaryDirectory()
        var conversations: [Conversation] = []
        for n in 0..<3 {  // each client closes 30 s after the server's FIN: a timer
            var c = Conversation(client: HostPort("10.0.0.5:\(45000 + n)"), server: "10.0.0.9:8282", start: 1_700_000_000)
            c.handshake(at: Double(n))
            c.data(.server, bytes: 10, at: Double(n) + 0.1)
            c.fin(.server, at: Double(n) + 5.1)
            c.ack(.client, at: Double(n) + 5.101)
            c.fin(.client, at: Double(n) + 35.101)
            c.ack(.server, at: Double(n) + 35.102)
            conversations.append(c)
        }
        var gone = Conversation(client: "10.0.0.5:40004", server: "10.0.0.7:22", start: 1_700_000_000)
        gone.handshake(at: 0.3)
        gone.fin(.client, at: 4, delivered: false)
        gone.data(.server, bytes: 20, at: 6)
        gone.ack(.client, at: 60)
        conversations.append(gone)
        let file = try Conversation.writePcap(conversations, to: directory.url(for: "slow.pcap"))
        let result = try analyze([file.path])

        let (_, slow) = try groupText(result, .slowClose)
        #expect(slow.hasPrefix("10.0.0.5 (client, 3 connections, ephemeral ports 45000–45002) sat in CLOSE_WAIT after "
            + "10.0.0.9:8282's FIN for median 30.0 s, max 30.0 s before closing"))
        #expect(slow.contains("each after ~30 s, which points to a timer"))
        #expect(slow.contains("The server closes idle connections after 5.0 s") || slow.contains("~5.0 s"))

        let (_, unacked) = try groupText(result, .finUnacked)
        #expect(unacked.hasPrefix("10.0.0.5 (client, 1 connection, port 40004) sent a FIN that 10.0.0.7:22 never acknowledged"))
        #expect(unacked.contains("The server kept sending without acknowledging the FIN, so it never received it"))
    }

    @Test func textReportCarriesDiagnosisFilterAndQuietMode() throws {
        let directory = try TemporaryDirectory()
        let file = try Conversation.writePcap(leakConversations(count: 3, idle: 60, end: 120), to: directory.url(for: "l.pcap"))
        let result = try analyze([file.path])
        let text = TextReport().render(result)
        #expect(text.contains("  10.0.0.5 (client, ephemeral ports 40112–40114) → 10.0.0.9:8282: 3 connections, stuck median"))
        #expect(text.contains("    Wireshark: ip.addr==10.0.0.9 && tcp.port==8282 && ip.addr==10.0.0.5 && tcp.port in {40112, 40113, 40114}\n"))
        #expect(text.contains("keep-alive timeout"))
        #expect(!text.contains("\u{1B}["), "no colours unless asked")
        #expect(TextReport(style: TerminalStyle(enabled: true)).render(result).contains("\u{1B}[1;31mSTUCK IN CLOSE_WAIT"))

        let quiet = TextReport(quiet: true).render(result)
        #expect(quiet.hasPrefix("STUCK IN CLOSE_WAIT — 3 connections"))
        #expect(!quiet.contains("How connections closed"))
        #expect(!quiet.contains("finscope:"))
        let clean = try analyze([capture("client-first.pcap")])
        #expect(TextReport(quiet: true).render(clean).isEmpty)
    }
}
