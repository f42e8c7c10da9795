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
    func dispatchAll(into pipeline: Pipeline) {
        let context = Unmanaged.passRetained(DispatchContext(pipeline: pipeline, link: link, filter: filter))
        defer { context.release() }
        let status = pcap_dispatch(handle, -1, { user, header, data in
            guard let user, let header, let data else { return }
            let context = Unmanaged<DispatchContext>.fromOpaque(user).takeUnretainedValue()
            if let filter = context.filter, pcap_offline_filter(filter, header, data) == 0 {
                context.pipeline.noteUnmatched(time: PcapFileReader.nanoseconds(header.pointee.ts))
                return
            }
            context.pipeline.handle(UnsafeRawBufferPointer(start: data, count: Int(header.pointee.caplen)),
                                    wireLength: Int(header.pointee.len),
                                    time: PcapFileReader.nanoseconds(header.pointee.ts), link: context.link)
        }, UnsafeMutableRawPointer(context.toOpaque()).assumingMemoryBound(to: UInt8.self))
        if status == PCAP_ERROR { readError = String(cString: pcap_geterr(handle)) }
    }

    private final class DispatchContext {
        let pipeline: Pipeline
        let link: LinkKind?
        let filter: UnsafeMutablePointer<bpf_program>?
        init(pipeline: Pipeline, link: LinkKind?, filter: UnsafeMutablePointer<bpf_program>?) {
            self.pipeline = pipeline
            self.link = link
            self.filter = filter
        }
    }

    /// With nanosecond precision requested, libpcap puts nanoseconds in `tv_usec`.
    @inline(__always)
    static func nanoseconds(_ ts: timeval) -> Nanoseconds {
        Nanoseconds(ts.tv_sec) &* 1_000_000_000 &+ Nanoseconds(ts.tv_usec)
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
        return message
    }

    /// The libpcap errors that mean a pcapng file's interfaces differ in link type or
    /// snapshot length, which libpcap cannot read but finscope's own reader can.
    static func isMixedInterfacesError(_ message: String) -> Bool {
        message.contains("different from the") && message.contains("of the first interface")
    }
}
