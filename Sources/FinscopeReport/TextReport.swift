import FinscopeFindings
import FinscopeFlows
import FinscopeWire

/// The report for people: what to act on first (stuck endpoints, grouped), then how the
/// connections closed, then what the capture held.
public struct TextReport {
    public var showFlows = false
    /// Only the findings (groups, diagnoses, filters); nothing at all when there are none.
    public var quiet = false
    public var style = TerminalStyle.plain
    /// Columns to wrap at: the terminal's width when stdout is one, else 100.
    public var width = 100
    /// A report while the capture runs (live mode): durations are "so far", never "when the capture ended".
    public var ongoing = false
    public init(showFlows: Bool = false, quiet: Bool = false, style: TerminalStyle = .plain, width: Int = 100) {
        self.showFlows = showFlows
        self.quiet = quiet
        self.style = style
        self.width = max(40, width)
    }

    public func render(_ result: AnalysisResult) -> String {
        if quiet { return result.groups.isEmpty ? "" : findingsSection(result) }
        var out = ""
        let source = result.source
        var span = ""
        if let start = source.start, let end = source.end {
            span = ", \(utcText(start)) + \(durationText(end - start))"
        }
        // A long list of files (rotated captures) is summarised: "12 files: rot-00.pcap … rot-11.pcap".
        let files = source.kind == .file ? source.name.split(separator: ", ", omittingEmptySubsequences: false) : []
        let name = files.count > 3 ? "\(files.count) files: \(files[0]) … \(files[files.count - 1])" : source.name
        out += "finscope: \(name): \(counted(source.packets, "packet")), "
            + "\(counted(result.tally.flows, "TCP connection"))\(span)\n"
        for warning in source.warnings { out += "warning: \(warning)\n" }
        out += "\n"
        out += findingsSection(result)
        out += hostLines(result)
        out += closeSection(result)
        out += captureSection(result)
        if showFlows { out += flowsSection(result) }
        return out
    }

    public func findingsSection(_ result: AnalysisResult) -> String {
        let threshold = durationText(result.closeWaitThreshold)
        guard !result.groups.isEmpty else {
            let hints = belowThresholdLines(result)
            if !result.closeWaitBelowThreshold.isEmpty { return hints }
            return "No endpoint stayed in CLOSE_WAIT or left a FIN unacknowledged for \(threshold) or more.\n\n" + hints
        }
        var out = ""
        var payloadCut = false
        let flowsByID = result.flowsByID
        for kind in FindingKind.allCases {
            let groups = result.groups.filter { $0.kind == kind }
            guard !groups.isEmpty else { continue }
            let total = groups.reduce(0) { $0 + $1.flowCount }
            let kernelTotal = groups.reduce(0) { $0 + $1.kernelSockets }
            var title = "\(heading(kind)) — \(counted(total, "connection")) (threshold \(threshold))"
            if kernelTotal > 0 { title = kernelTitle(kind, connections: total, kernel: kernelTotal, threshold: threshold) }
            out += (kind == .closeWait ? style.red(title) : style.yellow(title)) + "\n"
            for group in groups.prefix(Self.groupsShown) {
                if group.flowCount == 0 {
                    out += "  " + style.bold(group.kernelHeadline) + "\n" + kernelLines(group)
                    continue
                }
                out += "  " + style.bold(group.headline) + ": \(group.connectionsText), "
                    + "\(durationWord(kind)) median \(durationText(group.medianDuration)), max \(durationText(group.maxDuration))\n"
                if let codePath = Diagnosis.codePath(group) { out += wrapped(codePath, indent: "    ", width: width) }
                if Diagnosis.codePathNotCaptured(group, flows: flowsByID) { payloadCut = true }
                out += wrapped(Diagnosis.text(group, flows: flowsByID, ongoing: ongoing || confirmedLine(group, flowsByID: flowsByID) != ""), indent: "    ", width: width)
                out += "    " + style.dim("Wireshark: ") + Diagnosis.wiresharkFilter(group) + "\n"
                out += "    " + style.dim("flows: ") + flowList(group.flowIDs) + "\n"
                for line in Self.ownerLines(group, flowsByID: flowsByID) { out += "    " + line + "\n" }
                out += confirmedLine(group, flowsByID: flowsByID) + kernelLines(group)
            }
            if groups.count > Self.groupsShown {
                let rest = groups.dropFirst(Self.groupsShown)
                let connections = rest.reduce(0) { $0 + $1.flowCount }
                out += "  … \(grouped(rest.count)) more group\(rest.count == 1 ? "" : "s") (\(grouped(connections)) connection"
                    + "\(connections == 1 ? "" : "s")); --json, --csv or --html list them all\n"
            }
            out += "\n"
        }
        if payloadCut {
            out += wrapped("The requests these connections carried were not captured: the snapshot length cut their "
                + "payload. Capture with `tcpdump -s 512` (finscope live keeps 512 bytes) to see the request line, Host "
                + "and User-Agent.", indent: "", width: width) + "\n"
        }
        return out
    }

