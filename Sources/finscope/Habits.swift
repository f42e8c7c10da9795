import ArgumentParser
import FinscopeCapture
import FinscopeFindings
import FinscopeFlows

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The exit statuses scripts can rely on (README, the man page).
enum ExitStatus {
    /// The analysis ran (warnings about damaged or unreadable files included).
    static let ran: Int32 = 0
    /// The capture failed mid-run (live mode): the report covers what was captured.
    static let failedMidRun: Int32 = 1
    /// No input could be read, the filter is invalid, or the capture could not be opened.
    static let noInput: Int32 = 2
    /// `--fail-on` found what it was asked to fail on.
    static let findings: Int32 = 3
    /// Usage errors (ArgumentParser's EX_USAGE).
    static let usage: Int32 = 64

    static let summary = """
        Exit status: 0 the analysis ran (also with warnings about a damaged file); 1 the \
        live capture failed mid-run (the report covers what was captured); 2 no input could \
        be read, the filter is invalid or the capture could not be opened; 3 --fail-on \
        found such a finding; 64 a usage error (an unknown option, a bad value).
        """
}

/// `--fail-on`: an exit status for CI and cron jobs.
enum FailOn: String, ExpressibleByArgument, CaseIterable, Sendable {
    case closeWait = "close-wait"
    case anyFinding = "any-finding"

    /// Whether `result` holds a finding of this kind.
    func matches(_ result: AnalysisResult) -> Bool {
        switch self {
        case .closeWait: result.count(FindingKind.closeWait) > 0
        case .anyFinding: FindingKind.allCases.contains { result.count($0) > 0 }
        }
    }

    /// Throws exit status 3 when `failOn` is set and `result` holds such a finding.
    static func check(_ failOn: FailOn?, _ result: AnalysisResult) throws {
        guard let failOn, failOn.matches(result) else { return }
        throw ExitCode(ExitStatus.findings)
    }
}

/// tcpdump takes the filter as the words after its options; `analyze` takes files there.
/// When the words after the files are not files but compile as a BPF expression, the
/// user most likely meant `--filter`.
enum TrailingFilter {
    /// Words a pcap-filter(7) expression can start with (the primitives and qualifiers).
    static let firstWords: Set<String> = [
        "tcp", "udp", "icmp", "icmp6", "ip", "ip6", "arp", "rarp", "sctp", "igmp", "pim", "vrrp", "ah", "esp",
        "ether", "host", "net", "port", "portrange", "src", "dst", "not", "!", "less", "greater", "len",
        "vlan", "mpls", "pppoed", "pppoes", "geneve", "proto", "gateway", "broadcast", "multicast",
        "inbound", "outbound", "ifname", "on", "wlan", "link", "type", "subtype", "dir",
    ]

    /// The longest run of words at the end of `words` that names no file and compiles as
    /// BPF (for Ethernet, as `pcap_open_dead(DLT_EN10MB, …)`), joined; nil when there is none.
    static func expression(in words: [String]) -> String? {
        for start in words.indices {
            let tail = words[start...]
            guard let first = tail.first, startsExpression(first),
                  tail.allSatisfy({ $0 != "-" && access($0, F_OK) != 0 }) else { continue }
            let expression = tail.joined(separator: " ")
            if (try? BPFProgram(expression: expression, linkType: 1)) != nil { return expression }
        }
        return nil
    }

    /// Whether `word` can begin a filter: a primitive or qualifier, `tcp[13]`, `(`, `!`.
    /// Checked before compiling, so that a missing file name is never looked up as a host.
    static func startsExpression(_ word: String) -> Bool {
        var word = Substring(word.lowercased())
        while word.first == "(" || word.first == "!" {
            if word.count == 1 { return true }
            word = word.dropFirst()
        }
        if let bracket = word.firstIndex(of: "[") { word = word[..<bracket] }
        return firstWords.contains(String(word))
    }

    /// The one line printed before exit 2.
    static func message(_ expression: String) -> String {
        "finscope: error: '\(expression)' is not a capture file but a filter expression: "
            + "did you mean --filter '\(expression)'?"
    }
}
