import Foundation

/// Scripts a TCP conversation between a client and a server, keeping sequence and
/// acknowledgment numbers, so that close-state tests read like textbook diagrams:
///
///     var c = Conversation(client: "10.0.0.1:40000", server: "10.0.0.2:80",
///                          start: 1_700_000_000, clientISN: 1000, serverISN: 5000)
///     c.handshake(at: 0.0)
///     c.data(.client, bytes: 100, at: 0.1)
///     c.ack(.server, at: 0.11)
///     c.fin(.client, at: 1.0)
///     c.ack(.server, at: 1.001)
///     let url = try c.writePcap(link: .ethernet, to: dir.url(for: "c.pcap"))
///
/// Bookkeeping: each side has a next sequence number (starting at its ISN; SYN and FIN
/// count one, payload its length) and a "received" number (the peer's ISN at first).
/// A segment advances the peer's "received" only when it is `delivered` (default true)
/// and in order; out-of-order delivered segments are held until the gap is filled, as a
/// receiver's reassembly queue would. `ack: .received` (the default) acknowledges exactly
/// what the sending side has received, so a FIN sent with `delivered: false` (lost after
/// the capture point) is never covered by the peer's later ACKs.
///
/// Times (`at:`) are seconds after `start`.
public struct Conversation: Sendable {
    public enum Side: Sendable, Hashable, CustomStringConvertible {
        case client, server
        public var peer: Side { self == .client ? .server : .client }
        public var description: String { self == .client ? "client" : "server" }
    }

    /// How a segment's sequence number is chosen.
    public enum SeqChoice: Sendable, Equatable {
        /// The side's next sequence number.
        case next
        /// Next plus a (possibly negative) offset, e.g. `.relative(-1)` for a keep-alive.
        case relative(Int64)
        case value(UInt32)
    }

    /// How a segment's acknowledgment number is chosen (the ACK flag is set by `flags`).
    public enum AckChoice: Sendable, Equatable {
        /// What the sending side has received so far.
        case received
        /// Received plus a (possibly negative) offset.
        case relative(Int64)
        case value(UInt32)
        /// Acknowledgment field zero.
        case none
    }

    /// One scripted segment.
    public struct Frame: Sendable, Equatable {
        public var time: CaptureTime
        public var side: Side
        public var sequence: UInt32
        public var acknowledgment: UInt32
        public var flags: TCPFlags
        public var window: UInt16
        public var options: [UInt8]
        public var payload: [UInt8]
        /// Whether the peer received it (affects only later `.received` acks).
        public var delivered: Bool

        public var payloadLength: Int { payload.count }
        /// Sequence space consumed: payload + SYN + FIN.
        public var sequenceLength: Int {
            payload.count + (flags.contains(.syn) ? 1 : 0) + (flags.contains(.fin) ? 1 : 0)
        }
        /// Seconds since the epoch.
        public var seconds: Double { time.doubleValue }

        public init(time: CaptureTime, side: Side, sequence: UInt32, acknowledgment: UInt32, flags: TCPFlags,
                    window: UInt16 = 65535, options: [UInt8] = [], payload: [UInt8] = [], delivered: Bool = true) {
            self.time = time
            self.side = side
            self.sequence = sequence
            self.acknowledgment = acknowledgment
            self.flags = flags
            self.window = window
            self.options = options
            self.payload = payload
            self.delivered = delivered
        }

        /// The window-scale shift in this frame's options when it is a SYN, else -1
        /// (what `FrameDecoder` reports).
        public var windowScale: Int8 {
            guard flags.contains(.syn) else { return -1 }
            var index = 0
            while index < options.count {
                let kind = options[index]
                if kind == 0 { return -1 }
                if kind == 1 { index += 1; continue }
                guard index + 1 < options.count else { return -1 }
                let length = Int(options[index + 1])
                guard length >= 2, index + length <= options.count else { return -1 }
                if kind == 3, length == 3 { return Int8(min(options[index + 2], 14)) }
                index += length
            }
            return -1
        }
    }

    /// A decoded-segment view of one frame, for feeding flow logic without a capture file.
    public struct TimedSegment: Sendable, Equatable {
        public var time: CaptureTime
        public var segment: TCPSegment
        public var seconds: Double { time.doubleValue }
    }

    struct SideState: Sendable {
        var isn: UInt32
        var next: UInt32
        var received: UInt32
        var window: UInt16
        /// Delivered segments beyond a gap: (seq, end).
        var outOfOrder: [(UInt32, UInt32)] = []
    }

    public let client: HostPort
    public let server: HostPort
    public let start: CaptureTime
    public private(set) var frames: [Frame] = []
    var clientState: SideState
    var serverState: SideState

