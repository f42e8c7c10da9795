import Foundation
import Testing
import FinscopeCapture
import FinscopeTestSupport

/// The frame sources over compressed files: the same frames as the plain file, progress in
/// compressed bytes, and a pcapng block claiming too much in a stream.
@Suite("Compressed sources")
struct CompressedSourceTests {
    static let captures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("captures")

    /// `gzip -c input > output` (Scripts/setup installs gzip, zstd and xz).
    static func compress(_ tool: String, _ input: URL, to output: URL) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [tool, "-c", "-q", input.path]
        FileManager.default.createFile(atPath: output.path, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: output)
        try process.run()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "\(tool) failed")
    }

    /// Every frame: its time, lengths and bytes.
    static func frames(_ source: any FrameSource) -> [String] {
        var all: [String] = []
        while let frame = source.next() {
            all.append("\(frame.time) \(frame.wireLength) \(frame.matches) \(Data(frame.bytes).base64EncodedString())")
        }
        return all
    }

    @Test("the same frames as the plain file; progress counts compressed bytes to the file's size",
          arguments: ["gzip", "zstd", "xz"], ["leak-loopback.pcap", "two-interfaces.pcapng"])
    func sameFrames(_ tool: String, _ sample: String) throws {
        let directory = try TemporaryDirectory()
        let plain = Self.captures.appendingPathComponent(sample)
        let compressed = directory.url(for: "capture")
        try Self.compress(tool, plain, to: compressed)
        let size = try #require(try FileManager.default.attributesOfItem(atPath: compressed.path)[.size] as? Int)

        let expected = Self.frames(try CaptureFiles.open(path: plain.path, filter: nil))
        let source = try CaptureFiles.open(path: compressed.path, filter: nil)
        #expect(source.totalBytes == Int64(size))
        #expect(Self.frames(source) == expected)
        #expect(expected.count > 20)
        #expect(source.bytesRead == Int64(size))
        #expect(source.readError == nil)
        #expect(CaptureFiles.isPcapNG(compressed.path) == sample.hasSuffix(".pcapng"))
        #expect(CaptureFiles.isMicrosecondPcap(compressed.path) == CaptureFiles.isMicrosecondPcap(plain.path))

        let filtered = try CaptureFiles.open(path: compressed.path, filter: "tcp")
        #expect(Self.frames(filtered) == Self.frames(try CaptureFiles.open(path: plain.path, filter: "tcp")))
    }

    @Test("a pcapng block claiming more than 16 MiB in a stream is damage: the frames before it, then a warning")
    func oversizedBlockInAStream() throws {
        let c = clientFirstConversation()
        var writer = PcapNGWriter()
        let interface = writer.addInterface(linkType: 1)
        for frame in c.frames { writer.append(c.bytes(of: frame, link: .ethernet), interface: interface, time: frame.time) }
        var bytes = [UInt8](writer.data())
        let start = bytes.count
        bytes += [6, 0, 0, 0, 0, 0, 0, 2] + [UInt8](repeating: 0xAB, count: 4096)  // type 6, length 32 MiB
        let directory = try TemporaryDirectory()
        let plain = try directory.write(Data(bytes), to: "oversized.pcapng")
        let compressed = directory.url(for: "oversized.pcapng.gz")
        try Self.compress("gzip", plain, to: compressed)

        let source = try CaptureFiles.open(path: compressed.path, filter: nil)
        #expect(Self.frames(source).count == c.frames.count)
        #expect(source.readError == "the block at byte \(start) claims 33554432 bytes, more than the 16 MiB finscope reads as one block (damaged)")
        // The plain file, mapped, knows its size: the same block reaches past its end.
        let mapped = try CaptureFiles.open(path: plain.path, filter: nil)
        #expect(Self.frames(mapped).count == c.frames.count)
        #expect(mapped.readError?.contains("past the end of the file") == true)
    }
}
