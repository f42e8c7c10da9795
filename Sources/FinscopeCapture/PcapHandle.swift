import CPcap
import FinscopeFlows
import FinscopeWire

/// One frame handed out by a reader; `bytes` is valid until the reader's next call.
public struct Frame {
    public var bytes: UnsafeRawBufferPointer
    public var wireLength: Int
    public var time: Nanoseconds
    public var link: LinkKind?
    /// False when a BPF filter rejected the frame: only its time counts (the capture's end).
    public var matches: Bool = true
}

/// A capture file opened through libpcap, timestamps in nanoseconds.
final class PcapFileReader {
    let path: String
    let handle: OpaquePointer
    let linkType: Int32
    let link: LinkKind?
    /// Set when reading stopped on an error rather than at the end of the file.
    private(set) var readError: String?
    /// The BPF filter, run per frame with `pcap_offline_filter` rather than installed with
    /// `pcap_setfilter`, so that frames it rejects still show when the capture ended.
    private var filter: UnsafeMutablePointer<bpf_program>?

    init(path: String) throws {
        var errorBuffer = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
        guard let handle = pcap_open_offline_with_tstamp_precision(
            path, UInt32(PCAP_TSTAMP_PRECISION_NANO), &errorBuffer) else {
            throw CaptureError.cannotOpen(path: path, reason: Self.explain(errorBuffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }))
        }
        self.path = path
        self.handle = handle
        linkType = pcap_datalink(handle)
        link = LinkKind(linkType: linkType)
    }

    deinit {
        if let filter {
            pcap_freecode(filter)
            filter.deallocate()
        }
        pcap_close(handle)
    }

    var linkTypeName: String {
        if let name = pcap_datalink_val_to_name(linkType) { return String(cString: name) }
        return "unknown"
    }

    func setFilter(_ expression: String) throws {
        let program = UnsafeMutablePointer<bpf_program>.allocate(capacity: 1)
        program.initialize(to: bpf_program())
        guard pcap_compile(handle, program, expression, 1, PCAP_NETMASK_UNKNOWN) == 0 else {
            program.deallocate()
            throw CaptureError.badFilter(expression: expression, reason: String(cString: pcap_geterr(handle)))
        }
        filter = program
    }

    /// The next frame, or nil at the end of the file or on a read error (see `readError`).
    func next() -> Frame? {
        var header: UnsafeMutablePointer<pcap_pkthdr>?
        var data: UnsafePointer<UInt8>?
        let status = pcap_next_ex(handle, &header, &data)
        if status == 1, let header, let data {
            let matches = filter.map { pcap_offline_filter($0, header, data) != 0 } ?? true
            return Frame(bytes: UnsafeRawBufferPointer(start: data, count: Int(header.pointee.caplen)),
                         wireLength: Int(header.pointee.len), time: Self.nanoseconds(header.pointee.ts), link: link,
                         matches: matches)
        }
        if status == PCAP_ERROR { readError = String(cString: pcap_geterr(handle)) }
        return nil
    }

    /// Feeds every frame to `pipeline` through `pcap_dispatch`, the fastest libpcap read loop.
    /// With `progress`, reads in batches of 65,536 frames and calls it after each batch.
    func dispatchAll(into pipeline: Pipeline, progress: (() -> Void)? = nil) {
        // A plain struct behind the `user` pointer: no class, so no retain/release and no
        // dynamic exclusivity checks per frame. `pipeline` outlives the loop (it is our argument).
        let context = UnsafeMutablePointer<DispatchContext>.allocate(capacity: 1)
        context.initialize(to: DispatchContext(state: pipeline.state, link: link, filter: filter))
        defer {
            context.deinitialize(count: 1)
            context.deallocate()
            withExtendedLifetime(pipeline) {}
        }
        let callback: pcap_handler = { user, header, data in
            guard let user, let header, let data else { return }
            let context = UnsafeRawPointer(user).assumingMemoryBound(to: DispatchContext.self)
            let time = PcapFileReader.nanoseconds(header.pointee.ts)
            if let filter = context.pointee.filter, pcap_offline_filter(filter, header, data) == 0 {
                context.pointee.state.pointee.source.noteTime(time)
                return
            }
            Pipeline.handle(UnsafeRawBufferPointer(start: data, count: Int(header.pointee.caplen)),
                            wireLength: Int(header.pointee.len), time: time, link: context.pointee.link,
                            state: context.pointee.state)
        }
        let user = UnsafeMutableRawPointer(context).assumingMemoryBound(to: UInt8.self)
        var status: Int32
        if let progress {
            repeat {
                status = pcap_dispatch(handle, 65_536, callback, user)
                if status > 0 { progress() }
            } while status > 0
        } else {
            status = pcap_dispatch(handle, -1, callback, user)
        }
        if status == PCAP_ERROR { readError = String(cString: pcap_geterr(handle)) }
    }

    private struct DispatchContext {
        let state: UnsafeMutablePointer<Pipeline.State>
        let link: LinkKind?
        let filter: UnsafeMutablePointer<bpf_program>?
    }

    /// With nanosecond precision requested, libpcap puts nanoseconds in `tv_usec`.
    @inline(__always)
    static func nanoseconds(_ ts: timeval) -> Nanoseconds {
        time(seconds: Int64(ts.tv_sec), nanoseconds: Int64(ts.tv_usec))
    }

    /// The last second a frame time may hold: times stay within 1970...2116 (0 ..< 2^62 ns),
    /// so that the difference of any two cannot overflow. A pcapng stamp is 64 bits with a
    /// signed offset: a damaged or hostile file can claim any time at all.
    static let latestSecond: Int64 = 4_611_686_017

    /// A frame time from seconds and a fraction, clamped to 1970...2116.
    @inline(__always)
    static func time(seconds: Int64, nanoseconds: Int64) -> Nanoseconds {
        min(max(seconds, 0), latestSecond) &* 1_000_000_000 &+ min(max(nanoseconds, 0), 999_999_999)
    }

    /// libpcap's open errors, made actionable.
    static func explain(_ message: String) -> String {
        if message.contains("No such file") { return "no such file" }
        if message.contains("Permission denied") { return "permission denied (check the file's permissions, or use sudo)" }
        if message.contains("archaic") { return "an old or damaged pcap header (\(message)); not a readable capture" }
        if message.contains("unknown file format") || message.contains("bad dump file format") {
            return "not a pcap or pcapng capture (\(message))"
        }
        if message.contains("Is a directory") { return "is a directory, not a capture file" }
        if message.contains("file header bytes") { return "the file is cut short inside its header (\(message)); not a readable capture" }
        return message
    }

    /// The libpcap errors that mean a pcapng file's interfaces differ in link type or
    /// snapshot length, which libpcap cannot read but finscope's own reader can.
    static func isMixedInterfacesError(_ message: String) -> Bool {
        message.contains("different from the") && message.contains("of the first interface")
    }
}
