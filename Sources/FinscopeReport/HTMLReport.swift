import FinscopeFindings
import FinscopeFlows
import FinscopeWire

/// `--html FILE`: one self-contained page (inline CSS and SVG, no scripts, no fetches): a
/// timeline of the sockets in CLOSE_WAIT and the FINs per interval over the capture, the
/// groups with their diagnoses and Wireshark filters, and ladder diagrams.
public enum HTMLReport {
    /// A ladder to show: a title and the diagram's plain text.
    public struct LadderBlock: Sendable {
        public var title: String
        public var text: String
        public init(title: String, text: String) {
            self.title = title
            self.text = text
        }
    }

    public static func render(_ result: AnalysisResult, ladders: [LadderBlock] = []) -> String {
        let source = result.source
        let flowsByID = Dictionary(result.flows.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        var html = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>finscope — \(escape(source.name))</title>
            <style>\(css)</style>
            </head><body>
            <h1>finscope <span class="dim">— who is leaking sockets?</span></h1>

            """
        var facts = "\(grouped(source.packets)) packets, \(grouped(result.tally.flows)) TCP connections"
        if let start = source.start, let end = source.end {
            facts += ", \(utcText(start)) + \(durationText(end - start))"
        }
        html += "<p class=\"source\"><b>\(escape(source.name))</b>: \(escape(facts))</p>\n"
        for warning in source.warnings { html += "<p class=\"warning\">warning: \(escape(warning))</p>\n" }

        html += "<div class=\"cards\">\n"
        for kind in FindingKind.allCases {
            let count = result.count(kind)
            html += "<div class=\"card \(count > 0 ? kind.rawValue : "none")\"><div class=\"n\">\(grouped(count))</div>"
                + "<div>\(kind.rawValue)</div></div>\n"
        }
        for kind in CloseKind.allCases where result.count(kind) > 0 {
            html += "<div class=\"card close\"><div class=\"n\">\(grouped(result.count(kind)))</div><div>\(kind.rawValue)</div></div>\n"
        }
        html += "</div>\n"

        html += "<h2>Sockets in CLOSE_WAIT over the capture</h2>\n"
        html += timeline(result)

        html += "<h2>Groups</h2>\n"
        if result.groups.isEmpty {
            html += "<p>No endpoint stayed in CLOSE_WAIT or left a FIN unacknowledged for "
                + "\(durationText(result.closeWaitThreshold)) or more.</p>\n"
        } else {
            html += "<table><thead><tr><th>finding</th><th>stuck endpoint</th><th>service</th><th>peer</th><th>connections</th>"
                + "<th>median</th><th>max</th></tr></thead><tbody>\n"
            for group in result.groups {
                html += "<tr class=\"\(group.kind.rawValue)\"><td><span class=\"tag\">\(group.kind.rawValue)</span></td>"
                    + "<td>\(escape(group.endpointIP.description)) (\(group.role.rawValue))</td>"
                    + "<td>\(escape(group.service.description))</td><td>\(escape(group.peerText))</td>"
                    + "<td class=\"num\">\(grouped(group.flowCount))</td>"
                    + "<td class=\"num\">\(durationText(group.medianDuration))</td>"
                    + "<td class=\"num\">\(durationText(group.maxDuration))</td></tr>\n"
                let codePath = Diagnosis.codePath(group).map { "<p class=\"code\">\(escape($0))</p>" } ?? ""
                let apps = group.apps.isEmpty ? "" : "<p class=\"dim\">carried: " + group.apps.map { app in
                    escape([app.protocol.rawValue, app.request ?? app.sni ?? "?", app.userAgent.map { "(\($0))" } ?? ""]
                        .filter { !$0.isEmpty }.joined(separator: " ")) + " ×\(grouped(app.flows))"
                }.joined(separator: "; ") + "</p>"
                html += "<tr class=\"detail\"><td></td><td colspan=\"6\">\(codePath)\(apps)<p>\(escape(Diagnosis.text(group, flows: flowsByID)))</p>"
                    + "<p class=\"filter\">Wireshark: <code>\(escape(Diagnosis.wiresharkFilter(group)))</code></p>"
                    + "<p class=\"dim\">flows: \(group.flowIDs.prefix(20).map { "#\($0)" }.joined(separator: ", "))"
                    + "\(group.flowIDs.count > 20 ? " … (+\(group.flowIDs.count - 20) more)" : "")</p></td></tr>\n"
            }
            html += "</tbody></table>\n"
        }

        if !ladders.isEmpty {
            html += "<h2>Closing exchanges</h2>\n"
            for ladder in ladders {
                html += "<h3>\(escape(ladder.title))</h3>\n<pre class=\"ladder\">\(escape(ladder.text))</pre>\n"
            }
        }
        html += "<p class=\"dim foot\">finscope, SPEC schema 1. Threshold \(durationText(result.closeWaitThreshold)).</p>\n"
        html += "</body></html>\n"
        return html
    }

    // MARK: Timeline

    /// Intervals during which an endpoint sat in CLOSE_WAIT, from the analysis's own
    /// transitions: from entering CLOSE_WAIT to the endpoint's next state, or else to the
    /// flow's end (the capture's end, or the new connection that replaced it on its 4-tuple).
    public static func closeWaitIntervals(_ result: AnalysisResult) -> [(start: Nanoseconds, end: Nanoseconds)] {
        var intervals: [(Nanoseconds, Nanoseconds)] = []
        for flow in result.flows {
            for role in Role.allCases {
                let steps = flow.transitions.filter { $0.endpoint == role }
                guard let enter = steps.firstIndex(where: { $0.state == .closeWait }) else { continue }
                let start = steps[enter].time
                let end = enter + 1 < steps.count ? steps[enter + 1].time : flow.end.at
                intervals.append((start, max(start, end)))
            }
        }
        return intervals
    }

    static func timeline(_ result: AnalysisResult) -> String {
        guard let start = result.source.start, let end = result.source.end, end > start else {
            return "<p class=\"dim\">(the capture is too short for a timeline)</p>\n"
        }
        let width = 960.0, height = 240.0, left = 56.0, right = 56.0, top = 12.0, bottom = 34.0
        let plotW = width - left - right, plotH = height - top - bottom
        let span = Double(end - start)
        func x(_ t: Nanoseconds) -> Double { left + plotW * Double(t - start) / span }

        // Step function of sockets in CLOSE_WAIT.
        var events: [(Nanoseconds, Int)] = []
        for interval in closeWaitIntervals(result) {
            events.append((interval.start, 1))
            events.append((interval.end, -1))
        }
        events.sort { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
        var level = 0, peak = 0
        var steps: [(Nanoseconds, Int)] = [(start, 0)]
        for (time, delta) in events {
            level += delta
            peak = max(peak, level)
            if let last = steps.last, last.0 == time { steps[steps.count - 1].1 = level } else { steps.append((time, level)) }
        }
        // FINs per interval (first transmissions).
        let niceSteps: [Double] = [0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400]
        let binSeconds = niceSteps.first { span / 1e9 / $0 <= 120 } ?? 86400
        let binCount = Int((span / 1e9 / binSeconds).rounded(.up)) + 1
        var bins = [Int](repeating: 0, count: binCount)
        for flow in result.flows {
            for role in Role.allCases {
                guard let fin = flow.endpoint(role).finAt, fin >= start else { continue }
                bins[min(binCount - 1, Int(Double(fin - start) / 1e9 / binSeconds))] += 1
            }
        }
        let binPeak = max(1, bins.max() ?? 1)
        let yMax = Double(max(1, peak))
        func y(_ v: Double, _ maxV: Double) -> Double { top + plotH - plotH * v / maxV }

        var svg = "<svg class=\"timeline\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" role=\"img\" "
            + "aria-label=\"sockets in CLOSE_WAIT and FINs over time\">\n"
        // FIN bars (right axis).
        let barW = max(1.0, plotW * binSeconds * 1e9 / span - 1)
        for (i, count) in bins.enumerated() where count > 0 {
            let bx = left + plotW * Double(i) * binSeconds * 1e9 / span
            guard bx < left + plotW else { continue }
            let bh = plotH * Double(count) / Double(binPeak)
            svg += "<rect class=\"fin\" x=\"\(f(bx))\" y=\"\(f(top + plotH - bh))\" width=\"\(f(min(barW, left + plotW - bx)))\" "
                + "height=\"\(f(bh))\"><title>\(count) FIN\(count == 1 ? "" : "s") at +\(f(Double(i) * binSeconds)) s</title></rect>\n"
        }
        // CLOSE_WAIT step area (left axis).
        var d = "M\(f(x(start))),\(f(y(0, yMax)))"
        var previous = 0
        for (time, value) in steps {
            d += " L\(f(x(time))),\(f(y(Double(previous), yMax))) L\(f(x(time))),\(f(y(Double(value), yMax)))"
            previous = value
        }
        d += " L\(f(x(end))),\(f(y(Double(previous), yMax))) L\(f(x(end))),\(f(y(0, yMax))) Z"
        svg += "<path class=\"cw\" d=\"\(d)\"/>\n"
        // Axes and labels.
        svg += "<line class=\"axis\" x1=\"\(f(left))\" y1=\"\(f(top + plotH))\" x2=\"\(f(left + plotW))\" y2=\"\(f(top + plotH))\"/>\n"
        svg += "<line class=\"axis\" x1=\"\(f(left))\" y1=\"\(f(top))\" x2=\"\(f(left))\" y2=\"\(f(top + plotH))\"/>\n"
        for tick in 0...4 {
            let fraction = Double(tick) / 4
            let tx = left + plotW * fraction
            svg += "<text class=\"tick\" x=\"\(f(tx))\" y=\"\(f(height - 14))\" text-anchor=\"middle\">+"
                + "\(tick == 0 ? "0 s" : durationText(Nanoseconds(span * fraction)))</text>\n"
        }
        svg += "<text class=\"tick cwl\" x=\"\(f(left - 6))\" y=\"\(f(top + 10))\" text-anchor=\"end\">\(peak)</text>\n"
        svg += "<text class=\"tick cwl\" x=\"\(f(left - 6))\" y=\"\(f(top + plotH))\" text-anchor=\"end\">0</text>\n"
        svg += "<text class=\"tick finl\" x=\"\(f(left + plotW + 6))\" y=\"\(f(top + 10))\">\(binPeak)</text>\n"
        svg += "</svg>\n"
        let binText = binSeconds >= 1 ? "\(Int(binSeconds)) s" : "\(Int(binSeconds * 1000)) ms"
        svg += "<p class=\"legend\"><span class=\"sw cw\"></span> sockets in CLOSE_WAIT, brief passive closes included (left axis, peak \(peak)) "
            + "&nbsp; <span class=\"sw fin\"></span> FINs per \(binText) (right axis, peak \(binPeak)) "
            + "&nbsp; <span class=\"dim\">from \(utcText(start))</span></p>\n"
        return svg
    }

    static func f(_ value: Double) -> String {
        let rounded = (value * 10).rounded() / 10
        return rounded == rounded.rounded() ? String(Int(rounded)) : String(rounded)
    }

    static func escape(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(character)
            }
        }
        return out
    }

    static let css = """
        body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1000px;color:#1d2330;padding:0 16px}
        h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #e3e6ec;padding-bottom:4px}
        h3{font-size:14px;margin:18px 0 4px}.dim{color:#6b7385;font-weight:normal}.source{margin:0 0 12px}
        .warning{color:#a15c00}.cards{display:flex;flex-wrap:wrap;gap:8px}
        .card{border:1px solid #e3e6ec;border-radius:6px;padding:6px 12px;min-width:90px;font-size:13px;color:#4a5263}
        .card .n{font-size:22px;font-weight:600;color:#1d2330}.card.close-wait{border-color:#d64545;background:#fdf0f0}
        .card.slow-close{border-color:#d99a1e;background:#fdf7ea}.card.fin-unacked{border-color:#7a62c9;background:#f4f1fc}
        .card.close{background:#f7f8fa}svg.timeline{width:100%;height:auto;background:#fbfcfd;border:1px solid #e3e6ec;border-radius:6px}
        path.cw{fill:rgba(214,69,69,.28);stroke:#d64545;stroke-width:1.5}rect.fin{fill:rgba(60,110,200,.45)}
        .axis{stroke:#9aa2b1}.tick{font-size:11px;fill:#6b7385}.cwl{fill:#d64545}.finl{fill:#3c6ec8}
        .legend{font-size:13px}.sw{display:inline-block;width:12px;height:12px;vertical-align:-2px;border-radius:2px}
        .sw.cw{background:rgba(214,69,69,.5)}.sw.fin{background:rgba(60,110,200,.6)}
        table{border-collapse:collapse;width:100%;font-size:14px}th,td{text-align:left;padding:5px 8px;vertical-align:top}
        thead th{border-bottom:2px solid #e3e6ec}td.num{text-align:right;font-variant-numeric:tabular-nums}
        tr.detail td{border-bottom:1px solid #e3e6ec;padding-top:0}tr.detail p{margin:2px 0 6px}
        .tag{font-size:12px;padding:1px 6px;border-radius:4px;background:#eef0f4;white-space:nowrap}
        tr.close-wait .tag{background:#fbe1e1;color:#a12828}tr.slow-close .tag{background:#fcefd2;color:#8a5a00}
        tr.fin-unacked .tag{background:#e9e3fa;color:#4f3a99}code{font-size:12.5px;background:#f3f4f7;padding:1px 4px;border-radius:3px}
        pre.ladder{font:12.5px/1.35 ui-monospace,"SFMono-Regular",Menlo,Consolas,monospace;background:#f7f8fa;border:1px solid #e3e6ec;
        border-radius:6px;padding:10px;overflow-x:auto}.foot{margin-top:32px;font-size:12px}
        """
}
