import FinscopeAnalysis
import FinscopeCapture
import FinscopeFindings
import FinscopeFlows
import FinscopeWire
import FinscopeMetrics
import Foundation

/// `finscope live --metrics`: turns the live pipeline's current result into the exporter's
/// plain-value snapshot, at least once a second (docs/metrics.md).
///
/// Live mode ticks every --report-every seconds; with --metrics the capture loop ticks every
/// second (or more often, when reports are more frequent), each tick publishes a snapshot,
/// and `reportDue` says which ticks also print the report.
final class LiveMetrics {
    static let publishInterval: Nanoseconds = 1_000_000_000

    let exporter: MetricsExporter
    private let reportInterval: Nanoseconds?
    private var nextReport: Nanoseconds?
    private var findings = MonotonicCounts(keys: FindingKind.allCases.map(\.rawValue))
    private var closes = MonotonicCounts(keys: CloseKind.allCases.map(\.rawValue))

    /// Starts the endpoint; throws `MetricsExporterError` (one line) when it cannot listen.
    init(address: String, maxGroups: Int, reportInterval: Nanoseconds?, start: Nanoseconds) throws {
        exporter = try MetricsExporter(address: address, maxGroups: maxGroups)
        self.reportInterval = reportInterval
        nextReport = reportInterval.map { start + $0 }
    }

    /// The interval to give `LiveCapture.run`: the report interval, or a second when
    /// metrics are served and reports are rarer (or off).
    static func tickInterval(report: Nanoseconds?, metrics: LiveMetrics?) -> Nanoseconds? {
        guard metrics != nil else { return report }
        return min(report ?? publishInterval, publishInterval)
    }

    /// Whether the tick at `now` is also a report tick (--report-every).
    func reportDue(now: Nanoseconds) -> Bool {
        guard let interval = reportInterval, let due = nextReport else { return false }
        // A tick may run a little early against the schedule: 5 ms of slack.
        guard now + 5_000_000 >= due else { return false }
        nextReport = max(due + interval, now)
        return true
    }

    /// Publishes the pipeline's state as of `now`, the owners of stuck sockets named.
    ///
    /// Naming owners scans every process's /proc/PID/fd (measured: ~0.15 s of CPU on a busy
    /// host); once a second would cost more than everything else. So owners are remembered
    /// per stuck endpoint, and /proc is read only when an endpoint is stuck that was never
    /// looked up, or, for those whose owner was not found, every `rescanInterval`.
    func publish(_ pipeline: Pipeline, now: Nanoseconds, attribution: Attribution) {
        var result = pipeline.result(end: now)
        var stuck = Set<OwnerKey>()
        var unresolved = false, unknown = false
        for flow in result.flows {
            for finding in flow.findings where finding.kind == .closeWait {
                let key = OwnerKey(flow: flow.id, role: finding.endpoint)
                stuck.insert(key)
                switch owners[key] {
                case nil: unknown = true
                case .some(nil): unresolved = true
                case .some(.some): break
                }
            }
        }
        if unknown || (unresolved && now - lastScan >= Self.rescanInterval) {
            _ = attribution.annotate(&result)
            lastScan = now
            for flow in result.flows {
                for finding in flow.findings where finding.kind == .closeWait {
                    owners[OwnerKey(flow: flow.id, role: finding.endpoint)] = .some(finding.process)
                }
            }
        }
        owners = owners.filter { stuck.contains($0.key) }
        let known = owners
        result.updateFlows { flows in
            for index in flows.indices {
                for slot in flows[index].findings.indices where flows[index].findings[slot].kind == .closeWait {
                    let key = OwnerKey(flow: flows[index].id, role: flows[index].findings[slot].endpoint)
                    flows[index].findings[slot].process = known[key] ?? nil
                }
            }
        }
        let (tracked, finished) = pipeline.withTracker { ($0.trackedFlows, $0.finishedFlows) }
        publish(result, flowsTracked: tracked, finished: finished)
    }

    static let rescanInterval: Nanoseconds = 10_000_000_000
    private struct OwnerKey: Hashable {
        var flow: Int
        var role: Role
    }
    /// The owner of each stuck endpoint: nil when never looked up, .some(nil) when not found.
    private var owners: [OwnerKey: OwningProcess?] = [:]
    private var lastScan = Nanoseconds.min / 2

    /// Publishes `result` (the final one at the stop, already annotated).
    /// `finished` counts the flows whose close kind is final (they left the flow table); a
    /// flow still tracked may yet change kind (open → server-first), so counting it would make
    /// the counter count one connection twice. At the stop every flow is final.
    func publish(_ result: AnalysisResult, flowsTracked: Int, finished: FlowTally? = nil) {
        findings.update(Dictionary(uniqueKeysWithValues: FindingKind.allCases.map { ($0.rawValue, result.count($0)) }))
        let closed = finished ?? result.tally
        closes.update(Dictionary(uniqueKeysWithValues: CloseKind.allCases.map { ($0.rawValue, closed.count($0)) }))
        let source = result.source
        exporter.publish(MetricsSnapshot(
            groups: Self.closeWaitGroups(result), findingsTotal: findings.totals, closesTotal: closes.totals,
            flowsTracked: flowsTracked, packetsTotal: source.packets,
            droppedKernel: source.dropped ?? 0, droppedInterface: source.interfaceDropped ?? 0))
    }

    func stop() { exporter.stop() }

    /// The endpoints in CLOSE_WAIT now (close-wait findings), by stuck endpoint address,
    /// role, service (the server's address:port, SPEC §4) and holding process.
    static func closeWaitGroups(_ result: AnalysisResult) -> [MetricsSnapshot.Group] {
        struct Key: Hashable {
            var endpoint: String, role: String, service: String, process: String?
        }
        var groups: [Key: MetricsSnapshot.Group] = [:]
        var order: [Key] = []
        for flow in result.flows {
            for finding in flow.findings where finding.kind == .closeWait {
                let key = Key(endpoint: flow.address(of: finding.endpoint).ip.description,
                              role: finding.endpoint.rawValue, service: flow.server.description,
                              process: finding.process.map { commandName($0.command) })
                let seconds = Double(finding.duration) / 1e9
                if groups[key] == nil {
                    order.append(key)
                    groups[key] = MetricsSnapshot.Group(endpoint: key.endpoint, role: key.role, service: key.service,
                                                        process: key.process, closeWaitEndpoints: 0, closeWaitMaxSeconds: 0)
                }
                groups[key]!.closeWaitEndpoints += 1
                groups[key]!.closeWaitMaxSeconds = max(groups[key]!.closeWaitMaxSeconds, seconds)
            }
        }
        return order.map { groups[$0]! }
    }

    /// "java" from "/usr/bin/java -jar app.jar": the label stays one per program, not per command line.
    static func commandName(_ command: String) -> String {
        let first = command.split(separator: " ", maxSplits: 1).first.map(String.init) ?? command
        return first.split(separator: "/").last.map(String.init) ?? first
    }
}

/// Counts that only go up, as Prometheus counters must, fed with running counts that may
/// go down: a flow counted `open` (or `close-wait`) moves to `server-first` (or
/// `slow-close`) when it ends; the new kind goes up and the old one is not taken back.
struct MonotonicCounts {
    private var last: [String: Int] = [:]
    private(set) var totals: [String: Int] = [:]

    init(keys: [String]) {
        for key in keys { totals[key] = 0 }
    }

    mutating func update(_ current: [String: Int]) {
        for (key, value) in current {
            totals[key, default: 0] += max(0, value - (last[key] ?? 0))
            last[key] = value
        }
    }
}
