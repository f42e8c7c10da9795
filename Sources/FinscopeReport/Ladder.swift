import FinscopeFindings
import FinscopeFlows
import FinscopeWire

/// One captured segment of a flow, for a ladder diagram, with where the analysis placed
/// it (its sender, its place in the sender's order, whether it was a capture duplicate).
public struct LadderSegment: Sendable, Equatable {
    public var time: Nanoseconds
    public var segment: TCPSegment
    public var placement: SegmentPlacement
    public init(time: Nanoseconds, segment: TCPSegment, placement: SegmentPlacement) {
        self.time = time
        self.segment = segment
        self.placement = placement
    }
}

/// A flow's closing exchange as a two-column sequence diagram, like the textbook close
/// diagrams: one arrow per segment, flags and seq/ack relative to the FINs (`x` is the
/// sequence number of the first FIN sent, `y` of the second), the time offset, and each
/// endpoint's state written beside the row where it changes.
///
/// The states are the analysis's own transitions (`FlowReport.transitions`), drawn at the
/// segments that caused them: the ladder applies no TCP rule of its own, so the diagram
/// and the report cannot disagree.
public enum Ladder {
    public enum Direction: Sendable, Equatable { case toServer, toClient }

    public struct Row: Sendable, Equatable {
        /// Index in the flow's segments.
        public var index: Int
        public var time: Nanoseconds
        public var direction: Direction
        public var label: String
        public var clientStates: [TCPState] = []
        public var serverStates: [TCPState] = []
        /// A capture duplicate (SPEC §5): shown, never a cause of a state change.
        public var duplicate = false
    }

    /// The ladder's model: the rows it shows (others are elided) and the states.
    public struct Model: Sendable, Equatable {
        public var flow: FlowReport
        public var rows: [Row]
        /// Segments left out between the shown rows: (before row index in `rows`, count).
        public var elided: [Int: Int]
        public var legend: [String]
        /// The states every endpoint starts the diagram in (`path[0]`).
        public var clientStart: TCPState?
        public var serverStart: TCPState?
    }

    // MARK: Model

    public static func model(_ flow: FlowReport, segments: [LadderSegment]) -> Model {
        let fromClient = segments.map { $0.placement.sender == .client }
        func side(_ i: Int) -> Role { segments[i].placement.sender }
        let duplicate = segments.map(\.placement.duplicate)
        // The row of each of the flow's own segments (duplicates never cause a state).
        var rowOf: [SegmentRef: Int] = [:]
        for i in segments.indices where !duplicate[i] { rowOf[segments[i].placement.ref] = i }

        // Each side's first FIN and its sequence number F (SPEC §1), for the labels.
        var finIndex: [Role: Int] = [:], finSeq: [Role: UInt32] = [:], isn: [Role: UInt32] = [:]
        for i in segments.indices where !duplicate[i] {
            let s = segments[i].segment
            if s.flags.contains(.syn), !s.flags.contains(.rst), isn[side(i)] == nil { isn[side(i)] = s.sequence }
            if s.flags.contains(.fin), !s.flags.contains(.rst), finIndex[side(i)] == nil {
                finIndex[side(i)] = i
                finSeq[side(i)] = s.sequence &+ s.payloadLength &+ (s.flags.contains(.syn) ? 1 : 0)
            }
        }
        let resetIndex = flow.transitions.first { $0.state == .closed && $0.cause?.sender == flow.resetBy
            && flow.resetBy != nil && $0.time == flow.endpoint(flow.resetBy!).resetAt }
            .flatMap { $0.cause.flatMap { rowOf[$0] } }

        // Each transition on the row of the segment that caused it; never before the
        // previous state's row, so the column reads exactly as the path.
        var statesAt: [Role: [Int: [TCPState]]] = [.client: [:], .server: [:]]
        var lastRow: [Role: Int] = [.client: 0, .server: 0]
        for step in flow.transitions {
            let row = max(lastRow[step.endpoint]!, step.cause.flatMap { rowOf[$0] } ?? lastRow[step.endpoint]!)
            lastRow[step.endpoint] = row
            statesAt[step.endpoint]![row, default: []].append(step.state)
        }

        // Which rows to show: the closing exchange with a little context before it, every
        // row where a state changes, and short runs around them; long runs are elided.
        let firstClose = [finIndex[.client], finIndex[.server], resetIndex].compactMap { $0 }.min()
        let start = max(0, (firstClose ?? max(0, segments.count - 6)) - 3)
        var important = Set<Int>()
        for i in segments.indices where i >= start {
            let s = segments[i].segment
            if s.flags.contains(.fin) || s.flags.contains(.rst) || s.flags.contains(.syn)
                || statesAt[.client]![i] != nil || statesAt[.server]![i] != nil || i == start || i == segments.count - 1 {
                important.insert(i)
            }
        }
        let shown = segments.indices.filter { i in
            i >= start && (important.contains(i) || (i - 2...i + 2).contains { important.contains($0) })
        }
        var rows: [Row] = []
        var elided: [Int: Int] = [:]
        var previousShown = start - 1
        for i in shown {
            if i - previousShown > 1 { elided[rows.count] = i - previousShown - 1 }
            previousShown = i
            rows.append(Row(index: i, time: segments[i].time, direction: fromClient[i] ? .toServer : .toClient,
                            label: label(segments[i].segment, from: side(i), finSeq: finSeq, finIndex: finIndex, isn: isn),
                            clientStates: statesAt[.client]![i] ?? [], serverStates: statesAt[.server]![i] ?? [],
                            duplicate: duplicate[i]))
        }
        // States placed on rows not shown (elided before the window) are carried to the first row.
        for role in Role.allCases {
            let early = statesAt[role]!.filter { $0.key < (shown.first ?? 0) }.sorted { $0.key < $1.key }.flatMap(\.value)
            guard !early.isEmpty, !rows.isEmpty else { continue }
            if role == .client { rows[0].clientStates = early + rows[0].clientStates }
            else { rows[0].serverStates = early + rows[0].serverStates }
        }

        var legend: [String] = []
        for (letter, role) in letters(finIndex) {
            legend.append("\(letter) = the \(role.rawValue)'s FIN sequence number (\(finSeq[role]!))")
        }
        return Model(flow: flow, rows: rows, elided: elided, legend: legend,
                     clientStart: flow.clientEndpoint.path.first, serverStart: flow.serverEndpoint.path.first)
    }

