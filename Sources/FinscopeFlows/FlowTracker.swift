import FinscopeWire

/// Follows every connection in a stream of TCP segments. Knows nothing of libpcap: feed
/// it decoded segments with their capture times, then ask for the result.
///
/// Memory stays bounded: a flow whose close is complete leaves the table after lingering a
/// little (late ACKs and RSTs still find it), idle flows expire when an idle timeout is set,
/// and at `maxFlows` the oldest of a few sampled flows is evicted. A cursor sweeps a couple
/// of slots per segment, so this costs O(1) per packet with no periodic pauses.
///
/// Not copyable: it owns its flow store, and a copy would share the slots while forking
/// the index, after which both would report wrong flows.
public struct FlowTracker: ~Copyable {
    /// Every default in one place; the command line's options start from these.
    public enum Defaults {
        public static let closeWaitThreshold: Nanoseconds = 5_000_000_000
        /// About 350 MB of flow state at the cap (docs/hostile-input.md).
        public static let maxFlows = 1_000_000
        /// Live mode's idle timeout; offline, flows never expire for idleness.
        public static let liveIdleTimeout: Nanoseconds = 300_000_000_000
        /// Linux's TIME_WAIT: later than that, the kernel itself no longer knows the connection.
        public static let closedLinger: Nanoseconds = 60_000_000_000
    }

    public struct Configuration: Sendable {
        /// A CLOSE_WAIT (or unacknowledged FIN) lasting at least this long is a finding.
        public var closeWaitThreshold: Nanoseconds
        /// Flows with no segment for this long are reported and dropped; nil keeps them
        /// (offline default). Flows holding an endpoint in CLOSE_WAIT never expire this way:
        /// silence is what a leak looks like.
        public var idleTimeout: Nanoseconds?
        /// How long a completely closed flow stays in the table for late segments (a
        /// retransmitted FIN, an RST after the close).
        public var closedLinger: Nanoseconds
        /// The most flows tracked at once; beyond it the oldest sampled flow is evicted.
        public var maxFlows: Int
        /// Keep every finished flow's report (for `--json`/`--flows`), or only those with
        /// findings (counts are kept either way).
        public var retainAllFlows = true

        public init(closeWaitThreshold: Nanoseconds = Defaults.closeWaitThreshold, idleTimeout: Nanoseconds? = nil,
                    closedLinger: Nanoseconds = Defaults.closedLinger, maxFlows: Int = Defaults.maxFlows,
                    retainAllFlows: Bool = true) {
            self.closeWaitThreshold = closeWaitThreshold
            self.idleTimeout = idleTimeout
            self.closedLinger = closedLinger
            self.maxFlows = max(1, maxFlows)
            self.retainAllFlows = retainAllFlows
        }
    }

    public let configuration: Configuration
    private var table = FlowTable()
    /// The flow table's hash key (see `HashSeed`).
    private var seed: HashSeed
    /// Times the table was rebuilt under a new seed because a probe chain grew too long.
    public private(set) var reseeds = 0
    /// Application-hint strings not kept because the table was full.
    public var hintsDropped: Int { slots.hints.dropped }
    /// Bytes the application-hint table holds.
    public var hintMemoryBytes: Int { slots.hints.memoryBytes }
    /// Flow slots; evicted slots are reused through `freeSlots`. A free slot has `id == 0`
    /// (ids start at 1). Accessed in place: the ~250-byte flows are never copied out.
    private let slots = FlowStore()
    private var freeSlots: [Int32] = []
    private var activeFlows = 0
    private var nextID = 1
    private var sweepCursor = 0
    /// Reports of flows that left the table, and counts over every flow.
    private var finished: [FlowReport] = []
    private var finishedTally = FlowTally()
    /// Counts over the flows whose close kind is final: those that left the table, and those
    /// still in it that are completely closed (both FINs acknowledged, or an accepted RST:
    /// nothing but `resetAt` can change). Demoted flows are in `finishedTally` already.
    public var finishedFlows: FlowTally {
        var tally = finishedTally
        for slot in 0..<slots.count where slots[slot].id != 0 && slots[slot].isClosed && !slots.isDemoted(slot) {
            tally.add(slots.outcome(slot, end: slots[slot].pair.lastSeen, threshold: configuration.closeWaitThreshold))
        }
        return tally
    }
    /// Segments decoded, duplicates included.
    public private(set) var segments = 0
    public private(set) var duplicates = 0
    public private(set) var expiredIdle = 0
    public private(set) var evictedForCapacity = 0
    /// Called with each flow's report as the flow leaves the table (closed and lingered,
    /// replaced, idle, evicted, or `finishAll`): lets `--ndjson` stream flows as they finish.
    public var finishedHandler: ((FlowReport) -> Void)?

    public init(configuration: Configuration = Configuration(), seed: HashSeed = .random()) {
        self.configuration = configuration
        self.seed = seed
        sweepHorizon = min(configuration.closedLinger, configuration.idleTimeout ?? .max)
    }

