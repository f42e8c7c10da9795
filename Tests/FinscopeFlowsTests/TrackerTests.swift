import Foundation
import Testing
import FinscopeWire
@testable import FinscopeFlows
import FinscopeTestSupport

// The flow rules at their own layer: decoded `TCPSegment`s go straight into `FlowTracker`
// and the typed report (`TCPState`, `CloseKind`, `Role`) is checked. No capture file, no
// JSON. Expected paths and kinds are SPEC §2/§3 applied by hand to the scripted segments.
//
// `FlowTracker` is `~Copyable` (it owns its flow store; a copy would share the slots but
// fork the index). So `let copy = tracker` followed by a use of `tracker` does not compile
// ("'tracker' used after consume"), and these helpers take the tracker `inout` or build
// it locally. SwiftPM cannot run a compile-fail test, so this note stands in for one.

private let est = TCPState.established, fw1 = TCPState.finWait1, fw2 = TCPState.finWait2
private let closing = TCPState.closing, tw = TCPState.timeWait, cw = TCPState.closeWait
private let la = TCPState.lastAck, closed = TCPState.closed

/// Seconds since `epoch` as nanoseconds since the Unix epoch.
private func ns(_ offset: Double) -> Nanoseconds { CaptureTime(epoch).adding(offset).totalNanoseconds }

/// Feeds every segment of `c`; the flows as of its last segment.
private func track(_ c: Conversation, seed: HashSeed = .random()) -> [FlowReport] {
    var tracker = FlowTracker(seed: seed)
    feed(c, into: &tracker)
    let end = c.frames.last.map { $0.time.totalNanoseconds } ?? 0
    return tracker.result(captureEnd: end).flows
}

private func feed(_ c: Conversation, into tracker: inout FlowTracker) {
    for timed in c.segments() { tracker.process(timed.segment, at: timed.time.totalNanoseconds) }
}

private func only(_ flows: [FlowReport], sourceLocation: SourceLocation = #_sourceLocation) throws -> FlowReport {
    #expect(flows.count == 1, "flows: \(flows.count)", sourceLocation: sourceLocation)
    return try #require(flows.first, sourceLocation: sourceLocation)
}

@Suite("FlowTracker, typed")
struct TrackerCloseKindTests {
    @Test("client-first: FIN, ACK, FIN, ACK")
    func clientFirst() throws {
        let flow = try only(track(clientFirstConversation()))
        #expect(flow.close == .clientFirst)
        #expect(flow.roles == .handshake)
        #expect(!flow.threeWay)
        #expect(flow.resetBy == nil)
        #expect(flow.clientEndpoint.path == [est, fw1, fw2, tw])
        #expect(flow.serverEndpoint.path == [est, cw, la, closed])
        #expect(flow.clientEndpoint.finAt == ns(1.0))
        #expect(flow.clientEndpoint.finAckedAt == ns(1.001))
        #expect(flow.serverEndpoint.finAt == ns(1.3))
        #expect(flow.serverEndpoint.finAckedAt == ns(1.301))
        // 11 segments: 7 of the exchange, 4 of the close.
        #expect(flow.segments == 11)
        #expect(flow.end.reason == .captureEnd)
    }

    @Test("server-first: the client's FIN acknowledges the server's")
    func serverFirst() throws {
        var c = established()
        c.fin(.server, at: 1.0)
        c.ack(.client, at: 1.001)
        c.fin(.client, at: 1.3)
        c.ack(.server, at: 1.301)
        let flow = try only(track(c))
        #expect(flow.close == .serverFirst)
        #expect(!flow.threeWay)
        #expect(flow.serverEndpoint.path == [est, fw1, fw2, tw])
        #expect(flow.clientEndpoint.path == [est, cw, la, closed])
    }

    @Test("three-way (F, F., .): the first closer goes FIN_WAIT_1 → TIME_WAIT")
    func threeWay() throws {
        var c = established()
        c.fin(.client, at: 1.0)
        c.fin(.server, at: 1.001)  // carries the first ack of the client's FIN
        c.ack(.client, at: 1.002)
        let flow = try only(track(c))
        #expect(flow.close == .clientFirst)
        #expect(flow.threeWay)
        #expect(flow.clientEndpoint.path == [est, fw1, tw])
        #expect(flow.serverEndpoint.path == [est, cw, la, closed])
        // The server passes CLOSE_WAIT and LAST_ACK at the same instant, at its FIN.
        let server = flow.transitions.filter { $0.endpoint == .server }
        #expect(server.map(\.state) == [cw, la, closed])
        #expect(server.map(\.time) == [ns(1.001), ns(1.001), ns(1.002)])
    }

