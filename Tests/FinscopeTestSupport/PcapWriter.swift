import Foundation

/// Timestamp resolution of a classic pcap file (chosen by its magic number).
public enum PcapPrecision: Sendable, Equatable {
    /// magic 0xa1b2c3d4
    case microseconds
    /// magic 0xa1b23c4d
    case nanoseconds
}

/// Writes classic libpcap files (https://www.ietf.org/archive/id/draft-ietf-opsawg-pcap-04.html).
///
///     var w = PcapWriter(linkType: 1)
///     w.append(frame, at: 1_700_000_000.25)
///     w.append(frame, nanoseconds: 1_700_000_000_250_000_001, originalLength: 1514)
///     try w.write(to: url)
public struct PcapWriter: Sendable {
    public struct Record: Sendable, Equatable {
        public var time: CaptureTime
        /// The captured bytes (`incl_len` is their count).
        public var bytes: [UInt8]
        /// `orig_len`: the frame's length on the wire (≥ `bytes.count` in a sane file).
        public var originalLength: Int

        public init(time: CaptureTime, bytes: [UInt8], originalLength: Int? = nil) {
            self.time = time
            self.bytes = bytes
            self.originalLength = originalLength ?? bytes.count
        }
    }

    public var linkType: UInt32
    public var precision: PcapPrecision
    public var byteOrder: ByteOrder
    public var snaplen: UInt32
    public var versionMajor: UInt16 = 2
    public var versionMinor: UInt16 = 4
    public var records: [Record] = []

    public init(linkType: UInt32 = 1, precision: PcapPrecision = .microseconds,
                byteOrder: ByteOrder = .little, snaplen: UInt32 = 262_144) {
        self.linkType = linkType
        self.precision = precision
        self.byteOrder = byteOrder
        self.snaplen = snaplen
    }

    /// Adds a record at `time` seconds since the epoch.
    /// - Parameters:
    ///   - originalLength: the wire length; defaults to `bytes.count`.
    ///   - captureLength: when set, only the first `captureLength` bytes are stored (as
    ///     `tcpdump -s` would do) and the original length stays the full frame's length.
    public mutating func append(_ bytes: [UInt8], at time: Double, originalLength: Int? = nil, captureLength: Int? = nil) {
        append(bytes, time: CaptureTime(time), originalLength: originalLength, captureLength: captureLength)
    }

    /// Adds a record at exactly `nanoseconds` since the epoch.
    public mutating func append(_ bytes: [UInt8], nanoseconds: Int64, originalLength: Int? = nil, captureLength: Int? = nil) {
        append(bytes, time: CaptureTime(nanoseconds: nanoseconds), originalLength: originalLength, captureLength: captureLength)
    }

    public mutating func append(_ bytes: [UInt8], time: CaptureTime, originalLength: Int? = nil, captureLength: Int? = nil) {
        let wire = originalLength ?? bytes.count
        let captured = captureLength.map { Array(bytes.prefix($0)) } ?? bytes
        records.append(Record(time: time, bytes: captured, originalLength: wire))
    }

    /// The file header alone (24 bytes).
    public var headerBytes: [UInt8] {
        var out: [UInt8] = []
        out.append32(precision == .microseconds ? 0xa1b2_c3d4 : 0xa1b2_3c4d, byteOrder)
        out.append16(versionMajor, byteOrder)
        out.append16(versionMinor, byteOrder)
        out.append32(0, byteOrder)  // thiszone
        out.append32(0, byteOrder)  // sigfigs
        out.append32(snaplen, byteOrder)
        out.append32(linkType, byteOrder)
        return out
    }

    /// One record's bytes (16-byte header + captured bytes).
    public func recordBytes(_ record: Record) -> [UInt8] {
        var out: [UInt8] = []
        let seconds: Int64
        let fraction: Int64
        switch precision {
        case .microseconds: (seconds, fraction) = record.time.microsecondParts
        case .nanoseconds: (seconds, fraction) = (record.time.seconds, record.time.nanoseconds)
        }
        out.append32(UInt32(truncatingIfNeeded: seconds), byteOrder)
        out.append32(UInt32(truncatingIfNeeded: fraction), byteOrder)
        out.append32(UInt32(record.bytes.count), byteOrder)
        out.append32(UInt32(truncatingIfNeeded: record.originalLength), byteOrder)
        out.append(contentsOf: record.bytes)
        return out
    }

    public var bytes: [UInt8] {
        var out = headerBytes
        for record in records { out += recordBytes(record) }
        return out
    }

    public func data() -> Data { Data(bytes) }

    public func write(to url: URL) throws {
        try data().write(to: url)
    }
}

/// Writes pcapng files: one Section Header Block, any number of Interface Description
/// Blocks (each with its link type, snaplen and optional `if_tsresol`), then Enhanced
/// Packet Blocks on chosen interfaces.
///
///     var w = PcapNGWriter()
///     let eth = w.addInterface(linkType: 1)
///     let any = w.addInterface(linkType: 276, tsresol: 9)
///     w.append(frame, interface: eth, at: 1_700_000_000.5)
///     w.append(other, interface: any, nanoseconds: 1_700_000_000_500_000_001)
public struct PcapNGWriter: Sendable {
    public struct Interface: Sendable, Equatable {
        public var linkType: UInt16
        public var snaplen: UInt32
        /// `if_tsresol` byte: high bit clear → 10^-n seconds, set → 2^-n; nil = option absent (µs).
        public var tsresol: UInt8?
        public var name: String?
    }

