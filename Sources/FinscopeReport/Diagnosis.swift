import FinscopeFindings
import FinscopeFlows
import FinscopeWire

/// One plain sentence (or three) per group of findings: who is at fault, what the program
/// there does wrong, and what the timings say about the mechanism.
public enum Diagnosis {
    /// The diagnosis of `group`; `flows` holds (at least) the group's flows by id.
    public static func text(_ group: FindingGroup, flows: [Int: FlowReport], ongoing: Bool = false) -> String {
        let members = group.flowIDs.compactMap { flows[$0] }
        let findings = members.compactMap(group.finding(in:))
        let who = group.role == .client
            ? "\(group.endpointIP) (client, \(group.connectionsText), \(group.portsText))"
            : "\(group.service) (server, \(group.connectionsText) from \(group.peerText))"
        let spread = "median \(durationText(group.medianDuration)), max \(durationText(group.maxDuration))"
        let peerRole = group.role.peer.rawValue
        var sentences: [String] = []
        switch group.kind {
        case .closeWait:
            let typical = group.role == .client
                ? "typically HTTP responses never released or a pool that keeps dead connections"
                : "typically a request handler that does not close its socket when the client hangs up"
            sentences.append("\(who) acknowledged \(group.peerText)'s FIN and never closed (\(spread) in CLOSE_WAIT "
                + "\(ongoing ? "so far" : "when the capture ended")): the program using these sockets does not close connections its "
                + "peer has closed — \(typical).")
            if let idle = idleSentence(members, peer: group.role.peer) { sentences.append(idle) }
            sentences += activitySentence(findings, role: group.role)
        case .slowClose:
            let endings = endingsText(findings)
            var sentence = "\(who) sat in CLOSE_WAIT after \(group.peerText)'s FIN for \(spread) before \(endings): "
                + "a leak released late"
            if findings.count >= 2, let typical = similar(findings.map(\.duration)) {
                sentence += " — each after ~\(approximateText(typical)), which points to a timer (a pool's idle "
                    + "eviction, a read timeout) rather than garbage collection or a process exit."
            } else {
                sentence += " — a timeout, garbage collection, a finalizer or a process exit closed the sockets."
            }
            sentences.append(sentence)
            if let idle = idleSentence(members, peer: group.role.peer) { sentences.append(idle) }
        case .finUnacked:
            sentences.append("\(who) sent a FIN that \(group.peerText) never acknowledged (\(spread) \(ongoing ? "so far" : "until the capture ended")).")
            let answered = findings.filter { $0.activity != .silent }.count
            if answered == 0 {
                sentences.append("The \(peerRole) sent nothing afterwards: it is gone (crashed, unplugged, its state "
                    + "dropped by a firewall), or the capture sees only one direction.")
            } else {
                let share = answered == findings.count ? "The \(peerRole)" : "In \(answered) of them the \(peerRole)"
                sentences.append("\(share) kept sending without acknowledging the FIN, so it never received it: "
                    + "something between them drops it (a firewall or NAT that lost the connection), or the capture "
                    + "missed traffic.")
            }
        }
        return sentences.joined(separator: " ")
    }

