import Foundation
import Prometheus

/// Renders a `MetricsSnapshot` in the Prometheus text exposition format (0.0.4) or in
/// OpenMetrics 1.0.0, through swift-prometheus's registry. The metric names, types and
/// help texts are documented in docs/metrics.md.
///
/// The output is deterministic: families in a fixed order, the samples of a family sorted
/// by their text (swift-prometheus keeps them in a dictionary).
public enum MetricsExposition {
    public enum Format: Sendable {
        case prometheus
        case openMetrics

        public var contentType: String {
            switch self {
            case .prometheus: return "text/plain; version=0.0.4; charset=utf-8"
            case .openMetrics: return "application/openmetrics-text; version=1.0.0; charset=utf-8"
            }
        }

        /// OpenMetrics when the scraper's Accept header offers it (Prometheus does by default), else text.
        public static func negotiate(accept: String?) -> Format {
            guard let accept else { return .prometheus }
            for part in accept.split(separator: ",") {
                let fields = part.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
                guard fields.first == "application/openmetrics-text" else { continue }
                let refused = fields.dropFirst().contains { $0.hasPrefix("q=") && (Double($0.dropFirst(2)) ?? 1) == 0 }
                if !refused { return .openMetrics }
            }
            return .prometheus
        }
    }

    /// The label names of the per-group metrics, in their order on each sample.
    public static let groupLabels = ["endpoint", "role", "service", "process"]
    /// The service label of the series that sums the groups beyond the limit.
    public static let otherService = "other"

    public enum Name {
        public static let closeWaitEndpoints = "finscope_close_wait_endpoints"
        public static let closeWaitMaxSeconds = "finscope_close_wait_max_seconds"
        public static let findings = "finscope_findings_total"
        public static let closes = "finscope_closes_total"
        public static let flowsTracked = "finscope_flows_tracked"
        public static let packets = "finscope_packets_total"
        public static let packetsDropped = "finscope_packets_dropped_total"
        public static let foldedGroups = "finscope_metrics_folded_groups"
    }

    /// The groups as served: at most `maxGroups` label sets, the biggest first; beyond that
    /// the smallest are folded into one `service="other"` set (endpoints summed, the max of
    /// the maxima). Returns them and how many groups were folded.
    public static func limitedGroups(_ groups: [MetricsSnapshot.Group], maxGroups: Int)
        -> (groups: [MetricsSnapshot.Group], folded: Int)
    {
        // One label set per (endpoint, role, service, process): merge repeats first.
        var merged: [MetricsSnapshot.Group] = []
        var index: [[String]: Int] = [:]
        for group in groups {
            let key = [group.endpoint, group.role, group.service, group.process ?? ""]
            if let at = index[key] {
                merged[at].closeWaitEndpoints += group.closeWaitEndpoints
                merged[at].closeWaitMaxSeconds = max(merged[at].closeWaitMaxSeconds, group.closeWaitMaxSeconds)
            } else {
                var copy = group
                if copy.process == "" { copy.process = nil }
                index[key] = merged.count
                merged.append(copy)
            }
        }
        let limit = max(1, maxGroups)
        guard merged.count > limit else { return (merged, 0) }
        let ranked = merged.sorted { a, b in
            if a.closeWaitEndpoints != b.closeWaitEndpoints { return a.closeWaitEndpoints > b.closeWaitEndpoints }
            if a.closeWaitMaxSeconds != b.closeWaitMaxSeconds { return a.closeWaitMaxSeconds > b.closeWaitMaxSeconds }
            return (a.service, a.endpoint, a.role, a.process ?? "") < (b.service, b.endpoint, b.role, b.process ?? "")
        }
        let kept = Array(ranked.prefix(limit - 1))
        let rest = ranked.dropFirst(limit - 1)
        let other = MetricsSnapshot.Group(
            endpoint: "", role: "", service: otherService, process: nil,
            closeWaitEndpoints: rest.reduce(0) { $0 + $1.closeWaitEndpoints },
            closeWaitMaxSeconds: rest.map(\.closeWaitMaxSeconds).max() ?? 0)
        return (kept + [other], rest.count)
    }

