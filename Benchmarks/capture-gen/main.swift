// capture-gen: writes a large, realistic TCP capture deterministically from a seed, and the
// counts finscope must report for it (Scripts/bench checks them).
//
//   capture-gen --packets N --flows M --concurrent K --seed S [--snaplen L] -o FILE
//               [--expected FILE.json] [--leak-percent P] [--open-percent P] [--slow-percent P]
//               [--duration SECONDS] [--response-max BYTES]
//
// Model: K connections are open at any moment (a min-heap of their next segment times);
// when one finishes, the next of the M flows starts. Each flow: handshake (SYN with MSS and
// window scale), request/response exchanges (requests 200-800 B; responses 1-64 KB,
// log-uniform, in MSS segments, the client acknowledging every second segment and the
// last), think times between exchanges, then one of the closes seen in practice. The
// capture point is at the client (its ACKs follow the data closely; the server's answers
// come an RTT later). ~10% of flows are IPv6. Every 4-tuple is unique (no port reuse), all
// FINs are acknowledged, and RSTs sit exactly at the receiver's last ACK (accepted), so the
// expected close kinds follow from the scripts alone; close-wait findings depend on the
// capture's end, which is known once the last packet is written.
//
// The timeline's length follows from the flows' own timings (a 1M-packet, 40k-flow file at
// 2,000 concurrent spans a few seconds to half a minute). `--duration SECONDS` stretches it:
// each flow is given a lifetime of about SECONDS x K / M (uniform in 0.5-1.5x that), spent
// as idle time before its request(s) and before its close, so K flows stay open at once and
// M / SECONDS flows start per second. Without it the output is unchanged (same random draws).
// `--response-max BYTES` (default 65536) caps the log-uniform response size: with a small cap
// a file of many concurrent flows (Scripts/bench's flows file) stays small on disk. The draws
// are the same, so the default leaves every file as it was.
//
// Frames are Ethernet + IPv4/IPv6 + TCP, written through one reusable 8 MiB buffer (no
// per-packet allocation). Microsecond pcap, little-endian. Payloads are zeros behind an
// HTTP/1.1 start — each client payload begins with a request head (a PUT with Host and
// User-Agent), each server payload with a status line — so the benchmark pays for the
// application hints as a real HTTP capture would.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - Options

struct Options {
    var packets = 1_000_000
    var flows = 50_000
    var concurrent = 2_000
    var seed: UInt64 = 1
    var snaplen = 0  // 0: full frames
    var output = ""
    var expected: String?
    var leakPercent = 3.0
    var openPercent = 3.0
    var slowPercent = 2.0
    var duration = 0.0  // seconds; 0: the flows' natural timings
    var responseMax = 65_536  // bytes; responses are log-uniform in 1 KiB...this
}

func printError(_ message: String) {
    let line = message + "\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
}

func fail(_ message: String) -> Never {
    printError("capture-gen: \(message)")
    exit(2)
}

