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

    public static func row(_ flow: FlowReport) -> String {
        let fields: [String] = [
            String(flow.id),
            flow.client.ip.description, String(flow.client.port),
            flow.server.ip.description, String(flow.server.port),
            flow.roles.rawValue,
            secondsText(flow.firstSeen), secondsText(flow.lastSeen),
            flow.close.rawValue,
            flow.threeWay ? "true" : "false",
            flow.resetBy?.rawValue ?? "",
            flow.clientEndpoint.state?.rawValue ?? "",
            flow.serverEndpoint.state?.rawValue ?? "",
            flow.findings.map(\.kind.rawValue).joined(separator: ";"),
            flow.findings.map(\.endpoint.rawValue).joined(separator: ";"),
            flow.findings.map(\.duration).max().map(secondsText) ?? "",
            String(flow.clientEndpoint.bytes), String(flow.serverEndpoint.bytes),
            flow.app?.protocol.rawValue ?? "", flow.app?.request ?? "", flow.app?.host ?? "",
            flow.app?.userAgent ?? "", flow.app?.status.map(String.init) ?? "",
            flow.app.map { $0.protocol == .http ? String($0.requests) : "" } ?? "", flow.app?.sni ?? "",
        ]
        return fields.map(quoted).joined(separator: ",") + "\n"
    }

    public static func render(_ result: AnalysisResult) -> String {
        header + result.flows.map(row).joined()
    }

    /// A field as RFC 4180 wants it: quoted when it holds a comma, quote or line break.
    public static func quoted(_ field: String) -> String {
        guard field.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return field }
        var out = "\""
        for character in field { out += character == "\"" ? "\"\"" : String(character) }
        return out + "\""
    }
}
