import CPcap
import FinscopeWire

#if canImport(Glibc)
import Glibc
#endif

/// `live --write FILE.pcapng`: a pcapng file as dumpcap writes it — a section header, one
/// interface description (link type, snapshot length, `if_name`, `if_tsresol` 9:
/// nanoseconds), an enhanced packet block per frame, and at the stop an interface
/// statistics block with `isb_starttime`, `isb_endtime` (when the capture stopped, which
/// may be later than the last frame), `isb_ifrecv` and `isb_ifdrop`. Little-endian.
final class PcapNGWriter {
    let file: UnsafeMutablePointer<FILE>
    let path: String

    init(path: String, linkType: Int32, snapLength: Int32, interface: String) throws {
        guard let file = fopen(path, "wb") else {
            throw CaptureError.cannotWrite(path: path, reason: String(cString: strerror(errno)))
        }
        self.file = file
        self.path = path
        // Section header: byte-order magic, version 1.0, section length unknown.
        var shb = Bytes()
        shb.u32(0x1A2B_3C4D); shb.u16(1); shb.u16(0); shb.u64(UInt64.max)
        shb.option(4, Array("finscope live".utf8))  // shb_userappl
        shb.endOfOptions()
        block(0x0A0D_0D0A, shb.bytes)
        var idb = Bytes()
        idb.u16(UInt16(truncatingIfNeeded: linkType)); idb.u16(0); idb.u32(UInt32(snapLength))
        idb.option(2, Array(interface.utf8))  // if_name
        idb.option(9, [9])  // if_tsresol: 10^-9
        idb.endOfOptions()
        block(1, idb.bytes)
    }

    deinit { fclose(file) }

    /// One frame as an enhanced packet block (interface 0); allocation-free.
    @inline(__always)
    static func writePacket(_ file: UnsafeMutablePointer<FILE>, time: Nanoseconds, captured: UInt32, original: UInt32,
                            data: UnsafePointer<UInt8>) {
        let padded = (captured + 3) & ~3
        let total = 32 + padded
        let stamp = UInt64(bitPattern: time)
        var header: (UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32) =
            (6, total, 0, UInt32(stamp >> 32), UInt32(truncatingIfNeeded: stamp), captured, original)
        _ = withUnsafeBytes(of: &header) { fwrite($0.baseAddress, 1, 28, file) }
        _ = fwrite(data, 1, Int(captured), file)
        var zero: UInt32 = 0
        if padded > captured { _ = withUnsafeBytes(of: &zero) { fwrite($0.baseAddress, 1, Int(padded - captured), file) } }
        var trailer = total
        _ = withUnsafeBytes(of: &trailer) { fwrite($0.baseAddress, 1, 4, file) }
    }

    /// The interface statistics block written at the stop.
    func finish(start: Nanoseconds, end: Nanoseconds, received: UInt64?, dropped: UInt64?) {
        var isb = Bytes()
        let stamp = UInt64(bitPattern: end)
        isb.u32(0); isb.u32(UInt32(stamp >> 32)); isb.u32(UInt32(truncatingIfNeeded: stamp))
        isb.option(2, Bytes.timestamp(start))  // isb_starttime
        isb.option(3, Bytes.timestamp(end))    // isb_endtime
        if let received { var b = Bytes(); b.u64(received); isb.option(4, b.bytes) }  // isb_ifrecv
        if let dropped { var b = Bytes(); b.u64(dropped); isb.option(5, b.bytes) }    // isb_ifdrop
        isb.endOfOptions()
        block(5, isb.bytes)
        fflush(file)
    }

    func flush() { fflush(file) }

    private func block(_ type: UInt32, _ body: [UInt8]) {
        var out = Bytes()
        let total = UInt32(12 + body.count)
        out.u32(type); out.u32(total)
        out.bytes += body
        out.u32(total)
        _ = out.bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
    }

    struct Bytes {
        var bytes: [UInt8] = []
        mutating func u16(_ v: UInt16) { bytes += [UInt8(v & 0xff), UInt8(v >> 8)] }
        mutating func u32(_ v: UInt32) { for i in 0..<4 { bytes.append(UInt8((v >> (8 * UInt32(i))) & 0xff)) } }
        mutating func u64(_ v: UInt64) { for i in 0..<8 { bytes.append(UInt8((v >> (8 * UInt64(i))) & 0xff)) } }
        mutating func option(_ code: UInt16, _ value: [UInt8]) {
            u16(code); u16(UInt16(value.count))
            bytes += value
            bytes += [UInt8](repeating: 0, count: (4 - value.count % 4) % 4)
        }
        mutating func endOfOptions() { u16(0); u16(0) }
        /// A pcapng timestamp option value: high 32 bits, then low 32 bits.
        static func timestamp(_ time: Nanoseconds) -> [UInt8] {
            let stamp = UInt64(bitPattern: time)
            var b = Bytes(); b.u32(UInt32(stamp >> 32)); b.u32(UInt32(truncatingIfNeeded: stamp))
            return b.bytes
        }
    }
}