func parseOptions() -> Options {
    var options = Options()
    var arguments = CommandLine.arguments.dropFirst()
    func value(_ name: String) -> String {
        guard let next = arguments.popFirst() else { fail("\(name) needs a value") }
        return next
    }
    func int(_ name: String) -> Int {
        guard let number = Int(value(name).replacingUnderscores()), number >= 0 else { fail("\(name): not a number") }
        return number
    }
    func double(_ name: String) -> Double {
        guard let number = Double(value(name)), number >= 0, number <= 100 else { fail("\(name): 0-100") }
        return number
    }
    while let argument = arguments.popFirst() {
        switch argument {
        case "--packets": options.packets = int(argument)
        case "--flows": options.flows = int(argument)
        case "--concurrent": options.concurrent = int(argument)
        case "--seed": options.seed = UInt64(int(argument))
        case "--snaplen": options.snaplen = int(argument)
        case "-o", "--output": options.output = value(argument)
        case "--expected": options.expected = value(argument)
        case "--leak-percent": options.leakPercent = double(argument)
        case "--open-percent": options.openPercent = double(argument)
        case "--slow-percent": options.slowPercent = double(argument)
        case "--duration":
            guard let seconds = Double(value(argument)), seconds >= 0 else { fail("--duration: seconds, at least 0") }
            options.duration = seconds
        case "--response-max": options.responseMax = int(argument)
        case "-h", "--help":
            print("""
                usage: capture-gen --packets N --flows M --concurrent K --seed S [--snaplen L] -o FILE
                                   [--expected FILE.json] [--leak-percent P (3)] [--open-percent P (3)] [--slow-percent P (2)]
                                   [--duration SECONDS (0: natural timings)] [--response-max BYTES (65536)]
                """)
            exit(0)
        default: fail("unknown argument \(argument)")
        }
    }
    if options.output.isEmpty { fail("-o FILE is required") }
    if options.flows < 1 || options.concurrent < 1 { fail("--flows and --concurrent must be at least 1") }
    if options.snaplen != 0 && options.snaplen < 96 { fail("--snaplen must be 0 (full) or at least 96") }
    if options.responseMax < 1_024 { fail("--response-max must be at least 1024") }
    return options
}

extension String {
    func replacingUnderscores() -> String { String(filter { $0 != "_" }) }
}

// MARK: - Random numbers (SplitMix64: tiny, fast, deterministic everywhere)

struct Random {
    var state: UInt64
    @inline(__always) mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in 0..<bound.
    @inline(__always) mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }
    /// Uniform in lo...hi.
    @inline(__always) mutating func range(_ lo: Int, _ hi: Int) -> Int { lo + below(hi - lo + 1) }
    /// Uniform in [0, 1).
    @inline(__always) mutating func unit() -> Double { Double(next() >> 11) * 0x1p-53 }
    /// Log-uniform in lo...hi.
    @inline(__always) mutating func logUniform(_ lo: Double, _ hi: Double) -> Double {
        lo * pow(hi / lo, unit())
    }
}

// MARK: - Flow scripts

enum Close: UInt8, CaseIterable {
    case clientFirst4, clientFirst3, halfCloseClientFirst, serverFirst4, serverFirst3, slowClose
    case resetByClient, resetByServer, leak, open

    var kind: String {
        switch self {
        case .clientFirst4, .clientFirst3, .halfCloseClientFirst: return "client-first"
        case .serverFirst4, .serverFirst3, .slowClose: return "server-first"
        case .resetByClient, .resetByServer: return "reset"
        case .leak: return "half-closed"
        case .open: return "open"
        }
    }
}

enum Phase: UInt8 {
    case syn, synAck, handshakeAck, request, response, clientAck
    // closes; each names the segment sent next
    case cFin, sAckOfFin, sFin, cAckOfFin, cFinAfterAck, cFinAck3, sAckFinal, sFinAck3
    case hcFin, hcServerAck, hcResponse, hcClientAck
    case leakServerFin, leakClientAck
    case slowServerFin, slowClientAck, slowClientFin, slowServerAck
    case rstClient, rstServer
    case done
}

struct Flow {
    var index: Int32 = 0
    var v6 = false
    var close = Close.open
    var phase = Phase.syn
    var clientHost: UInt32 = 0
    var serverHost: UInt32 = 0
    var clientPort: UInt16 = 0
    var serverPort: UInt16 = 0
    var cseq: UInt32 = 0  // the client's next sequence number
    var sseq: UInt32 = 0  // the server's
    var exchangesLeft: Int32 = 0
    var responseLeft: Int32 = 0
    var unacked: Int32 = 0
    var rtt: Int64 = 0  // microseconds
    var deadline: Int64 = 0  // with --duration: when the flow should close; 0 otherwise
}

// MARK: - Output (one big reusable buffer)

