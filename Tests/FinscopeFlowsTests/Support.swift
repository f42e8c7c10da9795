import Foundation
import Testing
import FinscopeWire
import FinscopeFindings
import FinscopeAnalysis
import FinscopeCapture
import FinscopeFlows
import FinscopeReport
import FinscopeTestSupport

// Shared fixtures and a typed view of the SPEC §6 JSON document.
//
// Every expected value in these tests is worked out by hand from SPEC.md and RFC 9293;
// times are compared in exact microseconds (the JSON's precision).

let epoch: Double = 1_700_000_000

// State names, as SPEC §2 spells them.
let SYN_SENT = "SYN_SENT"
let SYN_RECEIVED = "SYN_RECEIVED"
let EST = "ESTABLISHED"
let FW1 = "FIN_WAIT_1"
let FW2 = "FIN_WAIT_2"
let CLOSING = "CLOSING"
let TW = "TIME_WAIT"
let CW = "CLOSE_WAIT"
let LA = "LAST_ACK"
let CLOSED = "CLOSED"

/// `epoch + offset` in exact microseconds since the Unix epoch.
func T(_ offset: Double, start: Double = epoch) -> Int64 {
    let parts = CaptureTime(start).adding(offset).microsecondParts
    return parts.seconds * 1_000_000 + parts.microseconds
}

/// A duration of `seconds` in microseconds.
func D(_ seconds: Double) -> Int64 { Int64((seconds * 1e6).rounded()) }

// MARK: JSON scalars

func jsonMicros(_ value: Any?) -> Int64? {
    guard let value, !(value is NSNull) else { return nil }
    if let number = value as? NSNumber { return Int64((number.doubleValue * 1e6).rounded()) }
    if let double = value as? Double { return Int64((double * 1e6).rounded()) }
    if let int = value as? Int { return Int64(int) * 1_000_000 }
    return nil
}

func jsonInt(_ value: Any?) -> Int? {
    guard let value, !(value is NSNull) else { return nil }
    if let int = value as? Int { return int }
    if let number = value as? NSNumber { return number.intValue }
    return nil
}

func jsonBool(_ value: Any?) -> Bool? {
    guard let value, !(value is NSNull) else { return nil }
    if let bool = value as? Bool { return bool }
    if let number = value as? NSNumber { return number.boolValue }
    return nil
}

func jsonString(_ value: Any?) -> String? {
    guard let value, !(value is NSNull) else { return nil }
    return value as? String
}

/// A JSON value that is present and `null` (as opposed to absent).
func jsonIsNull(_ object: [String: Any], _ key: String) -> Bool {
    object[key] is NSNull
}

// MARK: Typed view of the JSON

/// One `endpoints.client` / `endpoints.server` object. Times in microseconds.
struct EndpointJSON: Equatable, CustomStringConvertible {
    var finAt: Int64?
    var finAckedAt: Int64?
    var finRetransmits: Int?
    var resetAt: Int64?
    var path: [String]
    var state: String?

    init(finAt: Int64? = nil, finAckedAt: Int64? = nil, finRetransmits: Int? = 0, resetAt: Int64? = nil,
         path: [String], state: String? = nil) {
        self.finAt = finAt
        self.finAckedAt = finAckedAt
        self.finRetransmits = finRetransmits
        self.resetAt = resetAt
        self.path = path
        // SPEC §2: `state` is the last element of `path` (null for an empty path).
        self.state = state ?? path.last
    }

    init(json: [String: Any]) {
        finAt = jsonMicros(json["finAt"])
        finAckedAt = jsonMicros(json["finAckedAt"])
        finRetransmits = jsonInt(json["finRetransmits"])
        resetAt = jsonMicros(json["resetAt"])
        path = (json["path"] as? [Any])?.compactMap { $0 as? String } ?? ["<missing path>"]
        state = jsonString(json["state"])
    }

    var description: String {
        "{finAt: \(finAt.map(String.init) ?? "null"), finAckedAt: \(finAckedAt.map(String.init) ?? "null"), "
            + "finRetransmits: \(finRetransmits.map(String.init) ?? "nil"), resetAt: \(resetAt.map(String.init) ?? "null"), "
            + "path: \(path), state: \(state ?? "null")}"
    }
}

/// One entry of `flows[i].findings`. Times in microseconds.
struct FindingJSON: Equatable, CustomStringConvertible {
    var kind: String
    var endpoint: String
    var since: Int64?
    var seconds: Int64?
    var activity: String
    var endedBy: String?

