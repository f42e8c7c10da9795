import FinscopeTestSupport
import Foundation
import Testing

// Compressed captures (gzip, zstd, xz) and standard input, through the built binary. Every
// compressed file is made here from a sample in captures/ with the real tools; the plain
// sample's own analysis is the expected result.

private let samplesFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("captures")

/// One run of a program: exit status, stdout bytes, stderr text.
private struct Output {
    var status: Int32
    var stdout: Data
    var stderr: String
    var stderrLines: [Substring] { stderr.split(separator: "\n") }
}

/// Runs `executable` with stdin from `stdin` (else /dev/null) and stdout to `stdout` (else
/// captured), in `environment` added to this process's.
private func run(_ executable: URL, _ arguments: [String], stdin: URL? = nil, stdout: URL? = nil,
                 environment: [String: String] = [:]) throws -> Output {
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    process.standardInput = try stdin.map { try FileHandle(forReadingFrom: $0) } ?? FileHandle.nullDevice
    let out = Pipe(), err = Pipe()
    if let stdout {
        FileManager.default.createFile(atPath: stdout.path, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: stdout)
    } else {
        process.standardOutput = out
    }
    process.standardError = err
    try process.run()
    // stderr is small; read stdout first so a large report cannot stall the child.
    let outData = stdout == nil ? out.fileHandleForReading.readDataToEndOfFile() : Data()
    let errData = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return Output(status: process.terminationStatus, stdout: outData, stderr: String(decoding: errData, as: UTF8.self))
}

private func analyze(_ arguments: [String], stdin: URL? = nil, environment: [String: String] = [:]) throws -> Output {
    try run(finscopeBinary, ["analyze"] + arguments, stdin: stdin, environment: environment)
}

enum Compressor: String, CaseIterable, Sendable {
    case gzip, zstd, xz

    var suffix: String {
        switch self {
        case .gzip: return "gz"
        case .zstd: return "zst"
        case .xz: return "xz"
        }
    }

    /// Compresses `input` to `output` with the real tool (installed by Scripts/setup).
    func compress(_ input: URL, to output: URL) throws {
        let tool = ["/usr/bin/\(rawValue)", "/bin/\(rawValue)", "/usr/local/bin/\(rawValue)"]
            .first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let tool else {
            Issue.record("\(rawValue) is not installed (Scripts/setup installs it)")
            throw CocoaError(.fileNoSuchFile)
        }
        let result = try run(URL(fileURLWithPath: tool), ["-c", "-q", input.path], stdout: output)
        #expect(result.status == 0, "\(rawValue) failed: \(result.stderr)")
    }
}

/// A little-endian microsecond pcap file's records as a pcapng (one interface).
private func pcapNG(fromPcap url: URL) throws -> Data {
    let bytes = [UInt8](try Data(contentsOf: url))
    func u32(_ at: Int) -> Int { Int(bytes[at]) | Int(bytes[at + 1]) << 8 | Int(bytes[at + 2]) << 16 | Int(bytes[at + 3]) << 24 }
    try #require(bytes.count >= 24 && u32(0) == 0xa1b2_c3d4)
    var writer = PcapNGWriter()
    let interface = writer.addInterface(linkType: UInt16(u32(20)), snaplen: UInt32(u32(16)))
    var offset = 24
    while offset + 16 <= bytes.count {
        let captured = u32(offset + 8)
        guard offset + 16 + captured <= bytes.count else { break }
        writer.append(Array(bytes[(offset + 16)..<(offset + 16 + captured)]), interface: interface,
                      time: CaptureTime(seconds: Int64(u32(offset)), nanoseconds: Int64(u32(offset + 4)) * 1000),
                      originalLength: u32(offset + 12))
        offset += 16 + captured
    }
    return writer.data()
}

/// A report as a comparable value: the parsed JSON without `source.name`.
private func comparable(_ data: Data) throws -> NSDictionary {
    var document = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    var source = try #require(document["source"] as? [String: Any])
    source.removeValue(forKey: "name")
    document["source"] = source
    return document as NSDictionary
}

private func packets(_ data: Data) throws -> Int {
    let document = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    return try #require((document["source"] as? [String: Any])?["packets"] as? Int)
}

struct Sample: Sendable, CustomStringConvertible {
    var file: String
    /// A filter that keeps some of the sample, not all.
    var filter: String
    var description: String { file }