/// The start of every client and server payload (see the header comment).
let httpRequestHead = Array(("PUT /heartbeat?node=7 HTTP/1.1\r\nHost: 10.0.0.9:8282\r\nContent-Type: application/json\r\n"
    + "User-Agent: Apache-HttpClient/4.5.14 (Java/17.0.15)\r\nContent-Length: 21\r\n\r\n").utf8)
let httpStatusHead = Array("HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n".utf8)

struct Writer {
    let file: UnsafeMutablePointer<FILE>
    let buffer: UnsafeMutableRawPointer
    let capacity = 8 << 20
    var used = 0
    var bytesWritten: Int64 = 0

    init(path: String, snaplen: Int) {
        guard let file = fopen(path, "wb") else { fail("cannot open \(path): \(String(cString: strerror(errno)))") }
        self.file = file
        buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        // pcap global header: microseconds, Ethernet.
        put32(0xa1b2_c3d4); put16(2); put16(4); put32(0); put32(0)
        put32(UInt32(snaplen == 0 ? 262_144 : snaplen)); put32(1)
    }

    @inline(__always) mutating func ensure(_ bytes: Int) {
        if used + bytes > capacity { flush() }
    }
    mutating func flush() {
        if used > 0, fwrite(buffer, 1, used, file) != used { fail("write failed: \(String(cString: strerror(errno)))") }
        bytesWritten += Int64(used)
        used = 0
    }
    mutating func close() {
        flush()
        if fclose(file) != 0 { fail("close failed") }
    }
    @inline(__always) mutating func put8(_ v: UInt8) { buffer.storeBytes(of: v, toByteOffset: used, as: UInt8.self); used += 1 }
    @inline(__always) mutating func put16(_ v: UInt16) { buffer.storeBytes(of: v.littleEndian, toByteOffset: used, as: UInt16.self); used += 2 }
    @inline(__always) mutating func put32(_ v: UInt32) { buffer.storeBytes(of: v.littleEndian, toByteOffset: used, as: UInt32.self); used += 4 }
    @inline(__always) mutating func be16(_ v: UInt16) { buffer.storeBytes(of: v.bigEndian, toByteOffset: used, as: UInt16.self); used += 2 }
    @inline(__always) mutating func be32(_ v: UInt32) { buffer.storeBytes(of: v.bigEndian, toByteOffset: used, as: UInt32.self); used += 4 }
}

// TCP flag bits
let FIN: UInt8 = 0x01, SYN: UInt8 = 0x02, RST: UInt8 = 0x04, PSH: UInt8 = 0x08, ACK: UInt8 = 0x10

// MARK: - Generator

struct Generator {
    var options: Options
    var random: Random
    var writer: Writer
    var flows: [Flow]
    /// Min-heap of (time, slot) for the active flows.
    var heapTimes: [Int64] = []
    var heapSlots: [Int32] = []
    var started = 0
    var packetsWritten = 0
    var packetsBudgetLeft: Int
    var lastTime: Int64 = 0
    var closeCounts = [Int](repeating: 0, count: Close.allCases.count)
    var ipv6Flows = 0
    /// When each leaking client acknowledged the server's FIN (its CLOSE_WAIT begins).
    var leakSince: [Int64] = []
    var slowCloses = 0
    var closeWeights: [(Close, Double)]

    init(options: Options) {
        self.options = options
        random = Random(state: options.seed &* 0x2545_F491_4F6C_DD1D &+ 12345)
        writer = Writer(path: options.output, snaplen: options.snaplen)
        flows = Array(repeating: Flow(), count: options.concurrent)
        packetsBudgetLeft = options.packets
        // The close mix: a realistic spread; the leak and open shares are options.
        let rest = max(0, 100 - options.leakPercent - options.openPercent - options.slowPercent)
        let base: [(Close, Double)] = [
            (.clientFirst4, 18), (.clientFirst3, 16), (.halfCloseClientFirst, 4),
            (.serverFirst4, 22), (.serverFirst3, 20),
            (.resetByClient, 10), (.resetByServer, 8),
        ]
        let total = base.reduce(0) { $0 + $1.1 }
        closeWeights = base.map { ($0.0, $0.1 / total * rest) } + [(.slowClose, options.slowPercent), (.leak, options.leakPercent), (.open, options.openPercent)]
    }

