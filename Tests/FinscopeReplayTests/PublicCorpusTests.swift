import FinscopeFindings
import FinscopeAnalysis
import FinscopeCapture
import FinscopeFlows
import FinscopeWire
import Foundation
import Testing

/// Every capture in ../shared/corpus/public (real files from public projects) is read
/// without a crash or a hang, and either yields a report that accounts for every frame
/// the file holds (per MANIFEST.tsv) or one clear error line.
@Suite struct PublicCorpusTests {
    /// ../shared/corpus/public beside the checkout, or FINSCOPE_PUBLIC_CORPUS (a git
    /// worktree elsewhere has no ../shared).
    static let corpus: URL = {
        if let path = ProcessInfo.processInfo.environment["FINSCOPE_PUBLIC_CORPUS"], !path.isEmpty {
            return URL(fileURLWithPath: path)
        }
        return packageRoot.appendingPathComponent("../shared/corpus/public").standardizedFileURL
    }()

    struct Entry: CustomTestStringConvertible, Sendable {
        var file: String
        var packets: Int
        var testDescription: String { file }
    }

    static func entries() -> [Entry] {
        guard let manifest = try? String(contentsOf: corpus.appendingPathComponent("MANIFEST.tsv"), encoding: .utf8)
        else { return [] }
        return manifest.split(separator: "\n").dropFirst().compactMap { line in
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard fields.count > 6, let packets = Int(fields[6]) else { return nil }
            return Entry(file: String(fields[0]), packets: packets)
        }
    }

    /// Link types outside SPEC §5 and files libpcap cannot open: a clear error is the answer.
    static let expectedErrors: [String: String] = [
        "tcpdump--tests--arcnet-rfc1201-arp-icmp-http.pcap": "link type ARCNET_LINUX (129) is not supported",
        "libpcap--tests--pcap-invalid-version-1.pcap": "not a readable capture",
        "libpcap--tests--shb-option-too-long.pcapng": "cannot read",
    ]

    /// Files of the link types SPEC §5 gained on 2026-12-01, with tshark's counts:
    /// `tshark -r F -Y tcp | wc -l` (segments) and the distinct `tcp.stream` values (flows).
    static let tsharkCounts: [String: (tcpSegments: Int, flows: Int)] = [
        "libpcap--tests--filter--http_PPI.pcap": (1, 1),  // 5 frames: 2 DNS, 2 802.11 ACKs, 1 SYN
        "tcpdump--tests--ipoib.pcap": (20, 6),  // 30 frames: ICMP and ARP besides
        "zeek--testing--btest--Traces--nflog-http.pcap": (13, 1),
    ]


    /// The folder beside the checkout that holds the corpus; a checkout without it (a plain
    /// clone, a CI runner) has no corpus to check, which is not a failure.
    static let shared = packageRoot.appendingPathComponent("../shared").standardizedFileURL
    static let sharedPresent = FileManager.default.fileExists(atPath: shared.path)
        || ProcessInfo.processInfo.environment["FINSCOPE_PUBLIC_CORPUS"] != nil

    @Test("the public corpus is present when ../shared exists",
          .enabled(if: sharedPresent, "../shared is absent: this checkout has no public corpus to check"))
    func corpusListed() throws {
        try #require(FileManager.default.fileExists(atPath: Self.corpus.path),
                     "../shared exists but ../shared/corpus/public is missing")
        #expect(Self.entries().count >= 100)
    }

    @Test(.timeLimit(.minutes(1)), arguments: entries())
    func readsWithoutCrashOrHang(_ entry: Entry) throws {
        let path = Self.corpus.appendingPathComponent(entry.file).path
        if let expected = Self.expectedErrors[entry.file] {
            #expect(throws: CaptureError.self) { try OfflineAnalysis.analyze(paths: [path]) }
            do {
                _ = try OfflineAnalysis.analyze(paths: [path])
            } catch let error as CaptureError {
                let line = error.description
                #expect(line.contains(expected), "\(line)")
                #expect(!line.contains("\n"))
            }
            return
        }
        let result = try OfflineAnalysis.analyze(paths: [path])
        let source = result.source
        if let counts = Self.tsharkCounts[entry.file] {
            #expect(source.tcpSegments == counts.tcpSegments, "TCP segments vs tshark")
            #expect(result.flows.count == counts.flows, "flows vs tshark's TCP streams")
            #expect(source.skippedCount(.unsupported) == 0)
        }
        // Every frame is either a TCP segment or skipped for a named reason.
        let skipped = SkipReason.allCases.reduce(0) { $0 + source.skippedCount($1) }
        #expect(source.packets == entry.packets, "frames read vs MANIFEST")
        #expect(source.tcpSegments + skipped == source.packets)
        // Every decoded segment landed in a flow (duplicates are counted, not in flows).
        let inFlows = result.flows.reduce(0) { $0 + $1.segments }
        #expect(inFlows + source.duplicates == source.tcpSegments)
        for flow in result.flows {
            #expect(flow.firstSeen <= flow.lastSeen)
            for finding in flow.findings { #expect(finding.duration >= result.closeWaitThreshold) }
        }
    }
}
