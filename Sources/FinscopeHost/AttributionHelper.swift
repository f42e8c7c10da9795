import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
import FinscopeWire
#endif

/// Privilege separation for process attribution.
///
/// Naming the process behind another user's socket means reading its `/proc/PID/fd`, which
/// needs root. Packet decoding should not run as root. So when `finscope live` drops root,
/// it first starts this helper — the same binary, `finscope proc-helper`, still root — and
/// keeps a pipe to it. The helper parses no packets and takes two requests, one line each:
///
/// - `snapshot`: the CLOSE_WAIT sockets of /proc/net/tcp{,6} (finscope's own namespace) and
///   their holders (`CloseWaitOwners.encoded()`);
/// - `kernel-scan`: the CLOSE_WAIT sockets of every network namespace, read through
///   NETLINK_SOCK_DIAG, with owners, containers and what could not be seen
///   (`KernelScan.encoded()`; an `e MESSAGE` line when the scan failed).
///
/// Each answer ends with a line `end`. The helper exits when the pipe closes (finscope
/// stopped or died).
public final class AttributionHelper: @unchecked Sendable {
    private let process: Process
    private let toHelper: FileHandle
    private let fromHelper: Int32
    private var buffered: [UInt8] = []
    private let lock = NSLock()

    public static let subcommand = "proc-helper"

    /// Starts `executable proc-helper` with this process's privileges.
    public init(executable: String) throws {
        process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = [Self.subcommand]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.standardError
        try process.run()
        toHelper = input.fileHandleForWriting
        fromHelper = output.fileHandleForReading.fileDescriptor
        _outputHandle = output.fileHandleForReading
    }

    private let _outputHandle: FileHandle

    private var stopped = false

    deinit {
        stop()
    }

    /// The helper's view of /proc now; nil when the helper is gone.
    public func snapshot() -> CloseWaitOwners? {
        lock.lock()
        defer { lock.unlock() }
        return exchange("snapshot").map { CloseWaitOwners.decode(lines: $0) }
    }

    /// The helper's kernel scan (CLOSE_WAIT sockets of every network namespace, with owners);
    /// nil when the helper is gone. Throws the helper's error, or on an answer that does not parse.
    public func kernelScan() throws -> KernelScan? {
        lock.lock()
        defer { lock.unlock() }
        guard let lines = exchange(Self.kernelScanRequest) else { return nil }
        return try KernelScan.decode(lines: lines)
    }

    public static let kernelScanRequest = "kernel-scan"
    /// `kernel-scan` plus the LISTEN sockets of every namespace (`KernelSocketTable.readForReport`).
    public static let reportScanRequest = "kernel-scan-report"

    /// The helper's scan for a report (CLOSE_WAIT with owners, LISTEN without); nil when the
    /// helper is gone.
    public func reportScan() throws -> KernelScan? {
        lock.lock()
        defer { lock.unlock() }
        guard let lines = exchange(Self.reportScanRequest) else { return nil }
        return try KernelScan.decode(lines: lines)
    }

    /// Sends one request line and collects the answer's lines up to `end`; nil when the pipe broke.
    private func exchange(_ request: String) -> [String]? {
        guard (try? toHelper.write(contentsOf: Array((request + "\n").utf8))) != nil else { return nil }
        var lines: [String] = []
        while true {
            if let newline = buffered.firstIndex(of: 10) {
                let line = String(decoding: buffered[..<newline], as: UTF8.self)
                buffered.removeSubrange(...newline)
                if line == "end" { return lines }
                lines.append(line)
                continue
            }
            var chunk = [UInt8](repeating: 0, count: 65_536)
            let count = chunk.withUnsafeMutableBytes { read(fromHelper, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { return nil }
            buffered += chunk[0..<count]
        }
    }

    /// Stops the helper (closing its pipe ends it).
    /// Closes the pipe and waits for the helper to exit; safe to call more than once.
    public func stop() {
        lock.lock()
        defer { lock.unlock() }
        guard !stopped else { return }
        stopped = true
        try? toHelper.close()
        process.waitUntilExit()
    }

    /// The helper's side: answer "snapshot" and "kernel-scan" requests on stdin until it closes.
    public static func serve() {
        while let request = readLine(strippingNewline: true) {
            let answer: String
            switch request {
            case "snapshot":
                answer = CloseWaitOwners.read().encoded() + "end\n"
            case kernelScanRequest:
                do {
                    answer = try KernelSocketTable.read(states: [.closeWait], namespaces: .all).encoded() + "end\n"
                } catch {
                    answer = "e \(oneLine(String(describing: error)))\nend\n"
                }
            case reportScanRequest:
                do {
                    answer = try KernelSocketTable.readForReport().encoded() + "end\n"
                } catch {
                    answer = "e \(oneLine(String(describing: error)))\nend\n"
                }
            default:
                answer = "e unknown request: \(oneLine(String(request.prefix(100))))\nend\n"
            }
            let bytes = Array(answer.utf8)
            var written = 0
            while written < bytes.count {
                let count = bytes[written...].withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
                if count < 0, errno == EINTR { continue }
                guard count > 0 else { return }
                written += count
            }
        }
    }
}
