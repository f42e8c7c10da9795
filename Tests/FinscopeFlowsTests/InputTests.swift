import Foundation
import Testing
import FinscopeWire
import FinscopeFindings
import FinscopeAnalysis
import FinscopeCapture
import FinscopeFlows
import FinscopeReport
import FinscopeTestSupport

/// One client-first conversation through every supported file format, link type and IP
/// version (SPEC §5), plus filters and several input files.
@Suite("Inputs")
struct InputTests {
    enum Format: Sendable {
        case pcap(PcapPrecision, ByteOrder)
        case pcapng(tsresol: UInt8?)
    }

    struct Case: Sendable, CustomStringConvertible {
        var name: String
        var link: Link
        var ipv6 = false
        var format: Format = .pcap(.microseconds, .little)
        var description: String { name }
    }

    static let cases: [Case] = [
        Case(name: "Ethernet", link: .ethernet),
        Case(name: "Ethernet + 802.1Q", link: .vlan([100])),
        Case(name: "Ethernet + two 802.1Q tags", link: .vlan([100, 200])),
        Case(name: "Ethernet QinQ (802.1ad + 802.1Q)", link: .qinq([300, 100])),
        Case(name: "Linux cooked v1", link: .sll),
        Case(name: "Linux cooked v2", link: .sll2),
        Case(name: "BSD NULL little-endian", link: .null),
        Case(name: "BSD NULL big-endian", link: .nullBigEndian),
        Case(name: "raw IP 101", link: .raw),
        Case(name: "raw IP 12", link: .rawLinkType(12)),
        Case(name: "raw IP 14", link: .rawLinkType(14)),
        Case(name: "raw IPv4 228", link: .rawLinkType(228)),
        Case(name: "IPv6 Ethernet", link: .ethernet, ipv6: true),
        Case(name: "IPv6 802.1Q", link: .vlan([100]), ipv6: true),
        Case(name: "IPv6 Linux cooked v1", link: .sll, ipv6: true),
        Case(name: "IPv6 Linux cooked v2", link: .sll2, ipv6: true),
        Case(name: "IPv6 BSD NULL (Darwin 30)", link: .null, ipv6: true),
        Case(name: "IPv6 BSD NULL (FreeBSD 28)", link: .nullFamily(ipv6: AddressFamily.inet6FreeBSD, byteOrder: .little), ipv6: true),
        Case(name: "IPv6 BSD NULL (OpenBSD 24)", link: .nullFamily(ipv6: AddressFamily.inet6OpenBSD, byteOrder: .little), ipv6: true),
        Case(name: "IPv6 raw 101", link: .raw, ipv6: true),
        Case(name: "IPv6 raw 229", link: .rawLinkType(229), ipv6: true),
        Case(name: "pcap nanoseconds", link: .ethernet, format: .pcap(.nanoseconds, .little)),
        Case(name: "pcap big-endian", link: .ethernet, format: .pcap(.microseconds, .big)),
        Case(name: "pcap nanoseconds big-endian", link: .sll, format: .pcap(.nanoseconds, .big)),
        Case(name: "pcapng", link: .ethernet, format: .pcapng(tsresol: nil)),
        Case(name: "pcapng nanoseconds", link: .ethernet, format: .pcapng(tsresol: 9)),
        Case(name: "pcapng IPv6 SLL2", link: .sll2, ipv6: true, format: .pcapng(tsresol: 9)),
    ]

