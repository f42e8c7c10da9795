import FinscopeFindings
import FinscopeFlows
import FinscopeWire

/// `--ndjson`: one JSON object per line, each standing alone (for log shippers). A flow,
/// as it finishes, is `{"type":"flow","flow":{...}}` where the inner object is exactly a
/// SPEC §6 flow object (an element of `flows` in `--json`); the last line is
/// `{"type":"summary","schema":1,"source":...,"summary":...,"groups":[...]}`, the `--json`
/// document without `flows`. The same lines as `finscope live --ndjson`
/// (`JSONReport.renderNDJSON`).
public enum NDJSONReport {
    /// One flow, as one line (with its newline).
    public static func writeFlowLine(_ flow: FlowReport, to json: JSONWriter) {
        json.beginObject()
        json.field("type", "flow")
        json.key("flow"); JSONReport.flow(flow, json)
        json.endObject()
        json.newline()
    }

    /// A socket the kernel held in CLOSE_WAIT before the capture started (live mode's start):
    /// `{"type":"kernelSocket","socket":{...}}`, the socket as in `kernelSockets`.
    public static func writeKernelSocketLine(_ socket: KernelSocketReport, to json: JSONWriter) {
        json.beginObject()
        json.field("type", "kernelSocket")
        json.key("socket"); JSONReport.kernelSocket(socket, json)
        json.endObject()
        json.newline()
    }

    /// The closing summary line (with its newline).
    public static func writeSummaryLine(_ result: AnalysisResult, to json: JSONWriter) {
        json.beginObject()
        json.field("type", "summary")
        json.field("schema", 1)
        json.key("source"); JSONReport.source(result.source, json)
        json.key("summary"); JSONReport.summary(result, json)
        json.key("groups"); JSONReport.groups(result.groups, json)
        JSONReport.hostFields(result, json)
        json.endObject()
        json.newline()
    }

    /// The lines as text (tests).
    public static func flowLine(_ flow: FlowReport) -> String { text { writeFlowLine(flow, to: $0) } }
    public static func kernelSocketLine(_ socket: KernelSocketReport) -> String { text { writeKernelSocketLine(socket, to: $0) } }
    public static func summaryLine(_ result: AnalysisResult) -> String { text { writeSummaryLine(result, to: $0) } }

    static func text(_ body: (JSONWriter) -> Void) -> String {
        let json = JSONWriter.memory()
        defer { json.close() }
        body(json)
        return json.text
    }
}

/// `--csv`: one row per flow, RFC 4180 (comma-separated, CRLF-free, fields with a comma or
/// quote quoted), a header row first. Times as in the JSON: seconds since the epoch with
/// microseconds.
public enum CSVReport {
    public static let columns = [
        "id", "client_ip", "client_port", "server_ip", "server_port", "roles", "first_seen", "last_seen",
        "close", "three_way", "reset_by", "client_state", "server_state", "findings", "finding_endpoints",
        "max_finding_seconds", "client_bytes", "server_bytes", "app_protocol", "app_request", "app_host",
        "app_user_agent", "app_status", "app_requests", "app_sni",
    ]

    public static var header: String { columns.joined(separator: ",") + "\n" }

    /// One row (with its newline), written field by field into `out`: only the
    /// application's strings can hold a comma, quote or line break, so only they are checked.
    public static func writeRow(_ flow: FlowReport, to out: JSONWriter) {
        let comma = UInt8(ascii: ",")
        out.number(flow.id); out.byte(comma)
        out.ip(flow.client.ip, quoted: false); out.byte(comma)
        out.number(Int(flow.client.port)); out.byte(comma)
        out.ip(flow.server.ip, quoted: false); out.byte(comma)
        out.number(Int(flow.server.port)); out.byte(comma)
        out.rawText(flow.roles.rawValue); out.byte(comma)
        out.time(flow.firstSeen); out.byte(comma)
        out.time(flow.lastSeen); out.byte(comma)
        out.rawText(flow.close.rawValue); out.byte(comma)
        if flow.threeWay { out.raw("true,") } else { out.raw("false,") }
        if let resetBy = flow.resetBy { out.rawText(resetBy.rawValue) }
        out.byte(comma)
        if let state = flow.clientEndpoint.state { out.rawText(state.rawValue) }
        out.byte(comma)
        if let state = flow.serverEndpoint.state { out.rawText(state.rawValue) }
        out.byte(comma)
        for (index, finding) in flow.findings.enumerated() {
            if index > 0 { out.byte(UInt8(ascii: ";")) }
            out.rawText(finding.kind.rawValue)
        }
        out.byte(comma)
        for (index, finding) in flow.findings.enumerated() {
            if index > 0 { out.byte(UInt8(ascii: ";")) }
            out.rawText(finding.endpoint.rawValue)
        }
        out.byte(comma)
        if let longest = flow.findings.map(\.duration).max() { out.time(longest) }
        out.byte(comma)
        out.number(flow.clientEndpoint.bytes); out.byte(comma)
        out.number(flow.serverEndpoint.bytes); out.byte(comma)
        let app = flow.app
        if let app { out.rawText(app.protocol.rawValue) }
        out.byte(comma)
        field(app?.request, out); out.byte(comma)
        field(app?.host, out); out.byte(comma)
        field(app?.userAgent, out); out.byte(comma)
        if let status = app?.status { out.number(status) }
        out.byte(comma)
        if let app, app.protocol == .http { out.number(app.requests) }
        out.byte(comma)
        field(app?.sni, out)
        out.byte(UInt8(ascii: "\n"))
    }

    /// A text field, quoted as RFC 4180 wants it when it holds a comma, quote or line break.
    static func field(_ text: String?, _ out: JSONWriter) {
        guard var text else { return }
        text.withUTF8 { bytes in
            let special = bytes.contains { $0 == UInt8(ascii: ",") || $0 == UInt8(ascii: "\"") || $0 == 0x0A || $0 == 0x0D }
            guard special else { if let base = bytes.baseAddress { out.raw(base, bytes.count) }; return }
            out.byte(UInt8(ascii: "\""))
            for byte in bytes {
                if byte == UInt8(ascii: "\"") { out.byte(byte) }
                out.byte(byte)
            }
            out.byte(UInt8(ascii: "\""))
        }
    }

    public static func row(_ flow: FlowReport) -> String { NDJSONReport.text { writeRow(flow, to: $0) } }

    public static func render(_ result: AnalysisResult) -> String {
        NDJSONReport.text { out in
            out.rawText(header)
            for flow in result.flows { writeRow(flow, to: out) }
        }
    }

    /// A field as RFC 4180 wants it: quoted when it holds a comma, quote or line break.
    public static func quoted(_ field: String) -> String {
        NDJSONReport.text { self.field(field, $0) }
    }
}
