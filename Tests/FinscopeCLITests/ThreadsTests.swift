import FinscopeTestSupport
import Foundation
import Testing

/// `analyze --threads 2` (reading and decoding on one thread, the flow tracker on another)
/// reports exactly what `--threads 1` reports: the same JSON (flows compared by id, should
/// their order ever follow finishing order), the same NDJSON lines, the same warnings.
@Suite struct ThreadsTests {
    static func captureFiles() -> [String] {
        var files: [String] = []
        let folder = repositoryRoot.appendingPathComponent("captures")
        for name in ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).sorted()
        where name.hasSuffix(".pcap") || name.hasSuffix(".pcapng") {
            files.append(folder.appendingPathComponent(name).path)
        }
        return files
    }

    static func corpusFiles() -> [String] {
        let corpus = repositoryRoot.appendingPathComponent("../shared/corpus/public").standardizedFileURL
        guard let manifest = try? String(contentsOf: corpus.appendingPathComponent("MANIFEST.tsv"), encoding: .utf8) else { return [] }
        return manifest.split(separator: "\n").dropFirst().map { corpus.appendingPathComponent(String($0.split(separator: "\t")[0])).path }
            .filter { FileManager.default.fileExists(atPath: $0) }
    }

    /// The JSON report with its flows in id order.
    static func normalized(_ text: String) throws -> NSDictionary {
        let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        var copy = object
        if let flows = object["flows"] as? [[String: Any]] {
            copy["flows"] = flows.sorted { ($0["id"] as? Int ?? 0) < ($1["id"] as? Int ?? 0) }
        }
        return copy as NSDictionary
    }

    static func compareJSON(_ path: String) throws {
        let one = try finscope(["analyze", "--json", "--threads", "1", path])
        let two = try finscope(["analyze", "--json", "--threads", "2", path])
        #expect(one.status == two.status, "\(path)")
        #expect(one.stderr == two.stderr, "\(path)")
        if one.status == 0 {
            #expect(try normalized(one.stdout) == normalized(two.stdout), "\(path)")
        }
    }

    @Test("captures/: --json of --threads 1 and --threads 2 are equal")
    func capturesJSON() throws {
        let files = Self.captureFiles()
        #expect(files.count >= 30)
        for path in files { try Self.compareJSON(path) }
    }

    @Test("captures/: --ndjson of --threads 1 and --threads 2 hold the same lines")
    func capturesNDJSON() throws {
        for path in Self.captureFiles() {
            let one = try finscope(["analyze", "--ndjson", "--threads", "1", path])
            let two = try finscope(["analyze", "--ndjson", "--threads", "2", path])
            #expect(one.status == two.status)
            let lines = { (run: Run) in run.stdout.split(separator: "\n").sorted() }
            #expect(lines(one) == lines(two), "\(path)")
            #expect(!one.stdout.isEmpty)
        }
    }

    @Test("../shared/corpus/public: --json of --threads 1 and --threads 2 are equal")
    func corpusJSON() throws {
        let files = Self.corpusFiles()
        guard !files.isEmpty else {
            print("ThreadsTests: corpus skipped, no ../shared/corpus/public beside this checkout")
            return
        }
        for path in files { try Self.compareJSON(path) }
    }

    @Test("several files merged, a filter, and text output agree too")
    func mergedAndFiltered() throws {
        let folder = repositoryRoot.appendingPathComponent("captures")
        let files = ["leak-loopback.pcap", "http-idle-pool.pcap", "reset-client.pcap"].map { folder.appendingPathComponent($0).path }
        for extra in [[], ["--filter", "tcp port 8080"], ["--flows"]] {
            let one = try finscope(["analyze", "--threads", "1"] + extra + files)
            let two = try finscope(["analyze", "--threads", "2"] + extra + files)
            #expect(one.status == two.status)
            #expect(one.stdout == two.stdout, "\(extra)")
            #expect(!one.stdout.isEmpty)
        }
    }

    @Test("--threads takes 1 or 2")
    func validation() throws {
        let path = repositoryRoot.appendingPathComponent("captures/three-way.pcap").path
        for bad in ["0", "3", "-1"] {
            let run = try finscope(["analyze", "--threads=\(bad)", path])
            #expect(run.status == 64, "--threads \(bad): \(run.stderr)")
            #expect(run.stderr.contains("--threads must be 1 or 2"), "\(run.stderr)")
        }
    }
}
