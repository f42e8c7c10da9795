import FinscopeWire
import FinscopeFindings
import FinscopeAnalysis
import FinscopeCapture
import FinscopeFlows
import FinscopeTestSupport
import Foundation
import Testing

/// Every file in Tests/Fixtures/damaged (written by Scripts/make-damaged) has one defined
/// outcome: a report with the damaged frames counted in `source.skipped` by reason, a
/// report of what was read plus a warning, or one clear error line (exit 2). Never a
/// crash, never a hang. The table is docs/hostile-input.md's.
@Suite struct DamagedCorpusTests {
    static let directory = fixtures.appendingPathComponent("damaged")

    enum Outcome: Sendable {
        /// A report (exit 0). `warning`: a fragment of the one warning, or nil for none.
        case report(packets: Int, segments: Int, skipped: [SkipReason: Int] = [:], closeWait: Int,
                    warning: String? = nil)
        /// No report: one error line containing the fragment, exit 2.
        case error(String)
    }

    struct Case: CustomTestStringConvertible, Sendable {
        var file: String
        var outcome: Outcome
        var testDescription: String { file }
    }

    /// The conversation every file starts from: 6 frames, one client stuck in CLOSE_WAIT.
    /// Header damage adds one bad frame to it (7 frames, 6 segments).
    static let cases: [Case] = [
        Case(file: "valid.pcap", outcome: .report(packets: 6, segments: 6, closeWait: 1)),
        // File-level damage, as libpcap reports it.
        Case(file: "truncated-mid-file-header.pcap", outcome: .error("the file is cut short inside its header")),
        Case(file: "truncated-mid-record-header.pcap",
             outcome: .report(packets: 3, segments: 3, closeWait: 0, warning: "tried to read 16 header bytes, only got 8")),
        Case(file: "truncated-mid-record-data.pcap",
             outcome: .report(packets: 3, segments: 3, closeWait: 0, warning: "tried to read 54 captured bytes, only got 20")),
        Case(file: "wrong-magic.pcap", outcome: .error("not a pcap or pcapng capture")),
        // libpcap 1.10 accepts caplen > snaplen up to its own maximum (256 KiB) and keeps
        // snaplen bytes; beyond that maximum it stops with an error.
        Case(file: "caplen-over-snaplen.pcap", outcome: .report(packets: 6, segments: 6, closeWait: 1)),
        Case(file: "caplen-over-256k.pcap",
             outcome: .report(packets: 3, segments: 3, closeWait: 0, warning: "invalid packet capture length 307200")),
        Case(file: "zero-length-records.pcap",
             outcome: .report(packets: 8, segments: 6, skipped: [.truncated: 2], closeWait: 1)),
        // Analyzed in file order; start/end span the earliest and latest stamps.
        Case(file: "non-monotonic-timestamps.pcap", outcome: .report(packets: 6, segments: 6, closeWait: 1)),
        // pcapng: libpcap skips unknown blocks, stops at oversized or cut ones.
        Case(file: "pcapng-unknown-block.pcapng", outcome: .report(packets: 6, segments: 6, closeWait: 1)),
        Case(file: "pcapng-oversized-block.pcapng",
             outcome: .report(packets: 3, segments: 3, closeWait: 0, warning: "claims 2147483632 bytes, past the end of the file")),
        Case(file: "pcapng-caplen-beyond-block.pcapng",
             outcome: .report(packets: 3, segments: 3, closeWait: 0, warning: "claims a captured length beyond the block")),
        Case(file: "pcapng-truncated-mid-block.pcapng",
             outcome: .report(packets: 5, segments: 5, closeWait: 0, warning: "past the end of the file (cut short or damaged)")),
        // Mixed link types: finscope's own pcapng reader, which stops at a packet for an
        // interface that was never described.
        Case(file: "pcapng-mixed-bad-interface.pcapng",
             outcome: .report(packets: 3, segments: 3, closeWait: 0, warning: "the packet block at byte 284 names interface")),
        // Mixed link types with if_tsresol 2^-40 s: the fraction needs a 128-bit product.
        Case(file: "pcapng-mixed-fine-tsresol.pcapng", outcome: .report(packets: 6, segments: 6, closeWait: 1)),
        // Stamps 4.7e9 s either side of 1970 (9.4e18 ns apart) are clamped to 1970...2116.
        Case(file: "pcapng-extreme-timestamps.pcapng", outcome: .report(packets: 7, segments: 7, closeWait: 1)),
        // Header damage: the bad frame is skipped by reason, the rest is analyzed.
        Case(file: "ipv4-ihl-below-5.pcap", outcome: .report(packets: 7, segments: 6, skipped: [.malformed: 1], closeWait: 1)),
        Case(file: "ipv4-ihl-beyond-packet.pcap", outcome: .report(packets: 7, segments: 6, skipped: [.malformed: 1], closeWait: 1)),
        Case(file: "tcp-offset-below-5.pcap", outcome: .report(packets: 7, segments: 6, skipped: [.malformed: 1], closeWait: 1)),
        Case(file: "tcp-offset-beyond-packet.pcap", outcome: .report(packets: 7, segments: 6, skipped: [.malformed: 1], closeWait: 1)),
        Case(file: "ip-total-length-below-headers.pcap",
             outcome: .report(packets: 7, segments: 6, skipped: [.malformed: 1], closeWait: 1)),
        Case(file: "ip-total-length-below-ihl.pcap", outcome: .report(packets: 7, segments: 6, skipped: [.malformed: 1], closeWait: 1)),
        Case(file: "ipv6-long-extension-chain.pcap", outcome: .report(packets: 7, segments: 6, skipped: [.malformed: 1], closeWait: 1)),
        Case(file: "ipv6-repeated-hop-by-hop.pcap", outcome: .report(packets: 7, segments: 6, skipped: [.malformed: 1], closeWait: 1)),
        Case(file: "claims-65535-in-60-byte-frame.pcap",
             outcome: .report(packets: 7, segments: 6, skipped: [.malformed: 1], closeWait: 1)),
        Case(file: "ipv6-claims-65535-in-80-byte-frame.pcap",
             outcome: .report(packets: 7, segments: 6, skipped: [.malformed: 1], closeWait: 1)),
        // The same 65535-byte claim in a frame whose wire length covers it (tcpdump -s 60).
        Case(file: "snaplen-cut-65535-payload.pcap", outcome: .report(packets: 7, segments: 7, closeWait: 1)),
    ]

