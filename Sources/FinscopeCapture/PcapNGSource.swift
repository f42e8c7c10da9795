import CPcap
import FinscopeWire
import Foundation

/// finscope's own pcapng reader, used for every pcapng file: libpcap refuses files whose
/// interfaces have different link types ("an interface has a type ... different from the
/// type of the first interface"), and deciding the reader before reading means nothing
/// ever has to start again. Frames keep each interface's own link type; a BPF filter is
/// compiled once per link type and applied with `pcap_offline_filter`.
///
/// It reads one block at a time from a byte stream (a plain or compressed file, standard
/// input) through one bounded buffer: a frame's bytes stay valid until the next call, and
/// a block claiming more than `maxBlockLength` is damage.
public final class PcapNGSource: FrameSource {
    private struct Interface {
        var linkType: Int32
        var link: LinkKind?
        var snapLength: Int
        /// Nanoseconds per timestamp unit, as a ratio (units per second).
        var unitsPerSecond: UInt64
        var offsetSeconds: Int64
        var filter: BPFProgram?
    }

    /// The largest block read: far above any snapshot length (262,144) plus headers, and
    /// the bound on the stream buffer.
    public static let maxBlockLength = 16 << 20

    public let name: String
    private let input: BlockInput
    private var bigEndian = false
    private var interfaces: [Interface] = []
    /// The latest capture stop an interface statistics block records (`isb_endtime`), if any.
    public private(set) var stoppedAt: Nanoseconds?
    /// One compiled filter per link type.
    private var filters: [Int32: BPFProgram?] = [:]
    private let filterExpression: String?
    private var damage: String?
    /// The block being read, and where it starts in the content.
    private var block = UnsafeRawPointer(bitPattern: 16)!
    private var blockStart = 0
    /// A packet block read while opening, handed out first.
    private var pending = false
    private var ended = false

    /// The stream's own trouble (cut short, damaged compression) explains a block that
    /// ends early better than the block does.
    public var readError: String? {
        if let problem = input.stream.error { return problem }
        return damage
    }
    public var bytesRead: Int64 { input.bytesRead }
    public var totalBytes: Int64 { input.totalBytes }

    /// Opens the plain file at `path`. A file whose interfaces (those described
    /// before its first packet) all have link types finscope does not decode is an error,
    /// as for a pcap file.
    public convenience init(path: String, filter: String?) throws {
        let stream = try ByteStream(path: path)
        try self.init(name: path, input: BlockInput(stream: stream, knownSize: stream.compression == nil ? Int(stream.totalBytes) : nil),
                      filter: filter)
    }

    /// Reads a pcapng stream (decompressed, or standard input).
    convenience init(name: String, stream: ByteStream, filter: String?) throws {
        try self.init(name: name, input: BlockInput(stream: stream), filter: filter)
    }

    private init(name: String, input: BlockInput, filter: String?) throws {
        self.input = input
        self.name = name
        filterExpression = filter
        let path = name
        guard let head = input.window(28), head.loadUnaligned(as: UInt32.self) == 0x0A0D_0D0A else {
            if let problem = input.stream.error { throw CaptureError.cannotRead(path: path, reason: problem) }
            throw CaptureError.cannotRead(path: path, reason: "not a pcap or pcapng capture (bad section header)")
        }
        let magic = head.loadUnaligned(fromByteOffset: 8, as: UInt32.self)
        guard magic == 0x1A2B_3C4D || magic.byteSwapped == 0x1A2B_3C4D else {
            throw CaptureError.cannotRead(path: path, reason: "not a pcapng capture (bad byte-order magic in its section header)")
        }
        if let expression = filter {
            // An expression that fits none of libpcap's link types is the user's mistake: say so now.
            _ = try BPFProgram(expression: expression, linkType: 1)
        }
        bigEndian = magic != 0x1A2B_3C4D
        block = head
        let length = Int(u32(4))
        let whole = length <= Self.maxBlockLength ? input.window(length) : nil
        if let whole { block = whole }
        if whole == nil, let problem = input.stream.error { throw CaptureError.cannotRead(path: path, reason: problem) }
        if let problem = sectionHeaderProblem(length: length, present: whole != nil) {
            throw CaptureError.cannotRead(path: path, reason: "a damaged pcapng section header (\(problem)); not a readable capture")
        }
        // The interfaces described before the first packet block decide whether the file
        // is readable at all; that packet block waits for the first `next()`.
        var declared: [Int32] = []
        while damage == nil, loadBlock() {
            let type = u32(0)
            if type == 6 || type == 3 {
                pending = true
                break
            }
            let before = interfaces.count
            _ = step()
            if interfaces.count > before { declared.append(interfaces[before].linkType) }
        }
        if !declared.isEmpty, declared.allSatisfy({ LinkKind(linkType: $0) == nil }) {
            let linkType = declared[0]
            let name = pcap_datalink_val_to_name(linkType).map { String(cString: $0) } ?? "unknown"
            throw CaptureError.unsupportedLinkType(source: path, linkType: linkType, name: name)
        }
    }