    public init(client: HostPort, server: HostPort, start: Double = 1_700_000_000,
                clientISN: UInt32 = 1000, serverISN: UInt32 = 5000,
                clientWindow: UInt16 = 65535, serverWindow: UInt16 = 65535) {
        self.client = client
        self.server = server
        self.start = CaptureTime(start)
        clientState = SideState(isn: clientISN, next: clientISN, received: serverISN, window: clientWindow)
        serverState = SideState(isn: serverISN, next: serverISN, received: clientISN, window: serverWindow)
    }

    // MARK: State

    private func state(_ side: Side) -> SideState { side == .client ? clientState : serverState }

    private mutating func update(_ side: Side, _ change: (inout SideState) -> Void) {
        if side == .client { change(&clientState) } else { change(&serverState) }
    }

    /// The side's initial sequence number.
    public func isn(_ side: Side) -> UInt32 { state(side).isn }
    /// The sequence number the side will use next (`SeqChoice.next`).
    public func nextSequence(_ side: Side) -> UInt32 { state(side).next }
    /// What the side has received in order (what `AckChoice.received` acknowledges).
    public func received(_ side: Side) -> UInt32 { state(side).received }
    /// The address of one side.
    public func endpoint(_ side: Side) -> HostPort { side == .client ? client : server }
    /// `start + offset` in seconds since the epoch.
    public func time(_ offset: Double) -> Double { start.adding(offset).doubleValue }
    /// Sets the window a side advertises from now on.
    public mutating func setWindow(_ side: Side, _ window: UInt16) { update(side) { $0.window = window } }
    /// The last frame sent by `side`, if any.
    public func lastFrame(of side: Side) -> Frame? { frames.last { $0.side == side } }

    /// Serial-number comparison a < b (RFC 1982).
    static func before(_ a: UInt32, _ b: UInt32) -> Bool { Int32(bitPattern: a &- b) < 0 }

    // MARK: The general form

    /// Records one segment from `side`.
    /// - Parameters:
    ///   - payload: payload length (filler bytes).
    ///   - window: nil → the side's current window.
    ///   - delivered: false models a segment lost after the capture point.
    public mutating func segment(_ side: Side, flags: TCPFlags, seq: SeqChoice = .next, ack: AckChoice = .received,
                                 payload: Int = 0, window: UInt16? = nil, options: [UInt8] = [],
                                 at offset: Double, delivered: Bool = true) {
        segment(side, flags: flags, seq: seq, ack: ack, payloadBytes: FrameBuilder.filler(payload), window: window,
                options: options, at: offset, delivered: delivered)
    }

    /// Same, with explicit payload bytes.
    public mutating func segment(_ side: Side, flags: TCPFlags, seq: SeqChoice = .next, ack: AckChoice = .received,
                                 payloadBytes: [UInt8], window: UInt16? = nil, options: [UInt8] = [],
                                 at offset: Double, delivered: Bool = true) {
        let sender = state(side)
        let sequence: UInt32
        switch seq {
        case .next: sequence = sender.next
        case .relative(let delta): sequence = sender.next &+ UInt32(truncatingIfNeeded: delta)
        case .value(let value): sequence = value
        }
        let acknowledgment: UInt32
        switch ack {
        case .received: acknowledgment = sender.received
        case .relative(let delta): acknowledgment = sender.received &+ UInt32(truncatingIfNeeded: delta)
        case .value(let value): acknowledgment = value
        case .none: acknowledgment = 0
        }
        let frame = Frame(time: start.adding(offset), side: side, sequence: sequence, acknowledgment: acknowledgment,
                          flags: flags, window: window ?? sender.window, options: options, payload: payloadBytes,
                          delivered: delivered)
        record(frame)
    }

    /// Appends a frame and updates the bookkeeping as `segment` does.
    public mutating func record(_ frame: Frame) {
        frames.append(frame)
        let length = UInt32(frame.sequenceLength)
        guard length > 0 else { return }
        let end = frame.sequence &+ length
        update(frame.side) { state in
            if Self.before(state.next, end) { state.next = end }
        }
        guard frame.delivered, !frame.flags.contains(.rst) else { return }
        update(frame.side.peer) { state in
            if frame.flags.contains(.syn) {
                // A SYN sets where the receiver's sequence space starts (port reuse included).
                state.received = end
                state.outOfOrder = []
                return
            }
            state.outOfOrder.append((frame.sequence, end))
            var progressed = true
            while progressed {
                progressed = false
                for (index, range) in state.outOfOrder.enumerated() where !Self.before(state.received, range.0) {
                    if Self.before(state.received, range.1) { state.received = range.1 }
                    state.outOfOrder.remove(at: index)
                    progressed = true
                    break
                }
            }
        }
    }

    // MARK: Shorthands

