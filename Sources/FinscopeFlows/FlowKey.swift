import FinscopeWire

/// A connection's identity: the unordered pair of endpoints plus IP version (the version
/// is part of `IPAddress`). Stored in canonical order, lower endpoint first.
public struct FlowKey: Equatable, Sendable {
    var lowHigh: UInt64
    var lowLow: UInt64
    var highHigh: UInt64
    var highLow: UInt64
    var lowPort: UInt16
    var highPort: UInt16
    var isIPv6: Bool

    /// Written out so that it is always inlined into the lookup (the derived one was left
    /// out of line once `process` grew: a call per packet).
    @inline(__always)
    public static func == (a: FlowKey, b: FlowKey) -> Bool {
        a.lowLow == b.lowLow && a.highLow == b.highLow && a.lowPort == b.lowPort && a.highPort == b.highPort
            && a.lowHigh == b.lowHigh && a.highHigh == b.highHigh && a.isIPv6 == b.isIPv6
    }

    @inline(__always)
    public init(_ segment: TCPSegment) {
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

    /// The key's hash under `seed`: a keyed multiply-fold mix (as wyhash folds 128-bit
    /// products), so that without the seed nobody can choose addresses that collide. The
    /// unkeyed mixer this replaced was invertible: sources in one IPv6 /64 could be picked
    /// to land every SYN on one probe chain (quadratic time, issue 10).
    @inline(__always)
    func hash(_ seed: HashSeed) -> UInt32 {
        let ports = UInt64(lowPort) << 32 | UInt64(highPort) << 16 | (isIPv6 ? 1 : 0)
        var h = Self.fold(lowLow ^ seed.a, highLow ^ seed.b)
        h = Self.fold(h ^ lowHigh ^ seed.c, highHigh ^ ports ^ seed.d)
        return UInt32(truncatingIfNeeded: h ^ h >> 32)
    }

    @inline(__always)
    static func fold(_ x: UInt64, _ y: UInt64) -> UInt64 {
        let product = x.multipliedFullWidth(by: y)
        return product.high ^ product.low
    }
}

/// The secret that keys the flow table's hash: random per process (as Suricata seeds
/// `hash_rand` at start-up), drawn again if a probe chain ever grows too long.
public struct HashSeed: Equatable, Sendable {
    var a, b, c, d: UInt64

    /// A fresh seed from the system's random source.
    public static func random() -> HashSeed {
        var generator = SystemRandomNumberGenerator()
        // Odd multiplicands keep every input bit alive in the products.
        return HashSeed(a: generator.next() | 1, b: generator.next() | 1, c: generator.next() | 1, d: generator.next() | 1)
    }

    /// A fixed seed, for tests that need the same hashes twice.
    public init(a: UInt64, b: UInt64, c: UInt64, d: UInt64) {
        self.a = a
        self.b = b
        self.c = c
        self.d = d
    }
}

/// Open-addressing (linear probing) index from a flow's hash to its slot in the flow
/// store: 8 bytes a slot (a 32-bit hash and the slot number). Keys live once, in the flows
/// themselves; a probe compares the stored hash first and the flow's key only on a match.
///
/// Probe chains are bounded: a new flow's entry never lands more than `maximumDistance`
/// slots past its home (insertion refuses, and the tracker then re-seeds and rebuilds;
/// backward-shift removal only shortens distances). `longestDistance` bounds every entry's
/// distance, so a lookup, hit or miss, reads at most that many slots plus one.
struct FlowTable {
    private struct Entry {
        var hash: UInt32
        var slot: Int32  // -1: empty
    }
    /// Far beyond what a keyed hash at ≤ 75 % load produces by chance (expected chain ~2.5).
    static let maximumDistance = 48
    private var entries: [Entry]
    private var mask: Int
    private(set) var count = 0
    /// No entry lies farther than this from its home slot.
    private(set) var longestDistance = 0

    init(capacity: Int = 1024) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        entries = Array(repeating: Entry(hash: 0, slot: -1), count: size)
        mask = size - 1
    }

    /// The slot of the flow with this hash for which `matches` holds, or nil.
    @inline(__always)
    func find(hash: UInt32, matches: (Int) -> Bool) -> Int? {
        // `position` is masked into the table: no bounds check needed.
        entries.withUnsafeBufferPointer { entries in
            var position = Int(hash) & mask
            for _ in 0...longestDistance {
                let entry = entries[position]
                if entry.slot < 0 { return nil }
                if entry.hash == hash, matches(Int(entry.slot)) { return Int(entry.slot) }
                position = (position + 1) & mask
            }
            return nil
        }
    }

