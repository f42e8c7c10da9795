import FinscopeWire
import FinscopeFindings
import FinscopeAnalysis
import FinscopeCapture
import FinscopeFlows
import FinscopeReport
import Foundation
import Testing

/// Replays each kernel-made capture in captures/ through the same code path as
/// `finscope analyze --json` and compares the result with NAME.expected.json, which was
/// written from what the scenario's programs did and checked against tshark — never from
/// finscope's output. Every disagreement is named.
@Suite struct CaptureReplayTests {
    static let captures = packageRoot.appendingPathComponent("captures")

    static func expectedFiles() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: captures.path)) ?? []
        return names.filter { $0.hasSuffix(".expected.json") }.sorted()
    }

    @Test func everyCaptureHasAnExpectedResult() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.captures.path)
        let capturesFound = names.filter { $0.hasSuffix(".pcap") || $0.hasSuffix(".pcapng") }
        #expect(!capturesFound.isEmpty)
        for capture in capturesFound {
            let stem = capture.replacingOccurrences(of: ".pcapng", with: "").replacingOccurrences(of: ".pcap", with: "")
            #expect(names.contains(stem + ".expected.json"), "\(capture) has no expected result")
        }
    }

    @Test(arguments: expectedFiles())
    func replay(_ expectedName: String) throws {
        let expectedURL = Self.captures.appendingPathComponent(expectedName)
        let expected = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: expectedURL)) as? [String: Any])
        let captureName = try #require(expected["capture"] as? String)
        let threshold = (expected["threshold"] as? Double) ?? 5
        let result = try OfflineAnalysis.analyze(
            paths: [Self.captures.appendingPathComponent(captureName).path],
            options: AnalysisOptions(closeWaitThreshold: Nanoseconds((threshold * 1e9).rounded())))
        let actual = try #require(
            try JSONSerialization.jsonObject(with: Data(JSONReport.render(result).utf8)) as? [String: Any])
        let differences = Self.compare(expected: expected, actual: actual)
        #expect(differences.isEmpty, Comment(rawValue: "\(captureName):\n" + differences.joined(separator: "\n")))
    }

    /// Every field the expected file states, compared with the analysis; flows are matched
    /// in order of first appearance (by endpoints when `allFlows` is false); groups by
    /// kind, endpoint (address and role) and service (address and port), then their
    /// `peer`, `peers` and `flows` compared; a flow's `app` field by field (`null` when
    /// the expected file says null; fields the analysis adds are not compared).
    static func compare(expected: [String: Any], actual: [String: Any]) -> [String] {
        var differences: [String] = []
        func check(_ path: String, _ want: Any?, _ got: Any?) {
            if !same(want, got) { differences.append("  \(path): expected \(show(want)), got \(show(got))") }
        }
        if let source = expected["source"] as? [String: Any] {
            let got = actual["source"] as? [String: Any] ?? [:]
            for (key, value) in source { check("source.\(key)", value, got[key]) }
        }
        if let summary = expected["summary"] as? [String: Any] {
            let got = actual["summary"] as? [String: Any] ?? [:]
            check("summary.flows", summary["flows"], got["flows"])
            for part in ["close", "findings"] {
                let want = summary[part] as? [String: Any] ?? [:]
                let have = got[part] as? [String: Any] ?? [:]
                for (key, value) in want { check("summary.\(part).\(key)", value, have[key]) }
            }
        }
        let wantFlows = expected["flows"] as? [[String: Any]] ?? []
        let gotFlows = actual["flows"] as? [[String: Any]] ?? []
        let allFlows = expected["allFlows"] as? Bool ?? true
        if allFlows, wantFlows.count != gotFlows.count {
            differences.append("  flows: expected \(wantFlows.count), got \(gotFlows.count)")
        }
        var unused = gotFlows
        for (index, want) in wantFlows.enumerated() {
            let label = "flow \(index + 1) \(endpoint(want["client"]))→\(endpoint(want["server"]))"
            let position: Int?
            if allFlows {
                position = unused.isEmpty ? nil : 0
            } else {
                // Ephemeral ports recur in a long capture: among flows with the same
                // endpoints, take the first whose close kind matches, else the first.
                let candidates = unused.indices.filter {
                    same(want["client"], unused[$0]["client"]) && same(want["server"], unused[$0]["server"])
                }
                position = candidates.first { same(want["close"], unused[$0]["close"]) } ?? candidates.first
            }
            guard let position else {
                differences.append("  \(label): not found in the analysis")
                continue
            }
            let got = unused.remove(at: position)
            for key in ["client", "server", "roles", "close", "threeWay", "resetBy"] where want[key] != nil {
                check("\(label) \(key)", want[key], got[key])
            }
            if let paths = want["paths"] as? [String: Any] {
                let endpoints = got["endpoints"] as? [String: [String: Any]] ?? [:]
                for (role, path) in paths { check("\(label) \(role) path", path, endpoints[role]?["path"]) }
            }
            if let app = want["app"] {
                if let fields = app as? [String: Any] {
                    if let have = got["app"] as? [String: Any] {
                        for (key, value) in fields.sorted(by: { $0.key < $1.key }) {
                            check("\(label) app.\(key)", value, have[key])
                        }
                    } else {
                        check("\(label) app", app, got["app"])
                    }
                } else {
                    check("\(label) app", app, got["app"])
                }
            }
            if let findings = want["findings"] as? [[String: Any]] {
                let have = (got["findings"] as? [[String: Any]] ?? []).map { finding in
                    ["endpoint": finding["endpoint"] ?? "", "kind": finding["kind"] ?? ""] as [String: Any]
                }
                let wantPairs = findings.map { "\($0["endpoint"] ?? "")/\($0["kind"] ?? "")" }.sorted()
                let havePairs = have.map { "\($0["endpoint"] ?? "")/\($0["kind"] ?? "")" }.sorted()
                check("\(label) findings", wantPairs, havePairs)
                for finding in findings {
                    guard let activity = finding["activity"] else { continue }
                    let match = (got["findings"] as? [[String: Any]] ?? []).first {
                        same($0["endpoint"], finding["endpoint"]) && same($0["kind"], finding["kind"])
                    }
                    check("\(label) \(finding["kind"] ?? "") activity", activity, match?["activity"])
                }
            }
        }
        if let wantGroups = expected["groups"] as? [[String: Any]] {
            var unmatched = actual["groups"] as? [[String: Any]] ?? []
            for want in wantGroups {
                let key = groupKey(want)
                guard let position = unmatched.firstIndex(where: { groupKey($0) == key }) else {
                    differences.append("  group \(key): not found in the analysis")
                    continue
                }
                let got = unmatched.remove(at: position)
                for field in ["peer", "peers", "flows"] { check("group \(key) \(field)", want[field], got[field]) }
            }
            for extra in unmatched { differences.append("  group \(groupKey(extra)): not expected") }
        }
        return differences
    }

    /// kind, stuck endpoint and service: what identifies a group (SPEC §4).
    static func groupKey(_ group: [String: Any]) -> String {
        let endpoint = group["endpoint"] as? [String: Any] ?? [:]
        return "\(group["kind"] ?? "?") \(endpoint["ip"] ?? "?") \(endpoint["role"] ?? "?") → \(Self.endpoint(group["service"]))"
    }

    static func endpoint(_ value: Any?) -> String {
        guard let object = value as? [String: Any] else { return "?" }
        return "\(object["ip"] ?? "?"):\(object["port"] ?? "?")"
    }

    static func same(_ a: Any?, _ b: Any?) -> Bool {
        switch (a, b) {
        case (nil, nil): return true
        case (is NSNull, nil), (nil, is NSNull): return true
        case let (x as NSNull, y as NSNull): return x == y
        case let (x as [String: Any], y as [String: Any]):
            return x.count == y.count && x.allSatisfy { same($0.value, y[$0.key]) }
        case let (x as [Any], y as [Any]):
            return x.count == y.count && zip(x, y).allSatisfy { same($0, $1) }
        case let (x as String, y as String): return x == y
        case let (x as NSNumber, y as NSNumber): return x == y
        default: return false
        }
    }

    static func show(_ value: Any?) -> String {
        guard let value else { return "nothing" }
        if value is NSNull { return "null" }
        if let data = try? JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed, .sortedKeys]) {
            return String(decoding: data, as: UTF8.self)
        }
        return "\(value)"
    }
}
