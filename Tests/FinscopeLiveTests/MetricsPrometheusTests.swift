import FinscopeTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A program on PATH (or in the usual system folders), nil when not installed.
func installedProgram(_ name: String) -> String? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
    for folder in path.split(separator: ":").map(String.init) + ["/usr/bin", "/usr/local/bin", "/usr/sbin", "/bin"] {
        let candidate = folder + "/" + name
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    return nil
}

let prometheusPath = installedProgram("prometheus")
let promtoolPath = installedProgram("promtool")

/// The repository's deploy/ folder.
let deployFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("deploy")

/// Runs a program to its end with a time bound; returns its status and output.
func runProgram(_ path: String, _ arguments: [String], input: String? = nil, seconds: Double = 60) throws
    -> (status: Int32, output: String)
{
    let directory = try TemporaryDirectory(prefix: "finscope-program")
    let outputURL = directory.url(for: "output")
    _ = FileManager.default.createFile(atPath: outputURL.path, contents: nil)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    let output = try FileHandle(forWritingTo: outputURL)
    process.standardOutput = output
    process.standardError = output
    if let input {
        let inputURL = try directory.write(Data(input.utf8), to: "input")
        process.standardInput = try FileHandle(forReadingFrom: inputURL)
    } else {
        process.standardInput = FileHandle.nullDevice
    }
    try process.run()
    let end = Date().addingTimeInterval(seconds)
    while process.isRunning, Date() < end { usleep(20_000) }
    if process.isRunning {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        throw RunFailure(description: "\(path) \(arguments) did not finish in \(seconds) s")
    }
    process.waitUntilExit()
    return (process.terminationStatus, (try? String(contentsOf: outputURL, encoding: .utf8)) ?? "")
}

/// A real Prometheus server on 127.0.0.1, its data in a temporary folder, scraping the
/// given finscope endpoints every second (job "finscope"). Killed on release.
final class PrometheusServer {
    let process = Process()
    let directory: TemporaryDirectory
    let port: UInt16
    let logURL: URL

