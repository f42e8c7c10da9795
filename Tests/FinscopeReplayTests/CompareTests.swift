import Foundation
import Testing

/// The replay comparison itself, on literal expected/actual pairs: what it must accept
/// and every kind of disagreement it must name (groups and app, SPEC §4, §6, §8).
@Suite struct CompareTests {
    static func json(_ text: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
    }

    static var expected: [String: Any] { json(expectedText) }

    static let expectedText = """
        {"flows": [
          {"client": {"ip": "127.0.0.1", "port": 40000}, "server": {"ip": "127.0.0.1", "port": 8282},
           "app": {"protocol": "http", "request": "PUT /heartbeat", "host": "127.0.0.1:8282",
                   "userAgent": "Apache-HttpClient/4.5.14 (Java/17.0.15)", "status": 201, "requests": 1}},
          {"client": {"ip": "127.0.0.1", "port": 40001}, "server": {"ip": "127.0.0.1", "port": 8443},
           "app": {"protocol": "tls", "sni": "api.finscope.test", "alpn": ["h2", "http/1.1"]}},
          {"client": {"ip": "10.77.0.1", "port": 40002}, "server": {"ip": "10.77.0.2", "port": 8080}, "app": null},
          {"client": {"ip": "10.77.0.1", "port": 40003}, "server": {"ip": "10.77.0.2", "port": 8080}}
        ],
        "groups": [
          {"kind": "close-wait", "endpoint": {"ip": "127.0.0.1", "role": "client"},
           "service": {"ip": "127.0.0.1", "port": 8282}, "peer": {"ip": "127.0.0.1", "port": 8282}, "peers": 1, "flows": 10},
          {"kind": "close-wait", "endpoint": {"ip": "10.77.0.2", "role": "server"},
           "service": {"ip": "10.77.0.2", "port": 8080}, "peer": null, "peers": 3, "flows": 9}
        ]}
        """

    /// What the analysis would print for the same capture (fields SPEC §6/§8 add included).
    static let agreeing = """
        {"flows": [
          {"client": {"ip": "127.0.0.1", "port": 40000}, "server": {"ip": "127.0.0.1", "port": 8282},
           "app": {"protocol": "http", "request": "PUT /heartbeat", "host": "127.0.0.1:8282",
                   "userAgent": "Apache-HttpClient/4.5.14 (Java/17.0.15)", "status": 201, "requests": 1}},
          {"client": {"ip": "127.0.0.1", "port": 40001}, "server": {"ip": "127.0.0.1", "port": 8443},
           "app": {"protocol": "tls", "sni": "api.finscope.test", "alpn": ["h2", "http/1.1"], "extra": 1}},
          {"client": {"ip": "10.77.0.1", "port": 40002}, "server": {"ip": "10.77.0.2", "port": 8080}, "app": null},
          {"client": {"ip": "10.77.0.1", "port": 40003}, "server": {"ip": "10.77.0.2", "port": 8080},
           "app": {"protocol": "http"}}
        ],
        "groups": [
          {"kind": "close-wait", "endpoint": {"ip": "10.77.0.2", "role": "server"},
           "service": {"ip": "10.77.0.2", "port": 8080}, "peer": null, "peers": 3, "flows": 9, "maxSeconds": 7.5,
           "apps": []},
          {"kind": "close-wait", "endpoint": {"ip": "127.0.0.1", "role": "client"},
           "service": {"ip": "127.0.0.1", "port": 8282}, "peer": {"ip": "127.0.0.1", "port": 8282}, "peers": 1,
           "flows": 10, "maxSeconds": 9.1}
        ]}
        """

    static func differences(_ actual: String) -> [String] {
        CaptureReplayTests.compare(expected: expected, actual: json(actual))
    }

    static func edited(_ replacements: [(String, String)]) -> String {
        var text = agreeing
        for (from, to) in replacements {
            precondition(text.contains(from), "test edit \(from) does not apply")
            text = text.replacingOccurrences(of: from, with: to)
        }
        return text
    }

    @Test("an agreeing analysis: no difference (group order, added fields and unstated apps ignored)")
    func agreement() {
        #expect(Self.differences(Self.agreeing) == [])
    }

    @Test("each app disagreement is named")
    func apps() {
        let found = Self.differences(Self.edited([
            ("\"status\": 201", "\"status\": 200"),
            ("[\"h2\", \"http/1.1\"]", "[\"http/1.1\", \"h2\"]"),
            ("\"port\": 40002}, \"server\": {\"ip\": \"10.77.0.2\", \"port\": 8080}, \"app\": null",
             "\"port\": 40002}, \"server\": {\"ip\": \"10.77.0.2\", \"port\": 8080}, \"app\": {\"protocol\": \"http\"}"),
        ]))
        #expect(found.count == 3, "\(found)")
        #expect(found.contains { $0.contains("app.status") && $0.contains("201") && $0.contains("200") })
        #expect(found.contains { $0.contains("app.alpn") })
        #expect(found.contains { $0.contains("40002") && $0.contains("app:") && $0.contains("expected null") })
    }

    @Test("an app the analysis does not give, or gives as null, is named field by field or whole")
    func missingApp() {
        let null = Self.differences(Self.edited([("\"app\": {\"protocol\": \"tls\", \"sni\": \"api.finscope.test\", \"alpn\": [\"h2\", \"http/1.1\"], \"extra\": 1}", "\"app\": null")]))
        #expect(null.count == 1 && null[0].contains("40001") && null[0].contains("got null"), "\(null)")
        let userAgentCut = Self.differences(Self.edited([("\"userAgent\": \"Apache-HttpClient/4.5.14 (Java/17.0.15)\", ", "\"userAgent\": null, ")]))
        #expect(userAgentCut.count == 1 && userAgentCut[0].contains("app.userAgent"), "\(userAgentCut)")
    }

    @Test("group disagreements: peer, peers, flows, a missing and an unexpected group")
    func groups() {
        let counts = Self.differences(Self.edited([("\"peers\": 3, \"flows\": 9", "\"peers\": 2, \"flows\": 8"),
                                                   ("\"peer\": null", "\"peer\": {\"ip\": \"10.77.0.1\", \"port\": null}")]))
        #expect(counts.count == 3, "\(counts)")
        #expect(counts.allSatisfy { $0.contains("group close-wait 10.77.0.2 server → 10.77.0.2:8080") })
        #expect(counts.contains { $0.contains(" peers:") } && counts.contains { $0.contains(" flows:") }
                && counts.contains { $0.contains(" peer:") })
        // the same group under another service port: one missing, one unexpected
        let moved = Self.differences(Self.edited([("\"service\": {\"ip\": \"10.77.0.2\", \"port\": 8080}",
                                                   "\"service\": {\"ip\": \"10.77.0.2\", \"port\": 8081}")]))
        #expect(moved.count == 2, "\(moved)")
        #expect(moved.contains { $0.contains("10.77.0.2:8080") && $0.contains("not found") })
        #expect(moved.contains { $0.contains("10.77.0.2:8081") && $0.contains("not expected") })
        // no groups at all in the analysis
        let none = CaptureReplayTests.compare(expected: Self.expected, actual: ["flows": Self.json(Self.agreeing)["flows"]!])
        #expect(none.count == 2 && none.allSatisfy { $0.contains("not found") }, "\(none)")
    }
}
