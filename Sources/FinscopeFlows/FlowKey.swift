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

    /// A cheap, well-mixed hash (multiply-xorshift); SipHash is more than a flow table
    /// keyed by captured traffic needs here.
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

/// Open-addressing (linear probing) map from flow key to an index in the flow array:
/// one probe sequence per packet, no allocation once grown.
struct FlowTable {
    private struct Slot {
        var key: FlowKey
        var index: Int32  // -1: empty
    }
    private var slots: [Slot]
    private var mask: Int
    private(set) var count = 0

    init(capacity: Int = 1024) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        slots = Array(repeating: Slot(key: FlowKey.empty, index: -1), count: size)
        mask = size - 1
    }

    /// The flow index for `key`, or nil.
    @inline(__always)
    func find(_ key: FlowKey) -> Int? {
        var position = Int(truncatingIfNeeded: key.hashValue64) & mask
        while true {
            let slot = slots[position]
            if slot.index < 0 { return nil }
            if slot.key == key { return Int(slot.index) }
            position = (position + 1) & mask
        }
    }

    /// Removes `key` if present, shifting later entries of its probe run back (no tombstones).
    mutating func remove(_ key: FlowKey) {
        var position = Int(truncatingIfNeeded: key.hashValue64) & mask
        while true {
            if slots[position].index < 0 { return }
            if slots[position].key == key { break }
            position = (position + 1) & mask
        }
        var hole = position
        var next = (hole + 1) & mask
        while slots[next].index >= 0 {
            let home = Int(truncatingIfNeeded: slots[next].key.hashValue64) & mask
            // Move the entry back unless its home lies cyclically in (hole, next].
            let stays = hole <= next ? (home > hole && home <= next) : (home > hole || home <= next)
            if !stays {
                slots[hole] = slots[next]
                hole = next
            }
            next = (next + 1) & mask
        }
        slots[hole].index = -1
        count -= 1
    }

    /// Inserts or repoints `key` (port reuse points the key at the newer flow).
    mutating func set(_ key: FlowKey, to index: Int) {
        if (count + 1) * 4 > slots.count * 3 { grow() }
        var position = Int(truncatingIfNeeded: key.hashValue64) & mask
        while true {
            if slots[position].index < 0 {
                slots[position] = Slot(key: key, index: Int32(index))
                count += 1
                return
            }
            if slots[position].key == key {
                slots[position].index = Int32(index)
                return
            }
            position = (position + 1) & mask
        }
    }

    private mutating func grow() {
        let old = slots
        slots = Array(repeating: Slot(key: FlowKey.empty, index: -1), count: old.count * 2)
        mask = slots.count - 1
        count = 0
        for slot in old where slot.index >= 0 { set(slot.key, to: Int(slot.index)) }
    }
}

extension FlowKey {
    static let empty = FlowKey(emptyKey: ())
    private init(emptyKey: Void) {
        lowHigh = 0; lowLow = 0; highHigh = 0; highLow = 0; lowPort = 0; highPort = 0; isIPv6 = false
    }
}
