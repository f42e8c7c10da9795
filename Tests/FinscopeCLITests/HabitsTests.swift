import FinscopeTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The repository's root (for captures/ and Scripts/).
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

/// The environment the CLI tests run finscope in: this one, with a UTF-8 locale unless
/// one is set (finscope writes ASCII in the C locale), and `changes` applied (nil removes).
func cliEnvironment(_ changes: [String: String?] = [:]) -> [String: String] {
    var environment = ProcessInfo.processInfo.environment
    if ["LC_ALL", "LC_CTYPE", "LANG"].allSatisfy({ (environment[$0] ?? "").isEmpty }) {
        environment["LANG"] = "C.UTF-8"
    }
    for (key, value) in changes { environment[key] = value }
    return environment
}

/// Runs `executable` (finscope by default) with `arguments`, in `directory`, with `changes` to the environment.
func runCLI(_ arguments: [String], executable: URL = finscopeBinary, environment changes: [String: String?] = [:],
         in directory: URL? = nil) throws -> Run {
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    process.environment = cliEnvironment(changes)
    if let directory { process.currentDirectoryURL = directory }
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    try process.run()
    let stdout = out.fileHandleForReading.readDataToEndOfFile()
    let stderr = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return Run(status: process.terminationStatus,
               stdout: String(decoding: stdout, as: UTF8.self), stderr: String(decoding: stderr, as: UTF8.self))
}

func jsonObject(_ text: String) throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
}

func findingCounts(_ run: Run) throws -> [String: Int] {
    let summary = try #require(try jsonObject(run.stdout)["summary"] as? [String: Any])
    return try #require(summary["findings"] as? [String: Int])
}

/// Creates a file whose name is the raw `name` bytes inside `directory`, holding `contents`.
func createFile(rawName name: [UInt8], in directory: URL, contents: Data) throws {
    let path = Array(directory.path.utf8) + [UInt8(ascii: "/")] + name + [0]
    let descriptor = path.withUnsafeBufferPointer {
        $0.baseAddress!.withMemoryRebound(to: CChar.self, capacity: path.count) { open($0, O_CREAT | O_WRONLY | O_TRUNC, 0o644) }
    }
    #expect(descriptor >= 0, "open: errno \(errno)")
    defer { close(descriptor) }
    let written = contents.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
    #expect(written == contents.count)
}

@Suite struct VersionAndReadTests {
    @Test func versionIsTheOneInTheJSONSource() throws {
        let version = try runCLI(["--version"])
        #expect(version.status == 0)
        let text = version.stdout.trimmingCharacters(in: .newlines)
        #expect(text.range(of: #"^[0-9]+\.[0-9]+\.[0-9]+$"#, options: .regularExpression) != nil, "\(version.stdout)")

        let directory = try TemporaryDirectory()
        let report = try runCLI(["analyze", "--json", try findingsCapture(in: directory).path])
        let source = try #require(try jsonObject(report.stdout)["source"] as? [String: Any])
        #expect(source["finscopeVersion"] as? String == text)
    }

    @Test func dashRReadsAFileAsTcpdumpDoes() throws {
        let directory = try TemporaryDirectory()
        let capture = try findingsCapture(in: directory)
        let alone = try runCLI(["analyze", "--json", "-r", capture.path])
        #expect(alone.status == 0, "\(alone.stderr)")
        #expect((try jsonObject(alone.stdout)["summary"] as? [String: Any])?["flows"] as? Int == 5)
        // -r and a file after the options: both are read (5 + 1 connections).
        let other = repositoryRoot.appendingPathComponent("captures/client-first.pcap").path
        let both = try runCLI(["analyze", "--json", "-r", capture.path, other])
        #expect(both.status == 0, "\(both.stderr)")
        let source = try #require(try jsonObject(both.stdout)["source"] as? [String: Any])
        #expect(source["name"] as? String == "\(capture.path), \(other)")
        #expect((try jsonObject(both.stdout)["summary"] as? [String: Any])?["flows"] as? Int == 6)
    }

