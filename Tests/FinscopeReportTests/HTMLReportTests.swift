import FinscopeWire
import FinscopeFindings
import FinscopeAnalysis
import FinscopeCapture
import FinscopeFlows
import FinscopeReport
import FinscopeTestSupport
import Foundation
import Testing

@Suite struct HTMLReportTests {
    @Test func selfContainedPageWithTimelineGroupsAndLadders() throws {
        let result = try analyze([capture("mixed.pcap")])
        let html = HTMLReport.render(result, ladders: [HTMLReport.LadderBlock(title: "first <leak>", text: "a -> b & c")])
        #expect(!html.contains("http://") && !html.contains("https://"), "no network references")
        #expect(!html.contains("<script") && !html.contains("<link") && !html.contains("src="))
        #expect(html.hasPrefix("<!DOCTYPE html>"))
        #expect(html.contains("<svg class=\"timeline\""))
        // The groups, each with its diagnosis and filter.
        for group in result.groups {
            #expect(html.contains("<td>\(group.endpointIP) (\(group.role.rawValue))</td><td>\(group.service)</td>"
                + "<td>\(group.peerText)</td><td class=\"num\">\(group.flowCount)</td>"))
        }
        #expect(html.contains("Wireshark: <code>ip.addr==10.77.0.2 &amp;&amp; tcp.port==8080 &amp;&amp; ip.addr==10.77.0.1 &amp;&amp;"))
        #expect(html.contains("<h3>first &lt;leak&gt;</h3>\n<pre class=\"ladder\">a -&gt; b &amp; c</pre>"))
        #expect(html.contains("sockets in CLOSE_WAIT, brief passive closes included (left axis, peak"))
    }

    @Test func timelineCountsSocketsInCloseWait() throws {
        let directory = try TemporaryDirectory()
        // 5 connections; the server closes each after 60 s idle, starting 0.5 s apart; none
        // is ever closed by the client: at the end all 5 sit in CLOSE_WAIT, and the tail
        // connection's server passes CLOSE_WAIT for 0.1 s just before the end (6 at once).
        let file = try Conversation.writePcap(leakConversations(count: 5, idle: 60, end: 100), to: directory.url(for: "l.pcap"))
        let result = try analyze([file.path])
        let intervals = HTMLReport.closeWaitIntervals(result)
        #expect(intervals.count == 6)
        #expect(intervals.filter { $0.end == result.source.end }.count == 5)
        #expect(intervals.contains { $0.end - $0.start == 100_000_000 })
        let html = HTMLReport.render(result)
        #expect(html.contains("(left axis, peak 6)"))
        // 5 server FINs + the tail connection's 2.
        #expect(html.contains("FINs per"))
    }
}
