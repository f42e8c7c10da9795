import CPcap
import FinscopeWire
import Foundation

/// A classic pcap file read through libpcap, timestamps in nanoseconds.
public final class PcapFileSource: FrameSource {
    public let name: String
    let handle: OpaquePointer
    /// The file's LINKTYPE_ value and what finscope decodes it as (nil: not decoded).
    public let linkType: Int32
    public let link: LinkKind?
    public private(set) var readError: String?
    public let totalBytes: Int64
    private let filter: BPFProgram?

    /// Opens `path`; a link type finscope does not decode is an error for the file.
    public init(path: String, filter expression: String?) throws {
        var errorBuffer = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
        guard let handle = pcap_open_offline_with_tstamp_precision(
            path, UInt32(PCAP_TSTAMP_PRECISION_NANO), &errorBuffer) else {
            let message = errorBuffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            throw CaptureError.cannotRead(path: path, reason: CaptureError.explain(message))
        }
        name = path
        self.handle = handle
        linkType = pcap_datalink(handle)
        link = LinkKind(linkType: linkType)
        totalBytes = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.int64Value ?? 0
        guard link != nil else {
            let name = pcap_datalink_val_to_name(linkType).map { String(cString: $0) } ?? "unknown"
            pcap_close(handle)
            throw CaptureError.unsupportedLinkType(source: path, linkType: linkType, name: name)
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

    /// Where libpcap's reading stands in the file (a buffered FILE position).
    public var bytesRead: Int64 {
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
        if status == PCAP_ERROR { readError = String(cString: pcap_geterr(handle)) }
        return nil
    }

    /// The fastest libpcap read loop, `pcap_dispatch`, straight into `handler`.
    public func dispatch(limit: Int, sink: UnsafeMutableRawPointer, handler: FrameHandler) -> Int {
        // A plain struct behind the `user` pointer: no class, so no retain/release and no
        // dynamic exclusivity checks per frame.
        var context = DispatchContext(sink: sink, handler: handler, link: link,
                                      filter: filter.map { Unmanaged.passUnretained($0).toOpaque() })
        let status = withExtendedLifetime(filter) {
            withUnsafeMutablePointer(to: &context) { pointer in
                pcap_dispatch(handle, Int32(clamping: limit < 0 ? -1 : limit), Self.callback,
                              UnsafeMutableRawPointer(pointer).assumingMemoryBound(to: UInt8.self))
            }
        }
        if status == PCAP_ERROR {
            readError = String(cString: pcap_geterr(handle))
            return 0
        }
        return max(0, Int(status))
    }

    private struct DispatchContext {
        let sink: UnsafeMutableRawPointer
        let handler: FrameHandler
        let link: LinkKind?
        /// The filter, unretained (the source keeps it alive across the loop).
        let filter: UnsafeMutableRawPointer?
    }

    private static let callback: pcap_handler = { user, header, data in
        guard let user, let header, let data else { return }
        let context = UnsafeRawPointer(user).assumingMemoryBound(to: DispatchContext.self)
        var matches = true
        if let filter = context.pointee.filter {
            matches = Unmanaged<BPFProgram>.fromOpaque(filter).takeUnretainedValue().matches(header, data)
        }
        var frame = Frame(bytes: UnsafeRawBufferPointer(start: data, count: Int(header.pointee.caplen)),
                          wireLength: Int(header.pointee.len),
                          time: FrameTime.nanoseconds(header.pointee.ts, nanosecondPrecision: true),
                          link: context.pointee.link, matches: matches)
        withUnsafePointer(to: &frame) { context.pointee.handler(context.pointee.sink, UnsafeRawPointer($0)) }
    }
}

/// Opening capture files: the reader is decided before reading, by the file's first bytes.
public enum CaptureFiles {
    /// A pcapng file goes to finscope's own reader (it reads files whose interfaces differ in
    /// link type, which libpcap refuses, so nothing ever restarts); anything else to libpcap.
    public static func open(path: String, filter: String?) throws -> any FrameSource {
        if isPcapNG(path) { return try PcapNGSource(path: path, filter: filter) }
        return try PcapFileSource(path: path, filter: filter)
    }

    /// Whether the file starts with a pcapng section header block.
    public static func isPcapNG(_ path: String) -> Bool {
        firstBytes(path, 4) == [0x0A, 0x0D, 0x0D, 0x0A]
    }

    /// A classic pcap file with microsecond timestamps (either byte order).
    public static func isMicrosecondPcap(_ path: String) -> Bool {
        let magic = firstBytes(path, 4)
        return magic == [0xd4, 0xc3, 0xb2, 0xa1] || magic == [0xa1, 0xb2, 0xc3, 0xd4]
    }

    static func firstBytes(_ path: String, _ count: Int) -> [UInt8] {
        guard let file = fopen(path, "rb") else { return [] }
        defer { fclose(file) }
        var bytes = [UInt8](repeating: 0, count: count)
        let read = fread(&bytes, 1, count, file)
        return Array(bytes.prefix(read))
    }
}
