import FinscopeTestSupport
import Foundation
import Testing

/// Compressed captures are decompressed as they are read: a capture far larger than the
/// memory finscope uses, compressed with zstd, is read in the memory a plain file takes.
/// Skipped under sanitizers (FINSCOPE_SANITIZER), whose shadow memory and quarantine
/// change every figure.
@Suite("Compressed input memory")
struct CompressedMemoryTests {
    static let megabyte = 1 << 20

    /// capture-gen, built beside finscope (Benchmarks/capture-gen).
    static let captureGen = finscopeBinary.deletingLastPathComponent().appendingPathComponent("capture-gen")

    static func run(_ tool: String, _ arguments: [String], stdout: URL? = nil) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [tool] + arguments
        process.standardInput = FileHandle.nullDevice
        if let stdout {
            FileManager.default.createFile(atPath: stdout.path, contents: nil)
            process.standardOutput = try FileHandle(forWritingTo: stdout)
        } else {
            process.standardOutput = FileHandle.nullDevice
        }
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// The same packets as a pcapng file (one interface, microsecond stamps), written as
    /// they are read: a little-endian microsecond pcap file in, enhanced packet blocks out.
    static func convertToPcapNG(_ pcap: URL, to output: URL) throws {
        let input = try FileHandle(forReadingFrom: pcap)
        defer { try? input.close() }
        FileManager.default.createFile(atPath: output.path, contents: nil)
        let out = try FileHandle(forWritingTo: output)
        defer { try? out.close() }
        var pending = [UInt8]()
        pending.reserveCapacity(9 << 20)
        func put32(_ value: Int) {
            let v = UInt32(truncatingIfNeeded: value)
            pending += [UInt8(v & 0xff), UInt8(v >> 8 & 0xff), UInt8(v >> 16 & 0xff), UInt8(v >> 24)]
        }
        var bytes = [UInt8](try input.read(upToCount: 24) ?? Data())
        try #require(bytes.count == 24 && bytes[0..<4] == [0xd4, 0xc3, 0xb2, 0xa1])
        let linkType = Int(bytes[20]) | Int(bytes[21]) << 8
        put32(0x0A0D_0D0A); put32(28); put32(0x1A2B_3C4D); put32(1); put32(-1); put32(-1); put32(28)
        put32(1); put32(20); put32(linkType); put32(0); put32(20)
        bytes = []
        var position = 0
        func u32(_ at: Int) -> Int { Int(bytes[at]) | Int(bytes[at + 1]) << 8 | Int(bytes[at + 2]) << 16 | Int(bytes[at + 3]) << 24 }
        while true {
            if bytes.count - position < 16 + 262_144 {
                bytes = Array(bytes[position...]) + [UInt8](try input.read(upToCount: 8 << 20) ?? Data())
                position = 0
            }
            guard bytes.count - position >= 16 else { break }
            let captured = u32(position + 8)
            guard bytes.count - position >= 16 + captured else { break }
            let micros = UInt64(u32(position)) * 1_000_000 + UInt64(u32(position + 4))
            let padded = (captured + 3) & ~3
            put32(6); put32(32 + padded); put32(0); put32(Int(micros >> 32)); put32(Int(micros & 0xffff_ffff))
            put32(captured); put32(u32(position + 12))
            pending += bytes[(position + 16)..<(position + 16 + captured)]
            pending += [UInt8](repeating: 0, count: padded - captured)
            put32(32 + padded)
            position += 16 + captured
            if pending.count >= 8 << 20 {
                try out.write(contentsOf: pending)
                pending.removeAll(keepingCapacity: true)
            }
        }
        try out.write(contentsOf: pending)
    }

    @Test("a 280 MB capture compressed with zstd is read in a small, flat memory (pcap and pcapng)",
          .timeLimit(.minutes(10)), .enabled(if: sanitizer == nil, "memory ceilings do not apply under a sanitizer"))
    func zstdStreams() throws {
        try #require(FileManager.default.isExecutableFile(atPath: finscopeBinary.path), "build finscope first")
        try #require(FileManager.default.isExecutableFile(atPath: Self.captureGen.path), "build capture-gen first (swift build)")
        let directory = try TemporaryDirectory(prefix: "finscope-zstd")
        let plain = directory.url(for: "big.pcap")
        // Full frames: ~900 bytes a packet on disk.
        #expect(try Self.run(Self.captureGen.path, ["--packets", "300000", "--flows", "3000", "--concurrent", "200",
                                                     "--seed", "7", "-o", plain.path]) == 0)
        let pcapng = directory.url(for: "big.pcapng")
        try Self.convertToPcapNG(plain, to: pcapng)

        var figures: [String] = []
        for uncompressed in [plain, pcapng] {
            let size = try #require(try FileManager.default.attributesOfItem(atPath: uncompressed.path)[.size] as? Int)
            #expect(size > 200 * Self.megabyte, "\(size) bytes")
            let compressed = directory.url(for: uncompressed.lastPathComponent + ".zst")
            #expect(try Self.run("zstd", ["-q", "-1", "-c", uncompressed.path], stdout: compressed) == 0)

            let reference = try finscope(["analyze", "--json", uncompressed.path], in: directory.url)
            #expect(reference.status == 0, "\(reference.stderr)")
            let read = try finscope(["analyze", "--json", compressed.path], in: directory.url)
            #expect(read.status == 0, "\(read.stderr)")
            #expect(read.stderr.isEmpty, "\(read.stderr)")
            var expected = try jsonSource(reference.stdout)
            var got = try jsonSource(read.stdout)
            expected["name"] = nil
            got["name"] = nil
            #expect(expected["packets"] as? Int ?? 0 > 300_000)
            #expect(NSDictionary(dictionary: got) == NSDictionary(dictionary: expected))
            // Far below the uncompressed size: a few MB of buffers over what a plain file takes.
            #expect(read.peakRSS < size / 4, "peak RSS \(read.peakRSS / Self.megabyte) MB for \(size / Self.megabyte) MB")
            #expect(read.peakRSS < reference.peakRSS + 48 * Self.megabyte,
                    "zstd \(read.peakRSS / Self.megabyte) MB, plain \(reference.peakRSS / Self.megabyte) MB")
            figures.append("\(uncompressed.pathExtension) \(size / Self.megabyte) MB: plain \(reference.peakRSS / Self.megabyte) MB, "
                + "zstd \(read.peakRSS / Self.megabyte) MB")
            try? FileManager.default.removeItem(at: compressed)
        }
        print("compressed input peak RSS: " + figures.joined(separator: "; "))
    }
}
