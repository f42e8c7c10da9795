import FinscopeWire

/// A connection's identity: the unordered pair of endpoints plus IP version (the version
/// is part of `IPAddress`). Stored in canonical order, lower endpoint first.
struct FlowKey: Equatable {
    var lowHigh: UInt64
    var lowLow: UInt64
    var highHigh: UInt64
    var highLow: UInt64
    var lowPort: UInt16
    var highPort: UInt16
    var isIPv6: Bool

    @inline(__always)
    init(_ segment: TCPSegment) {
        self.init(segment.source, segment.sourcePort, segment.destination, segment.destinationPort)
    }

    @inline(__always)
    init(_ a: IPAddress, _ pa: UInt16, _ b: IPAddress, _ pb: UInt16) {
        let aFirst = (a.high, a.low, pa) <= (b.high, b.low, pb)
        if aFirst {
            lowHigh = a.high; lowLow = a.low; lowPort = pa
            highHigh = b.high; highLow = b.low; highPort = pb
        } else {
            lowHigh = b.high; lowLow = b.low; lowPort = pb
            highHigh = a.high; highLow = a.low; highPort = pa
        }
        isIPv6 = a.isIPv6
    }

    var lowEndpoint: EndpointAddress {
        EndpointAddress(ip: isIPv6 ? IPAddress(ipv6High: lowHigh, low: lowLow) : IPAddress(ipv4: UInt32(truncatingIfNeeded: lowLow)),
                        port: lowPort)
    }

    var highEndpoint: EndpointAddress {
        EndpointAddress(ip: isIPv6 ? IPAddress(ipv6High: highHigh, low: highLow) : IPAddress(ipv4: UInt32(truncatingIfNeeded: highLow)),
                        port: highPort)
    }

    /// A cheap, well-mixed hash (multiply-xorshift); SipHash is more than a flow table
    /// keyed by captured traffic needs here.
    @inline(__always)
    var hash32: UInt32 { UInt32(truncatingIfNeeded: hashValue64 >> 32) }

    @inline(__always)
    var hashValue64: UInt64 {
        var h = lowLow &* 0x9E37_79B9_7F4A_7C15
        h ^= highLow &* 0xC2B2_AE3D_27D4_EB4F
        h ^= (lowHigh ^ (highHigh &* 0x1656_67B1_9E37_79F9)) &* 0x27D4_EB2F_1656_67C5
        h ^= UInt64(lowPort) << 16 | UInt64(highPort) << 32 | (isIPv6 ? 1 : 0)
        h ^= h >> 29
        h &*= 0xBF58_476D_1CE4_E5B9
        h ^= h >> 32
        return h
    }
}

/// Open-addressing (linear probing) index from a flow's hash to its slot in the flow
/// store: 8 bytes a slot (a 32-bit hash and the slot number). Keys live once, in the flows
/// themselves; a probe compares the stored hash first and the flow's key only on a match.
struct FlowTable {
    private struct Entry {
        var hash: UInt32
        var slot: Int32  // -1: empty
    }
    private var entries: [Entry]
    private var mask: Int
    private(set) var count = 0

    init(capacity: Int = 1024) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        entries = Array(repeating: Entry(hash: 0, slot: -1), count: size)
        mask = size - 1
    }

    /// The slot of the flow with this hash for which `matches` holds, or nil.
    @inline(__always)
    func find(hash: UInt32, matches: (Int) -> Bool) -> Int? {
        var position = Int(hash) & mask
        while true {
            let entry = entries[position]
            if entry.slot < 0 { return nil }
            if entry.hash == hash, matches(Int(entry.slot)) { return Int(entry.slot) }
            position = (position + 1) & mask
        }
    }

    /// Adds a flow known to be absent.
    mutating func insert(hash: UInt32, slot: Int) {
        if (count + 1) * 4 > entries.count * 3 { grow() }
        var position = Int(hash) & mask
        while entries[position].slot >= 0 { position = (position + 1) & mask }
        entries[position] = Entry(hash: hash, slot: Int32(slot))
        count += 1
    }

    /// Removes the entry for `slot`, shifting later entries of its probe run back (no tombstones).
    mutating func remove(hash: UInt32, slot: Int) {
        var position = Int(hash) & mask
        while true {
            if entries[position].slot < 0 { return }
            if entries[position].slot == Int32(slot) { break }
            position = (position + 1) & mask
        }
        var hole = position
        var next = (hole + 1) & mask
        while entries[next].slot >= 0 {
            let home = Int(entries[next].hash) & mask
            // Move the entry back unless its home lies cyclically in (hole, next].
            let stays = hole <= next ? (home > hole && home <= next) : (home > hole || home <= next)
            if !stays {
                entries[hole] = entries[next]
                hole = next
            }
            next = (next + 1) & mask
        }
        entries[hole].slot = -1
        count -= 1
    }

    private mutating func grow() {
        let old = entries
        entries = Array(repeating: Entry(hash: 0, slot: -1), count: old.count * 2)
        mask = entries.count - 1
        count = 0
        for entry in old where entry.slot >= 0 { insert(hash: entry.hash, slot: Int(entry.slot)) }
    }
}

/// Flow records in fixed-size chunks: growing never copies the flows already stored (a
/// doubling array would briefly hold two copies of every flow), and access is in place.
final class FlowStore: @unchecked Sendable {
    private static let chunkShift = 12
    private static let chunkSize = 1 << chunkShift
    // Only the tracker that owns the store touches it, from one thread; dynamic exclusivity
    // checks on these two properties were ~15% of the per-packet instructions.
    @exclusivity(unchecked) private var chunks: [UnsafeMutablePointer<FlowState>] = []
    /// Slots in use or freed (freed slots keep a flow with `id == 0`).
    @exclusivity(unchecked) private(set) var count = 0

    deinit {
        for (index, chunk) in chunks.enumerated() {
            let used = min(Self.chunkSize, count - index * Self.chunkSize)
            if used > 0 { chunk.deinitialize(count: used) }
            chunk.deallocate()
        }
    }

    @inline(__always)
    private func pointer(_ slot: Int) -> UnsafeMutablePointer<FlowState> {
        chunks[slot >> Self.chunkShift] + (slot & (Self.chunkSize - 1))
    }

    subscript(slot: Int) -> FlowState {
        @inline(__always) unsafeAddress { UnsafePointer(pointer(slot)) }
        @inline(__always) unsafeMutableAddress { pointer(slot) }
    }

    /// Stores a flow in a new slot and returns the slot.
    func append(_ flow: FlowState) -> Int {
        if count == chunks.count * Self.chunkSize {
            chunks.append(UnsafeMutablePointer<FlowState>.allocate(capacity: Self.chunkSize))
        }
        let slot = count
        pointer(slot).initialize(to: flow)
        count += 1
        return slot
    }
}
