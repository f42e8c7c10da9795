/// One decoded TCP header with its addressing: a plain value, copied out of the
/// captured bytes so that nothing refers to libpcap's buffer after decoding.
public struct TCPSegment: Sendable, Equatable {
    public var source: IPAddress
    public var destination: IPAddress
    public var sourcePort: UInt16
    public var destinationPort: UInt16
    public var sequence: UInt32
    public var acknowledgment: UInt32
    public var flags: TCPFlags
    public var window: UInt16
    /// Payload bytes from the IP length fields (never from the captured length).
    public var payloadLength: UInt32
    /// Window-scale shift from a SYN's options; -1 when absent or not a SYN.
    public var windowScale: Int8

    public init(source: IPAddress, destination: IPAddress, sourcePort: UInt16, destinationPort: UInt16,
                sequence: UInt32, acknowledgment: UInt32, flags: TCPFlags, window: UInt16,
                payloadLength: UInt32, windowScale: Int8 = -1) {
        self.source = source
        self.destination = destination
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
        self.sequence = sequence
        self.acknowledgment = acknowledgment
        self.flags = flags
        self.window = window
        self.payloadLength = payloadLength
        self.windowScale = windowScale
    }
}

/// What one frame decoded to.
public enum DecodeOutcome: Sendable, Equatable {
    case segment(TCPSegment)
    case skipped(SkipReason)
}