    static let all = [
        Sample(file: "leak-loopback.pcap", filter: "tcp port 54622"),
        Sample(file: "dumpcap.pcapng", filter: "tcp"),
        Sample(file: "two-interfaces.pcapng", filter: "host 10.77.2.1"),  // Ethernet and raw IP interfaces
    ]
}

@Suite("Compressed captures and standard input")
struct CompressedInputTests {
    @Test("a compressed capture gives the plain file's JSON: by path, without a suffix, from stdin, with and without --filter",
          arguments: Compressor.allCases, Sample.all)
    func sameReportAsThePlainFile(_ compressor: Compressor, _ sample: Sample) throws {
        let directory = try TemporaryDirectory()
        let plain = samplesFolder.appendingPathComponent(sample.file)
        let compressed = directory.url(for: "\(sample.file).\(compressor.suffix)")
        try compressor.compress(plain, to: compressed)
        let bare = directory.url(for: "capture")  // no suffix: found by its magic bytes
        try FileManager.default.copyItem(at: compressed, to: bare)

        var references: [NSDictionary] = []
        for filter in [nil, sample.filter] {
            let options = ["--json"] + (filter.map { ["--filter", $0] } ?? [])
            let reference = try analyze(options + [plain.path])
            #expect(reference.status == 0, "\(reference.stderr)")
            let expected = try comparable(reference.stdout)
            references.append(expected)
            #expect(try packets(reference.stdout) > 0)
            for (what, arguments, stdin) in [("path", [compressed.path], nil as URL?),
                                              ("no suffix", [bare.path], nil),
                                              ("stdin", ["-"], compressed)] {
                let result = try analyze(options + arguments, stdin: stdin)
                #expect(result.status == 0, "\(what), filter \(filter ?? "none"): \(result.stderr)")
                #expect(result.stderr.isEmpty, "\(what): \(result.stderr)")
                #expect(try comparable(result.stdout) == expected, "\(compressor) \(what), filter \(filter ?? "none")")
            }
        }
        // The filter changed the report: the comparison with it tests the filter.
        #expect(references[0] != references[1])
    }

