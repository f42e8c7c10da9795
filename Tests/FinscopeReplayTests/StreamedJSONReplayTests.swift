import FinscopeAnalysis
import FinscopeFindings
import FinscopeFlows
import FinscopeReport
import FinscopeWire
import Foundation
import Testing

/// `analyze --json` as the CLI now writes it — each flow spooled as it finishes, only flows
/// with findings kept, the flows in finishing order — compared with NAME.expected.json on
/// every capture, the flows put back in id order (first appearance) for the comparison.
@Suite struct StreamedJSONReplayTests {
    @Test(arguments: CaptureReplayTests.expectedFiles())
    func streamedJSONMatchesTheExpectedResult(_ expectedName: String) throws {
        let expected = try #require(try JSONSerialization.jsonObject(
            with: Data(contentsOf: CaptureReplayTests.captures.appendingPathComponent(expectedName))) as? [String: Any])
        let captureName = try #require(expected["capture"] as? String)
        let threshold = (expected["threshold"] as? Double) ?? 5
        let spool = JSONWriter.spool(memoryBound: 4_096)
        defer { spool.close() }
        let result = try OfflineAnalysis.analyze(
            paths: [CaptureReplayTests.captures.appendingPathComponent(captureName).path],
            options: AnalysisOptions(closeWaitThreshold: Nanoseconds((threshold * 1e9).rounded()), retainAllFlows: false),
            hooks: AnalysisHooks(finished: { JSONReport.spool($0, into: spool) }))
        let out = JSONWriter.memory()
        defer { out.close() }
        JSONReport.write(result, spooledFlows: spool, to: out)
        var actual = try #require(try JSONSerialization.jsonObject(with: Data(out.text.utf8)) as? [String: Any])
        let flows = try #require(actual["flows"] as? [[String: Any]])
        actual["flows"] = flows.sorted { ($0["id"] as? Int ?? 0) < ($1["id"] as? Int ?? 0) }
        let differences = CaptureReplayTests.compare(expected: expected, actual: actual)
        #expect(differences.isEmpty, Comment(rawValue: "\(captureName):\n" + differences.joined(separator: "\n")))
    }
}
