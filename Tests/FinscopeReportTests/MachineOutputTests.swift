import FinscopeWire
import FinscopeFindings
import FinscopeAnalysis
import FinscopeCapture
import FinscopeFlows
import FinscopeReport
import FinscopeTestSupport
import Foundation
import Testing

/// --ndjson and --csv, parsed back and compared with the --json report of the same capture.
@Suite struct MachineOutputTests {
    /// Flow objects of the JSON report by id.
    func jsonFlows(_ result: AnalysisResult) throws -> [Int: NSDictionary] {
        let document = try jsonObject(JSONReport.render(result))
        let flows = try #require(document["flows"] as? [[String: Any]])
        return Dictionary(uniqueKeysWithValues: flows.map { ($0["id"] as! Int, $0 as NSDictionary) })
    }

    @Test(arguments: ["leak-loopback.pcap", "mixed.pcap", "port-reuse.pcap", "slow-close.pcap"])
    func ndjsonStreamsExactlyTheJSONFlowsThenTheSummary(name: String) throws {
        let reference = try analyze([capture(name)])
        let expected = try jsonFlows(reference)

        // As the CLI runs it: only flows with findings retained, every flow streamed.
        var lines: [String] = []
        let streamed = try analyze([capture(name)], retainAll: false,
                                   hooks: AnalysisHooks(finished: { lines.append(NDJSONReport.flowLine($0)) }))
        lines.append(NDJSONReport.summaryLine(streamed))
        #expect(lines.allSatisfy { $0.hasSuffix("\n") && $0.dropLast().contains("\n") == false })

        var seen: [Int: NSDictionary] = [:]
        for line in lines.dropLast() {
            let wrapper = try jsonObject(line)
            #expect(Set(wrapper.keys) == ["type", "flow"])
            #expect(wrapper["type"] as? String == "flow")
            let object = try #require(wrapper["flow"] as? [String: Any])
            let id = try #require(object["id"] as? Int)
            #expect(seen[id] == nil, "flow \(id) written twice")
            seen[id] = object as NSDictionary
        }
        #expect(seen.count == expected.count)
        for (id, flow) in expected {
            #expect(seen[id] == flow, "flow \(id) differs from the JSON report")
        }

        let summary = try jsonObject(lines.last!)
        let document = try jsonObject(JSONReport.render(reference))
        #expect(summary["type"] as? String == "summary")
        #expect(Set(summary.keys) == ["type", "schema", "source", "summary", "groups"])
        for key in ["schema", "source", "summary", "groups"] {
            #expect(summary[key] as? NSObject == document[key] as? NSObject, "\(key)")
        }
    }

    @Test func sameLinesAsLiveNDJSON() throws {
        let result = try analyze([capture("leak-loopback.pcap")])
        #expect(JSONReport.renderNDJSON(result) == result.flows.map(NDJSONReport.flowLine).joined() + NDJSONReport.summaryLine(result))
    }

    @Test func ndjsonFlowsComeOutAsTheyFinish() throws {
        // mixed.pcap has many connections that close long before the capture ends.
        var order: [Int] = []
        _ = try analyze([capture("mixed.pcap")], retainAll: false,
                        hooks: AnalysisHooks(finished: { order.append($0.id) }))
        #expect(order.count == 2001)
        #expect(order != order.sorted(), "closed flows leave the table before older open ones")
    }

    /// A minimal RFC 4180 reader (the rows finscope writes never need multi-line fields).
    func parseCSV(_ text: String) -> [[String]] {
        text.split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.isEmpty }.map { line in
            var fields: [String] = [], field = "", quoted = false
            var characters = Array(line)[...]
            while let c = characters.popFirst() {
                if quoted {
                    if c == "\"" {
                        if characters.first == "\"" { field.append("\""); characters.removeFirst() } else { quoted = false }
                    } else { field.append(c) }
                } else if c == "\"" { quoted = true }
                else if c == "," { fields.append(field); field = "" }
                else { field.append(c) }
            }
            fields.append(field)
            return fields
        }
    }

    @Test(arguments: ["leak-loopback.pcap", "mixed.pcap", "ipv6-leak.pcap", "reset-client.pcap"])
    func csvRowsEqualTheJSONFlows(name: String) throws {
        let result = try analyze([capture(name)])
        let rows = parseCSV(CSVReport.render(result))
        #expect(rows.first == CSVReport.columns)
        let flows = try jsonFlows(result)
        #expect(rows.count - 1 == flows.count)
        for row in rows.dropFirst() {
            #expect(row.count == CSVReport.columns.count)
            let r = Dictionary(uniqueKeysWithValues: zip(CSVReport.columns, row))
            let flow = try #require(flows[Int(r["id"]!)!])
            let client = flow["client"] as! [String: Any], server = flow["server"] as! [String: Any]
            #expect(r["client_ip"] == client["ip"] as? String)
            #expect(Int(r["client_port"]!) == client["port"] as? Int)
            #expect(r["server_ip"] == server["ip"] as? String)
            #expect(Int(r["server_port"]!) == server["port"] as? Int)
            #expect(r["roles"] == flow["roles"] as? String)
            #expect(Double(r["first_seen"]!) == flow["firstSeen"] as? Double)
            #expect(Double(r["last_seen"]!) == flow["lastSeen"] as? Double)
            #expect(r["close"] == flow["close"] as? String)
            #expect(r["three_way"] == ((flow["threeWay"] as! Bool) ? "true" : "false"))
            #expect(r["reset_by"] == (flow["resetBy"] as? String ?? ""))
            let endpoints = flow["endpoints"] as! [String: [String: Any]]
            #expect(r["client_state"] == (endpoints["client"]!["state"] as? String ?? ""))
            #expect(r["server_state"] == (endpoints["server"]!["state"] as? String ?? ""))
            let findings = flow["findings"] as! [[String: Any]]
            #expect(r["findings"] == findings.map { $0["kind"] as! String }.joined(separator: ";"))
            #expect(r["finding_endpoints"] == findings.map { $0["endpoint"] as! String }.joined(separator: ";"))
            let maxSeconds = findings.map { $0["seconds"] as! Double }.max()
            #expect(r["max_finding_seconds"].flatMap { Double($0) } == maxSeconds)
        }
    }

    @Test func csvQuotesFieldsThatNeedIt() {
        #expect(CSVReport.quoted("plain") == "plain")
        #expect(CSVReport.quoted("a,b") == "\"a,b\"")
        #expect(CSVReport.quoted("say \"hi\"") == "\"say \"\"hi\"\"\"")
    }
}
