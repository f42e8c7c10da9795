import ArgumentParser
import FinscopeAnalysis
import FinscopeCapture
import FinscopeFindings
import FinscopeFlows
import FinscopeHost
import FinscopeReport
import FinscopeWire

struct Analyze: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Analyze capture files (pcap or pcapng).",
        discussion: """
            Several files are merged in timestamp order and analyzed as one capture.

            Examples:
              finscope analyze server.pcap
              finscope analyze --close-wait-threshold 30 --filter 'tcp port 8282' server.pcapng
              finscope analyze --json rotated-*.pcap > report.json
              finscope analyze --flows captures/client-first.pcap
              finscope analyze --ladder all-findings server.pcap
              finscope analyze --ladder 10.0.0.5:40112 server.pcap
              finscope analyze --export leaked.pcap --html report.html server.pcap
              finscope analyze --ndjson server.pcap      # one JSON line per connection
              finscope analyze --csv server.pcap > flows.csv

            Colours only when stdout is a terminal and NO_COLOR is unset; a progress line on
            stderr (a terminal only) for captures that take more than a second.
            """
    )

    @Argument(help: "Capture files to read (.pcap or .pcapng).")
    var files: [String]

    @Flag(name: .long, help: "Print the SPEC's JSON report (schema 1) instead of text.")
    var json = false

    @Option(name: .long, help: "Seconds in CLOSE_WAIT (or with a FIN unacknowledged) that make a finding.")
    var closeWaitThreshold: Double = Double(FlowTracker.Defaults.closeWaitThreshold) / 1e9

    @Option(name: .long, help: "A BPF filter expression (pcap-filter(7)), e.g. 'tcp port 8282'.")
    var filter: String?

    @Flag(name: .long, help: "Name the processes holding stuck sockets from this host's /proc (for a capture taken here, while the sockets are still stuck).")
    var proc = false

    @Flag(name: .long, help: "Run open findings to the stop the capture tool recorded (pcapng isb_endtime, as `finscope live --write x.pcapng` and dumpcap write it) instead of the last frame: reproduces the live report's durations.")
    var toCaptureStop = false

    @Flag(name: .long, help: "List every connection with its close kind and both endpoints' state paths.")
    var flows = false

    @Option(name: .long, help: "The most connections tracked at once; beyond it the least recently active are reported early and dropped.")
    var maxFlows: Int = FlowTracker.Defaults.maxFlows

    @Flag(name: .long, help: "Print one JSON object per connection as it finishes (the --json flow objects), then a summary object.")
    var ndjson = false

    @Flag(name: .long, help: "Print one CSV row per connection (id, addresses, roles, times, close, states, findings).")
    var csv = false

    @Option(name: .long, help: ArgumentHelp(
        "Draw a connection's closing exchange as a ladder diagram: a flow id, ADDR:PORT of either endpoint ([v6]:port), or all-findings.",
        valueName: "flow"))
    var ladder: [String] = []

    @Option(name: .long, help: ArgumentHelp("Write the packets of every connection with a finding to a new pcap file (for Wireshark).",
                                            valueName: "file.pcap"))
    var export: String?

    @Option(name: .long, help: ArgumentHelp(
        "With --export: the connections to write, by close kind (client-first, reset, half-closed, ...) or finding kind (close-wait, slow-close, fin-unacked), or all. Repeatable.",
        valueName: "kind"))
    var exportFlows: [String] = []

    @Option(name: .long, help: ArgumentHelp("Write a self-contained HTML report (timeline, groups, ladders).", valueName: "file.html"))
    var html: String?

    @Flag(name: .long, help: "Print only the findings (nothing when there are none); no progress line.")
    var quiet = false

    func validate() throws {
        // At most a century: seconds × 10^9 must fit the 64-bit nanosecond clock.
        guard closeWaitThreshold >= 0, closeWaitThreshold <= 3_155_760_000 else {
            throw ValidationError("--close-wait-threshold must be a number of seconds from 0 to 3155760000 (a century)")
        }
        guard maxFlows >= 1 else { throw ValidationError("--max-flows must be at least 1") }
        try validateOutputs()
    }

    /// The analysis as the options ask for it; the second pass (ladders, exports) uses the
    /// same, so that it numbers flows as the first did.
    var analysisOptions: AnalysisOptions {
        // Only flows with findings need their reports kept, unless an output lists every flow.
        AnalysisOptions(closeWaitThreshold: Nanoseconds((closeWaitThreshold * 1e9).rounded()),
                        filter: filter, retainAllFlows: json || flows || needsEveryFlow, maxFlows: maxFlows)
    }

    func run() throws {
        let options = analysisOptions
        let progress = quiet ? nil : ProgressLine(name: files.count == 1 ? files[0] : "\(files.count) files")
        var hooks = AnalysisHooks(progress: progress.map { line in { line.update($0) } })
        if ndjson, !proc, !toCaptureStop { hooks.finished = { writeOut(NDJSONReport.flowLine($0)) } }
        var result: AnalysisResult
        var pipeline: Pipeline?
        do {
            (result, pipeline) = try OfflineAnalysis.analyzeKeepingPipeline(paths: files, options: options, hooks: hooks)
        } catch let error as CaptureError {
            progress?.clear()
            printError("finscope: error: \(error)")
            throw ExitCode(2)
        }
        progress?.clear()
        if toCaptureStop, let pipeline, let stopped = result.source.stoppedAt, stopped > (result.source.end ?? stopped) {
            result = pipeline.result(end: stopped)
        }
        if proc, let pipeline { hostView(&result, pipeline: pipeline) }
        for warning in result.source.warnings { printError("finscope: warning: \(warning)") }
        // Files first, so they are written whichever report goes to stdout.
        if let export { try exportPackets(result, to: export) }
        if let html { try writeHTML(result, to: html) }
        if json {
            print(JSONReport.render(result))
        } else if try writeStdoutFormat(result) {
            return
        } else {
            writeOut(TextReport(showFlows: flows, quiet: quiet, style: TerminalStyle(enabled: stdoutWantsColor())).render(result))
        }
    }
}

extension Analyze {
    /// `--proc`: the kernel's view now (SPEC §7). Findings whose socket is still in CLOSE_WAIT
    /// get `kernel` and run to the check — the open flows are reported again as of the check,
    /// so a flow below the threshold at the last frame but stuck now is a close-wait finding;
    /// CLOSE_WAIT sockets the capture does not explain are `kernelSockets`; owners are named,
    /// and findings without one say why.
    func hostView(_ result: inout AnalysisResult, pipeline: Pipeline) {
        do {
            let scan = try KernelSocketTable.readForReport()
            let checkedAt = Nanoseconds((scan.checkedAt * 1e9).rounded())
            let recheck = pipeline.result(end: max(checkedAt, result.source.end ?? checkedAt))
            let tracked = pipeline.withTracker { $0.trackedEndpoints() }
            var host = HostView(captures: SocketFilter(expression: filter).captures)
            host.apply(scan, to: &result, recheck: recheck, tracked: tracked)
        } catch {
            HostView.noteFailure(error, on: &result)
            ProcessAttribution.annotateFromProc(&result)
        }
        if json || ndjson || csv, let host = result.host {
            for line in [host.failure].compactMap({ $0 }) + host.unseen + host.unattributed {
                printError("finscope: note: \(line)")
            }
        }
    }
}