    @Test("a plain capture from stdin gives the same JSON as by path", arguments: Sample.all)
    func plainStdin(_ sample: Sample) throws {
        let plain = samplesFolder.appendingPathComponent(sample.file)
        let reference = try analyze(["--json", plain.path])
        let result = try analyze(["--json", "-"], stdin: plain)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try comparable(result.stdout) == comparable(reference.stdout))
        let document = try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any]
        #expect((document?["source"] as? [String: Any])?["name"] as? String == "-")
    }

    @Test("a compressed capture cut in half: the report of what was read and one warning, exit 0",
          arguments: Compressor.allCases, ["pcap", "pcapng"])
    func truncated(_ compressor: Compressor, _ format: String) throws {
        let directory = try TemporaryDirectory()
        // Large enough that half the compressed bytes hold whole packets (zstd blocks are
        // up to 128 KiB): mixed.pcap, and the same packets as a pcapng.
        let mixed = samplesFolder.appendingPathComponent("mixed.pcap")
        let plain = format == "pcap" ? mixed : try directory.write(try pcapNG(fromPcap: mixed), to: "mixed.pcapng")
        let full = try packets(try analyze(["--json", plain.path]).stdout)
        let compressed = directory.url(for: "capture.\(compressor.suffix)")
        try compressor.compress(plain, to: compressed)
        let bytes = try Data(contentsOf: compressed)
        let half = try directory.write(bytes.prefix(bytes.count / 2), to: "half.\(compressor.suffix)")

        for (arguments, stdin) in [([half.path], nil as URL?), (["-"], half)] {
            let result = try analyze(["--json"] + arguments, stdin: stdin)
            #expect(result.status == 0, "\(result.stderr)")
            let read = try packets(result.stdout)
            #expect(read > 0 && read < full, "\(read) of \(full) packets")
            #expect(result.stderrLines.count == 1, "\(result.stderr)")
            #expect(result.stderr.contains("warning:") && result.stderr.contains("the \(compressor.rawValue) data ends early"),
                    "\(result.stderr)")
            let document = try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any]
            let warnings = (document?["source"] as? [String: Any])?["warnings"] as? [String]
            #expect(warnings?.count == 1)
        }
    }

    @Test("stdin with --ladder, --export and --html gives what the same file by path gives", arguments: [nil, Compressor.zstd])
    func secondPassFromStdin(_ compressor: Compressor?) throws {
        let directory = try TemporaryDirectory()
        let plain = samplesFolder.appendingPathComponent("leak-loopback.pcap")
        var input = plain
        if let compressor {
            input = directory.url(for: "leak.\(compressor.suffix)")
            try compressor.compress(plain, to: input)
        }
        let byPath = try analyze(["--ladder", "1", plain.path])
        let fromStdin = try analyze(["--ladder", "1", "-"], stdin: input)
        #expect(byPath.status == 0 && fromStdin.status == 0, "\(fromStdin.stderr)")
        #expect(!byPath.stdout.isEmpty)
        #expect(fromStdin.stdout == byPath.stdout, "the ladders differ")

        let exported = [directory.url(for: "path.pcap"), directory.url(for: "stdin.pcap")]
        let pages = [directory.url(for: "path.html"), directory.url(for: "stdin.html")]
        for (index, (arguments, stdin)) in [([plain.path], nil as URL?), (["-"], input)].enumerated() {
            let result = try analyze(["--quiet", "--export", exported[index].path, "--export-flows", "all",
                                      "--html", pages[index].path] + arguments, stdin: stdin)
            #expect(result.status == 0, "\(result.stderr)")
        }
        let exports = try exported.map { try Data(contentsOf: $0) }
        #expect(exports[0].count > 24 + 16 * 300, "the export holds the sample's packets")  // 347 packets
        #expect(exports[1] == exports[0], "the exported captures differ")
        let html = try pages.map { try String(contentsOf: $0, encoding: .utf8) }
        #expect(html[0].contains(plain.path))
        #expect(html[1] == html[0].replacingOccurrences(of: plain.path, with: "-"), "the pages differ beyond the source name")
    }

    @Test("stdin that cannot be spooled for a second pass is one error line and exit 2; without a second pass no spool is needed")
    func spoolImpossible() throws {
        let plain = samplesFolder.appendingPathComponent("leak-loopback.pcap")
        let noTemp = ["TMPDIR": "/nonexistent/finscope-no-such-dir"]
        for option in [["--ladder", "1"], ["--export", "/dev/null"], ["--html", "/dev/null"]] {
            let result = try analyze(option + ["-"], stdin: plain, environment: noTemp)
            #expect(result.status == 2, "\(option): \(result.stderr)")
            #expect(result.stderrLines.count == 1, "\(result.stderr)")
            #expect(result.stderr.contains("cannot keep standard input for the second pass"), "\(result.stderr)")
            #expect(result.stdout.isEmpty)
        }
        let json = try analyze(["--json", "-"], stdin: plain, environment: noTemp)
        #expect(json.status == 0, "\(json.stderr)")
        #expect(try packets(json.stdout) == 347)
    }

    @Test("'-' given twice is an error; so is a compressed file that holds no capture")
    func badInputs() throws {
        let directory = try TemporaryDirectory()
        let plain = samplesFolder.appendingPathComponent("leak-loopback.pcap")
        let twice = try analyze(["-", "-"], stdin: plain)
        #expect(twice.status == 2)
        #expect(twice.stderr == "finscope: error: cannot read standard input: '-' may be given only once\n")

        let text = try directory.write(Data(String(repeating: "not a capture\n", count: 100).utf8), to: "notes.txt")
        let gz = directory.url(for: "notes.gz")
        try Compressor.gzip.compress(text, to: gz)
        let notCapture = try analyze([gz.path])
        #expect(notCapture.status == 2)
        #expect(notCapture.stderrLines.count == 1)
        #expect(notCapture.stderr.contains("not a pcap or pcapng capture") && notCapture.stderr.contains("gzip-compressed"),
                "\(notCapture.stderr)")

        // Damaged (not cut short) compressed data: a report of what was read and a warning.
        let zst = directory.url(for: "leak.zst")
        try Compressor.zstd.compress(samplesFolder.appendingPathComponent("mixed.pcap"), to: zst)
        var bytes = try Data(contentsOf: zst)
        for index in stride(from: bytes.count / 2, to: bytes.count / 2 + 64, by: 1) { bytes[index] ^= 0x5a }
        let damaged = try directory.write(bytes, to: "damaged.zst")
        let result = try analyze(["--json", damaged.path])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderrLines.count == 1 && result.stderr.contains("the zstd data is damaged"), "\(result.stderr)")
    }
}
