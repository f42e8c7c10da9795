import FinscopeAnalysis
import FinscopeFindings
import FinscopeFlows
import FinscopeReport
import FinscopeWire
import Foundation
import Testing

/// Keys in the order written (JSONSerialization forgets it): a small reader for the tests.
indirect enum OrderedJSON {
    case object([(String, OrderedJSON)])
    case array([OrderedJSON])
    case scalar

    var keys: [String] { if case .object(let fields) = self { return fields.map(\.0) } else { return [] } }
    subscript(key: String) -> OrderedJSON? {
        if case .object(let fields) = self { return fields.first { $0.0 == key }?.1 }
        return nil
    }
    var elements: [OrderedJSON] { if case .array(let items) = self { return items } else { return [] } }

    static func parse(_ text: String) throws -> OrderedJSON {
        var bytes = Array(text.utf8)[...]
        return try value(&bytes)
    }

    struct Bad: Error {}

    static func skipSpace(_ bytes: inout ArraySlice<UInt8>) {
        while let b = bytes.first, b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 { bytes.removeFirst() }
    }

    static func string(_ bytes: inout ArraySlice<UInt8>) throws -> String {
        guard bytes.popFirst() == UInt8(ascii: "\"") else { throw Bad() }
        var out: [UInt8] = []
        while let b = bytes.popFirst() {
            if b == UInt8(ascii: "\"") { return String(decoding: out, as: UTF8.self) }
            if b == UInt8(ascii: "\\") { out.append(b); if let next = bytes.popFirst() { out.append(next) } } else { out.append(b) }
        }
        throw Bad()
    }

    static func value(_ bytes: inout ArraySlice<UInt8>) throws -> OrderedJSON {
        skipSpace(&bytes)
        switch bytes.first {
        case UInt8(ascii: "{"):
            bytes.removeFirst()
            var fields: [(String, OrderedJSON)] = []
            skipSpace(&bytes)
            if bytes.first == UInt8(ascii: "}") { bytes.removeFirst(); return .object(fields) }
            while true {
                skipSpace(&bytes)
                let key = try string(&bytes)
                skipSpace(&bytes)
                guard bytes.popFirst() == UInt8(ascii: ":") else { throw Bad() }
                fields.append((key, try value(&bytes)))
                skipSpace(&bytes)
                let next = bytes.popFirst()
                if next == UInt8(ascii: "}") { return .object(fields) }
                guard next == UInt8(ascii: ",") else { throw Bad() }
            }
        case UInt8(ascii: "["):
            bytes.removeFirst()
            var items: [OrderedJSON] = []
            skipSpace(&bytes)
            if bytes.first == UInt8(ascii: "]") { bytes.removeFirst(); return .array(items) }
            while true {
                items.append(try value(&bytes))
                skipSpace(&bytes)
                let next = bytes.popFirst()
                if next == UInt8(ascii: "]") { return .array(items) }
                guard next == UInt8(ascii: ",") else { throw Bad() }
            }
        case UInt8(ascii: "\""):
            _ = try string(&bytes)
            return .scalar
        default:
            while let b = bytes.first, b != UInt8(ascii: ","), b != UInt8(ascii: "}"), b != UInt8(ascii: "]") { bytes.removeFirst() }
            return .scalar
        }
    }
}

