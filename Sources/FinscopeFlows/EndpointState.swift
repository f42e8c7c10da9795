import FinscopeWire
/// One of an endpoint's own segments: its place in the endpoint's sending order (the
/// order of its segments in the capture) and its time.
struct SegmentMark: Equatable {
    var index: UInt32
    var time: Nanoseconds
}

/// What the capture showed one endpoint do. Fixed-size facts only: the state path is
/// derived from them when the flow is reported (`FlowState.report`), so the per-packet
/// path never appends to a history.
///
/// Stored compactly (about 100 bytes): every flow holds two of these, and a busy capture
/// holds hundreds of thousands of flows at once. Optional marks are kept as an index with
/// `UInt32.max` for "none", the booleans as bits; the properties below read them back.
struct EndpointState {
    // Eight-byte fields first, then four, two and one: no padding between them.
    /// Time of the previous segment in this direction (capture-duplicate detection).
    var lastTime: Nanoseconds = 0
    private var finTime: Nanoseconds = 0
    private var ackedPeerFinTime: Nanoseconds = 0
    private var resetTime: Nanoseconds = .min
    /// At the first transmission of its FIN: time since the flow's last payload-carrying
    /// segment (either direction), or since its first segment when none carried payload.
    var idleBeforeFin: Nanoseconds = 0
    /// When this endpoint first sent its highest acknowledgement so far (`highestAck`).
    var highestAckTime: Nanoseconds = 0
    /// Payload bytes sent in new sequence space (retransmissions excluded).
    var payloadBytes: UInt64 = 0
    /// Time of the latest transmission of its FIN so far.
    var finLastTransmissionTime: Nanoseconds = 0
    /// Time of the transmission of the peer's FIN this endpoint received.
    var receivedPeerFinTime: Nanoseconds = 0

    /// Segments this endpoint sent so far (duplicates excluded): the next one's index.
    var sent: UInt32 = 0
    // The previous segment in this direction, for capture-duplicate detection (SPEC §5).
    var lastSeq: UInt32 = 0
    var lastAck: UInt32 = 0
    var lastLength: UInt32 = 0
    // Sequence space.
    var isn: UInt32 = 0
    /// One past the highest sequence number sent (SYN and FIN count).
    var nextSeq: UInt32 = 0
    /// What this endpoint last acknowledged (valid when `hasAck`).
    var ackValue: UInt32 = 0
    /// F(X): seq + payload (+1 with SYN) of its first FIN.
    var finSeq: UInt32 = 0
    /// The ack carried by the first transmission of its FIN (valid when `finFirstHasAck`).
    var finFirstAck: UInt32 = 0
    var finRetransmits: UInt32 = 0
    private(set) var alternateISNStorage: UInt32 = 0
    /// The highest acknowledgement number this endpoint sent (in sequence space), and the
    /// index of its first segment carrying it: a FIN captured after its acknowledgement
    /// was acknowledged there (capture reordering, SPEC §1).
    var highestAck: UInt32 = 0
    var highestAckIndex: UInt32 = 0
    // `.max`: none. Readable in place so the per-segment path tests them without building a mark.
    private(set) var finIndex: UInt32 = .max
    private var finLastIndex: UInt32 = .max
    private(set) var ackedPeerFinIndex: UInt32 = .max
    private var receivedPeerFinIndexStorage: UInt32 = .max

    var lastWindow: UInt16 = 0
    /// The window advertised with `ackValue`.
    var ackWindow: UInt16 = 0
    var lastFlags: UInt8 = 0
    /// Window-scale shift from this endpoint's SYN or SYN+ACK; -1 when absent.
    var windowScale: Int8 = -1
    private var bits: UInt8 = 0
    private var activities: UInt8 = 0

    // MARK: Flags

    private enum Bit {
        static let hasLast: UInt8 = 1 << 0
        static let hasISN: UInt8 = 1 << 1
        static let sawSYN: UInt8 = 1 << 2
        static let sawSYNACK: UInt8 = 1 << 3
        static let hasNextSeq: UInt8 = 1 << 4
        static let hasAck: UInt8 = 1 << 5
        static let ackWindowFromSYN: UInt8 = 1 << 6
        static let finFirstHasAck: UInt8 = 1 << 7
    }

    @inline(__always)
    private func bit(_ mask: UInt8) -> Bool { bits & mask != 0 }

    // Branch-free; every setter below is always inlined, so a constant `on` folds to one OR.
    @inline(__always)
    private mutating func setBit(_ mask: UInt8, _ on: Bool) {
        bits = bits & ~mask | (on ? mask : 0)
    }

    var hasLast: Bool {
        @inline(__always) get { bit(Bit.hasLast) }
        @inline(__always) set { setBit(Bit.hasLast, newValue) }
    }
    var hasISN: Bool {
        @inline(__always) get { bit(Bit.hasISN) }
        @inline(__always) set { setBit(Bit.hasISN, newValue) }
    }
    var sawSYN: Bool {
        @inline(__always) get { bit(Bit.sawSYN) }
        @inline(__always) set { setBit(Bit.sawSYN, newValue) }
    }
    var sawSYNACK: Bool {
        @inline(__always) get { bit(Bit.sawSYNACK) }
        @inline(__always) set { setBit(Bit.sawSYNACK, newValue) }
    }
    var hasNextSeq: Bool {
        @inline(__always) get { bit(Bit.hasNextSeq) }
        @inline(__always) set { setBit(Bit.hasNextSeq, newValue) }
    }
    var hasAck: Bool {
        @inline(__always) get { bit(Bit.hasAck) }
        @inline(__always) set { setBit(Bit.hasAck, newValue) }
    }
    /// The window came on a SYN segment, where it is never scaled.
    var ackWindowFromSYN: Bool {
        @inline(__always) get { bit(Bit.ackWindowFromSYN) }
        @inline(__always) set { setBit(Bit.ackWindowFromSYN, newValue) }
    }
    var finFirstHasAck: Bool {
        @inline(__always) get { bit(Bit.finFirstHasAck) }
        @inline(__always) set { setBit(Bit.finFirstHasAck, newValue) }
    }

