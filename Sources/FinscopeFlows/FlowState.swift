import FinscopeWire

/// Flag tests on the raw byte: `TCPFlags.syn` and its siblings are static stored properties
/// of another module, read through lazy-initialisation accessors at every use.
extension TCPFlags {
    @inline(__always) var hasFIN: Bool { rawValue & 0x01 != 0 }
    @inline(__always) var hasSYN: Bool { rawValue & 0x02 != 0 }
    @inline(__always) var hasRST: Bool { rawValue & 0x04 != 0 }
    @inline(__always) var hasACK: Bool { rawValue & 0x10 != 0 }
}

/// One connection: two endpoint state machines and the facts that belong to the pair.
/// Zeek's split: each side keeps its own facts, the flow's verdict is derived from both.
struct FlowState {
    /// The 4-tuple, stored once (the flow table keeps only a hash and this flow's slot).
    var key: FlowKey
    var firstSeen: Nanoseconds
    var clientSide = EndpointState()
    var serverSide = EndpointState()
    var pair: PairState
    var app = AppFacts()
    /// 0 marks a free slot in the tracker (ids start at 1).
    var id: Int
    /// This flow's close facts in the store's `CloseRecord`s; 0 until its first FIN or RST.
    var closeRecord: UInt32 = 0
    var roles: RoleOrigin
    /// The client is the key's lower endpoint.
    private var clientIsLow: Bool

    /// A flow starts at its first segment; the handshake names the roles when it shows.
    init(id: Int, first segment: TCPSegment, at time: Nanoseconds) {
        self.id = id
        key = FlowKey(segment)
        let sourceIsLow = key.lowPort == segment.sourcePort && key.lowLow == segment.source.low
            && key.lowHigh == segment.source.high
        firstSeen = time
        pair = PairState(lastSeen: time, established: true, lastPayloadAt: time)
        let flags = segment.flags
        let sourceIsClient: Bool
        if flags.hasSYN && !flags.hasRST {
            roles = .handshake
            pair.established = false
            sourceIsClient = !flags.hasACK
        } else {
            // Mid-connection: the lower port serves; equal ports, the first destination.
            roles = .inferred
            sourceIsClient = segment.sourcePort >= segment.destinationPort
        }
        clientIsLow = sourceIsClient == sourceIsLow
    }

    /// A flow whose own source and destination are the same endpoint (a self-connection)
    /// has both ends in `low`; the tie is resolved by `clientIsLow` alone.
    var client: EndpointAddress { clientIsLow ? key.lowEndpoint : key.highEndpoint }
    var server: EndpointAddress { clientIsLow ? key.highEndpoint : key.lowEndpoint }

    /// Both FINs acknowledged, or an accepted RST: nothing more can change but `resetAt`.
    @inline(__always) var isClosed: Bool {
        pair.hasReset
            || (clientSide.hasAckedPeerFin && serverSide.hasAckedPeerFin && clientSide.hasFin && serverSide.hasFin)
    }

    /// An endpoint acknowledged its peer's FIN and has not closed: a possible leak. `close`:
    /// this flow's close facts (a fresh record when it has none).
    @inline(__always) func holdsCloseWait(_ close: CloseRecord) -> Bool {
        !pair.hasReset
            && ((close.client.isPassiveCloser && !clientSide.hasFin)
                || (close.server.isPassiveCloser && !serverSide.hasFin))
    }

    @inline(__always)
    func role(ofSource segment: TCPSegment) -> Role {
        let sourceIsLow = segment.sourcePort == key.lowPort && segment.source.low == key.lowLow
            && segment.source.high == key.lowHigh
        return sourceIsLow == clientIsLow ? .client : .server
    }

    /// A SYN without ACK on this 4-tuple: a retransmission of the client's SYN, or a new
    /// connection (port reuse) when its ISN differs or the flow began mid-connection.
    func isRetransmittedSYN(_ segment: TCPSegment) -> Bool {
        roles == .handshake && role(ofSource: segment) == .client
            && clientSide.hasISN && segment.sequence == clientSide.isn
    }

    /// Feeds one segment; says where it landed (sender, its place in the sender's order,
    /// whether it was a capture duplicate). `close`: this flow's close facts, the client's
    /// then the server's (the store allocates them before a FIN or RST segment; until then
    /// a scratch pair that nothing reads).
    @inline(__always)
    mutating func process(_ segment: TCPSegment, at time: Nanoseconds, payload: UnsafeRawBufferPointer,
                          close: UnsafeMutablePointer<CloseSide>, hints: inout AppHintTable) -> SegmentPlacement {
        let sender = role(ofSource: segment)
        let fresh: Bool
        let index: UInt32
        let clientClose = close, serverClose = close + 1
        if sender == .client {
            fresh = Self.step(segment, at: time, sender: &clientSide, receiver: &serverSide,
                              senderClose: clientClose, receiverClose: serverClose, senderRole: .client, flow: &pair)
            index = clientSide.sent &- 1
        } else {
            fresh = Self.step(segment, at: time, sender: &serverSide, receiver: &clientSide,
                              senderClose: serverClose, receiverClose: clientClose, senderRole: .server, flow: &pair)
            index = serverSide.sent &- 1
        }
        if fresh, segment.payloadLength > 0, !pair.hasReset {
            app.note(payload, payloadLength: Int(segment.payloadLength), sender: sender, table: &hints)
        }
        return SegmentPlacement(flowID: id, sender: sender, index: index, duplicate: !fresh)
    }

