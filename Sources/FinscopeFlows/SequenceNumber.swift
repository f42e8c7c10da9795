import FinscopeWire
/// Serial-number arithmetic on 32-bit TCP sequence numbers (RFC 1982): `a` is "after"
/// `b` when the wrapping distance from `b` to `a` is positive as a signed 32-bit value.
/// Plain `<` on sequence numbers is wrong across wraparound; use these.
@inline(__always)
func seqDistance(_ from: UInt32, _ to: UInt32) -> Int32 {
    Int32(bitPattern: to &- from)
}

/// a ≥ b in sequence space.
@inline(__always)
func seqAtOrAfter(_ a: UInt32, _ b: UInt32) -> Bool {
    seqDistance(b, a) >= 0
}

/// a > b in sequence space.
@inline(__always)
func seqAfter(_ a: UInt32, _ b: UInt32) -> Bool {
    seqDistance(b, a) > 0
}
