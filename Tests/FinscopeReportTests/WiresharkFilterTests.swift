import FinscopeAnalysis
import FinscopeFindings
import FinscopeFlows
import FinscopeReport
import FinscopeWire
import Foundation
import Testing

/// The Wireshark filter of every group of every sample capture, run through tshark (the
/// independent reference): tshark must accept it, and the connections it selects must be
/// exactly the group's (issue 11: `tcp.port in {a b}` is a syntax error in Wireshark 4.0,
/// and a `{lo..hi}` range selected connections that were not stuck).
@Suite struct WiresharkFilterTests {
    static let tshark = ["/usr/bin/tshark", "/usr/local/bin/tshark"].first { FileManager.default.isExecutableFile(atPath: $0) }

    static func capturesWithGroups() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: packageRoot.appendingPathComponent("captures").path)) ?? []
        return names.filter { $0.hasSuffix(".pcap") || $0.hasSuffix(".pcapng") }.sorted()
    }

    struct Tuple: Hashable, CustomStringConvertible {
        var a: String
        var b: String
        init(_ x: String, _ y: String) { (a, b) = x < y ? (x, y) : (y, x) }
        var description: String { "\(a)↔\(b)" }
    }

    @Test(.enabled(if: tshark != nil, "tshark is not installed (Scripts/setup installs it)"), arguments: capturesWithGroups())
    func filterSelectsExactlyTheGroup(_ name: String) throws {
        let path = capture(name)
        let result = try analyze([path])
        for group in result.groups {
            let filter = Diagnosis.wiresharkFilter(group)
            let want = Set(group.members.map { member -> Tuple in
                let stuck = EndpointAddress(ip: group.endpointIP, port: member.port)
                let other = EndpointAddress(ip: member.peerIP, port: member.peerPort)
                return Tuple(stuck.description, other.description)
            })
            let run = try Self.run(tshark: ["-r", path, "-Y", filter, "-T", "fields", "-e", "ip.src", "-e", "ipv6.src",
                                            "-e", "tcp.srcport", "-e", "ip.dst", "-e", "ipv6.dst", "-e", "tcp.dstport"])
            #expect(run.status == 0, "tshark rejected \(filter): \(run.error)")
            var got = Set<Tuple>()
            for line in run.output.split(separator: "\n") {
                let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
                guard f.count == 6 else { continue }
                // tshark prints the innermost address first when a frame holds several (ICMP errors).
                let source = f[0].isEmpty ? f[1] : String(f[0].split(separator: ",").first ?? "")
                let destination = f[3].isEmpty ? f[4] : String(f[3].split(separator: ",").first ?? "")
                func endpoint(_ ip: String, _ port: String) -> String {
                    (IPAddress(ip).map { EndpointAddress(ip: $0, port: UInt16(port) ?? 0).description }) ?? "\(ip):\(port)"
                }
                got.insert(Tuple(endpoint(source, f[2]), endpoint(destination, f[5])))
            }
            #expect(got == want, "\(name) \(group.kind.rawValue) \(group.headline): filter \(filter)")
        }
    }

    static func run(tshark arguments: [String]) throws -> (status: Int32, output: String, error: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tshark!)
        process.arguments = ["-n", "-o", "tcp.analyze_sequence_numbers:FALSE"] + arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let output = out.fileHandleForReading.readDataToEndOfFile()
        let error = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self), String(decoding: error, as: UTF8.self))
    }
}
