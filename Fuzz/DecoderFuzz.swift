// libFuzzer target: FinscopeWire's frame decoder on arbitrary bytes.
//
// Input layout: byte 0 picks the link kind (modulo LinkKind.allCases.count, in declaration
// order: the first 8 are Ethernet ... Linux cooked v2 as before), bytes 1-2 (big-endian)
// are added to the captured length to make the wire length (pcap's `len` may exceed
// `caplen`), the rest is the captured frame. Invariants checked on every input:
//   - decoding reads only the frame (AddressSanitizer: the frame ends where the heap
//     allocation ends),
//   - the same bytes decode to the same outcome,
//   - a segment's payload length never exceeds the wire length minus the smallest IP
//     and TCP headers (payload comes from IP length fields, bounded by the wire; NFLOG
//     records no wire length of the packet it logged, so there only by the IP limit),
//   - the payload offset lies inside the frame, after at least a TCP header,
//   - a window-scale shift is absent (-1) or at most 14, and only on SYN segments,
//   - the addresses print.
import FinscopeWire

let kinds = LinkKind.allCases

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDecoder(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 3 else { return 0 }
    let link = kinds[Int(data[0]) % kinds.count]
    let extra = Int(data[1]) << 8 | Int(data[2])
    let frame = UnsafeRawBufferPointer(start: data + 3, count: size - 3)
    let wireLength = frame.count + extra
    let outcome = FrameDecoder.decode(frame, wireLength: wireLength, link: link)
    precondition(outcome == FrameDecoder.decode(frame, wireLength: wireLength, link: link), "decode is not deterministic")
    // The wire length is never taken as shorter than what was captured.
    precondition(outcome == FrameDecoder.decode(frame, wireLength: 0, link: link) || extra > 0,
                 "a wire length below the captured length changed the outcome")
    if case .segment(let segment) = outcome {
        let bound = link == .nflog ? 65535 + 40 : wireLength
        precondition(Int(segment.payloadLength) + 40 <= bound,
                     "payload \(segment.payloadLength) does not fit a \(wireLength)-byte frame")
        precondition(segment.payloadOffset >= 20 && segment.payloadOffset <= frame.count,
                     "payload offset \(segment.payloadOffset) outside a \(frame.count)-byte frame")
        precondition(segment.windowScale >= -1 && segment.windowScale <= 14, "window scale \(segment.windowScale)")
        precondition(segment.windowScale == -1 || segment.flags.contains(.syn), "window scale on a non-SYN")
        precondition(segment.source.isIPv6 == segment.destination.isIPv6, "mixed address families")
        let text = "\(segment.source) \(segment.destination) \(segment.flags)"
        precondition(!text.isEmpty)
        // Text round trip of the addresses.
        precondition(IPAddress(segment.source.description) == segment.source, "address text round trip")
    }
    return 0
}
