import CPcap
import FinscopeFlows
import FinscopeWire
import Foundation

// The second pass: after the analysis has chosen flows (ladder diagrams, `--export`), read
// the capture again and pick out those flows' packets. Keeping this out of the first pass
// keeps the per-packet path of the analysis free of history.

/// Hooks into an offline analysis, for output that streams or shows progress.
public struct AnalysisHooks {
    /// Each flow's report as the flow leaves the flow table, in finishing order; the flows
    /// still open at the end follow in id order (for `--ndjson`).
    public var finished: ((FlowReport) -> Void)?
    /// Called about every 65,536 frames with how far reading got (for a progress line).
    public var progress: ((ReadProgress) -> Void)?

    public init(finished: ((FlowReport) -> Void)? = nil, progress: ((ReadProgress) -> Void)? = nil) {
        self.finished = finished
        self.progress = progress
    }
}

/// How far an offline read got.
public struct ReadProgress: Sendable, Equatable {
    /// Bytes of the input files consumed so far (as far as the readers can tell).
    public var bytesRead: Int64
    /// Total size of the input files.
    public var totalBytes: Int64
    public var packets: Int

    public var fraction: Double { totalBytes > 0 ? min(1, Double(bytesRead) / Double(totalBytes)) : 0 }
}

extension PcapFileReader {
    /// Where libpcap's reading stands in the file (a buffered FILE position).
    var fileOffset: Int64 {
        guard let file = pcap_file(handle) else { return 0 }
        return Int64(ftello(file))
    }
}

/// Measures progress over a set of readers; only the readers libpcap drives can tell
/// their file position.
final class ProgressMeter {
    let readers: [any FrameReader]
    let totalBytes: Int64
    let report: (ReadProgress) -> Void

    init(readers: [any FrameReader], report: @escaping (ReadProgress) -> Void) {
        self.readers = readers
        self.report = report
        totalBytes = readers.reduce(0) { total, reader in
            let size = (try? FileManager.default.attributesOfItem(atPath: reader.path)[.size] as? NSNumber)?.int64Value
            return total + (size ?? 0)
        }
    }

    func update(packets: Int) {
        let bytes = readers.reduce(Int64(0)) { $0 + (($1 as? PcapFileReader)?.fileOffset ?? 0) }
        report(ReadProgress(bytesRead: bytes, totalBytes: totalBytes, packets: packets))
    }
}

/// A flow's 4-tuple, unordered.
private struct TupleKey: Hashable {
    var low: EndpointAddress
    var high: EndpointAddress
    init(_ a: EndpointAddress, _ b: EndpointAddress) {
        if a < b { low = a; high = b } else { low = b; high = a }
    }
}

/// Chosen flows, found again by 4-tuple and time.
struct FlowIndex {
    private struct Entry {
        var id: Int
        var first: Nanoseconds
        var last: Nanoseconds
    }
    private var byTuple: [TupleKey: [Entry]] = [:]

    init(_ flows: [FlowReport]) {
        for flow in flows {
            byTuple[TupleKey(flow.client, flow.server), default: []]
                .append(Entry(id: flow.id, first: flow.firstSeen, last: flow.lastSeen))
        }
        for key in byTuple.keys { byTuple[key]!.sort { $0.first < $1.first } }
    }

    var isEmpty: Bool { byTuple.isEmpty }

    /// The chosen flow a segment belongs to: on its 4-tuple, the latest flow that began at
    /// or before the segment (port reuse starts a new flow at its SYN), provided the segment
    /// is no later than that flow's last segment (capture duplicates, which do not move
    /// `lastSeen`, are allowed their 1 ms).
    func flowID(of segment: TCPSegment, at time: Nanoseconds) -> Int? {
        let key = TupleKey(EndpointAddress(ip: segment.source, port: segment.sourcePort),
                           EndpointAddress(ip: segment.destination, port: segment.destinationPort))
        guard let entries = byTuple[key] else { return nil }
        guard let entry = entries.last(where: { $0.first <= time }) else { return nil }
        return time <= entry.last + 1_000_000 ? entry.id : nil
    }
}

/// The packets of chosen flows, read again from the capture files.
public enum FlowPackets {
    /// One segment of a chosen flow, decoded.
    public struct Packet: Sendable, Equatable {
        public var flowID: Int
        public var time: Nanoseconds
        public var segment: TCPSegment
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
    /// included, as they are in the file).
    public static func segments(paths: [String], filter: String?, flows: [FlowReport]) throws -> [Int: [Packet]] {
        let index = FlowIndex(flows)
        var result: [Int: [Packet]] = [:]
        if index.isEmpty { return result }
        try read(paths: paths, filter: filter, restart: { result = [:] }) { frame, _ in
            guard let link = frame.link,
                  case .segment(let segment) = FrameDecoder.decode(frame.bytes, wireLength: frame.wireLength, link: link),
                  let id = index.flowID(of: segment, at: frame.time) else { return }
            result[id, default: []].append(Packet(flowID: id, time: frame.time, segment: segment))
        }
        return result
    }

