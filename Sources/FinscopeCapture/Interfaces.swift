import CPcap
import Foundation

/// A capture device as `pcap_findalldevs` lists it.
public struct CaptureDevice: Sendable, Equatable {
    public var name: String
    public var description: String?
    /// "loopback", "up", "running", "wireless", "connected", "disconnected".
    public var flags: [String]
    public var addresses: [String]

    /// Every device this process could open (as root, all of them).
    public static func all() throws -> [CaptureDevice] {
        var errorBuffer = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
        var list: UnsafeMutablePointer<pcap_if_t>?
        guard pcap_findalldevs(&list, &errorBuffer) == 0 else {
            throw CaptureError.captureFailed(interface: "any", reason: LiveSource.text(errorBuffer))
        }
        defer { pcap_freealldevs(list) }
        var devices: [CaptureDevice] = []
        var cursor = list
        while let device = cursor {
            let raw = device.pointee.flags
            var flags: [String] = []
            if raw & UInt32(PCAP_IF_LOOPBACK) != 0 { flags.append("loopback") }
            if raw & UInt32(PCAP_IF_UP) != 0 { flags.append("up") }
            if raw & UInt32(PCAP_IF_RUNNING) != 0 { flags.append("running") }
            if raw & UInt32(PCAP_IF_WIRELESS) != 0 { flags.append("wireless") }
            switch raw & UInt32(PCAP_IF_CONNECTION_STATUS) {
            case UInt32(PCAP_IF_CONNECTION_STATUS_CONNECTED): flags.append("connected")
            case UInt32(PCAP_IF_CONNECTION_STATUS_DISCONNECTED): flags.append("disconnected")
            default: break
            }
            var addresses: [String] = []
            var address = device.pointee.addresses
            while let entry = address {
                if let text = entry.pointee.addr.flatMap(Self.text) { addresses.append(text) }
                address = entry.pointee.next
            }
            devices.append(CaptureDevice(name: String(cString: device.pointee.name),
                                         description: device.pointee.description.map { String(cString: $0) },
                                         flags: flags, addresses: addresses))
            cursor = device.pointee.next
        }
        return devices
    }

    /// IPv4 or IPv6 text for a socket address; nil for other families (link-layer).
    static func text(_ address: UnsafeMutablePointer<sockaddr>) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        switch Int32(address.pointee.sa_family) {
        case AF_INET:
            return address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { pointer in
                var addr = pointer.pointee.sin_addr
                return inet_ntop(AF_INET, &addr, &buffer, socklen_t(buffer.count)).map { String(cString: $0) }
            }
        case AF_INET6:
            return address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { pointer in
                var addr = pointer.pointee.sin6_addr
                return inet_ntop(AF_INET6, &addr, &buffer, socklen_t(buffer.count)).map { String(cString: $0) }
            }
        default:
            return nil
        }
    }
}
