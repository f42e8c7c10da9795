import FinscopeCapture
import FinscopeFlows
import FinscopeReport
import FinscopeAnalysis
import FinscopeWire

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes to stdout through C stdio (buffered; flushed at exit).
func writeOut(_ text: String) {
    print(text, terminator: "")
}

/// Writes text for people to stdout: in ASCII when the locale is not UTF-8 (the machine
/// formats, JSON, NDJSON and CSV, go through `writeOut` as they are).
func writeText(_ text: String) {
    writeOut(TextCharset.local(text))
}

/// Colours only for a terminal, and never when NO_COLOR is set (no-color.org) or TERM=dumb.
func stdoutWantsColor() -> Bool {
    guard isatty(1) == 1 else { return false }
    if let noColor = getenv("NO_COLOR"), noColor.pointee != 0 { return false }
    if let term = getenv("TERM"), String(cString: term) == "dumb" { return false }
    return true
}

/// Columns to wrap the text report at: the terminal's width when stdout is a terminal
/// (COLUMNS first, as shells export it, then the tty's size), else 100.
func stdoutColumns() -> Int {
    guard isatty(1) == 1 else { return 100 }
    if let text = getenv("COLUMNS").map({ String(cString: $0) }), let columns = Int(text), columns > 0 { return columns }
    var size = winsize()
    if ioctl(1, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 { return Int(size.ws_col) }
    return 100
}

/// `--ladder ADDR:PORT`.
enum LadderTarget {
    /// "10.0.0.5:8282" or "[fd00::1]:8282".
    static func address(_ text: String) -> EndpointAddress? {
        let host: Substring, port: Substring
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { return nil }
            port = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":"), !text[..<colon].contains(":") else { return nil }
            host = text[..<colon]
            port = text[text.index(after: colon)...]
        }
        guard let ip = IPAddress(String(host)), let number = UInt16(port) else { return nil }
        return EndpointAddress(ip: ip, port: number)
    }
}

/// The progress line on stderr: only on a terminal, only once reading has taken a second,
/// at most five times a second. Called every 65,536 frames, never per packet.
final class ProgressLine {
    let name: String
    let enabled: Bool
    let started = monotonicSeconds()
    var lastDrawn = 0.0
    var drawn = false

    init(name: String) {
        self.name = name
        enabled = isatty(2) == 1
    }

    func update(_ progress: ReadProgress) {
        guard enabled else { return }
        let now = monotonicSeconds()
        let elapsed = now - started
        guard elapsed >= 1, now - lastDrawn >= 0.2 else { return }
        lastDrawn = now
        drawn = true
        var line = "finscope: reading \(name): \(megabytes(progress.bytesRead))"
        if progress.totalBytes > 0 {
            line += " of \(megabytes(progress.totalBytes)) (\(Int(progress.fraction * 100))%)"
        }
        let rate = Double(progress.packets) / elapsed
        line += ", \(grouped(progress.packets)) packets, \(rate >= 1e6 ? "\(Double(Int(rate / 1e4)) / 100) M" : "\(Int(rate / 1e3)) k") packets/s"
        printErrorRaw("\r\u{1B}[K" + line)
    }

    func clear() {
        guard drawn else { return }
        printErrorRaw("\r\u{1B}[K")
    }

    func megabytes(_ bytes: Int64) -> String {
        let tenths = bytes * 10 / 1_000_000
        return "\(tenths / 10).\(tenths % 10) MB"
    }
}

func monotonicSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}

/// Writes to stderr as it is (no newline), unbuffered.
func printErrorRaw(_ text: String) {
    _ = text.withCString { write(2, $0, strlen($0)) }
}
