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
              finscope analyze -r server.pcap --fail-on close-wait   # exit 3 on a leak (CI, cron)

            Colours only when stdout is a terminal and NO_COLOR is unset; a progress line on
            stderr (a terminal only) for captures that take more than a second.

            \(ExitStatus.summary)
            """
    )

    @Argument(help: ArgumentHelp("Capture files to read: pcap or pcapng, optionally gzip/zstd/xz-compressed; - for standard input.", valueName: "file"),
              completion: .file())
    var fileArguments: [String] = []

    @Option(name: .customShort("r"), help: ArgumentHelp("A capture file to read, as tcpdump -r takes it (repeatable; with the files named after the options).", valueName: "file"),
            completion: .file())
    var read: [String] = []

    @Flag(name: .long, help: "Print the SPEC's JSON report (schema 1) instead of text.")
    var json = false

    @Option(name: .long, parsing: .unconditional,
            help: ArgumentHelp("How long in CLOSE_WAIT (or with a FIN unacknowledged) makes a finding. \(timeUnitsHelp)",
                               valueName: "time"))
    var closeWaitThreshold = TimeValue(seconds: Double(FlowTracker.Defaults.closeWaitThreshold) / 1e9)

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

    @Option(name: .long, help: ArgumentHelp("Exit with status 3 when the report holds such a finding: close-wait, or any-finding (close-wait, slow-close, fin-unacked).",
                                            valueName: "kind"))
    var failOn: FailOn?

    @Flag(name: .long, help: "Fail (exit 2) when any named file cannot be read, instead of warning and analyzing the others.")
    var strict = false

    @Option(name: .long, help: ArgumentHelp(
        "Threads for the analysis of files: 2 reads and decodes on one CPU and follows the connections on another (the same results, sooner when a second CPU is free; for uncompressed classic pcap files); 1 uses one. Default: 2 when two CPUs are usable, else 1.",
        valueName: "n"))
    var threads: Int?

    /// The files to read: `-r` first, then the words after the options.
    var inputs: [InputPath] { InputPaths.resolve(read + fileArguments) }

    /// The paths the readers open (the second pass, for ladders and exports, too).
    var files: [String] { inputs.map(\.open) }

    func validate() throws {
        guard !read.isEmpty || !fileArguments.isEmpty else {
            throw ValidationError("name a capture file to read: finscope analyze FILE... (or -r FILE)")
        }
        // 0 is allowed: every CLOSE_WAIT is then a finding.
        try closeWaitThreshold.check("--close-wait-threshold", zeroAllowed: true, zeroMeans: "every CLOSE_WAIT counts")
        guard maxFlows >= 1 else { throw ValidationError("--max-flows must be at least 1: got \(maxFlows)") }
        if let threads, !(1...2).contains(threads) {
            throw ValidationError("--threads must be 1 or 2 (reading and decoding, following the connections): got \(threads)")
        }
        try validateOutputs()
    }

    /// The analysis as the options ask for it; the second pass (ladders, exports) uses the
    /// same, so that it numbers flows as the first did.
    var analysisOptions: AnalysisOptions {
        // Only flows with findings need their reports kept, unless an output lists every flow.
        var options = AnalysisOptions(closeWaitThreshold: Nanoseconds((closeWaitThreshold.seconds * 1e9).rounded()),
                                      filter: filter, retainAllFlows: flows || needsEveryFlow, maxFlows: maxFlows)
        // Two threads when a second CPU is usable: 0.25 s against 0.36 s for one on the 1M
        // bench file when the machine was quiet (docs/performance.md, issue 15). Inputs that
        // cannot be split (compressed, standard input, pcapng) stay on one whatever this says.
        options.threads = (threads ?? 2) >= 2 && OfflineAnalysis.usableProcessors >= 2 ? 2 : 1
        return options
    }

    func run() throws {
        let inputs = inputs
        if let expression = TrailingFilter.expression(in: fileArguments) {
            printError(TrailingFilter.message(expression))
            throw ExitCode(ExitStatus.noInput)
        }
        if strict { try checkEveryFileOpens(inputs) }
        var options = analysisOptions
        // `-` (standard input) is spooled as it is read when a second pass will need it.
        options.keepStandardInput = !ladder.isEmpty || export != nil || html != nil
        let progress = quiet ? nil : ProgressLine(name: inputs.count == 1 ? Names.escapingControls(inputs[0].name, keepingLineBreaks: false) : "\(inputs.count) files")
        var hooks = AnalysisHooks(progress: progress.map { line in { line.update($0) } })
        let machine = machineOutput()
        defer { machine?.close() }
        if let machine, streamsFlows { hooks.finished = machine.flow }
        var result: AnalysisResult
        var pipeline: Pipeline?
        do {
            (result, pipeline) = try OfflineAnalysis.analyzeKeepingPipeline(paths: files, options: options, hooks: hooks)
        } catch let error as CaptureError {
            progress?.clear()
            machine?.out.discard()  // no CSV header (or partial document) before the error
            printError("finscope: error: \(InputPaths.naming(error.description, inputs))")
            throw ExitCode(ExitStatus.noInput)
        }
        progress?.clear()
        result = InputPaths.naming(result, inputs)
        if toCaptureStop, let pipeline, let stopped = result.source.stoppedAt, stopped > (result.source.end ?? stopped) {
            result = pipeline.result(end: stopped)
        }
        if proc, let pipeline { hostView(&result, pipeline: pipeline) }
        for warning in result.source.warnings { printError("finscope: warning: \(warning)") }
        // Files first, so they are written whichever report goes to stdout.
        if let export { try exportPackets(result, to: export) }
        if let html { try writeHTML(result, to: html) }
        if let machine {
            try writeMachineOutput(result, machine)
        } else if try !writeStdoutFormat(result) {
            writeText(TextReport(showFlows: flows, quiet: quiet, style: TerminalStyle(enabled: stdoutWantsColor()),
                                width: stdoutColumns())
                .render(Names.forText(result)))
        }
        try FailOn.check(failOn, result)
    }

    /// `--strict`: every named file must open as a capture, or nothing is analyzed.
    func checkEveryFileOpens(_ inputs: [InputPath]) throws {
        // Standard input can be read only once: the analysis reads it.
        for input in inputs where input.open != "-" {
            do {
                _ = try CaptureFiles.open(path: input.open, filter: nil)
            } catch let error as CaptureError {
                printError("finscope: error: \(InputPaths.naming(error.description, inputs)) (--strict)")
                throw ExitCode(ExitStatus.noInput)
            }
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