    public enum Block: Sendable, Equatable {
        case interface(Interface)
        case packet(interface: Int, time: CaptureTime, bytes: [UInt8], originalLength: Int)
        /// Any block, written as type + total length + body + total length (body is padded to 4).
        case raw(type: UInt32, body: [UInt8])
    }

    public var byteOrder: ByteOrder
    public private(set) var blocks: [Block] = []
    public private(set) var interfaces: [Interface] = []

    public init(byteOrder: ByteOrder = .little) {
        self.byteOrder = byteOrder
    }

    /// Adds an IDB and returns its interface ID (0, 1, ...). IDBs may follow packets.
    @discardableResult
    public mutating func addInterface(linkType: UInt16, snaplen: UInt32 = 262_144, tsresol: UInt8? = nil, name: String? = nil) -> Int {
        let interface = Interface(linkType: linkType, snaplen: snaplen, tsresol: tsresol, name: name)
        interfaces.append(interface)
        blocks.append(.interface(interface))
        return interfaces.count - 1
    }

    public mutating func append(_ bytes: [UInt8], interface: Int, at time: Double, originalLength: Int? = nil, captureLength: Int? = nil) {
        append(bytes, interface: interface, time: CaptureTime(time), originalLength: originalLength, captureLength: captureLength)
    }

    public mutating func append(_ bytes: [UInt8], interface: Int, nanoseconds: Int64, originalLength: Int? = nil, captureLength: Int? = nil) {
        append(bytes, interface: interface, time: CaptureTime(nanoseconds: nanoseconds), originalLength: originalLength, captureLength: captureLength)
    }

    public mutating func append(_ bytes: [UInt8], interface: Int, time: CaptureTime, originalLength: Int? = nil, captureLength: Int? = nil) {
        let wire = originalLength ?? bytes.count
        let captured = captureLength.map { Array(bytes.prefix($0)) } ?? bytes
        blocks.append(.packet(interface: interface, time: time, bytes: captured, originalLength: wire))
    }

    /// Appends an arbitrary block (e.g. a Name Resolution Block or an unknown type).
    public mutating func appendRawBlock(type: UInt32, body: [UInt8]) {
        blocks.append(.raw(type: type, body: body))
    }

    /// Timestamp units of `time` for an interface's `if_tsresol`.
    public static func timestampUnits(_ time: CaptureTime, tsresol: UInt8?) -> UInt64 {
        let resolution = tsresol ?? 6
        let exponent = Int(resolution & 0x7f)
        let seconds = UInt64(time.seconds)
        let nanos = UInt64(time.nanoseconds)
        if resolution & 0x80 != 0 {
            // 2^-exponent seconds
            return seconds << UInt64(exponent) + (nanos << UInt64(exponent)) / 1_000_000_000
        }
        if exponent <= 9 {
            var divisor: UInt64 = 1
            for _ in 0..<(9 - exponent) { divisor *= 10 }
            var perSecond: UInt64 = 1
            for _ in 0..<exponent { perSecond *= 10 }
            return seconds * perSecond + nanos / divisor
        }
        var multiplier: UInt64 = 1
        for _ in 0..<(exponent - 9) { multiplier *= 10 }
        return (seconds * 1_000_000_000 + nanos) * multiplier
    }

    private func block(type: UInt32, body: [UInt8]) -> [UInt8] {
        var padded = body
        while padded.count % 4 != 0 { padded.append(0) }
        let total = UInt32(12 + padded.count)
        var out: [UInt8] = []
        out.append32(type, byteOrder)
        out.append32(total, byteOrder)
        out += padded
        out.append32(total, byteOrder)
        return out
    }

    private func option(code: UInt16, value: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.append16(code, byteOrder)
        out.append16(UInt16(value.count), byteOrder)
        out += value
        while out.count % 4 != 0 { out.append(0) }
        return out
    }

    public var bytes: [UInt8] {
        var out: [UInt8] = []
        // Section Header Block
        var shb: [UInt8] = []
        shb.append32(0x1a2b_3c4d, byteOrder)
        shb.append16(1, byteOrder)
        shb.append16(0, byteOrder)
        shb.append64(UInt64.max, byteOrder)  // section length unknown
        out += block(type: 0x0a0d_0d0a, body: shb)
        for entry in blocks {
            switch entry {
            case .interface(let interface):
                var body: [UInt8] = []
                body.append16(interface.linkType, byteOrder)
                body.append16(0, byteOrder)
                body.append32(interface.snaplen, byteOrder)
                var options: [UInt8] = []
                if let name = interface.name { options += option(code: 2, value: Array(name.utf8)) }
                if let tsresol = interface.tsresol { options += option(code: 9, value: [tsresol]) }
                if !options.isEmpty { body += options + [0, 0, 0, 0] }  // opt_endofopt
                out += block(type: 1, body: body)
            case let .packet(interface, time, bytes, originalLength):
                let tsresol = interface < interfaces.count ? interfaces[interface].tsresol : nil
                let units = Self.timestampUnits(time, tsresol: tsresol)
                var body: [UInt8] = []
                body.append32(UInt32(interface), byteOrder)
                body.append32(UInt32(truncatingIfNeeded: units >> 32), byteOrder)
                body.append32(UInt32(truncatingIfNeeded: units), byteOrder)
                body.append32(UInt32(bytes.count), byteOrder)
                body.append32(UInt32(truncatingIfNeeded: originalLength), byteOrder)
                body += bytes
                out += block(type: 6, body: body)
            case let .raw(type, body):
                out += block(type: type, body: body)
            }
        }
        return out
    }

    public func data() -> Data { Data(bytes) }

    public func write(to url: URL) throws {
        try data().write(to: url)
    }
}