    /// The code path, from what the connections carried (SPEC §8): the request, the client
    /// library, and the pattern — a new connection per request, an idle pooled connection
    /// that carried many, or a server-side handler. nil when nothing was recognised.
    public static func codePath(_ group: FindingGroup) -> String? {
        guard let top = group.apps.first else { return nil }
        let count = group.flowCount
        let share = top.flows == count ? (count == 1 ? "It carried" : "Each carried") : "\(grouped(top.flows)) of them carried"
        switch top.protocol {
        case .http:
            var what = top.request.map { "`\($0)`" } ?? "an HTTP request (its line not captured)"
            if let agent = top.userAgent { what += " (User-Agent \(agent))" }
            if let status = top.status { what += ", \(statusText(status))" }
            let requests = top.requests ?? 1...1
            let carried = requests.upperBound <= 1 ? "one request: \(what)"
                : requests.lowerBound == requests.upperBound ? "\(requests.upperBound) requests, the first \(what)"
                : "\(requests.lowerBound)–\(requests.upperBound) requests, the first \(what)"
            let pattern: String
            if group.role == .server {
                pattern = "a request handler that does not close its socket when the client hangs up; it was serving "
                    + (top.request.map { "`\($0)`" } ?? "HTTP requests")
            } else if group.kind != .closeWait && group.kind != .slowClose {
                return "\(share) \(carried)."
            } else if requests.upperBound <= 1 {
                pattern = "the program opens a new connection (a new client or pool) per request and never closes "
                    + "the response"
            } else {
                pattern = "an idle pooled connection: the pool keeps connections the server has closed (evict idle and "
                    + "expired connections, or check them before reuse)"
            }
            return "\(share) \(carried) → \(pattern)."
        case .tls:
            let to = top.sni.map { "TLS to \($0)" } ?? "TLS (no server name)"
            let pattern = group.role == .server
                ? "a TLS handler that does not close its socket when the client hangs up"
                : "the program leaves TLS connections open after the server closed them (responses or clients never closed)"
            return "\(share) \(to) → \(pattern)."
        }
    }

