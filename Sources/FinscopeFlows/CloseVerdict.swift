import FinscopeWire
/// Turning a flow's recorded facts into its report: state paths (SPEC §2), the close
/// kind (§3) and findings (§4).
extension FlowState {
    /// The flow's report as of `end`: why and when it left the table (or the capture's end).
    /// `detail`: also the transitions and what the connection carried (reports that are kept
    /// or streamed); a report only counted in the tally skips them, which keeps the end of a
    /// flow in text mode cheap.
    /// `close`: the flow's close facts (a fresh record when it has none).
    func report(end: FlowEnd, threshold: Nanoseconds, hints: AppHintTable, close: CloseRecord,
                detail: Bool = true) -> FlowReport {
        let clientSide = EndpointView(open: self.clientSide, close: close.client)
        let serverSide = EndpointView(open: self.serverSide, close: close.server)
        // At most six steps a side (ESTABLISHED, FIN_WAIT_1, CLOSING, TIME_WAIT, CLOSED): on the stack.
        return withUnsafeTemporaryAllocation(of: StateTransition.self, capacity: 2 * Self.maximumSteps) { buffer in
            let clientCount = walk(of: clientSide, peer: serverSide, role: .client,
                                   into: UnsafeMutableBufferPointer(rebasing: buffer[0..<Self.maximumSteps]))
            let serverCount = walk(of: serverSide, peer: clientSide, role: .server,
                                   into: UnsafeMutableBufferPointer(rebasing: buffer[Self.maximumSteps...]))
            let clientSteps = buffer[0..<clientCount]
            let serverSteps = buffer[Self.maximumSteps..<(Self.maximumSteps + serverCount)]
            return report(end: end, threshold: threshold, hints: hints, detail: detail,
                          clientSide: clientSide, serverSide: serverSide,
                          clientSteps: clientSteps, serverSteps: serverSteps)
        }
    }

    static let maximumSteps = 6

    private func report(end: FlowEnd, threshold: Nanoseconds, hints: AppHintTable, detail: Bool,
                        clientSide: EndpointView, serverSide: EndpointView,
                        clientSteps: Slice<UnsafeMutableBufferPointer<StateTransition>>,
                        serverSteps: Slice<UnsafeMutableBufferPointer<StateTransition>>) -> FlowReport {
        let clientPath = clientSteps.map(\.state)
        let serverPath = serverSteps.map(\.state)
        let (close, threeWay) = Self.closeKind(clientSide, serverSide, pair: pair, clientClosing: clientPath.contains(.closing),
                                               serverClosing: serverPath.contains(.closing))
        // Findings run to the flow's end: the capture's end, or a replacing flow's SYN (port reuse).
        var findings = [Finding]()
        Self.forEachFinding(clientSide, serverSide, pair: pair, end: end.at, threshold: threshold) { findings.append($0) }
        var report = FlowReport(
            id: id, client: client, server: server, roles: roles,
            firstSeen: firstSeen, lastSeen: pair.lastSeen,
            close: close, threeWay: threeWay, resetBy: pair.resetBy,
            clientEndpoint: endpointReport(clientSide, peer: serverSide, path: clientPath),
            serverEndpoint: endpointReport(serverSide, peer: clientSide, path: serverPath),
            ignoredResets: Int(pair.ignoredResets), findings: findings,
            segments: Int(clientSide.sent) + Int(serverSide.sent),
            transitions: detail ? Array(clientSteps.dropFirst()) + Array(serverSteps.dropFirst()) : [],
            end: end, clientPayloadCut: app.clientPayloadCut)
        if detail { report.app = hints.hint(app) }
        return report
    }

    private func endpointReport(_ side: EndpointView, peer: EndpointView, path: [TCPState]) -> EndpointReport {
        EndpointReport(finAt: side.fin?.time, finAckedAt: peer.ackedPeerFin?.time,
                       finRetransmits: Int(side.finRetransmits), resetAt: side.resetAt, path: path,
                       idleBeforeFin: side.fin != nil ? side.idleBeforeFin : nil,
                       bytes: Int(clamping: side.payloadBytes), segments: Int(side.sent))
    }

