/// An address and port written as "10.0.0.1:40000" or "[fd00::1]:40000".
public struct HostPort: Sendable, Hashable, CustomStringConvertible, ExpressibleByStringLiteral {
    public var address: IPAddress
    public var port: UInt16

    public init(address: IPAddress, port: UInt16) {
        self.address = address
        self.port = port
    }

    /// Parses "a.b.c.d:port" or "[ipv6]:port"; nil on anything else.
    public init?(parsing text: String) {
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { return nil }
            portText = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            host = text[..<colon]
            guard !host.contains(":") else { return nil }  // IPv6 needs brackets
            portText = text[text.index(after: colon)...]
        }
        guard let address = IPAddress(String(host)), let port = UInt16(portText) else { return nil }
        self.init(address: address, port: port)
    }

    /// Traps on text that does not parse (test fixtures are literals).
    public init(_ text: String) {
        guard let parsed = HostPort(parsing: text) else { preconditionFailure("not an address:port: \(text)") }
        self = parsed
    }

    public init(stringLiteral value: String) { self.init(value) }

    public var description: String {
        address.isIPv6 ? "[\(address)]:\(port)" : "\(address):\(port)"
    }
}

extension IPAddress {
    /// The address in network byte order (4 or 16 bytes).
    public var networkBytes: [UInt8] {
        var out: [UInt8] = []
        if isIPv6 {
            out.append64(high)
            out.append64(low)
        } else {
            out.append32(UInt32(truncatingIfNeeded: low))
        }
        return out
    }

    /// Traps on text that does not parse.
    public init(literal text: String) {
        guard let parsed = IPAddress(text) else { preconditionFailure("not an IP address: \(text)") }
        self = parsed
    }
}
