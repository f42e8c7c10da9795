import FinscopeWire

/// One captured frame; `bytes` is valid until the source's next call.
public struct Frame {
    public var bytes: UnsafeRawBufferPointer
    public var wireLength: Int
    public var time: Nanoseconds
    /// nil for a link type finscope does not decode (its frames count `unsupported`).
    public var link: LinkKind?
    /// False when a BPF filter rejected the frame: only its time counts (the capture's end).
    public var matches: Bool = true

    public init(bytes: UnsafeRawBufferPointer, wireLength: Int, time: Nanoseconds, link: LinkKind?, matches: Bool = true) {
        self.bytes = bytes
        self.wireLength = wireLength
        self.time = time
        self.link = link
        self.matches = matches
    }
}

/// Where a source hands its frames on the fast path: a plain C function and an opaque
/// pointer to the consumer's state. No class, no closure context, no existential: the
/// per-frame call costs one indirect call and allocates nothing. `frame` points to a
/// `Frame`, valid for the duration of the call.
public typealias FrameHandler = @convention(c) (_ sink: UnsafeMutableRawPointer, _ frame: UnsafeRawPointer) -> Void

/// A source of frames: a libpcap file, finscope's own pcapng reader, several files merged,
/// or a live interface (which pushes frames from its own loop, see `LiveSource`).
public protocol FrameSource: AnyObject {
    /// The file or interface, for messages.
    var name: String { get }
    /// Set when reading stopped on damage rather than at the end.
    var readError: String? { get }
    /// Input bytes consumed so far and in all, for a progress line (0 when unknown).
    var bytesRead: Int64 { get }
    var totalBytes: Int64 { get }
    /// The next frame (filtered frames included, `matches` false), or nil at the end.
    func next() -> Frame?
    /// Hands up to `limit` frames (all when negative) to `handler`; returns how many, 0 at the end.
    func dispatch(limit: Int, sink: UnsafeMutableRawPointer, handler: FrameHandler) -> Int
    /// The libpcap file to read with the consumer's own callback
    /// (`PcapFileSource.dispatch(limit:sink:callback:)`), when the frames come from one; nil otherwise.
    var libpcapFile: PcapFileSource? { get }
}

extension FrameSource {
    public var libpcapFile: PcapFileSource? { nil }

    /// The pull loop; libpcap files override it with `pcap_dispatch`.
    public func dispatch(limit: Int, sink: UnsafeMutableRawPointer, handler: FrameHandler) -> Int {
        var count = 0
        while limit < 0 || count < limit, var frame = next() {
            withUnsafePointer(to: &frame) { handler(sink, UnsafeRawPointer($0)) }
            count += 1
        }
        return count
    }
}

/// Several sources merged in timestamp order (as `mergecap` does by default): each
/// source's own order is kept, and ties go to the source named first.
public final class MergedFrames: FrameSource {
    public let sources: [any FrameSource]
    private var heads: [Frame?]
    /// The source whose head was handed out last: it advances at the next call, since its
    /// frame's bytes stay valid only until then.
    private var handedOut = -1

    public init(_ sources: [any FrameSource]) {
        self.sources = sources
        heads = []  // filled at the first `next()`, so a lone source keeps its own loop
    }

    public var name: String { sources.map(\.name).joined(separator: ", ") }
    public var readError: String? { nil }  // each source keeps its own
    public var bytesRead: Int64 { sources.reduce(0) { $0 + $1.bytesRead } }
    public var totalBytes: Int64 { sources.reduce(0) { $0 + $1.totalBytes } }

    public func next() -> Frame? {
        if heads.isEmpty { heads = sources.map { $0.next() } }
        if handedOut >= 0 {
            heads[handedOut] = sources[handedOut].next()
            handedOut = -1
        }
        var best = -1
        var bestTime = Nanoseconds.max
        for index in heads.indices {
            guard let frame = heads[index] else { continue }
            if best < 0 || frame.time < bestTime {
                best = index
                bestTime = frame.time
            }
        }
        guard best >= 0 else { return nil }
        handedOut = best
        return heads[best]
    }

    /// A lone libpcap file, not yet read through `next()`, keeps libpcap's loop.
    public var libpcapFile: PcapFileSource? { sources.count == 1 && heads.isEmpty ? sources[0].libpcapFile : nil }

    /// One source keeps its own fast loop; several are merged frame by frame.
    public func dispatch(limit: Int, sink: UnsafeMutableRawPointer, handler: FrameHandler) -> Int {
        if sources.count == 1, heads.isEmpty { return sources[0].dispatch(limit: limit, sink: sink, handler: handler) }
        var count = 0
        while limit < 0 || count < limit, var frame = next() {
            withUnsafePointer(to: &frame) { handler(sink, UnsafeRawPointer($0)) }
            count += 1
        }
        return count
    }
}