    @Test func filterWordsAfterTheFilesGetTheFilterHint() throws {
        let directory = try TemporaryDirectory()
        let capture = try findingsCapture(in: directory)
        let hint = try runCLI(["analyze", capture.path, "tcp", "port", "8282"])
        #expect(hint.status == 2)
        #expect(hint.stdout.isEmpty)
        #expect(hint.stderr == "finscope: error: 'tcp port 8282' is not a capture file but a filter expression: "
            + "did you mean --filter 'tcp port 8282'?\n")
        // With -r the same words after the options are still the filter's.
        let withRead = try runCLI(["analyze", "-r", capture.path, "not", "port", "22"])
        #expect(withRead.status == 2)
        #expect(withRead.stderr.contains("did you mean --filter 'not port 22'?"))
        // A missing file that is no filter stays a missing file: a warning, the rest analyzed.
        let missing = try runCLI(["analyze", capture.path, directory.url(for: "gone.pcap").path])
        #expect(missing.status == 0)
        #expect(missing.stderr.contains("cannot read \(directory.url(for: "gone.pcap").path)"))
        #expect(!missing.stderr.contains("--filter"))
        // Words that do not compile are not taken for a filter either.
        let nonsense = try runCLI(["analyze", capture.path, "tcp", "port", "banana"])
        #expect(!nonsense.stderr.contains("did you mean"))
    }
}

@Suite struct TimeUnitTests {
    /// The findings capture's leak is 18.999 s in CLOSE_WAIT: thresholds on either side of it.
    @Test(arguments: [("18", 1), ("18s", 1), ("18999ms", 1), ("19000ms", 0), ("19s", 0), ("0.3m", 1), ("0.4m", 0),
                      ("1h", 0), ("18.5", 1)])
    func closeWaitThresholdTakesUnits(threshold: String, closeWaits: Int) throws {
        let directory = try TemporaryDirectory()
        let capture = try findingsCapture(in: directory)
        let result = try runCLI(["analyze", "--json", "--close-wait-threshold", threshold, capture.path])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try findingCounts(result)["close-wait"] == closeWaits, "threshold \(threshold)")
    }

    @Test(arguments: [
        (["analyze", "--close-wait-threshold", "-5s", "x.pcap"], "--close-wait-threshold must be 0 or more"),
        (["analyze", "--close-wait-threshold", "5x", "x.pcap"], "The value '5x' is invalid for '--close-wait-threshold"),
        (["live", "--duration", "0"], "--duration must be more than 0"),
        (["live", "--duration", "-30s"], "--duration must be more than 0"),
        (["live", "--idle-timeout", "-1m"], "--idle-timeout must be more than 0"),
        (["live", "--idle-timeout", "0ms"], "--idle-timeout must be more than 0"),
        (["live", "--report-every", "-1"], "--report-every must be 0 or more"),
        (["live", "--duration", "1e3"], "The value '1e3' is invalid for '--duration"),
        (["live", "-c", "0"], "-c must be at least 1"),
        (["live", "--filter", "tcp", "port", "80"], "give the filter once"),
    ])
    func badValuesNameTheOptionAndTheRule(arguments: [String], message: String) throws {
        let result = try runCLI(arguments)
        #expect(result.status == 64, "\(result.stderr)")
        #expect(result.stderr.contains(message), "\(result.stderr)")
        #expect(result.stdout.isEmpty)
    }
}

@Suite struct ExitStatusTests {
    @Test func usageErrorsExit64() throws {
        #expect(try runCLI(["analyze", "--no-such-option", "x.pcap"]).status == 64)
        #expect(try runCLI(["analyze"]).status == 64)
        #expect(try runCLI(["analyze", "--fail-on", "sometimes", "x.pcap"]).status == 64)
    }

    @Test func failOnExits3OnlyWithSuchAFinding() throws {
        let directory = try TemporaryDirectory()
        let capture = try findingsCapture(in: directory).path
        // Every kind of finding: both fail.
        let leak = try runCLI(["analyze", "--json", "--fail-on", "close-wait", capture])
        #expect(leak.status == 3)
        #expect(try jsonObject(leak.stdout)["schema"] as? Int == 1, "the report is still printed")
        #expect(try runCLI(["analyze", "--quiet", "--fail-on", "any-finding", capture]).status == 3)
        // Port 22 holds only an unacknowledged FIN: any-finding fails, close-wait does not.
        #expect(try runCLI(["analyze", "--filter", "tcp port 22", "--fail-on", "close-wait", capture]).status == 0)
        #expect(try runCLI(["analyze", "--filter", "tcp port 22", "--fail-on", "any-finding", capture]).status == 3)
        // A clean close: nothing to fail on; and without --fail-on a leak is exit 0.
        let clean = repositoryRoot.appendingPathComponent("captures/client-first.pcap").path
        #expect(try runCLI(["analyze", "--fail-on", "any-finding", clean]).status == 0)
        #expect(try runCLI(["analyze", capture]).status == 0)
    }

