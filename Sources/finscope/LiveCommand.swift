import ArgumentParser
import FinscopeAnalysis
import FinscopeCapture
import FinscopeFindings
import FinscopeFlows
import FinscopeHost
import FinscopeReport
import Foundation

#if canImport(Glibc)
import Glibc
import FinscopeWire
#endif

struct Live: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Capture on an interface and name the endpoints stuck in CLOSE_WAIT, with the process holding them.",
        discussion: """
            Reports the endpoints stuck in CLOSE_WAIT every --report-every seconds while it runs, \
            and a full report at the stop (Ctrl-C, SIGTERM or the end of --duration). When a stuck \
            endpoint is on this host, its socket is looked up in /proc and the process holding it \
            is named (--no-proc turns that off).

            Needs capture permission: run it with sudo (it drops root to the invoking user once \
            the capture is open, or to --user), or give the binary the capabilities once:
              sudo setcap cap_net_raw,cap_net_admin+eip "$(command -v finscope)"

            As with tcpdump, the words after the options are the filter, -w saves the packets \
            and -c stops after a number of packets; without -i it captures on 'any' (every \
            interface) and says so. Times take a unit: 500ms, 30s, 5m, 1h (a bare number is \
            seconds).

            Examples:
              sudo finscope live -i eth0
              sudo finscope live -i eth0 tcp port 8282 --report-every 30s
              sudo finscope live -i lo --duration 1m --json > report.json
              sudo finscope live -i eth0 -w leak.pcap            # also save the packets
              sudo finscope live -c 1000 --fail-on close-wait   # exit 3 on a leak (cron)

            \(ExitStatus.summary)
            """
    )

    @Option(name: [.customShort("i"), .customLong("interface")],
            help: ArgumentHelp("The interface to capture on (see finscope interfaces; default: any, every interface).",
                               valueName: "interface"),
            completion: .custom { _, _, _ in Self.interfaceNames() })
    var interfaceOption: String?

    /// `-i`, or `any` when it was not given.
    var interface: String { interfaceOption ?? "any" }

    @Option(name: .customLong("filter"), help: ArgumentHelp("A BPF filter expression (pcap-filter(7)); or give it as the words after the options, as tcpdump takes it (default: tcp).",
                                                           valueName: "expression"))
    var filterOption: String?

    @Argument(help: ArgumentHelp("The filter as tcpdump takes it: the words after the options (finscope live -i eth0 tcp port 8282).",
                                 valueName: "expression"))
    var expression: [String] = []

    /// `--filter`, or the words after the options, or `tcp`.
    var filter: String { filterOption ?? (expression.isEmpty ? "tcp" : expression.joined(separator: " ")) }

    @Option(name: [.customShort("s"), .customLong("snaplen")], help: ArgumentHelp(
        "Bytes kept of each packet, as tcpdump -s: the default 512 holds every header and the request line, Host and User-Agent (the code path); 128 for headers only.",
        valueName: "bytes"))
    var snapLength: Int32 = 512

    @Option(name: [.customShort("c"), .customLong("count")], help: ArgumentHelp("Stop after this many packets (those the filter passed), as tcpdump -c does.", valueName: "count"))
    var count: Int?

    @Option(name: .customLong("duration"), parsing: .unconditional,
            help: ArgumentHelp("Stop after this long (default: run until Ctrl-C, SIGTERM or -c). \(timeUnitsHelp)", valueName: "time"))
    var durationOption: TimeValue?

    var duration: Double? { durationOption?.seconds }

    @Option(name: .customLong("report-every"), parsing: .unconditional,
            help: ArgumentHelp("Time between the reports printed while capturing (0: none). \(timeUnitsHelp)", valueName: "time"))
    var reportEveryOption = TimeValue(seconds: 10)

    var reportEvery: Double { reportEveryOption.seconds }

    @Option(name: .customLong("close-wait-threshold"), parsing: .unconditional,
            help: ArgumentHelp("How long in CLOSE_WAIT (or with a FIN unacknowledged) makes a finding. \(timeUnitsHelp)", valueName: "time"))
    var closeWaitThresholdOption = TimeValue(seconds: 5)

    var closeWaitThreshold: Double { closeWaitThresholdOption.seconds }

    @Flag(name: .long, help: "Print the final report as the SPEC's JSON (schema 1); reports while running go to stderr.")
    var json = false

    @Flag(name: .long, help: "Print the final report as NDJSON: one line per flow, then a summary line.")
    var ndjson = false

    @Option(name: [.customShort("w"), .long], help: ArgumentHelp("Also save the captured packets to this pcap file, as tcpdump -w does.", valueName: "file"),
            completion: .file())
    var write: String?

    @Flag(name: .customLong("no-proc"), help: "Do not look up the processes holding stuck sockets in /proc.")
    var noProc = false

    @Option(name: .long, help: "Drop root to this user once the capture is open (default: the sudo user).")
    var user: String?

    @Option(name: .customLong("idle-timeout"), parsing: .unconditional,
            help: ArgumentHelp("How long a connection with no packets is kept before it is reported and forgotten. \(timeUnitsHelp)", valueName: "time"))
    var idleTimeoutOption = TimeValue(seconds: 300)

    var idleTimeout: Double { idleTimeoutOption.seconds }

    @Option(name: .long, help: "The most connections tracked at once; beyond it the least recently active are dropped.")
    var maxFlows: Int = 1_000_000

    @Option(name: .long, help: ArgumentHelp("Exit with status 3 when the final report holds such a finding: close-wait, or any-finding.",
                                            valueName: "kind"))
    var failOn: FailOn?

    @Option(name: .long, help: ArgumentHelp("Serve Prometheus metrics at http://ADDRESS:PORT/metrics while capturing (127.0.0.1:9464, [::]:9464, :9464).", valueName: "address:port"))
    var metrics: String?

    @Option(name: .long, help: "The most label sets per metric for --metrics; the rest are summed into service=\"other\".")
    var metricsMaxGroups: Int = 100

    func validate() throws {
        guard !(json && ndjson) else { throw ValidationError("--json and --ndjson are exclusive") }
        if filterOption != nil, !expression.isEmpty {
            throw ValidationError("give the filter once: with --filter or as the words after the options, not both "
                + "(got --filter '\(filterOption!)' and '\(expression.joined(separator: " "))')")
        }
        try closeWaitThresholdOption.check("--close-wait-threshold", zeroAllowed: true, zeroMeans: "every CLOSE_WAIT counts")
        try reportEveryOption.check("--report-every", zeroAllowed: true, zeroMeans: "no reports while capturing")
        try idleTimeoutOption.check("--idle-timeout")
        try durationOption?.check("--duration")
        guard snapLength >= 96, snapLength <= 262_144 else {
            throw ValidationError("-s/--snaplen must be from 96 (every header) to 262144 bytes: got \(snapLength)")
        }
        if let count, count < 1 { throw ValidationError("-c must be at least 1 packet: got \(count)") }
        guard maxFlows >= 1 else { throw ValidationError("--max-flows must be at least 1: got \(maxFlows)") }
        guard metricsMaxGroups >= 1 else { throw ValidationError("--metrics-max-groups must be at least 1: got \(metricsMaxGroups)") }
    }

    /// The interfaces `-i` completes to: libpcap's devices, as `finscope interfaces` lists them.
    static func interfaceNames() -> [String] {
        (try? CaptureDevice.all().map(\.name)) ?? ["any", "lo"]
    }

    func run() throws {
        let target: PrivilegeDrop.Target?
        do {
            target = try PrivilegeDrop.target(user: user)
        } catch {
            printError("finscope: error: \(error)")
            throw ExitCode(2)
        }

        let capture: LiveSource
        do {
            if interfaceOption == nil { printError("finscope: no -i given: capturing on any (every interface)") }
            var options = LiveSource.Options(interface: interface, filter: filter, maxPackets: count)
            options.snapLength = snapLength
            capture = try LiveSource(options: options)
        } catch {
            printError("finscope: error: \(error)")
            throw ExitCode(2)
        }
        for warning in capture.warnings { printError("finscope: warning: \(warning)") }

        // Attribution: in this process, unless root is dropped; then a helper that keeps root.
        var attribution: Attribution = noProc ? .off : .inProcess
        if let target, !noProc {
            do {
                attribution = .helper(try AttributionHelper(executable: Self.executablePath()))
            } catch {
                printError("finscope: warning: cannot start the /proc helper (\(error)); "
                    + "processes of users other than \(target.name) will not be named")
            }
        }
        // Every exit from here on, the error paths included, reaps the helper.
        defer { if case .helper(let helper) = attribution { helper.stop() } }
        if let target {
            do {
                try PrivilegeDrop.drop(to: target)
            } catch {
                printError("finscope: error: \(error)")
                throw ExitCode(2)
            }
        }
        if let write {
            do {
                try capture.write(to: write)
            } catch {
                printError("finscope: error: \(error)")
                throw ExitCode(2)
            }
        }

        // A dead /proc helper must not kill the capture through SIGPIPE: its write fails instead.
        signal(SIGPIPE, SIG_IGN)
        // Signals only ask the capture loop to stop; a second one exits at once.
        var sources: [DispatchSourceSignal] = []
        for number in [SIGINT, SIGTERM] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                if capture.stop() > 1 { _exit(128 + number) }
            }
            source.resume()
            sources.append(source)
        }
        defer { sources.forEach { $0.cancel() } }

        let threshold = Nanoseconds((closeWaitThreshold * 1e9).rounded())
        let options = AnalysisOptions(closeWaitThreshold: threshold, filter: filter, retainAllFlows: false,
                                      maxFlows: maxFlows, idleTimeout: Nanoseconds((idleTimeout * 1e9).rounded()))
        let pipeline = Pipeline(source: SourceSummary(kind: .live, name: interface),
                                configuration: options.trackerConfiguration)
        let start = LiveSource.now()
        pipeline.noteTime(start)
        let deadline = duration.map { start + Nanoseconds(($0 * 1e9).rounded()) }
        let interval = reportEvery > 0 ? Nanoseconds((reportEvery * 1e9).rounded()) : nil
        // --metrics (LiveMetrics.swift): the endpoint, and a tick at least every second that publishes to it.
        let liveMetrics: LiveMetrics?
        do {
            liveMetrics = try metrics.map { try LiveMetrics(address: $0, maxGroups: metricsMaxGroups, reportInterval: interval, start: start) }
        } catch {
            printError("finscope: error: \(error)")
            throw ExitCode(2)
        }
        defer { liveMetrics?.stop() }
        var banner = "finscope: capturing on \(interface) (filter '\(filter)')"
        if let target { banner += ", running as \(target.name)" }
        if let duration { banner += " for \(durationText(Nanoseconds(duration * 1e9)))" }
        printError(banner + "; Ctrl-C to stop")

        let toStderr = json || ndjson
        func emit(_ text: String) {
            if toStderr { FileHandle.standardError.write(Data(text.utf8)) } else { print(text, terminator: ""); fflush(nil) }
        }
        // The host's view (SPEC §7): kept across the reports, so owners outlive their process.
        var host = HostView(captures: SocketFilter(expression: filter).captures)
        // NDJSON streams each flow line as the flow finishes (flows with findings), not at the stop.
        var streamed = Set<Int>()
        // JSON and NDJSON go through the one writer, straight to stdout; each streamed line
        // is flushed at once, for a log shipper reading as it comes.
        let out = (json || ndjson) ? JSONWriter.standardOutput() : nil
        defer { out?.close() }
        if ndjson, let out {
            pipeline.withTracker { tracker in
                tracker.finishedHandler = { report in
                    guard !report.findings.isEmpty else { return }
                    streamed.insert(report.id)
                    NDJSONReport.writeFlowLine(report, to: out)
                    out.flush()
                }
            }
        }
        // The report at the start: what is already stuck (the kernel's view).
        if !noProc {
            var initial = pipeline.result(end: start)
            let scanned = applyHost(&host, to: &initial, attribution: attribution, pipeline: pipeline)
            emit(startReport(initial, scanned: scanned))
            if ndjson, let out {
                for socket in initial.kernelSockets { NDJSONReport.writeKernelSocketLine(socket, to: out) }
                out.flush()
            }
        }
        let stop = pipeline.run(capture, deadline: deadline,
                                interval: LiveMetrics.tickInterval(report: interval, metrics: liveMetrics)) { now in
            pipeline.withTracker { $0.expire(now: now) }
            updateCounters(pipeline, capture)
            if let liveMetrics {
                liveMetrics.publish(pipeline, now: now, attribution: attribution)
                guard liveMetrics.reportDue(now: now) else { return }
            }
            emit(progressReport(pipeline, now: now, attribution: attribution, host: &host))
        }
        for source in sources { source.cancel() }

        updateCounters(pipeline, capture)
        pipeline.noteTime(stop)
        var result = pipeline.result(end: stop)
        var unreadable: [UInt32: Int] = [:]
        if !noProc {
            let scanned = applyHost(&host, to: &result, attribution: attribution, pipeline: pipeline)
            if scanned == nil { unreadable = attribution.annotate(&result) }
        }
        let (tracked, finished) = pipeline.withTracker { ($0.trackedFlows, $0.finishedFlows) }
        liveMetrics?.publish(result, flowsTracked: tracked, finished: finished)
        if case .helper(let helper) = attribution { helper.stop() }
        if let error = capture.readError {
            result.source.warnings.append("capture stopped on an error: \(error)")
        }
        for warning in result.source.warnings { printError("finscope: warning: \(warning)") }
        if !unreadable.isEmpty { printError("finscope: note: " + unreadableNote(unreadable)) }
        if json, let out {
            JSONReport.write(result, to: out)
            out.newline()
        } else if ndjson, let out {
            for flow in result.flows where !streamed.contains(flow.id) { NDJSONReport.writeFlowLine(flow, to: out) }
            NDJSONReport.writeSummaryLine(result, to: out)
        } else {
            print(TextReport().render(result), terminator: "")
        }
        if capture.readError != nil { throw ExitCode(ExitStatus.failedMidRun) }
        try FailOn.check(failOn, result)
    }

    /// The report printed every --report-every seconds: counters, then the endpoints stuck
    /// in CLOSE_WAIT past the threshold now, grouped as in the final report.
    func progressReport(_ pipeline: Pipeline, now: Nanoseconds, attribution: Attribution, host: inout HostView) -> String {
        var result = pipeline.result(end: now)
        // Owners are sampled at every report, not only at the end (a restart may end the leak).
        var scanned: Nanoseconds?
        if !noProc {
            scanned = applyHost(&host, to: &result, attribution: attribution, pipeline: pipeline)
            if scanned == nil { _ = attribution.annotate(&result) }
        }
        result.updateFlows { flows in
            flows = flows.compactMap { flow in
                var flow = flow
                flow.findings = flow.findings.filter { $0.kind == .closeWait }
                return flow.findings.isEmpty ? nil : flow
            }
        }
        let stuck = result
        let source = stuck.source
        var out = "-- \(utcText(now)): \(counted(source.packets, "packet")), \(counted(source.tcpSegments, "TCP segment")), "
            + "\(counted(pipeline.withTracker { $0.trackedFlows }, "connection")) tracked, dropped \(grouped(source.dropped ?? 0)) "
            + "by libpcap and \(grouped(source.interfaceDropped ?? 0)) by the interface"
            + (scanned.map { ", kernel scan \(durationText($0))" } ?? "") + "\n"
        if stuck.groups.isEmpty {
            if stuck.closeWaitBelowThreshold.isEmpty {
                out += "No endpoint in CLOSE_WAIT for \(durationText(stuck.closeWaitThreshold)) or more so far.\n\n"
            } else {
                out += TextReport.ongoingReport.belowThresholdLines(stuck)
            }
        } else {
            out += TextReport.ongoingReport.findingsSection(stuck)
        }
        out += TextReport.ongoingReport.hostLines(stuck)
        return out
    }

    /// The report at the start: the sockets already stuck in CLOSE_WAIT (kernel), grouped.
    func startReport(_ result: AnalysisResult, scanned: Nanoseconds?) -> String {
        let start = result.source.start ?? LiveSource.now()
        var out = "-- \(utcText(start)): at the start"
        if let scanned { out += " (kernel scan \(durationText(scanned)))" }
        out += ": "
        if result.kernelSockets.isEmpty {
            out += result.host?.failure == nil ? "no socket in CLOSE_WAIT that the capture would see.\n\n"
                : "the kernel's socket table could not be read.\n\n"
        } else {
            out += "\(counted(result.kernelSockets.count, "socket")) already in CLOSE_WAIT\n"
            out += TextReport.ongoingReport.findingsSection(result)
        }
        return out + TextReport.ongoingReport.hostLines(result)
    }

    /// Reads the kernel's socket tables (through the helper when root was dropped) and applies
    /// them to `result`; returns how long the scan took, nil when it failed (noted on the result).
    func applyHost(_ host: inout HostView, to result: inout AnalysisResult, attribution: Attribution,
                   pipeline: Pipeline) -> Nanoseconds? {
        let began = LiveSource.now()
        do {
            let scan = try attribution.kernelScan()
            let took = LiveSource.now() - began
            let tracked = pipeline.withTracker { $0.trackedEndpoints() }
            host.apply(scan, to: &result, tracked: tracked)
            return took
        } catch {
            HostView.noteFailure(error, on: &result)
            return nil
        }
    }

    func updateCounters(_ pipeline: Pipeline, _ capture: LiveSource) {
        if let stats = capture.statistics() {
            pipeline.source.dropped = stats.dropped
            pipeline.source.interfaceDropped = stats.interfaceDropped
        } else {
            pipeline.source.dropped = pipeline.source.dropped ?? 0
            pipeline.source.interfaceDropped = pipeline.source.interfaceDropped ?? 0
        }
    }

    func unreadableNote(_ unreadable: [UInt32: Int]) -> String {
        let parts = unreadable.sorted { $0.key < $1.key }.map { uid, count in
            let name = getpwuid(uid).map { String(cString: $0.pointee.pw_name) } ?? "uid \(uid)"
            return "\(grouped(count)) held by \(name)"
        }
        return "stuck sockets whose process could not be read (" + parts.joined(separator: ", ")
            + "): reading another user's /proc/PID/fd needs root; run without --user, or as that user"
    }

    static func executablePath() throws -> String {
        try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
    }
}

