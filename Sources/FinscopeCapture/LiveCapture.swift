import CPcap
import FinscopeFlows
import FinscopeWire
import Foundation

/// Why a live capture could not start. Each says what is wrong and what to do, in one line.
public enum LiveCaptureError: Error, Equatable, CustomStringConvertible {
    case noPermission(interface: String, detail: String)
    case noSuchInterface(name: String, available: [String])
    case unsupportedLinkType(interface: String, linkType: Int32, name: String)
    case cannotWrite(path: String, reason: String)
    case failed(interface: String, reason: String)

    public var description: String {
        switch self {
        case .noPermission(let interface, _):
            return "no permission to capture on \(interface): run finscope with sudo, or give the binary the capture "
                + "capabilities: sudo setcap cap_net_raw,cap_net_admin+eip \"$(command -v finscope)\""
        case .noSuchInterface(let name, let available):
            let list = available.isEmpty ? "none visible" : available.joined(separator: ", ")
            return "no capture interface named '\(name)'; available: \(list) (see finscope interfaces)"
        case .unsupportedLinkType(let interface, let linkType, let name):
            return "cannot analyze \(interface): link type \(name) (\(linkType)) is not supported; finscope decodes "
                + LinkKind.decodedNames
        case .cannotWrite(let path, let reason):
            return "cannot write \(path): \(reason)"
        case .failed(let interface, let reason):
            return "cannot capture on \(interface): \(reason)"
        }
    }
}

/// A libpcap live capture feeding the same `Pipeline` as the offline analysis.
///
/// Opened with `pcap_create` + `pcap_activate`: a snapshot length that keeps every header
/// finscope reads (not payload), immediate mode (each packet delivered at once, so a stop
/// misses nothing and reports are current), a 100 ms timeout so the loop notices a stop or
/// a report tick even when the link is quiet, and a 32 MiB kernel buffer against drops.
/// The read loop runs on the thread that calls `run`; `stop()` may be called from any
/// thread (a signal source) and only sets a flag and calls `pcap_breakloop`.
public final class LiveCapture: @unchecked Sendable {
    public struct Options: Sendable {
        public var interface: String
        /// A BPF expression (pcap-filter(7)); finscope only needs TCP.
        public var filter = "tcp"
        /// Ethernet + two VLAN tags + IPv6 with extension headers + TCP with options fit.
        public var snapLength: Int32 = 256
        public var bufferSize: Int32 = 32 << 20
        public var timeoutMilliseconds: Int32 = 100
        public var promiscuous = false

        public init(interface: String, filter: String = "tcp") {
            self.interface = interface
            self.filter = filter
        }
    }

    public let options: Options
    public let linkType: Int32
    public let link: LinkKind
    /// Libpcap warnings met while opening (e.g. the buffer size was capped).
    public private(set) var warnings: [String] = []
    private let handle: OpaquePointer
    private let nanosecondStamps: Bool
    private var dumper: OpaquePointer?
    private let stopLock = NSLock()
    private var stopRequested = false
    private var stopCount = 0
    public private(set) var readError: String?

