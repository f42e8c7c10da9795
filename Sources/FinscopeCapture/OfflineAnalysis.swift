import FinscopeFlows
import FinscopeWire

/// Options shared by the offline and live analyses.
public struct AnalysisOptions: Sendable {
    public var closeWaitThreshold: Nanoseconds = 5_000_000_000
    /// A BPF expression (pcap-filter(7)) applied through libpcap.
    public var filter: String?
    /// Keep every flow's report (needed for `--json` and `--flows`), or only flows with findings.
    public var retainAllFlows = true
    /// The most flows tracked at once (`--max-flows`).
    public var maxFlows = 1_000_000
    /// Drop flows idle this long (nil: never; the offline default).
    public var idleTimeout: Nanoseconds?

    public init(closeWaitThreshold: Nanoseconds = 5_000_000_000, filter: String? = nil,
                retainAllFlows: Bool = true, maxFlows: Int = 1_000_000, idleTimeout: Nanoseconds? = nil) {
        self.closeWaitThreshold = closeWaitThreshold
        self.filter = filter
        self.retainAllFlows = retainAllFlows
        self.maxFlows = maxFlows
        self.idleTimeout = idleTimeout
    }

    public var trackerConfiguration: FlowTracker.Configuration {
        FlowTracker.Configuration(closeWaitThreshold: closeWaitThreshold, idleTimeout: idleTimeout,
                                  maxFlows: maxFlows, retainAllFlows: retainAllFlows)
    }
}

/// Reads capture files and analyzes them as one stream.
///
/// Several files are merged in timestamp order (as `mergecap` does by default), so
/// rotated files (`tcpdump -C/-G`) and captures taken at once on two interfaces both come
/// out right; each file's own order is kept, and ties go to the file named first.
public enum OfflineAnalysis {
    /// Throws only when no input could be read at all; damage met while reading becomes a
    /// warning in `source.warnings`, and the report covers what was read.
    public static func analyze(paths: [String], options: AnalysisOptions = AnalysisOptions(),
                               hooks: AnalysisHooks = AnalysisHooks()) throws -> AnalysisResult {
        guard !paths.isEmpty else { throw CaptureError.noInput }
        var needOwnReader = Set<String>()
        // A restart reads the same frames again in the same order, so the flows finished
        // before it finish again, first and identically: pass on only the ones not yet seen.
        let finished = FinishedCounter(hooks.finished)
        while true {
            do {
                finished.restart()
                return try run(paths: paths, options: options, needOwnReader: needOwnReader,
                               hooks: AnalysisHooks(finished: hooks.finished == nil ? nil : finished.pass,
                                                    progress: hooks.progress))
            } catch let restart as RestartWithOwnReader {
                // libpcap cannot read pcapng files whose interfaces differ in link type or
                // snapshot length; read that one again from the start with finscope's own reader.
                needOwnReader.insert(restart.path)
            }
        }
    }

    private struct RestartWithOwnReader: Error {
        var path: String
    }

    private final class FinishedCounter {
        let handler: ((FlowReport) -> Void)?
        var passed = 0
        var seen = 0
        init(_ handler: ((FlowReport) -> Void)?) { self.handler = handler }
        func restart() { seen = 0 }
        func pass(_ report: FlowReport) {
            seen += 1
            if seen > passed {
                passed = seen
                handler?(report)
            }
        }
    }

    private static func run(paths: [String], options: AnalysisOptions,
                            needOwnReader: Set<String>, hooks: AnalysisHooks) throws -> AnalysisResult {
        var source = SourceSummary(kind: .file, name: paths.joined(separator: ", "))
        var readers: [any FrameReader] = []
        var firstError: CaptureError?
        for path in paths {
            do {
                if needOwnReader.contains(path) {
                    readers.append(try PcapNGReader(path: path, filter: options.filter))
                    continue
                }
                let reader = try PcapFileReader(path: path)
                if reader.link == nil {
                    throw CaptureError.unsupportedLinkType(path: path, linkType: reader.linkType, name: reader.linkTypeName)
                }
                if let filter = options.filter { try reader.setFilter(filter) }
                readers.append(reader)
            } catch let error as CaptureError {
                if case .badFilter = error { throw error }
                firstError = firstError ?? error
                source.warnings.append(error.description)
            }
        }
        if readers.isEmpty { throw firstError ?? CaptureError.noInput }

        let pipeline = Pipeline(source: source, configuration: options.trackerConfiguration)
        pipeline.tracker.finishedHandler = hooks.finished
        let meter = hooks.progress.map { ProgressMeter(readers: readers, report: $0) }
        let progress: (() -> Void)? = meter.map { meter in { meter.update(packets: pipeline.source.packets) } }
        // One libpcap file takes the fast `pcap_dispatch` loop; the rest are merged.
        if readers.count == 1, let only = readers[0] as? PcapFileReader {
            only.dispatchAll(into: pipeline, progress: progress)
        } else {
            merge(readers, into: pipeline, progress: progress)
        }
        for (reader, path) in zip(readers, readers.map(\.path)) {
            guard let error = reader.readError else { continue }
            if reader is PcapFileReader, PcapFileReader.isMixedInterfacesError(error) {
                throw RestartWithOwnReader(path: path)
            }
            pipeline.source.warnings.append(
                "\(path): \(error); the report covers the packets read before this point")
        }
        if hooks.finished != nil { pipeline.tracker.finishAll(captureEnd: pipeline.source.end ?? 0) }
        return pipeline.result()
    }

    /// Merges the readers' frames in timestamp order.
    private static func merge(_ readers: [any FrameReader], into pipeline: Pipeline, progress: (() -> Void)? = nil) {
        var heads: [Frame?] = readers.map { $0.next() }
        var frames = 0
        while true {
            frames += 1
            if frames & 0xFFFF == 0 { progress?() }
            var best = -1
            for index in heads.indices {
                guard let frame = heads[index] else { continue }
                if best < 0 || frame.time < heads[best]!.time { best = index }
            }
            if best < 0 { return }
            let frame = heads[best]!
            if frame.matches {
                pipeline.handle(frame.bytes, wireLength: frame.wireLength, time: frame.time, link: frame.link)
            } else {
                pipeline.noteUnmatched(time: frame.time)
            }
            heads[best] = readers[best].next()
        }
    }
}

/// A source of frames read one at a time (used when merging several files).
protocol FrameReader: AnyObject {
    var path: String { get }
    var readError: String? { get }
    func next() -> Frame?
}

extension PcapFileReader: FrameReader {}
extension PcapNGReader: FrameReader {}
