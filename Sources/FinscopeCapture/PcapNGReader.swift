import CPcap
import FinscopeFlows
import FinscopeWire
import Foundation

/// A pcapng reader for the one case libpcap refuses: a file whose interfaces have
/// different link types (libpcap reports "an interface has a type ... different from
/// the type of the first interface"). Frames keep each interface's own link type; a BPF
/// filter is compiled once per link type and applied with `pcap_offline_filter`.
final class PcapNGReader {
    private struct Interface {
        var linkType: Int32
        var link: LinkKind?
        var snapLength: Int
        /// Nanoseconds per timestamp unit, as a ratio (units per second).
        var unitsPerSecond: UInt64
        var offsetSeconds: Int64
        var filter: Int  // index into filters, -1 for none
    }

    let path: String
    private let data: Data
    private var offset = 0
    private var bigEndian = false
    private var interfaces: [Interface] = []
    private var filters: [(linkType: Int32, program: bpf_program)] = []
    private let filterExpression: String?
    private(set) var readError: String?

    init(path: String, filter: String?) throws {
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        } catch {
            throw CaptureError.cannotOpen(path: path, reason: "cannot read the file (\(error.localizedDescription))")
        }
        filterExpression = filter
        self.path = path
    }

    deinit {
        for index in filters.indices { pcap_freecode(&filters[index].program) }
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

    /// The next frame that passes the filter; nil at the end or at damage (see `readError`).
    func next() -> Frame? {
        let count = data.count
        while offset + 12 <= count {
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
            }
            let type = u32(start)
            let length = Int(u32(start + 4))
            guard length >= 12, length % 4 == 0, start + length <= count else {
                readError = "the file is cut short or damaged at byte \(start)"
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
                    readError = "damaged packet block at byte \(start)"
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
            default:
                break  // statistics, name resolution, custom and unknown blocks
            }
        }
        if offset < count, readError == nil { readError = "the file is cut short in its last block" }
        return nil
    }

    private func frame(interfaceID: Int, stamp: UInt64, at position: Int, captured: Int, original: Int) -> Frame? {
        let interface = interfaces[interfaceID]
        let seconds = Int64(truncatingIfNeeded: stamp / interface.unitsPerSecond) &+ interface.offsetSeconds
        let fraction = stamp % interface.unitsPerSecond
        // fraction < unitsPerSecond, so the quotient is below 1e9 even when the product needs 128 bits.
        let nanos = Int64(interface.unitsPerSecond.dividingFullWidth(fraction.multipliedFullWidth(by: 1_000_000_000)).quotient)
        let time = PcapFileReader.time(seconds: seconds, nanoseconds: nanos)
        // The mapping stays valid as long as `data` lives (the reader's lifetime).
        let bytes = data.withUnsafeBytes { raw in UnsafeRawBufferPointer(rebasing: raw[position..<(position + captured)]) }
        var matches = true
        if interface.filter >= 0 {
            var header = pcap_pkthdr()
            header.caplen = UInt32(captured)
            header.len = UInt32(max(original, captured))
            matches = pcap_offline_filter(&filters[interface.filter].program, &header,
                                          bytes.baseAddress!.assumingMemoryBound(to: UInt8.self)) != 0
        }
        return Frame(bytes: bytes, wireLength: original, time: time, link: interface.link, matches: matches)
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
        var filterIndex = -1
        if let expression = filterExpression {
            if let existing = filters.firstIndex(where: { $0.linkType == linkType }) {
                filterIndex = existing
            } else if let dead = pcap_open_dead(linkType == 101 ? 12 : linkType, 262_144) {
                // LINKTYPE_RAW (101) is DLT_RAW (12) to libpcap's compiler.
                defer { pcap_close(dead) }
                var program = bpf_program()
                if pcap_compile(dead, &program, expression, 1, PCAP_NETMASK_UNKNOWN) == 0 {
                    filters.append((linkType, program))
                    filterIndex = filters.count - 1
                } else {
                    // The expression compiled for the file's first interface; an interface it
                    // cannot describe gets none of its frames through.
                    var none = bpf_program()
                    _ = pcap_compile(dead, &none, "less 0", 1, PCAP_NETMASK_UNKNOWN)
                    filters.append((linkType, none))
                    filterIndex = filters.count - 1
                }
            }
        }
        interfaces.append(Interface(linkType: linkType, link: LinkKind(linkType: linkType), snapLength: snapLength,
                                    unitsPerSecond: max(unitsPerSecond, 1), offsetSeconds: offsetSeconds,
                                    filter: filterIndex))
    }
}
