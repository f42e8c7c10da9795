#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import FinscopeWire

/// finscope's one JSON writer: bytes into a raw buffer, flushed to a descriptor in 64 KiB
/// writes, or kept in memory (`render` for tests and small documents), or a spool that
/// moves to an unlinked temporary file past a small bound (`--json`'s flows).
///
/// A struct over a pointer to its state, so that copies share one buffer and the tracker's
/// finished handler can capture it: no class, no reference counting, no dynamic exclusivity
/// checks on the appends. Whoever makes one calls `close()` once; copies must not outlive it.
///
/// Keys are literal bytes (`StaticString`); commas come from one flag: `key` and `element`
/// write a comma unless they open their object or array.
public struct JSONWriter {
    struct State {
        var bytes: UnsafeMutablePointer<UInt8>
        var count: Int
        var capacity: Int
        /// Where full buffers go; -1 keeps everything in memory.
        var descriptor: Int32
        /// The next `key`/`element` is the first of its object or array.
        var first: Bool
        /// A write failed (a closed pipe, a full disk): later bytes are dropped.
        var failure: Int32
        /// In memory past this many bytes: move to an unlinked temporary file (a spool).
        var spillAt: Int
        var ownsDescriptor: Bool
    }

    let state: UnsafeMutablePointer<State>

    /// What one write(2) hands the kernel.
    public static let chunk = 65_536

    init(descriptor: Int32, capacity: Int, spillAt: Int = .max, ownsDescriptor: Bool = false) {
        state = .allocate(capacity: 1)
        state.initialize(to: State(bytes: .allocate(capacity: capacity), count: 0, capacity: capacity,
                                   descriptor: descriptor, first: true, failure: 0, spillAt: spillAt,
                                   ownsDescriptor: ownsDescriptor))
    }

    /// Collects the bytes in memory (`text`, `bytes`).
    public static func memory() -> JSONWriter { JSONWriter(descriptor: -1, capacity: 4_096) }

    /// Writes to `descriptor` in 64 KiB writes. Standard output's stdio buffer is flushed
    /// first, so that nothing printed before comes after.
    public static func descriptor(_ descriptor: Int32) -> JSONWriter {
        fflush(nil)
        return JSONWriter(descriptor: descriptor, capacity: chunk)
    }

    public static func standardOutput() -> JSONWriter { descriptor(1) }

    /// Up to `memoryBound` bytes in memory, then in an unlinked file under $TMPDIR (or /tmp);
    /// if no such file can be made, in memory. Read back with `append(contentsOf:)`.
    public static func spool(memoryBound: Int = 1 << 20) -> JSONWriter {
        JSONWriter(descriptor: -1, capacity: 16_384, spillAt: memoryBound)
    }

    /// Flushes, closes a spool's file and frees the buffer.
    public func close() {
        flush()
        if state.pointee.ownsDescriptor { closeDescriptor(state.pointee.descriptor) }
        state.pointee.bytes.deallocate()
        state.deallocate()
    }

    /// errno of the first failed write, 0 when none failed.
    public var failure: Int32 { state.pointee.failure }

    /// The bytes collected in memory (a memory writer), as text.
    public var text: String {
        String(decoding: UnsafeBufferPointer(start: state.pointee.bytes, count: state.pointee.count), as: UTF8.self)
    }

    // MARK: Buffer

    /// Room for `needed` more bytes at `count`.
    @inline(__always)
    func reserve(_ needed: Int) {
        if state.pointee.count &+ needed > state.pointee.capacity { makeRoom(needed) }
    }

    @inline(never)
    func makeRoom(_ needed: Int) {
        if state.pointee.descriptor < 0, state.pointee.count + needed > state.pointee.spillAt { spill() }
        if state.pointee.descriptor >= 0 { flush() }
        let wanted = state.pointee.count + needed
        guard wanted > state.pointee.capacity else { return }
        var capacity = state.pointee.capacity * 2
        while capacity < wanted { capacity *= 2 }
        let bytes = UnsafeMutablePointer<UInt8>.allocate(capacity: capacity)
        bytes.update(from: state.pointee.bytes, count: state.pointee.count)
        state.pointee.bytes.deallocate()
        state.pointee.bytes = bytes
        state.pointee.capacity = capacity
    }

