import CPcap
import FinscopeWire
import Foundation

/// A libpcap live capture: frames go to the same `FrameHandler` as the file sources'.
///
/// Opened with `pcap_create` + `pcap_activate`: a snapshot length that keeps every header
/// finscope reads (not payload), a 100 ms buffer timeout (the kernel hands packets over a
/// block at a time, when a block fills or 100 ms after it opened: one wake-up per block, not
/// per packet as in immediate mode, which cost the capture half its highest loss-free rate
/// on loopback — Scripts/bench-live; reports are at most that much behind, and the stop waits
/// for the last block), and a 32 MiB kernel buffer against drops.
/// The read loop runs on the thread that calls `run`; `stop()` may be called from any
/// thread (a signal source) and only sets a flag and calls `pcap_breakloop`.
public final class LiveSource: @unchecked Sendable {
    public struct Options: Sendable {
        public var interface: String
        /// A BPF expression (pcap-filter(7)); finscope only needs TCP.
        public var filter = "tcp"
        /// Every header finscope reads (Ethernet + two VLAN tags + IPv6 with extension headers +
        /// TCP with options: up to ~150 bytes) and the start of the payload, where the request
        /// line, Host and User-Agent sit (an Apache HttpClient request's User-Agent ends at
        /// payload byte ~190): 512 keeps them on IPv6 with a VLAN tag (docs/live.md).
        public var snapLength: Int32 = 512
        public var bufferSize: Int32 = 32 << 20
        public var timeoutMilliseconds: Int32 = 100
        public var promiscuous = false
        /// Stop after this many packets (`-c`, as tcpdump counts: those the filter passed).
        public var maxPackets: Int?

        public init(interface: String, filter: String = "tcp", maxPackets: Int? = nil) {
            self.interface = interface
            self.filter = filter
            self.maxPackets = maxPackets
        }
    }

    public let options: Options
    public let linkType: Int32
    public let link: LinkKind
    /// Libpcap warnings met while opening (e.g. the buffer size was capped).
    public private(set) var warnings: [String] = []
    private let handle: OpaquePointer
    private let nanosecondStamps: Bool
    private var dump: PcapDumpFile?
    /// `--write FILE.pcapng`: our own pcapng writer (libpcap's dump API writes pcap only).
    private var pcapng: PcapNGWriter?
    private let stopLock = NSLock()
    private var stopRequested = false
    private var stopCount = 0
    public private(set) var readError: String?

    public init(options: Options) throws {
        self.options = options
        var errorBuffer = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
        guard let handle = pcap_create(options.interface, &errorBuffer) else {
            throw CaptureError.captureFailed(interface: options.interface, reason: Self.text(errorBuffer))
        }
        _ = pcap_set_snaplen(handle, options.snapLength)
        _ = pcap_set_promisc(handle, options.promiscuous ? 1 : 0)
        _ = pcap_set_timeout(handle, options.timeoutMilliseconds)
        _ = pcap_set_buffer_size(handle, options.bufferSize)
        let precisionSet = pcap_set_tstamp_precision(handle, Int32(PCAP_TSTAMP_PRECISION_NANO)) == 0
        let status = pcap_activate(handle)
        if status < 0 {
            let message = String(cString: pcap_geterr(handle))
            pcap_close(handle)
            switch status {
            case PCAP_ERROR_PERM_DENIED:
                // Without permission libpcap fails before looking at the name: say which is wrong.
                if let devices = try? CaptureDevice.all().map(\.name), !devices.contains(options.interface) {
                    throw CaptureError.noSuchInterface(name: options.interface, available: devices)
                }
                throw CaptureError.noPermission(interface: options.interface)
            case PCAP_ERROR_NO_SUCH_DEVICE:
                throw CaptureError.noSuchInterface(name: options.interface,
                                                   available: (try? CaptureDevice.all().map(\.name)) ?? [])
            default:
                if message.contains("Operation not permitted") || message.contains("ermission denied") {
                    throw CaptureError.noPermission(interface: options.interface)
                }
                throw CaptureError.captureFailed(interface: options.interface, reason: message)
            }
        }
        if status > 0 { warnings.append(String(cString: pcap_geterr(handle))) }
        self.handle = handle
        nanosecondStamps = precisionSet && pcap_get_tstamp_precision(handle) == Int32(PCAP_TSTAMP_PRECISION_NANO)
        linkType = pcap_datalink(handle)
        guard let link = LinkKind(linkType: linkType) else {
            let name = pcap_datalink_val_to_name(linkType).map { String(cString: $0) } ?? "unknown"
            pcap_close(handle)
            throw CaptureError.unsupportedLinkType(source: options.interface, linkType: linkType, name: name)
        }
        self.link = link
        // Every property is set from here on: deinit closes the handle on a throw.
        let program = try BPFProgram(expression: options.filter, handle: handle)
        do {
            try program.install(on: handle)
        } catch {
            throw CaptureError.badFilter(expression: options.filter, reason: String(cString: pcap_geterr(handle)))
        }
    }

