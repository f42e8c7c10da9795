import FinscopeAnalysis
import FinscopeCapture
import FinscopeFindings
import FinscopeTestSupport
import FinscopeWire
import Foundation
import Testing

/// finscope's own classic-pcap reader (`PcapRecordReader`) against libpcap
/// (`PcapFileSource`): the same frames (time, captured and wire length, bytes, filter
/// verdict) and the same warning at damage, file by file. libpcap is the reference.
@Suite struct RecordReaderTests {
    struct Read: Equatable, CustomStringConvertible {
        struct Record: Equatable {
            var time: Nanoseconds
            var captured: Int
            var wire: Int
            var bytes: [UInt8]
            var matches: Bool
            var link: LinkKind?
        }
        var frames: [Record] = []
        var error: String?
        var description: String { "\(frames.count) frames, error: \(error ?? "none")" }
    }

    /// Every frame of a source, copied (a frame's bytes are valid only until the next).
    static func read(_ source: any FrameSource) -> Read {
        var read = Read()
        while let frame = source.next() {
            read.frames.append(.init(time: frame.time, captured: frame.bytes.count, wire: frame.wireLength,
                                     bytes: Array(frame.bytes), matches: frame.matches, link: frame.link))
        }
        read.error = source.readError
        return read
    }

    /// Both readers over `path`; nil for the own reader when it leaves the file to libpcap.
    static func both(_ path: String, filter: String? = nil) throws -> (own: Read?, libpcap: Read?) {
        let own = try PcapRecordReader.open(path: path, filter: filter).map(read)
        let libpcap = (try? PcapFileSource(path: path, filter: filter)).map(read)
        return (own, libpcap)
    }

    static let captures: [String] = {
        let folder = packageRoot.appendingPathComponent("captures")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        return names.filter { $0.hasSuffix(".pcap") }.sorted().map { folder.appendingPathComponent($0).path }
    }()

    @Test("captures/: the own reader takes every classic pcap and reads what libpcap reads")
    func captureFolder() throws {
        #expect(Self.captures.count >= 30)
        for path in Self.captures {
            let (own, libpcap) = try Self.both(path)
            #expect(own != nil, "the own reader declined \(path)")
            #expect(libpcap != nil)
            #expect(own == libpcap, "\(path): own \(own?.description ?? "-"), libpcap \(libpcap?.description ?? "-")")
            #expect(libpcap?.frames.isEmpty == false)
        }
    }