    /// A flow idle for less than this is left alone by the sweep (closed flows linger, open
    /// ones wait for the idle timeout): one comparison decides most slots.
    private let sweepHorizon: Nanoseconds

    /// Flows in the table now.
    public var trackedFlows: Int { activeFlows }
    /// Close records held by tracked flows (tests: demoted flows hold none).
    var closeRecordsInUse: Int { slots.closeRecordsInUse }

    /// One decoded segment: one flow-table lookup, then fixed-size state updates. Returns
    /// where the segment landed (the second pass for ladders and exports uses it).
    @inline(__always)
    @discardableResult
    public mutating func process(_ segment: TCPSegment, at time: Nanoseconds,
                                 payload: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0))
        -> SegmentPlacement {
        segments += 1
        let key = FlowKey(segment)
        let hash = key.hash(seed)
        var slot: Int
        if let found = table.find(hash: hash, matches: { slots[$0].key == key }) {
            slot = found
            let flags = segment.flags
            if flags.hasSYN, !flags.hasACK, !flags.hasRST,
               !slots[slot].isRetransmittedSYN(segment) {
                // Port reuse: a new connection on the same 4-tuple ends the old one here.
                finish(slot: slot, end: FlowEnd(reason: .replaced, at: time))
                slot = startFlow(hash, segment, at: time)
            }
        } else {
            slot = startFlow(hash, segment, at: time)
        }
        var closed = false
        let placement = slots.process(segment, at: time, payload: payload, slot: slot, closed: &closed)
        if placement.duplicate { duplicates += 1 }
        if closed { demoteIfCounted(slot) }
        sweep(steps: 2, now: time)
        return placement
    }

    private mutating func startFlow(_ hash: UInt32, _ segment: TCPSegment, at time: Nanoseconds) -> Int {
        if activeFlows >= configuration.maxFlows { evictOldest(now: time) }
        let flow = FlowState(id: nextID, first: segment, at: time)
        nextID += 1
        let slot: Int
        if let free = freeSlots.popLast() {
            slot = Int(free)
            slots[slot] = flow
        } else {
            slot = slots.append(flow)
        }
        activeFlows += 1
        if !table.insert(hash: hash, slot: slot) { reseed() }
        return slot
    }

    /// A probe chain passed its bound: draw a new seed and rebuild the index, so traffic
    /// crafted against one seed (or plain bad luck) cannot keep chains long.
    private mutating func reseed() {
        reseeds += 1
        seed = .random()
        table.reset(capacity: activeFlows)
        for slot in 0..<slots.count where slots[slot].id != 0 {
            _ = table.insert(hash: slots[slot].key.hash(seed), slot: slot, bounded: false)
        }
    }

    /// What the tally counts of the flow in `slot`, and its report when one is kept or streamed
    /// (every flow, or one with a finding). A flow that is only counted gets no report.
    private func tallied(_ slot: Int, end: FlowEnd) -> (outcome: FlowOutcome, report: FlowReport?) {
        if configuration.retainAllFlows || finishedHandler != nil {
            let report = slots.report(slot, end: end, threshold: configuration.closeWaitThreshold)
            return (FlowOutcome(report), report)
        }
        let outcome = slots.outcome(slot, end: end.at, threshold: configuration.closeWaitThreshold)
        guard outcome.hasFindings else { return (outcome, nil) }
        return (outcome, slots.report(slot, end: end, threshold: configuration.closeWaitThreshold))
    }

    /// A flow that just closed completely, when only counts are kept (text mode): its outcome
    /// can no longer change (SPEC §2: after the close only `resetAt`, ignored resets and FIN
    /// retransmissions move, and the tally reads none of them), so it is counted now and its
    /// close record freed while it lingers. A flow with a finding keeps everything: its report
    /// is printed when it leaves. On a capture where most flows close near its end, this is
    /// what kept the peak up: 160 bytes a closed flow.
    @inline(never)  // cold: keeps `process` small enough that the key compare stays inlined
    private mutating func demoteIfCounted(_ slot: Int) {
        guard !configuration.retainAllFlows, finishedHandler == nil else { return }
        let outcome = slots.outcome(slot, end: slots[slot].pair.lastSeen, threshold: configuration.closeWaitThreshold)
        guard !outcome.hasFindings else { return }
        finishedTally.add(outcome)
        slots.demote(slot)
    }

    /// Reports the flow in `slot` and frees the slot (a demoted flow is counted already).
    private mutating func finish(slot: Int, end: FlowEnd) {
        guard slots[slot].id != 0 else { return }
        if !slots.isDemoted(slot) {
            let (outcome, report) = tallied(slot, end: end)
            finishedTally.add(outcome)
            if let report {
                finishedHandler?(report)
                if configuration.retainAllFlows || !report.findings.isEmpty { finished.append(report) }
            }
        }
        table.remove(hash: slots[slot].key.hash(seed), slot: slot)
        slots.releaseClose(slot)
        slots[slot].id = 0
        freeSlots.append(Int32(slot))
        activeFlows -= 1
    }

    /// Checks a few slots for flows that are done (closed and lingered) or idle too long.
    @inline(__always)
    private mutating func sweep(steps: Int, now: Nanoseconds) {
        guard slots.count > 0 else { return }
        for _ in 0..<steps {
            if sweepCursor >= slots.count { sweepCursor = 0 }
            let slot = sweepCursor
            sweepCursor += 1
            // Read the few fields needed in place: copying the whole FlowState out of its
            // slot twice per packet was a measurable share of the per-packet cost.
            guard slots[slot].id != 0 else { continue }
            let lastSeen = slots[slot].pair.lastSeen
            let idle = now - lastSeen
            if idle < sweepHorizon { continue }
            if idle >= configuration.closedLinger, slots[slot].isClosed {
                finish(slot: slot, end: FlowEnd(reason: .closed, at: lastSeen))
            } else if let timeout = configuration.idleTimeout, idle >= timeout, !slots.holdsCloseWait(slot) {
                expiredIdle += 1
                finish(slot: slot, end: FlowEnd(reason: .idle, at: now))
            }
        }
    }

    /// Runs the sweep over every slot (live mode calls this on its timer, when packets are few).
    public mutating func expire(now: Nanoseconds) {
        sweep(steps: slots.count, now: now)
    }

    /// Finishes every flow still tracked, as of `captureEnd` (each goes to `finishedHandler`).
    public mutating func finishAll(captureEnd: Nanoseconds) {
        let open = (0..<slots.count).compactMap { slot in
            slots[slot].id == 0 ? nil : (id: slots[slot].id, slot: slot)
        }
        for flow in open.sorted(by: { $0.id < $1.id }) {
            finish(slot: flow.slot, end: FlowEnd(reason: .captureEnd, at: captureEnd))
        }
    }

    /// At capacity: evict the least recently active of a few sampled flows (approximate LRU).
    /// A flow holding a CLOSE_WAIT is silent by nature, so it is the last choice: evicting
    /// it would end the very finding finscope exists for at the eviction time.
    private mutating func evictOldest(now: Nanoseconds) {
        var victim = -1
        var victimHoldsCloseWait = true
        var oldest = Nanoseconds.max
        var examined = 0
        var position = sweepCursor
        while examined < 8, slots.count > 0 {
            if position >= slots.count { position = 0 }
            if slots[position].id != 0 {
                examined += 1
                let holdsCloseWait = slots.holdsCloseWait(position)
                let lastSeen = slots[position].pair.lastSeen
                if (victimHoldsCloseWait && !holdsCloseWait)
                    || (holdsCloseWait == victimHoldsCloseWait && lastSeen < oldest) {
                    oldest = lastSeen
                    victim = position
                    victimHoldsCloseWait = holdsCloseWait
                }
            }
            position += 1
            if position == sweepCursor { break }
        }
        sweepCursor = position
        guard victim >= 0, slots[victim].id != 0 else { return }
        evictedForCapacity += 1
        finish(slot: victim, end: FlowEnd(reason: .evicted, at: now))
    }

    /// Every flow, finished or still tracked, as of `captureEnd`, in order of first appearance.
    public func result(captureEnd: Nanoseconds) -> (flows: [FlowReport], tally: FlowTally) {
        var tally = finishedTally
        var flows = finished
        for slot in 0..<slots.count where slots[slot].id != 0 && !slots.isDemoted(slot) {
            let (outcome, report) = tallied(slot, end: FlowEnd(reason: .captureEnd, at: captureEnd))
            tally.add(outcome)
            if let report, configuration.retainAllFlows || !report.findings.isEmpty { flows.append(report) }
        }
        flows.sort { $0.id < $1.id }
        return (flows, tally)
    }
}

// The host's view (SPEC §7) and the offline hints ask about flows that have no finding.
extension FlowTracker {
    /// The client and server of every flow in the table now: kernel sockets that one of
    /// these explains were not stuck before the capture started.
    public func trackedEndpoints() -> [(client: EndpointAddress, server: EndpointAddress)] {
        var out: [(client: EndpointAddress, server: EndpointAddress)] = []
        for slot in 0..<slots.count where slots[slot].id != 0 {
            out.append((slots[slot].client, slots[slot].server))
        }
        return out
    }

    /// How long each endpoint still in CLOSE_WAIT at `captureEnd` has been in it, for those
    /// below the threshold (not findings): "the capture may have stopped too soon".
    public func closeWaitBelowThreshold(captureEnd: Nanoseconds) -> [Nanoseconds] {
        var out: [Nanoseconds] = []
        for slot in 0..<slots.count where slots[slot].id != 0 && slots.holdsCloseWait(slot) {
            let report = slots.report(slot, end: FlowEnd(reason: .captureEnd, at: captureEnd), threshold: 0, detail: false)
            for finding in report.findings where finding.kind == .closeWait && finding.duration < configuration.closeWaitThreshold {
                out.append(finding.duration)
            }
        }
        return out
    }
}