    /// "201 Created".
    static func statusText(_ status: Int) -> String {
        let reasons = [200: "OK", 201: "Created", 202: "Accepted", 204: "No Content", 301: "Moved Permanently",
                       302: "Found", 304: "Not Modified", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
                       404: "Not Found", 408: "Request Timeout", 429: "Too Many Requests", 500: "Internal Server Error",
                       502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"]
        return reasons[status].map { "\(status) \($0)" } ?? "status \(status)"
    }

    /// Whether the snapshot length cut the payload of the group's connections before any
    /// application could be recognised: the code path was not captured.
    public static func codePathNotCaptured(_ group: FindingGroup, flows: [Int: FlowReport]) -> Bool {
        guard group.apps.isEmpty else { return false }
        return group.flowIDs.contains { flows[$0]?.clientPayloadCut == true }
    }

    /// What the idle time before the peer's FIN says: a keep-alive timeout, or a close
    /// right after each response.
    static func idleSentence(_ members: [FlowReport], peer: Role) -> String? {
        let idles = members.compactMap { $0.endpoint(peer).idleBeforeFin }
        guard !idles.isEmpty else { return nil }
        let who = "The \(peer.rawValue)"
        let second: Nanoseconds = 1_000_000_000
        if idles.count == 1 {
            let idle = idles[0]
            return idle < second
                ? "\(who) closed it right after the last data (\(durationText(idle)) later)."
                : "\(who) closed it after \(durationText(idle)) without data: an idle timeout."
        }
        if let typical = similar(idles) {
            if typical < second {
                return "\(who) closes each connection right after the last data (within \(durationText(max(typical, idles.max()!)))): "
                    + "it closes after every response (Connection: close, or a request limit), so each request leaves one socket behind."
            }
            return "\(who) closes idle connections after ~\(approximateText(typical)): a keep-alive timeout."
        }
        let sorted = idles.sorted()
        return "\(who) closed them after \(durationText(sorted.first!)) to \(durationText(sorted.last!)) without data "
            + "(median \(durationText(median(sorted))))."
    }

    static func activitySentence(_ findings: [Finding], role: Role) -> [String] {
        let data = findings.filter { $0.activity == .data }.count
        let ackOnly = findings.filter { $0.activity == .ackOnly }.count
        var out: [String] = []
        if data > 0 {
            let share = data == findings.count ? "It" : "In \(data) of them it"
            out.append("\(share) kept sending data after the FIN: a half-close the protocol uses, or a program still "
                + "writing — check that before calling it a leak.")
        }
        if ackOnly > 0 {
            let share = ackOnly == findings.count ? "Its" : "In \(ackOnly) of them its"
            out.append("\(share) kernel still sent ACKs or keep-alive probes: the sockets are open in a live process.")
        }
        return out
    }

    static func endingsText(_ findings: [Finding]) -> String {
        let fin = findings.filter { $0.endedBy == .fin }.count
        let reset = findings.filter { $0.endedBy == .reset }.count
        let peerReset = findings.filter { $0.endedBy == .peerReset }.count
        let parts = [(fin, "its own FIN"), (reset, "its own reset"), (peerReset, "a reset from its peer")]
            .filter { $0.0 > 0 }
        if parts.count == 1 {
            switch parts[0].1 {
            case "its own FIN": return "closing"
            case "its own reset": return "resetting"
            default: return "the peer reset"
            }
        }
        return "the state ended (" + parts.map { "\($0.0) by \($0.1)" }.joined(separator: ", ") + ")"
    }

    /// The typical value when at least 80 % of `values` lie within 10 % (at least 0.5 s)
    /// of their median; nil when they are spread out.
    static func similar(_ values: [Nanoseconds]) -> Nanoseconds? {
        guard values.count >= 2 else { return values.first }
        let mid = median(values.sorted())
        let tolerance = max(500_000_000, mid / 10)
        let close = values.filter { abs($0 - mid) <= tolerance }.count
        return close * 5 >= values.count * 4 ? mid : nil
    }

    static func median(_ values: [Nanoseconds]) -> Nanoseconds { FindingGroup.median(values) }

    /// A round figure for "~60 s": whole seconds from 10 s to 2 min.
    static func approximateText(_ value: Nanoseconds) -> String {
        if value >= 10_000_000_000, value < 120_000_000_000 { return "\((value + 500_000_000) / 1_000_000_000) s" }
        return durationText(value)
    }

    /// A Wireshark display filter that selects exactly the group's connections, in the
    /// syntax Wireshark 4.0 accepts (sets with commas): the service's address and port,
    /// then, per client address, the set of client ports.
    /// `ip.addr==10.0.0.5 && tcp.port==8282 && (ip.addr==10.0.0.9 && tcp.port in {40001, 40007})`.
    public static func wiresharkFilter(_ group: FindingGroup) -> String {
        func field(_ ip: IPAddress) -> String { ip.isIPv6 ? "ipv6.addr" : "ip.addr" }
        var byClient: [IPAddress: Set<UInt16>] = [:]
        for member in group.members {
            let client = member.client(role: group.role, endpointIP: group.endpointIP)
            byClient[client.ip, default: []].insert(client.port)
        }
        let clauses = byClient.keys.sorted().map { ip -> String in
            let ports = byClient[ip]!.sorted()
            let portTest = ports.count == 1 ? "tcp.port==\(ports[0])"
                : "tcp.port in {" + ports.map(String.init).joined(separator: ", ") + "}"
            return ip == group.service.ip ? portTest : "\(field(ip))==\(ip) && \(portTest)"
        }
        let service = "\(field(group.service.ip))==\(group.service.ip) && tcp.port==\(group.service.port)"
        if clauses.count == 1 { return service + " && " + clauses[0] }
        return service + " && (" + clauses.map { "(\($0))" }.joined(separator: " || ") + ")"
    }
}

/// ANSI colours, on only for a terminal (see `TerminalStyle.detect`).
public struct TerminalStyle: Sendable {
    public var enabled: Bool
    public init(enabled: Bool) { self.enabled = enabled }
    public static let plain = TerminalStyle(enabled: false)

    func wrap(_ text: String, _ code: String) -> String { enabled ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text }
    public func bold(_ text: String) -> String { wrap(text, "1") }
    public func red(_ text: String) -> String { wrap(text, "1;31") }
    public func yellow(_ text: String) -> String { wrap(text, "33") }
    public func cyan(_ text: String) -> String { wrap(text, "36") }
    public func dim(_ text: String) -> String { wrap(text, "2") }
}