    /// `x` for the first FIN sent (in capture order), `y` for the second.
    static func letters(_ finIndex: [Role: Int]) -> [(String, Role)] {
        let order = finIndex.sorted { $0.value < $1.value }.map(\.key)
        return zip(["x", "y"], order).map { ($0, $1) }
    }

    static func label(_ s: TCPSegment, from role: Role, finSeq: [Role: UInt32], finIndex: [Role: Int],
                      isn: [Role: UInt32]) -> String {
        let names = Dictionary(uniqueKeysWithValues: letters(finIndex).map { ($1, $0) })
        func relative(_ value: UInt32, to owner: Role) -> String {
            if let letter = names[owner], let base = finSeq[owner] {
                let d = Int32(bitPattern: value &- base)
                return d == 0 ? letter : d > 0 ? "\(letter)+\(d)" : "\(letter)\(d)"
            }
            if let base = isn[owner] { return String(value &- base) }
            return String(value)
        }
        var flags: [String] = []
        if s.flags.contains(.syn) { flags.append("SYN") }
        if s.flags.contains(.fin) { flags.append("FIN") }
        if s.flags.contains(.rst) { flags.append("RST") }
        if s.flags.contains(.psh) { flags.append("PSH") }
        if s.flags.contains(.ack) { flags.append("ACK") }
        var text = flags.isEmpty ? "(no flags)" : flags.joined(separator: ",")
        text += " seq=" + relative(s.sequence, to: role)
        if s.flags.contains(.ack) { text += " ack=" + relative(s.acknowledgment, to: role.peer) }
        if s.payloadLength > 0 { text += " len=\(s.payloadLength)" }
        return text
    }

    // MARK: Text

