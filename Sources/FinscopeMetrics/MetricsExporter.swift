import FlyingFox
import FlyingSocks
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Why the metrics endpoint could not start: one line naming the address and what to do.
public enum MetricsExporterError: Error, Equatable, CustomStringConvertible {
    case badAddress(String)
    case inUse(String)
    case cannotListen(address: String, reason: String)

    public var description: String {
        switch self {
        case .badAddress(let text):
            return "--metrics '\(text)' is not an address to listen on: give ADDRESS:PORT, e.g. 127.0.0.1:9464, [::]:9464 or :9464"
        case .inUse(let address):
            return "cannot serve metrics on \(address): the address is already in use; stop what listens there "
                + "(ss -ltnp) or give another port to --metrics"
        case .cannotListen(let address, let reason):
            return "cannot serve metrics on \(address): \(reason)"
        }
    }
}

/// Where `--metrics` listens: "127.0.0.1:9464", "[::1]:9464", "[::]:9464", ":9464" (every
/// IPv4 address), "localhost:9464".
public struct MetricsAddress: Sendable, Equatable, CustomStringConvertible {
    public enum Host: Sendable, Equatable {
        case ipv4(String)
        case ipv6(String)
    }
    public var host: Host
    public var port: UInt16

    public init(host: Host, port: UInt16) {
        self.host = host
        self.port = port
    }

    public init(parsing text: String) throws {
        guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]) else {
            throw MetricsExporterError.badAddress(text)
        }
        self.port = port
        var name = String(text[..<colon])
        if name.hasPrefix("[") && name.hasSuffix("]") && name.count >= 2 {
            name = String(name.dropFirst().dropLast())
            var probe = in6_addr()
            guard inet_pton(AF_INET6, name, &probe) == 1 else { throw MetricsExporterError.badAddress(text) }
            host = .ipv6(name)
            return
        }
        if name.isEmpty { name = "0.0.0.0" }
        if name == "localhost" { name = "127.0.0.1" }
        var probe = in_addr()
        guard inet_pton(AF_INET, name, &probe) == 1 else { throw MetricsExporterError.badAddress(text) }
        host = .ipv4(name)
    }

    public var description: String {
        switch host {
        case .ipv4(let ip): return "\(ip):\(port)"
        case .ipv6(let ip): return "[\(ip)]:\(port)"
        }
    }
}

/// The `/metrics` endpoint of live mode.
///
/// The capture thread calls `publish` with a new immutable snapshot; a scrape takes the
/// latest one under a lock held only to copy the reference, then renders it on the
/// server's own threads (FlyingFox on Swift concurrency's pool), never on the capture
/// thread. A slow or silent client only holds its own connection (docs/metrics.md).
/// FlyingFox's tasks run on Swift concurrency's global pool, which nothing else in
/// finscope uses (the capture has its own thread, signals and the /proc helper use Dispatch).
public final class MetricsExporter: @unchecked Sendable {
    private final class Box: Sendable {
        let snapshot: MetricsSnapshot
        init(_ snapshot: MetricsSnapshot) { self.snapshot = snapshot }
    }

    public let address: MetricsAddress
    public let maxGroups: Int
    private let lock = NSLock()
    private var latest = Box(MetricsSnapshot())
    private var scrapeCount = 0
    private var server: HTTPServer!
    private var serverTask: Task<Void, Never>?

    /// Starts listening (returns once the socket listens, or throws a one-line error).
    /// `timeout` bounds the handling of one request (FlyingFox has no idle-connection timeout).
    public init(address text: String, maxGroups: Int = 100, timeout: TimeInterval = 10) throws {
        address = try MetricsAddress(parsing: text)
        self.maxGroups = maxGroups
        let handler = Handler(exporter: Weak(self))
        switch address.host {
        case .ipv4(let ip):
            server = HTTPServer(address: try .inet(ip4: ip, port: address.port), timeout: timeout,
                                logger: .disabled, handler: handler)
        case .ipv6(let ip):
            server = HTTPServer(address: try .inet6(ip6: ip, port: address.port), timeout: timeout,
                                logger: .disabled, handler: handler)
        }
        let outcome = Outcome()
        let server = self.server!
        serverTask = Task.detached {
            do {
                try await server.run()
            } catch {
                outcome.set(.failure(error))
            }
        }
        Task.detached {
            do {
                try await server.waitUntilListening(timeout: 10)
                outcome.set(.success(()))
            } catch {
                outcome.set(.failure(error))
            }
        }
        if case .failure(let error) = outcome.wait(seconds: 15, what: address.description) {
            serverTask?.cancel()
            if let socketError = error as? SocketError, case .failed(_, let code, let message) = socketError {
                if code == EADDRINUSE { throw MetricsExporterError.inUse(address.description) }
                throw MetricsExporterError.cannotListen(address: address.description, reason: message)
            }
            if let exporterError = error as? MetricsExporterError { throw exporterError }
            throw MetricsExporterError.cannotListen(address: address.description, reason: "\(error)")
        }
    }