    /// "java (pid 4242) holds 46 sockets in CLOSE_WAIT to 10.0.0.5:8282", one line per
    /// process, when the findings carry their owner (live capture, or `--proc`).
    public static func ownerLines(_ group: FindingGroup, flowsByID: [Int: FlowReport]) -> [String] {
        var counts: [OwningProcess: Int] = [:]
        for id in group.flowIDs {
            guard let process = flowsByID[id].flatMap(group.finding(in:))?.process else { continue }
            counts[process, default: 0] += 1
        }
        return counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key.pid < $1.key.pid }.map { process, count in
            ownerText(process, count: count, group: group)
        }
    }

    /// Groups printed per finding kind; the biggest come first.
    static let groupsShown = 10

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

    /// "#1, #3, #7 … (+40 more; --ladder 1 draws the first)".
    func flowList(_ ids: [Int]) -> String {
        let shown = ids.prefix(8).map { "#\($0)" }.joined(separator: ", ")
        let more = ids.count > 8 ? " … (+\(ids.count - 8) more)" : ""
        return shown + more + (ids.isEmpty ? "" : "  (--ladder \(ids[0]) draws the first)")
    }

    /// Word-wraps `text` at `width` columns (characters), each line indented; words are the
    /// runs between spaces, and a number stays on the line of the unit after it ("12.1 s",
    /// "25 connections"). Linear, on the UTF-8 bytes: a word's width is its byte count when
    /// it is ASCII (a grapheme count only for the rare word that is not, such as "—").
    func wrapped(_ text: String, indent: String, width: Int) -> String {
        let indentBytes = Array(indent.utf8)
        let indentWidth = Self.columns(indentBytes[...])
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count + (text.utf8.count / max(1, width - indentWidth) + 2) * (indentBytes.count + 1))
        out += indentBytes
        var lineWidth = indentWidth
        var text = text
        text.withUTF8 { bytes in
            // Word ranges, with a number joined to the unit that follows it.
            var words: [Range<Int>] = []
            var position = 0
            while position < bytes.count {
                if bytes[position] == 0x20 { position += 1; continue }
                let start = position
                while position < bytes.count, bytes[position] != 0x20 { position += 1 }
                if let last = words.last, last.upperBound + 1 == start,
                   let digit = bytes[last.upperBound - 1] as UInt8?, digit >= 0x30, digit <= 0x39,
                   Self.units.contains(Array(bytes[start..<position]).trimmingPunctuation) {
                    words[words.count - 1] = last.lowerBound..<position
                } else {
                    words.append(start..<position)
                }
            }
            for range in words {
                let word = bytes[range]
                let wordWidth = Self.columns(word)
                if lineWidth > indentWidth {
                    if lineWidth + 1 + wordWidth > width {
                        out.append(0x0A)
                        out += indentBytes
                        lineWidth = indentWidth
                    } else {
                        out.append(0x20)
                        lineWidth += 1
                    }
                }
                out.append(contentsOf: word)
                lineWidth += wordWidth
            }
        }
        out.append(0x0A)
        return String(decoding: out, as: UTF8.self)
    }

    /// Words that belong with the number before them.
    static let units: Set<[UInt8]> = Set(["s", "ms", "min", "h", "%", "B", "MB", "connection", "connections", "socket",
                                          "sockets", "request", "requests", "flows", "packets"].map { Array($0.utf8) })

    /// Characters in UTF-8 `bytes`: their count when ASCII (without CR: "\r\n" is one
    /// character), else the grapheme count.
    @inline(__always)
    static func columns<Bytes: Collection>(_ bytes: Bytes) -> Int where Bytes.Element == UInt8 {
        for byte in bytes where byte >= 0x80 || byte == 0x0D {
            return String(decoding: bytes, as: UTF8.self).count
        }
        return bytes.count
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

extension Array where Element == UInt8 {
    /// Without trailing punctuation (",", ".", ")", ":", ";").
    var trimmingPunctuation: [UInt8] {
        var end = count
        while end > 0, [0x2C, 0x2E, 0x29, 0x3A, 0x3B].contains(self[end - 1]) { end -= 1 }
        return Array(self[0..<end])
    }
}