    mutating func pickClose() -> Close {
        var r = random.unit() * 100
        for (close, weight) in closeWeights {
            if r < weight { return close }
            r -= weight
        }
        return .clientFirst4
    }

    // Heap
    mutating func push(_ time: Int64, _ slot: Int32) {
        heapTimes.append(time); heapSlots.append(slot)
        var i = heapTimes.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            if heapTimes[parent] <= heapTimes[i] { break }
            heapTimes.swapAt(parent, i); heapSlots.swapAt(parent, i)
            i = parent
        }
    }
    mutating func siftDown(_ start: Int) {
        var i = start
        let n = heapTimes.count
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < n, heapTimes[l] < heapTimes[m] { m = l }
            if r < n, heapTimes[r] < heapTimes[m] { m = r }
            if m == i { return }
            heapTimes.swapAt(m, i); heapSlots.swapAt(m, i)
            i = m
        }
    }
    mutating func popMin() {
        let last = heapTimes.count - 1
        heapTimes.swapAt(0, last); heapSlots.swapAt(0, last)
        heapTimes.removeLast(); heapSlots.removeLast()
        if !heapTimes.isEmpty { siftDown(0) }
    }
    mutating func reschedule(_ time: Int64) {
        heapTimes[0] = time
        siftDown(0)
    }

    /// Packets a flow with `exchanges` exchanges is expected to take (for the packet budget).
    static let meanPacketsPerExchange = 1.0 + 12.6 * 1.5  // request + ~12.6 segments + their ACKs

    mutating func startFlow(slot: Int, at time: Int64) {
        let index = started
        started += 1
        var flow = Flow()
        flow.index = Int32(truncatingIfNeeded: index)
        flow.v6 = random.below(10) == 0
        if flow.v6 { ipv6Flows += 1 }
        flow.close = pickClose()
        closeCounts[Int(flow.close.rawValue)] += 1
        // Unique 4-tuples: 4096 client hosts, ephemeral ports handed out in turn.
        flow.clientHost = UInt32(index % 4096)
        flow.clientPort = UInt16(10_000 + (index / 4096) % 55_000)
        flow.serverHost = UInt32(random.below(16))
        let ports: [UInt16] = [443, 443, 443, 80, 8080, 5432, 6379, 9200]
        flow.serverPort = ports[random.below(ports.count)]
        flow.cseq = UInt32(truncatingIfNeeded: random.next())
        flow.sseq = UInt32(truncatingIfNeeded: random.next())
        flow.rtt = Int64(random.logUniform(100, 80_000))  // 0.1-80 ms
        // Exchanges: spread the remaining packet budget over the remaining flows.
        let flowsLeft = max(1, options.flows - index)
        let target = Double(max(0, packetsBudgetLeft)) / Double(flowsLeft) - 7
        let mean = max(0.0, target / Self.meanPacketsPerExchange)
        // Uniform in [0.25, 1.75] x mean, at least one exchange.
        flow.exchangesLeft = Int32(max(1, (mean * (0.25 + 1.5 * random.unit())).rounded()))
        if options.duration > 0 {
            // Lifetime per flow so that each of the K slots runs M / K flows in `duration`.
            let cycle = options.duration * 1e6 * Double(options.concurrent) / Double(options.flows)
            flow.deadline = time + Int64(cycle * (0.5 + random.unit()))
        }
        flows[slot] = flow
        push(time, Int32(slot))
    }

    mutating func run() {
        let initial = min(options.concurrent, options.flows)
        // Stagger the first flows over a second so the mix is steady from the start.
        for slot in 0..<initial { startFlow(slot: slot, at: 1_700_000_000_000_000 + Int64(random.below(1_000_000))) }
        while !heapTimes.isEmpty {
            let now = heapTimes[0]
            let slot = Int(heapSlots[0])
            let delay = step(slot: slot, now: now)
            if let delay {
                reschedule(now + max(1, delay))
            } else if started < options.flows {
                // The slot's flow is done: the next flow starts a little later.
                let gap = Int64(random.logUniform(10, 200_000))
                popMin()
                startFlow(slot: slot, at: now + gap)
            } else {
                popMin()
            }
        }
        writer.close()
    }

    // MARK: Segments

    @inline(__always)
    mutating func emit(_ flow: Flow, fromClient: Bool, flags: UInt8, payload: Int, time: Int64, synOptions: Bool = false) {
        lastTime = max(lastTime, time)
        packetsWritten += 1
        packetsBudgetLeft -= 1
        let optionsLength = synOptions ? 8 : 0
        let tcpLength = 20 + optionsLength
        let ipLength = (flow.v6 ? 40 : 20) + tcpLength + payload
        let frameLength = 14 + ipLength
        let captured = options.snaplen == 0 ? frameLength : min(frameLength, options.snaplen)
        writer.ensure(16 + frameLength)
        // Record header.
        writer.put32(UInt32(truncatingIfNeeded: time / 1_000_000))
        writer.put32(UInt32(truncatingIfNeeded: time % 1_000_000))
        writer.put32(UInt32(captured))
        writer.put32(UInt32(frameLength))
        let frameStart = writer.used
        // Ethernet: locally administered MACs derived from the hosts.
        let clientMAC = 0x0200_0000_0000 as UInt64 | UInt64(flow.clientHost)
        let serverMAC = 0x0200_0100_0000 as UInt64 | UInt64(flow.serverHost)
        let (dstMAC, srcMAC) = fromClient ? (serverMAC, clientMAC) : (clientMAC, serverMAC)
        writer.be16(UInt16(truncatingIfNeeded: dstMAC >> 32)); writer.be32(UInt32(truncatingIfNeeded: dstMAC))
        writer.be16(UInt16(truncatingIfNeeded: srcMAC >> 32)); writer.be32(UInt32(truncatingIfNeeded: srcMAC))
        writer.be16(flow.v6 ? 0x86dd : 0x0800)
        if flow.v6 {
            writer.be32(0x6000_0000)
            writer.be16(UInt16(tcpLength + payload))
            writer.put8(6); writer.put8(64)
            let client = (UInt32(0xfd00_0000), UInt32(0), UInt32(0), flow.clientHost + 0x100)
            let server = (UInt32(0xfd00_0001), UInt32(0), UInt32(0), flow.serverHost + 1)
            let (src, dst) = fromClient ? (client, server) : (server, client)
            writer.be32(src.0); writer.be32(src.1); writer.be32(src.2); writer.be32(src.3)
            writer.be32(dst.0); writer.be32(dst.1); writer.be32(dst.2); writer.be32(dst.3)
        } else {
            let client = 0x0a00_0000 as UInt32 | (flow.clientHost + 0x100)
            let server = 0xc0a8_0100 as UInt32 | (flow.serverHost + 1)
            let (src, dst) = fromClient ? (client, server) : (server, client)
            let ipStart = writer.used
            writer.be16(0x4500); writer.be16(UInt16(ipLength))
            writer.be16(UInt16(truncatingIfNeeded: packetsWritten)); writer.be16(0x4000)  // DF
            writer.put8(64); writer.put8(6); writer.be16(0)
            writer.be32(src); writer.be32(dst)
            var sum: UInt32 = 0
            for i in stride(from: 0, to: 20, by: 2) {
                sum &+= UInt32(UInt16(bigEndian: writer.buffer.loadUnaligned(fromByteOffset: ipStart + i, as: UInt16.self)))
            }
            while sum >> 16 != 0 { sum = (sum & 0xffff) + (sum >> 16) }
            writer.buffer.storeBytes(of: (~UInt16(truncatingIfNeeded: sum)).bigEndian, toByteOffset: ipStart + 10, as: UInt16.self)
        }
        // TCP.
        writer.be16(fromClient ? flow.clientPort : flow.serverPort)
        writer.be16(fromClient ? flow.serverPort : flow.clientPort)
        writer.be32(fromClient ? flow.cseq : flow.sseq)
        writer.be32(flags & ACK != 0 ? (fromClient ? flow.sseq : flow.cseq) : 0)
        writer.put8(UInt8(tcpLength / 4) << 4); writer.put8(flags)
        writer.be16(fromClient ? 1_026 : 502)  // windows, scaled by 2^7 after the handshake
        writer.be16(0); writer.be16(0)  // checksum (not computed), urgent pointer
        if synOptions {
            writer.put8(2); writer.put8(4); writer.be16(flow.v6 ? 1_440 : 1_460)  // MSS
            writer.put8(1); writer.put8(3); writer.put8(3); writer.put8(7)  // NOP, window scale 7
        }
        if payload > 0 {
            memset(writer.buffer + writer.used, 0, payload)
            let head = fromClient ? httpRequestHead : httpStatusHead
            head.withUnsafeBytes { bytes in
                (writer.buffer + writer.used).copyMemory(from: bytes.baseAddress!, byteCount: min(payload, bytes.count))
            }
            writer.used += payload
        }
        writer.used = frameStart + captured
    }

    /// With `--duration`: an idle gap of an equal share of the time left to the flow's
    /// deadline (`gapsLeft` idle gaps remain: before each request left and before the close),
    /// or `natural` when that is longer.
    @inline(__always)
    func stretched(_ natural: Int64, _ f: Flow, now: Int64, gapsLeft: Int64) -> Int64 {
        guard f.deadline > 0 else { return natural }
        return max(natural, (f.deadline - now) / max(1, gapsLeft))
    }

    /// Sends the flow's next segment at `now`; returns the delay to its next one, or nil when
    /// the flow is done.
    mutating func step(slot: Int, now: Int64) -> Int64? {
        var f = flows[slot]
        defer { flows[slot] = f }
        let mss = f.v6 ? 1_428 : 1_448
        let jitter = Int64(random.range(5, 60))  // client's reaction, µs
        switch f.phase {
        case .syn:
            emit(f, fromClient: true, flags: SYN, payload: 0, time: now, synOptions: true)
            f.phase = .synAck
            return f.rtt
        case .synAck:
            emit(f, fromClient: false, flags: SYN | ACK, payload: 0, time: now, synOptions: true)
            f.cseq &+= 1; f.sseq &+= 1
            f.phase = .handshakeAck
            return jitter
        case .handshakeAck:
            emit(f, fromClient: true, flags: ACK, payload: 0, time: now)
            f.phase = .request
            return stretched(Int64(random.range(20, 2_000)), f, now: now, gapsLeft: Int64(f.exchangesLeft) + 1)
        case .request:
            let length = random.range(200, 800)
            emit(f, fromClient: true, flags: PSH | ACK, payload: length, time: now)
            f.cseq &+= UInt32(length)
            f.responseLeft = Int32(random.logUniform(1_024, Double(options.responseMax)))
            f.unacked = 0
            f.exchangesLeft -= 1
            if f.close == .halfCloseClientFirst && f.exchangesLeft == 0 {
                f.phase = .hcFin  // shutdown(SHUT_WR) right after the last request
                return Int64(random.range(10, 200))
            }
            f.phase = .response
            return f.rtt + Int64(random.logUniform(200, 30_000))  // RTT + server time
        case .response, .hcResponse:
            let length = min(Int(f.responseLeft), mss)
            f.responseLeft -= Int32(length)
            let last = f.responseLeft == 0
            emit(f, fromClient: false, flags: last ? PSH | ACK : ACK, payload: length, time: now)
            f.sseq &+= UInt32(length)
            f.unacked += 1
            if f.unacked == 2 || last {
                f.phase = f.phase == .response ? .clientAck : .hcClientAck
                return jitter
            }
            return Int64(random.range(12, 120))  // back-to-back segments
        case .clientAck, .hcClientAck:
            emit(f, fromClient: true, flags: ACK, payload: 0, time: now)
            f.unacked = 0
            let wasHalfClose = f.phase == .hcClientAck
            if f.responseLeft > 0 {
                f.phase = wasHalfClose ? .hcResponse : .response
                return Int64(random.range(12, 400))
            }
            if wasHalfClose {
                f.phase = .sFin
                return Int64(random.range(50, 2_000))
            }
            if f.exchangesLeft > 0 {
                f.phase = .request
                let think = Int64(random.logUniform(1_000, 400_000))  // think time 1-400 ms
                return stretched(think, f, now: now, gapsLeft: Int64(f.exchangesLeft) + 1)
            }
            // Idle, then the close.
            switch f.close {
            case .clientFirst4, .clientFirst3: f.phase = .cFin
            case .serverFirst4, .serverFirst3: f.phase = .sFin
            case .slowClose: f.phase = .slowServerFin
            case .leak: f.phase = .leakServerFin
            case .resetByClient: f.phase = .rstClient
            case .resetByServer: f.phase = .rstServer
            case .open: return nil  // stays open, silent, until the capture ends
            case .halfCloseClientFirst: fatalError("unreachable")
            }
            return stretched(Int64(random.logUniform(200, 1_500_000)), f, now: now, gapsLeft: 1)
        case .cFin:
            emit(f, fromClient: true, flags: FIN | ACK, payload: 0, time: now)
            f.cseq &+= 1
            f.phase = f.close == .clientFirst3 ? .sFinAck3 : .sAckOfFin
            return f.rtt
        case .sAckOfFin:
            emit(f, fromClient: false, flags: ACK, payload: 0, time: now)
            f.phase = .sFin
            return Int64(random.logUniform(20, 50_000))
        case .sFinAck3:
            emit(f, fromClient: false, flags: FIN | ACK, payload: 0, time: now)
            f.sseq &+= 1
            f.phase = .cAckOfFin
            return jitter
        case .sFin:
            emit(f, fromClient: false, flags: FIN | ACK, payload: 0, time: now)
            f.sseq &+= 1
            switch f.close {
            case .serverFirst4: f.phase = .cAckOfFin; return jitter
            case .serverFirst3: f.phase = .cFinAck3; return jitter
            default: f.phase = .cAckOfFin; return jitter  // the client-first closes: the last ACK
            }
        case .cAckOfFin:
            emit(f, fromClient: true, flags: ACK, payload: 0, time: now)
            if f.close == .serverFirst4 {
                f.phase = .cFinAfterAck
                return Int64(random.logUniform(20, 50_000))
            }
            f.phase = .done
            return nil
        case .cFinAfterAck:
            emit(f, fromClient: true, flags: FIN | ACK, payload: 0, time: now)
            f.cseq &+= 1
            f.phase = .sAckFinal
            return f.rtt
        case .cFinAck3:
            emit(f, fromClient: true, flags: FIN | ACK, payload: 0, time: now)
            f.cseq &+= 1
            f.phase = .sAckFinal
            return f.rtt
        case .sAckFinal:
            emit(f, fromClient: false, flags: ACK, payload: 0, time: now)
            f.phase = .done
            return nil
        case .hcFin:
            emit(f, fromClient: true, flags: FIN | ACK, payload: 0, time: now)
            f.cseq &+= 1
            f.phase = .hcServerAck
            return f.rtt
        case .hcServerAck:
            emit(f, fromClient: false, flags: ACK, payload: 0, time: now)
            f.phase = .hcResponse
            return Int64(random.logUniform(200, 30_000))
        case .leakServerFin, .slowServerFin:
            emit(f, fromClient: false, flags: FIN | ACK, payload: 0, time: now)
            f.sseq &+= 1
            f.phase = f.phase == .leakServerFin ? .leakClientAck : .slowClientAck
            return f.rtt
        case .leakClientAck:
            emit(f, fromClient: true, flags: ACK, payload: 0, time: now)
            leakSince.append(now)  // CLOSE_WAIT from here to the capture's end
            f.phase = .done
            return nil
        case .slowClientAck:
            emit(f, fromClient: true, flags: ACK, payload: 0, time: now)
            slowCloses += 1
            f.phase = .slowClientFin
            return Int64(random.logUniform(6_000_000, 20_000_000))  // 6-20 s in CLOSE_WAIT
        case .slowClientFin:
            emit(f, fromClient: true, flags: FIN | ACK, payload: 0, time: now)
            f.cseq &+= 1
            f.phase = .slowServerAck
            return f.rtt
        case .slowServerAck:
            emit(f, fromClient: false, flags: ACK, payload: 0, time: now)
            f.phase = .done
            return nil
        case .rstClient:
            emit(f, fromClient: true, flags: RST | ACK, payload: 0, time: now)
            f.phase = .done
            return nil
        case .rstServer:
            emit(f, fromClient: false, flags: RST | ACK, payload: 0, time: now)
            f.phase = .done
            return nil
        case .done:
            return nil
        }
    }
}