    /// A spool past its memory bound: from now on in an unlinked temporary file.
    func spill() {
        state.pointee.spillAt = .max
        var directory = getenv("TMPDIR").map { String(cString: $0) } ?? ""
        if directory.isEmpty { directory = "/tmp" }
        var template = Array((directory + "/finscope-json-XXXXXX").utf8CString)
        let descriptor = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard descriptor >= 0 else { return }  // stays in memory
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        state.pointee.descriptor = descriptor
        state.pointee.ownsDescriptor = true
        if state.pointee.capacity < Self.chunk { makeRoom(Self.chunk - state.pointee.count) }
    }

    /// Hands the buffer to the descriptor (a memory writer keeps it). Retries interrupted and
    /// short writes; after a failure (EPIPE: the reader went away) the bytes are dropped,
    /// quietly, as stdio did.
    public func flush() {
        let descriptor = state.pointee.descriptor
        guard descriptor >= 0 else { return }
        var offset = 0
        let count = state.pointee.count
        while offset < count, state.pointee.failure == 0 {
            let written = write(descriptor, state.pointee.bytes + offset, count - offset)
            if written > 0 {
                offset += written
            } else if written < 0, errno == EINTR {
                continue
            } else {
                state.pointee.failure = written < 0 ? errno : EIO
            }
        }
        state.pointee.count = 0
    }

    /// Drops what is buffered and not yet written.
    public func discard() { state.pointee.count = 0 }

    @inline(__always)
    public func byte(_ value: UInt8) {
        reserve(1)
        state.pointee.bytes[state.pointee.count] = value
        state.pointee.count &+= 1
    }

    /// Bytes as they are.
    @inline(__always)
    public func raw(_ pointer: UnsafePointer<UInt8>, _ count: Int) {
        reserve(count)
        (state.pointee.bytes + state.pointee.count).update(from: pointer, count: count)
        state.pointee.count &+= count
    }

    @inline(__always)
    public func raw(_ literal: StaticString) {
        raw(literal.utf8Start, literal.utf8CodeUnitCount)
    }

    /// Text as it is, unescaped (NDJSON newlines, CSV rows).
    public func rawText(_ text: String) {
        var text = text
        text.withUTF8 { if let base = $0.baseAddress { raw(base, $0.count) } }
    }

    /// Everything `spool` holds, copied through; the spool stays open (close it after).
    public func append(contentsOf spool: JSONWriter) {
        let descriptor = spool.state.pointee.descriptor
        guard descriptor >= 0 else {
            raw(spool.state.pointee.bytes, spool.state.pointee.count)
            return
        }
        spool.flush()
        if spool.failure != 0 { state.pointee.failure = spool.failure }
        guard lseek(descriptor, 0, SEEK_SET) == 0 else { state.pointee.failure = errno; return }
        while true {
            reserve(Self.chunk)
            let got = read(descriptor, state.pointee.bytes + state.pointee.count, Self.chunk)
            if got > 0 {
                state.pointee.count += got
            } else if got < 0, errno == EINTR {
                continue
            } else {
                if got < 0 { state.pointee.failure = errno }
                return
            }
        }
    }

    // MARK: Structure

    @inline(__always)
    func separate() {
        if state.pointee.first { state.pointee.first = false } else { byte(UInt8(ascii: ",")) }
    }

    public func beginObject() {
        byte(UInt8(ascii: "{"))
        state.pointee.first = true
    }

    public func endObject() {
        byte(UInt8(ascii: "}"))
        state.pointee.first = false
    }

    public func beginArray() {
        byte(UInt8(ascii: "["))
        state.pointee.first = true
    }

    public func endArray() {
        byte(UInt8(ascii: "]"))
        state.pointee.first = false
    }

    /// The next element of an array.
    @inline(__always)
    public func element() { separate() }

    /// `"key":`, after a comma unless it is the object's first. Keys are plain ASCII.
    @inline(__always)
    public func key(_ key: StaticString) {
        separate()
        reserve(key.utf8CodeUnitCount + 3)
        let out = state.pointee.bytes + state.pointee.count
        out[0] = UInt8(ascii: "\"")
        (out + 1).update(from: key.utf8Start, count: key.utf8CodeUnitCount)
        out[key.utf8CodeUnitCount + 1] = UInt8(ascii: "\"")
        out[key.utf8CodeUnitCount + 2] = UInt8(ascii: ":")
        state.pointee.count &+= key.utf8CodeUnitCount + 3
    }