    /// The pair-level facts, passed by reference next to the two endpoints.
    struct PairState {
        var lastSeen: Nanoseconds
        /// The flow's latest payload-carrying segment (its first segment until one carries payload).
        var lastPayloadAt: Nanoseconds = 0
        private var resetStorage: Nanoseconds = .min
        var ignoredResets: UInt32 = 0
        /// The first accepted RST's place in its sender's (`resetBy`'s) order.
        var resetIndex: UInt32 = 0
        /// The client acknowledged the server's SYN, or the flow was first seen mid-connection.
        var established: Bool
        var resetBy: Role?

        init(lastSeen: Nanoseconds, established: Bool, lastPayloadAt: Nanoseconds) {
            self.lastSeen = lastSeen
            self.established = established
            self.lastPayloadAt = lastPayloadAt
        }

        /// First accepted RST; after it nothing changes but the endpoints' `resetAt`.
        var resetTime: Nanoseconds? {
            get { resetStorage == .min ? nil : resetStorage }
            set { resetStorage = newValue ?? .min }
        }
        @inline(__always) var hasReset: Bool { resetStorage != .min }
        @inline(__always) mutating func setReset(at time: Nanoseconds) { resetStorage = time }
    }

    /// One segment from `sender` to `receiver` (SPEC §1, §2, §5).
    @inline(__always)
    static func step(_ segment: TCPSegment, at time: Nanoseconds,
                     sender: inout EndpointState, receiver: inout EndpointState,
                     senderClose: UnsafeMutablePointer<CloseSide>, receiverClose: UnsafeMutablePointer<CloseSide>,
                     senderRole: Role, flow: inout PairState) -> Bool {
        let flags = segment.flags
        let seq = segment.sequence
        let ack = segment.acknowledgment
        let length = segment.payloadLength

        if sender.hasLast, CaptureDuplicate.repeats(segment, at: time, seq: sender.lastSeq, ack: sender.lastAck,
                                                    flags: sender.lastFlags, length: sender.lastLength,
                                                    window: sender.lastWindow, previousTime: sender.lastTime) {
            sender.lastTime = time
            return false
        }
        sender.hasLast = true
        sender.lastSeq = seq
        sender.lastAck = ack
        sender.lastFlags = flags.rawValue
        sender.lastLength = length
        sender.lastWindow = segment.window
        sender.lastTime = time

        if time > flow.lastSeen { flow.lastSeen = time }
        let mark = SegmentMark(index: sender.sent, time: time)
        sender.sent &+= 1

        // An RST is handled before anything else, as RFC 9293 §3.10.7 checks the RST bit
        // before the SYN bit (and Linux's tcp_validate_incoming does likewise): a segment
        // with SYN and RST is an RST, never a new connection or an ISN.
        if flags.hasRST {
            // RSTs acknowledge nothing; an ignored one is discarded whole.
            let accepted = acceptsReset(segment, sender: sender, receiver: receiver, senderRole: senderRole, flow: flow)
            if flow.hasReset {
                // After the first accepted RST nothing changes but `resetAt` (SPEC §2): a later
                // RST is neither a new reset nor an ignored one.
                if accepted, !senderClose.pointee.hasResetAt { senderClose.pointee.setResetAt(time) }
            } else if accepted {
                senderClose.pointee.setResetAt(time)
                flow.setReset(at: time)
                flow.resetBy = senderRole
                flow.resetIndex = mark.index
            } else {
                flow.ignoredResets &+= 1
            }
            return true
        }
        if flow.hasReset { return true }

        if flags.hasSYN {
            // A second SYN+ACK with another ISN (a server that answered a retransmitted SYN
            // anew): the client may acknowledge either, so the earlier one is kept too.
            if flags.hasACK, sender.sawSYNACK, sender.isn != seq { sender.setAlternateISN(sender.isn) }
            sender.hasISN = true
            sender.isn = seq
            sender.windowScale = segment.windowScale
            if flags.hasACK {
                sender.sawSYNACK = true
                if !receiver.hasISN {
                    receiver.hasISN = true
                    receiver.isn = ack &- 1
                }
            } else {
                sender.sawSYN = true
            }
        }

        // Activity is judged against what the sender had sent before this segment: a
        // keep-alive probe sits one below the next sequence number.
        let activity: Activity =
            length == 0 || (length == 1 && sender.hasNextSeq && seq &+ 1 == sender.nextSeq) ? .ackOnly : .data
        if sender.hasAckedPeerFin, !sender.hasFin, !flags.hasFIN, senderClose.pointee.ackedPeerFinIndex < mark.index {
            sender.closeWaitActivity = max(sender.closeWaitActivity, activity)
        }
        if receiver.hasFin {
            receiver.peerActivityAfterFin = max(receiver.peerActivityAfterFin, activity)
        }

        if flags.hasACK {
            sender.hasAck = true
            sender.ackValue = ack
            if !sender.hasHighestAck || seqAfter(ack, sender.highestAck) {
                sender.hasHighestAck = true
                sender.highestAck = ack
                sender.highestAckIndex = mark.index
                sender.highestAckTime = time
            }
            sender.ackWindow = segment.window
            sender.ackWindowFromSYN = flags.hasSYN
            if !flow.established, senderRole == .client {
                if receiver.sawSYNACK {
                    // The ACK of either SYN+ACK establishes the connection (SPEC §2).
                    if seqAtOrAfter(ack, receiver.isn &+ 1)
                        || (receiver.hasAlternateISN && ack == receiver.alternateISNStorage &+ 1) {
                        flow.established = true
                    }
                } else if sender.sawSYN, !flags.hasSYN {
                    flow.established = true
                }
            }
            if receiver.hasFin, !sender.hasAckedPeerFin, seqAtOrAfter(ack, receiverClose.pointee.finSeq &+ 1) {
                sender.hasAckedPeerFin = true
                senderClose.pointee.setAckedPeerFin(mark)
                senderClose.pointee.setReceivedPeerFin(index: receiverClose.pointee.finLastRawIndex,
                                                       time: receiverClose.pointee.finLastTransmissionTime)
            }
        }

        if flags.hasFIN {
            if !sender.hasFin {
                sender.hasFin = true
                senderClose.pointee.setFin(mark)
                senderClose.pointee.idleBeforeFin = time - flow.lastPayloadAt
                senderClose.pointee.finSeq = seq &+ length &+ (flags.hasSYN ? 1 : 0)
                senderClose.pointee.finFirstAck = ack
                sender.finFirstHasAck = flags.hasACK
                // Capture reordering: the peer's acknowledgement may have been captured first.
                // Its first segment acknowledging the FIN (in its own sending order, SPEC §1)
                // is the first that carried an ack this high.
                if !receiver.hasAckedPeerFin, receiver.hasHighestAck,
                   seqAtOrAfter(receiver.highestAck, senderClose.pointee.finSeq &+ 1) {
                    receiver.hasAckedPeerFin = true
                    receiverClose.pointee.setAckedPeerFin(SegmentMark(index: receiver.highestAckIndex,
                                                                      time: receiver.highestAckTime))
                    receiverClose.pointee.setReceivedPeerFin(index: mark.index, time: time)
                }
            } else {
                senderClose.pointee.finRetransmits &+= 1
            }
            senderClose.pointee.setFinLastTransmission(index: mark.index, time: time)
        }

        if length > 0 {
            flow.lastPayloadAt = time
            // New bytes only: the part of the payload beyond what was already sent.
            let dataStart = seq &+ (flags.hasSYN ? 1 : 0)
            let fresh = sender.hasNextSeq ? min(Int64(length), max(0, Int64(seqDistance(sender.nextSeq, dataStart &+ length))))
                : Int64(length)
            sender.payloadBytes &+= UInt64(fresh)
        }
        let end = seq &+ length &+ (flags.hasSYN ? 1 : 0) &+ (flags.hasFIN ? 1 : 0)
        if !sender.hasNextSeq || seqAfter(end, sender.nextSeq) {
            sender.hasNextSeq = true
            sender.nextSeq = end
        }
        return true
    }

