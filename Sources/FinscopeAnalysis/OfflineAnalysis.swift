import FinscopeCapture
import FinscopeFindings
import FinscopeFlows
import FinscopeWire

/// Options shared by the offline and live analyses; defaults from `FlowTracker.Defaults`.
public struct AnalysisOptions: Sendable {
    public var closeWaitThreshold: Nanoseconds = FlowTracker.Defaults.closeWaitThreshold
    /// A BPF expression (pcap-filter(7)) applied through libpcap.
    public var filter: String?
    /// Keep every flow's report (needed for `--json` and `--flows`), or only flows with findings.
    public var retainAllFlows = true
    /// The most flows tracked at once (`--max-flows`).
    public var maxFlows = FlowTracker.Defaults.maxFlows
    /// Drop flows idle this long (nil: never; the offline default).
    public var idleTimeout: Nanoseconds?
    /// Keep standard input (`-`) in a spool file as it is read, for a second pass
    /// (`FlowPackets`: ladders, exports, the HTML page).
    public var keepStandardInput = false
    /// Threads for an offline read (`--threads`): 2 reads and decodes on one and tracks flows
    /// on the other (`ThreadedAnalysis`), when every input is read by the own pcap reader;
    /// 1 (or any other input) is the single-threaded read. The results are the same.
    public var threads = 1

    public init(closeWaitThreshold: Nanoseconds = FlowTracker.Defaults.closeWaitThreshold, filter: String? = nil,
                retainAllFlows: Bool = true, maxFlows: Int = FlowTracker.Defaults.maxFlows,
                idleTimeout: Nanoseconds? = nil) {
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

/// Hooks into an offline analysis, for output that streams or shows progress.
public struct AnalysisHooks {
    /// Each flow's report as the flow leaves the flow table, in finishing order; the flows
    /// still open at the end follow in id order (for `--ndjson`).
    public var finished: ((FlowReport) -> Void)?
    /// Called about every 65,536 frames with how far reading got (for a progress line).
    public var progress: ((ReadProgress) -> Void)?

    public init(finished: ((FlowReport) -> Void)? = nil, progress: ((ReadProgress) -> Void)? = nil) {
        self.finished = finished
        self.progress = progress
    }
}

/// How far an offline read got.
public struct ReadProgress: Sendable, Equatable {
    /// Bytes of the input files consumed so far (as far as the readers can tell).
    public var bytesRead: Int64
    /// Total size of the input files.
    public var totalBytes: Int64
    public var packets: Int

    public var fraction: Double { totalBytes > 0 ? min(1, Double(bytesRead) / Double(totalBytes)) : 0 }
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
        try analyzeKeepingPipeline(paths: paths, options: options, hooks: hooks).result
    }

    /// The analysis and the pipeline behind it, whose open flows can be reported again as of
    /// a later time (`analyze --proc`: as of the kernel check, `pipeline.result(end:)`).
    public static func analyzeKeepingPipeline(paths: [String], options: AnalysisOptions = AnalysisOptions(),
                                              hooks: AnalysisHooks = AnalysisHooks()) throws -> (result: AnalysisResult, pipeline: Pipeline) {
        var summary = SourceSummary(kind: .file, name: paths.joined(separator: ", "))
        if options.keepStandardInput, paths.contains(CaptureFiles.standardInput) {
            try StandardInput.shared.keepForSecondPass()
        }
        let input = try openAll(paths: paths, filter: options.filter, warnings: &summary.warnings)
        let pipeline = Pipeline(source: summary, configuration: options.trackerConfiguration)
        if let finished = hooks.finished { pipeline.withTracker { $0.finishedHandler = finished } }
        if options.threads >= 2, ThreadedAnalysis.canSplit(input) {
            // The finished hook then runs on the tracker thread.
            let progress = hooks.progress.map { report in
                { (packets: Int) in report(ReadProgress(bytesRead: input.bytesRead, totalBytes: input.totalBytes, packets: packets)) }
            }
            ThreadedAnalysis.read(input, into: pipeline, progress: progress)
        } else {
            let progress = hooks.progress.map { report in
                { report(ReadProgress(bytesRead: input.bytesRead, totalBytes: input.totalBytes, packets: pipeline.source.packets)) }
            }
            pipeline.read(input, progress: progress)
        }
        // A second pass over a spool missing some of standard input would differ silently.
        if options.keepStandardInput, paths.contains(CaptureFiles.standardInput),
           let problem = StandardInput.shared.spoolProblem() {
            throw problem
        }
        for source in input.sources {
            guard let error = source.readError else { continue }
            pipeline.source.warnings.append(
                "\(source.name): \(error); the report covers the packets read before this point")
        }
        // pcapng from dumpcap/Wireshark (and `live --write x.pcapng`) says when the capture
        // stopped: a hint in the report; the capture's end stays the last frame.
        for case let source as PcapNGSource in input.sources {
            if let stopped = source.stoppedAt, stopped > (pipeline.source.stoppedAt ?? .min) { pipeline.source.stoppedAt = stopped }
        }
        if hooks.finished != nil {
            let end = pipeline.source.end ?? 0
            pipeline.withTracker { $0.finishAll(captureEnd: end) }
        }
        return (pipeline.result(), pipeline)
    }

    /// The readable inputs, merged; a file that cannot be read is a warning while another
    /// can, and a bad filter is an error at once.
    static func openAll(paths: [String], filter: String?, warnings: inout [String]) throws -> MergedFrames {
        guard !paths.isEmpty else { throw CaptureError.noInput }
        if paths.filter({ $0 == CaptureFiles.standardInput }).count > 1 {
            throw CaptureError.cannotRead(path: StandardInput.displayName, reason: "'-' may be given only once")
        }
        var sources: [any FrameSource] = []
        var firstError: CaptureError?
        for path in paths {
            do {
                sources.append(try CaptureFiles.open(path: path, filter: filter))
            } catch let error as CaptureError {
                if case .badFilter = error { throw error }
                firstError = firstError ?? error
                warnings.append(error.description)
            }
        }
        if sources.isEmpty { throw firstError ?? CaptureError.noInput }
        return MergedFrames(sources)
    }
}
