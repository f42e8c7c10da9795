import FinscopeFlows
import FinscopeWire

/// The report for people: what to act on first (stuck endpoints, grouped), then how the
/// connections closed, then what the capture held.
public struct TextReport {
    public var showFlows = false
    public init(showFlows: Bool = false) { self.showFlows = showFlows }

    public func render(_ result: AnalysisResult) -> String {
        var out = ""
        let source = result.source
        var span = ""
        if let start = source.start, let end = source.end {
            span = ", \(utcText(start)) + \(durationText(end - start))"
        }
        out += "finscope: \(source.name): \(grouped(source.packets)) packets, "
            + "\(grouped(result.tally.flows)) TCP connections\(span)\n"
        for warning in source.warnings { out += "warning: \(warning)\n" }
        out += "\n"
        out += findingsSection(result)
        out += closeSection(result)
        out += captureSection(result)
        if showFlows { out += flowsSection(result) }
        return out
    }

    func findingsSection(_ result: AnalysisResult) -> String {
        let threshold = durationText(result.closeWaitThreshold)
        guard !result.groups.isEmpty else {
            return "No endpoint stayed in CLOSE_WAIT or left a FIN unacknowledged for \(threshold) or more.\n\n"
        }
        var out = ""
        let flowsByID = Dictionary(uniqueKeysWithValues: result.flows.map { ($0.id, $0) })
        for kind in FindingKind.allCases {
            let groups = result.groups.filter { $0.kind == kind }
            guard !groups.isEmpty else { continue }
            let total = groups.reduce(0) { $0 + $1.flowIDs.count }
            out += "\(heading(kind)) — \(grouped(total)) connection\(total == 1 ? "" : "s") (threshold \(threshold))\n"
            for group in groups {
                let count = group.flowIDs.count
                let ports = group.flowIDs.compactMap { flowsByID[$0]?.address(of: group.role).port }
                let portText = ports.count == 1 ? "port \(ports[0])"
                    : "ports \(ports.min()!)–\(ports.max()!)"
                out += "  \(group.endpointIP) (\(group.role.rawValue), \(portText)) ↔ \(group.peer): "
                    + "\(grouped(count)) connection\(count == 1 ? "" : "s"), "
                    + "\(durationWord(kind)) median \(durationText(group.medianDuration)), max \(durationText(group.maxDuration))\n"
                out += "    " + explanation(group, flowsByID: flowsByID) + "\n"
            }
            out += "\n"
        }
        return out
    }

    func heading(_ kind: FindingKind) -> String {
        switch kind {
        case .closeWait: return "STUCK IN CLOSE_WAIT"
        case .slowClose: return "SLOW CLOSE (CLOSE_WAIT that ended late)"
        case .finUnacked: return "FIN NEVER ACKNOWLEDGED"
        }
    }

    func durationWord(_ kind: FindingKind) -> String {
        switch kind {
        case .closeWait: return "stuck"
        case .slowClose: return "took"
        case .finUnacked: return "unanswered"
        }
    }

    func explanation(_ group: FindingGroup, flowsByID: [Int: FlowReport]) -> String {
        let who = "\(group.endpointIP) (\(group.role.rawValue))"
        let activities = Set(group.flowIDs.compactMap { id in
            flowsByID[id]?.findings.first { $0.kind == group.kind && $0.endpoint == group.role }?.activity
        })
        switch group.kind {
        case .closeWait:
            var text = "\(who) acknowledged \(group.peer)'s FIN and never closed: the program using these sockets "
                + "does not close connections its peer has closed"
            text += group.role == .client
                ? " (typically HTTP responses never released, or a pool that keeps dead connections)."
                : " (a handler that never closes, or a leaked socket)."
            if activities == [.data] { text += " It kept sending data: a half-close in use, or a program still writing." }
            return text
        case .slowClose:
            return "\(who) sat in CLOSE_WAIT before closing: a leak released late (a timeout, garbage collection or process exit)."
        case .finUnacked:
            return "\(who) sent a FIN that \(group.peer) never acknowledged: the peer is gone, or the capture missed its traffic."
        }
    }

    func closeSection(_ result: AnalysisResult) -> String {
        var out = "How connections closed\n"
        for kind in CloseKind.allCases {
            let count = result.count(kind)
            guard count > 0 else { continue }
            var line = "  " + kind.rawValue.padding(14) + grouped(count).leftPadding(8)
            if kind == .clientFirst || kind == .serverFirst {
                let three = result.tally.threeWayCount(kind)
                if three > 0 { line += "   (\(grouped(three)) three-way)" }
            }
            if kind == .reset {
                let byClient = result.tally.resetByClient
                line += "   (\(grouped(byClient)) by the client, \(grouped(count - byClient)) by the server)"
            }
            out += line + "\n"
        }
        if result.tally.flows == 0 { out += "  (no TCP connections)\n" }
        return out + "\n"
    }

    func captureSection(_ result: AnalysisResult) -> String {
        let source = result.source
        var out = "Capture\n"
        out += "  packets \(grouped(source.packets)), TCP segments \(grouped(source.tcpSegments))"
        out += " (capture duplicates \(grouped(source.duplicates)))\n"
        let skipped = SkipReason.allCases.filter { source.skippedCount($0) > 0 }
        if !skipped.isEmpty {
            out += "  skipped: " + skipped.map { "\($0.key) \(grouped(source.skippedCount($0)))" }.joined(separator: ", ") + "\n"
        }
        if let start = source.start, let end = source.end {
            out += "  from \(utcText(start)) to \(utcText(end)) (\(durationText(end - start)))\n"
        }
        if source.expiredIdle > 0 || source.evicted > 0 {
            out += "  flows dropped before the end: \(grouped(source.expiredIdle)) idle, "
                + "\(grouped(source.evicted)) evicted at the flow limit (reported as of that moment)\n"
        }
        if let dropped = source.dropped {
            out += "  dropped by libpcap \(grouped(dropped)), by the interface \(grouped(source.interfaceDropped ?? 0))\n"
        }
        return out
    }

    func flowsSection(_ result: AnalysisResult) -> String {
        var out = "\nFlows\n"
        for flow in result.flows {
            var line = "  #\(flow.id) \(flow.client) → \(flow.server)  \(flow.close.rawValue)"
            if flow.threeWay { line += " (three-way)" }
            if let by = flow.resetBy { line += ", reset by \(by.rawValue)" }
            if flow.roles == .inferred { line += ", roles inferred" }
            out += line + "\n"
            out += "      client: " + pathText(flow.clientEndpoint) + "\n"
            out += "      server: " + pathText(flow.serverEndpoint) + "\n"
            for finding in flow.findings {
                out += "      \(finding.kind.rawValue) on the \(finding.endpoint.rawValue) for "
                    + "\(durationText(finding.duration)) (\(finding.activity.name))\n"
            }
        }
        return out
    }

    func pathText(_ endpoint: EndpointReport) -> String {
        var text = endpoint.path.isEmpty ? "(no state)" : endpoint.path.map(\.rawValue).joined(separator: " → ")
        if endpoint.finRetransmits > 0 { text += "  [FIN retransmitted \(endpoint.finRetransmits)×]" }
        return text
    }
}

extension String {
    func padding(_ width: Int) -> String {
        count >= width ? self + " " : self + String(repeating: " ", count: width - count)
    }
    func leftPadding(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
