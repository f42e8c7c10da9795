/// Byte order of a capture file or of a BSD loopback header.
public enum ByteOrder: Sendable, Equatable {
    case little, big

    /// The order of the machine running the tests.
    public static var host: ByteOrder { 1.littleEndian == 1 ? .little : .big }
}

/// Appending fixed-width integers in a chosen byte order.
extension Array where Element == UInt8 {
    public mutating func append16(_ value: UInt16, _ order: ByteOrder = .big) {
        let v = order == .big ? value.bigEndian : value.littleEndian
        Swift.withUnsafeBytes(of: v) { append(contentsOf: $0) }
    }

    public mutating func append32(_ value: UInt32, _ order: ByteOrder = .big) {
        let v = order == .big ? value.bigEndian : value.littleEndian
        Swift.withUnsafeBytes(of: v) { append(contentsOf: $0) }
    }

    public mutating func append64(_ value: UInt64, _ order: ByteOrder = .big) {
        let v = order == .big ? value.bigEndian : value.littleEndian
        Swift.withUnsafeBytes(of: v) { append(contentsOf: $0) }
    }

    /// Overwrites two bytes at `offset` with a big-endian value.
    public mutating func set16(_ value: UInt16, at offset: Int) {
        self[offset] = UInt8(value >> 8)
        self[offset + 1] = UInt8(value & 0xff)
    }
}