    deinit {
        dump = nil
        pcap_close(handle)
    }

    /// Whether this process may capture on `interface` (opens and closes it).
    public static func canCapture(on interface: String = "lo") -> Bool {
        (try? LiveSource(options: Options(interface: interface))) != nil
    }

    /// Also saves every captured packet to a pcap file (flushed at each report and at the stop).
    public func write(to path: String) throws {
        if path.lowercased().hasSuffix(".pcapng") {
            pcapng = try PcapNGWriter(path: path, linkType: linkType, snapLength: options.snapLength, interface: options.interface)
        } else {
            dump = try PcapDumpFile(path: path, handle: handle)
        }
    }

    /// Asks the read loop to stop (from any thread); returns how many times it was asked.
    @discardableResult
    public func stop() -> Int {
        stopLock.lock()
        stopRequested = true
        stopCount += 1
        let count = stopCount
        stopLock.unlock()
        pcap_breakloop(handle)
        return count
    }

    private var isStopRequested: Bool {
        stopLock.lock()
        defer { stopLock.unlock() }
        return stopRequested
    }

    /// libpcap's counters: packets dropped for lack of buffer space, and by the interface.
    public func statistics() -> (dropped: Int, interfaceDropped: Int)? {
        var stats = pcap_stat()
        guard pcap_stats(handle, &stats) == 0 else { return nil }
        return (Int(stats.ps_drop), Int(stats.ps_ifdrop))
    }

    /// Reads frames into `handler` until `stop()` or `deadline`, calling `tick` every
    /// `interval` (on this thread, between reads). At the stop it drains what libpcap and
    /// the kernel already hold, so every packet captured before the stop is analyzed.
    /// Returns the stop time (wall clock, nanoseconds since the epoch).
    public func run(sink: UnsafeMutableRawPointer, handler: FrameHandler, deadline: Nanoseconds?,
                    interval: Nanoseconds?, tick: (Nanoseconds) -> Void) -> Nanoseconds {
        run(sink: sink, handler: handler, callback: Self.callback, deadline: deadline, interval: interval, tick: tick)
    }

    /// The same loop with the consumer's own libpcap callback (the fast path, as for files:
    /// no `Frame`, no indirect call per frame). `callback` receives a pointer to a `Loop` as
    /// its `user` argument and starts with `Loop.admit`.
    public func run(sink: UnsafeMutableRawPointer, callback: pcap_handler, deadline: Nanoseconds?,
                    interval: Nanoseconds?, tick: (Nanoseconds) -> Void) -> Nanoseconds {
        run(sink: sink, handler: nil, callback: callback, deadline: deadline, interval: interval, tick: tick)
    }

