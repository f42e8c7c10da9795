import Testing
@testable import FinscopeFlows

// The flow record's size is the per-flow memory figure's main term (issue 15: ≤ 128 bytes a
// tracked flow). These bounds fail when a change grows the record back.
@Suite struct LayoutTests {
    @Test("the flow record and its parts stay within their measured sizes")
    func recordSizes() {
        print("layout: FlowState \(MemoryLayout<FlowState>.size)/\(MemoryLayout<FlowState>.stride), "
              + "EndpointState \(MemoryLayout<EndpointState>.size)/\(MemoryLayout<EndpointState>.stride), "
              + "PairState \(MemoryLayout<FlowState.PairState>.size)/\(MemoryLayout<FlowState.PairState>.stride), "
              + "AppFacts \(MemoryLayout<AppFacts>.size)/\(MemoryLayout<AppFacts>.stride), "
              + "FlowKey \(MemoryLayout<FlowKey>.size)/\(MemoryLayout<FlowKey>.stride), "
              + "CloseSide \(MemoryLayout<CloseSide>.size)/\(MemoryLayout<CloseSide>.stride)")
        // An open flow: 256 bytes (was 416 with the close facts in line).
        #expect(MemoryLayout<FlowState>.stride <= 256)
        #expect(MemoryLayout<EndpointState>.stride <= 72)
        // Allocated at the first FIN or RST, two a flow.
        #expect(MemoryLayout<CloseSide>.stride <= 80)
    }
}