    @Test func strictTurnsAnUnreadableFileIntoExit2() throws {
        let directory = try TemporaryDirectory()
        let capture = try findingsCapture(in: directory).path
        let gone = directory.url(for: "gone.pcap").path
        let lenient = try runCLI(["analyze", "--json", capture, gone])
        #expect(lenient.status == 0)
        #expect(lenient.stderr.contains("finscope: warning: cannot read \(gone): no such file"))
        #expect(try findingCounts(lenient)["close-wait"] == 1)

        let strict = try runCLI(["analyze", "--json", "--strict", capture, gone])
        #expect(strict.status == 2)
        #expect(strict.stdout.isEmpty)
        #expect(strict.stderr == "finscope: error: cannot read \(gone): no such file (--strict)\n")
        // Every file readable: --strict changes nothing.
        #expect(try runCLI(["analyze", "--strict", capture]).status == 0)
    }
}

@Suite struct NameTests {
    @Test func aFileNameThatIsNotUTF8OpensAndIsShownByItsBytes() throws {
        let directory = try TemporaryDirectory()
        let capture = try Data(contentsOf: try findingsCapture(in: directory))
        try createFile(rawName: Array("caf".utf8) + [0xE9] + Array(".pcap".utf8), in: directory.url, contents: capture)
        // The name reaches finscope as raw bytes through the shell (Process takes only Strings).
        func analyze(_ printfName: String, _ options: [String]) throws -> Run {
            try runCLI(["-c", #"exec "$0" analyze "$@" "$(printf "%s/\#(printfName)" "$DIR")""#, finscopeBinary.path] + options,
                    executable: URL(fileURLWithPath: "/bin/sh"), environment: ["DIR": directory.path])
        }
        let text = try analyze(#"caf\351.pcap"#, [])
        #expect(text.status == 0, "\(text.stderr)")
        #expect(text.stdout.hasPrefix("finscope: \(directory.path)/caf\\xe9.pcap: "), "\(text.stdout.prefix(200))")
        #expect(text.stdout.contains("STUCK IN CLOSE_WAIT — 1 connection"))
        let json = try analyze(#"caf\351.pcap"#, ["--json"])
        let source = try #require(try jsonObject(json.stdout)["source"] as? [String: Any])
        #expect(source["name"] as? String == "\(directory.path)/caf\\xe9.pcap")
        // A second pass over the file (the ladder) opens it again.
        let ladder = try analyze(#"caf\351.pcap"#, ["--ladder", "1"])
        #expect(ladder.status == 0, "\(ladder.stderr)")
        #expect(ladder.stdout.hasPrefix("Flow #1"))
        // A missing one is named the same way.
        let missing = try analyze(#"caf\350.pcap"#, [])
        #expect(missing.status == 2)
        #expect(missing.stderr == "finscope: error: cannot read \(directory.path)/caf\\xe8.pcap: no such file\n")
    }

    @Test func controlCharactersInNamesAreEscaped() throws {
        let directory = try TemporaryDirectory()
        let capture = try findingsCapture(in: directory)
        let evil = directory.url(for: "evil\u{1B}[2J.pcap")
        try FileManager.default.copyItem(at: capture, to: evil)
        let gone = directory.url(for: "gone\u{07}.pcap")
        let result = try runCLI(["analyze", evil.path, gone.path])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(!result.stdout.contains("\u{1B}"))
        #expect(!result.stdout.contains("\u{07}"))
        #expect(result.stdout.hasPrefix("finscope: \(directory.path)/evil\\x1b[2J.pcap, \(directory.path)/gone\\x07.pcap: "))
        #expect(result.stdout.contains("warning: cannot read \(directory.path)/gone\\x07.pcap: no such file"))
        #expect(!result.stderr.contains("\u{07}"))
        #expect(result.stderr.contains("finscope: warning: cannot read \(directory.path)/gone\\x07.pcap: no such file"))
        // JSON escapes control characters its own way: the exact name survives.
        let json = try runCLI(["analyze", "--json", evil.path])
        let source = try #require(try jsonObject(json.stdout)["source"] as? [String: Any])
        #expect(source["name"] as? String == evil.path)
    }

    @Test func textIsASCIIWhenTheLocaleIsNotUTF8() throws {
        let directory = try TemporaryDirectory()
        let capture = try findingsCapture(in: directory).path
        let unset: [String: String?] = ["LC_ALL": nil, "LC_CTYPE": nil, "LANG": nil]
        func report(_ locale: [String: String?], _ options: [String] = []) throws -> String {
            try runCLI(["analyze"] + options + [capture], environment: unset.merging(locale) { $1 }).stdout
        }
        let ascii = try report(["LC_ALL": "C", "LANG": "C.UTF-8"])  // LC_ALL decides
        #expect(ascii.utf8.allSatisfy { $0 < 0x80 })
        #expect(ascii.contains("STUCK IN CLOSE_WAIT -- 1 connection"))
        #expect(ascii.contains("10.0.0.5 (client, port 40001) -> 10.0.0.9:8282: 1 connection"))
        #expect(try report([:]).utf8.allSatisfy { $0 < 0x80 }, "no locale at all is the C locale")
        let flows = try report(["LANG": "POSIX"], ["--flows"])
        #expect(flows.utf8.allSatisfy { $0 < 0x80 })
        #expect(flows.contains("client: ESTABLISHED -> FIN_WAIT_1 -> FIN_WAIT_2 -> TIME_WAIT"))
        let ladder = try report(["LC_ALL": "C"], ["--ladder", "1"])
        #expect(ladder.utf8.allSatisfy { $0 < 0x80 })
        #expect(ladder.contains("->"))

        let utf8 = try report(["LC_CTYPE": "en_US.UTF-8", "LANG": "C"])  // LC_CTYPE before LANG
        #expect(utf8.contains("STUCK IN CLOSE_WAIT — 1 connection"))
        #expect(utf8.contains("10.0.0.5 (client, port 40001) → 10.0.0.9:8282"))
        #expect(try report(["LANG": "de_DE.utf8"]).contains("—"))
        // JSON is UTF-8 whatever the locale.
        let json = try runCLI(["analyze", "--json", capture], environment: ["LC_ALL": "C"])
        #expect(try jsonObject(json.stdout)["schema"] as? Int == 1)
    }

    @Test func aLongListOfFilesIsSummarisedInTheHeader() throws {
        let directory = try TemporaryDirectory()
        let names = (0..<12).map { String(format: "rot-%02d.pcap", $0) }
        for name in names { try PcapWriter(linkType: 1).write(to: directory.url(for: name)) }
        let many = try runCLI(["analyze"] + names, in: directory.url)
        #expect(many.status == 0, "\(many.stderr)")
        #expect(many.stdout.hasPrefix("finscope: 12 files: rot-00.pcap … rot-11.pcap: 0 packets"), "\(many.stdout.prefix(120))")
        // Three are listed as they are; JSON always lists them all.
        let three = try runCLI(["analyze"] + names.prefix(3), in: directory.url)
        #expect(three.stdout.hasPrefix("finscope: rot-00.pcap, rot-01.pcap, rot-02.pcap: 0 packets"))
        let json = try runCLI(["analyze", "--json"] + names, in: directory.url)
        let source = try #require(try jsonObject(json.stdout)["source"] as? [String: Any])
        #expect(source["name"] as? String == names.joined(separator: ", "))
    }
}

@Suite struct InstallAndCompletionTests {
    @Test func completionsCompleteInterfacesThroughFinscope() throws {
        for shell in ["bash", "zsh", "fish"] {
            let script = try runCLI(["--generate-completion-script", shell])
            #expect(script.status == 0)
            // -i's candidates come from finscope itself, when the user presses TAB.
            #expect(script.stdout.contains("---completion live -- --interface"), "\(shell)")
        }
        let bash = try runCLI(["--generate-completion-script", "bash"]).stdout
        #expect(bash.contains("'-r')") && bash.contains("-w'|'--write')"), "-r and -w complete file names")
        // What the shell gets back: libpcap's interfaces, `any` and `lo` among them.
        let candidates = try runCLI(["---completion", "live", "--", "--interface", "2", "0"])
        #expect(candidates.status == 0, "\(candidates.stderr)")
        let names = candidates.stdout.split(separator: "\n").map(String.init)
        #expect(names.contains("lo"))
        #expect(names.contains("any"))
    }

    @Test func installPutsTheBinaryManPageAndCompletionsUnderPrefix() throws {
        let prefix = try TemporaryDirectory(prefix: "finscope-install")
        let install = try runCLI(["--binary", finscopeBinary.path],
                              executable: repositoryRoot.appendingPathComponent("Scripts/install"),
                              environment: ["PREFIX": prefix.path])
        #expect(install.status == 0, "\(install.stderr)")
        let binary = prefix.url(for: "bin/finscope")
        #expect(FileManager.default.isExecutableFile(atPath: binary.path))
        let version = try runCLI(["--version"], executable: binary)
        #expect(version.status == 0)
        #expect(version.stdout == (try runCLI(["--version"])).stdout)

        let page = prefix.url(for: "share/man/man1/finscope.1")
        // man-db comes from Scripts/setup.
        let manual = try runCLI(["man", "-l", page.path], executable: URL(fileURLWithPath: "/usr/bin/env"),
                             environment: ["MANPAGER": "cat", "PAGER": "cat", "MANWIDTH": "100", "LC_ALL": "C.UTF-8"])
        #expect(manual.status == 0, "\(manual.stderr)")
        let text = manual.stdout.replacingOccurrences(of: ".\u{8}", with: "", options: .regularExpression)  // overstrike bold
        for expected in ["finscope analyze", "finscope live", "--fail-on", "--close-wait-threshold", "--strict",
                         "EXIT STATUS", "64"] {
            #expect(text.contains(expected), "man page lacks \(expected)")
        }
        for completion in ["share/bash-completion/completions/finscope", "share/zsh/site-functions/_finscope",
                           "share/fish/vendor_completions.d/finscope.fish"] {
            let script = try String(contentsOf: prefix.url(for: completion), encoding: .utf8)
            #expect(script.contains("---completion live -- --interface"), "\(completion)")
        }
    }
}

/// Live capture on lo: needs capture permission (CI runs as root).
@Suite(.enabled(if: geteuid() == 0, "live capture needs root (CI runs as root); skipped as another user"))
struct LiveHabitsTests {
    /// A listener on 127.0.0.1 that accepts and closes; its port.
    final class Listener {
        let socket: Int32
        let port: UInt16
        init() throws {
            let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            self.socket = socket
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Int32 in
                    guard bind(socket, pointer, length) == 0, listen(socket, 64) == 0 else { return -1 }
                    return getsockname(socket, pointer, &length)
                }
            }
            #expect(bound == 0)
            port = UInt16(bigEndian: address.sin_port)
        }
        /// One connection: handshake, then close (and the listener's accept closes its end).
        func connectOnce() {
            let client = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = port.bigEndian
            _ = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(client, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            close(client)
        }
        deinit { close(socket) }
    }

    /// finscope live as a child, output in files; stopped by itself (-c or --duration).
    func live(_ arguments: [String], traffic: () -> Void) throws -> (status: Int32, stdout: String, stderr: String) {
        let directory = try TemporaryDirectory(prefix: "finscope-live-habits")
        let out = directory.url(for: "stdout"), err = directory.url(for: "stderr")
        FileManager.default.createFile(atPath: out.path, contents: nil)
        FileManager.default.createFile(atPath: err.path, contents: nil)
        let process = Process()
        process.executableURL = finscopeBinary
        process.arguments = arguments
        process.environment = cliEnvironment()
        process.standardOutput = try FileHandle(forWritingTo: out)
        process.standardError = try FileHandle(forWritingTo: err)
        process.standardInput = FileHandle.nullDevice
        try process.run()
        func stderr() -> String { (try? String(contentsOf: err, encoding: .utf8)) ?? "" }
        let start = Date()
        while !stderr().contains("capturing on"), process.isRunning, Date().timeIntervalSince(start) < 10 { usleep(20_000) }
        // Traffic until finscope stops by itself (at most 10 s).
        while process.isRunning, Date().timeIntervalSince(start) < 10 {
            traffic()
            usleep(50_000)
        }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        return (process.terminationStatus, (try? String(contentsOf: out, encoding: .utf8)) ?? "", stderr())
    }

    @Test func trailingWordsAreTheFilterAndDashCStops() throws {
        let wanted = try Listener(), other = try Listener()
        let directory = try TemporaryDirectory()
        let saved = directory.url(for: "saved.pcap")
        let result = try live(["live", "-i", "lo", "-c", "5", "--json", "-w", saved.path, "tcp", "port", "\(wanted.port)"]) {
            other.connectOnce()
            wanted.connectOnce()
        }
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("capturing on lo (filter 'tcp port \(wanted.port)')"))
        let document = try jsonObject(result.stdout)
        let source = try #require(document["source"] as? [String: Any])
        #expect(source["packets"] as? Int == 5, "stopped after -c 5 packets")
        #expect((document["summary"] as? [String: Any])?["flows"] as? Int ?? 0 >= 1)
        // -w saved the same 5 packets, all of the filter's port (live --json lists only flows with findings).
        let back = try runCLI(["analyze", "--json", saved.path])
        let reread = try jsonObject(back.stdout)
        #expect((reread["source"] as? [String: Any])?["packets"] as? Int == 5)
        let flows = try #require(reread["flows"] as? [[String: Any]])
        #expect(!flows.isEmpty)
        for flow in flows {
            #expect((flow["server"] as? [String: Any])?["port"] as? Int == Int(wanted.port), "only the filter's port")
        }
    }

    @Test func withoutDashIItCapturesOnAnyAndSaysSo() throws {
        let result = try live(["live", "--duration", "300ms", "--json"]) {}
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("finscope: no -i given: capturing on any (every interface)"))
        #expect((try jsonObject(result.stdout)["source"] as? [String: Any])?["name"] as? String == "any")
    }

    @Test func failOnWorksInLiveMode() throws {
        // No connection leaks in 300 ms of a quiet port: exit 0 with --fail-on any-finding.
        let result = try live(["live", "-i", "lo", "--duration", "300ms", "--fail-on", "any-finding", "tcp port 9"]) {}
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("0 packets"))
    }
}

@Suite struct ManPageTests {
    /// docs/finscope.1 is generated (Scripts/manpage); it must list every option the
    /// binary defines, so an option added without regenerating the page fails here.
    @Test func manPageListsEveryOption() throws {
        let page = try String(contentsOf: repositoryRoot.appendingPathComponent("docs/finscope.1"), encoding: .utf8)
        let dump = try runCLI(["--experimental-dump-help"])
        #expect(dump.status == 0)
        let root = try #require(try jsonObject(dump.stdout)["command"] as? [String: Any])
        var checked = 0
        for command in (root["subcommands"] as? [[String: Any]] ?? []) where command["shouldDisplay"] as? Bool ?? true {
            let name = try #require(command["commandName"] as? String)
            guard name != "help" else { continue }
            #expect(page.contains(".It Em \(name)"), "the page has no \(name) section")
            for argument in (command["arguments"] as? [[String: Any]] ?? []) where argument["shouldDisplay"] as? Bool ?? true {
                for spelling in argument["names"] as? [[String: Any]] ?? [] {
                    guard let kind = spelling["kind"] as? String, let text = spelling["name"] as? String else { continue }
                    // ".It Fl -json", or with a short name first ".It Fl i , -interface".
                    let listed = kind == "long"
                        ? page.contains("Fl -\(text) ") || page.contains("Fl -\(text)\n") || page.contains(" , -\(text)")
                        : page.contains("Fl \(text) ") || page.contains("Fl \(text)\n")
                    #expect(listed, "docs/finscope.1 lacks \(name) \(kind == "long" ? "--" : "-")\(text): run Scripts/manpage")
                    checked += 1
                }
            }
        }
        #expect(checked > 20)
        #expect(page.contains(".It 64"), "the exit statuses are written into EXIT STATUS")
    }
}