    @Test("every committed damaged file has an outcome in the table")
    func everyFileListed() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.directory.path).sorted()
        #expect(files == Self.cases.map(\.file).sorted())
        for file in files {
            let size = try FileManager.default.attributesOfItem(atPath: Self.directory.appendingPathComponent(file).path)[.size] as? Int
            #expect((size ?? 0) <= 4096, "\(file) should stay tiny")
        }
    }

    @Test(.timeLimit(.minutes(1)), arguments: cases)
    func analysisOutcome(_ entry: Case) throws {
        let path = Self.directory.appendingPathComponent(entry.file).path
        switch entry.outcome {
        case .error(let fragment):
            #expect {
                _ = try OfflineAnalysis.analyze(paths: [path])
            } throws: { error in
                guard let error = error as? CaptureError else { return false }
                return error.description.contains(fragment) && !error.description.contains("\n")
            }
        case .report(let packets, let segments, let skipped, let closeWait, let warning):
            let result = try OfflineAnalysis.analyze(paths: [path])
            let source = result.source
            #expect(source.packets == packets)
            #expect(source.tcpSegments == segments)
            for reason in SkipReason.allCases {
                #expect(source.skippedCount(reason) == skipped[reason, default: 0], "\(reason.key)")
            }
            #expect(result.count(.closeWait) == closeWait)
            if let warning {
                #expect(source.warnings.count == 1)
                #expect(source.warnings.first?.contains(warning) == true, "\(source.warnings)")
                #expect(source.warnings.first?.contains("the report covers the packets read before this point") == true)
            } else {
                #expect(source.warnings.isEmpty, "\(source.warnings)")
            }
            #expect(pipelineInvariantProblem(result) == nil)
        }
    }

    @Test("the binary: exit 0 with the report (and a warning line), or exit 2 with one error line",
          .timeLimit(.minutes(1)), arguments: cases)
    func commandLine(_ entry: Case) throws {
        let directory = try TemporaryDirectory()
        let path = Self.directory.appendingPathComponent(entry.file).path
        let run = try finscope(["analyze", "--json", path], in: directory.url)
        switch entry.outcome {
        case .error(let fragment):
            #expect(run.status == 2)
            #expect(run.stdout.isEmpty)
            #expect(run.stderrLines.count == 1)
            #expect(run.stderr.hasPrefix("finscope: error: cannot read \(path): "), "\(run.stderr)")
            #expect(run.stderr.contains(fragment))
        case .report(let packets, _, _, _, let warning):
            #expect(run.status == 0, "\(run.stderr)")
            let source = try jsonSource(run.stdout)
            #expect(source["packets"] as? Int == packets)
            let warnings = source["warnings"] as? [String] ?? []
            if let warning {
                #expect(warnings.count == 1 && warnings[0].contains(warning), "\(warnings)")
                #expect(run.stderrLines.contains { $0.hasPrefix("finscope: warning: ") && $0.contains(warning) }, "\(run.stderr)")
            } else {
                #expect(warnings.isEmpty)
                #expect(!run.stderr.contains("warning"), "\(run.stderr)")
            }
        }
    }

    @Test("times far outside 1970...2116 are clamped, so durations cannot overflow")
    func extremeTimestampsClamped() throws {
        let result = try OfflineAnalysis.analyze(paths: [Self.directory.appendingPathComponent("pcapng-extreme-timestamps.pcapng").path])
        #expect(result.source.start == 0)
        #expect(result.source.end == 4_611_686_017_000_000_000)
    }

    @Test("a pcapng fraction at 2^-40 s resolution converts exactly (128-bit product)")
    func fineTimestampResolution() throws {
        let result = try OfflineAnalysis.analyze(paths: [Self.directory.appendingPathComponent("pcapng-mixed-fine-tsresol.pcapng").path])
        #expect(result.source.start == 1_000_500_000_000)  // 1000.5 s; the 64-bit product gave 1000.013460736 s
    }

    @Test("command-line values that do not fit the nanosecond clock are refused, not a crash",
          arguments: ["1e10", "1e300", "-1", "nan", "inf"])
    func hugeThreshold(_ value: String) throws {
        let directory = try TemporaryDirectory()
        let path = Self.directory.appendingPathComponent("valid.pcap").path
        let run = try finscope(["analyze", "--close-wait-threshold", value, path], in: directory.url)
        #expect(run.status != 0 && run.status < 128, "exit \(run.status): \(run.stderr)")
        #expect(run.stderr.contains("--close-wait-threshold"), "\(run.stderr)")
    }

    @Test("a 65535-byte claim in a frame whose wire length covers it keeps its payload length")
    func snapshotKeepsPayload() throws {
        let result = try OfflineAnalysis.analyze(paths: [Self.directory.appendingPathComponent("snaplen-cut-65535-payload.pcap").path])
        #expect(result.tally.flows == 2)
        #expect(result.source.skipped.reduce(0, +) == 0)
    }

    @Test("Scripts/make-damaged still writes exactly the committed files")
    func generatorMatchesCommittedFiles() throws {
        let python = ["/usr/bin/python3", "/usr/local/bin/python3"].first { FileManager.default.isExecutableFile(atPath: $0) }
        try #require(python != nil, "python3 is needed to run Scripts/make-damaged")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python!)
        process.arguments = [packageRoot.appendingPathComponent("Scripts/make-damaged").path, "--check"]
        let err = Pipe()
        process.standardError = err
        try process.run()
        let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(message)")
    }
}