    @Test("the same client-first conversation on every link type and file format", arguments: cases)
    func linkTypesAndFormats(_ testCase: Case) throws {
        let client: HostPort = testCase.ipv6 ? "[fd00::1]:40000" : "10.0.0.1:40000"
        let server: HostPort = testCase.ipv6 ? "[fd00::2]:80" : "10.0.0.2:80"
        let c = clientFirstConversation(client: client, server: server)
        let dir = try TemporaryDirectory()
        let report: Report = try withExtendedLifetime(dir) {
            let url: URL
            switch testCase.format {
            case let .pcap(precision, order):
                url = dir.url(for: "c.pcap")
                try c.writePcap(link: testCase.link, to: url, precision: precision, byteOrder: order)
            case let .pcapng(tsresol):
                url = dir.url(for: "c.pcapng")
                try c.writePcapNG(link: testCase.link, to: url, tsresol: tsresol)
            }
            return try analyze(paths: [url.path])
        }
        let flow = try report.onlyFlow()
        #expect(report.tcpSegments == 11)
        #expect(report.packets == 11)
        #expect(flow.clientAddress == (testCase.ipv6 ? "[fd00::1]:40000" : "10.0.0.1:40000"))
        #expect(flow.serverAddress == (testCase.ipv6 ? "[fd00::2]:80" : "10.0.0.2:80"))
        if testCase.ipv6 {
            #expect(jsonString((flow.raw["client"] as? [String: Any])?["ip"]) == "fd00::1")
        }
        #expect(flow.roles == "handshake")
        #expect(flow.close == "client-first")
        #expect(flow.threeWay == false)
        #expect(flow.client == EndpointJSON(finAt: T(1.0), finAckedAt: T(1.001), path: clientFirstClientPath))
        #expect(flow.server == EndpointJSON(finAt: T(1.3), finAckedAt: T(1.301), path: clientFirstServerPath))
        #expect(flow.findings == [])
    }

    @Test("IPv6 addresses are printed compressed")
    func ipv6Compressed() throws {
        var c = conversation(client: "[2001:db8:0:0:0:0:0:5]:40000", server: "[2001:db8::a:0:0:1]:443")
        serverClosesClientAcks(&c)
        let report = try analyze(c, extra: [(10.301, udpFrame())])
        let flow = try report.onlyFlow()
        #expect(jsonString((flow.raw["client"] as? [String: Any])?["ip"]) == "2001:db8::5")
        #expect(jsonString((flow.raw["server"] as? [String: Any])?["ip"]) == "2001:db8::a:0:0:1")  // RFC 5952: the first of two equal zero runs
        let group = try #require(report.groups.first)
        #expect(jsonString((group["endpoint"] as? [String: Any])?["ip"]) == "2001:db8::5")
    }

    @Test("pcapng with two interfaces of different link types (Ethernet + raw IP), one direction each")
    func pcapngMixedLinkTypes() throws {
        let c = clientFirstConversation()
        var writer = PcapNGWriter()
        let ethernet = writer.addInterface(linkType: 1)
        let raw = writer.addInterface(linkType: 101)
        for frame in c.frames {
            let link: Link = frame.side == .client ? .ethernet : .raw
            writer.append(c.bytes(of: frame, link: link), interface: frame.side == .client ? ethernet : raw, time: frame.time)
        }
        let dir = try TemporaryDirectory()
        let report: Report = try withExtendedLifetime(dir) {
            let url = dir.url(for: "mixed.pcapng")
            try writer.write(to: url)
            return try analyze(paths: [url.path])
        }
        let flow = try report.onlyFlow()
        #expect(report.tcpSegments == 11)
        #expect(flow.close == "client-first")
        #expect(flow.client == EndpointJSON(finAt: T(1.0), finAckedAt: T(1.001), path: clientFirstClientPath))
        #expect(flow.server == EndpointJSON(finAt: T(1.3), finAckedAt: T(1.301), path: clientFirstServerPath))
    }

    @Test("a BPF filter keeps only the matching flow")
    func filterKeepsOneFlow() throws {
        let web = clientFirstConversation(client: "10.0.0.1:40000", server: "10.0.0.2:80")
        var tls = conversation(client: "10.0.0.1:40001", server: "10.0.0.3:443")
        serverClosesClientAcks(&tls)
        let writer = Conversation.pcapWriter([web, tls])
        #expect(try analyze(writer: writer).flows.count == 2)

        let report = try analyze(writer: writer, options: AnalysisOptions(filter: "tcp port 80"))
        let flow = try report.onlyFlow()
        #expect(flow.serverAddress == "10.0.0.2:80")
        #expect(flow.close == "client-first")
        #expect(report.tcpSegments == 11)

        let other = try analyze(writer: writer, options: AnalysisOptions(filter: "tcp port 443")).onlyFlow()
        #expect(other.serverAddress == "10.0.0.3:443")
        #expect(other.close == "half-closed")
    }

