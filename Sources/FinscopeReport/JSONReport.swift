import FinscopeFindings
import FinscopeFlows
import FinscopeWire

/// The `--json` document, schema version 1, field for field as SPEC §6 gives it.
/// Written by hand so that key order follows the SPEC and numbers stay exact.
public enum JSONReport {
    public static func render(_ result: AnalysisResult) -> String {
        let json = JSONWriter()
        json.object {
            json.field("schema") { json.number(1) }
            json.field("source") { source(result.source, json) }
            json.field("summary") { summary(result, json) }
            json.field("flows") { json.array(result.flows) { flow($0, json) } }
            json.field("groups") { json.array(result.groups) { group($0, json) } }
            hostFields(result, json)
        }
        return json.text
    }

    /// NDJSON: one line per flow (`{"type":"flow","flow":{...}}`, the flow as in `flows`),
    /// then one summary line (`{"type":"summary","schema":1,"source":...,"summary":...,"groups":[...]}`).
    /// The whole NDJSON document at once (live mode's final report): the same lines
    /// `--ndjson` streams, from `NDJSONReport`.
    public static func renderNDJSON(_ result: AnalysisResult) -> String {
        result.flows.map(NDJSONReport.flowLine).joined() + NDJSONReport.summaryLine(result)
    }

    static func source(_ source: SourceSummary, _ json: JSONWriter) {
        json.object {
            json.field("kind") { json.string(source.kind.rawValue) }
            json.field("name") { json.string(source.name) }
            json.field("finscopeVersion") { json.string(FinscopeVersion.string) }
            json.field("packets") { json.number(source.packets) }
            json.field("tcpSegments") { json.number(source.tcpSegments) }
            json.field("duplicates") { json.number(source.duplicates) }
            json.field("start") { json.time(source.start) }
            json.field("end") { json.time(source.end) }
            json.field("skipped") {
                json.object {
                    for reason in SkipReason.allCases {
                        json.field(reason.key) { json.number(source.skippedCount(reason)) }
                    }
                }
            }
            if source.kind == .live {
                json.field("dropped") { json.number(source.dropped ?? 0) }
                json.field("ifDropped") { json.number(source.interfaceDropped ?? 0) }
            }
            if source.expiredIdle > 0 || source.evicted > 0 {
                json.field("expiredIdle") { json.number(source.expiredIdle) }
                json.field("evicted") { json.number(source.evicted) }
            }
            if !source.warnings.isEmpty {
                json.field("warnings") { json.array(source.warnings) { json.string($0) } }
            }
            sourceExtras(source, json)
        }
    }

    static func summary(_ result: AnalysisResult, _ json: JSONWriter) {
        json.object {
            json.field("flows") { json.number(result.tally.flows) }
            json.field("close") {
                json.object {
                    for kind in CloseKind.allCases { json.field(kind.rawValue) { json.number(result.count(kind)) } }
                }
            }
            json.field("findings") {
                json.object {
                    for kind in FindingKind.allCases { json.field(kind.rawValue) { json.number(result.count(kind)) } }
                }
            }
        }
    }

    static func address(_ address: EndpointAddress, _ json: JSONWriter) {
        json.object {
            json.field("ip") { json.string(address.ip.description) }
            json.field("port") { json.number(Int(address.port)) }
        }
    }

    static func flow(_ flow: FlowReport, _ json: JSONWriter) {
        json.object {
            json.field("id") { json.number(flow.id) }
            json.field("client") { address(flow.client, json) }
            json.field("server") { address(flow.server, json) }
            json.field("roles") { json.string(flow.roles.rawValue) }
            json.field("firstSeen") { json.time(flow.firstSeen) }
            json.field("lastSeen") { json.time(flow.lastSeen) }
            json.field("close") { json.string(flow.close.rawValue) }
            json.field("threeWay") { json.bool(flow.threeWay) }
            json.field("resetBy") { json.optionalString(flow.resetBy?.rawValue) }
            json.field("endpoints") {
                json.object {
                    json.field("client") { endpoint(flow.clientEndpoint, json) }
                    json.field("server") { endpoint(flow.serverEndpoint, json) }
                }
            }
            json.field("ignoredResets") { json.number(flow.ignoredResets) }
            json.field("findings") { json.array(flow.findings) { finding($0, json) } }
            json.field("app") { app(flow.app, json) }
        }
    }

    /// SPEC §8: what the connection carried, or null.
    static func app(_ app: AppHint?, _ json: JSONWriter) {
        guard let app else { return json.null() }
        json.object {
            json.field("protocol") { json.string(app.protocol.rawValue) }
            switch app.protocol {
            case .http:
                json.field("request") { json.optionalString(app.request) }
                json.field("host") { json.optionalString(app.host) }
                json.field("userAgent") { json.optionalString(app.userAgent) }
                json.field("status") { json.optionalNumber(app.status) }
                json.field("requests") { json.number(app.requests) }
            case .tls:
                json.field("sni") { json.optionalString(app.sni) }
                json.field("alpn") {
                    if let alpn = app.alpn { json.array(alpn) { json.string($0) } } else { json.null() }
                }
            }
        }
    }

