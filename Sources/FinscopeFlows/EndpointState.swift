/// One of an endpoint's own segments: its place in the endpoint's sending order (the
/// order of its segments in the capture) and its time.
struct SegmentMark: Equatable {
    var index: UInt32
    var time: Nanoseconds
}

/// What the capture showed one endpoint do. Fixed-size facts only: the state path is
/// derived from them when the flow is reported (`FlowState.report`), so the per-packet
/// path never appends to a history.
struct EndpointState {
    /// Segments this endpoint sent so far (duplicates excluded): the next one's index.
    var sent: UInt32 = 0

    // The previous segment in this direction, for capture-duplicate detection (SPEC §5).
    var hasLast = false
    var lastSeq: UInt32 = 0
    var lastAck: UInt32 = 0
    var lastLength: UInt32 = 0
    var lastWindow: UInt16 = 0
    var lastFlags: UInt8 = 0
    var lastTime: Nanoseconds = 0

    // Sequence space.
    var hasISN = false
    var isn: UInt32 = 0
    var sawSYN = false
    var sawSYNACK = false
    /// Window-scale shift from this endpoint's SYN or SYN+ACK; -1 when absent.
    var windowScale: Int8 = -1
    var hasNextSeq = false
    /// One past the highest sequence number sent (SYN and FIN count).
    var nextSeq: UInt32 = 0

    // What this endpoint last acknowledged, and the window it advertised with it.
    var hasAck = false
    var ackValue: UInt32 = 0
    var ackWindow: UInt16 = 0
    /// The window came on a SYN segment, where it is never scaled.
    var ackWindowFromSYN = false

    // Its FIN.
    /// First transmission of this endpoint's FIN.
    var fin: SegmentMark?
    /// Latest transmission of its FIN so far.
    var finLastTransmission: SegmentMark?
    /// F(X): seq + payload (+1 with SYN) of its first FIN.
    var finSeq: UInt32 = 0
    /// The ack carried by the first transmission of its FIN (valid when `finFirstHasAck`).
    var finFirstAck: UInt32 = 0
    var finFirstHasAck = false
    var finRetransmits: UInt32 = 0
    /// At the first transmission of its FIN: time since the flow's last payload-carrying
    /// segment (either direction), or since its first segment when none carried payload.
    var idleBeforeFin: Nanoseconds = 0

    // The peer's FIN as this endpoint handled it.
    /// This endpoint's first segment acknowledging the peer's FIN.
    var ackedPeerFin: SegmentMark?
    /// The transmission of the peer's FIN this endpoint received (a mark in the peer's order).
    var receivedPeerFin: SegmentMark?

    /// First accepted RST this endpoint sent.
    var resetAt: Nanoseconds?

    /// Own segments after `ackedPeerFin` and before its FIN or a reset (close-wait activity).
    var closeWaitActivity: Activity = .silent
    /// The peer's segments after this endpoint's FIN (fin-unacked activity).
    var peerActivityAfterFin: Activity = .silent

    /// This endpoint acknowledged the peer's FIN before (or with) its own FIN, or never sent one.
    var isPassiveCloser: Bool {
        guard let acked = ackedPeerFin else { return false }
        guard let fin else { return true }
        return acked.index <= fin.index
    }
}
