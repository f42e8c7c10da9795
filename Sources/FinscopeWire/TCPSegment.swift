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
    /// Where the TCP payload starts inside the frame buffer given to `FrameDecoder.decode`
    /// (for NFLOG, inside the payload TLV). The captured payload bytes are
    /// `frame[payloadOffset ..< min(frame.count, payloadOffset + Int(payloadLength))]`,
    /// empty when the snapshot length cut them off. 0 for segments not made by decoding.
    public var payloadOffset: Int

    /// An all-zero segment: storage for `FrameDecoder.decode(_:wireLength:link:into:)`.
    @inlinable
    public init() {
        self.init(source: IPAddress(ipv4: 0), destination: IPAddress(ipv4: 0), sourcePort: 0, destinationPort: 0,
                  sequence: 0, acknowledgment: 0, flags: TCPFlags(rawValue: 0), window: 0, payloadLength: 0)
    }

    @inlinable
    public init(source: IPAddress, destination: IPAddress, sourcePort: UInt16, destinationPort: UInt16,
                sequence: UInt32, acknowledgment: UInt32, flags: TCPFlags, window: UInt16,
                payloadLength: UInt32, windowScale: Int8 = -1, payloadOffset: Int = 0) {
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
        self.payloadOffset = payloadOffset
    }

    /// Equal when they say the same: addresses, ports, numbers, flags, lengths, window
    /// scale. `payloadOffset` is a position in one buffer, not part of the segment: the
    /// same segment over Ethernet and over NFLOG is the same segment.
    public static func == (lhs: TCPSegment, rhs: TCPSegment) -> Bool {
        lhs.source == rhs.source && lhs.destination == rhs.destination
            && lhs.sourcePort == rhs.sourcePort && lhs.destinationPort == rhs.destinationPort
            && lhs.sequence == rhs.sequence && lhs.acknowledgment == rhs.acknowledgment
            && lhs.flags == rhs.flags && lhs.window == rhs.window
            && lhs.payloadLength == rhs.payloadLength && lhs.windowScale == rhs.windowScale
    }
}

/// What one frame decoded to.
public enum DecodeOutcome: Sendable, Equatable {
    case segment(TCPSegment)
    case skipped(SkipReason)
}