    /// Adds a flow known to be absent; false (nothing added) when its chain would pass
    /// `maximumDistance`: the hash is under attack or unlucky, and the caller re-seeds.
    mutating func insert(hash: UInt32, slot: Int, bounded: Bool = true) -> Bool {
        if (count + 1) * 4 > entries.count * 3 { grow() }
        var position = Int(hash) & mask
        var distance = 0
        while entries[position].slot >= 0 {
            distance += 1
            if bounded, distance > Self.maximumDistance { return false }
            position = (position + 1) & mask
        }
        entries[position] = Entry(hash: hash, slot: Int32(slot))
        count += 1
        longestDistance = max(longestDistance, distance)
        return true
    }

    /// Removes the entry for `slot`, shifting later entries of its probe run back (no tombstones).
    mutating func remove(hash: UInt32, slot: Int) {
        var position = Int(hash) & mask
        var found = false
        for _ in 0...longestDistance {
            if entries[position].slot < 0 { return }
            if entries[position].slot == Int32(slot) {
                found = true
                break
            }
            position = (position + 1) & mask
        }
        guard found else { return }
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

    /// Empties the table and makes it at least `capacity` flows big (for a rebuild under a new seed).
    mutating func reset(capacity: Int) {
        var size = max(16, entries.count)
        while size < capacity * 2 { size <<= 1 }
        entries = Array(repeating: Entry(hash: 0, slot: -1), count: size)
        mask = size - 1
        count = 0
        longestDistance = 0
    }

    private mutating func grow() {
        let old = entries
        entries = Array(repeating: Entry(hash: 0, slot: -1), count: old.count * 2)
        mask = entries.count - 1
        count = 0
        longestDistance = 0
        // Every flow must stay findable: no bound here (`longestDistance` records the result).
        for entry in old where entry.slot >= 0 { _ = insert(hash: entry.hash, slot: Int(entry.slot), bounded: false) }
    }
}

/// Elements in fixed-size chunks, reached through a manually grown table of chunk pointers:
/// growing never copies the elements (a doubling array would briefly hold two copies of
/// every flow), and access is in place with no bounds check (an Array of chunk pointers
/// cost a check and a buffer load on every access).
struct Chunked<Element> {
    static var chunkShift: Int { 12 }
    static var chunkSize: Int { 1 << chunkShift }
    private var table = UnsafeMutablePointer<UnsafeMutablePointer<Element>>.allocate(capacity: 16)
    private var tableCapacity = 16
    private var chunkCount = 0
    /// Elements stored.
    private(set) var count = 0

    @inline(__always)
    func pointer(_ index: Int) -> UnsafeMutablePointer<Element> {
        table[index >> Self.chunkShift] + (index & (Self.chunkSize - 1))
    }

    /// Stores an element at the end; returns its index.
    mutating func append(_ element: Element) -> Int {
        if count == chunkCount * Self.chunkSize {
            if chunkCount == tableCapacity {
                let larger = UnsafeMutablePointer<UnsafeMutablePointer<Element>>.allocate(capacity: tableCapacity * 2)
                larger.moveInitialize(from: table, count: chunkCount)
                table.deallocate()
                table = larger
                tableCapacity *= 2
            }
            (table + chunkCount).initialize(to: UnsafeMutablePointer<Element>.allocate(capacity: Self.chunkSize))
            chunkCount += 1
        }
        let index = count
        pointer(index).initialize(to: element)
        count += 1
        return index
    }

    /// Frees everything (the owner's deinit).
    func deallocate() {
        for index in 0..<chunkCount {
            let used = min(Self.chunkSize, count - index * Self.chunkSize)
            if used > 0 { table[index].deinitialize(count: used) }
            table[index].deallocate()
        }
        table.deallocate()
    }
}

/// The flow records, and their close facts out of line (`CloseSide` pairs, allocated at a
/// flow's first FIN or RST and reused when it leaves).
final class FlowStore: @unchecked Sendable {
    // Only the tracker that owns the store touches it, from one thread; dynamic exclusivity
    // checks on these properties were ~15% of the per-packet instructions.
    @exclusivity(unchecked) private var flows = Chunked<FlowState>()
    /// Close records: record `r` is the sides `2r` (client) and `2r + 1` (server); record 0
    /// is scratch, passed for flows that have none (nothing reads or writes it then); record 1
    /// (`demotedRecord`) is scratch for demoted flows, whose later segments may write there
    /// but whose close facts nothing reads again.
    @exclusivity(unchecked) private var closes = Chunked<CloseSide>()
    @exclusivity(unchecked) private var freeCloses: [UInt32] = []
    /// What the flows carried, each string once (SPEC §8); shared by every flow here.
    @exclusivity(unchecked) var hints = AppHintTable()

