import FinscopeWire

/// Why an input could not be read at all. Each says what is wrong and what to do, in one line.
public enum CaptureError: Error, Equatable, CustomStringConvertible {
    case cannotOpen(path: String, reason: String)
    case unsupportedLinkType(path: String, linkType: Int32, name: String)
    case badFilter(expression: String, reason: String)
    case noInput

    public var description: String {
        switch self {
        case .cannotOpen(let path, let reason):
            return "cannot read \(path): \(reason)"
        case .unsupportedLinkType(let path, let linkType, let name):
            return "cannot analyze \(path): link type \(name) (\(linkType)) is not supported; finscope decodes "
                + LinkKind.decodedNames
        case .badFilter(let expression, let reason):
            return "invalid filter '\(expression)': \(reason) (see pcap-filter(7))"
        case .noInput:
            return "no capture file given"
        }
    }
}
