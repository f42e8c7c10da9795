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
/// keeps a pipe to it. The helper parses no packets and takes one request ("snapshot"),
/// answering with the CLOSE_WAIT sockets it sees and their holders; it exits when the pipe
/// closes (finscope stopped or died).
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
        guard (try? toHelper.write(contentsOf: Array("snapshot\n".utf8))) != nil else { return nil }
        var lines: [String] = []
        while true {
            if let newline = buffered.firstIndex(of: 10) {
                let line = String(decoding: buffered[..<newline], as: UTF8.self)
                buffered.removeSubrange(...newline)
                if line == "end" { return CloseWaitOwners.decode(lines: lines) }
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

    /// The helper's side: answer "snapshot" requests on stdin until it closes.
    public static func serve() {
        while let request = readLine(strippingNewline: true) {
            guard request == "snapshot" else { continue }
            let answer = CloseWaitOwners.read().encoded() + "end\n"
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
