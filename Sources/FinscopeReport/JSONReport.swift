import FinscopeFindings
import FinscopeFlows
import FinscopeWire

/// The `--json` document, schema version 1, field for field as SPEC §6 gives it.
/// Written by hand (`JSONWriter`) so that key order follows the SPEC and numbers stay exact.
public enum JSONReport {
    /// The whole document as text (tests, small reports).
    public static func render(_ result: AnalysisResult) -> String {
        let json = JSONWriter.memory()
        defer { json.close() }
        write(result, to: json)
        return json.text
    }

    /// The document with `result.flows` as its flows (no newline after it).
    public static func write(_ result: AnalysisResult, to json: JSONWriter) {
        write(result, to: json) { json in
            for flow in result.flows {
                json.element()
                self.flow(flow, json)
            }
        }
    }

    /// The document with the flows a spool collected (`spool(_:into:)`, in finishing order)
    /// copied through in place of `result.flows`: `--json` keeps no flow's report for it.
    public static func write(_ result: AnalysisResult, spooledFlows spool: JSONWriter, to json: JSONWriter) {
        write(result, to: json) { json in json.append(contentsOf: spool) }
    }

    /// One finished flow's object into a spool, as an element of `flows`.
    public static func spool(_ flow: FlowReport, into spool: JSONWriter) {
        spool.element()
        self.flow(flow, spool)
    }

    static func write(_ result: AnalysisResult, to json: JSONWriter, flows: (JSONWriter) -> Void) {
        json.beginObject()
        json.field("schema", 1)
        json.key("source"); source(result.source, json)
        json.key("summary"); summary(result, json)
        json.key("flows")
        json.beginArray()
        flows(json)
        json.endArray()
        json.key("groups"); groups(result.groups, json)
        hostFields(result, json)
        json.endObject()
    }

    /// NDJSON: one line per flow (`{"type":"flow","flow":{...}}`, the flow as in `flows`),
    /// then one summary line (`{"type":"summary","schema":1,"source":...,"summary":...,"groups":[...]}`).
    /// The whole NDJSON document at once (live mode's final report): the same lines
    /// `--ndjson` streams, from `NDJSONReport`.
    public static func renderNDJSON(_ result: AnalysisResult) -> String {
        let json = JSONWriter.memory()
        defer { json.close() }
        for flow in result.flows { NDJSONReport.writeFlowLine(flow, to: json) }
        NDJSONReport.writeSummaryLine(result, to: json)
        return json.text
    }

    static func groups(_ groups: [FindingGroup], _ json: JSONWriter) {
        json.beginArray()
        for group in groups {
            json.element()
            self.group(group, json)
        }
        json.endArray()
    }

    static func strings(_ strings: [String], _ json: JSONWriter) {
        json.beginArray()
        for string in strings {
            json.element()
            json.string(string)
        }
        json.endArray()
    }

    static func source(_ source: SourceSummary, _ json: JSONWriter) {
        json.beginObject()
        json.field("kind", source.kind.rawValue)
        json.field("name", source.name)
        json.field("finscopeVersion", FinscopeVersion.string)
        json.field("packets", source.packets)
        json.field("tcpSegments", source.tcpSegments)
        json.field("duplicates", source.duplicates)
        json.timeField("start", source.start)
        json.timeField("end", source.end)
        json.key("skipped")
        json.beginObject()
        for reason in SkipReason.allCases { json.dynamicField(reason.key, source.skippedCount(reason)) }
        json.endObject()
        if source.kind == .live {
            json.field("dropped", source.dropped ?? 0)
            json.field("ifDropped", source.interfaceDropped ?? 0)
        }
        if source.expiredIdle > 0 || source.evicted > 0 {
            json.field("expiredIdle", source.expiredIdle)
            json.field("evicted", source.evicted)
        }
        if !source.warnings.isEmpty {
            json.key("warnings"); strings(source.warnings, json)
        }
        sourceExtras(source, json)
        json.endObject()
    }

    static func summary(_ result: AnalysisResult, _ json: JSONWriter) {
        json.beginObject()
        json.field("flows", result.tally.flows)
        json.key("close")
        json.beginObject()
        for kind in CloseKind.allCases { json.dynamicField(kind.rawValue, result.count(kind)) }
        json.endObject()
        json.key("findings")
        json.beginObject()
        for kind in FindingKind.allCases { json.dynamicField(kind.rawValue, result.count(kind)) }
        json.endObject()
        json.endObject()
    }

    static func address(_ address: EndpointAddress, _ json: JSONWriter) {
        json.beginObject()
        json.key("ip"); json.ip(address.ip)
        json.field("port", Int(address.port))
        json.endObject()
    }

