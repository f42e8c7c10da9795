import FinscopeWire
import FinscopeFindings
import FinscopeAnalysis
import FinscopeCapture
import FinscopeFlows
import FinscopeReport
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The package's root folder, found from this file's path.
let packageRoot = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

let fixtures = packageRoot.appendingPathComponent("Tests/Fixtures")

/// Set by `Scripts/test --sanitize` (address, thread): memory ceilings do not apply then.
let sanitizer = ProcessInfo.processInfo.environment["FINSCOPE_SANITIZER"]

/// The built `finscope`, beside the test bundle in the build products folder (so an
/// AddressSanitizer build of the tests runs an AddressSanitizer build of the binary).
let finscopeBinary: URL = {
    var folder = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for _ in 0..<4 {
        let candidate = folder.appendingPathComponent("finscope")
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        folder = folder.deletingLastPathComponent()
    }
    return packageRoot.appendingPathComponent(".build/debug/finscope")
}()

/// One run of the binary: exit status, output, and the child's peak resident set size.
struct Run {
    var status: Int32
    var stdout: Data
    var stderr: String
    /// Peak RSS in bytes, from wait4's rusage (ru_maxrss is in KiB on Linux).
    var peakRSS: Int
    var stderrLines: [Substring] { stderr.split(separator: "\n") }
}

/// Forks and execs the command given after the two file paths, with stdout and stderr
/// going to those files, and prints its exit status and ru_maxrss (KiB). The child then
/// starts from this small Python process: a child spawned straight from the test process
/// (posix_spawn shares its memory until exec) has the test process's own RSS counted
/// in its ru_maxrss by Linux, hundreds of MB after the other suites ran.
let peakRSSRunner = """
    import os, sys
    out, err, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
    pid = os.fork()
    if pid == 0:
        try:
            os.dup2(os.open("/dev/null", os.O_RDONLY), 0)
            os.dup2(os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), 1)
            os.dup2(os.open(err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), 2)
            os.execv(argv[0], argv)
        finally:
            os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)
    print(code, usage.ru_maxrss)
    """

let python3 = ["/usr/bin/python3", "/usr/local/bin/python3"].first { FileManager.default.isExecutableFile(atPath: $0) }

/// Runs `finscope` with stdout and stderr going to files (a flood's JSON is hundreds of MB),
/// through `peakRSSRunner` when python3 is there (else directly, with wait4's rusage).
func finscope(_ arguments: [String], in directory: URL) throws -> Run {
    let outPath = directory.appendingPathComponent("stdout-\(UUID().uuidString)").path
    let errPath = directory.appendingPathComponent("stderr-\(UUID().uuidString)").path
    let metaPath = directory.appendingPathComponent("meta-\(UUID().uuidString)").path
    defer {
        unlink(outPath)
        unlink(errPath)
        unlink(metaPath)
    }
    var command = [finscopeBinary.path] + arguments
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    if let python3 {
        command = [python3, "-c", peakRSSRunner, outPath, errPath] + command
        posix_spawn_file_actions_addopen(&actions, 1, metaPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    } else {
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    }
    let argv = command.map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var pid: pid_t = 0
    let spawned = posix_spawn(&pid, command[0], &actions, nil, argv, environ)
    guard spawned == 0 else { throw POSIXError(POSIXErrorCode(rawValue: spawned) ?? .EIO) }
    var status: Int32 = 0
    var usage = rusage()
    while wait4(pid, &status, 0, &usage) < 0 {
        guard errno == EINTR else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    }
    // WIFEXITED / WEXITSTATUS / WTERMSIG, which Swift does not import as macros.
    var exit = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    var peakKiB = Int(usage.ru_maxrss)
    if python3 != nil {
        let meta = ((try? String(contentsOfFile: metaPath, encoding: .utf8)) ?? "").split(separator: " ")
        guard exit == 0, meta.count == 2, let code = Int32(meta[0].trimmingCharacters(in: .whitespacesAndNewlines)),
              let kib = Int(meta[1].trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw POSIXError(.ECHILD)
        }
        exit = code
        peakKiB = kib
    }
    // Only the first MiB of stdout (the `source` object comes first): a flood's JSON is ~480 MB.
    let stdout = FileHandle(forReadingAtPath: outPath).map { handle in
        defer { try? handle.close() }
        return (try? handle.read(upToCount: 1 << 20)) ?? Data()
    } ?? Data()
    return Run(status: exit, stdout: stdout ?? Data(),
               stderr: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "",
               peakRSS: peakKiB * 1024)
}

/// The JSON report's `source` object. Only that object is parsed: a flood's report holds
/// a million flows, which JSONSerialization would turn into gigabytes of dictionaries.
func jsonSource(_ data: Data) throws -> [String: Any] {
    let bytes = [UInt8](data.prefix(1 << 20))
    guard let key = bytes.indices.first(where: { bytes[$0...].starts(with: Array("\"source\"".utf8)) }),
          let open = bytes[key...].firstIndex(of: UInt8(ascii: "{")) else { return [:] }
    var depth = 0, inString = false, escaped = false
    for index in open..<bytes.count {
        let byte = bytes[index]
        if inString {
            if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
            continue
        }
        switch byte {
        case UInt8(ascii: "\""): inString = true
        case UInt8(ascii: "{"): depth += 1
        case UInt8(ascii: "}"):
            depth -= 1
            if depth == 0 {
                return try JSONSerialization.jsonObject(with: Data(bytes[open...index])) as? [String: Any] ?? [:]
            }
        default: break
        }
    }
    return [:]
}

/// Checks that hold for any input the pipeline accepted: every frame is a segment or
/// skipped for one reason, evictions never exceed the flows seen, both reports render and
/// the JSON parses. Returns a description of what broke, or nil.
func pipelineInvariantProblem(_ result: AnalysisResult) -> String? {
    let source = result.source
    if source.packets != source.tcpSegments + source.skipped.reduce(0, +) {
        return "packets \(source.packets) != segments \(source.tcpSegments) + skipped \(source.skipped)"
    }
    if source.evicted > result.tally.flows { return "evicted \(source.evicted) of \(result.tally.flows) flows" }
    let json = JSONReport.render(result)
    if (try? JSONSerialization.jsonObject(with: Data(json.utf8))) == nil { return "the JSON does not parse" }
    _ = TextReport(showFlows: true).render(result)
    return nil
}
