import FinscopeFindings
import FinscopeAnalysis
import FinscopeCapture
import FinscopeFlows
import FinscopeWire
import Foundation
import Testing

/// Replays every input in Tests/Fixtures/fuzz-regressions with the checks of its fuzz
/// target (Fuzz/DecoderFuzz.swift, Fuzz/PipelineFuzz.swift). Files named `decoder-*` are
/// decoder inputs (link byte, two bytes of extra wire length, frame); `pipeline-*` are
/// capture files. Also replays the damaged corpus through the pipeline checks.
@Suite struct FuzzRegressionTests {
    static let directory = fixtures.appendingPathComponent("fuzz-regressions")

    static func inputs(_ prefix: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? [])
            .filter { $0.hasPrefix(prefix) }.sorted()
    }

    static let kinds = LinkKind.allCases  // as Fuzz/DecoderFuzz.swift picks them

    /// The decoder target's invariants; nil when they hold.
    static func decoderProblem(_ input: [UInt8]) -> String? {
        guard input.count >= 3 else { return nil }
        let link = kinds[Int(input[0]) % kinds.count]
        let extra = Int(input[1]) << 8 | Int(input[2])
        // The frame in its own allocation, ending where the bytes end.
        let frame = UnsafeMutableRawBufferPointer.allocate(byteCount: input.count - 3, alignment: 1)
        defer { frame.deallocate() }
        frame.copyBytes(from: input[3...])
        let bytes = UnsafeRawBufferPointer(frame)
        let wire = bytes.count + extra
        let outcome = FrameDecoder.decode(bytes, wireLength: wire, link: link)
        if outcome != FrameDecoder.decode(bytes, wireLength: wire, link: link) { return "not deterministic" }
        if extra == 0, outcome != FrameDecoder.decode(bytes, wireLength: 0, link: link) {
            return "a wire length below the captured length changed the outcome"
        }
        guard case .segment(let segment) = outcome else { return nil }
        if Int(segment.payloadLength) + 40 > (link == .nflog ? 65535 + 40 : wire) {
            return "payload \(segment.payloadLength) in a \(wire)-byte frame"
        }
        if segment.payloadOffset < 20 || segment.payloadOffset > bytes.count { return "payload offset \(segment.payloadOffset)" }
        if segment.windowScale < -1 || segment.windowScale > 14 { return "window scale \(segment.windowScale)" }
        if segment.windowScale != -1, !segment.flags.contains(.syn) { return "window scale on a non-SYN" }
        if IPAddress(segment.source.description) != segment.source { return "address text round trip" }
        return nil
    }

    @Test(.timeLimit(.minutes(1)), arguments: inputs("decoder-"))
    func decoderInput(_ name: String) throws {
        let input = try [UInt8](Data(contentsOf: Self.directory.appendingPathComponent(name)))
        #expect(Self.decoderProblem(input) == nil)
    }

    @Test(.timeLimit(.minutes(1)), arguments: inputs("pipeline-") + DamagedCorpusTests.cases.map { "../damaged/" + $0.file })
    func pipelineInput(_ name: String) throws {
        let path = Self.directory.appendingPathComponent(name).standardizedFileURL.path
        // As the fuzz target runs it: a small flow cap so that eviction runs, the filter for odd sizes.
        let size = (try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        var options = AnalysisOptions(closeWaitThreshold: 1_000_000_000, maxFlows: 8)
        if size & 1 == 1 { options.filter = "tcp" }
        let result: AnalysisResult
        do {
            result = try OfflineAnalysis.analyze(paths: [path], options: options)
        } catch is CaptureError {
            return
        }
        #expect(pipelineInvariantProblem(result) == nil)
    }

    @Test("the decoder regressions decode to what the fixes decided")
    func decoderRegressionOutcomes() throws {
        func outcome(_ name: String) throws -> DecodeOutcome {
            let input = try [UInt8](Data(contentsOf: Self.directory.appendingPathComponent(name)))
            return input[3...].withUnsafeBytes {
                FrameDecoder.decode($0, wireLength: $0.count, link: Self.kinds[Int(input[0]) % Self.kinds.count])
            }
        }
        #expect(try outcome("decoder-ipv6-hop-by-hop-not-first") == .skipped(.malformed))
        #expect(try outcome("decoder-ipv4-ihl-beyond-wire") == .skipped(.malformed))
    }

    @Test("the decoder checks catch what they should")
    func decoderChecksWork() {
        // A minimal IPv4/TCP frame (raw IP, kind 3) decodes and passes.
        var frame: [UInt8] = [3, 0, 0, 0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]
        frame += [0x9c, 0x40, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]
        #expect(Self.decoderProblem(frame) == nil)
        #expect(FrameDecoder.decode(UnsafeRawBufferPointer(start: nil, count: 0), wireLength: 0, link: .ethernet) == .skipped(.truncated))
    }
}
