import CPcap
import FinscopeCapture
import FinscopeFindings
import FinscopeFlows
import FinscopeWire

/// Where every captured frame goes: count it, decode it in place, and hand the segment to
/// the flow tracker. libpcap files and live capture call the pipeline's own libpcap
/// callbacks (`fileCallback`, `liveCallback`); every other frame source calls
/// `Pipeline.frameHandler`; all of them reach the same inlined `handle`.
///
/// The tracker and the counts live in manually allocated storage rather than in stored
/// properties: the per-frame path works on them through a pointer, so it pays neither the
/// dynamic exclusivity checks of class property access nor retain/release of the class
/// (measured: ~15% of the instructions per frame).
public final class Pipeline {
    /// What the per-frame path updates.
    @usableFromInline
    struct State: ~Copyable {
        var tracker: FlowTracker
        var source: SourceSummary
    }

    @usableFromInline
    let state: UnsafeMutablePointer<State>

    public init(source: SourceSummary, configuration: FlowTracker.Configuration) {
        state = .allocate(capacity: 1)
        state.initialize(to: State(tracker: FlowTracker(configuration: configuration), source: source))
    }

    deinit {
        state.deinitialize(count: 1)
        state.deallocate()
    }

    /// The pipeline's state for a frame source's `sink` argument (valid while the pipeline lives).
    public var sink: UnsafeMutableRawPointer { UnsafeMutableRawPointer(state) }

    public var source: SourceSummary {
        get { state.pointee.source }
        set { state.pointee.source = newValue }
    }

    /// Reads the tracker in place.
    public func withTracker<T>(_ body: (inout FlowTracker) -> T) -> T {
        body(&state.pointee.tracker)
    }

    /// The per-frame entry point for every frame source.
    public static let frameHandler: FrameHandler = { sink, frame in
        let frame = frame.assumingMemoryBound(to: Frame.self)
        handle(frame.pointee.bytes, wireLength: frame.pointee.wireLength, time: frame.pointee.time,
               link: frame.pointee.link, matches: frame.pointee.matches, state: sink.assumingMemoryBound(to: State.self))
    }

    /// libpcap's callback for a file (`PcapFileSource.dispatch(limit:sink:callback:)`): from
    /// libpcap's header to the tracker in one function, with no `Frame` and no indirect call.
    static let fileCallback: pcap_handler = { user, header, data in
        guard let user, let header, let data else { return }
        let loop = UnsafeRawPointer(user).assumingMemoryBound(to: PcapFileSource.Loop.self)
        handle(UnsafeRawBufferPointer(start: data, count: Int(header.pointee.caplen)), wireLength: Int(header.pointee.len),
               time: FrameTime.nanoseconds(header.pointee.ts, nanosecondPrecision: true), link: loop.pointee.link,
               matches: loop.pointee.matches(header, data), state: loop.pointee.sink.assumingMemoryBound(to: State.self))
    }

    /// libpcap's callback for live capture: the same per-frame call as for files, after
    /// the live loop's own step (stop time, packet limit, `-w` copy).
    static let liveCallback: pcap_handler = { user, header, data in
        guard let user, let header, let data else { return }
        let loop = UnsafeMutableRawPointer(user).assumingMemoryBound(to: LiveSource.Loop.self)
        guard let time = loop.pointee.admit(header, data) else { return }
        handle(UnsafeRawBufferPointer(start: data, count: Int(header.pointee.caplen)), wireLength: Int(header.pointee.len),
               time: time, link: loop.pointee.link, matches: true, state: loop.pointee.sink.assumingMemoryBound(to: State.self))
    }

    @inline(__always)
    static func handle(_ bytes: UnsafeRawBufferPointer, wireLength: Int, time: Nanoseconds, link: LinkKind?,
                       matches: Bool, state: UnsafeMutablePointer<State>) {
        // Decoded in place into this frame's storage, then handed to the tracker by address.
        var segment = TCPSegment()
        guard decode(bytes, wireLength: wireLength, time: time, link: link, matches: matches,
                     counts: &state.pointee.source, into: &segment) else { return }
        state.pointee.tracker.process(segment, at: time, payload: Self.payload(of: segment, in: bytes))
    }

    /// A frame's counting and decoding, the same for one thread (`handle`) and for the reader
    /// thread of `ThreadedAnalysis`: true when `segment` holds a TCP segment for the tracker.
    @inline(__always)
    static func decode(_ bytes: UnsafeRawBufferPointer, wireLength: Int, time: Nanoseconds, link: LinkKind?,
                       matches: Bool, counts source: inout SourceSummary, into segment: inout TCPSegment) -> Bool {
        source.noteTime(time)
        // A frame the BPF filter rejected is not analyzed and not counted, but the capture
        // still lasted until it (a connection stays stuck until the capture's end).
        guard matches else { return false }
        source.packets &+= 1
        guard let link else {
            source.skipped[SkipReason.unsupported.rawValue] += 1
            return false
        }
        if let reason = FrameDecoder.decode(bytes, wireLength: wireLength, link: link, into: &segment) {
            source.skipped[reason.rawValue] += 1
            return false
        }
        return true
    }

    /// The captured part of a segment's payload (empty when the snapshot cut it all).
    @inline(__always)
    static func payload(of segment: TCPSegment, in frame: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        let start = segment.payloadOffset
        guard segment.payloadLength > 0, start < frame.count else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(rebasing: frame[start..<min(frame.count, start + Int(segment.payloadLength))])
    }

    /// Notes a time the capture lasted until without a frame (live mode's start and stop).
    public func noteTime(_ time: Nanoseconds) {
        state.pointee.source.noteTime(time)
    }

    /// Reads every frame of `source` (in batches when `progress` wants a word now and then).
    public func read(_ source: any FrameSource, progress: (() -> Void)? = nil) {
        if let file = source.libpcapFile {
            if let progress {
                while file.dispatch(limit: 65_536, sink: sink, callback: Self.fileCallback) > 0 { progress() }
            } else {
                _ = file.dispatch(limit: -1, sink: sink, callback: Self.fileCallback)
            }
        } else if let progress {
            while source.dispatch(limit: 65_536, sink: sink, handler: Self.frameHandler) > 0 { progress() }
        } else {
            _ = source.dispatch(limit: -1, sink: sink, handler: Self.frameHandler)
        }
    }

    /// Runs a live capture into this pipeline (`LiveSource.run`), frames through `liveCallback`.
    public func run(_ capture: LiveSource, deadline: Nanoseconds?, interval: Nanoseconds?,
                    tick: (Nanoseconds) -> Void) -> Nanoseconds {
        capture.run(sink: sink, callback: Self.liveCallback, deadline: deadline, interval: interval, tick: tick)
    }

    /// The analysis of everything handled so far, as of the latest frame time (or `end`).
    public func result(end: Nanoseconds? = nil) -> AnalysisResult {
        var summary = source
        let captureEnd = end ?? summary.end ?? 0
        let (flows, tally) = withTracker { tracker in
            summary.tcpSegments = tracker.segments
            summary.duplicates = tracker.duplicates
            summary.expiredIdle = tracker.expiredIdle
            summary.evicted = tracker.evictedForCapacity
            return tracker.result(captureEnd: captureEnd)
        }
        var result = AnalysisResult(source: summary, closeWaitThreshold: state.pointee.tracker.configuration.closeWaitThreshold,
                                    flows: flows, tally: tally)
        result.closeWaitBelowThreshold = withTracker { $0.closeWaitBelowThreshold(captureEnd: captureEnd) }
        return result
    }
}
