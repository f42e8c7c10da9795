import ArgumentParser
import FinscopeAnalysis
import FinscopeCapture
import FinscopeFindings
import FinscopeFlows
import FinscopeReport
import FinscopeWire

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `analyze`'s outputs besides the text report: JSON, NDJSON, CSV, ladders, the pcap export
/// and the HTML page.
extension Analyze {
    func validateOutputs() throws {
        let modes = [json, ndjson, csv, !ladder.isEmpty].filter { $0 }.count
        guard modes <= 1 else { throw ValidationError("choose one of --json, --ndjson, --csv and --ladder") }
        if !exportFlows.isEmpty, export == nil { throw ValidationError("--export-flows needs --export FILE.pcap") }
        let kinds = Set(CloseKind.allCases.map(\.rawValue) + FindingKind.allCases.map(\.rawValue) + ["all"])
        for kind in exportFlows where !kinds.contains(kind) {
            throw ValidationError("--export-flows \(kind): not a close kind or finding kind (one of \(kinds.sorted().joined(separator: ", ")))")
        }
        for target in ladder where target != "all-findings" && Int(target) == nil && LadderTarget.address(target) == nil {
            throw ValidationError("--ladder \(target): give a flow id (see --flows), ADDR:PORT ([v6]:port) or all-findings")
        }
    }

    /// `--json`, `--ndjson` and `--csv` take each flow as it finishes, so no flow's report
    /// is kept for them; not with `--proc` or `--to-capture-stop`, whose open flows are
    /// reported again at the end (as of the kernel check, or the capture tool's stop).
    var streamsFlows: Bool { (json || ndjson || csv) && !proc && !toCaptureStop }

    /// Outputs that need every flow's report, not only those with findings.
    var needsEveryFlow: Bool {
        html != nil || ((json || ndjson || csv) && !streamsFlows) || ladder.contains { $0 != "all-findings" }
            || exportFlows.contains { FindingKind(rawValue: $0) == nil }
    }

    /// The machine format's writer on stdout (nil for text and ladders); with `--json` and
    /// streaming, a spool for the flows, which come before the groups but must wait for the
    /// summary that precedes them.
    func machineOutput() -> MachineOutput? {
        guard json || ndjson || csv else { return nil }
        let out = JSONWriter.standardOutput()
        if csv { out.rawText(CSVReport.header) }
        let format: MachineOutput.Format = json ? .json : ndjson ? .ndjson : .csv
        return MachineOutput(format: format, out: out, spool: json && streamsFlows ? JSONWriter.spool() : nil)
    }

    /// The rest of the machine format, after the analysis: flows not streamed, the summary.
    func writeMachineOutput(_ result: AnalysisResult, _ machine: MachineOutput) throws {
        let out = machine.out
        switch machine.format {
        case .json:
            if let spool = machine.spool {
                JSONReport.write(result, spooledFlows: spool, to: out)
            } else {
                JSONReport.write(result, to: out)
            }
            out.newline()
        case .ndjson:
            if !streamsFlows { for flow in result.flows { NDJSONReport.writeFlowLine(flow, to: out) } }
            NDJSONReport.writeSummaryLine(result, to: out)
        case .csv:
            if !streamsFlows { for flow in result.flows { CSVReport.writeRow(flow, to: out) } }
        }
        out.flush()
        if let spool = machine.spool, spool.failure != 0 {
            printError("finscope: error: cannot keep the --json flows in a temporary file: \(String(cString: strerror(spool.failure)))")
            throw ExitCode(2)
        }
    }

    /// Writes the one stdout format other than text and the machine formats that was asked
    /// for (ladders), if any; true when stdout got its output here.
    func writeStdoutFormat(_ result: AnalysisResult) throws -> Bool {
        guard !ladder.isEmpty else { return false }
        try drawLadders(result, style: TerminalStyle(enabled: stdoutWantsColor()))
        return true
    }

    /// The flows `--ladder` names, with a note when an address matched several.
    func ladderFlows(_ result: AnalysisResult) -> [(flow: FlowReport, title: String)] {
        let byID = result.flowsByID
        var chosen: [(flow: FlowReport, title: String)] = []
        for target in ladder {
            if target == "all-findings" {
                for group in result.groups {
                    guard let first = group.flowIDs.first, let flow = byID[first] else { continue }
                    chosen.append((flow, "\(group.kind.rawValue): \(group.headline), \(group.connectionsText); the first:"))
                }
            } else if let id = Int(target) {
                if let flow = byID[id] { chosen.append((flow, "")) } else { printError("finscope: --ladder \(id): no such flow") }
            } else if let address = LadderTarget.address(target) {
                let matches = result.flows.filter { $0.client == address || $0.server == address }
                guard let pick = matches.first(where: { !$0.findings.isEmpty }) ?? matches.first else {
                    printError("finscope: --ladder \(target): no connection has that endpoint")
                    continue
                }
                if matches.count > 1 {
                    printError("finscope: \(matches.count) connections have endpoint \(target); drawing #\(pick.id)"
                        + "\(pick.findings.isEmpty ? "" : " (the first with a finding)"); --ladder ID draws another")
                }
                chosen.append((pick, ""))
            }
        }
        return chosen
    }