    /// What is wrong with the section header block in `block` (`present`: all `length`
    /// bytes of it could be read), or nil: its length, and its options, which must each fit
    /// inside the block (libpcap refuses the file otherwise).
    private func sectionHeaderProblem(length: Int, present: Bool) -> String? {
        guard length >= 28, length % 4 == 0, present else { return "its length \(length) is impossible" }
        if let code = walkOptions(from: 24, to: length - 4, { _, _, _ in }) { return "option \(code) runs past the block" }
        return nil
    }

    /// Walks a block's options from `start` to `end` (offsets in the block), calling `body`
    /// with each option's code, where its value starts and its length, up to opt_endofopt.
    /// Returns the code of an option that runs past `end` (the walk stops there), else nil.
    @discardableResult
    private func walkOptions(from start: Int, to end: Int,
                             _ body: (_ code: UInt16, _ value: Int, _ length: Int) -> Void) -> UInt16? {
        var option = start
        while option + 4 <= end {
            let code = u16(option)
            let length = Int(u16(option + 2))
            if code == 0 { return nil }
            guard option + 4 + length <= end else { return code }
            body(code, option + 4, length)
            option += 4 + (length + 3) / 4 * 4
        }
        return nil
    }

    @inline(__always)
    private func u16(_ at: Int) -> UInt16 {
        let value = block.loadUnaligned(fromByteOffset: at, as: UInt16.self)
        return bigEndian ? UInt16(bigEndian: value) : UInt16(littleEndian: value)
    }

    @inline(__always)
    private func u32(_ at: Int) -> UInt32 {
        let value = block.loadUnaligned(fromByteOffset: at, as: UInt32.self)
        return bigEndian ? UInt32(bigEndian: value) : UInt32(littleEndian: value)
    }

    /// The next frame; nil at the end or at damage (see `readError`).
    public func next() -> Frame? {
        if pending {
            pending = false
            if let frame = step() { return frame }
        }
        while damage == nil, loadBlock() {
            if let frame = step() { return frame }
        }
        return nil
    }

    /// Reads the next whole block into `block` (a section header also sets the byte
    /// order); false at the end or at damage (then `damage` says what).
    private func loadBlock() -> Bool {
        guard !ended else { return false }
        input.advance(pending ? 0 : blockLength)
        blockLength = 0
        guard let head = input.window(12) else {
            ended = true
            if input.available > 0 { damage = "the file is cut short in its last block" }
            return false
        }
        let start = input.position
        blockStart = start
        block = head
        if head.loadUnaligned(as: UInt32.self) == 0x0A0D_0D0A {  // section header: sets the byte order
            let magic = head.loadUnaligned(fromByteOffset: 8, as: UInt32.self)
            if magic == 0x1A2B_3C4D {
                bigEndian = false
            } else if magic.byteSwapped == 0x1A2B_3C4D {
                bigEndian = true
            } else {
                return stop("bad pcapng section header at byte \(start)")
            }
            interfaces.removeAll()
        }
        let length = Int(u32(4))
        if let size = input.knownSize, length > size - start {
            return stop("the block at byte \(start) claims \(length) bytes, past the end of the file (cut short or damaged)")
        }
        guard length >= 12, length % 4 == 0 else {
            return stop("the block at byte \(start) has an impossible length \(length)")
        }
        guard length <= Self.maxBlockLength else {
            return stop("the block at byte \(start) claims \(length) bytes, more than the \(Self.maxBlockLength >> 20) MiB "
                + "finscope reads as one block (damaged)")
        }
        guard let whole = input.window(length) else {
            return stop("the block at byte \(start) claims \(length) bytes, past the end of the file (cut short or damaged)")
        }
        block = whole
        blockLength = length
        if u32(0) == 0x0A0D_0D0A, let problem = sectionHeaderProblem(length: length, present: true) {
            return stop("damaged section header at byte \(start) (\(problem))")
        }
        return true
    }

    /// Length of the block in `block`, skipped at the next `loadBlock`.
    private var blockLength = 0

    private func stop(_ problem: String) -> Bool {
        damage = problem
        ended = true
        return false
    }

