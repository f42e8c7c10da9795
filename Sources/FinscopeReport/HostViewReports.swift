#if canImport(Glibc)
import Glibc
#endif
import FinscopeFindings
import FinscopeFlows
import FinscopeWire

// The host's own view (SPEC §7) in the JSON and text reports: kept apart from the
// renderers so that they change by one call each.

extension JSONReport {
    /// `"kernel": {"state", "checkedAt"}` on a finding the kernel confirmed.
    static func kernelField(_ finding: Finding, _ json: JSONWriter) {
        guard let kernel = finding.kernel else { return }
        json.key("kernel")
        json.beginObject()
        json.field("state", kernel.state)
        json.timeField("checkedAt", kernel.checkedAt)
        json.endObject()
    }

    /// Inside a `process` object: `exited`, and the container and namespace when known.
    static func processExtras(_ process: OwningProcess, _ json: JSONWriter) {
        json.field("exited", process.exited)
        if let container = process.containerID { json.field("containerID", container) }
        if let netns = process.netns { json.field("netns", Int(truncatingIfNeeded: netns)) }
    }

    static func process(_ process: OwningProcess?, _ json: JSONWriter) {
        guard let process else { return json.null() }
        json.beginObject()
        json.field("pid", Int(process.pid))
        json.field("command", process.command)
        processExtras(process, json)
        json.endObject()
    }

    /// A group's `"kernelSockets": N`.
    static func groupKernelFields(_ group: FindingGroup, _ json: JSONWriter) {
        json.field("kernelSockets", group.kernelSockets)
    }

    /// The top-level `kernelSockets` array (live mode and `--proc`), and `host`: what the
    /// kernel scan could not see.
    static func hostFields(_ result: AnalysisResult, _ json: JSONWriter) {
        guard let host = result.host else { return }
        json.key("kernelSockets")
        json.beginArray()
        for socket in result.kernelSockets {
            json.element()
            kernelSocket(socket, json)
        }
        json.endArray()
        json.key("host")
        json.beginObject()
        json.timeField("checkedAt", host.checkedAt)
        json.key("unseen"); strings(host.unseen, json)
        json.key("unattributed"); strings(host.unattributed, json)
        if let failure = host.failure { json.field("failure", failure) }
        json.endObject()
    }

    static func kernelSocket(_ socket: KernelSocketReport, _ json: JSONWriter) {
        json.beginObject()
        json.key("local"); address(socket.local, json)
        json.key("remote"); address(socket.remote, json)
        json.field("state", socket.state)
        json.timeField("atLeastSeconds", socket.atLeast)
        json.key("process"); process(socket.process, json)
        json.field("netns", socket.netns.map { Int(truncatingIfNeeded: $0) })
        json.field("role", socket.role.rawValue)
        json.endObject()
    }

    /// `source.stoppedAt`: when the capture tool says it stopped (pcapng `isb_endtime`).
    static func sourceExtras(_ source: SourceSummary, _ json: JSONWriter) {
        if let stopped = source.stoppedAt { json.timeField("stoppedAt", stopped) }
    }
}

extension TextReport {
    /// The kernel sockets of `group` (stuck before the capture started), with their owners.
    public func kernelLines(_ group: FindingGroup) -> String {
        guard group.kernelSockets > 0 else { return "" }
        var out = "    " + counted(group.kernelSockets, "socket") + " stuck before the capture started (kernel)"
        if let most = group.maxKernelAtLeast { out += ", at least \(durationText(most))" }
        out += ": " + group.kernelMembers.prefix(8).map { "\($0.local.port)" }.joined(separator: ", ")
            + (group.kernelSockets > 8 ? " … (+\(group.kernelSockets - 8) more)" : "") + "\n"
        var counts: [OwningProcess: Int] = [:]
        var unknown = 0
        for socket in group.kernelMembers {
            if let process = socket.process { counts[process, default: 0] += 1 } else { unknown += 1 }
        }
        for (process, count) in counts.sorted(by: { $0.value != $1.value ? $0.value > $1.value : $0.key.pid < $1.key.pid }) {
            out += "    " + Self.ownerText(process, count: count, group: group) + "\n"
        }
        if unknown > 0 { out += "    owner unknown for \(counted(unknown, "kernel socket"))\n" }
        return out
    }

    /// "java (pid 4242, exited, netns 4026532…) holds 3 sockets in CLOSE_WAIT to 10.0.0.5:8282: java -jar app.jar".
    static func ownerText(_ process: OwningProcess, count: Int, group: FindingGroup) -> String {
        let name = process.command.split(separator: " ").first.map { String($0.split(separator: "/").last ?? $0) } ?? "?"
        var about = "pid \(process.pid)"
        if process.exited { about += ", exited" }
        if let container = process.containerID { about += ", container \(container.prefix(12))" }
        if let netns = process.netns, netns != Self.ownNamespace { about += ", netns \(netns)" }
        return "\(name) (\(about)) \(process.exited ? "held" : "holds") \(counted(count, "socket")) in CLOSE_WAIT "
            + "\(group.role == .client ? "to" : "of") \(group.service): \(process.command)"
    }