    static func flow(_ flow: FlowReport, _ json: JSONWriter) {
        json.beginObject()
        json.field("id", flow.id)
        json.key("client"); address(flow.client, json)
        json.key("server"); address(flow.server, json)
        json.field("roles", flow.roles.rawValue)
        json.timeField("firstSeen", flow.firstSeen)
        json.timeField("lastSeen", flow.lastSeen)
        json.field("close", flow.close.rawValue)
        json.field("threeWay", flow.threeWay)
        json.field("resetBy", flow.resetBy?.rawValue)
        json.key("endpoints")
        json.beginObject()
        json.key("client"); endpoint(flow.clientEndpoint, json)
        json.key("server"); endpoint(flow.serverEndpoint, json)
        json.endObject()
        json.field("ignoredResets", flow.ignoredResets)
        json.key("findings")
        json.beginArray()
        for finding in flow.findings {
            json.element()
            self.finding(finding, json)
        }
        json.endArray()
        json.key("app"); app(flow.app, json)
        json.endObject()
    }

    /// SPEC §8: what the connection carried, or null.
    static func app(_ app: AppHint?, _ json: JSONWriter) {
        guard let app else { return json.null() }
        json.beginObject()
        json.field("protocol", app.protocol.rawValue)
        switch app.protocol {
        case .http:
            json.field("request", app.request)
            json.field("host", app.host)
            json.field("userAgent", app.userAgent)
            json.field("status", app.status)
            json.field("requests", app.requests)
        case .tls:
            json.field("sni", app.sni)
            json.key("alpn")
            if let alpn = app.alpn { strings(alpn, json) } else { json.null() }
        }
        json.endObject()
    }

    /// SPEC §8: a group's most common applications.
    static func apps(_ apps: [FindingGroup.AppCount], _ json: JSONWriter) {
        json.beginArray()
        for app in apps {
            json.element()
            json.beginObject()
            json.field("protocol", app.protocol.rawValue)
            if app.protocol == .http {
                json.field("request", app.request)
                json.field("userAgent", app.userAgent)
            } else {
                json.field("sni", app.sni)
            }
            json.field("flows", app.flows)
            json.endObject()
        }
        json.endArray()
    }

    static func endpoint(_ endpoint: EndpointReport, _ json: JSONWriter) {
        json.beginObject()
        json.timeField("finAt", endpoint.finAt)
        json.timeField("finAckedAt", endpoint.finAckedAt)
        json.field("finRetransmits", endpoint.finRetransmits)
        json.timeField("resetAt", endpoint.resetAt)
        json.key("path")
        json.beginArray()
        for state in endpoint.path {
            json.element()
            json.string(state.rawValue)
        }
        json.endArray()
        json.field("state", endpoint.state?.rawValue)
        json.field("bytes", endpoint.bytes)
        json.field("segments", endpoint.segments)
        json.endObject()
    }

    static func finding(_ finding: Finding, _ json: JSONWriter) {
        json.beginObject()
        json.field("kind", finding.kind.rawValue)
        json.field("endpoint", finding.endpoint.rawValue)
        json.timeField("since", finding.since)
        json.timeField("seconds", finding.duration)
        json.field("activity", finding.activity.name)
        if let endedBy = finding.endedBy { json.field("endedBy", endedBy.rawValue) }
        if let process = finding.process {
            json.key("process")
            json.beginObject()
            json.field("pid", Int(process.pid))
            json.field("command", process.command)
            processExtras(process, json)
            json.endObject()
        }
        kernelField(finding, json)
        json.endObject()
    }

    static func group(_ group: FindingGroup, _ json: JSONWriter) {
        json.beginObject()
        json.field("kind", group.kind.rawValue)
        json.key("endpoint")
        json.beginObject()
        json.key("ip"); json.ip(group.endpointIP)
        json.field("role", group.role.rawValue)
        json.endObject()
        json.key("service"); address(group.service, json)
        json.key("peer")
        if let peer = group.peer {
            json.beginObject()
            json.key("ip"); json.ip(peer.ip)
            json.field("port", peer.port.map(Int.init))
            json.endObject()
        } else {
            json.null()
        }
        json.field("peers", group.peers)
        json.field("flows", group.flowCount)
        json.timeField("maxSeconds", group.maxDuration)
        json.timeField("medianSeconds", group.medianDuration)
        json.key("flowIds")
        json.beginArray()
        for id in group.flowIDs {
            json.element()
            json.number(id)
        }
        json.endArray()
        json.key("apps"); apps(group.apps, json)
        json.field("wiresharkFilter", Diagnosis.wiresharkFilter(group))
        groupKernelFields(group, json)
        json.endObject()
    }
}

extension JSONWriter {
    /// A key that is not a literal (the close and finding kinds' names): escaped like a string.
    func dynamicField(_ name: String, _ value: Int) {
        separate()
        string(name)
        byte(UInt8(ascii: ":"))
        number(value)
    }
}
