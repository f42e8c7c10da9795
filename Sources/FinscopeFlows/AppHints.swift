import FinscopeWire

/// What a connection carried (SPEC §8), as the flow table keeps it: per flow 8 bytes
/// (`AppFacts`), and the strings once, in a table shared by every flow (`AppHintTable`).
/// Only the first payload segment of each direction is parsed, plus the first bytes of
/// each later client segment (the request count), so the per-packet path stays cheap and
/// allocates nothing once a string is known.
struct AppFacts {
    /// The interned record (0: nothing recognised).
    var record: UInt32 = 0
    /// The first response's HTTP status (0: none captured).
    var status: UInt16 = 0
    /// Client segments whose payload began a request (saturating).
    var requests: UInt16 = 0
    private var bits: UInt8 = 0

    private enum Bit {
        static let clientPayloadSeen: UInt8 = 1 << 0
        static let serverPayloadSeen: UInt8 = 1 << 1
        static let http: UInt8 = 1 << 2
        /// The client's first payload segment was cut by the snapshot length.
        static let clientPayloadCut: UInt8 = 1 << 3
    }

    var clientPayloadCut: Bool { bits & Bit.clientPayloadCut != 0 }

    /// One payload-carrying segment from `sender`, with its captured payload bytes.
    @inline(__always)
    mutating func note(_ payload: UnsafeRawBufferPointer, payloadLength: Int, sender: Role, table: inout AppHintTable) {
        if sender == .client {
            if bits & Bit.clientPayloadSeen == 0 {
                bits |= Bit.clientPayloadSeen
                if payload.count < payloadLength { bits |= Bit.clientPayloadCut }
                firstClientPayload(payload, payloadLength: payloadLength, table: &table)
            } else if bits & Bit.http != 0, requests < .max, HTTPRequestStart.begins(payload) {
                requests += 1
            }
        } else if bits & Bit.serverPayloadSeen == 0 {
            bits |= Bit.serverPayloadSeen
            if bits & Bit.http != 0 || bits & Bit.clientPayloadSeen == 0 {
                status = HTTPStatusLine.parse(payload) ?? 0
            }
        }
    }

    private mutating func firstClientPayload(_ payload: UnsafeRawBufferPointer, payloadLength: Int,
                                             table: inout AppHintTable) {
        if let request = HTTPRequestStart.parse(payload, payloadLength: payloadLength) {
            bits |= Bit.http
            requests = 1
            record = table.record(AppRecord(
                kind: .http,
                first: table.intern(payload, request.method),
                second: request.path.map { table.intern(payload, $0) } ?? AppHintTable.unknown,
                host: request.host.map { table.intern(payload, $0) } ?? AppHintTable.unknown,
                userAgent: request.userAgent.map { table.intern(payload, $0) } ?? AppHintTable.unknown))
        } else if let hello = TLSClientHello.parse(payload, payloadLength: payloadLength) {
            record = table.record(AppRecord(
                kind: .tls,
                first: hello.sni.map { table.intern(payload, $0) } ?? AppHintTable.unknown,
                second: hello.alpn.map { table.intern(payload, names: $0) } ?? AppHintTable.unknown,
                host: AppHintTable.unknown, userAgent: AppHintTable.unknown))
            status = 0
        }
    }
}

/// An interned record: the protocol and string ids (0: not captured or absent).
struct AppRecord: Hashable {
    enum Kind: UInt8 { case none = 0, http, tls }
    var kind: Kind
    /// HTTP: the method; TLS: the SNI.
    var first: UInt32
    /// HTTP: the path (query cut off); TLS: the ALPN names, NUL-separated.
    var second: UInt32
    var host: UInt32
    var userAgent: UInt32
}

/// The strings and records of every flow's application hints, each stored once.
///
/// Bounded: crafted traffic with a new User-Agent per connection must not grow memory
/// without end, so past `maximumBytes` of strings or `maximumRecords` records a new one is
/// not kept (the field reads as not captured, and `dropped` counts it). Lookups hash with
/// the standard library's `Hasher`, seeded per process, so colliding strings cannot be
/// chosen in advance; probe chains stay short at ≤ 50 % load.
struct AppHintTable {
    static let unknown: UInt32 = 0
    static let maximumBytes = 16 << 20
    static let maximumRecords = 1 << 20

    private var arena: [UInt8] = []
    /// (offset, length) into `arena`; id 0 is the empty "unknown".
    private var strings: [(offset: UInt32, length: UInt32)] = [(0, 0)]
    private var stringSlots = [UInt32](repeating: 0, count: 64)
    private var records: [AppRecord] = [AppRecord(kind: .none, first: 0, second: 0, host: 0, userAgent: 0)]
    private var recordIDs: [AppRecord: UInt32] = [:]
    private(set) var dropped = 0