    init(_ kind: String, _ endpoint: String, since: Int64?, seconds: Int64?, activity: String, endedBy: String? = nil) {
        self.kind = kind
        self.endpoint = endpoint
        self.since = since
        self.seconds = seconds
        self.activity = activity
        self.endedBy = endedBy
    }

    init(json: [String: Any]) {
        kind = jsonString(json["kind"]) ?? "<missing>"
        endpoint = jsonString(json["endpoint"]) ?? "<missing>"
        since = jsonMicros(json["since"])
        seconds = jsonMicros(json["seconds"])
        activity = jsonString(json["activity"]) ?? "<missing>"
        endedBy = jsonString(json["endedBy"])
    }

    var description: String {
        "{\(kind) \(endpoint) since \(since.map(String.init) ?? "null") seconds \(seconds.map(String.init) ?? "null") "
            + "\(activity)\(endedBy.map { " endedBy \($0)" } ?? "")}"
    }
}

struct FlowJSON {
    let raw: [String: Any]

    var id: Int? { jsonInt(raw["id"]) }
    var close: String? { jsonString(raw["close"]) }
    var threeWay: Bool? { jsonBool(raw["threeWay"]) }
    /// nil when `resetBy` is null (see `resetByIsNull`).
    var resetBy: String? { jsonString(raw["resetBy"]) }
    var resetByIsNull: Bool { jsonIsNull(raw, "resetBy") }
    var roles: String? { jsonString(raw["roles"]) }
    var ignoredResets: Int? { jsonInt(raw["ignoredResets"]) }
    var firstSeen: Int64? { jsonMicros(raw["firstSeen"]) }
    var lastSeen: Int64? { jsonMicros(raw["lastSeen"]) }

    func address(_ role: String) -> String {
        let object = raw[role] as? [String: Any] ?? [:]
        let ip = jsonString(object["ip"]) ?? "?"
        let port = jsonInt(object["port"]).map(String.init) ?? "?"
        return ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }

    var clientAddress: String { address("client") }
    var serverAddress: String { address("server") }

    private func endpointObject(_ role: String) -> [String: Any] {
        (raw["endpoints"] as? [String: Any])?[role] as? [String: Any] ?? [:]
    }

    var client: EndpointJSON { EndpointJSON(json: endpointObject("client")) }
    var server: EndpointJSON { EndpointJSON(json: endpointObject("server")) }

    var findings: [FindingJSON] {
        (raw["findings"] as? [Any] ?? []).compactMap { $0 as? [String: Any] }.map(FindingJSON.init(json:))
    }
}

struct Report {
    let result: AnalysisResult
    let text: String
    let json: [String: Any]

    init(_ result: AnalysisResult) throws {
        self.result = result
        text = JSONReport.render(result)
        let parsed = try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
        json = parsed as? [String: Any] ?? [:]
    }

    var source: [String: Any] { json["source"] as? [String: Any] ?? [:] }
    var summary: [String: Any] { json["summary"] as? [String: Any] ?? [:] }
    var flows: [FlowJSON] { (json["flows"] as? [Any] ?? []).compactMap { $0 as? [String: Any] }.map(FlowJSON.init) }
    var groups: [[String: Any]] { (json["groups"] as? [Any] ?? []).compactMap { $0 as? [String: Any] } }

    var packets: Int? { jsonInt(source["packets"]) }
    var tcpSegments: Int? { jsonInt(source["tcpSegments"]) }
    var duplicates: Int? { jsonInt(source["duplicates"]) }
    var sourceStart: Int64? { jsonMicros(source["start"]) }
    var sourceEnd: Int64? { jsonMicros(source["end"]) }
    func skipped(_ reason: String) -> Int? { jsonInt((source["skipped"] as? [String: Any])?[reason]) }

    func summaryClose(_ kind: String) -> Int? { jsonInt((summary["close"] as? [String: Any])?[kind]) }
    func summaryFindings(_ kind: String) -> Int? { jsonInt((summary["findings"] as? [String: Any])?[kind]) }

    /// The only flow; records an issue when there is not exactly one.
    func onlyFlow(sourceLocation: SourceLocation = #_sourceLocation) throws -> FlowJSON {
        let all = flows
        #expect(all.count == 1, "expected exactly one flow, got \(all.count): \(text)", sourceLocation: sourceLocation)
        return try #require(all.first, sourceLocation: sourceLocation)
    }
}

// MARK: Running the real reading path

func analyze(paths: [String], options: AnalysisOptions = AnalysisOptions()) throws -> Report {
    try Report(OfflineAnalysis.analyze(paths: paths, options: options))
}

