import CPcap
import FinscopeCapture
import FinscopeFlows
import FinscopeWire

/// Whether the capture's BPF filter would pass a socket's packets: kernel sockets that the
/// capture could never have seen (another port than `tcp port 8282`) stay out of the
/// report. Each socket is tested as a raw-IP TCP ACK in both directions; an expression that
/// cannot be compiled for raw IP (e.g. `ether host …`) passes every socket.
public final class SocketFilter {
    private let program: BPFProgram?

    public init(expression: String?) {
        program = expression.flatMap { try? BPFProgram(expression: $0, linkType: 101) }
    }

    public func captures(_ local: EndpointAddress, _ remote: EndpointAddress) -> Bool {
        guard let program else { return true }
        return Self.passes(program, from: local, to: remote) || Self.passes(program, from: remote, to: local)
    }

    static func passes(_ program: BPFProgram, from source: EndpointAddress, to destination: EndpointAddress) -> Bool {
        var packet: [UInt8] = []
        func u16(_ v: UInt16) { packet += [UInt8(v >> 8), UInt8(v & 0xff)] }
        func u32(_ v: UInt32) { packet += [UInt8(v >> 24), UInt8((v >> 16) & 0xff), UInt8((v >> 8) & 0xff), UInt8(v & 0xff)] }
        func u64(_ v: UInt64) { u32(UInt32(v >> 32)); u32(UInt32(truncatingIfNeeded: v)) }
        if source.ip.isIPv6 || destination.ip.isIPv6 {
            func words(_ ip: IPAddress) -> (UInt64, UInt64) { ip.isIPv6 ? (ip.high, ip.low) : (0, 0xffff_0000_0000 | ip.low) }
            u32(0x6000_0000); u16(20); packet += [6, 64]
            let s = words(source.ip), d = words(destination.ip)
            u64(s.0); u64(s.1); u64(d.0); u64(d.1)
        } else {
            packet += [0x45, 0]; u16(40); u16(0); u16(0x4000); packet += [64, 6]; u16(0)
            u32(UInt32(truncatingIfNeeded: source.ip.low)); u32(UInt32(truncatingIfNeeded: destination.ip.low))
        }
        u16(source.port); u16(destination.port); u32(1); u32(1); packet += [0x50, 0x10]; u16(65535); u16(0); u16(0)
        var header = pcap_pkthdr()
        header.caplen = UInt32(packet.count)
        header.len = UInt32(packet.count)
        return packet.withUnsafeBufferPointer { program.matches(&header, $0.baseAddress!) }
    }
}
