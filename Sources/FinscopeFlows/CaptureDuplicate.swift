import FinscopeWire

/// The capture-duplicate rule (SPEC §5), in one place: a segment identical to the previous
/// one in the same direction of its flow (seq, ack, flags, payload length, window), at most
/// `window` after it. `tcpdump -i any` on a host with a bridge sees each forwarded frame
/// twice, once per port, microseconds apart; a repeat later than the window is a
/// retransmission.
public enum CaptureDuplicate {
    public static let window: Nanoseconds = 1_000_000

    @inline(__always)
    static func repeats(_ segment: TCPSegment, at time: Nanoseconds, seq: UInt32, ack: UInt32, flags: UInt8,
                        length: UInt32, window: UInt16, previousTime: Nanoseconds) -> Bool {
        seq == segment.sequence && ack == segment.acknowledgment && flags == segment.flags.rawValue
            && length == segment.payloadLength && window == segment.window
            && time >= previousTime && time - previousTime <= Self.window
    }
}