    /// Bytes held, for the per-flow memory figure.
    var memoryBytes: Int {
        arena.capacity + strings.capacity * 8 + stringSlots.capacity * 4 + records.capacity * 17 + recordIDs.capacity * 40
    }

    /// The id of the bytes `range` of `buffer`.
    mutating func intern(_ buffer: UnsafeRawBufferPointer, _ range: Range<Int>) -> UInt32 {
        intern(UnsafeRawBufferPointer(rebasing: buffer[range]))
    }

    /// The id of ALPN names joined by NUL (ALPN names are short; at most four are kept).
    mutating func intern(_ buffer: UnsafeRawBufferPointer, names: ALPNNames) -> UInt32 {
        let total = names.reduce(0) { $0 + $1.count + 1 }
        return withUnsafeTemporaryAllocation(byteCount: max(total, 1), alignment: 1) { joined in
            var at = 0
            for (n, name) in names.enumerated() {
                if n > 0 {
                    joined[at] = 0
                    at += 1
                }
                for index in name {
                    joined[at] = buffer[index]
                    at += 1
                }
            }
            return intern(UnsafeRawBufferPointer(rebasing: joined[0..<at]))
        }
    }

    mutating func intern(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var hasher = Hasher()
        hasher.combine(bytes: bytes)
        let hash = hasher.finalize()
        let mask = stringSlots.count - 1
        var position = hash & mask
        while true {
            let id = stringSlots[position]
            if id == 0 { break }
            if matches(id, bytes) { return id }
            position = (position + 1) & mask
        }
        guard arena.count + bytes.count <= Self.maximumBytes, strings.count < Int(UInt32.max) else {
            dropped += 1
            return Self.unknown
        }
        let id = UInt32(strings.count)
        strings.append((UInt32(arena.count), UInt32(bytes.count)))
        arena.append(contentsOf: bytes)
        stringSlots[position] = id
        if strings.count * 2 > stringSlots.count { growStrings() }
        return id
    }

    private func matches(_ id: UInt32, _ bytes: UnsafeRawBufferPointer) -> Bool {
        let entry = strings[Int(id)]
        guard Int(entry.length) == bytes.count else { return false }
        return arena.withUnsafeBytes { stored in
            bytes.count == 0 || memcmp(stored.baseAddress! + Int(entry.offset), bytes.baseAddress!, bytes.count) == 0
        }
    }

    private mutating func growStrings() {
        stringSlots = [UInt32](repeating: 0, count: stringSlots.count * 2)
        let mask = stringSlots.count - 1
        arena.withUnsafeBytes { stored in
            for id in 1..<strings.count {
                var hasher = Hasher()
                let entry = strings[id]
                hasher.combine(bytes: UnsafeRawBufferPointer(rebasing: stored[Int(entry.offset)..<Int(entry.offset + entry.length)]))
                var position = hasher.finalize() & mask
                while stringSlots[position] != 0 { position = (position + 1) & mask }
                stringSlots[position] = UInt32(id)
            }
        }
    }

    mutating func record(_ record: AppRecord) -> UInt32 {
        if let id = recordIDs[record] { return id }
        guard records.count < Self.maximumRecords else {
            dropped += 1
            return Self.unknown
        }
        let id = UInt32(records.count)
        records.append(record)
        recordIDs[record] = id
        return id
    }

    func string(_ id: UInt32) -> String? {
        guard id != Self.unknown else { return nil }
        let entry = strings[Int(id)]
        return String(decoding: arena[Int(entry.offset)..<Int(entry.offset + entry.length)], as: UTF8.self)
    }

    /// What a flow carried, for its report.
    func hint(_ facts: AppFacts) -> AppHint? {
        guard facts.record != Self.unknown else { return nil }
        let record = records[Int(facts.record)]
        switch record.kind {
        case .none:
            return nil
        case .http:
            let request = string(record.second).flatMap { path in string(record.first).map { "\($0) \(path)" } }
            return AppHint(protocol: .http, request: request, host: string(record.host),
                           userAgent: string(record.userAgent), status: facts.status == 0 ? nil : Int(facts.status),
                           requests: Int(facts.requests))
        case .tls:
            let alpn = string(record.second).map { $0.split(separator: "\0", omittingEmptySubsequences: false).map(String.init) }
            return AppHint(protocol: .tls, sni: string(record.first), alpn: alpn)
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