    private func run(sink: UnsafeMutableRawPointer, handler: FrameHandler?, callback: pcap_handler, deadline: Nanoseconds?,
                     interval: Nanoseconds?, tick: (Nanoseconds) -> Void) -> Nanoseconds {
        var context = Loop(sink: sink, handler: handler, link: link, nano: nanosecondStamps,
                           dumper: dump?.dumper, packetsLeft: options.maxPackets ?? Int.max, pcapng: pcapng?.file)
        let startTime = Self.now()
        return withUnsafeMutablePointer(to: &context) { context in
            let user = UnsafeMutableRawPointer(context).assumingMemoryBound(to: UInt8.self)
            var nextTick = interval.map { Self.now() + $0 }
            var stopTime: Nanoseconds = 0
            // Non-blocking reads behind our own poll(2): libpcap's blocking read on Linux may not
            // return at its timeout when no packet comes, and the loop must notice stops and ticks.
            var errorBuffer = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
            _ = pcap_setnonblock(handle, 1, &errorBuffer)
            let descriptor = pcap_get_selectable_fd(handle)
            while true {
                var wait = Int32(options.timeoutMilliseconds)
                if let due = nextTick { wait = Int32(clamping: min(Int64(wait), max(0, (due - Self.now()) / 1_000_000 + 1))) }
                if let deadline { wait = Int32(clamping: min(Int64(wait), max(0, (deadline - Self.now()) / 1_000_000 + 1))) }
                if descriptor >= 0 {
                    var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
                    _ = poll(&entry, 1, wait)
                } else {
                    usleep(UInt32(wait) * 1_000)
                }
                let status = pcap_dispatch(handle, -1, callback, user)
                if status == PCAP_ERROR {
                    readError = String(cString: pcap_geterr(handle))
                    stopTime = Self.now()
                    break
                }
                let now = Self.now()
                if isStopRequested || context.pointee.packetsLeft == 0 {
                    stopTime = now
                    break
                }
                if let deadline, now >= deadline {
                    stopTime = deadline
                    break
                }
                if let due = nextTick, let interval, now >= due {
                    dump?.flush()
                    pcapng?.flush()
                    tick(now)
                    nextTick = max(due + interval, now)
                }
            }
            // Drain: packets already delivered to the ring buffer before the stop. Frames stamped
            // after the stop are left out, and the drain ends at the first of them (or after a
            // bounded number of batches), so a busy link cannot keep it going.
            context.pointee.stopTime = stopTime
            if readError == nil {
                var waited = false
                for _ in 0..<4_096 {
                    let status = pcap_dispatch(handle, -1, callback, user)
                    if context.pointee.pastStop { break }
                    if status == 0, !waited, descriptor >= 0 {
                        // The block holding the last packets before the stop is handed over
                        // when its buffer timeout passes: wait for it once.
                        waited = true
                        var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
                        _ = poll(&entry, 1, Int32(options.timeoutMilliseconds) + 50)
                        continue
                    }
                    if status <= 0, status != PCAP_ERROR_BREAK { break }
                }
            }
            dump = nil
            if let pcapng {
                let stats = statistics()
                pcapng.finish(start: startTime, end: stopTime, received: nil, dropped: stats.map { UInt64($0.dropped + $0.interfaceDropped) })
                self.pcapng = nil
            }
            return stopTime
        }
    }

    /// The per-frame state behind libpcap's `user` pointer: a plain struct, like the file
    /// sources', so the live path pays no retain/release either.
    public struct Loop {
        public let sink: UnsafeMutableRawPointer
        let handler: FrameHandler?
        public let link: LinkKind
        @usableFromInline let nano: Bool
        let dumper: OpaquePointer?
        let pcapng: UnsafeMutablePointer<FILE>?
        /// A `-w` file is written (`dumper` or `pcapng`).
        @usableFromInline let records: Bool
        /// Frames still to analyze (`maxPackets`); at 0 the loop stops and later frames are left out.
        @usableFromInline var packetsLeft: Int
        /// Set when the loop stops: frames stamped later are not analyzed.
        @usableFromInline var stopTime = Nanoseconds.max
        @usableFromInline var pastStop = false

        init(sink: UnsafeMutableRawPointer, handler: FrameHandler?, link: LinkKind, nano: Bool, dumper: OpaquePointer?,
             packetsLeft: Int, pcapng: UnsafeMutablePointer<FILE>?) {
            self.sink = sink
            self.handler = handler
            self.link = link
            self.nano = nano
            self.dumper = dumper
            self.pcapng = pcapng
            records = dumper != nil || pcapng != nil
            self.packetsLeft = packetsLeft
        }

        /// A callback's first step: the frame's time when it is to be analyzed (counted against
        /// `maxPackets`, written to the `-w` file), nil when it came after the stop. Inlined
        /// into the consumer's callback.
        @inlinable @inline(__always)
        public mutating func admit(_ header: UnsafePointer<pcap_pkthdr>, _ data: UnsafePointer<UInt8>) -> Nanoseconds? {
            let time = FrameTime.nanoseconds(header.pointee.ts, nanosecondPrecision: nano)
            if time > stopTime || packetsLeft == 0 {
                pastStop = true
                return nil
            }
            packetsLeft -= 1
            if records { record(header, data, time: time) }
            return time
        }