    /// `closeRecord` of a flow that is completely closed and already counted (`demote`).
    static let demotedRecord: UInt32 = 1

    init() {
        for _ in 0..<4 { _ = closes.append(CloseSide()) }
    }

    deinit {
        flows.deallocate()
        closes.deallocate()
    }

    /// Slots in use or freed (freed slots keep a flow with `id == 0`).
    var count: Int { flows.count }

    subscript(slot: Int) -> FlowState {
        @inline(__always) unsafeAddress { UnsafePointer(flows.pointer(slot)) }
        @inline(__always) unsafeMutableAddress { flows.pointer(slot) }
    }

    /// Feeds one segment to the flow in `slot`; a FIN or RST gives the flow its close record first.
    /// `closed`: the flow holds a close record and is completely closed (it may be demoted).
    @inline(__always)
    func process(_ segment: TCPSegment, at time: Nanoseconds, payload: UnsafeRawBufferPointer, slot: Int,
                 closed: inout Bool) -> SegmentPlacement {
        let flow = flows.pointer(slot)
        if segment.flags.rawValue & 0x05 != 0, flow.pointee.closeRecord == 0 {
            flow.pointee.closeRecord = newCloseRecord()
        }
        let placement = flow.pointee.process(segment, at: time, payload: payload,
                                             close: closes.pointer(Int(flow.pointee.closeRecord) &* 2), hints: &hints)
        // Only a flow with close facts can have just closed: one compare for every other segment.
        closed = flow.pointee.closeRecord > Self.demotedRecord && flow.pointee.isClosed
        return placement
    }

    private func newCloseRecord() -> UInt32 {
        if let record = freeCloses.popLast() {
            closes.pointer(Int(record) * 2).pointee = CloseSide()
            closes.pointer(Int(record) * 2 + 1).pointee = CloseSide()
            return record
        }
        let index = closes.append(CloseSide())
        _ = closes.append(CloseSide())
        return UInt32(index / 2)
    }

    /// The close facts of the flow in `slot` (all marks none when it has no record). Not for
    /// a demoted flow: its facts are gone (it reads as having none).
    func close(_ slot: Int) -> CloseRecord {
        let record = Int(self[slot].closeRecord)
        guard record > Self.demotedRecord else { return CloseRecord() }
        return CloseRecord(client: closes.pointer(record * 2).pointee, server: closes.pointer(record * 2 + 1).pointee)
    }

    /// The flow in `slot` leaves: its close record goes back for reuse.
    func releaseClose(_ slot: Int) {
        let record = self[slot].closeRecord
        if record > Self.demotedRecord { freeCloses.append(record) }
        self[slot].closeRecord = 0
    }

    /// The flow in `slot` is completely closed and counted: its close record goes back for
    /// reuse while the flow lingers (late segments still find it, and write only scratch).
    func demote(_ slot: Int) {
        releaseClose(slot)
        self[slot].closeRecord = Self.demotedRecord
    }

    /// Close records held by flows (the two scratch records and freed ones excluded).
    var closeRecordsInUse: Int { closes.count / 2 - 2 - freeCloses.count }

    /// The flow in `slot` was demoted: it is in the tally already and has no close facts.
    @inline(__always) func isDemoted(_ slot: Int) -> Bool { self[slot].closeRecord == Self.demotedRecord }

    /// Stores a flow in a new slot and returns the slot.
    func append(_ flow: FlowState) -> Int { flows.append(flow) }

    func report(_ slot: Int, end: FlowEnd, threshold: Nanoseconds, detail: Bool = true) -> FlowReport {
        self[slot].report(end: end, threshold: threshold, hints: hints, close: close(slot), detail: detail)
    }

    func outcome(_ slot: Int, end: Nanoseconds, threshold: Nanoseconds) -> FlowOutcome {
        self[slot].outcome(end: end, threshold: threshold, close: close(slot))
    }

    func holdsCloseWait(_ slot: Int) -> Bool { self[slot].holdsCloseWait(close(slot)) }
}
