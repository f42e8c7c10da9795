import FinscopeWire
import FinscopeFindings
import FinscopeAnalysis
import FinscopeFlows
import FinscopeTestSupport
import Foundation
import Testing

/// A SYN flood / port scan: 1,000,000 one-packet flows. A SYN-only flow never closes, so
/// only the flow-table cap (`--max-flows`, least recently active of a few sampled flows
/// evicted) bounds memory. The binary runs as a child process and its peak RSS (wait4's
/// ru_maxrss, see `finscope(_:in:)`) is checked against ceilings derived in
/// docs/hostile-input.md (debug build; a release build is smaller):
///
/// - a tracked flow costs about 320 bytes (FlowState, its slot, the hash table at ≤ 75 %
///   load, growth by doubling), measured as the slope between 250,000 and 1,000,000
///   tracked flows; the process itself (Swift runtime, Foundation, libpcap) about 25 MB;
/// - text mode keeps reports only of flows with findings (none here), so its memory is
///   the table: 100,000 flows ≈ 57 MB (ceiling 120 MB), the default cap of 1,000,000
///   (all of them tracked) ≈ 345 MB (ceiling 450 MB);
/// - `--ndjson` writes each flow as it leaves the table: ≈ 61 MB under a 100,000 cap
///   (ceiling 120 MB);
/// - `--json` must list every flow (SPEC §6), so it holds every flow's report plus the
///   rendered document (≈ 480 bytes of JSON per flow): ≈ 1 GB for 1,000,000 flows
///   (ceiling 1.5 GB).
///
/// Skipped under sanitizers (FINSCOPE_SANITIZER), whose shadow memory and quarantine
/// make RSS meaningless.
@Suite(.serialized) struct FloodTests {
    static let flows = 1_000_000
    static let megabyte = 1 << 20