    @Test("simultaneous: neither FIN acknowledges the other, both pass CLOSING")
    func simultaneous() throws {
        var c = established()
        c.fin(.server, at: 1.0)
        c.segment(.client, flags: [.fin, .ack], ack: .relative(-1), at: 1.0005)
        c.ack(.client, at: 1.001)
        c.ack(.server, at: 1.0012)
        let flow = try only(track(c))
        #expect(flow.close == .simultaneous)
        #expect(!flow.threeWay)
        #expect(flow.clientEndpoint.path == [est, fw1, closing, tw])
        #expect(flow.serverEndpoint.path == [est, fw1, closing, tw])
    }

    @Test("crossed: a lost FIN retransmitted after its sender acked the peer's FIN")
    func crossed() throws {
        var c = established()
        c.fin(.client, at: 1.0, delivered: false)
        c.fin(.server, at: 1.01)
        c.ack(.client, at: 1.011)
        c.retransmitLast(.client, at: 1.2, refreshAck: true)
        c.ack(.server, at: 1.201)
        let flow = try only(track(c))
        #expect(flow.close == .crossed)
        #expect(flow.clientEndpoint.path == [est, fw1, closing, tw])
        #expect(flow.serverEndpoint.path == [est, fw1, fw2, tw])
        #expect(flow.clientEndpoint.finRetransmits == 1)
    }

    @Test("reset: an accepted RST before both FINs; CLOSED on both paths")
    func reset() throws {
        var c = established()
        c.rst(.client, at: 1.0)
        let flow = try only(track(c))
        #expect(flow.close == .reset)
        #expect(flow.resetBy == .client)
        #expect(flow.clientEndpoint.resetAt == ns(1.0))
        #expect(flow.serverEndpoint.resetAt == nil)
        #expect(flow.clientEndpoint.path == [est, closed])
        #expect(flow.serverEndpoint.path == [est, closed])
        #expect(flow.ignoredResets == 0)
    }

    @Test("half-closed: one FIN, acknowledged; the client sits in CLOSE_WAIT")
    func halfClosed() throws {
        var c = established()
        c.fin(.server, at: 1.0)
        c.ack(.client, at: 1.001)
        let flow = try only(track(c))
        #expect(flow.close == .halfClosed)
        #expect(flow.clientEndpoint.path == [est, cw])
        #expect(flow.serverEndpoint.path == [est, fw1, fw2])
        #expect(flow.clientEndpoint.state == cw)
    }

    @Test("open: no FIN, no RST")
    func open() throws {
        let flow = try only(track(established()))
        #expect(flow.close == .open)
        #expect(flow.clientEndpoint.path == [est])
        #expect(flow.serverEndpoint.path == [est])
        #expect(flow.transitions.isEmpty)
    }

    @Test("never established: SYN only, then the server's RST+ACK of it")
    func neverEstablished() throws {
        var c = conversation()
        c.syn(at: 0)
        #expect(try only(track(c)).clientEndpoint.path == [.synSent])
        c.segment(.server, flags: [.rst, .ack], seq: .value(0), ack: .received, at: 0.001)
        let flow = try only(track(c))
        #expect(flow.close == .reset)
        #expect(flow.resetBy == .server)
        #expect(flow.clientEndpoint.path == [.synSent, closed])
        #expect(flow.serverEndpoint.path == [closed])
    }

    @Test("port reuse: a SYN with another ISN replaces the flow, which ends at that SYN")
    func portReuse() throws {
        var c = established()
        c.fin(.server, at: 1.0)
        c.ack(.client, at: 1.001)
        var next = conversation(clientISN: 777_000)
        next.handshake(at: 9.0)
        var tracker = FlowTracker()
        var ended: [FlowReport] = []
        tracker.finishedHandler = { ended.append($0) }
        feed(c, into: &tracker)
        feed(next, into: &tracker)
        #expect(ended.map(\.id) == [1])
        let old = try #require(ended.first)
        #expect(old.end == FlowEnd(reason: .replaced, at: ns(9.0)))
        #expect(old.clientEndpoint.path == [est, cw])
        #expect(tracker.trackedFlows == 1)
    }
}

/// Issue 10, defect 1: the flow hash is keyed, and probe chains stay bounded.
@Suite("Seeded flow hash")
struct SeededHashTests {
    static let seedA = HashSeed(a: 0x1234_5678_9ABC_DEF1, b: 0x0F0E_0D0C_0B0A_0907, c: 0x5555_AAAA_3333_CCCD, d: 0x7777_1111_9999_EEEF)
    static let seedB = HashSeed(a: 0x2234_5678_9ABC_DEF1, b: 0x0F0E_0D0C_0B0A_0907, c: 0x5555_AAAA_3333_CCCD, d: 0x7777_1111_9999_EEEF)