    /// Ends a line (NDJSON) and starts the next document.
    public func newline() {
        byte(UInt8(ascii: "\n"))
        state.pointee.first = true
    }

    // MARK: Values

    public func null() { raw("null") }

    public func bool(_ value: Bool) { if value { raw("true") } else { raw("false") } }

    /// Decimal digits, "-" first when negative (Int.min included).
    public func number(_ value: Int) {
        reserve(20)
        var out = state.pointee.bytes + state.pointee.count
        if value < 0 {
            out[0] = UInt8(ascii: "-")
            out += 1
            state.pointee.count &+= 1
        }
        state.pointee.count &+= Self.digits(UInt64(value.magnitude), into: out, minimum: 1)
    }

    public func optionalNumber(_ value: Int?) {
        if let value { number(value) } else { null() }
    }

    /// "00" to "99": two digits per division.
    static var digitPairs: StaticString {
        """
        00010203040506070809101112131415161718192021222324252627282930313233343536373839\
        40414243444546474849505152535455565758596061626364656667686970717273747576777879\
        8081828384858687888990919293949596979899
        """
    }

    /// `value` in decimal at `out`, zero-padded to `minimum` digits; returns the digit count.
    @inline(__always)
    static func digits(_ value: UInt64, into out: UnsafeMutablePointer<UInt8>, minimum: Int) -> Int {
        var length = 1
        var probe = value
        while probe >= 100 { probe /= 100; length += 2 }
        if probe >= 10 { length += 1 }
        if length < minimum { length = minimum }
        let pairs = digitPairs.utf8Start
        var value = value
        var index = length
        while value >= 100 {
            let pair = Int(value % 100) &* 2
            value /= 100
            index -= 2
            out[index] = pairs[pair]
            out[index + 1] = pairs[pair + 1]
        }
        if value >= 10 {
            let pair = Int(value) &* 2
            index -= 2
            out[index] = pairs[pair]
            out[index + 1] = pairs[pair + 1]
        } else {
            index -= 1
            out[index] = UInt8(truncatingIfNeeded: value) &+ UInt8(ascii: "0")
        }
        while index > 0 {
            index -= 1
            out[index] = UInt8(ascii: "0")
        }
        return length
    }

    /// Seconds with exactly six decimals, truncated toward zero from nanoseconds, as
    /// `secondsText` writes them ("1700000000.123456", "-0.000001"); null when absent.
    public func time(_ value: Nanoseconds?) {
        guard let value else { return null() }
        reserve(28)
        var out = state.pointee.bytes + state.pointee.count
        var length = 0
        if value < 0 {
            out[0] = UInt8(ascii: "-")
            out += 1
            length = 1
        }
        let micros = UInt64(value.magnitude) / 1_000
        let whole = Self.digits(micros / 1_000_000, into: out, minimum: 1)
        out[whole] = UInt8(ascii: ".")
        length += whole + 1 + Self.digits(micros % 1_000_000, into: out + whole + 1, minimum: 6)
        state.pointee.count &+= length
    }

    /// A JSON string: quote, backslash, \n \r \t escaped, other bytes below 0x20 as \u00xx
    /// (lowercase hex); everything else, non-ASCII UTF-8 included, as it is.
    public func string(_ value: String) {
        var value = value
        value.withUTF8 { escaped($0) }
    }

    public func string(_ value: StaticString) {
        escaped(UnsafeBufferPointer(start: value.utf8Start, count: value.utf8CodeUnitCount))
    }

    public func optionalString(_ value: String?) {
        if let value { string(value) } else { null() }
    }

    func escaped(_ text: UnsafeBufferPointer<UInt8>) {
        // Most strings need no escape: copied as they are scanned.
        let length = text.count
        reserve(length + 2)
        let out = state.pointee.bytes + state.pointee.count
        out[0] = UInt8(ascii: "\"")
        var index = 0
        if let base = text.baseAddress {
            while index < length {
                let byte = base[index]
                if byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") { break }
                out[index + 1] = byte
                index += 1
            }
        }
        if index == length {
            out[length + 1] = UInt8(ascii: "\"")
            state.pointee.count &+= length + 2
            return
        }
        state.pointee.count &+= index + 1
        escapedRest(UnsafeBufferPointer(rebasing: text[index...]))
    }

