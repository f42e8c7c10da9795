import FinscopeMetrics
import FinscopeTestSupport
import Foundation
import Testing

@Suite("metrics exposition of a literal snapshot")
struct ExpositionTests {
    static let small = MetricsSnapshot(
        groups: [MetricsSnapshot.Group(endpoint: "10.0.0.5", role: "client", service: "10.0.0.7:5432",
                                       process: "java", closeWaitEndpoints: 3, closeWaitMaxSeconds: 12.5)],
        findingsTotal: ["close-wait": 3, "slow-close": 1, "fin-unacked": 0],
        closesTotal: ["server-first": 5, "half-closed": 3],
        flowsTracked: 8, packetsTotal: 90, droppedKernel: 2, droppedInterface: 0)

    @Test("the exact Prometheus text of a small snapshot")
    func exactText() {
        let expected = """
            # HELP finscope_close_wait_endpoints Endpoints in CLOSE_WAIT past the threshold now, by stuck endpoint address, role, service (the server's address:port) and holding process.
            # TYPE finscope_close_wait_endpoints gauge
            finscope_close_wait_endpoints{endpoint="10.0.0.5",role="client",service="10.0.0.7:5432",process="java"} 3.0
            # HELP finscope_close_wait_max_seconds The longest time one endpoint of the group has been in CLOSE_WAIT, in seconds.
            # TYPE finscope_close_wait_max_seconds gauge
            finscope_close_wait_max_seconds{endpoint="10.0.0.5",role="client",service="10.0.0.7:5432",process="java"} 12.5
            # HELP finscope_findings_total Findings raised since finscope started, by kind.
            # TYPE finscope_findings_total counter
            finscope_findings_total{kind="close-wait"} 3
            finscope_findings_total{kind="fin-unacked"} 0
            finscope_findings_total{kind="slow-close"} 1
            # HELP finscope_closes_total Connections seen since finscope started, by how they closed.
            # TYPE finscope_closes_total counter
            finscope_closes_total{close="half-closed"} 3
            finscope_closes_total{close="server-first"} 5
            # HELP finscope_flows_tracked Connections in finscope's flow table now.
            # TYPE finscope_flows_tracked gauge
            finscope_flows_tracked 8.0
            # HELP finscope_packets_total Packets captured since finscope started.
            # TYPE finscope_packets_total counter
            finscope_packets_total 90
            # HELP finscope_packets_dropped_total Packets libpcap reports dropped: where=kernel for lack of buffer space, where=interface by the network interface.
            # TYPE finscope_packets_dropped_total counter
            finscope_packets_dropped_total{where="interface"} 0
            finscope_packets_dropped_total{where="kernel"} 2
            # HELP finscope_metrics_folded_groups CLOSE_WAIT groups summed into the service=other series now, beyond --metrics-max-groups.
            # TYPE finscope_metrics_folded_groups gauge
            finscope_metrics_folded_groups 0.0

            """
        #expect(MetricsExposition.render(Self.small) == expected)
    }

    @Test("OpenMetrics: counter families named without _total, samples with it, # EOF at the end")
    func openMetrics() {
        let text = MetricsExposition.render(Self.small, format: .openMetrics)
        #expect(text.hasSuffix("finscope_metrics_folded_groups 0.0\n# EOF\n"))
        #expect(text.contains("# TYPE finscope_findings counter\nfinscope_findings_total{kind=\"close-wait\"} 3\n"))
        #expect(text.contains("# HELP finscope_packets_dropped Packets libpcap"))
        #expect(text.contains("# TYPE finscope_close_wait_endpoints gauge\n"))
        #expect(!text.contains("# TYPE finscope_findings_total"))
        #expect(text.components(separatedBy: "# EOF").count == 2)
    }

    @Test("the Accept header picks the format")
    func negotiation() {
        let prometheus2 = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
        #expect(MetricsExposition.Format.negotiate(accept: prometheus2) == .openMetrics)
        #expect(MetricsExposition.Format.negotiate(accept: nil) == .prometheus)
        #expect(MetricsExposition.Format.negotiate(accept: "*/*") == .prometheus)
        #expect(MetricsExposition.Format.negotiate(accept: "text/plain;version=0.0.4") == .prometheus)
        #expect(MetricsExposition.Format.negotiate(accept: "application/openmetrics-text; q=0") == .prometheus)
    }

