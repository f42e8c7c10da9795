// HTTP/1.x recognised by content, not by port (SPEC §8): the start of a request in a
// client's segment and the status line at the start of a server's. Decoders over the
// captured payload bytes of ONE TCP segment; they allocate nothing and return byte
// ranges into that buffer (the caller interns the strings it keeps).
//
// What is nil, and why:
// - Everything a decoder reports lies inside `min(bytes.count, payloadLength)`: the
//   bytes of this segment that were captured. What lies beyond (cut by the snapshot
//   length, or in the next segment) is nil, never guessed. No reassembly across
//   segments: a request line split over two segments is judged on the first part.
// - A request is recognised when the captured bytes are a whole request line
//   (`token SP target SP HTTP/1.d CRLF`, any RFC 9110 token of at most 16 chars as the
//   method), or, for the nine registered methods of RFC 9110/5789 only, a prefix of one
//   that reaches at least the first byte of the target and contradicts nothing
//   (the rest of the line was cut). An unknown token needs the whole line: "hello world"
//   in a body segment is not a request.
// - `path` is the target up to '?' (the query string is cut off) and is nil when the
//   captured bytes end before the SP or '?' that ends it.
// - A header field (Host, User-Agent) is reported only when its whole line up to CRLF
//   was captured; its value is trimmed of OWS (SP / HTAB). `headComplete` is true when
//   the blank line ending the head was captured: then a nil field is *absent* from the
//   request; when false, a nil field is *unknown* (not captured).

/// RFC 9110 §5.6.2 tchar.
@inline(__always)
func isTokenChar(_ c: UInt8) -> Bool {
    switch c {
    case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "z"),
         UInt8(ascii: "A")...UInt8(ascii: "Z"):
        return true
    case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
         UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
         UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
        return true
    default:
        return false
    }
}

/// Visible ASCII (VCHAR), the bytes a request-target is made of.
@inline(__always)
func isVisible(_ c: UInt8) -> Bool { c >= 0x21 && c <= 0x7e }

private let cr = UInt8(ascii: "\r"), lf = UInt8(ascii: "\n"), sp = UInt8(ascii: " "), htab: UInt8 = 0x09

/// The start of an HTTP/1.x request in one segment's payload.
public struct HTTPRequestStart: Sendable, Equatable {
    /// The longest method token accepted.
    public static let maximumMethodLength = 16

    /// The method token (always captured whole).
    public var method: Range<Int>
    /// The request-target with the query string cut off at '?'; nil when the captured
    /// bytes end before the target does.
    public var path: Range<Int>?
    /// The minor version digit of `HTTP/1.d`; nil when not captured.
    public var minorVersion: UInt8?
    /// The first `Host` header's value, OWS-trimmed; nil when absent or not captured.
    public var host: Range<Int>?
    /// The first `User-Agent` header's value, OWS-trimmed; nil when absent or not captured.
    public var userAgent: Range<Int>?
    /// The blank line ending the head was captured: nil header fields are absent.
    public var headComplete: Bool
    /// The snapshot length cut this segment (`bytes.count < payloadLength`).
    public var snapshotCut: Bool

    public init(method: Range<Int>, path: Range<Int>?, minorVersion: UInt8?, host: Range<Int>?,
                userAgent: Range<Int>?, headComplete: Bool, snapshotCut: Bool) {
        self.method = method
        self.path = path
        self.minorVersion = minorVersion
        self.host = host
        self.userAgent = userAgent
        self.headComplete = headComplete
        self.snapshotCut = snapshotCut
    }

    /// Decodes the request line and the head's `Host` and `User-Agent` fields.
    /// `payloadLength` is the segment's real payload length (from the IP lengths).
    public static func parse(_ bytes: UnsafeRawBufferPointer, payloadLength: Int) -> HTTPRequestStart? {
        let end = min(bytes.count, max(payloadLength, 0))
        guard let line = requestLine(bytes, end: end) else { return nil }
        var start = HTTPRequestStart(method: line.method, path: line.path, minorVersion: line.minorVersion,
                                     host: nil, userAgent: nil, headComplete: false,
                                     snapshotCut: bytes.count < payloadLength)
        guard var at = line.headersStart else { return start }
        // Header lines: field-name ":" OWS value OWS CRLF, up to the blank line. A line
        // that is not a field line (obs-fold, bare LF, garbage) ends the walk.
        while at < end {
            if bytes.u8(at) == cr {
                if at + 1 < end, bytes.u8(at + 1) == lf { start.headComplete = true }
                return start
            }
            var colon = at
            while colon < end, isTokenChar(bytes.u8(colon)) { colon += 1 }
            guard colon < end else { return start }                        // name cut off
            guard colon > at, bytes.u8(colon) == UInt8(ascii: ":") else { return start } // not a field line
            var lineEnd = colon + 1
            while lineEnd < end, bytes.u8(lineEnd) != cr, bytes.u8(lineEnd) != lf { lineEnd += 1 }
            guard lineEnd + 1 < end, bytes.u8(lineEnd) == cr, bytes.u8(lineEnd + 1) == lf else {
                return start                                               // line cut off, or bare LF
            }
            let name = at..<colon
            if start.host == nil, equalsIgnoringCase(bytes, name, "host") {
                start.host = trimmed(bytes, colon + 1..<lineEnd)
            } else if start.userAgent == nil, equalsIgnoringCase(bytes, name, "user-agent") {
                start.userAgent = trimmed(bytes, colon + 1..<lineEnd)
            }
            at = lineEnd + 2
        }
        return start
    }

