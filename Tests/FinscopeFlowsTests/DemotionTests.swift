import FinscopeWire
import Testing
@testable import FinscopeFlows

/// Text mode counts a completely closed flow at once and frees its close record while it
/// lingers (`FlowTracker.demoteIfCounted`); what later segments do must not change the counts.
@Suite struct DemotionTests {
    static let second: Nanoseconds = 1_000_000_000
    static let start: Nanoseconds = 1_700_000_000 * second
    static let client: (UInt32, UInt16) = (0x0A00_0001, 40000)
    static let server: (UInt32, UInt16) = (0x0A00_0002, 80)

    struct Feeder: ~Copyable {
        var tracker: FlowTracker
        var t = DemotionTests.start
        init(retainAll: Bool) {
            tracker = FlowTracker(configuration: FlowTracker.Configuration(retainAllFlows: retainAll))
        }
        mutating func feed(_ from: (UInt32, UInt16), _ to: (UInt32, UInt16), _ flags: TCPFlags,
                           _ seq: UInt32, _ ack: UInt32, after gap: Nanoseconds = 1_000) {
            t += gap
            tracker.process(TCPSegment(source: IPAddress(ipv4: from.0), destination: IPAddress(ipv4: to.0),
                                       sourcePort: from.1, destinationPort: to.1, sequence: seq, acknowledgment: ack,
                                       flags: flags, window: 1000, payloadLength: 0), at: t)
        }
        /// Handshake and a four-way close started by the client (SPEC §3: client-first, not three-way).
        mutating func clientFirstClose(serverFinAfter gap: Nanoseconds = 1_000) {
            let c = DemotionTests.client, s = DemotionTests.server
            feed(c, s, .syn, 100, 0)
            feed(s, c, [.syn, .ack], 500, 101)
            feed(c, s, .ack, 101, 501)
            feed(c, s, [.fin, .ack], 101, 501)
            feed(s, c, .ack, 501, 102)
            feed(s, c, [.fin, .ack], 501, 102, after: gap)
            feed(c, s, .ack, 102, 502)
        }
    }

    @Test("a completely closed flow frees its close record and is counted once, whatever comes after")
    func closedFlowCountedOnce() {
        var counted = Feeder(retainAll: false)
        counted.clientFirstClose()
        #expect(counted.tracker.trackedFlows == 1)
        #expect(counted.tracker.closeRecordsInUse == 0)
        // After the close (SPEC §2): a retransmitted FIN and an in-window RST from the server.
        counted.feed(Self.client, Self.server, [.fin, .ack], 101, 502)
        counted.feed(Self.server, Self.client, .rst, 502, 0)
        #expect(counted.tracker.closeRecordsInUse == 0)
        #expect(counted.tracker.finishedFlows.flows == 1)
        let (flows, tally) = counted.tracker.result(captureEnd: counted.t + Self.second)
        #expect(flows.isEmpty)
        #expect(tally.flows == 1)
        #expect(tally.count(.clientFirst) == 1)
        #expect(tally.threeWayCount(.clientFirst) == 0)
        #expect(tally.count(.reset) == 0)
        #expect(tally.resetByClient == 0)
    }

    @Test("a demoted flow replaced by a new connection on its 4-tuple is counted once")
    func demotedThenReplaced() {
        var counted = Feeder(retainAll: false)
        counted.clientFirstClose()
        // Port reuse: a SYN with another ISN starts a second flow, which stays open.
        counted.feed(Self.client, Self.server, .syn, 9_000, 0)
        let (_, tally) = counted.tracker.result(captureEnd: counted.t + Self.second)
        #expect(tally.flows == 2)
        #expect(tally.count(.clientFirst) == 1)
        #expect(tally.count(.open) == 1)
    }

    @Test("a closed flow with a finding keeps its facts and its report")
    func closedFlowWithFindingKept() {
        var counted = Feeder(retainAll: false)
        // The server holds CLOSE_WAIT for 6 s (threshold 5 s) before its FIN: a slow-close.
        counted.clientFirstClose(serverFinAfter: 6 * Self.second)
        #expect(counted.tracker.closeRecordsInUse == 1)
        let (flows, tally) = counted.tracker.result(captureEnd: counted.t + Self.second)
        #expect(tally.count(.slowClose) == 1)
        #expect(flows.count == 1)
        #expect(flows.first?.findings.map(\.kind) == [.slowClose])
    }

    @Test("flows are not demoted when every report is kept")
    func notDemotedWhenRetained() {
        var every = Feeder(retainAll: true)
        every.clientFirstClose()
        #expect(every.tracker.closeRecordsInUse == 1)
        every.feed(Self.server, Self.client, .rst, 502, 0)
        let (flows, _) = every.tracker.result(captureEnd: every.t + Self.second)
        #expect(flows.first?.serverEndpoint.resetAt == every.t)
    }
}