    /// The diagram as text; `captureEnd` adds the wait until the capture ended.
    public static func render(_ model: Model, captureEnd: Nanoseconds? = nil, style: TerminalStyle = .plain) -> String {
        let flow = model.flow
        let stateText = { (states: [TCPState]) in states.map(\.rawValue).joined(separator: "→") }
        let leftWidth = max(12, model.rows.map { stateText($0.clientStates).count }.max() ?? 0,
                            (model.clientStart?.rawValue.count ?? 0)) + 1
        let arrowWidth = max(30, (model.rows.map(\.label.count).max() ?? 0) + 10)
        let timeWidth = 11
        var out = style.bold("Flow #\(flow.id)") + "  \(flow.client) (client) ↔ \(flow.server) (server): \(flow.close.rawValue)"
        if flow.threeWay { out += " (three-way)" }
        out += "\n"
        for line in model.legend { out += "  " + style.dim(line) + "\n" }
        func line(_ time: String, _ left: String, _ middle: String, _ right: String, leftPlain: Int) -> String {
            var text = time.padding(timeWidth) + left + String(repeating: " ", count: max(0, leftWidth - leftPlain)) + middle + " " + right
            while text.last == " " { text.removeLast() }
            return text
        }
        let clientTitle = "client", serverTitle = "server"
        out += line("", clientTitle, String(repeating: " ", count: arrowWidth), serverTitle, leftPlain: clientTitle.count) + "\n"
        let cs = model.clientStart?.rawValue ?? "-", ss = model.serverStart?.rawValue ?? "-"
        out += line("", style.bold(cs), String(repeating: " ", count: arrowWidth), style.bold(ss), leftPlain: cs.count) + "\n"
        guard let origin = model.rows.first?.time else {
            return out + "  (no segments of this flow were found in the capture)\n"
        }
        var previousTime = origin
        for (n, row) in model.rows.enumerated() {
            if let skipped = model.elided[n] {
                out += line("", "", style.dim(center("⋮ \(skipped) segment\(skipped == 1 ? "" : "s")", arrowWidth)), "",
                            leftPlain: 0) + "\n"
            }
            if row.time - previousTime >= 1_000_000_000 {
                out += line("", "", style.dim(center("⋮ \(durationText(row.time - previousTime))", arrowWidth)), "",
                            leftPlain: 0) + "\n"
            }
            previousTime = row.time
            let body = " \(row.label)\(row.duplicate ? " (dup)" : "") "
            let dashes = max(2, arrowWidth - body.count - 2)
            let half = dashes / 2
            var arrow = row.direction == .toServer
                ? String(repeating: "─", count: half) + body + String(repeating: "─", count: dashes - half) + "─>"
                : "<─" + String(repeating: "─", count: half) + body + String(repeating: "─", count: dashes - half)
            if row.label.contains("RST") { arrow = style.red(arrow) }
            else if row.label.contains("FIN") { arrow = style.yellow(arrow) }
            else if row.duplicate { arrow = style.dim(arrow) }
            let left = stateText(row.clientStates), right = stateText(row.serverStates)
            out += line("+" + secondsOffset(row.time - origin), style.bold(left), arrow, style.bold(right),
                        leftPlain: left.count) + "\n"
        }
        if let captureEnd, let last = model.rows.last, captureEnd - last.time >= 1_000_000_000 {
            let finals = [("client", flow.clientEndpoint.state), ("server", flow.serverEndpoint.state)]
                .filter { [.closeWait, .finWait1, .finWait2, .lastAck, .closing].contains($0.1) }
                .map { "\($0.0) still in \($0.1!.rawValue)" }
            var text = "⋮ \(durationText(captureEnd - last.time)) until the capture ends"
            if !finals.isEmpty { text += ": " + finals.joined(separator: ", ") }
            out += line("", "", style.dim(text), "", leftPlain: 0) + "\n"
        }
        for finding in flow.findings {
            out += "  \(finding.kind.rawValue) on the \(finding.endpoint.rawValue): \(durationText(finding.duration))"
                + " (\(finding.activity.name))\n"
        }
        return out
    }

    static func center(_ text: String, _ width: Int) -> String {
        let pad = max(0, (width - text.count) / 2)
        return String(repeating: " ", count: pad) + text + String(repeating: " ", count: max(0, width - pad - text.count))
    }

    /// "12.345 s" with milliseconds.
    static func secondsOffset(_ value: Nanoseconds) -> String {
        let ms = value / 1_000_000
        let fraction = String(ms % 1_000)
        return "\(ms / 1_000).\(String(repeating: "0", count: 3 - fraction.count))\(fraction) s"
    }

    /// The states each column shows, top to bottom (for checking against the paths).
    public static func columnStates(_ model: Model) -> (client: [TCPState], server: [TCPState]) {
        var client = model.clientStart.map { [$0] } ?? []
        var server = model.serverStart.map { [$0] } ?? []
        for row in model.rows {
            client += row.clientStates
            server += row.serverStates
        }
        return (client, server)
    }
}
