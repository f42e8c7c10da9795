import FinscopeCapture
import FinscopeFindings
import FinscopeFlows
import FinscopeWire

// The second pass: after the analysis has chosen flows (ladder diagrams, `--export`, the
// HTML page), read the capture again through the same flow tracker and pick out those
// flows' packets. The tracker numbers flows identically on every pass over the same input
// with the same options, so a packet belongs to a chosen flow exactly when the analysis
// put it there: no second rule for what a flow is. Keeping this out of the first pass
// keeps the per-packet path of the analysis free of history.

/// The packets of chosen flows, read again from the capture files.
public enum FlowPackets {
    /// One segment of a chosen flow, decoded, with where the tracker placed it.
    public struct Packet: Sendable, Equatable {
        public var time: Nanoseconds
        public var segment: TCPSegment
        public var placement: SegmentPlacement
        public var flowID: Int { placement.flowID }
    }

    /// What `export` wrote.
    public struct ExportSummary: Sendable, Equatable {
        public var packets = 0
        /// Frames written per flow id.
        public var packetsPerFlow: [Int: Int] = [:]
        /// Frames left out because their link type differs from the output file's.
        public var otherLinkType = 0
        public var linkType: Int32 = 0
    }

    /// The decoded segments of `flows`, per flow id, in capture order (capture duplicates
    /// included and marked, as they are in the file).
    public static func segments(paths: [String], options: AnalysisOptions, flows: [FlowReport]) throws -> [Int: [Packet]] {
        var result: [Int: [Packet]] = [:]
        guard !flows.isEmpty else { return result }
        try replay(paths: paths, options: options, wanted: Set(flows.map(\.id))) { frame, segment, placement in
            result[placement.flowID, default: []].append(Packet(time: frame.time, segment: segment, placement: placement))
        }
        return result
    }

    /// Writes the frames of `flows` to a new pcap file through libpcap's dump API, with the
    /// input's link type and the original timestamps (microsecond precision when every
    /// input is a microsecond pcap file, else nanosecond).
    public static func export(paths: [String], options: AnalysisOptions, flows: [FlowReport],
                              to output: String) throws -> ExportSummary {
        let nano = paths.contains { !CaptureFiles.isMicrosecondPcap($0) }
        var summary = ExportSummary()
        var file: PcapDumpFile?
        var outputLink: LinkKind?
        try replay(paths: paths, options: options, wanted: Set(flows.map(\.id)), firstFrame: { frame in
            // The first frame fixes the output's link type (a pcap file has one).
            let linkType = frame.link?.linkType ?? 1
            file = try PcapDumpFile(path: output, linkType: linkType, snapLength: 262_144, nanosecondPrecision: nano)
            outputLink = frame.link
            summary.linkType = linkType
        }) { frame, _, placement in
            guard frame.link == outputLink, let file else {
                summary.otherLinkType += 1
                return
            }
            file.write(frame)
            summary.packets += 1
            summary.packetsPerFlow[placement.flowID, default: 0] += 1
        }
        // Nothing was read: still leave a valid, empty capture behind.
        let written = try file ?? PcapDumpFile(path: output, linkType: 1, snapLength: 262_144, nanosecondPrecision: nano)
        if file == nil { summary.linkType = 1 }
        try written.finish()
        return summary
    }

    /// Runs the analysis again over `paths` and calls `body` with every frame that landed on
    /// a flow in `wanted`.
    static func replay(paths: [String], options: AnalysisOptions, wanted: Set<Int>,
                       firstFrame: ((Frame) throws -> Void)? = nil,
                       _ body: (Frame, TCPSegment, SegmentPlacement) throws -> Void) throws {
        var warnings: [String] = []
        let input = try OfflineAnalysis.openAll(paths: paths, filter: options.filter, warnings: &warnings)
        var configuration = options.trackerConfiguration
        configuration.retainAllFlows = false
        var tracker = FlowTracker(configuration: configuration)
        var first = true
        while let frame = input.next() {
            if first, let firstFrame {
                first = false
                try firstFrame(frame)
            }
            guard frame.matches, let link = frame.link,
                  case .segment(let segment) = FrameDecoder.decode(frame.bytes, wireLength: frame.wireLength, link: link)
            else { continue }
            let placement = tracker.process(segment, at: frame.time, payload: Pipeline.payload(of: segment, in: frame.bytes))
            if wanted.contains(placement.flowID) { try body(frame, segment, placement) }
        }
    }
}