    /// S, S., . at `at`, `at + spacing`, `at + 2·spacing`. Window-scale options are added
    /// to the SYN / SYN+ACK when given (with MSS when `mss` is non-nil).
    public mutating func handshake(at offset: Double, clientWindowScale: UInt8? = nil, serverWindowScale: UInt8? = nil,
                                   mss: UInt16? = nil, spacing: Double = 0.0001) {
        syn(at: offset, windowScale: clientWindowScale, mss: mss)
        synAck(at: offset + spacing, windowScale: serverWindowScale, mss: mss)
        ack(.client, at: offset + 2 * spacing)
    }

    /// The client's SYN (no ACK flag, ack field zero).
    public mutating func syn(_ side: Side = .client, at offset: Double, windowScale: UInt8? = nil, mss: UInt16? = nil,
                             seq: SeqChoice = .next, delivered: Bool = true) {
        segment(side, flags: .syn, seq: seq, ack: .none, options: Self.synOptions(windowScale: windowScale, mss: mss),
                at: offset, delivered: delivered)
    }

    /// The server's SYN+ACK.
    public mutating func synAck(_ side: Side = .server, at offset: Double, windowScale: UInt8? = nil, mss: UInt16? = nil,
                                seq: SeqChoice = .next, delivered: Bool = true) {
        segment(side, flags: [.syn, .ack], seq: seq, options: Self.synOptions(windowScale: windowScale, mss: mss),
                at: offset, delivered: delivered)
    }

    static func synOptions(windowScale: UInt8?, mss: UInt16?) -> [UInt8] {
        var options: [UInt8] = []
        if let mss { options += TCPOption.mss(mss) }
        if let windowScale { options += TCPOption.nop + TCPOption.windowScale(windowScale) }
        return options
    }

    /// P. (or . with `push: false`) carrying `bytes` filler bytes.
    public mutating func data(_ side: Side, bytes: Int, at offset: Double, push: Bool = true, ack: AckChoice = .received,
                              delivered: Bool = true) {
        segment(side, flags: push ? [.psh, .ack] : .ack, ack: ack, payload: bytes, at: offset, delivered: delivered)
    }

    /// P. carrying the given bytes.
    public mutating func data(_ side: Side, payload: [UInt8], at offset: Double, delivered: Bool = true) {
        segment(side, flags: [.psh, .ack], payloadBytes: payload, at: offset, delivered: delivered)
    }

    /// A pure ACK of what `side` has received.
    public mutating func ack(_ side: Side, at offset: Double, ack: AckChoice = .received, window: UInt16? = nil,
                             delivered: Bool = true) {
        segment(side, flags: .ack, ack: ack, window: window, at: offset, delivered: delivered)
    }

    /// F. (FP. with payload), acknowledging what `side` has received.
    public mutating func fin(_ side: Side, at offset: Double, payload: Int = 0, ack: AckChoice = .received,
                             delivered: Bool = true) {
        segment(side, flags: payload > 0 ? [.fin, .psh, .ack] : [.fin, .ack], ack: ack, payload: payload, at: offset,
                delivered: delivered)
    }

    /// R (seq = next, no ACK) or R. with `withAck: true` (ack = received).
    public mutating func rst(_ side: Side, at offset: Double, seq: SeqChoice = .next, withAck: Bool = false, delivered: Bool = true) {
        segment(side, flags: withAck ? [.rst, .ack] : .rst, seq: seq, ack: withAck ? .received : .none,
                at: offset, delivered: delivered)
    }

    /// A keep-alive probe: seq = next − 1, with zero or one (garbage) byte.
    public mutating func keepAlive(_ side: Side, at offset: Double, withByte: Bool = false) {
        segment(side, flags: .ack, seq: .relative(-1), payloadBytes: withByte ? [0] : [], at: offset, delivered: false)
    }

    /// Retransmits `side`'s latest segment that consumed sequence space (same seq, flags,
    /// payload). Its ack is the original one unless `refreshAck` (then what `side` has received now).
    public mutating func retransmitLast(_ side: Side, at offset: Double, refreshAck: Bool = false, delivered: Bool = true) {
        guard var frame = frames.last(where: { $0.side == side && $0.sequenceLength > 0 }) else {
            preconditionFailure("\(side) has sent nothing to retransmit")
        }
        frame.time = start.adding(offset)
        frame.delivered = delivered
        if refreshAck, frame.flags.contains(.ack) { frame.acknowledgment = state(side).received }
        record(frame)
    }

    /// Repeats the last frame `delay` seconds later, byte for byte (a capture duplicate
    /// when `delay` ≤ 1 ms). Bookkeeping is unchanged.
    public mutating func duplicateLast(after delay: Double) {
        guard var frame = frames.last else { preconditionFailure("no frame to duplicate") }
        frame.time = frame.time.adding(delay)
        frames.append(frame)
    }

