import FinscopeWire

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The addresses configured on this host's interfaces (getifaddrs), in this network
/// namespace. A CLOSE_WAIT endpoint is looked up in /proc only when its address is here.
public enum LocalAddresses {
    public static func current() -> Set<IPAddress> {
        var addresses: Set<IPAddress> = [IPAddress(ipv4: 0x7f00_0001), IPAddress(ipv6High: 0, low: 1)]
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0 else { return addresses }
        defer { freeifaddrs(list) }
        var cursor = list
        while let entry = cursor {
            if let address = entry.pointee.ifa_addr, let ip = ipAddress(address) { addresses.insert(ip) }
            cursor = entry.pointee.ifa_next
        }
        return addresses
    }

    /// Whether `ip` belongs to this host: one of `local`, or anywhere in 127.0.0.0/8.
    public static func isLocal(_ ip: IPAddress, in local: Set<IPAddress>) -> Bool {
        if !ip.isIPv6, ip.low >> 24 == 127 { return true }
        return local.contains(ip)
    }

    static func ipAddress(_ address: UnsafeMutablePointer<sockaddr>) -> IPAddress? {
        switch Int32(address.pointee.sa_family) {
        case AF_INET:
            return address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
                IPAddress(ipv4: UInt32(bigEndian: $0.pointee.sin_addr.s_addr))
            }
        case AF_INET6:
            return address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { pointer in
                withUnsafeBytes(of: pointer.pointee.sin6_addr) { raw in
                    IPAddress(ipv6High: UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self)),
                              low: UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
                }
            }
        default:
            return nil
        }
    }
}
