/// Turning a flow's recorded facts into its report: state paths (SPEC §2), the close
/// kind (§3) and findings (§4).
extension FlowState {
    func report(captureEnd: Nanoseconds, threshold: Nanoseconds) -> FlowReport {
        let clientPath = path(of: clientSide, peer: serverSide, role: .client)
        let serverPath = path(of: serverSide, peer: clientSide, role: .server)
        let (close, threeWay) = closeKind(clientPath: clientPath, serverPath: serverPath)
        // A flow replaced through port reuse ends at the new flow's SYN.
        let end = replacedAt ?? captureEnd
        var findings = [Finding]()
        for role in Role.allCases {
            let (side, peer) = role == .client ? (clientSide, serverSide) : (serverSide, clientSide)
            findings += Self.findings(of: side, peer: peer, role: role, pair: pair, end: end, threshold: threshold)
        }
        return FlowReport(
            id: id, client: client, server: server, roles: roles,
            firstSeen: firstSeen, lastSeen: pair.lastSeen,
            close: close, threeWay: threeWay, resetBy: pair.resetBy,
            clientEndpoint: endpointReport(clientSide, peer: serverSide, path: clientPath),
            serverEndpoint: endpointReport(serverSide, peer: clientSide, path: serverPath),
            ignoredResets: Int(pair.ignoredResets), findings: findings,
            segments: Int(clientSide.sent) + Int(serverSide.sent))
    }

    private func endpointReport(_ side: EndpointState, peer: EndpointState, path: [TCPState]) -> EndpointReport {
        EndpointReport(finAt: side.fin?.time, finAckedAt: peer.ackedPeerFin?.time,
                       finRetransmits: Int(side.finRetransmits), resetAt: side.resetAt, path: path,
                       idleBeforeFin: side.fin != nil ? side.idleBeforeFin : nil)
    }

    /// The endpoint's walk through the RFC 9293 states, from the facts recorded for it.
    func path(of side: EndpointState, peer: EndpointState, role: Role) -> [TCPState] {
        var path: [TCPState]
        if !pair.established {
            if role == .client {
                path = [.synSent]
            } else {
                path = side.sawSYNACK ? [.synReceived] : []
            }
        } else {
            path = [.established]
            if side.isPassiveCloser {
                path.append(.closeWait)
                if side.fin != nil { path.append(.lastAck) }
                if side.fin != nil, peer.ackedPeerFin != nil { path.append(.closed) }
            } else if side.fin != nil {
                path.append(.finWait1)
                // The peer's acknowledgement of our FIN and the transmission of its FIN that
                // we received, both in the peer's sending order.
                let peerAck = peer.ackedPeerFin?.index
                if let received = side.receivedPeerFinIndex {
                    if let peerAck, peerAck < received {
                        path += [.finWait2, .timeWait]
                    } else if let peerAck, peerAck == received {
                        path.append(.timeWait)
                    } else {
                        path.append(.closing)
                        if peerAck != nil { path.append(.timeWait) }
                    }
                } else if peerAck != nil {
                    path.append(.finWait2)
                }
            }
        }
        if pair.resetTime != nil, path.last != .closed { path.append(.closed) }
        return path
    }

    /// SPEC §3. FINs sent after an accepted RST were never recorded, so "both FINs" here
    /// means both before any reset.
    func closeKind(clientPath: [TCPState], serverPath: [TCPState]) -> (CloseKind, Bool) {
        let c = clientSide, s = serverSide
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
            let both = clientPath.contains(.closing) && serverPath.contains(.closing)
            return (both ? .simultaneous : .crossed, false)
        }
        // Three-way: the second FIN itself carries the first acknowledgement of the first.
        let second = clientFirst ? s : c
        let threeWay = second.ackedPeerFin?.index == second.fin?.index
        return (clientFirst ? .clientFirst : .serverFirst, threeWay)
    }

    static func findings(of side: EndpointState, peer: EndpointState, role: Role, pair: PairState,
                         end: Nanoseconds, threshold: Nanoseconds) -> [Finding] {
        var found = [Finding]()
        if side.isPassiveCloser, let since = side.ackedPeerFin?.time {
            // CLOSE_WAIT from the acknowledgement of the peer's FIN until our FIN, a reset,
            // or the end of the capture.
            if let fin = side.fin {
                if fin.time - since >= threshold {
                    found.append(Finding(kind: .slowClose, endpoint: role, since: since, duration: fin.time - since,
                                         activity: side.closeWaitActivity, endedBy: .fin))
                }
            } else if let reset = pair.resetTime {
                if reset - since >= threshold {
                    found.append(Finding(kind: .slowClose, endpoint: role, since: since, duration: reset - since,
                                         activity: side.closeWaitActivity,
                                         endedBy: pair.resetBy == role ? .reset : .peerReset))
                }
            } else if end - since >= threshold {
                found.append(Finding(kind: .closeWait, endpoint: role, since: since, duration: max(0, end - since),
                                     activity: side.closeWaitActivity))
            }
        }
        if let fin = side.fin, peer.ackedPeerFin == nil, pair.resetTime == nil, end - fin.time >= threshold {
            found.append(Finding(kind: .finUnacked, endpoint: role, since: fin.time, duration: end - fin.time,
                                 activity: side.peerActivityAfterFin))
        }
        return found
    }
}