    /// The endpoint's walk through the RFC 9293 states (SPEC §2), each step with the
    /// segment that caused it: the one derivation that the path, the ladder and the HTML
    /// timeline all read. The first step is where the capture found the endpoint (no cause).
    func transitions(of side: EndpointView, peer: EndpointView, role: Role) -> [StateTransition] {
        withUnsafeTemporaryAllocation(of: StateTransition.self, capacity: Self.maximumSteps) { buffer in
            Array(buffer[0..<walk(of: side, peer: peer, role: role, into: buffer)])
        }
    }

    /// Writes the steps into `steps` (room for `maximumSteps`); returns how many.
    private func walk(of side: EndpointView, peer: EndpointView, role: Role,
                      into steps: UnsafeMutableBufferPointer<StateTransition>) -> Int {
        var count = 0
        func step(_ state: TCPState, _ sender: Role, _ mark: SegmentMark?) {
            // No state is entered before the one it leaves: the peer's FIN that an active
            // closer received may have been captured before the closer's own FIN (a
            // simultaneous close seen near the peer), and CLOSING then starts at FIN_WAIT_1.
            let time = max(mark?.time ?? firstSeen, count > 0 ? steps[count - 1].time : .min)
            (steps.baseAddress! + count).initialize(to: StateTransition(
                endpoint: role, state: state, time: time, cause: mark.map { SegmentRef(sender: sender, index: $0.index) }))
            count += 1
        }
        let received = side.receivedPeerFinIndex.map { SegmentMark(index: $0, time: side.receivedPeerFinTime) }
        let peerAck = peer.ackedPeerFin
        if !pair.established {
            if role == .client {
                step(.synSent, role, nil)
            } else if side.sawSYNACK {
                step(.synReceived, role, nil)
            }
        } else {
            step(.established, role, nil)
            if side.isPassiveCloser {
                step(.closeWait, role, side.ackedPeerFin)
                if let fin = side.fin {
                    step(.lastAck, role, fin)
                    if let peerAck { step(.closed, role.peer, peerAck) }
                }
            } else if let fin = side.fin {
                step(.finWait1, role, fin)
                // The peer's acknowledgement of our FIN and the transmission of its FIN that
                // we received, both in the peer's sending order.
                if let received {
                    if let peerAck, peerAck.index < received.index {
                        step(.finWait2, role.peer, peerAck)
                        step(.timeWait, role.peer, received)
                    } else if let peerAck, peerAck.index == received.index {
                        step(.timeWait, role.peer, received)
                    } else {
                        step(.closing, role.peer, received)
                        if let peerAck { step(.timeWait, role.peer, peerAck) }
                    }
                } else if let peerAck {
                    step(.finWait2, role.peer, peerAck)
                }
            }
        }
        if let reset = pair.resetTime, let by = pair.resetBy, count == 0 || steps[count - 1].state != .closed {
            step(.closed, by, SegmentMark(index: pair.resetIndex, time: reset))
        }
        return count
    }

    /// What the tally counts of the flow as of `end` (its close kind and findings), without a
    /// report: no path arrays, no findings array. Text mode counts every flow but prints only
    /// those with findings; building a full report for each cost ~2,600 instructions a flow.
    func outcome(end: Nanoseconds, threshold: Nanoseconds, close: CloseRecord) -> FlowOutcome {
        let clientSide = EndpointView(open: self.clientSide, close: close.client)
        let serverSide = EndpointView(open: self.serverSide, close: close.server)
        return withUnsafeTemporaryAllocation(of: StateTransition.self, capacity: Self.maximumSteps) { buffer in
            var clientClosing = false, serverClosing = false
            let clientCount = walk(of: clientSide, peer: serverSide, role: .client, into: buffer)
            for step in buffer[0..<clientCount] where step.state == .closing { clientClosing = true }
            if clientClosing {
                let serverCount = walk(of: serverSide, peer: clientSide, role: .server, into: buffer)
                for step in buffer[0..<serverCount] where step.state == .closing { serverClosing = true }
            }
            let (kind, threeWay) = Self.closeKind(clientSide, serverSide, pair: pair, clientClosing: clientClosing,
                                                  serverClosing: serverClosing)
            var outcome = FlowOutcome(close: kind, threeWay: threeWay, resetBy: pair.resetBy)
            Self.forEachFinding(clientSide, serverSide, pair: pair, end: end, threshold: threshold) { outcome.count($0.kind) }
            return outcome
        }
    }