    /// SPEC §8: a group's most common applications.
    static func apps(_ apps: [FindingGroup.AppCount], _ json: JSONWriter) {
        json.array(apps) { app in
            json.object {
                json.field("protocol") { json.string(app.protocol.rawValue) }
                if app.protocol == .http {
                    json.field("request") { json.optionalString(app.request) }
                    json.field("userAgent") { json.optionalString(app.userAgent) }
                } else {
                    json.field("sni") { json.optionalString(app.sni) }
                }
                json.field("flows") { json.number(app.flows) }
            }
        }
    }

    static func endpoint(_ endpoint: EndpointReport, _ json: JSONWriter) {
        json.object {
            json.field("finAt") { json.time(endpoint.finAt) }
            json.field("finAckedAt") { json.time(endpoint.finAckedAt) }
            json.field("finRetransmits") { json.number(endpoint.finRetransmits) }
            json.field("resetAt") { json.time(endpoint.resetAt) }
            json.field("path") { json.array(endpoint.path) { json.string($0.rawValue) } }
            json.field("state") { json.optionalString(endpoint.state?.rawValue) }
            json.field("bytes") { json.number(endpoint.bytes) }
            json.field("segments") { json.number(endpoint.segments) }
        }
    }

    static func finding(_ finding: Finding, _ json: JSONWriter) {
        json.object {
            json.field("kind") { json.string(finding.kind.rawValue) }
            json.field("endpoint") { json.string(finding.endpoint.rawValue) }
            json.field("since") { json.time(finding.since) }
            json.field("seconds") { json.time(finding.duration) }
            json.field("activity") { json.string(finding.activity.name) }
            if let endedBy = finding.endedBy { json.field("endedBy") { json.string(endedBy.rawValue) } }
            if let process = finding.process {
                json.field("process") {
                    json.object {
                        json.field("pid") { json.number(Int(process.pid)) }
                        json.field("command") { json.string(process.command) }
                        processExtras(process, json)
                    }
                }
            }
            kernelField(finding, json)
        }
    }

    static func group(_ group: FindingGroup, _ json: JSONWriter) {
        json.object {
            json.field("kind") { json.string(group.kind.rawValue) }
            json.field("endpoint") {
                json.object {
                    json.field("ip") { json.string(group.endpointIP.description) }
                    json.field("role") { json.string(group.role.rawValue) }
                }
            }
            json.field("service") { address(group.service, json) }
            json.field("peer") {
                if let peer = group.peer {
                    json.object {
                        json.field("ip") { json.string(peer.ip.description) }
                        json.field("port") { json.optionalNumber(peer.port.map(Int.init)) }
                    }
                } else {
                    json.null()
                }
            }
            json.field("peers") { json.number(group.peers) }
            json.field("flows") { json.number(group.flowCount) }
            json.field("maxSeconds") { json.time(group.maxDuration) }
            json.field("medianSeconds") { json.time(group.medianDuration) }
            json.field("flowIds") { json.array(group.flowIDs) { json.number($0) } }
            json.field("apps") { apps(group.apps, json) }
            json.field("wiresharkFilter") { json.string(Diagnosis.wiresharkFilter(group)) }
            groupKernelFields(group, json)
        }
    }
}

/// A small streaming JSON writer that keeps keys in the order written (a class, so the
/// nested closures can all append to it).
final class JSONWriter {
    private(set) var text = ""
    private var needsComma = [false]

    private func separate() {
        if needsComma[needsComma.count - 1] { text += "," }
        needsComma[needsComma.count - 1] = true
    }

    func object(_ body: () -> Void) {
        text += "{"
        needsComma.append(false)
        body()
        needsComma.removeLast()
        text += "}"
    }

    func array<T>(_ items: [T], _ element: (T) -> Void) {
        text += "["
        needsComma.append(false)
        for item in items {
            separate()
            element(item)
        }
        needsComma.removeLast()
        text += "]"
    }

    func field(_ key: String, _ value: () -> Void) {
        separate()
        appendString(key)
        text += ":"
        needsComma.append(false)
        value()
        needsComma.removeLast()
    }

    func number(_ value: Int) {
        text += String(value)
    }

    func optionalNumber(_ value: Int?) {
        if let value { number(value) } else { null() }
    }

    func null() {
        text += "null"
    }

    func bool(_ value: Bool) {
        text += value ? "true" : "false"
    }

    func string(_ value: String) {
        appendString(value)
    }

    func optionalString(_ value: String?) {
        if let value { string(value) } else { text += "null" }
    }

    /// Seconds since the epoch (or a duration) with microsecond precision; null when absent.
    func time(_ value: Nanoseconds?) {
        if let value { text += secondsText(value) } else { text += "null" }
    }

    private func appendString(_ value: String) {
        text += "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": text += "\\\""
            case "\\": text += "\\\\"
            case "\n": text += "\\n"
            case "\r": text += "\\r"
            case "\t": text += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                text += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: text.unicodeScalars.append(scalar)
            }
        }
        text += "\""
    }
}
