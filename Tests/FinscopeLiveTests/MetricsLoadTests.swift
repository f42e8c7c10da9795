import FinscopeTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("finscope live --metrics under load", .serialized)
struct MetricsLoadTests {
    @Test("20 parallel clients × 50 scrapes and slow clients while packets flow: no drops, the capture keeps up",
          .enabled(if: mayCapture, "needs CAP_NET_RAW: run as root"), .timeLimit(.minutes(2)))
    func burstOfScrapes() throws {
        let server = try LoopbackServer()
        defer { server.close() }
        let metricsPort = try freeLoopbackPort()
        // The capture sees both the application's connections and the scrapes.
        let run = try FinscopeRun(["live", "-i", "lo", "--filter", "tcp port \(server.port) or tcp port \(metricsPort)",
                                   "--metrics", "127.0.0.1:\(metricsPort)", "--report-every", "1",
                                   "--close-wait-threshold", "1", "--json"])
        try run.waitUntilCapturing()
        let capturing = Date()

        // Slow clients first, held for the whole burst: one connects and sends nothing, one
        // sends half a request, one asks and reads its answer a byte at a time.
        var slow: [Int32] = []
        defer { slow.forEach { close($0) } }
        slow.append(try connectLoopback(port: metricsPort))
        let half = try connectLoopback(port: metricsPort)
        slow.append(half)
        _ = Array("GET /metrics HTTP/1.1\r\nHost: x\r\n".utf8).withUnsafeBytes { send(half, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        let trickle = try connectLoopback(port: metricsPort)
        slow.append(trickle)
        var size: Int32 = 1
        setsockopt(trickle, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        _ = Array("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n".utf8).withUnsafeBytes { send(trickle, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        let trickleDone = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var trickled = 0
        Thread.detachNewThread {
            var byte: UInt8 = 0
            let end = Date().addingTimeInterval(6)
            while Date() < end, recv(trickle, &byte, 1, 0) == 1 { trickled += 1; usleep(20_000) }
            trickleDone.signal()
        }
        // With the slow clients connected, a normal scrape is still answered at once.
        let started = Date()
        #expect(try httpGet(port: metricsPort, path: "/metrics", timeout: 2).status == 200)
        let firstScrape = Date().timeIntervalSince(started)

        // Traffic: connections to the application server, all closed but `leakedCount`.
        let exchanges = 400, leakedCount = 5
        let traffic = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var leaked: [Int32] = []
        nonisolated(unsafe) var trafficError: (any Error)?
        nonisolated(unsafe) let application = server
        Thread.detachNewThread {
            do {
                for index in 0..<exchanges {
                    let client = try application.exchange()
                    if index < leakedCount { leaked.append(client.fd) } else { close(client.fd) }
                }
            } catch { trafficError = error }
            traffic.signal()
        }
        // The burst: 20 clients × 50 scrapes, each its own connection.
        let clients = 20, perClient = 50
        let lock = NSLock()
        nonisolated(unsafe) var ok = 0
        nonisolated(unsafe) var failures: [String] = []
        nonisolated(unsafe) var slowest = 0.0
        let burstStart = Date()
        DispatchQueue.concurrentPerform(iterations: clients) { _ in
            for _ in 0..<perClient {
                let begin = Date()
                do {
                    let reply = try httpGet(port: metricsPort, path: "/metrics", timeout: 5)
                    let good = reply.status == 200 && reply.body.contains("finscope_packets_total ")
                    lock.lock()
                    if good { ok += 1 } else { failures.append("status \(reply.status)") }
                    slowest = max(slowest, Date().timeIntervalSince(begin))
                    lock.unlock()
                } catch {
                    lock.lock()
                    failures.append("\(error)")
                    lock.unlock()
                }
            }
        }
        let burstSeconds = Date().timeIntervalSince(burstStart)
        traffic.wait()
        defer { leaked.forEach { close($0) } }
        if let trafficError { throw trafficError }
        _ = trickleDone.wait(timeout: .now() + 10)
        usleep(2_500_000)  // past the threshold, a report and a publish after it
        let live = try httpGet(port: metricsPort, path: "/metrics")
        let captureSeconds = Date().timeIntervalSince(capturing)
        let status = try run.finish(signal: SIGTERM)
        #expect(status == 0, "stderr: \(run.stderr)")

        #expect(ok == clients * perClient, "failures: \(failures.prefix(5))")
        #expect(trickled > 0, "the slow reader got part of its answer")
        #expect(firstScrape < 1, "a scrape beside the slow clients took \(firstScrape) s")
        #expect(live.body.contains("finscope_close_wait_endpoints{endpoint=\"127.0.0.1\",role=\"client\",service=\"127.0.0.1:\(server.port)\",process=\"\(thisCommandName)\"} \(leakedCount).0"),
                "\(live.body.prefix(600))")

        let report = try jsonObject(run.stdout)
        let source = try #require(report["source"] as? [String: Any])
        let dropped = try #require(source["dropped"] as? Int)
        let ifDropped = try #require(source["ifDropped"] as? Int)
        let packets = try #require(source["packets"] as? Int)
        let summary = try #require(report["summary"] as? [String: Any])
        let flows = try #require(summary["flows"] as? Int)
        let findings = try #require(summary["findings"] as? [String: Int])
        let reports = run.stderr.components(separatedBy: "\n-- ").count - 1 + (run.stderr.hasPrefix("-- ") ? 1 : 0)
        print("metrics burst: \(ok) of \(clients * perClient) scrapes in \(String(format: "%.2f", burstSeconds)) s "
              + "(slowest \(String(format: "%.3f", slowest)) s), first scrape beside 3 slow clients \(String(format: "%.3f", firstScrape)) s, "
              + "\(exchanges) connections, \(packets) packets captured, \(flows) flows, libpcap dropped \(dropped), "
              + "interface dropped \(ifDropped), \(reports) progress reports in \(String(format: "%.1f", captureSeconds)) s")
        #expect(dropped == 0)
        #expect(ifDropped == 0)
        // Every application connection and every scrape was captured and analyzed.
        #expect(flows >= exchanges + clients * perClient)
        // The leaked connections are the close-wait findings towards the application server
        // (a slow client the exporter timed out may add its own, towards the metrics port).
        let appStuck = (report["flows"] as? [[String: Any]] ?? []).filter { flow in
            (flow["server"] as? [String: Any])?["port"] as? Int == Int(server.port)
                && (flow["findings"] as? [[String: Any]] ?? []).contains { $0["kind"] as? String == "close-wait" }
        }
        #expect(appStuck.count == leakedCount)
        #expect((findings["close-wait"] ?? 0) >= leakedCount)
        // The capture loop kept ticking through the burst and with the slow clients
        // connected: a report every second (give or take the first and the last).
        #expect(reports >= Int(captureSeconds) - 2, "\(reports) reports over \(captureSeconds) s")
    }
}