    /// Does this payload begin a request line (method token, SP, the start of a target;
    /// the same acceptance rule as `parse`)? Used to count the requests a client started
    /// on a connection: one per segment whose payload begins a request, so requests
    /// pipelined in one segment count once, and a request whose line starts mid-segment
    /// (after the previous request's body in the same segment) is not counted.
    public static func begins(_ bytes: UnsafeRawBufferPointer) -> Bool {
        requestLine(bytes, end: bytes.count) != nil
    }

    struct Line {
        var method: Range<Int>
        var path: Range<Int>?
        var minorVersion: UInt8?
        var headersStart: Int?
    }

    /// The request line within `bytes[0..<end]`, or nil when it is not one (or an
    /// unregistered method's line was not captured whole).
    static func requestLine(_ bytes: UnsafeRawBufferPointer, end: Int) -> Line? {
        var at = 0
        while at < end, at <= maximumMethodLength, isTokenChar(bytes.u8(at)) { at += 1 }
        guard at > 0, at <= maximumMethodLength, at < end, bytes.u8(at) == sp else { return nil }
        let method = 0..<at
        let known = isRegisteredMethod(bytes, method)
        let targetStart = at + 1
        guard targetStart < end, isVisible(bytes.u8(targetStart)) else { return nil }
        var line = Line(method: method)
        at = targetStart
        var query: Int?
        while at < end, isVisible(bytes.u8(at)) {
            if query == nil, bytes.u8(at) == UInt8(ascii: "?") { query = at }
            at += 1
        }
        if let query { line.path = targetStart..<query }
        guard at < end else { return known ? line : nil }          // target cut off
        guard bytes.u8(at) == sp else { return nil }                // a CTL or non-ASCII byte
        if line.path == nil { line.path = targetStart..<at }
        at += 1
        // "HTTP/1." digit CRLF, compared as far as it was captured.
        let version: StaticString = "HTTP/1."
        for i in 0..<version.utf8CodeUnitCount {
            guard at < end else { return known ? line : nil }
            guard bytes.u8(at) == version.utf8Start[i] else { return nil }
            at += 1
        }
        guard at < end else { return known ? line : nil }
        let digit = bytes.u8(at)
        guard digit >= UInt8(ascii: "0"), digit <= UInt8(ascii: "9") else { return nil }
        at += 1
        guard at < end else { return known ? line : nil }
        guard bytes.u8(at) == cr else { return nil }
        at += 1
        guard at < end else { return known ? line : nil }
        guard bytes.u8(at) == lf else { return nil }
        line.minorVersion = digit - UInt8(ascii: "0")
        line.headersStart = at + 1
        return line
    }

    /// The methods of RFC 9110 §9 and PATCH (RFC 5789), which may be recognised from a
    /// cut-off request line.
    static let registeredMethods: [StaticString] = ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT",
                                                    "OPTIONS", "TRACE", "PATCH"]

    static func isRegisteredMethod(_ bytes: UnsafeRawBufferPointer, _ method: Range<Int>) -> Bool {
        for name in registeredMethods where name.utf8CodeUnitCount == method.count {
            var equal = true
            for i in 0..<method.count where bytes.u8(method.lowerBound + i) != name.utf8Start[i] {
                equal = false
                break
            }
            if equal { return true }
        }
        return false
    }
}

/// The status code of `HTTP/1.d SP 3DIGIT` at the start of a server's payload.
public enum HTTPStatusLine {
    /// The status code (100–599), or nil when the bytes do not start a status line or
    /// the code was not captured whole. After the three digits, a captured next byte
    /// must be SP (reason phrase) or CR (empty reason). An interim 1xx status is
    /// returned like any other; which response counts is the caller's choice.
    public static func parse(_ bytes: UnsafeRawBufferPointer) -> UInt16? {
        let prefix: StaticString = "HTTP/1."
        let n = prefix.utf8CodeUnitCount
        guard bytes.count >= n + 5 else { return nil }              // "HTTP/1.1 200"
        for i in 0..<n where bytes.u8(i) != prefix.utf8Start[i] { return nil }
        let minor = bytes.u8(n)
        guard minor >= UInt8(ascii: "0"), minor <= UInt8(ascii: "9"), bytes.u8(n + 1) == sp else { return nil }
        var code: UInt16 = 0
        for i in n + 2..<n + 5 {
            let d = bytes.u8(i)
            guard d >= UInt8(ascii: "0"), d <= UInt8(ascii: "9") else { return nil }
            code = code * 10 + UInt16(d - UInt8(ascii: "0"))
        }
        guard (100...599).contains(code) else { return nil }
        if bytes.count > n + 5 {
            let next = bytes.u8(n + 5)
            guard next == sp || next == cr else { return nil }
        }
        return code
    }
}

/// Whether `bytes[range]` equals the lowercase ASCII `name`, ignoring ASCII case.
func equalsIgnoringCase(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, _ name: StaticString) -> Bool {
    guard range.count == name.utf8CodeUnitCount else { return false }
    for i in 0..<range.count {
        var c = bytes.u8(range.lowerBound + i)
        if c >= UInt8(ascii: "A"), c <= UInt8(ascii: "Z") { c |= 0x20 }
        if c != name.utf8Start[i] { return false }
    }
    return true
}

/// `range` without leading and trailing SP / HTAB.
func trimmed(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> Range<Int> {
    var low = range.lowerBound, high = range.upperBound
    while low < high, bytes.u8(low) == sp || bytes.u8(low) == htab { low += 1 }
    while high > low, bytes.u8(high - 1) == sp || bytes.u8(high - 1) == htab { high -= 1 }
    return low..<high
}