    /// Both endpoints' findings, the client's first (SPEC §4).
    @inline(__always)
    static func forEachFinding(_ clientSide: EndpointView, _ serverSide: EndpointView, pair: PairState,
                               end: Nanoseconds, threshold: Nanoseconds, _ body: (Finding) -> Void) {
        Self.findings(of: clientSide, peer: serverSide, role: .client, pair: pair, end: end, threshold: threshold, body)
        Self.findings(of: serverSide, peer: clientSide, role: .server, pair: pair, end: end, threshold: threshold, body)
    }

    /// SPEC §3. FINs sent after an accepted RST were never recorded, so "both FINs" here
    /// means both before any reset. `clientClosing`/`serverClosing`: the endpoint's path
    /// passes CLOSING (only read when neither FIN acknowledges the other).
    static func closeKind(_ c: EndpointView, _ s: EndpointView, pair: PairState, clientClosing: Bool,
                          serverClosing: Bool) -> (CloseKind, Bool) {
        guard let clientFin = c.fin, let serverFin = s.fin else {
            if pair.resetTime != nil { return (.reset, false) }
            return (c.fin != nil || s.fin != nil ? .halfClosed : .open, false)
        }
        let serverAcksClient = s.finFirstHasAck && seqAtOrAfter(s.finFirstAck, c.finSeq &+ 1)
        let clientAcksServer = c.finFirstHasAck && seqAtOrAfter(c.finFirstAck, s.finSeq &+ 1)
        var clientFirst: Bool
        switch (serverAcksClient, clientAcksServer) {
        case (true, false): clientFirst = true
        case (false, true): clientFirst = false
        case (true, true): clientFirst = clientFin.time <= serverFin.time  // impossible in real TCP
        case (false, false):
            let both = clientClosing && serverClosing
            return (both ? .simultaneous : .crossed, false)
        }
        // Three-way: the second FIN itself carries the first acknowledgement of the first.
        let second = clientFirst ? s : c
        let threeWay = second.ackedPeerFin?.index == second.fin?.index
        return (clientFirst ? .clientFirst : .serverFirst, threeWay)
    }

    @inline(__always)
    static func findings(of side: EndpointView, peer: EndpointView, role: Role, pair: PairState,
                         end: Nanoseconds, threshold: Nanoseconds, _ emit: (Finding) -> Void) {
        if side.isPassiveCloser, let since = side.ackedPeerFin?.time {
            // CLOSE_WAIT from the acknowledgement of the peer's FIN until our FIN, a reset,
            // or the end of the capture.
            if let fin = side.fin {
                if fin.time - since >= threshold {
                    emit(Finding(kind: .slowClose, endpoint: role, since: since, duration: fin.time - since,
                                         activity: side.closeWaitActivity, endedBy: .fin))
                }
            } else if let reset = pair.resetTime {
                if reset - since >= threshold {
                    emit(Finding(kind: .slowClose, endpoint: role, since: since, duration: reset - since,
                                         activity: side.closeWaitActivity,
                                         endedBy: pair.resetBy == role ? .reset : .peerReset))
                }
            } else if end - since >= threshold {
                emit(Finding(kind: .closeWait, endpoint: role, since: since, duration: max(0, end - since),
                                     activity: side.closeWaitActivity))
            }
        }
        if let fin = side.fin, peer.ackedPeerFin == nil, pair.resetTime == nil, end - fin.time >= threshold {
            emit(Finding(kind: .finUnacked, endpoint: role, since: fin.time, duration: end - fin.time,
                                 activity: side.peerActivityAfterFin))
        }
    }
}
