import ArgumentParser
import FinscopeCapture
import FinscopeFlows
import FinscopeReport

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
            """
    )

    @Argument(help: "Capture files to read (.pcap or .pcapng).")
    var files: [String]

    @Flag(name: .long, help: "Print the SPEC's JSON report (schema 1) instead of text.")
    var json = false

    @Option(name: .long, help: "Seconds in CLOSE_WAIT (or with a FIN unacknowledged) that make a finding.")
    var closeWaitThreshold: Double = 5

    @Option(name: .long, help: "A BPF filter expression (pcap-filter(7)), e.g. 'tcp port 8282'.")
    var filter: String?

    @Flag(name: .long, help: "List every connection with its close kind and both endpoints' state paths.")
    var flows = false

    @Option(name: .long, help: "The most connections tracked at once; beyond it the least recently active are reported early and dropped.")
    var maxFlows: Int = 2_000_000

    func validate() throws {
        guard closeWaitThreshold >= 0, closeWaitThreshold.isFinite else {
            throw ValidationError("--close-wait-threshold must be a number of seconds, 0 or more")
        }
        guard maxFlows >= 1 else { throw ValidationError("--max-flows must be at least 1") }
    }

    func run() throws {
        // Without --json or --flows only flows with findings need their reports kept.
        let options = AnalysisOptions(closeWaitThreshold: Nanoseconds((closeWaitThreshold * 1e9).rounded()),
                                      filter: filter, retainAllFlows: json || flows, maxFlows: maxFlows)
        let result: AnalysisResult
        do {
            result = try OfflineAnalysis.analyze(paths: files, options: options)
        } catch let error as CaptureError {
            printError("finscope: error: \(error)")
            throw ExitCode(2)
        }
        for warning in result.source.warnings { printError("finscope: warning: \(warning)") }
        if json {
            print(JSONReport.render(result))
        } else {
            print(TextReport(showFlows: flows).render(result), terminator: "")
        }
    }
}
