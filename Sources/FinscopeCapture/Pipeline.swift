import FinscopeFlows
import FinscopeWire

/// Where every captured frame goes: count it, decode it in place, and hand the segment to
/// the flow tracker. A class so that libpcap's C callback can reach it through its
/// `user` pointer.
///
/// The tracker and the counts live in manually allocated storage rather than in stored
/// properties: the per-frame path (`Pipeline.handle(_:wireLength:time:link:state:)`) works
/// on them through a pointer, so it pays neither the dynamic exclusivity checks of class
/// property access nor retain/release of the class (measured: ~15% of the instructions
/// per frame).
public final class Pipeline {
    /// What the per-frame path updates.
    @usableFromInline
    struct State {
        var tracker: FlowTracker
        var source: SourceSummary
    }

    @usableFromInline
    let state: UnsafeMutablePointer<State>

    public var tracker: FlowTracker {
        unsafeAddress { UnsafePointer(state.pointer(to: \.tracker)!) }
        unsafeMutableAddress { state.pointer(to: \.tracker)! }
    }

    public var source: SourceSummary {
        unsafeAddress { UnsafePointer(state.pointer(to: \.source)!) }
        unsafeMutableAddress { state.pointer(to: \.source)! }
    }

    public init(source: SourceSummary, configuration: FlowTracker.Configuration) {
        state = .allocate(capacity: 1)
        state.initialize(to: State(tracker: FlowTracker(configuration: configuration), source: source))
    }

    deinit {
        state.deinitialize(count: 1)
        state.deallocate()
    }

    @inline(__always)
    public func handle(_ frame: UnsafeRawBufferPointer, wireLength: Int, time: Nanoseconds, link: LinkKind?) {
        Self.handle(frame, wireLength: wireLength, time: time, link: link, state: state)
    }

    /// The per-frame path, on the pipeline's state (valid while the pipeline lives).
    @inline(__always)
    static func handle(_ frame: UnsafeRawBufferPointer, wireLength: Int, time: Nanoseconds, link: LinkKind?,
                       state: UnsafeMutablePointer<State>) {
        state.pointee.source.packets &+= 1
        state.pointee.source.noteTime(time)
        guard let link else {
            state.pointee.source.skipped[SkipReason.unsupported.rawValue] += 1
            return
        }
        switch FrameDecoder.decode(frame, wireLength: wireLength, link: link) {
        case .segment(let segment):
            state.pointee.tracker.process(segment, at: time)
        case .skipped(let reason):
            state.pointee.source.skipped[reason.rawValue] += 1
        }
    }

    /// A frame the BPF filter rejected: not analyzed and not counted, but the capture
    /// still lasted until it (a connection stays stuck until the capture's end).
    @inline(__always)
    public func noteUnmatched(time: Nanoseconds) {
        state.pointee.source.noteTime(time)
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