    public init(options: Options) throws {
        self.options = options
        var errorBuffer = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
        guard let handle = pcap_create(options.interface, &errorBuffer) else {
            throw LiveCaptureError.failed(interface: options.interface, reason: Self.text(errorBuffer))
        }
        _ = pcap_set_snaplen(handle, options.snapLength)
        _ = pcap_set_promisc(handle, options.promiscuous ? 1 : 0)
        _ = pcap_set_timeout(handle, options.timeoutMilliseconds)
        _ = pcap_set_immediate_mode(handle, 1)
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
                    throw LiveCaptureError.noSuchInterface(name: options.interface, available: devices)
                }
                throw LiveCaptureError.noPermission(interface: options.interface, detail: message)
            case PCAP_ERROR_NO_SUCH_DEVICE:
                throw LiveCaptureError.noSuchInterface(name: options.interface,
                                                       available: (try? CaptureDevice.all().map(\.name)) ?? [])
            default:
                if message.contains("Operation not permitted") || message.contains("ermission denied") {
                    throw LiveCaptureError.noPermission(interface: options.interface, detail: message)
                }
                throw LiveCaptureError.failed(interface: options.interface, reason: message)
            }
        }
        if status > 0 { warnings.append(String(cString: pcap_geterr(handle))) }
        self.handle = handle
        nanosecondStamps = precisionSet && pcap_get_tstamp_precision(handle) == Int32(PCAP_TSTAMP_PRECISION_NANO)
        linkType = pcap_datalink(handle)
        guard let link = LinkKind(linkType: linkType) else {
            let name = pcap_datalink_val_to_name(linkType).map { String(cString: $0) } ?? "unknown"
            pcap_close(handle)
            throw LiveCaptureError.unsupportedLinkType(interface: options.interface, linkType: linkType, name: name)
        }
        self.link = link
        var program = bpf_program()
        guard pcap_compile(handle, &program, options.filter, 1, PCAP_NETMASK_UNKNOWN) == 0 else {
            // Every property is set: deinit closes the handle.
            throw CaptureError.badFilter(expression: options.filter, reason: String(cString: pcap_geterr(handle)))
        }
        defer { pcap_freecode(&program) }
        guard pcap_setfilter(handle, &program) == 0 else {
            // Every property is set: deinit closes the handle.
            throw CaptureError.badFilter(expression: options.filter, reason: String(cString: pcap_geterr(handle)))
        }
    }

    deinit {
        closeDump()
        pcap_close(handle)
    }

    /// Whether this process may capture on `interface` (opens and closes it).
    public static func canCapture(on interface: String = "lo") -> Bool {
        (try? LiveCapture(options: Options(interface: interface))) != nil
    }

    /// Also saves every captured packet to a pcap file (flushed at each report and at the stop).
    public func write(to path: String) throws {
        guard let dumper = pcap_dump_open(handle, path) else {
            throw LiveCaptureError.cannotWrite(path: path, reason: String(cString: pcap_geterr(handle)))
        }
        self.dumper = dumper
    }

    private func closeDump() {
        if let dumper {
            pcap_dump_flush(dumper)
            pcap_dump_close(dumper)
            self.dumper = nil
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

    /// Reads packets into `pipeline` until `stop()` or `deadline`, calling `tick` every
    /// `interval` (on this thread, between reads). At the stop it drains what libpcap and
    /// the kernel already hold, so every packet captured before the stop is analyzed.
    /// Returns the stop time (wall clock, nanoseconds since the epoch).
    public func run(into pipeline: Pipeline, deadline: Nanoseconds?, interval: Nanoseconds?,
                    tick: (Nanoseconds) -> Void) -> Nanoseconds {
        let context = Unmanaged.passRetained(Context(pipeline: pipeline, link: link, nano: nanosecondStamps, dumper: dumper))
        defer { context.release() }
        let user = UnsafeMutableRawPointer(context.toOpaque()).assumingMemoryBound(to: UInt8.self)
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
            let status = pcap_dispatch(handle, -1, Self.callback, user)
            if status == PCAP_ERROR {
                readError = String(cString: pcap_geterr(handle))
                stopTime = Self.now()
                break
            }
            let now = Self.now()
            if isStopRequested {
                stopTime = now
                break
            }
            if let deadline, now >= deadline {
                stopTime = deadline
                break
            }
            if let due = nextTick, let interval, now >= due {
                if let dumper { pcap_dump_flush(dumper) }
                tick(now)
                nextTick = max(due + interval, now)
            }
        }
        // Drain: packets already delivered to the ring buffer before the stop. Frames stamped
        // after the stop are left out, and the drain ends at the first of them (or after a
        // bounded number of batches), so a busy link cannot keep it going.
        context.takeUnretainedValue().stopTime = stopTime
        if readError == nil {
            for _ in 0..<4_096 {
                let status = pcap_dispatch(handle, -1, Self.callback, user)
                if context.takeUnretainedValue().pastStop { break }
                if status <= 0, status != PCAP_ERROR_BREAK { break }
            }
        }
        closeDump()
        return stopTime
    }

    private final class Context {
        let pipeline: Pipeline
        let link: LinkKind
        let nano: Bool
        let dumper: OpaquePointer?
        /// Set when the loop stops: frames stamped later are not analyzed.
        var stopTime = Nanoseconds.max
        var pastStop = false
        init(pipeline: Pipeline, link: LinkKind, nano: Bool, dumper: OpaquePointer?) {
            self.pipeline = pipeline
            self.link = link
            self.nano = nano
            self.dumper = dumper
        }
    }

    private static let callback: pcap_handler = { user, header, data in
        guard let user, let header, let data else { return }
        let context = Unmanaged<Context>.fromOpaque(user).takeUnretainedValue()
        let ts = header.pointee.ts
        let fraction = Nanoseconds(ts.tv_usec)
        let time = PcapFileReader.time(seconds: Int64(ts.tv_sec), nanoseconds: context.nano ? fraction : fraction &* 1_000)
        if time > context.stopTime {
            context.pastStop = true
            return
        }
        if let dumper = context.dumper {
            pcap_dump(UnsafeMutableRawPointer(dumper).assumingMemoryBound(to: UInt8.self), header, data)
        }
        context.pipeline.handle(UnsafeRawBufferPointer(start: data, count: Int(header.pointee.caplen)),
                                wireLength: Int(header.pointee.len), time: time, link: context.link)
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