    /// One ladder per chosen flow, from a second pass over the capture.
    func ladderTexts(_ result: AnalysisResult, chosen: [(flow: FlowReport, title: String)],
                     style: TerminalStyle) throws -> [String] {
        guard !chosen.isEmpty else { return [] }
        let packets = try FlowPackets.segments(paths: files, options: analysisOptions, flows: chosen.map(\.flow))
        return chosen.map { flow, title in
            let segments = (packets[flow.id] ?? []).map {
                LadderSegment(time: $0.time, segment: $0.segment, placement: $0.placement)
            }
            let text = Ladder.render(Ladder.model(flow, segments: segments), captureEnd: result.source.end, style: style)
            return title.isEmpty ? text : style.bold(title) + "\n" + text
        }
    }

    func drawLadders(_ result: AnalysisResult, style: TerminalStyle) throws {
        let chosen = ladderFlows(result)
        if chosen.isEmpty, ladder.contains("all-findings") {
            writeText("No findings: nothing to draw (--ladder ID draws any connection; --flows lists them).\n")
        }
        do {
            writeText(try ladderTexts(result, chosen: chosen, style: style).joined(separator: "\n"))
        } catch let error as CaptureError {
            printError("finscope: error: \(error)")
            throw ExitCode(2)
        }
    }

    func exportPackets(_ result: AnalysisResult, to path: String) throws {
        let kinds = Set(exportFlows)
        let selected = result.flows.filter { flow in
            if kinds.isEmpty { return !flow.findings.isEmpty }
            return kinds.contains("all") || kinds.contains(flow.close.rawValue)
                || flow.findings.contains { kinds.contains($0.kind.rawValue) }
        }
        do {
            let summary = try FlowPackets.export(paths: files, options: analysisOptions, flows: selected, to: path)
            if summary.otherLinkType > 0 {
                printError("finscope: warning: \(summary.otherLinkType) packets of other link types left out of \(path)")
            }
            if !quiet {
                printError("finscope: wrote \(grouped(summary.packets)) packets of \(grouped(selected.count)) connection"
                    + "\(selected.count == 1 ? "" : "s") to \(path)")
            }
        } catch let error as CaptureError {
            printError("finscope: error: \(error)")
            throw ExitCode(2)
        }
    }

    func writeHTML(_ result: AnalysisResult, to path: String) throws {
        let byID = result.flowsByID
        let firsts: [(flow: FlowReport, title: String)] = result.groups.prefix(12).compactMap { group in
            guard let first = group.flowIDs.first, let flow = byID[first] else { return nil }
            return (flow, "\(group.kind.rawValue): \(group.headline), flow #\(flow.id), the first of \(group.connectionsText)")
        }
        let texts = (try? ladderTexts(result, chosen: firsts.map { ($0.flow, "") }, style: .plain)) ?? []
        let blocks = zip(firsts, texts).map { HTMLReport.LadderBlock(title: $0.title, text: $1) }
        guard let file = fopen(path, "w") else {
            printError("finscope: error: cannot write \(path): \(String(cString: strerror(errno)))")
            throw ExitCode(2)
        }
        fputs(HTMLReport.render(result, ladders: blocks), file)
        fclose(file)
        if !quiet { printError("finscope: wrote \(path)") }
    }
}

/// `--json`, `--ndjson` or `--csv` on stdout. Its `flow` is the tracker's finished handler:
/// each flow goes out (or into the JSON spool) as it leaves the flow table.
struct MachineOutput {
    enum Format { case json, ndjson, csv }
    let format: Format
    let out: JSONWriter
    let spool: JSONWriter?

    func flow(_ flow: FlowReport) {
        switch format {
        case .json: if let spool { JSONReport.spool(flow, into: spool) }
        case .ndjson: NDJSONReport.writeFlowLine(flow, to: out)
        case .csv: CSVReport.writeRow(flow, to: out)
        }
    }

    func close() {
        out.close()
        spool?.close()
    }
}