/// Where the owners of stuck sockets come from.
enum Attribution {
    case off
    case inProcess
    case helper(AttributionHelper)

    /// The kernel's CLOSE_WAIT and LISTEN sockets of every namespace, with owners: from the
    /// root helper when there is one (else, or when it is gone, read here).
    func kernelScan() throws -> KernelScan {
        if case .helper(let helper) = self, let scan = try helper.reportScan() { return scan }
        return try KernelSocketTable.readForReport()
    }

    /// Names the processes behind the close-wait findings of `result`; returns the stuck
    /// sockets found whose holder could not be read, by uid.
    func annotate(_ result: inout AnalysisResult) -> [UInt32: Int] {
        switch self {
        case .off:
            return [:]
        case .inProcess:
            return ProcessAttribution.annotateFromProc(&result)
        case .helper(let helper):
            let local = LocalAddresses.current()
            guard ProcessAttribution.wanted(result, local: local) else { return [:] }
            let owners = helper.snapshot() ?? CloseWaitOwners.read()
            return ProcessAttribution.annotate(&result, owners: owners, local: local)
        }
    }
}

/// Dropping root once the capture is open, as `tcpdump -Z` does.
enum PrivilegeDrop {
    struct Target {
        var name: String
        var uid: uid_t
        var gid: gid_t
        var knownUser: Bool
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// The user to become: `--user NAME`, else the user who ran sudo; nil to stay as we are.
    static func target(user: String?) throws -> Target? {
        if let user {
            guard geteuid() == 0 else {
                throw Failure(description: "--user \(user) needs finscope to be started as root (with sudo)")
            }
            guard let entry = getpwnam(user) else { throw Failure(description: "no such user '\(user)' for --user") }
            return Target(name: user, uid: entry.pointee.pw_uid, gid: entry.pointee.pw_gid, knownUser: true)
        }
        let environment = ProcessInfo.processInfo.environment
        guard geteuid() == 0, let uidText = environment["SUDO_UID"], let uid = uid_t(uidText), uid != 0 else { return nil }
        let entry = getpwuid(uid)
        let gid = environment["SUDO_GID"].flatMap { gid_t($0) } ?? entry?.pointee.pw_gid ?? gid_t(uid)
        let name = entry.map { String(cString: $0.pointee.pw_name) } ?? environment["SUDO_USER"] ?? "uid \(uid)"
        return Target(name: name, uid: uid, gid: gid, knownUser: entry != nil)
    }

    /// Supplementary groups, then the group, then the user; then checks root cannot come back.
    static func drop(to target: Target) throws {
        let groupsSet = target.knownUser ? initgroups(target.name, target.gid) == 0 : false
        if !groupsSet {
            var only = [target.gid]
            guard setgroups(1, &only) == 0 else { throw Failure(description: "cannot drop root: setgroups failed (errno \(errno))") }
        }
        guard setgid(target.gid) == 0 else { throw Failure(description: "cannot drop root: setgid(\(target.gid)) failed (errno \(errno))") }
        guard setuid(target.uid) == 0 else { throw Failure(description: "cannot drop root: setuid(\(target.uid)) failed (errno \(errno))") }
        guard setuid(0) != 0 else { throw Failure(description: "cannot drop root: root could be regained after setuid") }
    }
}