    /// From the first byte that needs an escape, with the closing quote.
    @inline(never)
    func escapedRest(_ text: UnsafeBufferPointer<UInt8>) {
        reserve(text.count + 8)
        var out = state.pointee.bytes + state.pointee.count
        var room = state.pointee.capacity - state.pointee.count
        var used = 0
        for byte in text {
            if byte >= 0x20, byte != UInt8(ascii: "\""), byte != UInt8(ascii: "\\") {
                if used + 2 > room {
                    state.pointee.count &+= used
                    reserve(text.count + 8)
                    out = state.pointee.bytes + state.pointee.count
                    room = state.pointee.capacity - state.pointee.count
                    used = 0
                }
                out[used] = byte
                used += 1
                continue
            }
            if used + 7 > room {
                state.pointee.count &+= used
                reserve(text.count + 8)
                out = state.pointee.bytes + state.pointee.count
                room = state.pointee.capacity - state.pointee.count
                used = 0
            }
            out[used] = UInt8(ascii: "\\")
            switch byte {
            case UInt8(ascii: "\""): out[used + 1] = UInt8(ascii: "\""); used += 2
            case UInt8(ascii: "\\"): out[used + 1] = UInt8(ascii: "\\"); used += 2
            case 0x0A: out[used + 1] = UInt8(ascii: "n"); used += 2
            case 0x0D: out[used + 1] = UInt8(ascii: "r"); used += 2
            case 0x09: out[used + 1] = UInt8(ascii: "t"); used += 2
            default:
                let hex: StaticString = "0123456789abcdef"
                out[used + 1] = UInt8(ascii: "u")
                out[used + 2] = UInt8(ascii: "0")
                out[used + 3] = UInt8(ascii: "0")
                out[used + 4] = hex.utf8Start[Int(byte >> 4)]
                out[used + 5] = hex.utf8Start[Int(byte & 0x0F)]
                used += 6
            }
        }
        if used + 1 > room {
            state.pointee.count &+= used
            reserve(1)
            out = state.pointee.bytes + state.pointee.count
            used = 0
        }
        out[used] = UInt8(ascii: "\"")
        state.pointee.count &+= used + 1
    }

    /// An address as a string: IPv4 dotted quad written digit by digit; IPv6 in its
    /// compressed form (`IPAddress.description`).
    public func ip(_ address: IPAddress, quoted: Bool = true) {
        guard !address.isIPv6 else { return quoted ? string(address.description) : rawText(address.description) }
        reserve(17)
        let out = state.pointee.bytes + state.pointee.count
        out[0] = UInt8(ascii: "\"")
        var length = quoted ? 1 : 0
        let value = UInt64(truncatingIfNeeded: address.low)
        var shift: UInt64 = 24
        while true {
            length += Self.digits(value >> shift & 0xff, into: out + length, minimum: 1)
            if shift == 0 { break }
            out[length] = UInt8(ascii: ".")
            length += 1
            shift -= 8
        }
        if quoted {
            out[length] = UInt8(ascii: "\"")
            length += 1
        }
        state.pointee.count &+= length
    }
}

/// close(2), under a name the writer's own `close()` does not hide.
private func closeDescriptor(_ descriptor: Int32) { _ = close(descriptor) }

// Fields: a key and its value in one call.
extension JSONWriter {
    @inline(__always) public func field(_ name: StaticString, _ value: Int) { key(name); number(value) }
    @inline(__always) public func field(_ name: StaticString, _ value: Int?) { key(name); optionalNumber(value) }
    @inline(__always) public func field(_ name: StaticString, _ value: String) { key(name); string(value) }
    @inline(__always) public func field(_ name: StaticString, _ value: String?) { key(name); optionalString(value) }
    @inline(__always) public func field(_ name: StaticString, _ value: Bool) { key(name); bool(value) }
    @inline(__always) public func timeField(_ name: StaticString, _ value: Nanoseconds?) { key(name); time(value) }
}