    /// An IPv6 SYN from 2001:db8:1:1::/64 (interface id `low`) to [2001:db8:ffff::80]:80.
    static func syn(low: UInt64, seq: UInt32 = 1000) -> TCPSegment {
        TCPSegment(source: IPAddress(ipv6High: 0x2001_0DB8_0001_0001, low: low),
                   destination: IPAddress(ipv6High: 0x2001_0DB8_FFFF_0000, low: 0x80),
                   sourcePort: 40000, destinationPort: 80, sequence: seq, acknowledgment: 0, flags: .syn,
                   window: 64240, payloadLength: 0, windowScale: -1)
    }

    /// The server's SYN+ACK to `syn(low:)`.
    static func synAck(low: UInt64) -> TCPSegment {
        TCPSegment(source: IPAddress(ipv6High: 0x2001_0DB8_FFFF_0000, low: 0x80),
                   destination: IPAddress(ipv6High: 0x2001_0DB8_0001_0001, low: low),
                   sourcePort: 80, destinationPort: 40000, sequence: 5000, acknowledgment: 1001, flags: [.syn, .ack],
                   window: 64240, payloadLength: 0, windowScale: -1)
    }

    @Test("two seeds hash one key differently; one seed hashes it the same every time")
    func seedsDiffer() {
        var differing = 0
        for low in UInt64(1)...64 {
            let key = FlowKey(Self.syn(low: low))
            #expect(key.hash(Self.seedA) == key.hash(Self.seedA))
            #expect(key.hash(Self.seedA) == FlowKey(Self.synAck(low: low)).hash(Self.seedA), "both directions, one key")
            if key.hash(Self.seedA) != key.hash(Self.seedB) { differing += 1 }
        }
        // Seeds that change nothing would make every pair equal; a keyed hash differs on
        // (almost) every key: allow one chance 32-bit collision.
        #expect(differing >= 63)
    }

    @Test("the table refuses an entry past the probe bound; everything inserted stays findable")
    func tableBound() {
        var table = FlowTable()
        let hash: UInt32 = 0xABCD_0123
        var accepted = 0
        for slot in 0..<200 where table.insert(hash: hash, slot: slot) { accepted += 1 }
        // Home slot plus `maximumDistance` slots after it: no longer chain is built.
        #expect(accepted == FlowTable.maximumDistance + 1)
        #expect(table.longestDistance == FlowTable.maximumDistance)
        for slot in 0..<accepted {
            #expect(table.find(hash: hash, matches: { $0 == slot }) == slot)
        }
        #expect(table.find(hash: hash, matches: { $0 == accepted }) == nil)
        // Unbounded insertion (growth, rebuilds) keeps every entry findable.
        var unbounded = FlowTable()
        for slot in 0..<500 {
            let inserted = unbounded.insert(hash: hash, slot: slot, bounded: false)
            #expect(inserted)
        }
        for slot in [0, 249, 499] { #expect(unbounded.find(hash: hash, matches: { $0 == slot }) == slot) }
    }

    /// Interface ids whose keys share one home slot of the tracker's first table (2048
    /// slots, `FlowTable()`) under `seed`: what an attacker who knew the seed would send.
    static func colliding(count: Int, seed: HashSeed) -> [UInt64] {
        let mask: UInt32 = 2047
        let home = FlowKey(syn(low: 1)).hash(seed) & mask
        var found: [UInt64] = [1]
        var low: UInt64 = 2
        while found.count < count {
            if FlowKey(syn(low: low)).hash(seed) & mask == home { found.append(low) }
            low += 1
        }
        return found
    }

    @Test("flows crafted onto one home slot: the tracker re-seeds, and every flow stays findable")
    func craftedCollisions() {
        let count = 300
        let lows = Self.colliding(count: count, seed: Self.seedA)
        var tracker = FlowTracker(seed: Self.seedA)
        for (index, low) in lows.enumerated() { tracker.process(Self.syn(low: low), at: ns(Double(index) * 0.001)) }
        // 300 keys on one home slot would make a 300-long chain; the bound is 48.
        #expect(tracker.reseeds >= 1)
        #expect(tracker.reseeds <= 3, "a fresh random seed spreads the keys")
        #expect(tracker.trackedFlows == count)
        // Each SYN+ACK finds its flow (no new flow starts), and a retransmitted SYN too.
        for (index, low) in lows.enumerated() {
            tracker.process(Self.synAck(low: low), at: ns(1 + Double(index) * 0.001))
            tracker.process(Self.syn(low: low), at: ns(2 + Double(index) * 0.001))
        }
        #expect(tracker.trackedFlows == count)
        let flows = tracker.result(captureEnd: ns(3)).flows
        #expect(flows.count == count)
        #expect(flows.allSatisfy { $0.segments == 3 })
        #expect(flows.allSatisfy { $0.serverEndpoint.path == [.synReceived] && $0.clientEndpoint.path == [.synSent] })
    }
}
