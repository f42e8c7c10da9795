import CPcap
import FinscopeFlows
import FinscopeWire
import Foundation

/// finscope's own pcapng reader, used for every pcapng file: libpcap refuses files whose
/// interfaces have different link types ("an interface has a type ... different from the
/// type of the first interface"), and deciding the reader before reading means nothing
/// ever has to start again. Frames keep each interface's own link type; a BPF filter is
/// compiled once per link type and applied with `pcap_offline_filter`.
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

    public let name: String
    private let data: Data
    private var offset = 0
    private var bigEndian = false
    private var interfaces: [Interface] = []
    /// The latest capture stop an interface statistics block records (`isb_endtime`), if any.
    public private(set) var stoppedAt: Nanoseconds?
    /// One compiled filter per link type.
    private var filters: [Int32: BPFProgram?] = [:]
    private let filterExpression: String?
    public private(set) var readError: String?
    public var bytesRead: Int64 { Int64(offset) }
    public var totalBytes: Int64 { Int64(data.count) }

    /// Opens `path`. A file whose interfaces (those described before its first packet) all
    /// have link types finscope does not decode is an error, as for a pcap file.
    public init(path: String, filter: String?) throws {
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        } catch {
            throw CaptureError.cannotRead(path: path, reason: CaptureError.explain("\(error)"))
        }
        filterExpression = filter
        name = path
        guard data.count >= 28, u32(0) == 0x0A0D_0D0A else {
            throw CaptureError.cannotRead(path: path, reason: "not a pcap or pcapng capture (bad section header)")
        }
        let magic = data.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 8, as: UInt32.self) }
        guard magic == 0x1A2B_3C4D || magic.byteSwapped == 0x1A2B_3C4D else {
            throw CaptureError.cannotRead(path: path, reason: "not a pcapng capture (bad byte-order magic in its section header)")
        }
        if let expression = filter {
            // An expression that fits none of libpcap's link types is the user's mistake: say so now.
            _ = try BPFProgram(expression: expression, linkType: 1)
        }
        let length = Int(u32(4))
        if let problem = sectionHeaderProblem(at: 0, length: length) {
            throw CaptureError.cannotRead(path: path, reason: "a damaged pcapng section header (\(problem)); not a readable capture")
        }
        let declared = Self.interfacesBeforeFirstPacket(self)
        if !declared.isEmpty, declared.allSatisfy({ LinkKind(linkType: $0) == nil }) {
            let linkType = declared[0]
            let name = pcap_datalink_val_to_name(linkType).map { String(cString: $0) } ?? "unknown"
            throw CaptureError.unsupportedLinkType(source: path, linkType: linkType, name: name)
        }
    }

    /// What is wrong with the section header block at `start`, or nil: its length, and its
    /// options, which must each fit inside the block (libpcap refuses the file otherwise).
    private func sectionHeaderProblem(at start: Int, length: Int) -> String? {
        guard length >= 28, length % 4 == 0, start + length <= data.count else { return "its length \(length) is impossible" }
        var option = start + 24
        let end = start + length - 4
        while option + 4 <= end {
            let code = u16(option)
            let size = Int(u16(option + 2))
            if code == 0 { return nil }
            guard option + 4 + size <= end else { return "option \(code) runs past the block" }
            option += 4 + (size + 3) / 4 * 4
        }
        return nil
    }

    /// The link types of the interfaces described before the first packet block (a
    /// throwaway pass over the start of the file; the reader starts again at byte 0).
    private static func interfacesBeforeFirstPacket(_ reader: PcapNGSource) -> [Int32] {
        defer {
            reader.offset = 0
            reader.interfaces.removeAll()
            reader.readError = nil
        }
        var types: [Int32] = []
        while reader.offset + 12 <= reader.data.count, reader.readError == nil {
            let type = reader.u32(reader.offset)
            if type == 6 || type == 3 { break }
            let before = reader.interfaces.count
            guard reader.step() == nil else { break }
            if reader.interfaces.count > before { types.append(reader.interfaces[before].linkType) }
        }
        return types
    }

    private func u16(_ at: Int) -> UInt16 {
        data.withUnsafeBytes { raw in
            let value = raw.loadUnaligned(fromByteOffset: at, as: UInt16.self)
            return bigEndian ? UInt16(bigEndian: value) : UInt16(littleEndian: value)
        }
    }

    private func u32(_ at: Int) -> UInt32 {
        data.withUnsafeBytes { raw in
            let value = raw.loadUnaligned(fromByteOffset: at, as: UInt32.self)
            return bigEndian ? UInt32(bigEndian: value) : UInt32(littleEndian: value)
        }
    }

    /// The next frame; nil at the end or at damage (see `readError`).
    public func next() -> Frame? {
        while offset + 12 <= data.count, readError == nil {
            if let frame = step() { return frame }
        }
        if offset < data.count, readError == nil { readError = "the file is cut short in its last block" }
        return nil
    }

    /// Reads one block: a frame for packet blocks, nil for the others (or damage).
    private func step() -> Frame? {
        let count = data.count
        do {
            let start = offset
            let rawType = data.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: start, as: UInt32.self) }
            if rawType == 0x0A0D_0D0A {  // section header: sets the byte order
                let magic = data.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: start + 8, as: UInt32.self) }
                if magic == 0x1A2B_3C4D {
                    bigEndian = false
                } else if magic.byteSwapped == 0x1A2B_3C4D {
                    bigEndian = true
                } else {
                    readError = "bad pcapng section header at byte \(start)"
                    return nil
                }
                interfaces.removeAll()
                if let problem = sectionHeaderProblem(at: start, length: Int(u32(start + 4))) {
                    readError = "damaged section header at byte \(start) (\(problem))"
                    offset = count
                    return nil
                }
            }
            let type = u32(start)
            let length = Int(u32(start + 4))
            guard length >= 12, length % 4 == 0, start + length <= count else {
                readError = length > count - start
                    ? "the block at byte \(start) claims \(length) bytes, past the end of the file (cut short or damaged)"
                    : "the block at byte \(start) has an impossible length \(length)"
                offset = count
                return nil
            }
            offset = start + length
            let body = start + 8
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
                    readError = interfaceID < interfaces.count
                        ? "the packet block at byte \(start) claims a captured length beyond the block (damaged)"
                        : "the packet block at byte \(start) names interface \(interfaceID), which was never described"
                    offset = count
                    return nil
                }
                if let frame = frame(interfaceID: interfaceID, stamp: stamp, at: body + 20,
                                     captured: captured, original: original) {
                    return frame
                }
            case 3 where bodyLength >= 4:  // simple packet: interface 0, no timestamp
                guard !interfaces.isEmpty else { break }
                let original = Int(u32(body))
                let snap = interfaces[0].snapLength > 0 ? interfaces[0].snapLength : Int.max
                let captured = min(original, bodyLength - 4, snap)
                if let frame = frame(interfaceID: 0, stamp: 0, at: body + 4, captured: captured, original: original) {
                    return frame
                }
            case 5 where bodyLength >= 12:  // interface statistics
                noteStatistics(body: body, bodyLength: bodyLength)
            default:
                break  // name resolution, custom and unknown blocks
            }
        }
        return nil
    }

    private func frame(interfaceID: Int, stamp: UInt64, at position: Int, captured: Int, original: Int) -> Frame? {
        let interface = interfaces[interfaceID]
        let time = FrameTime.nanoseconds(units: stamp, unitsPerSecond: interface.unitsPerSecond,
                                           offsetSeconds: interface.offsetSeconds)
        // The mapping stays valid as long as `data` lives (the reader's lifetime).
        let bytes = data.withUnsafeBytes { raw in UnsafeRawBufferPointer(rebasing: raw[position..<(position + captured)]) }
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
        var option = body + 12
        let end = body + bodyLength
        while option + 4 <= end {
            let code = u16(option)
            let length = Int(u16(option + 2))
            if code == 0 { break }
            guard option + 4 + length <= end else { break }
            if code == 3, length == 8 {
                let stamp = UInt64(u32(option + 4)) << 32 | UInt64(u32(option + 8))
                let interface = interfaces[interfaceID]
                let time = FrameTime.nanoseconds(units: stamp, unitsPerSecond: interface.unitsPerSecond,
                                                 offsetSeconds: interface.offsetSeconds)
                if stoppedAt == nil || time > stoppedAt! { stoppedAt = time }
            }
            option += 4 + (length + 3) / 4 * 4
        }
    }

    private func addInterface(body: Int, bodyLength: Int) {
        let linkType = Int32(u16(body))
        let snapLength = Int(u32(body + 4))
        var unitsPerSecond: UInt64 = 1_000_000
        var offsetSeconds: Int64 = 0
        var option = body + 8
        let end = body + bodyLength
        while option + 4 <= end {
            let code = u16(option)
            let length = Int(u16(option + 2))
            if code == 0 { break }
            guard option + 4 + length <= end else { break }
            if code == 9, length >= 1 {  // if_tsresol
                let value = data[data.startIndex + option + 4]
                let exponent = UInt64(value & 0x7f)
                if exponent <= 18 || (value & 0x80 != 0 && exponent < 64) {
                    unitsPerSecond = value & 0x80 != 0 ? 1 << exponent : (0..<exponent).reduce(1) { r, _ in r * 10 }
                }
            } else if code == 14, length >= 8 {  // if_tsoffset
                offsetSeconds = Int64(bitPattern: UInt64(u32(option + 4)) | UInt64(u32(option + 8)) << 32)
                if bigEndian { offsetSeconds = Int64(bitPattern: UInt64(u32(option + 4)) << 32 | UInt64(u32(option + 8))) }
            }
            option += 4 + (length + 3) / 4 * 4
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