    public static func render(_ snapshot: MetricsSnapshot, maxGroups: Int = 100, format: Format = .prometheus) -> String {
        let (groups, folded) = limitedGroups(snapshot.groups, maxGroups: maxGroups)
        var families: [String] = []

        func family(_ build: (PrometheusCollectorRegistry) -> Void) {
            let registry = PrometheusCollectorRegistry()
            build(registry)
            let text = registry.emitToString()
            var comments: [Substring] = []
            var samples: [Substring] = []
            for line in text.split(separator: "\n") {
                if line.hasPrefix("#") { comments.append(line) } else { samples.append(line) }
            }
            guard !samples.isEmpty else { return }
            families.append((comments + samples.sorted()).joined(separator: "\n") + "\n")
        }
        func descriptor(_ name: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
            MetricNameDescriptor(metricName: String(name.dropLast(unit.isEmpty ? 0 : unit.count + 1)),
                                 unitName: unit, helpText: help)
        }
        func labels(_ group: MetricsSnapshot.Group) -> [(String, String)] {
            [("endpoint", group.endpoint), ("role", group.role), ("service", group.service),
             ("process", group.process ?? "")]
        }

        family { registry in
            let name = descriptor(Name.closeWaitEndpoints, "",
                                  "Endpoints in CLOSE_WAIT past the threshold now, by stuck endpoint address, role, service (the server's address:port) and holding process.")
            for group in groups {
                registry.makeGauge(descriptor: name, labels: labels(group)).set(Double(group.closeWaitEndpoints))
            }
        }
        family { registry in
            let name = descriptor(Name.closeWaitMaxSeconds, "seconds",
                                  "The longest time one endpoint of the group has been in CLOSE_WAIT, in seconds.")
            for group in groups {
                registry.makeGauge(descriptor: name, labels: labels(group)).set(group.closeWaitMaxSeconds)
            }
        }
        family { registry in
            let name = descriptor(Name.findings, "total", "Findings raised since finscope started, by kind.")
            for (kind, count) in snapshot.findingsTotal {
                registry.makeCounter(descriptor: name, labels: [("kind", kind)]).increment(by: Int64(count))
            }
        }
        family { registry in
            let name = descriptor(Name.closes, "total", "Connections seen since finscope started, by how they closed.")
            for (close, count) in snapshot.closesTotal {
                registry.makeCounter(descriptor: name, labels: [("close", close)]).increment(by: Int64(count))
            }
        }
        family { registry in
            registry.makeGauge(descriptor: descriptor(Name.flowsTracked, "", "Connections in finscope's flow table now."))
                .set(Double(snapshot.flowsTracked))
        }
        family { registry in
            registry.makeCounter(descriptor: descriptor(Name.packets, "total", "Packets captured since finscope started."))
                .increment(by: Int64(snapshot.packetsTotal))
        }
        family { registry in
            let name = descriptor(Name.packetsDropped, "total",
                                  "Packets libpcap reports dropped: where=kernel for lack of buffer space, where=interface by the network interface.")
            registry.makeCounter(descriptor: name, labels: [("where", "kernel")]).increment(by: Int64(snapshot.droppedKernel))
            registry.makeCounter(descriptor: name, labels: [("where", "interface")]).increment(by: Int64(snapshot.droppedInterface))
        }
        family { registry in
            let name = descriptor(Name.foldedGroups, "",
                                  "CLOSE_WAIT groups summed into the service=other series now, beyond --metrics-max-groups.")
            registry.makeGauge(descriptor: name).set(Double(folded))
        }

        switch format {
        case .prometheus:
            return families.joined()
        case .openMetrics:
            return families.map(openMetricsFamily).joined() + "# EOF\n"
        }
    }

    /// The same family in OpenMetrics: a counter's family name drops the `_total` its samples keep.
    static func openMetricsFamily(_ text: String) -> String {
        var counter = false
        for line in text.split(separator: "\n") where line.hasPrefix("# TYPE ") && line.hasSuffix(" counter") {
            counter = true
        }
        guard counter else { return text }
        return text.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            for prefix in ["# HELP ", "# TYPE "] where line.hasPrefix(prefix) {
                let rest = line.dropFirst(prefix.count)
                guard let space = rest.firstIndex(of: " ") else { continue }
                let name = rest[..<space]
                if name.hasSuffix("_total") { return prefix + name.dropLast(6) + rest[space...] }
            }
            return String(line)
        }.joined(separator: "\n")
    }
}
