import FinscopeFindings
import FinscopeFlows
import FinscopeWire

/// How a group of findings is named in text: the stuck endpoint first, the service it
/// belongs to, and the other side.
extension FindingGroup {
    /// "127.0.0.1 (client, ports 49936–54608) → 127.0.0.1:8282" or
    /// "10.77.0.2:8080 (server) ← 10.77.0.1" / "← 3 client addresses".
    public var headline: String {
        if role == .client {
            return "\(endpointIP) (client, \(portsText)) → \(service)"
        }
        return "\(service) (server) ← \(peerText)"
    }

    /// The other side in words: the service, one client address, or how many.
    public var peerText: String {
        if role == .client { return service.description }
        if let peer { return peer.ip.description }
        return "\(grouped(peers)) client addresses"
    }

    /// "port 40001", "ports 40112–60871", "ephemeral ports 40112–60871" (a client's).
    public var portsText: String {
        let ports = self.ports
        guard let low = ports.first, let high = ports.last else { return "no port" }
        if low == high { return "port \(low)" }
        return "\(role == .client && low >= 1024 ? "ephemeral " : "")ports \(low)–\(high)"
    }

    /// "46 connections".
    public var connectionsText: String { counted(flowCount, "connection") }
}

/// "1 connection", "46 connections".
public func counted(_ count: Int, _ noun: String, plural: String? = nil) -> String {
    "\(grouped(count)) \(count == 1 ? noun : plural ?? noun + "s")"
}