    /// RST acceptance (SPEC §2): inside the receiver's window when that window is known;
    /// otherwise accepted, except that a client in SYN_SENT takes only an RST whose ACK
    /// covers its SYN.
    static func acceptsReset(_ segment: TCPSegment, sender: EndpointState, receiver: EndpointState,
                             senderRole: Role, flow: PairState) -> Bool {
        let client = senderRole == .client ? sender : receiver
        let server = senderRole == .client ? receiver : sender
        let scalingKnown = (client.sawSYN && server.sawSYNACK)
            || (client.sawSYN && client.windowScale < 0)
            || (server.sawSYNACK && server.windowScale < 0)
        if receiver.hasAck && scalingKnown {
            let scalingInUse = client.sawSYN && server.sawSYNACK && client.windowScale >= 0 && server.windowScale >= 0
            let shift = scalingInUse && !receiver.ackWindowFromSYN ? Int64(receiver.windowScale) : 0
            let window = Int64(receiver.ackWindow) << shift
            return Int64(seqDistance(receiver.ackValue, segment.sequence)) <= window
        }
        let receiverInSynSent = senderRole == .server && !flow.established && client.sawSYN && !client.hasAck
        if receiverInSynSent {
            return segment.flags.hasACK && seqAfter(segment.acknowledgment, client.isn)
                && seqAtOrAfter(client.nextSeq, segment.acknowledgment)
        }
        return true
    }
}
