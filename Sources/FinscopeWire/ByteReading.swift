// Reads from captured bytes. Callers check bounds once (in a header view's `check`);
// these helpers then load without further checks or alignment traps.

extension UnsafeRawBufferPointer {
    @inline(__always)
    func u8(_ offset: Int) -> UInt8 {
        load(fromByteOffset: offset, as: UInt8.self)
    }

    /// Big-endian (network order), as nearly every header field is.
    @inline(__always)
    func u16(_ offset: Int) -> UInt16 {
        UInt16(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    @inline(__always)
    func u32(_ offset: Int) -> UInt32 {
        UInt32(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    /// Little-endian: radiotap and PPI fields.
    @inline(__always)
    func u16le(_ offset: Int) -> UInt16 {
        UInt16(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    @inline(__always)
    func u32le(_ offset: Int) -> UInt32 {
        UInt32(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    /// In the byte order of the machine running finscope (NFLOG's TLV headers).
    @inline(__always)
    func u16host(_ offset: Int) -> UInt16 {
        loadUnaligned(fromByteOffset: offset, as: UInt16.self)
    }

    /// The bytes from `offset` on (empty when `offset` is at or past the end).
    @inline(__always)
    func tail(from offset: Int) -> UnsafeRawBufferPointer {
        offset >= count ? UnsafeRawBufferPointer(start: baseAddress.map { $0 + count }, count: 0)
            : UnsafeRawBufferPointer(rebasing: self[offset...])
    }

    /// The first `length` bytes (all of them when `length` is larger).
    @inline(__always)
    func head(_ length: Int) -> UnsafeRawBufferPointer {
        length >= count ? self : UnsafeRawBufferPointer(rebasing: self[..<Swift.max(length, 0)])
    }
}
