import FinscopeFindings
import FinscopeAnalysis
import FinscopeFlows
import FinscopeWire
import Testing

/// At `maxFlows`, eviction spares flows holding a CLOSE_WAIT: they are silent by nature,
/// so a plain least-recently-active choice would end exactly the findings finscope is for.
@Suite struct EvictionTests {
    static let second: Nanoseconds = 1_000_000_000
    static let start: Nanoseconds = 1_700_000_000 * second

    static func segment(_ from: (UInt32, UInt16), _ to: (UInt32, UInt16), _ flags: TCPFlags,
                        seq: UInt32, ack: UInt32) -> TCPSegment {
        TCPSegment(source: IPAddress(ipv4: from.0), destination: IPAddress(ipv4: to.0), sourcePort: from.1,
                   destinationPort: to.1, sequence: seq, acknowledgment: ack, flags: flags, window: 1000,
                   payloadLength: 0)
    }

    @Test func aFlowInCloseWaitIsNotTheVictim() {
        var tracker = FlowTracker(configuration: FlowTracker.Configuration(maxFlows: 2))
        let client: (UInt32, UInt16) = (0x0A00_0001, 40000), server: (UInt32, UInt16) = (0x0A00_0002, 80)
        // Flow 1: handshake, the server closes, the client acknowledges and stays (CLOSE_WAIT).
        tracker.process(Self.segment(client, server, .syn, seq: 100, ack: 0), at: Self.start)
        tracker.process(Self.segment(server, client, [.syn, .ack], seq: 500, ack: 101), at: Self.start + 1_000)
        tracker.process(Self.segment(client, server, .ack, seq: 101, ack: 501), at: Self.start + 2_000)
        tracker.process(Self.segment(server, client, [.fin, .ack], seq: 501, ack: 101), at: Self.start + Self.second)
        tracker.process(Self.segment(client, server, .ack, seq: 101, ack: 502), at: Self.start + Self.second + 1_000)
        // Flows 2 and 3: more recent, open; the third forces an eviction.
        for (index, port) in [UInt16(40001), 40002].enumerated() {
            let at = Self.start + Nanoseconds(2 + index) * Self.second
            tracker.process(Self.segment((0x0A00_0003, port), server, .syn, seq: 1, ack: 0), at: at)
        }
        #expect(tracker.evictedForCapacity == 1)
        let (flows, tally) = tracker.result(captureEnd: Self.start + 20 * Self.second)
        #expect(tally.flows == 3)
        let leak = flows.first { $0.id == 1 }
        // Still tracked at the end, so its CLOSE_WAIT runs to the capture's end: 20 − 1.000001 s.
        #expect(leak?.findings.map(\.kind) == [.closeWait])
        #expect(leak?.findings.first?.duration == 19 * Self.second - 1_000)
    }
}
