import FinscopeFlows
import FinscopeWire
import Testing

/// A flow's close facts (FIN and RST marks) come fresh with the flow: a slot, and the close
/// facts of a flow that left, are reused by later flows and must carry nothing over.
@Suite struct CloseRecordTests {
    static let second: Nanoseconds = 1_000_000_000
    static let start: Nanoseconds = 1_700_000_000 * second
    static let server: (UInt32, UInt16) = (0x0A00_0002, 80)

    static func segment(_ from: (UInt32, UInt16), _ to: (UInt32, UInt16), _ flags: TCPFlags,
                        seq: UInt32, ack: UInt32) -> TCPSegment {
        TCPSegment(source: IPAddress(ipv4: from.0), destination: IPAddress(ipv4: to.0), sourcePort: from.1,
                   destinationPort: to.1, sequence: seq, acknowledgment: ack, flags: flags, window: 1000,
                   payloadLength: 0)
    }

    @Test("flows that take over an evicted flow's slot start with no FIN, ack or reset")
    func reusedSlotsStartClean() {
        var tracker = FlowTracker(configuration: FlowTracker.Configuration(maxFlows: 1))
        let s = Self.server
        let a: (UInt32, UInt16) = (0x0A00_0001, 40000), b: (UInt32, UInt16) = (0x0A00_0001, 40001)
        let c: (UInt32, UInt16) = (0x0A00_0001, 40002)
        var t = Self.start
        func feed(_ from: (UInt32, UInt16), _ to: (UInt32, UInt16), _ flags: TCPFlags, _ seq: UInt32, _ ack: UInt32) {
            t += 1_000
            tracker.process(Self.segment(from, to, flags, seq: seq, ack: ack), at: t)
        }
        // Flow 1: handshake, then a four-way close started by the client (SPEC §3: client-first).
        feed(a, s, .syn, 100, 0)
        feed(s, a, [.syn, .ack], 500, 101)
        feed(a, s, .ack, 101, 501)
        feed(a, s, [.fin, .ack], 101, 501)
        let clientFin1 = t
        feed(s, a, .ack, 501, 102)
        feed(s, a, [.fin, .ack], 501, 102)
        feed(a, s, .ack, 102, 502)
        // Flow 2 evicts flow 1 (one flow at most); only its server sends a FIN: half-closed.
        feed(b, s, .syn, 700, 0)
        feed(s, b, [.syn, .ack], 900, 701)
        feed(b, s, .ack, 701, 901)
        feed(s, b, [.fin, .ack], 901, 701)
        let serverFin2 = t
        // Flow 3 evicts flow 2 and never closes: open.
        feed(c, s, .syn, 1_000, 0)
        #expect(tracker.evictedForCapacity == 2)
        let (flows, tally) = tracker.result(captureEnd: t + Self.second)
        #expect(tally.flows == 3)
        #expect(flows.map(\.close) == [.clientFirst, .halfClosed, .open])
        #expect(flows[0].clientEndpoint.finAt == clientFin1)
        #expect(flows[1].clientEndpoint.finAt == nil)
        #expect(flows[1].serverEndpoint.finAt == serverFin2)
        #expect(flows[1].serverEndpoint.finAckedAt == nil)
        #expect(flows[1].clientEndpoint.finAckedAt == nil)
        #expect(flows[2].clientEndpoint.finAt == nil && flows[2].serverEndpoint.finAt == nil)
        #expect(flows[2].clientEndpoint.resetAt == nil && flows[2].serverEndpoint.resetAt == nil)
    }
}