    // MARK: Marks

    // Tests of the marks on the raw storage: the optional getters below build a mark (or an
    // optional) only to compare it with nil.
    @inline(__always) var hasFin: Bool { finIndex != .max }
    @inline(__always) var hasAckedPeerFin: Bool { ackedPeerFinIndex != .max }
    @inline(__always) var hasResetAt: Bool { resetTime != .min }
    @inline(__always) var hasAlternateISN: Bool { activities & 0x10 != 0 }

    @inline(__always)
    mutating func setFin(_ mark: SegmentMark) {
        finIndex = mark.index
        finTime = mark.time
    }

    @inline(__always)
    mutating func setAckedPeerFin(_ mark: SegmentMark) {
        ackedPeerFinIndex = mark.index
        ackedPeerFinTime = mark.time
    }

    @inline(__always)
    mutating func setResetAt(_ time: Nanoseconds) { resetTime = time }

    @inline(__always)
    mutating func setFinLastTransmission(index: UInt32, time: Nanoseconds) {
        finLastIndex = index
        finLastTransmissionTime = time
    }

    @inline(__always)
    mutating func setReceivedPeerFin(index: UInt32, time: Nanoseconds) {
        receivedPeerFinIndexStorage = index
        receivedPeerFinTime = time
    }

    @inline(__always)
    mutating func setAlternateISN(_ isn: UInt32) {
        alternateISNStorage = isn
        activities |= 0x10
    }

    /// `receivedPeerFinIndex` as stored (`.max`: none).
    @inline(__always) var receivedPeerFinRawIndex: UInt32 { receivedPeerFinIndexStorage }
    /// `finLastTransmissionIndex` as stored (`.max`: none).
    @inline(__always) var finLastRawIndex: UInt32 { finLastIndex }

    /// First transmission of this endpoint's FIN.
    var fin: SegmentMark? {
        get { finIndex == .max ? nil : SegmentMark(index: finIndex, time: finTime) }
        set {
            finIndex = newValue?.index ?? .max
            finTime = newValue?.time ?? 0
        }
    }

    /// Index (in this endpoint's order) of the latest transmission of its FIN so far.
    var finLastTransmissionIndex: UInt32? {
        get { finLastIndex == .max ? nil : finLastIndex }
        set { finLastIndex = newValue ?? .max }
    }

    /// This endpoint's first segment acknowledging the peer's FIN.
    var ackedPeerFin: SegmentMark? {
        get { ackedPeerFinIndex == .max ? nil : SegmentMark(index: ackedPeerFinIndex, time: ackedPeerFinTime) }
        set {
            ackedPeerFinIndex = newValue?.index ?? .max
            ackedPeerFinTime = newValue?.time ?? 0
        }
    }

    /// The transmission of the peer's FIN this endpoint received (an index in the peer's order).
    var receivedPeerFinIndex: UInt32? {
        get { receivedPeerFinIndexStorage == .max ? nil : receivedPeerFinIndexStorage }
        set { receivedPeerFinIndexStorage = newValue ?? .max }
    }

    /// First accepted RST this endpoint sent.
    var resetAt: Nanoseconds? {
        get { resetTime == .min ? nil : resetTime }
        set { resetTime = newValue ?? .min }
    }

    /// Own segments after `ackedPeerFin` and before its FIN or a reset (close-wait activity).
    var closeWaitActivity: Activity {
        @inline(__always) get { Activity(rawValue: activities & 0x3) ?? .data }
        @inline(__always) set { activities = activities & ~0x3 | newValue.rawValue }  // bits 0-1
    }

    /// The peer's segments after this endpoint's FIN (fin-unacked activity).
    var peerActivityAfterFin: Activity {
        @inline(__always) get { Activity(rawValue: activities >> 2 & 0x3) ?? .data }
        @inline(__always) set { activities = activities & ~0xC | newValue.rawValue << 2 }  // bits 2-3; bit 4: alternateISN
    }

    /// The ISN of an earlier SYN+ACK that a later one with another ISN replaced.
    var alternateISN: UInt32? {
        get { activities & 0x10 != 0 ? alternateISNStorage : nil }
        set {
            alternateISNStorage = newValue ?? 0
            activities = newValue == nil ? activities & ~0x10 : activities | 0x10
        }
    }

    /// `highestAck` holds a value (the endpoint sent an ACK).
    var hasHighestAck: Bool {
        @inline(__always) get { activities & 0x20 != 0 }
        @inline(__always) set { activities = activities & ~0x20 | (newValue ? 0x20 : 0) }
    }

    /// This endpoint acknowledged the peer's FIN before (or with) its own FIN, or never sent one.
    @inline(__always) var isPassiveCloser: Bool {
        guard ackedPeerFinIndex != .max else { return false }
        return finIndex == .max || ackedPeerFinIndex <= finIndex
    }
}