/// The SPEC §6 document as `analyze --json` streams it (flows spooled as they finish, only
/// flows with findings kept), checked on every capture in captures/: key order, required
/// fields, and equality with the document built from every retained flow.
@Suite struct JSONSchemaTests {
    static func captureNames() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: packageRoot.appendingPathComponent("captures").path)) ?? []
        return names.filter { $0.hasSuffix(".pcap") || $0.hasSuffix(".pcapng") }.sorted()
    }

    /// As the CLI runs `--json`: the flows into a spool (a tiny memory bound, so the
    /// temporary file is used), the document around them at the end.
    static func streamedDocument(_ name: String) throws -> (text: String, order: [Int]) {
        let spool = JSONWriter.spool(memoryBound: 512)
        defer { spool.close() }
        var order: [Int] = []
        let result = try analyze([capture(name)], retainAll: false, hooks: AnalysisHooks(finished: { flow in
            order.append(flow.id)
            JSONReport.spool(flow, into: spool)
        }))
        #expect(result.flows.allSatisfy { !$0.findings.isEmpty }, "only flows with findings are kept")
        let out = JSONWriter.memory()
        defer { out.close() }
        JSONReport.write(result, spooledFlows: spool, to: out)
        #expect(spool.failure == 0 && out.failure == 0)
        return (out.text, order)
    }

    @Test func everySampleCaptureIsFound() { #expect(Self.captureNames().count >= 30) }

    @Test(arguments: captureNames())
    func streamedJSONFollowsTheSchema(_ name: String) throws {
        let (text, order) = try Self.streamedDocument(name)
        let document = try OrderedJSON.parse(text)
        #expect(Array(document.keys.prefix(5)) == ["schema", "source", "summary", "flows", "groups"])
        let source = try #require(document["source"])
        #expect(Array(source.keys.prefix(9)) == ["kind", "name", "finscopeVersion", "packets", "tcpSegments", "duplicates",
                                                 "start", "end", "skipped"])
        #expect(source["skipped"]?.keys == ["notTCP", "unsupported", "fragment", "truncated", "malformed"])
        let summary = try #require(document["summary"])
        #expect(summary.keys == ["flows", "close", "findings"])
        #expect(summary["close"]?.keys == ["client-first", "server-first", "simultaneous", "crossed", "reset", "half-closed", "open"])
        #expect(summary["findings"]?.keys == ["close-wait", "slow-close", "fin-unacked"])
        for flow in document["flows"]?.elements ?? [] {
            #expect(flow.keys == ["id", "client", "server", "roles", "firstSeen", "lastSeen", "close", "threeWay", "resetBy",
                                  "endpoints", "ignoredResets", "findings", "app"])
            #expect(flow["client"]?.keys == ["ip", "port"])
            #expect(flow["endpoints"]?.keys == ["client", "server"])
            for role in ["client", "server"] {
                #expect(flow["endpoints"]?[role]?.keys == ["finAt", "finAckedAt", "finRetransmits", "resetAt", "path", "state",
                                                            "bytes", "segments"])
            }
            for finding in flow["findings"]?.elements ?? [] {
                #expect(Array(finding.keys.prefix(5)) == ["kind", "endpoint", "since", "seconds", "activity"])
            }
        }
        for group in document["groups"]?.elements ?? [] {
            #expect(Array(group.keys.prefix(7)) == ["kind", "endpoint", "service", "peer", "peers", "flows", "maxSeconds"])
        }

        // Types and values, through Foundation's parser.
        let parsed = try jsonObject(text)
        #expect(parsed["schema"] as? Int == 1)
        let flows = try #require(parsed["flows"] as? [[String: Any]])
        let summaryCounts = try #require(parsed["summary"] as? [String: Any])
        #expect(flows.count == summaryCounts["flows"] as? Int, "every flow listed")
        #expect(flows.map { $0["id"] as? Int ?? -1 } == order, "flows in finishing order")
        #expect(Set(order).count == order.count)
        for flow in flows {
            #expect(flow["firstSeen"] is Double && flow["lastSeen"] is Double)
            #expect(flow["threeWay"] is Bool)
            #expect(flow["resetBy"] is NSNull || flow["resetBy"] is String)
        }
    }

    /// Streamed and spooled, the document equals the one built from every retained flow:
    /// the same top-level fields, and the same flow objects matched by id.
    @Test(arguments: captureNames())
    func streamedJSONEqualsTheRetainedDocument(_ name: String) throws {
        let streamed = try jsonObject(try Self.streamedDocument(name).text)
        let reference = try jsonObject(JSONReport.render(try analyze([capture(name)])))
        #expect(Array(streamed.keys).sorted() == Array(reference.keys).sorted())
        for key in reference.keys where key != "flows" {
            #expect(streamed[key] as? NSObject == reference[key] as? NSObject, "\(name): \(key)")
        }
        func byID(_ document: [String: Any]) -> [Int: NSDictionary] {
            let flows = document["flows"] as? [[String: Any]] ?? []
            return Dictionary(flows.map { ($0["id"] as? Int ?? -1, $0 as NSDictionary) }, uniquingKeysWith: { a, _ in a })
        }
        let got = byID(streamed), want = byID(reference)
        #expect(got.count == (reference["flows"] as? [Any])?.count)
        #expect(got == want, "\(name): flows differ")
    }
}