    /// Reads the block in `block`: a frame for packet blocks, nil for the others (or damage).
    private func step() -> Frame? {
        let start = blockStart
        let type = u32(0)
        let length = blockLength
        let body = 8
        let bodyLength = length - 12
        switch type {
        case 1 where bodyLength >= 8:  // interface description
            addInterface(body: body, bodyLength: bodyLength)
        case 6 where bodyLength >= 20:  // enhanced packet
            let interfaceID = Int(u32(body))
            let stamp = UInt64(u32(body + 4)) << 32 | UInt64(u32(body + 8))
            let captured = Int(u32(body + 12))
            let original = Int(u32(body + 16))
            guard interfaceID < interfaces.count, captured <= bodyLength - 20 else {
                _ = stop(interfaceID < interfaces.count
                    ? "the packet block at byte \(start) claims a captured length beyond the block (damaged)"
                    : "the packet block at byte \(start) names interface \(interfaceID), which was never described")
                return nil
            }
            return frame(interfaceID: interfaceID, stamp: stamp, at: body + 20, captured: captured, original: original)
        case 3 where bodyLength >= 4:  // simple packet: interface 0, no timestamp
            guard !interfaces.isEmpty else { break }
            let original = Int(u32(body))
            let snap = interfaces[0].snapLength > 0 ? interfaces[0].snapLength : Int.max
            let captured = min(original, bodyLength - 4, snap)
            return frame(interfaceID: 0, stamp: 0, at: body + 4, captured: captured, original: original)
        case 5 where bodyLength >= 12:  // interface statistics
            noteStatistics(body: body, bodyLength: bodyLength)
        default:
            break  // name resolution, custom and unknown blocks
        }
        return nil
    }

    private func frame(interfaceID: Int, stamp: UInt64, at position: Int, captured: Int, original: Int) -> Frame? {
        let interface = interfaces[interfaceID]
        let time = FrameTime.nanoseconds(units: stamp, unitsPerSecond: interface.unitsPerSecond,
                                           offsetSeconds: interface.offsetSeconds)
        // The block stays where it is until the next call.
        let bytes = UnsafeRawBufferPointer(start: block + position, count: captured)
        var matches = true
        if let filter = interface.filter {
            var header = pcap_pkthdr()
            header.caplen = UInt32(captured)
            header.len = UInt32(max(original, captured))
            matches = filter.matches(&header, bytes.baseAddress!.assumingMemoryBound(to: UInt8.self))
        }
        return Frame(bytes: bytes, wireLength: original, time: time, link: interface.link, matches: matches)
    }

    /// An interface statistics block's `isb_endtime` (option 3: the stop, in the interface's units).
    private func noteStatistics(body: Int, bodyLength: Int) {
        let interfaceID = Int(u32(body))
        guard interfaceID < interfaces.count else { return }
        let interface = interfaces[interfaceID]
        walkOptions(from: body + 12, to: body + bodyLength) { code, value, length in
            guard code == 3, length == 8 else { return }
            let stamp = UInt64(u32(value)) << 32 | UInt64(u32(value + 4))
            let time = FrameTime.nanoseconds(units: stamp, unitsPerSecond: interface.unitsPerSecond,
                                             offsetSeconds: interface.offsetSeconds)
            if stoppedAt == nil || time > stoppedAt! { stoppedAt = time }
        }
    }

    private func addInterface(body: Int, bodyLength: Int) {
        let linkType = Int32(u16(body))
        let snapLength = Int(u32(body + 4))
        var unitsPerSecond: UInt64 = 1_000_000
        var offsetSeconds: Int64 = 0
        walkOptions(from: body + 8, to: body + bodyLength) { code, value, length in
            if code == 9, length >= 1 {  // if_tsresol
                let resolution = block.load(fromByteOffset: value, as: UInt8.self)
                let exponent = UInt64(resolution & 0x7f)
                if exponent <= 18 || (resolution & 0x80 != 0 && exponent < 64) {
                    unitsPerSecond = resolution & 0x80 != 0 ? 1 << exponent : (0..<exponent).reduce(1) { r, _ in r * 10 }
                }
            } else if code == 14, length >= 8 {  // if_tsoffset
                offsetSeconds = bigEndian ? Int64(bitPattern: UInt64(u32(value)) << 32 | UInt64(u32(value + 4)))
                    : Int64(bitPattern: UInt64(u32(value)) | UInt64(u32(value + 4)) << 32)
            }
        }
        var filter: BPFProgram?
        if let expression = filterExpression {
            if let compiled = filters[linkType] {
                filter = compiled
            } else {
                // An interface whose link type the expression cannot describe passes nothing.
                filter = (try? BPFProgram(expression: expression, linkType: linkType))
                    ?? BPFProgram.rejectingAll(linkType: linkType)
                filters[linkType] = filter
            }
        }
        interfaces.append(Interface(linkType: linkType, link: LinkKind(linkType: linkType), snapLength: snapLength,
                                    unitsPerSecond: max(unitsPerSecond, 1), offsetSeconds: offsetSeconds,
                                    filter: filter))
    }
}