    /// Writes the flood: each flow is one SYN from 10.x.y.z:port to 10.0.0.2:80, 100,000
    /// per second. One 54-byte frame template, patched in place: about a second even in
    /// a debug build.
    static func writeFlood(to url: URL) throws {
        let record = 16 + 54
        var data = Data(count: 24 + flows * record)
        data.withUnsafeMutableBytes { raw in
            let header: [UInt32] = [0xA1B2_C3D4, 0x0004_0002, 0, 0, 65535, 1]  // magic, version 2.4, snaplen, Ethernet
            for (index, word) in header.enumerated() { raw.storeBytes(of: word.littleEndian, toByteOffset: index * 4, as: UInt32.self) }
            let frame: [UInt8] = [
                2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00,  // Ethernet
                0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 0, 10, 0, 0, 2,  // IPv4
                0, 0, 0, 80, 0, 0, 0, 0, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0,  // TCP SYN
            ]
            for flow in 0..<flows {
                let at = 24 + flow * record
                let usec = UInt32(flow % 100_000) * 10
                raw.storeBytes(of: UInt32(1_700_000_000 + flow / 100_000).littleEndian, toByteOffset: at, as: UInt32.self)
                raw.storeBytes(of: usec.littleEndian, toByteOffset: at + 4, as: UInt32.self)
                raw.storeBytes(of: UInt32(54).littleEndian, toByteOffset: at + 8, as: UInt32.self)
                raw.storeBytes(of: UInt32(54).littleEndian, toByteOffset: at + 12, as: UInt32.self)
                let packet = at + 16
                frame.withUnsafeBytes { (raw.baseAddress! + packet).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
                raw[packet + 27] = UInt8(1 + (flow >> 16) & 0xff)  // source 10.(1+a).b.c
                raw[packet + 28] = UInt8((flow >> 8) & 0xff)
                raw[packet + 29] = UInt8(flow & 0xff)
                let port = UInt16(1024 + flow % 60_000)
                raw.storeBytes(of: port.bigEndian, toByteOffset: packet + 34, as: UInt16.self)
                raw.storeBytes(of: UInt32(truncatingIfNeeded: flow).bigEndian, toByteOffset: packet + 38, as: UInt32.self)
            }
        }
        try data.write(to: url)
    }

    @Test("closed flows leave the table once their close is complete: a reset flood needs no eviction")
    func closedFlowsLeave() {
        // 200,000 connections, one per millisecond, each SYN then RST: closed at once, so each
        // leaves the table 60 s (closedLinger) after its RST, once the sweep (2 slots per
        // segment) reaches it: about 60,000-80,000 are tracked, below the cap, none evicted.
        var tracker = FlowTracker(configuration: FlowTracker.Configuration(maxFlows: 100_000, retainAllFlows: false))
        var peak = 0
        for flow in 0..<200_000 {
            let client = IPAddress(ipv4: 0x0A01_0000 + UInt32(flow))
            let server = IPAddress(ipv4: 0x0A00_0002)
            let time = Nanoseconds(1_700_000_000) * 1_000_000_000 + Nanoseconds(flow) * 1_000_000
            tracker.process(TCPSegment(source: client, destination: server, sourcePort: 40000, destinationPort: 80,
                                       sequence: 1, acknowledgment: 0, flags: .syn, window: 65535, payloadLength: 0), at: time)
            tracker.process(TCPSegment(source: server, destination: client, sourcePort: 80, destinationPort: 40000,
                                       sequence: 0, acknowledgment: 2, flags: [.rst, .ack], window: 0, payloadLength: 0),
                            at: time + 1000)
            peak = max(peak, tracker.trackedFlows)
        }
        #expect(tracker.evictedForCapacity == 0)
        #expect(peak >= 60_000 && peak < 100_000, "peak \(peak) flows tracked")
        let (_, tally) = tracker.result(captureEnd: Nanoseconds(1_700_000_200) * 1_000_000_000)
        #expect(tally.flows == 200_000)
        #expect(tally.count(.reset) == 200_000)
    }

    @Test("1,000,000 one-packet flows stay under the memory ceilings", .timeLimit(.minutes(15)),
          .enabled(if: sanitizer == nil, "memory ceilings do not apply under a sanitizer"))
    func synFlood() throws {
        try #require(FileManager.default.isExecutableFile(atPath: finscopeBinary.path), "build finscope first")
        let directory = try TemporaryDirectory(prefix: "finscope-flood")
        let capture = directory.url(for: "flood.pcap")
        try Self.writeFlood(to: capture)

        // --json under a cap of 100,000: every flow is reported, 900,000 of them evicted early.
        let json = try finscope(["analyze", "--json", "--max-flows", "100000", capture.path], in: directory.url)
        #expect(json.status == 0, "\(json.stderr)")
        let source = try jsonSource(json.stdout)
        #expect(source["packets"] as? Int == Self.flows)
        #expect(source["tcpSegments"] as? Int == Self.flows)
        let evicted = source["evicted"] as? Int ?? -1
        #expect(evicted >= Self.flows - 100_000 && evicted <= Self.flows, "evicted \(evicted)")
        #expect(json.peakRSS < 1536 * Self.megabyte, "--json peak RSS \(json.peakRSS / Self.megabyte) MB")

        // --ndjson under the same cap streams each flow as it leaves: memory is the table.
        let stream = try finscope(["analyze", "--ndjson", "--max-flows", "100000", capture.path], in: directory.url)
        #expect(stream.status == 0, "\(stream.stderr)")
        #expect(stream.peakRSS < 120 * Self.megabyte, "--ndjson peak RSS \(stream.peakRSS / Self.megabyte) MB")

        // Text mode under the same cap: memory is the table of 100,000 flows.
        let capped = try finscope(["analyze", "--max-flows", "100000", capture.path], in: directory.url)
        #expect(capped.status == 0, "\(capped.stderr)")
        #expect(capped.peakRSS < 120 * Self.megabyte, "capped text peak RSS \(capped.peakRSS / Self.megabyte) MB")

        // Text mode with the default cap (1,000,000): every flow tracked, none evicted.
        let plain = try finscope(["analyze", capture.path], in: directory.url)
        #expect(plain.status == 0, "\(plain.stderr)")
        #expect(plain.peakRSS < 450 * Self.megabyte, "default text peak RSS \(plain.peakRSS / Self.megabyte) MB")
        print("flood peak RSS: --json --max-flows 100000 \(json.peakRSS / Self.megabyte) MB, "
              + "--ndjson --max-flows 100000 \(stream.peakRSS / Self.megabyte) MB, "
              + "--max-flows 100000 \(capped.peakRSS / Self.megabyte) MB, default \(plain.peakRSS / Self.megabyte) MB")
    }
}