    /// This process's network namespace inode (a namespace other than this one is named).
    static let ownNamespace: UInt64? = {
        var info = stat()
        return stat("/proc/self/ns/net", &info) == 0 ? UInt64(info.st_ino) : nil
    }()

    /// What the host's view could not see, and the findings it could not name an owner for.
    public func hostLines(_ result: AnalysisResult) -> String {
        guard let host = result.host else { return "" }
        var lines: [String] = []
        if let failure = host.failure { lines.append(failure) }
        lines += host.unseen.map { "not seen: " + $0 }
        lines += host.unattributed
        guard !lines.isEmpty else { return "" }
        return "Host view\n" + lines.map { "  " + $0 + "\n" }.joined() + "\n"
    }

    /// Offline hints for an empty stuck section: endpoints in CLOSE_WAIT for less than the
    /// threshold when the capture ended, and a capture tool's later stop time.
    public func belowThresholdLines(_ result: AnalysisResult) -> String {
        var out = ""
        let below = result.closeWaitBelowThreshold
        if !below.isEmpty {
            let most = below.max()!
            let live = result.source.kind == .live
            out += "\(counted(below.count, "endpoint")) \(below.count == 1 ? "was" : "were") in CLOSE_WAIT "
                + "\(live ? "at this report" : "when the capture ended") for less than the threshold (up to \(durationText(most))): "
                + (live ? "they become findings if they stay. " : "the capture may have stopped too soon; ")
                + "--close-wait-threshold \(Self.lowerThreshold(most)) lowers the threshold.\n"
        }
        if let stopped = result.source.stoppedAt, let end = result.source.end, stopped > end {
            out += "The capture tool recorded its stop at \(utcText(stopped)), \(durationText(stopped - end)) after the last frame "
                + "(pcapng isb_endtime): an endpoint in CLOSE_WAIT at the last frame stayed so at least that much longer "
                + "(times here run to the last frame).\n"
        }
        return out.isEmpty ? "" : out + "\n"
    }

    /// A threshold (seconds, as text) just below `duration`.
    static func lowerThreshold(_ duration: Nanoseconds) -> String {
        let seconds = Double(duration) / 1e9
        let lower = seconds >= 1 ? (seconds * 10).rounded(.down) / 10 : (seconds * 1000).rounded(.down) / 1000
        return lower == lower.rounded() ? String(Int(lower)) : String(lower)
    }
}

extension FindingGroup {
    /// A group of kernel sockets only: "127.0.0.1 (client) → 127.0.0.1:8282" (the count follows on its own line).
    public var kernelHeadline: String {
        let side = role == .client ? "\(endpointIP) (client) → \(service)" : "\(service) (server) ← "
            + (Set(kernelMembers.map(\.remote.ip)).count == 1 ? "\(kernelMembers[0].remote.ip)" : "\(Set(kernelMembers.map(\.remote.ip)).count) client addresses")
        return side
    }
}

extension TextReport {
    /// "3 of them still in CLOSE_WAIT in the kernel at 12:00:01.5 UTC" for confirmed findings.
    public func confirmedLine(_ group: FindingGroup, flowsByID: [Int: FlowReport]) -> String {
        let confirmed = group.flowIDs.compactMap { flowsByID[$0].flatMap(group.finding(in:))?.kernel }
        guard let last = confirmed.map(\.checkedAt).max() else { return "" }
        return "    kernel: \(confirmed.count == group.flowCount ? "all \(counted(confirmed.count, "socket"))" : "\(confirmed.count) of them") "
            + "still in CLOSE_WAIT at \(utcText(last))\n"
    }
}

extension TextReport {
    /// The report while live capture runs: "so far", never "when the capture ended".
    public static var ongoingReport: TextReport {
        var report = TextReport()
        report.ongoing = true
        return report
    }
}

extension TextReport {
    /// "STUCK IN CLOSE_WAIT — 2 connections (threshold 5.0 s) + 3 sockets stuck before the capture started (kernel)".
    func kernelTitle(_ kind: FindingKind, connections: Int, kernel: Int, threshold: String) -> String {
        let sockets = "\(counted(kernel, "socket")) stuck before the capture started (kernel)"
        guard connections > 0 else { return "\(heading(kind)) — \(sockets)" }
        return "\(heading(kind)) — \(counted(connections, "connection")) (threshold \(threshold)) + \(sockets)"
    }
}