// MARK: - Main

let options = parseOptions()
var generator = Generator(options: options)
generator.run()

let threshold: Int64 = 5_000_000  // µs, finscope's default --close-wait-threshold
let captureEnd = generator.lastTime
let closeWaits = generator.leakSince.filter { captureEnd - $0 >= threshold }.count
var close: [String: Int] = [
    "client-first": 0, "server-first": 0, "simultaneous": 0, "crossed": 0, "reset": 0, "half-closed": 0, "open": 0,
]
for c in Close.allCases { close[c.kind, default: 0] += generator.closeCounts[Int(c.rawValue)] }
let threeWayClientFirst = generator.closeCounts[Int(Close.clientFirst3.rawValue)]
let threeWayServerFirst = generator.closeCounts[Int(Close.serverFirst3.rawValue)]
let order = ["client-first", "server-first", "simultaneous", "crossed", "reset", "half-closed", "open"]
let closeJSON = order.map { "\"\($0)\": \(close[$0]!)" }.joined(separator: ", ")
let bytes = generator.writer.bytesWritten
let json = """
    {
      "file": "\(options.output)",
      "seed": \(options.seed),
      "packets": \(generator.packetsWritten),
      "bytes": \(bytes),
      "meanFrameBytes": \(generator.packetsWritten == 0 ? 0 : (bytes - 24) / Int64(generator.packetsWritten) - 16),
      "snaplen": \(options.snaplen),
      "concurrent": \(options.concurrent),
      "durationOption": \(options.duration),
      "ipv6Flows": \(generator.ipv6Flows),
      "durationSeconds": \(Double(captureEnd - 1_700_000_000_000_000) / 1e6),
      "closeWaitThreshold": 5,
      "summary": {
        "flows": \(generator.started),
        "close": {\(closeJSON)},
        "threeWay": {"client-first": \(threeWayClientFirst), "server-first": \(threeWayServerFirst)},
        "findings": {"close-wait": \(closeWaits), "slow-close": \(generator.slowCloses), "fin-unacked": 0}
      }
    }

    """
if let path = options.expected {
    guard let file = fopen(path, "w") else { fail("cannot open \(path)") }
    fputs(json, file)
    fclose(file)
}
printError("capture-gen: \(generator.packetsWritten) packets, \(generator.started) flows, \(bytes) bytes -> \(options.output)")