    @Test("label values escape \", \\ and newline; a missing process is an empty (absent) label")
    func escaping() {
        let snapshot = MetricsSnapshot(groups: [
            MetricsSnapshot.Group(endpoint: "fd00::1", role: "server", service: "[fd00::1]:80",
                                  process: "we\"ird\\name\nx", closeWaitEndpoints: 1, closeWaitMaxSeconds: 7),
            MetricsSnapshot.Group(endpoint: "10.0.0.1", role: "client", service: "10.0.0.2:80",
                                  process: nil, closeWaitEndpoints: 2, closeWaitMaxSeconds: 5),
        ])
        let text = MetricsExposition.render(snapshot)
        #expect(text.contains(#"finscope_close_wait_endpoints{endpoint="fd00::1",role="server",service="[fd00::1]:80",process="we\"ird\\name\nx"} 1.0"#))
        #expect(text.contains(#"finscope_close_wait_endpoints{endpoint="10.0.0.1",role="client",service="10.0.0.2:80",process=""} 2.0"#))
        // Every sample stays on one line: no raw newline inside a label value.
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            #expect(line.hasPrefix("finscope_"), "a sample line broken by an unescaped newline: \(line)")
        }
    }

    @Test("beyond --metrics-max-groups the smallest groups fold into service=\"other\": counts summed, max of maxima")
    func folding() {
        let groups = (1...5).map { index in
            MetricsSnapshot.Group(endpoint: "10.0.0.\(index)", role: "client", service: "10.0.1.\(index):443",
                                  process: "app\(index)", closeWaitEndpoints: index * 10, closeWaitMaxSeconds: Double(100 - index))
        }
        let text = MetricsExposition.render(MetricsSnapshot(groups: groups), maxGroups: 3)
        let counts = text.split(separator: "\n").filter { $0.hasPrefix("finscope_close_wait_endpoints{") }
        let maxima = text.split(separator: "\n").filter { $0.hasPrefix("finscope_close_wait_max_seconds{") }
        #expect(counts.count == 3)
        #expect(maxima.count == 3)
        // Kept: the two biggest (50 and 40); folded: 30 + 20 + 10, whose longest is 99 s (group 1).
        #expect(counts.contains(#"finscope_close_wait_endpoints{endpoint="10.0.0.5",role="client",service="10.0.1.5:443",process="app5"} 50.0"#))
        #expect(counts.contains(#"finscope_close_wait_endpoints{endpoint="10.0.0.4",role="client",service="10.0.1.4:443",process="app4"} 40.0"#))
        #expect(counts.contains(#"finscope_close_wait_endpoints{endpoint="",role="",service="other",process=""} 60.0"#))
        #expect(maxima.contains(#"finscope_close_wait_max_seconds{endpoint="",role="",service="other",process=""} 99.0"#))
        #expect(text.contains("finscope_metrics_folded_groups 3.0\n"))

        // Exactly at the limit nothing folds.
        let atLimit = MetricsExposition.render(MetricsSnapshot(groups: Array(groups.prefix(3))), maxGroups: 3)
        #expect(!atLimit.contains("service=\"other\""))
        #expect(atLimit.contains("finscope_metrics_folded_groups 0.0\n"))
        // The sum over the series is the same folded or not.
        let folded = MetricsExposition.limitedGroups(groups, maxGroups: 2)
        #expect(folded.groups.count == 2)
        #expect(folded.groups.map(\.closeWaitEndpoints).reduce(0, +) == 150)
        #expect(folded.folded == 4)
    }

    @Test("--metrics addresses: IPv4, [IPv6], :PORT, localhost; anything else is refused")
    func addresses() throws {
        #expect(try MetricsAddress(parsing: "127.0.0.1:9464") == MetricsAddress(host: .ipv4("127.0.0.1"), port: 9464))
        #expect(try MetricsAddress(parsing: "[::]:9464") == MetricsAddress(host: .ipv6("::"), port: 9464))
        #expect(try MetricsAddress(parsing: "[::1]:1").description == "[::1]:1")
        #expect(try MetricsAddress(parsing: ":9464").description == "0.0.0.0:9464")
        #expect(try MetricsAddress(parsing: "localhost:9464").description == "127.0.0.1:9464")
        for bad in ["9464", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "::1:9464", "[::1:9464", "host.example:9464", "1.2.3:80", "[zz]:80"] {
            #expect(throws: MetricsExporterError.badAddress(bad), "\(bad)") { try MetricsAddress(parsing: bad) }
        }
    }
}

// The endpoint itself is tested through the binary (FinscopeLiveTests/MetricsPrometheusTests):
// in this test process Swift Testing runs the synchronous tests of every suite in parallel on
// the same global concurrency pool the HTTP server's tasks need, and a server started here
// could wait tens of seconds for a thread (seen in a full run). In finscope nothing else runs
// on that pool.
