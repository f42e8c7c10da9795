import FinscopeWire

/// Why capture input or output failed: one type for files read, files written and
/// interfaces. Each says what is wrong and what to do, in one line, with the right verb.
public enum CaptureError: Error, Equatable, CustomStringConvertible {
    case cannotRead(path: String, reason: String)
    case cannotWrite(path: String, reason: String)
    case unsupportedLinkType(source: String, linkType: Int32, name: String)
    case badFilter(expression: String, reason: String)
    case noInput
    case noPermission(interface: String)
    case noSuchInterface(name: String, available: [String])
    case captureFailed(interface: String, reason: String)

    public var description: String {
        switch self {
        case .cannotRead(let path, let reason):
            return "cannot read \(path): \(reason)"
        case .cannotWrite(let path, let reason):
            return "cannot write \(path): \(reason)"
        case .unsupportedLinkType(let source, let linkType, let name):
            return "cannot analyze \(source): link type \(name) (\(linkType)) is not supported; finscope decodes "
                + LinkKind.decodedNames
        case .badFilter(let expression, let reason):
            return "invalid filter '\(expression)': \(reason) (see pcap-filter(7))"
        case .noInput:
            return "no capture file given"
        case .noPermission(let interface):
            return "no permission to capture on \(interface): run finscope with sudo, or give the binary the capture "
                + "capabilities: sudo setcap cap_net_raw,cap_net_admin+eip \"$(command -v finscope)\""
        case .noSuchInterface(let name, let available):
            let list = available.isEmpty ? "none visible" : available.joined(separator: ", ")
            return "no capture interface named '\(name)'; available: \(list) (see finscope interfaces)"
        case .captureFailed(let interface, let reason):
            return "cannot capture on \(interface): \(reason)"
        }
    }

    /// libpcap's and the system's open errors, made actionable.
    static func explain(_ message: String) -> String {
        if message.contains("No such file") { return "no such file" }
        if message.contains("Permission denied") { return "permission denied (check the file's permissions, or use sudo)" }
        if message.contains("archaic") { return "an old or damaged pcap header (\(message)); not a readable capture" }
        if message.contains("unknown file format") || message.contains("bad dump file format") {
            return "not a pcap or pcapng capture (\(message))"
        }
        if message.contains("Is a directory") { return "is a directory, not a capture file" }
        if message.contains("file header bytes") { return "the file is cut short inside its header (\(message)); not a readable capture" }
        return message
    }
}
