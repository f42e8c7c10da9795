import CFinscopeStream
import CPcap
import FinscopeWire

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// finscope's own reader of classic pcap files: the records are walked in place over a
/// read-only mapping of the file, so a frame costs no copy and no call into libpcap, and a
/// frame's bytes stay valid until the reader is released (the two-thread analysis hands
/// payload pointers across threads on that promise).
///
/// It takes only what it reads exactly as libpcap does: the four standard magics (µs and
/// ns, either byte order), version 2.4, a decoded link type, a regular uncompressed file.
/// Anything else (`open` returns nil) stays with libpcap. Damage ends the read as libpcap's
/// `pcap_next_ex` does, with the same message in `readError`: a cut record header or body,
/// a captured length above 262,144 bytes; a record above the snapshot length is cut to it.
///
/// Why a mapping and not pread chunks: no copy at all (libpcap's stdio copies every byte
/// once), and pointers stay valid. The risk of a mapping, SIGBUS when the file is truncated
/// while mapped, is guarded in C (`fs_mapping_open`): the pages past the cut read as zeros,
/// and the reader stops at the first record touching them with a warning.
public final class PcapRecordReader: FrameSource {
    public let name: String
    public let link: LinkKind?
    /// The file's LINKTYPE_ value.
    public let linkType: Int32
    /// The snapshot length libpcap would use: the header's, or 262,144 when it is 0 or larger.
    public let snapLength: Int32
    public let totalBytes: Int64
    public private(set) var readError: String?

    private let mapping: OpaquePointer
    private let base: UnsafePointer<UInt8>
    /// The guard's fault offset (SIZE_MAX until the file shrinks under the mapping).
    private let faultSlot: UnsafePointer<Int>
    /// The file's size when it was opened: records are read only below it.
    private let size: Int
    private var offset = headerSize
    private let swapped: Bool
    private let nanosecondFile: Bool
    private let filter: BPFProgram?
    private var finished = false
    /// When the read passes it, the pages a window behind are given back.
    private var nextRelease = 2 * releaseWindow

    static let headerSize = 24
    static let recordHeaderSize = 16
    /// libpcap's largest sane captured length for every link type finscope decodes.
    static let maximumCaptureLength: UInt32 = 262_144

    /// The classic pcap magics as their first four bytes: µs and ns, little and big endian.
    static func magicKind(_ bytes: [UInt8]) -> (swapped: Bool, nanoseconds: Bool)? {
        guard bytes.count >= 4 else { return nil }
        switch (bytes[0], bytes[1], bytes[2], bytes[3]) {
        case (0xd4, 0xc3, 0xb2, 0xa1): return (false, false)
        case (0x4d, 0x3c, 0xb2, 0xa1): return (false, true)
        case (0xa1, 0xb2, 0xc3, 0xd4): return (true, false)
        case (0xa1, 0xb2, 0x3c, 0x4d): return (true, true)
        default: return nil
        }
    }

    /// The reader for `path`, or nil when libpcap should read it (not a regular file, another
    /// magic or version, a link type not decoded, a mapping that cannot be made). Throws only
    /// for a bad filter.
    public static func open(path: String, filter expression: String?) throws -> PcapRecordReader? {
        let descriptor = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG,
              status.st_size >= headerSize else { return nil }
        var header = [UInt8](repeating: 0, count: headerSize)
        guard pread(descriptor, &header, headerSize, 0) == headerSize,
              let (swapped, nanoseconds) = magicKind(header) else { return nil }
        let word = { (at: Int) -> UInt32 in
            let value = UInt32(header[at]) | UInt32(header[at + 1]) << 8 | UInt32(header[at + 2]) << 16 | UInt32(header[at + 3]) << 24
            return swapped ? value.byteSwapped : value
        }
        let half = { (at: Int) -> UInt16 in
            let value = UInt16(header[at]) | UInt16(header[at + 1]) << 8
            return swapped ? value.byteSwapped : value
        }
        let (major, minor) = (half(4), half(6))
        // 2.4 only: older minors may have caplen and len swapped, which libpcap guesses at.
        guard major == 2, minor == 4 else { return nil }
        let rawLinkType = word(20)
        // The upper six bits (e.g. FCS length) are kept by libpcap as an extension: not ours.
        guard rawLinkType & 0xFC00_0000 == 0, let link = LinkKind(linkType: Int32(bitPattern: rawLinkType)) else { return nil }
        // libpcap swaps the host-order pseudo-headers of these in opposite-order files: its job.
        if swapped, link == .nflog || link == .linuxCooked || link == .linuxCooked2 { return nil }
        let declared = word(16)
        let snapLength = declared == 0 || declared > maximumCaptureLength ? Int32(maximumCaptureLength) : Int32(declared)
        let linkType = Int32(bitPattern: rawLinkType)
        var filter: BPFProgram?
        if let expression = expression {
            // Compiled as libpcap compiles it for the file: its DLT_ and snapshot length.
            let dlt: Int32 = linkType == 101 ? 12 : linkType
            guard let dead = pcap_open_dead_with_tstamp_precision(dlt, snapLength, UInt32(PCAP_TSTAMP_PRECISION_NANO)) else {
                return nil
            }
            defer { pcap_close(dead) }
            filter = try BPFProgram(expression: expression, handle: dead)
        }
        guard let mapping = fs_mapping_open(descriptor, Int(status.st_size)) else { return nil }
        return PcapRecordReader(name: path, mapping: mapping, size: Int(status.st_size), link: link, linkType: linkType,
                                snapLength: snapLength, swapped: swapped, nanoseconds: nanoseconds, filter: filter)
    }

