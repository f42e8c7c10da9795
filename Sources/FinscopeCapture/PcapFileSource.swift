import CPcap
import FinscopeWire
import Foundation

/// A classic pcap file read through libpcap, timestamps in nanoseconds: a plain file by
/// path, or a stream (compressed, standard input) through a stdio FILE over it.
public final class PcapFileSource: FrameSource {
    public let name: String
    let handle: OpaquePointer
    /// The file's LINKTYPE_ value and what finscope decodes it as (nil: not decoded).
    public let linkType: Int32
    public let link: LinkKind?
    private var libpcapError: String?
    public let totalBytes: Int64
    private let filter: BPFProgram?
    /// The stream libpcap reads, when not a plain file.
    private let stream: ByteStream?

    /// The stream's own trouble (cut short, damaged compression) explains a record that
    /// ends early better than libpcap's "truncated dump file" does.
    public var readError: String? { stream?.error ?? libpcapError }

    /// Opens `path`; a link type finscope does not decode is an error for the file.
    public convenience init(path: String, filter expression: String?) throws {
        var errorBuffer = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
        guard let handle = pcap_open_offline_with_tstamp_precision(
            path, UInt32(PCAP_TSTAMP_PRECISION_NANO), &errorBuffer) else {
            let message = errorBuffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            throw CaptureError.cannotRead(path: path, reason: CaptureError.explain(message))
        }
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.int64Value ?? 0
        try self.init(name: path, handle: handle, stream: nil, totalBytes: size, filter: expression)
    }

    /// Reads a pcap stream (decompressed, or standard input) through libpcap.
    convenience init(name: String, stream: ByteStream, filter expression: String?) throws {
        guard let file = stream.file() else {
            throw CaptureError.cannotRead(path: name, reason: String(cString: strerror(errno)))
        }
        var errorBuffer = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
        guard let handle = pcap_fopen_offline_with_tstamp_precision(
            file, UInt32(PCAP_TSTAMP_PRECISION_NANO), &errorBuffer) else {
            fclose(file)
            let message = errorBuffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            throw CaptureError.cannotRead(path: name, reason: stream.error ?? CaptureError.explain(message))
        }
        try self.init(name: name, handle: handle, stream: stream, totalBytes: stream.totalBytes, filter: expression)
    }

    private init(name: String, handle: OpaquePointer, stream: ByteStream?, totalBytes: Int64, filter expression: String?) throws {
        self.name = name
        self.handle = handle
        self.stream = stream
        self.totalBytes = totalBytes
        linkType = pcap_datalink(handle)
        link = LinkKind(linkType: linkType)
        guard link != nil else {
            let linkName = pcap_datalink_val_to_name(linkType).map { String(cString: $0) } ?? "unknown"
            pcap_close(handle)
            throw CaptureError.unsupportedLinkType(source: name, linkType: linkType, name: linkName)
        }
        do {
            filter = try expression.map { try BPFProgram(expression: $0, handle: handle) }
        } catch {
            pcap_close(handle)
            throw error
        }
    }

    deinit {
        pcap_close(handle)
    }

    /// The snapshot length the file declares.
    public var snapLength: Int32 { pcap_snapshot(handle) }

    /// Where libpcap's reading stands in the file (a buffered FILE position), or the raw
    /// (compressed) bytes the stream consumed.
    public var bytesRead: Int64 {
        if let stream { return stream.consumed }
        guard let file = pcap_file(handle) else { return 0 }
        return Int64(ftello(file))
    }

    public func next() -> Frame? {
        var header: UnsafeMutablePointer<pcap_pkthdr>?
        var data: UnsafePointer<UInt8>?
        let status = pcap_next_ex(handle, &header, &data)
        if status == 1, let header, let data {
            return Frame(bytes: UnsafeRawBufferPointer(start: data, count: Int(header.pointee.caplen)),
                         wireLength: Int(header.pointee.len),
                         time: FrameTime.nanoseconds(header.pointee.ts, nanosecondPrecision: true), link: link,
                         matches: filter?.matches(header, data) ?? true)
        }
        if status == PCAP_ERROR { libpcapError = String(cString: pcap_geterr(handle)) }
        return nil
    }

    public var libpcapFile: PcapFileSource? { self }

    /// libpcap's read loop, `pcap_dispatch`, into `handler`.
    public func dispatch(limit: Int, sink: UnsafeMutableRawPointer, handler: FrameHandler) -> Int {
        // A plain struct behind the `user` pointer: no class, so no retain/release and no
        // dynamic exclusivity checks per frame.
        var context = DispatchContext(handler: handler, loop: makeLoop(sink))
        return withUnsafeMutablePointer(to: &context) { run(limit, user: UnsafeMutableRawPointer($0), callback: Self.callback) }
    }

    /// `pcap_dispatch` with the consumer's own libpcap callback, which receives a pointer to
    /// a `Loop` as its `user` argument. The consumer's per-frame work then runs inside the
    /// callback, compiled with it: no `Frame` built, no indirect call per frame. (Capture
    /// cannot name the consumer's types; the consumer names libpcap's.)
    public func dispatch(limit: Int, sink: UnsafeMutableRawPointer, callback: pcap_handler) -> Int {
        var loop = makeLoop(sink)
        return withUnsafeMutablePointer(to: &loop) { run(limit, user: UnsafeMutableRawPointer($0), callback: callback) }
    }

    private func makeLoop(_ sink: UnsafeMutableRawPointer) -> Loop {
        Loop(sink: sink, link: link, filter: filter.map { UnsafePointer($0.program) })
    }

    private func run(_ limit: Int, user: UnsafeMutableRawPointer, callback: pcap_handler) -> Int {
        let status = withExtendedLifetime(filter) {
            pcap_dispatch(handle, Int32(clamping: limit < 0 ? -1 : limit), callback, user.assumingMemoryBound(to: UInt8.self))
        }
        if status == PCAP_ERROR {
            libpcapError = String(cString: pcap_geterr(handle))
            return 0
        }
        return max(0, Int(status))
    }

    /// What a consumer's callback gets from `dispatch(limit:sink:callback:)`. Frame times are
    /// nanoseconds (files are opened at nanosecond precision).
    public struct Loop {
        public let sink: UnsafeMutableRawPointer
        public let link: LinkKind?
        /// The filter's compiled program (the source keeps its owner alive across the loop):
        /// a plain pointer, so testing a frame retains nothing.
        @usableFromInline let filter: UnsafePointer<bpf_program>?

        /// Whether the BPF filter (if any) passes the frame.
        @inlinable @inline(__always)
        public func matches(_ header: UnsafePointer<pcap_pkthdr>, _ data: UnsafePointer<UInt8>) -> Bool {
            guard let filter else { return true }
            return pcap_offline_filter(filter, header, data) != 0
        }
    }

    private struct DispatchContext {
        let handler: FrameHandler
        let loop: Loop
    }

    private static let callback: pcap_handler = { user, header, data in
        guard let user, let header, let data else { return }
        let context = UnsafeRawPointer(user).assumingMemoryBound(to: DispatchContext.self)
        var frame = Frame(bytes: UnsafeRawBufferPointer(start: data, count: Int(header.pointee.caplen)),
                          wireLength: Int(header.pointee.len),
                          time: FrameTime.nanoseconds(header.pointee.ts, nanosecondPrecision: true),
                          link: context.pointee.loop.link, matches: context.pointee.loop.matches(header, data))
        withUnsafePointer(to: &frame) { context.pointee.handler(context.pointee.loop.sink, UnsafeRawPointer($0)) }
    }
}