        /// Writes the frame to the `-w` file.
        @usableFromInline
        func record(_ header: UnsafePointer<pcap_pkthdr>, _ data: UnsafePointer<UInt8>, time: Nanoseconds) {
            if let dumper {
                pcap_dump(UnsafeMutableRawPointer(dumper).assumingMemoryBound(to: UInt8.self), header, data)
            } else if let pcapng {
                PcapNGWriter.writePacket(pcapng, time: time, captured: header.pointee.caplen, original: header.pointee.len, data: data)
            }
        }
    }

    /// The `FrameHandler` form's callback.
    private static let callback: pcap_handler = { user, header, data in
        guard let user, let header, let data else { return }
        let loop = UnsafeMutableRawPointer(user).assumingMemoryBound(to: Loop.self)
        guard let time = loop.pointee.admit(header, data), let handler = loop.pointee.handler else { return }
        var frame = Frame(bytes: UnsafeRawBufferPointer(start: data, count: Int(header.pointee.caplen)),
                          wireLength: Int(header.pointee.len), time: time, link: loop.pointee.link)
        withUnsafePointer(to: &frame) { handler(loop.pointee.sink, UnsafeRawPointer($0)) }
    }

    /// The wall clock (the clock libpcap stamps packets with), in nanoseconds since the epoch.
    public static func now() -> Nanoseconds {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Nanoseconds(spec.tv_sec) * 1_000_000_000 + Nanoseconds(spec.tv_nsec)
    }

    static func text(_ buffer: [CChar]) -> String {
        buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }
}

/// A pcap file written through libpcap's dump API (`--export`, `live --write`).
public final class PcapDumpFile {
    let dumper: OpaquePointer
    private let dead: OpaquePointer?
    public let path: String
    public let linkType: Int32
    public let nanosecondPrecision: Bool

    /// A file for the frames of a live handle (its link type and snapshot length).
    init(path: String, handle: OpaquePointer) throws {
        guard let dumper = pcap_dump_open(handle, path) else {
            throw CaptureError.cannotWrite(path: path, reason: Self.reason(String(cString: pcap_geterr(handle)), path: path))
        }
        self.dumper = dumper
        dead = nil
        self.path = path
        linkType = pcap_datalink(handle)
        nanosecondPrecision = pcap_get_tstamp_precision(handle) == Int32(PCAP_TSTAMP_PRECISION_NANO)
    }

    /// A new file of `linkType` frames.
    public init(path: String, linkType: Int32, snapLength: Int32, nanosecondPrecision: Bool) throws {
        guard let dead = pcap_open_dead_with_tstamp_precision(
            linkType, snapLength, UInt32(nanosecondPrecision ? PCAP_TSTAMP_PRECISION_NANO : PCAP_TSTAMP_PRECISION_MICRO)) else {
            throw CaptureError.cannotWrite(path: path, reason: "libpcap cannot write link type \(linkType)")
        }
        guard let dumper = pcap_dump_open(dead, path) else {
            let reason = Self.reason(String(cString: pcap_geterr(dead)), path: path)
            pcap_close(dead)
            throw CaptureError.cannotWrite(path: path, reason: reason)
        }
        self.dumper = dumper
        self.dead = dead
        self.path = path
        self.linkType = linkType
        self.nanosecondPrecision = nanosecondPrecision
    }

    deinit {
        pcap_dump_flush(dumper)
        pcap_dump_close(dumper)
        if let dead { pcap_close(dead) }
    }

    /// Writes one frame with its original time and lengths.
    public func write(_ frame: Frame) {
        var header = pcap_pkthdr()
        header.ts = FrameTime.timeval(frame.time, nanosecondPrecision: nanosecondPrecision)
        header.caplen = UInt32(frame.bytes.count)
        header.len = UInt32(max(frame.wireLength, frame.bytes.count))
        guard let bytes = frame.bytes.baseAddress else { return }
        pcap_dump(UnsafeMutableRawPointer(dumper).assumingMemoryBound(to: UInt8.self), &header,
                  bytes.assumingMemoryBound(to: UInt8.self))
    }

    /// Flushes buffered frames to the file.
    public func flush() {
        pcap_dump_flush(dumper)
    }

    /// Flushes, and throws when the write failed (a full disk).
    public func finish() throws {
        guard pcap_dump_flush(dumper) == 0 else { throw CaptureError.cannotWrite(path: path, reason: "write failed") }
    }

    /// libpcap's "PATH: No such file or directory" without the path the error already names.
    static func reason(_ message: String, path: String) -> String {
        message.hasPrefix(path + ": ") ? String(message.dropFirst(path.count + 2)) : message
    }
}
