import FinscopeFlows
import FinscopeWire

/// Where every captured frame goes: count it, decode it in place, and hand the segment to
/// the flow tracker. A class so that libpcap's C callback can reach it through its
/// `user` pointer.
public final class Pipeline {
    public var tracker: FlowTracker
    public var source: SourceSummary

    public init(source: SourceSummary, configuration: FlowTracker.Configuration) {
        self.source = source
        self.tracker = FlowTracker(configuration: configuration)
    }

    @inline(__always)
    public func handle(_ frame: UnsafeRawBufferPointer, wireLength: Int, time: Nanoseconds, link: LinkKind?) {
        source.packets += 1
        source.noteTime(time)
        guard let link else {
            source.skipped[SkipReason.unsupported.rawValue] += 1
            return
        }
        switch FrameDecoder.decode(frame, wireLength: wireLength, link: link) {
        case .segment(let segment):
            tracker.process(segment, at: time)
        case .skipped(let reason):
            source.skipped[reason.rawValue] += 1
        }
    }

    /// A frame the BPF filter rejected: not analyzed and not counted, but the capture
    /// still lasted until it (a connection stays stuck until the capture's end).
    @inline(__always)
    public func noteUnmatched(time: Nanoseconds) {
        source.noteTime(time)
    }

    /// The analysis of everything handled so far, as of the latest frame time (or `end`).
    public func result(end: Nanoseconds? = nil) -> AnalysisResult {
        var summary = source
        summary.tcpSegments = tracker.segments
        summary.duplicates = tracker.duplicates
        summary.expiredIdle = tracker.expiredIdle
        summary.evicted = tracker.evictedForCapacity
        let captureEnd = end ?? summary.end ?? 0
        let (flows, tally) = tracker.result(captureEnd: captureEnd)
        return AnalysisResult(source: summary, closeWaitThreshold: tracker.configuration.closeWaitThreshold,
                              flows: flows, tally: tally)
    }
}
