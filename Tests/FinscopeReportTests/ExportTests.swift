import CPcap
import FinscopeWire
import FinscopeFindings
import FinscopeAnalysis
import FinscopeCapture
import FinscopeFlows
import FinscopeReport
import FinscopeTestSupport
import Foundation
import Testing

/// --export: the written capture, read back through libpcap, holds exactly the chosen
/// flows' packets, with the original link type and timestamps.
@Suite struct ExportTests {
    struct Tuple: Hashable {
        var client: EndpointAddress
        var server: EndpointAddress
        var firstSeen: Int64
    }

    func check(_ paths: [String], choose: (FlowReport) -> Bool, expectFlows: Int? = nil) throws {
        let original = try analyze(paths)
        let chosen = original.flows.filter(choose)
        if let expectFlows { #expect(chosen.count == expectFlows) }
        let directory = try TemporaryDirectory()
        let output = directory.url(for: "export.pcap").path
        let summary = try FlowPackets.export(paths: paths, options: AnalysisOptions(), flows: chosen, to: output)

        let exported = try analyze([output])
        #expect(exported.source.warnings.isEmpty)
        // The same connections (ids are renumbered), each with the same segments and verdict.
        let before = Dictionary(uniqueKeysWithValues: chosen.map { (Tuple(client: $0.client, server: $0.server, firstSeen: $0.firstSeen), $0) })
        let after = Dictionary(uniqueKeysWithValues: exported.flows.map { (Tuple(client: $0.client, server: $0.server, firstSeen: $0.firstSeen), $0) })
        #expect(Set(before.keys) == Set(after.keys))
        for (key, flow) in before {
            guard let copy = after[key] else { continue }
            #expect(copy.segments == flow.segments, "packets of flow \(flow.id)")
            #expect(copy.lastSeen == flow.lastSeen)
            #expect(copy.close == flow.close)
            #expect(copy.clientEndpoint.path == flow.clientEndpoint.path)
            #expect(copy.serverEndpoint.path == flow.serverEndpoint.path)
            // These captures hold no capture duplicates, so every frame is one segment.
            #expect(summary.packetsPerFlow[flow.id] == flow.segments, "frames written for flow \(flow.id)")
        }
        #expect(summary.packets == exported.source.packets)
        #expect(exported.source.tcpSegments == summary.packets)
        #expect(original.source.duplicates == 0 && exported.source.duplicates == 0)
    }

    @Test func findingsCaptureExportsExactlyTheFlaggedFlows() throws {
        let directory = try TemporaryDirectory()
        let file = try Conversation.writePcap(leakConversations(count: 6, idle: 60, end: 120),
                                              to: directory.url(for: "leak.pcap"))
        try check([file.path], choose: { !$0.findings.isEmpty }, expectFlows: 6)
    }

    @Test func kernelCaptureExportsItsLeakedConnections() throws {
        // mixed.pcap: 2,001 connections of every kind; 109 stuck in CLOSE_WAIT.
        try check([capture("mixed.pcap")], choose: { $0.findings.contains { $0.kind == .closeWait } }, expectFlows: 109)
        try check([capture("mixed.pcap")], choose: { $0.close == .reset })
    }

    @Test func portReuseKeepsEachConnectionsOwnPackets() throws {
        let result = try analyze([capture("port-reuse.pcap")])
        // Export only one of the connections that share a 4-tuple.
        let tuple = try #require(result.flows.first { a in result.flows.contains { $0.id != a.id && $0.client == a.client && $0.server == a.server } })
        try check([capture("port-reuse.pcap")], choose: { $0.id == tuple.id }, expectFlows: 1)
    }

    @Test func keepsLinkTypeAndTimestamps() throws {
        let directory = try TemporaryDirectory()
        var c = Conversation(client: "10.0.0.5:40001", server: "10.0.0.9:8282", start: 1_700_000_000.123456)
        c.handshake(at: 0)
        c.fin(.server, at: 1)
        c.ack(.client, at: 1.000001)
        let input = try c.writePcap(link: .sll, to: directory.url(for: "in.pcap"))
        let flows = try analyze([input.path], threshold: 0).flows
        let output = directory.url(for: "out.pcap").path
        _ = try FlowPackets.export(paths: [input.path], options: AnalysisOptions(), flows: flows, to: output)

        var errors = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
        let handle = try #require(pcap_open_offline_with_tstamp_precision(output, UInt32(PCAP_TSTAMP_PRECISION_NANO), &errors))
        defer { pcap_close(handle) }
        #expect(pcap_datalink(handle) == 113)  // Linux cooked, as the input
        var times: [Int64] = []
        var header: UnsafeMutablePointer<pcap_pkthdr>?
        var data: UnsafePointer<UInt8>?
        while pcap_next_ex(handle, &header, &data) == 1 {
            times.append(Int64(header!.pointee.ts.tv_sec) * 1_000_000_000 + Int64(header!.pointee.ts.tv_usec))
        }
        let expected = c.frames.map { Int64($0.time.microsecondParts.seconds) * 1_000_000_000 + $0.time.microsecondParts.microseconds * 1_000 }
        #expect(times == expected)
        #expect(CaptureFiles.isMicrosecondPcap(output), "a microsecond input gives a microsecond export")
    }

    @Test func emptySelectionStillWritesAValidCapture() throws {
        let directory = try TemporaryDirectory()
        let output = directory.url(for: "none.pcap").path
        let summary = try FlowPackets.export(paths: [capture("client-first.pcap")], options: AnalysisOptions(), flows: [], to: output)
        #expect(summary.packets == 0)
        let result = try analyze([output])
        #expect(result.source.packets == 0)
    }
}