    @Test("captures/: a BPF filter gives the same verdict per frame")
    func filtered() throws {
        for path in Self.captures.prefix(12) {
            for filter in ["tcp port 8080", "tcp[tcpflags] & tcp-fin != 0", "less 60"] {
                // A link type the expression cannot describe: both refuse it, in the same words.
                var ownError: String?
                var own: Read?
                do { own = try PcapRecordReader.open(path: path, filter: filter).map(Self.read) } catch { ownError = "\(error)" }
                var libpcapError: String?
                var libpcap: Read?
                do { libpcap = Self.read(try PcapFileSource(path: path, filter: filter)) } catch { libpcapError = "\(error)" }
                #expect(ownError == libpcapError, "\(path) with '\(filter)'")
                #expect(own == libpcap, "\(path) with '\(filter)'")
                if filter == "less 60", let libpcap { #expect(libpcap.frames.contains { !$0.matches }) }
            }
        }
    }

    @Test("../shared/corpus/public: every classic pcap the own reader takes reads as with libpcap")
    func publicCorpus() throws {
        let corpus = packageRoot.appendingPathComponent("../shared/corpus/public").standardizedFileURL
        guard let manifest = try? String(contentsOf: corpus.appendingPathComponent("MANIFEST.tsv"), encoding: .utf8) else {
            print("RecordReaderTests: skipped, no ../shared/corpus/public/MANIFEST.tsv beside this checkout")
            return
        }
        var taken = 0
        for line in manifest.split(separator: "\n").dropFirst() {
            let file = String(line.split(separator: "\t")[0])
            let path = corpus.appendingPathComponent(file).path
            guard FileManager.default.fileExists(atPath: path) else { continue }
            let (own, libpcap) = try Self.both(path)
            guard let own else { continue }
            taken += 1
            #expect(own == libpcap, "\(file): own \(own.description), libpcap \(libpcap?.description ?? "-")")
        }
        // 100 of the corpus's files are classic pcap; a few have link types finscope does not decode.
        #expect(taken >= 80)
    }

    @Test("Tests/Fixtures/damaged: the same frames and the same warning as libpcap")
    func damaged() throws {
        let folder = packageRoot.appendingPathComponent("Tests/Fixtures/damaged")
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".pcap") }
        #expect(names.count >= 15)
        var taken = 0
        for name in names.sorted() {
            let (own, libpcap) = try Self.both(folder.appendingPathComponent(name).path)
            guard let own else {
                // Declined files are those libpcap cannot open either, or reads another way.
                #expect(["truncated-mid-file-header.pcap", "wrong-magic.pcap"].contains(name), "declined \(name)")
                continue
            }
            taken += 1
            #expect(own == libpcap, "\(name): own \(own.description), libpcap \(libpcap?.description ?? "-")")
        }
        #expect(taken >= 15)
        // The files whose damage stops the read do end with a warning (not silently).
        let (own, _) = try Self.both(folder.appendingPathComponent("truncated-mid-record-data.pcap").path)
        #expect(own?.error == "truncated dump file; tried to read 54 captured bytes, only got 20")
    }

    @Test("a small capture cut at every byte of its last record")
    func cutAtEveryByte() throws {
        let path = packageRoot.appendingPathComponent("captures/three-way.pcap").path
        let whole = try Data(contentsOf: URL(fileURLWithPath: path))
        // The last record's start: walk the record headers (little-endian file).
        var offset = 24
        var last = 24
        while offset + 16 <= whole.count {
            last = offset
            let captured = whole[offset + 8 ..< offset + 12].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
            offset += 16 + captured
        }
        #expect(offset == whole.count)
        let directory = try TemporaryDirectory()
        for length in last ..< whole.count {
            let cut = try directory.write(whole.prefix(length), to: "cut-\(length).pcap")
            let (own, libpcap) = try Self.both(cut.path)
            #expect(own != nil)
            #expect(own == libpcap, "cut at \(length): own \(own?.description ?? "-"), libpcap \(libpcap?.description ?? "-")")
            #expect(own?.error != nil || length == last, "cut at \(length) gave no warning")
        }
    }

    /// A file of `records` with the given header fields (little-endian unless `bigEndian`).
    static func capture(snapLength: UInt32 = 65_535, nanoseconds: Bool = false, bigEndian: Bool = false, linkType: UInt32 = 1,
                        records: [(seconds: UInt32, fraction: UInt32, captured: UInt32, wire: UInt32, data: Int)]) -> Data {
        var data = Data()
        func put32(_ value: UInt32) { withUnsafeBytes(of: bigEndian ? value.bigEndian : value.littleEndian) { data.append(contentsOf: $0) } }
        func put16(_ value: UInt16) { withUnsafeBytes(of: bigEndian ? value.bigEndian : value.littleEndian) { data.append(contentsOf: $0) } }
        put32(nanoseconds ? 0xa1b2_3c4d : 0xa1b2_c3d4)
        put16(2)
        put16(4)
        put32(0)
        put32(0)
        put32(snapLength)
        put32(linkType)
        for record in records {
            put32(record.seconds)
            put32(record.fraction)
            put32(record.captured)
            put32(record.wire)
            data.append(contentsOf: (0 ..< record.data).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        }
        return data
    }

    @Test("records above the snapshot length, above 262144, odd times, both byte orders")
    func edgeRecords() throws {
        let directory = try TemporaryDirectory()
        let cases: [(String, Data)] = [
            // caplen 200 above a 100-byte snapshot: cut to 100, the rest skipped.
            ("over-snaplen", Self.capture(snapLength: 100, records: [(1, 2, 200, 300, 200), (3, 4, 60, 60, 60)])),
            // ... and cut short inside the snapshot, and inside the skipped rest.
            ("over-snaplen-cut-early", Self.capture(snapLength: 100, records: [(1, 2, 200, 300, 50)])),
            ("over-snaplen-cut-late", Self.capture(snapLength: 100, records: [(1, 2, 200, 300, 150)])),
            ("over-maximum", Self.capture(snapLength: 0, records: [(1, 2, 60, 60, 60), (1, 3, 262_145, 262_145, 10)])),
            ("over-maximum-and-snaplen", Self.capture(snapLength: 1000, records: [(1, 3, 300_000, 300_000, 10)])),
            ("snaplen-zero", Self.capture(snapLength: 0, records: [(1, 2, 70_000, 70_000, 70_000)])),
            ("zero-length", Self.capture(records: [(1, 2, 0, 0, 0), (1, 2, 0, 60, 0), (5, 6, 10, 10, 10)])),
            ("times", Self.capture(records: [(0xFFFF_FFF0, 999_999, 4, 4, 4), (7, 0xFFFF_FFFF, 4, 4, 4), (7, 2_000_000, 4, 4, 4)])),
            ("nano-big-endian", Self.capture(nanoseconds: true, bigEndian: true, records: [(9, 999_999_999, 20, 40, 20), (10, 5, 8, 8, 8)])),
            ("micro-big-endian", Self.capture(bigEndian: true, records: [(9, 123_456, 20, 40, 20)])),
            ("nano-little-endian", Self.capture(nanoseconds: true, records: [(9, 123_456_789, 20, 40, 20)])),
            ("raw-101", Self.capture(linkType: 101, records: [(9, 1, 20, 20, 20)])),
        ]
        for (name, data) in cases {
            let file = try directory.write(data, to: "\(name).pcap")
            let (own, libpcap) = try Self.both(file.path)
            #expect(own != nil, "declined \(name)")
            #expect(own == libpcap, "\(name): own \(own?.description ?? "-"), libpcap \(libpcap?.description ?? "-")")
        }
        // Left to libpcap: an older version (caplen/len may be swapped), a link type not decoded.
        var old = Self.capture(records: [(1, 2, 10, 10, 10)])
        old[6] = 3
        #expect(try PcapRecordReader.open(path: directory.write(old, to: "v2.3.pcap").path, filter: nil) == nil)
        #expect(try PcapRecordReader.open(path: directory.write(Self.capture(linkType: 147, records: []), to: "user0.pcap").path,
                                          filter: nil) == nil)
    }

    @Test("a file truncated while it is mapped: no crash, the frames before the cut, a warning")
    func truncatedWhileMapped() throws {
        let directory = try TemporaryDirectory()
        // 256 records of 1,000 bytes: 260 KB, many pages.
        let records = (0 ..< 256).map { (seconds: UInt32(100 + $0), fraction: UInt32(0), captured: UInt32(1000), wire: UInt32(1000), data: 1000) }
        let file = try directory.write(Self.capture(records: records), to: "shrinks.pcap")
        let reader = try #require(try PcapRecordReader.open(path: file.path, filter: nil))
        // 65,536 is a page boundary for every page size up to 64 KB: the next page faults.
        #expect(truncate(file.path, 65_536) == 0)
        let read = Self.read(reader)
        let whole = (65_536 - 24) / 1016
        #expect(read.frames.count == whole)
        #expect(read.frames.last?.time == Nanoseconds(100 + whole - 1) * 1_000_000_000)
        #expect(read.error?.contains("the file was truncated while it was read") == true, "\(read)")
    }
}

