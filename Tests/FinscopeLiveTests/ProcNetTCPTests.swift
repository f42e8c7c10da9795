import FinscopeWire
import FinscopeFindings
import FinscopeAnalysis
import FinscopeFlows
@testable import FinscopeHost
import FinscopeTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("/proc/net/tcp parsing")
struct ProcNetTCPTests {
    func endpoint(_ text: String) -> EndpointAddress {
        let colon = text.lastIndex(of: ":")!
        var ip = String(text[..<colon])
        if ip.hasPrefix("[") { ip = String(ip.dropFirst().dropLast()) }
        return EndpointAddress(ip: IPAddress(ip)!, port: UInt16(text[text.index(after: colon)...])!)
    }

    @Test("IPv4 on a little-endian host: each address word's bytes come out reversed, ports do not")
    func ipv4LittleEndian() throws {
        let line = "   3: 0100007F:1F6A 0501000A:9C40 08 00000000:00000000 00:00000000 00000000  1000        0 4242123 1 0000000000000000 20 4 30 10 -1"
        let entry = try #require(ProcNetTCP.parse(line: line, order: .littleEndian))
        #expect(entry.local == endpoint("127.0.0.1:8042"))
        #expect(entry.remote == endpoint("10.0.1.5:40000"))
        #expect(entry.state == TCPSocketEntry.closeWait)
        #expect(entry.uid == 1000)
        #expect(entry.inode == 4_242_123)
    }

    @Test("IPv4 written by a big-endian host")
    func ipv4BigEndian() throws {
        let line = "   0: 7F000001:1F6A 0A000105:9C40 01 00000000:00000000 00:00000000 00000000     0        0 77 1 0000000000000000 20 4 30 10 -1"
        let entry = try #require(ProcNetTCP.parse(line: line, order: .bigEndian))
        #expect(entry.local == endpoint("127.0.0.1:8042"))
        #expect(entry.remote == endpoint("10.0.1.5:40000"))
        #expect(entry.state == 1)
    }

    @Test("IPv6: four words, each byte-reversed on little-endian; ::1 and a global address")
    func ipv6LittleEndian() throws {
        // fd00::2 = fd00:0000 0000:0000 0000:0000 0000:0002; words 0000_00FD 0 0 0200_0000.
        let line = "   1: 00000000000000000000000001000000:2062 000000FD000000000000000002000000:D431 08 00000000:00000000 00:00000000 00000000   998        0 99 1 0000000000000000 20 4 30 10 -1"
        let entry = try #require(ProcNetTCP.parse(line: line, order: .littleEndian))
        #expect(entry.local == endpoint("[::1]:8290"))
        #expect(entry.remote == endpoint("[fd00::2]:54321"))
        #expect(entry.uid == 998)
        #expect(entry.inode == 99)
    }

    @Test("IPv4-mapped IPv6 sockets are reported as IPv4, as their packets show them")
    func mappedIPv4() throws {
        // ::ffff:10.0.0.5 = words 0, 0, 0000_FFFF, 0A00_0005 → little-endian text 0,0,FFFF0000,0500000A.
        let line = "   2: 0000000000000000FFFF00000500000A:1F6A 0000000000000000FFFF00000100007F:C000 08 00000000:00000000 00:00000000 00000000     0        0 5 1 0000000000000000 20 4 30 10 -1"
        let entry = try #require(ProcNetTCP.parse(line: line, order: .littleEndian))
        #expect(entry.local == endpoint("10.0.0.5:8042"))
        #expect(entry.remote == endpoint("127.0.0.1:49152"))
    }

    @Test("the header line and damaged lines are skipped")
    func skipsNonSocketLines() {
        let text = """
              sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
               0: 0100007F:1F6A 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 11 1 0 100 0 0 10 0
               1: 0100007G:1F6A 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12 1 0 100 0 0 10 0
               2: 0100007F:1F6A
            """
        let entries = ProcNetTCP.parse(text, order: .littleEndian)
        #expect(entries.count == 1)
        #expect(entries.first?.state == 0x0A)
    }

    @Test("socket links and the helper's wire format")
    func socketLinksAndEncoding() {
        #expect(SocketOwners.socketInode("socket:[123456]") == 123_456)
        #expect(SocketOwners.socketInode("pipe:[123456]") == nil)
        #expect(SocketOwners.socketInode("/dev/null") == nil)
        let pair = SocketPair(local: endpoint("127.0.0.1:40000"), remote: endpoint("[fd00::1]:8282"))
        let other = SocketPair(local: endpoint("10.0.0.5:40001"), remote: endpoint("10.0.0.9:8282"))
        let owners = CloseWaitOwners(owners: [pair: OwningProcess(pid: 4242, command: "java -jar app.jar --name a b")],
                                     unreadable: [other: 1001])
        let decoded = CloseWaitOwners.decode(lines: owners.encoded().split(separator: "\n"))
        #expect(decoded == owners)
    }

    @Test("a CLOSE_WAIT socket of this process is found in /proc with this pid as holder")
    func findsOwnCloseWaitSocket() throws {
        let server = try LoopbackServer()
        defer { server.close() }
        let client = try server.exchange()
        defer { Glibc.close(client.fd) }
        // The server closed; the client read EOF and keeps its socket: CLOSE_WAIT.
        var owners = CloseWaitOwners()
        for _ in 0..<50 {
            owners = CloseWaitOwners.read()
            if owners.owners.keys.contains(where: { $0.local.port == client.port }) { break }
            usleep(20_000)
        }
        let pair = SocketPair(local: endpoint("127.0.0.1:\(client.port)"), remote: endpoint("127.0.0.1:\(server.port)"))
        let owner = try #require(owners.owners[pair])
        #expect(owner.pid == getpid())
        #expect(!owner.command.isEmpty)
    }
}