    /// The port listened on (the one asked for, or the one the system chose for port 0).
    public var port: UInt16 {
        get async {
            if case .ip4(_, let port)? = await server.listeningAddress { return port }
            if case .ip6(_, let port)? = await server.listeningAddress { return port }
            return address.port
        }
    }

    /// Replaces what scrapes see (from the capture thread; a pointer swap under the lock).
    public func publish(_ snapshot: MetricsSnapshot) {
        let box = Box(snapshot)
        lock.lock()
        latest = box
        lock.unlock()
    }

    /// The latest published snapshot.
    public var current: MetricsSnapshot {
        lock.lock()
        let box = latest
        lock.unlock()
        return box.snapshot
    }

    /// Scrapes served so far.
    public var scrapes: Int {
        lock.lock()
        defer { lock.unlock() }
        return scrapeCount
    }

    func scrape(accept: String?) -> (body: String, contentType: String) {
        lock.lock()
        let box = latest
        scrapeCount += 1
        lock.unlock()
        let format = MetricsExposition.Format.negotiate(accept: accept)
        return (MetricsExposition.render(box.snapshot, maxGroups: maxGroups, format: format), format.contentType)
    }

    /// Closes the listening socket and the connections (waits at most a second).
    public func stop() {
        guard let server else { return }
        let done = Outcome()
        Task.detached {
            await server.stop(timeout: 0.5)
            done.set(.success(()))
        }
        _ = done.wait(seconds: 1, what: address.description)
        serverTask?.cancel()
        self.server = nil
    }

    deinit { stop() }

    private struct Weak: Sendable {
        weak var exporter: MetricsExporter?
        init(_ exporter: MetricsExporter) { self.exporter = exporter }
    }

    private struct Handler: HTTPHandler {
        let exporter: Weak

        func handleRequest(_ request: HTTPRequest) async throws -> HTTPResponse {
            guard let exporter = exporter.exporter else { return HTTPResponse(statusCode: .serviceUnavailable) }
            switch request.path {
            case "/metrics":
                let (body, type) = exporter.scrape(accept: request.headers[HTTPHeader("Accept")])
                return HTTPResponse(statusCode: .ok, headers: [.contentType: type], body: Data(body.utf8))
            case "/", "":
                let page = "finscope live: metrics at /metrics (Prometheus text, or OpenMetrics on request)\n"
                return HTTPResponse(statusCode: .ok, headers: [.contentType: "text/plain; charset=utf-8"], body: Data(page.utf8))
            default:
                return HTTPResponse(statusCode: .notFound, headers: [.contentType: "text/plain; charset=utf-8"],
                                    body: Data("not found: try /metrics\n".utf8))
            }
        }
    }
}

/// A one-shot result handed from a task to a blocked thread.
private final class Outcome: @unchecked Sendable {
    private let semaphore = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var value: Result<Void, any Error>?

    func set(_ result: Result<Void, any Error>) {
        lock.lock()
        let first = value == nil
        if first { value = result }
        lock.unlock()
        if first { semaphore.signal() }
    }

    func wait(seconds: Double, what address: String) -> Result<Void, any Error> {
        if semaphore.wait(timeout: .now() + seconds) == .timedOut {
            return .failure(MetricsExporterError.cannotListen(address: address, reason: "the server did not answer in \(Int(seconds)) s"))
        }
        lock.lock()
        defer { lock.unlock() }
        return value!
    }
}