/// The two-thread analysis through the library: the same result as one thread, the
/// finished hook called on the tracker thread, progress with the reader's counts.
@Suite struct ThreadedAnalysisTests {
    @Test("threads 2: same source counts and flows as threads 1; hooks on the right threads")
    func sameResult() throws {
        let folder = packageRoot.appendingPathComponent("captures")
        let paths = ["leak-loopback.pcap", "http-put-leak.pcap", "port-reuse.pcap", "tls-leak.pcap"].map { folder.appendingPathComponent($0).path }
        var evictedInAll = 0, finishedOnTrackerInAll = 0
        for path in paths {
            // A table of one flow: the others are evicted while reading, so the finished
            // hook runs during the read (on the tracker thread) as well as at the end.
            var one = AnalysisOptions(maxFlows: 1)
            one.threads = 1
            var two = one
            two.threads = 2
            let caller = pthread_self()
            nonisolated(unsafe) var finishedOnOther = 0, finishedHere = 0
            nonisolated(unsafe) var lastProgress: ReadProgress?
            let hooks = AnalysisHooks(finished: { _ in
                if pthread_equal(pthread_self(), caller) != 0 { finishedHere += 1 } else { finishedOnOther += 1 }
            }, progress: { lastProgress = $0 })
            let single = try OfflineAnalysis.analyze(paths: [path], options: one)
            let threaded = try OfflineAnalysis.analyze(paths: [path], options: two, hooks: hooks)
            #expect(single.source == threaded.source, "\(path)")
            #expect(single.flows.map(\.id) == threaded.flows.map(\.id))
            #expect("\(single.flows)" == "\(threaded.flows)", "\(path)")
            #expect(single.tally == threaded.tally)
            #expect(single.source.packets > 0)
            // Flows still open at the end are finished by the caller after the join.
            #expect(finishedOnOther + finishedHere == threaded.flows.count)
            // Every flow evicted during the read was finished on the tracker thread.
            #expect(finishedOnOther >= threaded.source.evicted, "\(path)")
            evictedInAll += threaded.source.evicted
            finishedOnTrackerInAll += finishedOnOther
            #expect(lastProgress?.packets == single.source.packets)
        }
        #expect(evictedInAll > 0)
        #expect(finishedOnTrackerInAll > 0)
    }
}