    /// Writes the frames of `flows` to a new pcap file through libpcap's dump API, with the
    /// input's link type and the original timestamps (microsecond precision when every
    /// input is a microsecond pcap file, else nanosecond).
    public static func export(paths: [String], filter: String?, flows: [FlowReport], to output: String) throws -> ExportSummary {
        let index = FlowIndex(flows)
        let nano = paths.contains { !isMicrosecondPcap($0) }
        var summary = ExportSummary()
        var dead: OpaquePointer?
        var dumper: OpaquePointer?
        defer {
            if let dumper { pcap_dump_close(dumper) }
            if let dead { pcap_close(dead) }
        }
        func open(linkType: Int32, snapLength: Int32) throws {
            if let dumper { pcap_dump_close(dumper) }
            if let dead { pcap_close(dead) }
            dumper = nil
            guard let opened = pcap_open_dead_with_tstamp_precision(
                linkType, snapLength, UInt32(nano ? PCAP_TSTAMP_PRECISION_NANO : PCAP_TSTAMP_PRECISION_MICRO)) else {
                throw CaptureError.cannotOpen(path: output, reason: "libpcap cannot write link type \(linkType)")
            }
            dead = opened
            guard let file = pcap_dump_open(opened, output) else {
                throw CaptureError.cannotOpen(path: output, reason: String(cString: pcap_geterr(opened)))
            }
            dumper = file
            summary = ExportSummary(linkType: linkType)
        }
        var outputLink: LinkKind?
        try read(paths: paths, filter: filter, restart: {
            // Reading starts again: close the half-written dump before it is opened anew.
            if let dumper { pcap_dump_close(dumper) }
            dumper = nil
            outputLink = nil
        }) { frame, reader in
            if dumper == nil {
                // The first reader fixes the output's link type (a pcap file has one).
                if let pcap = reader as? PcapFileReader {
                    try open(linkType: pcap.linkType, snapLength: max(pcap_snapshot(pcap.handle), 262_144))
                } else {
                    try open(linkType: frame.link?.linkType ?? 1, snapLength: 262_144)
                }
                outputLink = frame.link
            }
            guard let link = frame.link,
                  case .segment(let segment) = FrameDecoder.decode(frame.bytes, wireLength: frame.wireLength, link: link),
                  let id = index.flowID(of: segment, at: frame.time) else { return }
            guard link == outputLink else {
                summary.otherLinkType += 1
                return
            }
            var header = pcap_pkthdr()
            header.ts.tv_sec = Int(frame.time / 1_000_000_000)
            let fraction = frame.time % 1_000_000_000
            header.ts.tv_usec = Int(nano ? fraction : fraction / 1_000)
            header.caplen = UInt32(frame.bytes.count)
            header.len = UInt32(max(frame.wireLength, frame.bytes.count))
            pcap_dump(UnsafeMutableRawPointer(dumper!).assumingMemoryBound(to: UInt8.self), &header,
                      frame.bytes.baseAddress!.assumingMemoryBound(to: UInt8.self))
            summary.packets += 1
            summary.packetsPerFlow[id, default: 0] += 1
        }
        if dumper == nil {
            // Nothing was read: still leave a valid, empty capture behind.
            try open(linkType: 1, snapLength: 262_144)
        }
        if let dumper, pcap_dump_flush(dumper) != 0 {
            throw CaptureError.cannotOpen(path: output, reason: "write failed")
        }
        return summary
    }

    /// A classic pcap file with microsecond timestamps (either byte order).
    public static func isMicrosecondPcap(_ path: String) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        let magic = [UInt8](handle.readData(ofLength: 4))
        return magic == [0xd4, 0xc3, 0xb2, 0xa1] || magic == [0xa1, 0xb2, 0xc3, 0xd4]
    }

    private struct Restart: Error { var path: String }

    /// Every frame that passes `filter`, across `paths` merged in timestamp order (as the
    /// analysis reads them), with the reader it came from. pcapng files whose interfaces
    /// differ are read again with finscope's own reader, after `restart`.
    static func read(paths: [String], filter: String?, restart: () -> Void,
                     _ body: (Frame, any FrameReader) throws -> Void) throws {
        var ownReader = Set<String>()
        while true {
            do {
                try readOnce(paths: paths, filter: filter, ownReader: ownReader, body)
                return
            } catch let again as Restart {
                ownReader.insert(again.path)
                restart()
            }
        }
    }

    private static func readOnce(paths: [String], filter: String?, ownReader: Set<String>,
                                 _ body: (Frame, any FrameReader) throws -> Void) throws {
        var readers: [any FrameReader] = []
        for path in paths {
            if ownReader.contains(path) {
                readers.append(try PcapNGReader(path: path, filter: filter))
                continue
            }
            guard let reader = try? PcapFileReader(path: path), reader.link != nil else { continue }
            if let filter { try reader.setFilter(filter) }
            readers.append(reader)
        }
        var heads: [Frame?] = readers.map { $0.next() }
        while true {
            var best = -1
            for index in heads.indices {
                guard let frame = heads[index] else { continue }
                if best < 0 || frame.time < heads[best]!.time { best = index }
            }
            if best < 0 { break }
            let frame = heads[best]!
            if frame.matches { try body(frame, readers[best]) }
            heads[best] = readers[best].next()
        }
        for reader in readers {
            if let error = reader.readError, reader is PcapFileReader, PcapFileReader.isMixedInterfacesError(error) {
                throw Restart(path: reader.path)
            }
        }
    }
}
