import Foundation
import Testing
import FinscopeAnalysis
import FinscopeCapture
import FinscopeFindings
import FinscopeFlows
import FinscopeReport

/// A libpcap file is read through the pipeline's own libpcap callback (`PcapFileSource.libpcapFile`);
/// every other source through `Frame`s and `Pipeline.frameHandler`. Both must come to the
/// same analysis: the replay tests check the first against the expected results, this
/// suite checks the second against the first.
@Suite struct ReadPathTests {
    static let captures = packageRoot.appendingPathComponent("captures")

    /// Every classic pcap file of the corpus (pcapng has its own reader, not libpcap's).
    static func pcapFiles() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: captures.path)) ?? []
        return names.filter { $0.hasSuffix(".pcap") }.sorted()
    }

    /// The same file, offered only frame by frame (`next()`), so it takes the `Frame` path.
    final class FramesOnly: FrameSource {
        let inner: PcapFileSource
        init(_ inner: PcapFileSource) { self.inner = inner }
        var name: String { inner.name }
        var readError: String? { inner.readError }
        var bytesRead: Int64 { inner.bytesRead }
        var totalBytes: Int64 { inner.totalBytes }
        func next() -> Frame? { inner.next() }
    }

    static func analysis(_ source: any FrameSource, progress: Bool) -> String {
        let pipeline = Pipeline(source: SourceSummary(kind: .file, name: source.name),
                                configuration: AnalysisOptions().trackerConfiguration)
        var batches = 0
        pipeline.read(source, progress: progress ? { batches += 1 } : nil)
        return JSONReport.render(pipeline.result())
    }

    @Test func theCorpusHasPcapFiles() {
        #expect(Self.pcapFiles().count >= 10)
    }

    @Test(arguments: pcapFiles())
    func samePathResult(_ name: String) throws {
        let path = Self.captures.appendingPathComponent(name).path
        for filter in [nil, "tcp port 80 or tcp port 443", "less 100"] as [String?] {
            // libpcap compiles no filter for some link types (NFLOG, IPoIB): those files unfiltered only.
            guard filter == nil || (try? PcapFileSource(path: path, filter: filter)) != nil else { continue }
            let fast = try PcapFileSource(path: path, filter: filter)
            #expect(fast.libpcapFile === fast)
            let slow = FramesOnly(try PcapFileSource(path: path, filter: filter))
            #expect(slow.libpcapFile == nil)
            let viaCallback = Self.analysis(fast, progress: false)
            #expect(viaCallback == Self.analysis(slow, progress: false), "\(name), filter \(filter ?? "none")")
            // In 65,536-frame batches (the progress line's loop) as in one call.
            #expect(viaCallback == Self.analysis(try PcapFileSource(path: path, filter: filter), progress: true))
        }
    }

    @Test func mergedFilesTakeTheFastPathOnlyAlone() throws {
        let first = Self.captures.appendingPathComponent(Self.pcapFiles()[0]).path
        let second = Self.captures.appendingPathComponent(Self.pcapFiles()[1]).path
        let one = try PcapFileSource(path: first, filter: nil)
        #expect(MergedFrames([one]).libpcapFile === one)
        let two = MergedFrames([try PcapFileSource(path: first, filter: nil), try PcapFileSource(path: second, filter: nil)])
        #expect(two.libpcapFile == nil)
        // A lone source already read through `next()` holds a frame the loop would skip.
        let started = MergedFrames([try PcapFileSource(path: first, filter: nil)])
        _ = started.next()
        #expect(started.libpcapFile == nil)
    }
}
