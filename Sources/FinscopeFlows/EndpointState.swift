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
/// Stored compactly (72 bytes): every flow holds two of these, and a busy capture holds
/// hundreds of thousands of flows at once. The booleans are bits; the facts of the close
/// (FIN and RST marks) are out of line in a `CloseSide` from the first FIN or RST on.
struct EndpointState {
    // Eight-byte fields first, then four, two and one: no padding between them.
    /// Time of the previous segment in this direction (capture-duplicate detection).
    var lastTime: Nanoseconds = 0
    /// When this endpoint first sent its highest acknowledgement so far (`highestAck`).
    var highestAckTime: Nanoseconds = 0
    /// Payload bytes sent in new sequence space (retransmissions excluded).
    var payloadBytes: UInt64 = 0

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
    private(set) var alternateISNStorage: UInt32 = 0
    /// The highest acknowledgement number this endpoint sent (in sequence space), and the
    /// index of its first segment carrying it: a FIN captured after its acknowledgement
    /// was acknowledged there (capture reordering, SPEC §1).
    var highestAck: UInt32 = 0
    var highestAckIndex: UInt32 = 0

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

    // MARK: Close phase, in line
    // The close facts themselves (`CloseSide`) live out of line from the first FIN or RST on;
    // these two bits let the per-segment path test for them without reaching there.

    /// This endpoint sent a FIN (its first transmission is `CloseSide.fin`).
    var hasFin: Bool {
        @inline(__always) get { activities & 0x40 != 0 }
        @inline(__always) set { activities = activities & ~0x40 | (newValue ? 0x40 : 0) }
    }
    /// This endpoint acknowledged its peer's FIN (`CloseSide.ackedPeerFin`).
    var hasAckedPeerFin: Bool {
        @inline(__always) get { activities & 0x80 != 0 }
        @inline(__always) set { activities = activities & ~0x80 | (newValue ? 0x80 : 0) }
    }
    @inline(__always) var hasAlternateISN: Bool { activities & 0x10 != 0 }

    @inline(__always)
    mutating func setAlternateISN(_ isn: UInt32) {
        alternateISNStorage = isn
        activities |= 0x10
    }

    /// Own segments after `ackedPeerFin` and before its FIN or a reset (close-wait activity).
    var closeWaitActivity: Activity {
        @inline(__always) get { Activity(rawValue: activities & 0x3) ?? .data }
        @inline(__always) set { activities = activities & ~0x3 | newValue.rawValue }  // bits 0-1
    }

    /// The peer's segments after this endpoint's FIN (fin-unacked activity).
    var peerActivityAfterFin: Activity {
        @inline(__always) get { Activity(rawValue: activities >> 2 & 0x3) ?? .data }
        // bits 2-3; bit 4: alternateISN, 5: hasHighestAck, 6: hasFin, 7: hasAckedPeerFin
        @inline(__always) set { activities = activities & ~0xC | newValue.rawValue << 2 }
    }

    /// The ISN of an earlier SYN+ACK that a later one with another ISN replaced.
    var alternateISN: UInt32? { hasAlternateISN ? alternateISNStorage : nil }

    /// `highestAck` holds a value (the endpoint sent an ACK).
    var hasHighestAck: Bool {
        @inline(__always) get { activities & 0x20 != 0 }
        @inline(__always) set { activities = activities & ~0x20 | (newValue ? 0x20 : 0) }
    }
}

/// One endpoint's facts about the close: written from its first FIN (or the flow's first
/// RST) on, so they are kept out of line (`CloseRecord`) and open flows do not carry them.
/// Fresh (no record yet) every mark reads as none.
struct CloseSide {
    private var finTime: Nanoseconds = 0
    private var ackedPeerFinTime: Nanoseconds = 0
    private var resetTime: Nanoseconds = .min
    /// At the first transmission of its FIN: time since the flow's last payload-carrying
    /// segment (either direction), or since its first segment when none carried payload.
    var idleBeforeFin: Nanoseconds = 0
    /// Time of the latest transmission of its FIN so far.
    var finLastTransmissionTime: Nanoseconds = 0
    /// Time of the transmission of the peer's FIN this endpoint received.
    var receivedPeerFinTime: Nanoseconds = 0
    /// F(X): seq + payload (+1 with SYN) of its first FIN.
    var finSeq: UInt32 = 0
    /// The ack carried by the first transmission of its FIN (valid when `finFirstHasAck`).
    var finFirstAck: UInt32 = 0
    var finRetransmits: UInt32 = 0
    // `.max`: none.
    private(set) var finIndex: UInt32 = .max
    private var finLastIndex: UInt32 = .max
    private(set) var ackedPeerFinIndex: UInt32 = .max
    private var receivedPeerFinIndexStorage: UInt32 = .max

    @inline(__always) var hasResetAt: Bool { resetTime != .min }

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

    /// `finLastTransmissionIndex` as stored (`.max`: none).
    @inline(__always) var finLastRawIndex: UInt32 { finLastIndex }

    /// First transmission of this endpoint's FIN.
    var fin: SegmentMark? { finIndex == .max ? nil : SegmentMark(index: finIndex, time: finTime) }

    /// This endpoint's first segment acknowledging the peer's FIN.
    var ackedPeerFin: SegmentMark? {
        ackedPeerFinIndex == .max ? nil : SegmentMark(index: ackedPeerFinIndex, time: ackedPeerFinTime)
    }

    /// The transmission of the peer's FIN this endpoint received (an index in the peer's order).
    var receivedPeerFinIndex: UInt32? { receivedPeerFinIndexStorage == .max ? nil : receivedPeerFinIndexStorage }

    /// First accepted RST this endpoint sent.
    var resetAt: Nanoseconds? { resetTime == .min ? nil : resetTime }

    /// This endpoint acknowledged the peer's FIN before (or with) its own FIN, or never sent one.
    @inline(__always) var isPassiveCloser: Bool {
        guard ackedPeerFinIndex != .max else { return false }
        return finIndex == .max || ackedPeerFinIndex <= finIndex
    }
}

/// Both endpoints' close facts, as the report reads them (the store keeps them as two
/// adjacent `CloseSide`s, allocated at the flow's first FIN or RST segment).
struct CloseRecord {
    var client = CloseSide()
    var server = CloseSide()
}

/// An endpoint as the report reads it: its in-line state and its close facts.
struct EndpointView {
    var open: EndpointState
    var close: CloseSide

    var sent: UInt32 { open.sent }
    var payloadBytes: UInt64 { open.payloadBytes }
    var sawSYNACK: Bool { open.sawSYNACK }
    var finFirstHasAck: Bool { open.finFirstHasAck }
    var closeWaitActivity: Activity { open.closeWaitActivity }
    var peerActivityAfterFin: Activity { open.peerActivityAfterFin }
    var fin: SegmentMark? { close.fin }
    var ackedPeerFin: SegmentMark? { close.ackedPeerFin }
    var receivedPeerFinIndex: UInt32? { close.receivedPeerFinIndex }
    var receivedPeerFinTime: Nanoseconds { close.receivedPeerFinTime }
    var resetAt: Nanoseconds? { close.resetAt }
    var finSeq: UInt32 { close.finSeq }
    var finFirstAck: UInt32 { close.finFirstAck }
    var finRetransmits: UInt32 { close.finRetransmits }
    var idleBeforeFin: Nanoseconds { close.idleBeforeFin }
    var isPassiveCloser: Bool { close.isPassiveCloser }
}
