import Foundation
import Testing
import FinscopeWire
import FinscopeFindings
import FinscopeAnalysis
import FinscopeCapture
import FinscopeFlows
import FinscopeReport
import FinscopeTestSupport

/// SPEC §2: which RSTs are accepted. With a known window an RST counts when its seq is at
/// or behind the receiver's last ack, or at most one advertised (scaled) window beyond it.
@Suite("RST acceptance")
struct ResetAcceptanceTests {
    /// Handshake with the given window-scale options; the server advertises 1000 (raw field).
    /// The client sends 100 bytes, the server acknowledges them: server's last ack = 1101.
    func windowed(clientScale: UInt8?, serverScale: UInt8?) -> Conversation {
        var c = conversation(serverWindow: 1000)
        c.handshake(at: 0, clientWindowScale: clientScale, serverWindowScale: serverScale)
        c.data(.client, bytes: 100, at: 0.1)
        c.ack(.server, at: 0.11)
        return c
    }

    @Test("window scaling in use (both SYNs carry it): the server's window is 1000 << 2 = 4000")
    func scaledWindow() throws {
        var c = windowed(clientScale: 7, serverScale: 2)
        #expect(c.received(.server) == 1101)
        c.rst(.client, at: 1.0, seq: .value(1101 + 4001))  // one past the window: ignored
        c.rst(.client, at: 2.0, seq: .value(1101 + 4000))  // at the window's edge: accepted
        let flow = try analyze(c).onlyFlow()
        #expect(flow.ignoredResets == 1)
        #expect(flow.close == "reset")
        #expect(flow.resetBy == "client")
        #expect(flow.client == EndpointJSON(resetAt: T(2.0), path: [EST, CLOSED]))
        #expect(flow.server == EndpointJSON(path: [EST, CLOSED]))
    }

    @Test("an RST far beyond the scaled window is ignored and the flow stays open")
    func farBeyondWindow() throws {
        var c = windowed(clientScale: 7, serverScale: 2)
        c.rst(.client, at: 1.0, seq: .value(1101 + 1_000_000))
        let flow = try analyze(c).onlyFlow()
        #expect(flow.ignoredResets == 1)
        #expect(flow.close == "open")
        #expect(flow.resetByIsNull)
        #expect(flow.client == EndpointJSON(resetAt: nil, path: [EST]))
        #expect(flow.server == EndpointJSON(path: [EST]))
    }

    @Test("window scaling not in use (SYN+ACK without the option): the window is 1000 unscaled")
    func unscaledWindowWhenOnlyOneSideOffers() throws {
        var c = windowed(clientScale: 7, serverScale: nil)
        c.rst(.client, at: 1.0, seq: .value(1101 + 1001))
        c.rst(.client, at: 2.0, seq: .value(1101 + 1000))
        let flow = try analyze(c).onlyFlow()
        #expect(flow.ignoredResets == 1)
        #expect(flow.close == "reset")
        #expect(flow.resetBy == "client")
        #expect(flow.client == EndpointJSON(resetAt: T(2.0), path: [EST, CLOSED]))
    }

    @Test("an RST behind the receiver's last ack is accepted")
    func behindLastAck() throws {
        var c = windowed(clientScale: 7, serverScale: 2)
        c.rst(.client, at: 1.0, seq: .value(1101 - 500))
        let flow = try analyze(c).onlyFlow()
        #expect(flow.ignoredResets == 0)
        #expect(flow.close == "reset")
        #expect(flow.resetBy == "client")
    }

    @Test("an RST from the server is judged against the client's ack and window")
    func serverResetAgainstClientWindow() throws {
        var c = conversation(clientWindow: 500)
        c.handshake(at: 0, clientWindowScale: 3, serverWindowScale: 7)
        c.data(.server, bytes: 100, at: 0.1)
        c.ack(.client, at: 0.11)  // ack 5101, window 500 << 3 = 4000
        #expect(c.received(.client) == 5101)
        c.rst(.server, at: 1.0, seq: .value(5101 + 4001))
        c.rst(.server, at: 2.0, seq: .value(5101 + 4000))
        let flow = try analyze(c).onlyFlow()
        #expect(flow.ignoredResets == 1)
        #expect(flow.resetBy == "server")
        #expect(flow.server == EndpointJSON(resetAt: T(2.0), path: [EST, CLOSED]))
    }

    @Test("window unknown (mid-connection): every RST is accepted")
    func windowUnknownMidConnection() throws {
        var c = conversation(serverWindow: 1000)
        c.data(.client, bytes: 100, at: 0)
        c.ack(.server, at: 0.01)
        c.rst(.client, at: 1.0, seq: .relative(10_000_000))
        let flow = try analyze(c).onlyFlow()
        #expect(flow.roles == "inferred")
        #expect(flow.ignoredResets == 0)
        #expect(flow.close == "reset")
        #expect(flow.resetBy == "client")
        #expect(flow.client == EndpointJSON(resetAt: T(1.0), path: [EST, CLOSED]))
        #expect(flow.server == EndpointJSON(path: [EST, CLOSED]))
    }

    @Test("window unknown (only the SYN+ACK captured, with the option): every RST is accepted")
    func windowUnknownOnlySynAckWithOption() throws {
        var c = windowed(clientScale: 7, serverScale: 2)
        c.rst(.client, at: 1.0, seq: .value(1101 + 1_000_000))
        var writer = c.pcapWriter()
        writer.records.removeFirst()  // the SYN was not captured
        let flow = try analyze(writer: writer).onlyFlow()
        #expect(flow.ignoredResets == 0)
        #expect(flow.close == "reset")
        #expect(flow.resetBy == "client")
    }
}