    init(scraping targets: [UInt16]) throws {
        directory = try TemporaryDirectory(prefix: "finscope-prometheus")
        port = try freeLoopbackPort()
        let list = targets.map { "'127.0.0.1:\($0)'" }.joined(separator: ", ")
        let config = """
            global:
              scrape_interval: 1s
              scrape_timeout: 1s
              evaluation_interval: 1s
            scrape_configs:
              - job_name: finscope
                static_configs:
                  - targets: [\(list)]

            """
        let configURL = try directory.write(Data(config.utf8), to: "prometheus.yml")
        try FileManager.default.createDirectory(at: directory.url(for: "data"), withIntermediateDirectories: true)
        logURL = directory.url(for: "log")
        _ = FileManager.default.createFile(atPath: logURL.path, contents: nil)
        process.executableURL = URL(fileURLWithPath: try #require(prometheusPath))
        process.arguments = ["--config.file=\(configURL.path)", "--storage.tsdb.path=\(directory.url(for: "data").path)",
                             "--web.listen-address=127.0.0.1:\(port)", "--log.level=warn"]
        let log = try FileHandle(forWritingTo: logURL)
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let end = Date().addingTimeInterval(30)
        while Date() < end {
            if let reply = try? httpGet(port: port, path: "/-/ready", timeout: 1), reply.status == 200 { return }
            guard process.isRunning else { break }
            usleep(100_000)
        }
        throw RunFailure(description: "prometheus did not become ready: \(log)")
    }

    var log: String { (try? String(contentsOf: logURL, encoding: .utf8)) ?? "" }

    /// An instant query: each series' labels and value.
    func query(_ expression: String) throws -> [(labels: [String: String], value: Double)] {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        let encoded = try #require(expression.addingPercentEncoding(withAllowedCharacters: allowed))
        let reply = try httpGet(port: port, path: "/api/v1/query?query=\(encoded)")
        guard reply.status == 200,
              let object = try JSONSerialization.jsonObject(with: Data(reply.body.utf8)) as? [String: Any],
              object["status"] as? String == "success",
              let data = object["data"] as? [String: Any],
              let result = data["result"] as? [[String: Any]]
        else { throw RunFailure(description: "query \(expression) failed: \(reply.status) \(reply.body)") }
        return result.map { series in
            let labels = series["metric"] as? [String: String] ?? [:]
            let pair = series["value"] as? [Any] ?? []
            return (labels, Double(pair.count == 2 ? (pair[1] as? String ?? "nan") : "nan") ?? .nan)
        }
    }

    /// Polls `expression` until `accept` holds (or `seconds` pass); returns the last answer.
    func wait(for expression: String, seconds: Double = 20,
              until accept: ([(labels: [String: String], value: Double)]) -> Bool) throws
        -> [(labels: [String: String], value: Double)]
    {
        let end = Date().addingTimeInterval(seconds)
        var last = try query(expression)
        while !accept(last), Date() < end {
            usleep(250_000)
            last = try query(expression)
        }
        return last
    }

    func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        let end = Date().addingTimeInterval(10)
        while process.isRunning, Date() < end { usleep(20_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    deinit { stop() }
}

/// The command name finscope's metrics give this test process ("process" label).
let thisCommandName: String = {
    let data = FileManager.default.contents(atPath: "/proc/self/cmdline") ?? Data()
    let first = data.split(separator: 0).first.map { String(decoding: $0, as: UTF8.self) } ?? ""
    return first.split(separator: "/").last.map(String.init) ?? first
}()

@Suite("finscope live --metrics scraped by a real Prometheus", .serialized)
struct MetricsPrometheusTests {
    @Test("Prometheus gets the leaked count for the leak's service; 0 / no series from a control run without a leak",
          .enabled(if: mayCapture, "needs CAP_NET_RAW: run as root"), .enabled(if: prometheusPath != nil && promtoolPath != nil, "prometheus/promtool not found: Scripts/setup --prometheus installs Debian's prometheus package"),
          .timeLimit(.minutes(3)))
    func prometheusSeesTheLeak() throws {
        let leakServer = try LoopbackServer()
        defer { leakServer.close() }
        let controlServer = try LoopbackServer()
        defer { controlServer.close() }
        let leakPort = try freeLoopbackPort()
        let controlPort = try freeLoopbackPort()
        let common = ["live", "-i", "lo", "--close-wait-threshold", "1", "--report-every", "0", "--json", "--duration", "100"]  // stopped by SIGTERM at the end; the duration only bounds a hung test
        let leakRun = try FinscopeRun(common + ["--filter", "tcp port \(leakServer.port)", "--metrics", "127.0.0.1:\(leakPort)"])
        let controlRun = try FinscopeRun(common + ["--filter", "tcp port \(controlServer.port)", "--metrics", "127.0.0.1:\(controlPort)"])
        try leakRun.waitUntilCapturing()
        try controlRun.waitUntilCapturing()
        let prometheus = try PrometheusServer(scraping: [leakPort, controlPort])

        let total = 7, leakedCount = 4
        var leaked: [Int32] = []
        defer { leaked.forEach { close($0) } }
        for index in 0..<total {
            let client = try leakServer.exchange()
            if index < leakedCount { leaked.append(client.fd) } else { close(client.fd) }
            close(try controlServer.exchange().fd)
        }
        let service = "127.0.0.1:\(leakServer.port)"
        let leakInstance = "127.0.0.1:\(leakPort)", controlInstance = "127.0.0.1:\(controlPort)"

        let seen = try prometheus.wait(for: "finscope_close_wait_endpoints{service=\"\(service)\"}") {
            $0.count == 1 && $0[0].value == Double(leakedCount)
        }
        #expect(seen.count == 1, "series: \(seen); prometheus log: \(prometheus.log)")
        let series = try #require(seen.first)
        #expect(series.value == Double(leakedCount))
        #expect(series.labels["instance"] == leakInstance)
        #expect(series.labels["job"] == "finscope")
        #expect(series.labels["endpoint"] == "127.0.0.1")
        #expect(series.labels["role"] == "client")
        #expect(series.labels["process"] == thisCommandName)
        let maxSeconds = try prometheus.query("finscope_close_wait_max_seconds{service=\"\(service)\"}")
        #expect(maxSeconds.count == 1 && (maxSeconds.first?.value ?? 0) >= 1, "\(maxSeconds)")

        // The control run: every connection closed, so no CLOSE_WAIT series at all, while its
        // counters show it was scraped and saw every connection.
        let controlCloses = try prometheus.wait(for: "finscope_closes_total{instance=\"\(controlInstance)\",close=\"server-first\"}") {
            $0.first?.value == Double(total)
        }
        #expect(controlCloses.first?.value == Double(total), "\(controlCloses)")
        #expect(try prometheus.query("finscope_close_wait_endpoints{instance=\"\(controlInstance)\"}").isEmpty)
        #expect(try prometheus.query("sum(finscope_close_wait_endpoints{instance=\"\(controlInstance)\"}) or vector(0)").first?.value == 0)
        #expect(try prometheus.query("finscope_findings_total{instance=\"\(controlInstance)\",kind=\"close-wait\"}").first?.value == 0)
        let leakFindings = try prometheus.query("finscope_findings_total{instance=\"\(leakInstance)\",kind=\"close-wait\"}")
        #expect(leakFindings.first?.value == Double(leakedCount))
        // Prometheus scraped both without an error (it asks for OpenMetrics first).
        let up = try prometheus.query("up{job=\"finscope\"}")
        #expect(up.count == 2 && up.allSatisfy { $0.value == 1 }, "\(up)")
        #expect(try prometheus.query("scrape_samples_scraped{instance=\"\(leakInstance)\"}").first.map { $0.value > 10 } == true)

        // promtool's linter on a text scrape with the leak's series in it.
        let scrape = try httpGet(port: leakPort, path: "/metrics")
        #expect(scrape.body.contains("finscope_close_wait_endpoints{endpoint=\"127.0.0.1\",role=\"client\",service=\"\(service)\""))
        let lint = try runProgram(try #require(promtoolPath), ["check", "metrics"], input: scrape.body)
        #expect(lint.status == 0 && lint.output.isEmpty, "promtool check metrics: \(lint.output)")

        // The leak is released: the gauge goes back to no series once the sockets close.
        leaked.forEach { close($0) }
        leaked = []
        let after = try prometheus.wait(for: "finscope_close_wait_endpoints{service=\"\(service)\"}") { $0.isEmpty }
        #expect(after.isEmpty, "\(after)")
        let slow = try prometheus.wait(for: "finscope_findings_total{instance=\"\(leakInstance)\",kind=\"slow-close\"}") {
            $0.first?.value == Double(leakedCount)
        }
        #expect(slow.first?.value == Double(leakedCount))

        #expect(try leakRun.finish(signal: SIGTERM) == 0, "stderr: \(leakRun.stderr)")
        #expect(try controlRun.finish(signal: SIGTERM) == 0, "stderr: \(controlRun.stderr)")
        prometheus.stop()
    }

    @Test("--metrics: text or OpenMetrics by Accept, 404 elsewhere; serves until the end of --duration; a port in use and a bad address: one line, exit 2",
          .enabled(if: mayCapture, "needs CAP_NET_RAW: run as root"), .timeLimit(.minutes(1)))
    func servesUntilTheEnd() throws {
        let port = try freeLoopbackPort()
        let start = Date()
        let run = try FinscopeRun(["live", "-i", "lo", "--filter", "tcp port 9", "--metrics", "127.0.0.1:\(port)",
                                   "--duration", "3", "--report-every", "0"])
        try run.waitUntilCapturing()
        // The formats: text by default, OpenMetrics when asked for; other paths 404.
        let text = try httpGet(port: port, path: "/metrics")
        #expect(text.status == 200)
        #expect(text.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8")
        #expect(text.body.contains("# TYPE finscope_packets_total counter\nfinscope_packets_total "))
        #expect(!text.body.contains("# EOF"))
        let open = try httpGet(port: port, path: "/metrics", accept: "application/openmetrics-text; version=1.0.0")
        #expect(open.headers["content-type"] == "application/openmetrics-text; version=1.0.0; charset=utf-8")
        #expect(open.body.contains("# TYPE finscope_packets counter\nfinscope_packets_total "))
        #expect(open.body.hasSuffix("finscope_metrics_folded_groups 0.0\n# EOF\n"))
        #expect(try httpGet(port: port, path: "/nope").status == 404)
        #expect(try httpGet(port: port, path: "/").body.contains("/metrics"))

        let busy = try finscope(["live", "-i", "lo", "--metrics", "127.0.0.1:\(port)", "--duration", "1"])
        #expect(busy.status == 2)
        #expect(busy.stderr == "finscope: error: cannot serve metrics on 127.0.0.1:\(port): the address is already in use; "
                + "stop what listens there (ss -ltnp) or give another port to --metrics\n")
        let bad = try finscope(["live", "-i", "lo", "--metrics", "localhost", "--duration", "1"])
        #expect(bad.status == 2)
        #expect(bad.stderr.split(separator: "\n").count == 1)
        #expect(bad.stderr.contains("--metrics 'localhost' is not an address to listen on"))

        var lastServed = start
        while run.process.isRunning, Date().timeIntervalSince(start) < 10 {
            if let reply = try? httpGet(port: port, path: "/metrics", timeout: 1), reply.status == 200 { lastServed = Date() }
            usleep(100_000)
        }
        #expect(try run.finish() == 0, "stderr: \(run.stderr)")
        // Served to the end of the 3 s (the capture started a little after `start`).
        #expect(lastServed.timeIntervalSince(start) > 2.5, "last scrape at \(lastServed.timeIntervalSince(start)) s")
        #expect(throws: (any Error).self) { _ = try httpGet(port: port, path: "/metrics", timeout: 1) }
    }

    @Test("promtool accepts deploy/'s alerting rules and their unit tests pass",
          .enabled(if: promtoolPath != nil, "prometheus/promtool not found: Scripts/setup --prometheus installs Debian's prometheus package"))
    func alertingRules() throws {
        let promtool = try #require(promtoolPath)
        let rules = deployFolder.appendingPathComponent("prometheus/finscope-rules.yml").path
        let tests = deployFolder.appendingPathComponent("prometheus/finscope-rules.test.yml").path
        let check = try runProgram(promtool, ["check", "rules", rules])
        #expect(check.status == 0, "\(check.output)")
        #expect(check.output.contains("SUCCESS: 4 rules found"), "\(check.output)")
        let unit = try runProgram(promtool, ["test", "rules", tests])
        #expect(unit.status == 0, "\(unit.output)")
        #expect(unit.output.contains("SUCCESS"), "\(unit.output)")
    }
}