    private init(name: String, mapping: OpaquePointer, size: Int, link: LinkKind, linkType: Int32, snapLength: Int32,
                 swapped: Bool, nanoseconds: Bool, filter: BPFProgram?) {
        self.name = name
        self.mapping = mapping
        base = fs_mapping_bytes(mapping)
        faultSlot = fs_mapping_fault_slot(mapping)
        self.size = size
        totalBytes = Int64(size)
        self.link = link
        self.linkType = linkType
        self.snapLength = snapLength
        self.swapped = swapped
        nanosecondFile = nanoseconds
        self.filter = filter
    }

    deinit {
        fs_mapping_close(mapping)
    }

    public var bytesRead: Int64 { Int64(offset) }

    @inline(__always)
    private func word(_ at: Int) -> UInt32 {
        let value = UnsafeRawPointer(base + at).loadUnaligned(as: UInt32.self)
        return swapped ? value.byteSwapped : UInt32(littleEndian: value)
    }

    public func next() -> Frame? {
        nextFrame()
    }

    /// The next record as a frame, or nil at the end or at damage (then `readError` says why).
    @inline(__always)
    private func nextFrame() -> Frame? {
        guard !finished else { return nil }
        let start = offset
        let remaining = size - start
        if remaining < Self.recordHeaderSize {
            if remaining > 0 { stop("truncated dump file; tried to read 16 header bytes, only got \(remaining)") } else { finished = true }
            return nil
        }
        let seconds = Int64(Int32(bitPattern: word(start)))
        let fraction = Int64(Int32(bitPattern: word(start + 4)))
        let captured = word(start + 8)
        let wire = word(start + 12)
        let available = remaining - Self.recordHeaderSize
        var delivered = captured
        if captured > Self.maximumCaptureLength {
            stop(captured > UInt32(snapLength)
                 ? "invalid packet capture length \(captured), bigger than snaplen of \(snapLength)"
                 : "invalid packet capture length \(captured), bigger than maximum of \(Self.maximumCaptureLength)")
            return nil
        }
        if captured > UInt32(snapLength) {
            // libpcap reads the snapshot length and skips the rest of the record.
            if available < Int(captured) {
                stop("truncated dump file; tried to read \(available < Int(snapLength) ? UInt32(snapLength) : captured) captured bytes, only got \(available)")
                return nil
            }
            delivered = UInt32(snapLength)
        } else if available < Int(captured) {
            stop("truncated dump file; tried to read \(captured) captured bytes, only got \(available)")
            return nil
        }
        offset = start + Self.recordHeaderSize + Int(captured)
        // The file shrank under the mapping: what was read of this record may be zeros.
        // Touch the record's last byte first, so that its last page faults now if it is gone.
        // (SIZE_MAX, no fault, reads as -1 here.)
        if captured > 0 { fs_touch(base + offset - 1) }
        let fault = fs_atomic_load_acquire(faultSlot)
        if fault >= 0, fault < offset {
            stop("the file was truncated while it was read (at byte \(fault))")
            return nil
        }
        if offset >= nextRelease { releaseBehind() }
        let data = base + start + Self.recordHeaderSize
        let nanoseconds = nanosecondFile ? fraction : fraction &* 1_000
        var matches = true
        if let filter {
            var header = pcap_pkthdr()
            header.ts.tv_sec = Int(seconds)
            header.ts.tv_usec = Int(nanoseconds)
            header.caplen = delivered
            header.len = wire
            matches = filter.matches(&header, data)
        }
        return Frame(bytes: UnsafeRawBufferPointer(start: data, count: Int(delivered)), wireLength: Int(wire),
                     time: FrameTime.nanoseconds(seconds: seconds, nanoseconds: nanoseconds), link: link, matches: matches)
    }

    /// Pages far enough behind the read (the two-thread analysis's tracker may still read a
    /// payload a few MB back; a page given back is read again if it does) leave this
    /// process's resident memory, which then measures the analysis, not the file.
    @inline(never)
    private func releaseBehind() {
        fs_mapping_release(mapping, offset - Self.releaseWindow)
        nextRelease = offset + Self.releaseWindow
    }

    static let releaseWindow = 4 << 20

    private func stop(_ message: String) {
        readError = message
        finished = true
    }

    /// The record walk straight into `handler`.
    public func dispatch(limit: Int, sink: UnsafeMutableRawPointer, handler: FrameHandler) -> Int {
        var count = 0
        while limit < 0 || count < limit, var frame = nextFrame() {
            withUnsafePointer(to: &frame) { handler(sink, UnsafeRawPointer($0)) }
            count += 1
        }
        return count
    }
}
