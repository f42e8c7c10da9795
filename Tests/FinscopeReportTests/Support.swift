import FinscopeWire
import FinscopeFindings
import FinscopeAnalysis
import FinscopeCapture
import FinscopeFlows
import FinscopeReport
import FinscopeTestSupport
import Foundation

/// The package's root folder, found from this file's path.
let packageRoot = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

func capture(_ name: String) -> String { packageRoot.appendingPathComponent("captures/\(name)").path }

func analyze(_ paths: [String], threshold: Double = 5, retainAll: Bool = true,
             hooks: AnalysisHooks = AnalysisHooks()) throws -> AnalysisResult {
    try OfflineAnalysis.analyze(paths: paths, options: AnalysisOptions(
        closeWaitThreshold: Int64(threshold * 1e9), retainAllFlows: retainAll), hooks: hooks)
}

func jsonObject(_ text: String) throws -> [String: Any] {
    try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] ?? [:]
}

/// A leaking client: `count` connections from 10.0.0.5, ephemeral ports from 40112, to
/// 10.0.0.9:8282; each does one request and response, then the server closes it after
/// `idle` seconds without data and the client acknowledges and never closes. The capture
/// ends at `end` seconds.
func leakConversations(count: Int, idle: Double, end: Double, firstPort: Int = 40112,
                       client: String = "10.0.0.5", server: String = "10.0.0.9:8282") -> [Conversation] {
    var conversations: [Conversation] = []
    for n in 0..<count {
        let start = Double(n) * 0.5
        var c = Conversation(client: HostPort("\(client):\(firstPort + n)"), server: HostPort(server),
                             start: 1_700_000_000, clientISN: UInt32(1000 + n * 7919), serverISN: UInt32(900_000 + n * 104_729))
        c.handshake(at: start)
        c.data(.client, bytes: 120, at: start + 0.01)
        c.data(.server, bytes: 800, at: start + 0.02)
        c.ack(.client, at: start + 0.021)
        c.fin(.server, at: start + 0.02 + idle)
        c.ack(.client, at: start + 0.02 + idle + 0.0005)
        conversations.append(c)
    }
    // The last frame of the capture (an unrelated, cleanly closed connection).
    var tail = Conversation(client: "10.0.0.7:50000", server: "10.0.0.9:22", start: 1_700_000_000)
    tail.handshake(at: end - 0.5)
    tail.fin(.client, at: end - 0.3)
    tail.ack(.server, at: end - 0.2)
    tail.fin(.server, at: end - 0.1)
    tail.ack(.client, at: end)
    conversations.append(tail)
    return conversations
}
