import Foundation
import Testing
import FinscopeAnalysis
import FinscopeFindings
import FinscopeWire
@testable import FinscopeFlows

// Text mode counts flows straight from their state (`FlowState.outcome`) and builds reports
// only for flows with findings; `--json` builds a report for every flow. Both must count alike.
@Suite struct TallyTests {
    static let captures: [String] = {
        let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../captures").standardizedFileURL.path
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasSuffix(".pcap") || $0.hasSuffix(".pcapng") }.sorted()
            .map { directory + "/" + $0 }
    }()

    @Test("the tally's array positions are the cases' order in allCases")
    func tallyIndexFollowsAllCases() {
        for (position, kind) in CloseKind.allCases.enumerated() { #expect(kind.tallyIndex == position) }
        for (position, kind) in FindingKind.allCases.enumerated() { #expect(kind.tallyIndex == position) }
    }

    @Test("the sample captures are there to compare")
    func capturesFound() {
        #expect(Self.captures.count >= 10)
    }

    @Test("count-only tally equals the tally of every flow's report", arguments: captures)
    func countOnlyEqualsReports(path: String) throws {
        try compare(path: path, idleTimeout: nil)
    }

    @Test("flows that leave the table mid-run (idle timeout) are counted alike", arguments: captures)
    func countOnlyEqualsReportsWhenFlowsFinishEarly(path: String) throws {
        try compare(path: path, idleTimeout: 1_000_000)
    }

    func compare(path: String, idleTimeout: Nanoseconds?) throws {
        let every = try OfflineAnalysis.analyze(paths: [path], options: AnalysisOptions(retainAllFlows: true, idleTimeout: idleTimeout))
        let counted = try OfflineAnalysis.analyze(paths: [path], options: AnalysisOptions(retainAllFlows: false, idleTimeout: idleTimeout))
        #expect(counted.tally == every.tally, "\(path)")
        #expect(every.tally == every.flows.reduce(into: FlowTally()) { $0.add($1) }, "\(path)")
        #expect(counted.flows == every.flows.filter { !$0.findings.isEmpty }, "\(path)")
        #expect(every.tally.flows == every.flows.count, "\(path)")
    }
}
