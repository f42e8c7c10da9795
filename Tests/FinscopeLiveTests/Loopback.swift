import Foundation

#if canImport(Glibc)
import Glibc
#endif

struct SocketFailure: Error, CustomStringConvertible {
    var description: String
    init(_ what: String) { description = "\(what): errno \(errno) (\(String(cString: strerror(errno))))" }
}

/// A real TCP server on 127.0.0.1 that answers one request per connection and then closes
/// it (the server closes first), driven in lockstep from the test's thread.
final class LoopbackServer {
    let fd: Int32
    let port: UInt16
    static let request = Array("GET /\n".utf8)
    static let response = Array("200 OK\n".utf8)

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketFailure("socket") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 128) == 0 else {
            Glibc.close(fd)
            throw SocketFailure("bind/listen")
        }
        self.fd = fd
        port = Self.localPort(fd)
    }

    func close() { Glibc.close(fd) }

    static func localPort(_ fd: Int32) -> UInt16 {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return UInt16(bigEndian: address.sin_port)
    }

    /// One connection: the client sends a request, the server answers and closes, the client
    /// reads to EOF (its kernel acknowledges the FIN). Returns the client socket, now in
    /// CLOSE_WAIT until the caller closes it.
    func exchange() throws -> (fd: Int32, port: UInt16) {
        let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard client >= 0 else { throw SocketFailure("socket") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        address.sin_port = port.bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(client, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { Glibc.close(client); throw SocketFailure("connect") }
        // Close-on-exec, like every socket the tests make: a child that another test spawns
        // meanwhile must not inherit it, or closing it here would send no FIN.
        let accepted = accept(fd, nil, nil)
        if accepted >= 0 { _ = fcntl(accepted, F_SETFD, FD_CLOEXEC) }
        guard accepted >= 0 else { Glibc.close(client); throw SocketFailure("accept") }
        do {
            try sendAll(client, Self.request)
            try receiveExactly(accepted, Self.request.count)  // nothing unread: close sends FIN, not RST
            try sendAll(accepted, Self.response)
        } catch {
            Glibc.close(accepted)
            Glibc.close(client)
            throw error
        }
        Glibc.close(accepted)  // the server closes first
        var buffer = [UInt8](repeating: 0, count: 256)
        while true {
            let count = recv(client, &buffer, buffer.count, 0)
            if count == 0 { break }
            if count < 0 { if errno == EINTR { continue }; Glibc.close(client); throw SocketFailure("recv") }
        }
        return (client, Self.localPort(client))
    }

    func sendAll(_ socket: Int32, _ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let count = bytes[sent...].withUnsafeBytes { send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard count > 0 else { throw SocketFailure("send") }
            sent += count
        }
    }

    func receiveExactly(_ socket: Int32, _ length: Int) throws {
        var buffer = [UInt8](repeating: 0, count: length)
        var received = 0
        while received < length {
            let count = buffer[received...].withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { throw SocketFailure("recv") }
            received += count
        }
    }
}