    // MARK: Output

    /// The frame's bytes on `link`.
    public func bytes(of frame: Frame, link: Link) -> [UInt8] {
        let from = endpoint(frame.side)
        let to = endpoint(frame.side.peer)
        let tcp = TCPHeader(sourcePort: from.port, destinationPort: to.port, sequence: frame.sequence,
                            acknowledgment: frame.acknowledgment, flags: frame.flags, window: frame.window,
                            options: frame.options, payload: frame.payload)
        let packet = FrameBuilder.ipTCP(from: from.address, to: to.address, tcp: tcp)
        return link.frame(ipPacket: packet, isIPv6: from.address.isIPv6, outgoing: frame.side == .client)
    }

    /// The frames as decoded segments (what `FrameDecoder` yields for them), in frame order.
    public func segments() -> [TimedSegment] {
        frames.map { frame in
            let from = endpoint(frame.side)
            let to = endpoint(frame.side.peer)
            return TimedSegment(time: frame.time, segment: TCPSegment(
                source: from.address, destination: to.address, sourcePort: from.port, destinationPort: to.port,
                sequence: frame.sequence, acknowledgment: frame.acknowledgment, flags: frame.flags, window: frame.window,
                payloadLength: UInt32(frame.payloadLength), windowScale: frame.windowScale))
        }
    }

    /// Records in frame order. `captureLength` truncates each record like a snaplen.
    public func records(link: Link, captureLength: Int? = nil) -> [PcapWriter.Record] {
        frames.map { frame in
            let bytes = bytes(of: frame, link: link)
            return PcapWriter.Record(time: frame.time, bytes: captureLength.map { Array(bytes.prefix($0)) } ?? bytes,
                                     originalLength: bytes.count)
        }
    }

    /// A pcap writer holding this conversation (add more records before writing if needed).
    public func pcapWriter(link: Link = .ethernet, precision: PcapPrecision = .microseconds, byteOrder: ByteOrder = .little,
                           captureLength: Int? = nil) -> PcapWriter {
        Self.pcapWriter([self], link: link, precision: precision, byteOrder: byteOrder, captureLength: captureLength)
    }

    public func pcapData(link: Link = .ethernet, precision: PcapPrecision = .microseconds, byteOrder: ByteOrder = .little,
                         captureLength: Int? = nil) -> Data {
        pcapWriter(link: link, precision: precision, byteOrder: byteOrder, captureLength: captureLength).data()
    }

    @discardableResult
    public func writePcap(link: Link = .ethernet, to url: URL, precision: PcapPrecision = .microseconds,
                          byteOrder: ByteOrder = .little, captureLength: Int? = nil) throws -> URL {
        try pcapData(link: link, precision: precision, byteOrder: byteOrder, captureLength: captureLength).write(to: url)
        return url
    }

    /// A pcapng with one interface of `link`'s type (`tsresol` 9 → nanoseconds).
    @discardableResult
    public func writePcapNG(link: Link = .ethernet, to url: URL, tsresol: UInt8? = nil) throws -> URL {
        var writer = PcapNGWriter()
        let interface = writer.addInterface(linkType: UInt16(link.linkType), tsresol: tsresol)
        for record in records(link: link) {
            writer.append(record.bytes, interface: interface, time: record.time, originalLength: record.originalLength)
        }
        try writer.write(to: url)
        return url
    }

    /// Several conversations merged by time (stable: equal times keep their order).
    public static func pcapWriter(_ conversations: [Conversation], link: Link = .ethernet,
                                  precision: PcapPrecision = .microseconds, byteOrder: ByteOrder = .little,
                                  captureLength: Int? = nil) -> PcapWriter {
        var writer = PcapWriter(linkType: link.linkType, precision: precision, byteOrder: byteOrder)
        let all = conversations.enumerated().flatMap { item in
            item.element.records(link: link, captureLength: captureLength).enumerated().map { (item.offset, $0.offset, $0.element) }
        }
        let sorted = all.sorted { ($0.2.time, $0.0, $0.1) < ($1.2.time, $1.0, $1.1) }
        writer.records = sorted.map(\.2)
        return writer
    }

    @discardableResult
    public static func writePcap(_ conversations: [Conversation], link: Link = .ethernet, to url: URL,
                                 precision: PcapPrecision = .microseconds) throws -> URL {
        try pcapWriter(conversations, link: link, precision: precision).write(to: url)
        return url
    }
}

extension PcapWriter {
    /// Sorts records by time, keeping the order of equal times.
    public mutating func sortByTime() {
        records = records.enumerated().sorted { ($0.element.time, $0.offset) < ($1.element.time, $1.offset) }.map(\.element)
    }
}