    @Test("a filter on a pcapng with mixed link types is applied too")
    func filterOnMixedPcapng() throws {
        let web = clientFirstConversation(client: "10.0.0.1:40000", server: "10.0.0.2:80")
        var tls = conversation(client: "10.0.0.1:40001", server: "10.0.0.3:443")
        serverClosesClientAcks(&tls)
        var writer = PcapNGWriter()
        let ethernet = writer.addInterface(linkType: 1)
        let raw = writer.addInterface(linkType: 101)
        var all: [(CaptureTime, [UInt8], Int)] = []
        for conv in [web, tls] {
            for frame in conv.frames {
                let onEthernet = frame.side == .client
                all.append((frame.time, conv.bytes(of: frame, link: onEthernet ? .ethernet : .raw), onEthernet ? ethernet : raw))
            }
        }
        for (time, bytes, interface) in all.sorted(by: { $0.0 < $1.0 }) { writer.append(bytes, interface: interface, time: time) }
        let dir = try TemporaryDirectory()
        let report: Report = try withExtendedLifetime(dir) {
            let url = dir.url(for: "mixed.pcapng")
            try writer.write(to: url)
            return try analyze(paths: [url.path], options: AnalysisOptions(filter: "tcp port 80"))
        }
        let flow = try report.onlyFlow()
        #expect(flow.serverAddress == "10.0.0.2:80")
        #expect(flow.close == "client-first")
        #expect(flow.client.path == clientFirstClientPath)
        #expect(flow.server.path == clientFirstServerPath)
    }

    @Test("a bad filter throws CaptureError.badFilter")
    func badFilterThrows() throws {
        let writer = clientFirstConversation().pcapWriter()
        #expect {
            _ = try analyze(writer: writer, options: AnalysisOptions(filter: "tcp port ((("))
        } throws: { error in
            guard case .badFilter(let expression, _)? = error as? CaptureError else { return false }
            return expression == "tcp port ((("
        }
    }

    @Test("several files are merged by timestamp: the client's segments in one, the server's in the other")
    func mergedFiles() throws {
        let c = clientFirstConversation()
        let records = c.records(link: .ethernet)
        var clientSide = PcapWriter(linkType: 1)
        var serverSide = PcapWriter(linkType: 1)
        for (frame, record) in zip(c.frames, records) {
            if frame.side == .client { clientSide.records.append(record) } else { serverSide.records.append(record) }
        }
        let dir = try TemporaryDirectory()
        let report: Report = try withExtendedLifetime(dir) {
            let a = dir.url(for: "a.pcap"), b = dir.url(for: "b.pcap")
            try clientSide.write(to: a)
            try serverSide.write(to: b)
            return try analyze(paths: [a.path, b.path])
        }
        let flow = try report.onlyFlow()
        #expect(report.tcpSegments == 11)
        #expect(report.duplicates == 0)
        #expect(report.sourceStart == T(0))
        #expect(report.sourceEnd == T(1.301))
        #expect(flow.roles == "handshake")
        #expect(flow.close == "client-first")
        #expect(flow.threeWay == false)
        #expect(flow.client == EndpointJSON(finAt: T(1.0), finAckedAt: T(1.001), path: clientFirstClientPath))
        #expect(flow.server == EndpointJSON(finAt: T(1.3), finAckedAt: T(1.301), path: clientFirstServerPath))
    }

    @Test("merged files: the capture end is the latest frame of any file")
    func mergedFilesCaptureEnd() throws {
        var c = conversation()
        serverClosesClientAcks(&c)
        var other = PcapWriter(linkType: 1)
        other.append(udpFrame(), time: c.start.adding(12.301))
        let dir = try TemporaryDirectory()
        let report: Report = try withExtendedLifetime(dir) {
            let a = dir.url(for: "a.pcap"), b = dir.url(for: "b.pcap")
            try c.writePcap(to: a)
            try other.write(to: b)
            return try analyze(paths: [a.path, b.path])
        }
        #expect(report.sourceEnd == T(12.301))
        #expect(try report.onlyFlow().findings
            == [FindingJSON("close-wait", "client", since: T(0.301), seconds: D(12), activity: "silent")])
    }
}
