import FinscopeWire

// The words of SPEC §1–4: roles, states, close kinds, finding kinds.

public enum Role: String, Sendable, CaseIterable {
    case client, server
    public var peer: Role { self == .client ? .server : .client }
}

/// How the client and server were told apart (SPEC §1).
public enum RoleOrigin: String, Sendable {
    case handshake, inferred
}

/// RFC 9293 connection states as finscope reports them.
public enum TCPState: String, Sendable {
    case synSent = "SYN_SENT"
    case synReceived = "SYN_RECEIVED"
    case established = "ESTABLISHED"
    case finWait1 = "FIN_WAIT_1"
    case finWait2 = "FIN_WAIT_2"
    case closing = "CLOSING"
    case timeWait = "TIME_WAIT"
    case closeWait = "CLOSE_WAIT"
    case lastAck = "LAST_ACK"
    case closed = "CLOSED"
}

/// How a flow closed (SPEC §3).
public enum CloseKind: String, Sendable, CaseIterable {
    case clientFirst = "client-first"
    case serverFirst = "server-first"
    case simultaneous
    case crossed
    case reset
    case halfClosed = "half-closed"
    case open
}

public enum FindingKind: String, Sendable, CaseIterable {
    case closeWait = "close-wait"
    case slowClose = "slow-close"
    case finUnacked = "fin-unacked"
}

/// What the stuck endpoint (or, for fin-unacked, its peer) sent while the state lasted.
public enum Activity: UInt8, Sendable, Comparable {
    case silent = 0, ackOnly = 1, data = 2
    public static func < (a: Activity, b: Activity) -> Bool { a.rawValue < b.rawValue }
    public var name: String {
        switch self {
        case .silent: return "silent"
        case .ackOnly: return "ack-only"
        case .data: return "data"
        }
    }
}

/// What ended a slow close.
public enum EndedBy: String, Sendable {
    case fin
    case reset
    case peerReset = "peer-reset"
}

public struct EndpointAddress: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var ip: IPAddress
    public var port: UInt16
    public init(ip: IPAddress, port: UInt16) {
        self.ip = ip
        self.port = port
    }
    public static func < (a: EndpointAddress, b: EndpointAddress) -> Bool {
        (a.ip, a.port) < (b.ip, b.port)
    }
    /// "10.0.0.5:8282", "[fd00::1]:8282".
    public var description: String {
        ip.isIPv6 ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }
}