func analyze(writer: PcapWriter, options: AnalysisOptions = AnalysisOptions()) throws -> Report {
    let dir = try TemporaryDirectory()
    return try withExtendedLifetime(dir) {
        let url = dir.url(for: "capture.pcap")
        try writer.write(to: url)
        return try analyze(paths: [url.path], options: options)
    }
}

/// Writes the conversation (plus `extra` frames at offsets after its start) as a pcap on
/// `link` and analyzes it.
func analyze(_ conversation: Conversation, link: Link = .ethernet, extra: [(offset: Double, bytes: [UInt8])] = [],
             threshold: Nanoseconds = 5_000_000_000, filter: String? = nil) throws -> Report {
    var writer = conversation.pcapWriter(link: link)
    for frame in extra { writer.append(frame.bytes, time: conversation.start.adding(frame.offset)) }
    writer.sortByTime()
    return try analyze(writer: writer, options: AnalysisOptions(closeWaitThreshold: threshold, filter: filter))
}

/// A UDP datagram between two unrelated hosts (not TCP: it only moves the capture's end).
func udpFrame(link: Link = .ethernet) -> [UInt8] {
    let packet = IPv4Header("10.9.9.1", "10.9.9.2", protocolNumber: 17)
        .packet(payload: FrameBuilder.udp(sourcePort: 5353, destinationPort: 5353, payload: FrameBuilder.filler(12)))
    return link.frame(ipPacket: packet, isIPv6: false)
}

/// An Ethernet ARP request (broadcast).
func arpFrame() -> [UInt8] {
    FrameBuilder.ethernet(destination: [0xff, 0xff, 0xff, 0xff, 0xff, 0xff], etherType: EtherType.arp,
                          payload: FrameBuilder.arpRequest())
}

// MARK: Conversations

/// 10.0.0.1:40000 → 10.0.0.2:80, ISNs 1000 / 5000.
func conversation(client: HostPort = "10.0.0.1:40000", server: HostPort = "10.0.0.2:80",
                  clientISN: UInt32 = 1000, serverISN: UInt32 = 5000,
                  clientWindow: UInt16 = 65535, serverWindow: UInt16 = 65535) -> Conversation {
    Conversation(client: client, server: server, start: epoch, clientISN: clientISN, serverISN: serverISN,
                 clientWindow: clientWindow, serverWindow: serverWindow)
}

/// Handshake at `base`, a 100-byte request at +0.1 acknowledged at +0.11, a 200-byte
/// response at +0.2 acknowledged at +0.21. Both directions fully acknowledged.
func exchange(_ c: inout Conversation, base: Double = 0) {
    c.handshake(at: base)
    c.data(.client, bytes: 100, at: base + 0.1)
    c.ack(.server, at: base + 0.11)
    c.data(.server, bytes: 200, at: base + 0.2)
    c.ack(.client, at: base + 0.21)
}

/// An established connection (7 segments, last at 0.21).
func established(client: HostPort = "10.0.0.1:40000", server: HostPort = "10.0.0.2:80",
                 clientISN: UInt32 = 1000, serverISN: UInt32 = 5000) -> Conversation {
    var c = conversation(client: client, server: server, clientISN: clientISN, serverISN: serverISN)
    exchange(&c)
    return c
}

/// The textbook 4-way close, client first: F at 1.0, . at 1.001, F at 1.3, . at 1.301.
func clientFirstClose(_ c: inout Conversation, base: Double = 1.0) {
    c.fin(.client, at: base)
    c.ack(.server, at: base + 0.001)
    c.fin(.server, at: base + 0.3)
    c.ack(.client, at: base + 0.301)
}

/// The whole client-first conversation used across link types (11 segments).
func clientFirstConversation(client: HostPort = "10.0.0.1:40000", server: HostPort = "10.0.0.2:80") -> Conversation {
    var c = established(client: client, server: server)
    clientFirstClose(&c)
    return c
}

/// Server closes at `base + 0.3`; the client acknowledges the FIN at `base + 0.301` and
/// enters CLOSE_WAIT there.
func serverClosesClientAcks(_ c: inout Conversation, base: Double = 0) {
    exchange(&c, base: base)
    c.fin(.server, at: base + 0.3)
    c.ack(.client, at: base + 0.301)
}

/// Paths of the textbook client-first close (SPEC §2).
let clientFirstClientPath = [EST, FW1, FW2, TW]
let clientFirstServerPath = [EST, CW, LA, CLOSED]
