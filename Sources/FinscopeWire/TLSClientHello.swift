// The TLS ClientHello (RFC 8446 §4.1.2, RFC 5246 §7.4.1.2) at the start of a client's
// first payload: its server name (RFC 6066 §3) and ALPN protocol names (RFC 7301), for
// SPEC §8. A decoder over the captured payload bytes of ONE TCP segment; it allocates
// nothing and returns byte ranges into that buffer.
//
// Recognised: a handshake record (content type 22, version 3.0–3.4) whose first
// handshake message is a ClientHello (type 1, legacy version 3.x) with a sane
// session id (≤ 32 bytes) and cipher-suite list (even length, ≥ 2 bytes), as far as the
// captured bytes reach those fields. Every length is checked against both the
// enclosing structure's declared end and the end of the captured bytes
// (`min(bytes.count, payloadLength)`); a structure contradicting its enclosing one
// (an extension longer than the extension block, a name longer than its list) is not a
// ClientHello: nil.
//
// Only the first TLS record is read: a ClientHello that spans TCP segments (large key
// shares) or records is parsed as far as this segment's bytes and the first record go;
// a field beyond them is nil, never guessed. `extensionsComplete` tells absent (true:
// every extension was walked, the field is not there) from not captured (false).

/// Up to `capacity` ALPN protocol names, in the order the client offered them, GREASE
/// names left out. A fixed-size value: no allocation.
public struct ALPNNames: Sendable, Equatable, RandomAccessCollection {
    public static let capacity = 4
    private var storage: (Range<Int>, Range<Int>, Range<Int>, Range<Int>) = (0..<0, 0..<0, 0..<0, 0..<0)
    public private(set) var count = 0
    /// Names offered beyond `capacity` (not reported).
    public private(set) var omitted = 0

    public init() {}

    public var startIndex: Int { 0 }
    public var endIndex: Int { count }

    public subscript(position: Int) -> Range<Int> {
        precondition(position >= 0 && position < count, "ALPN index out of range")
        switch position {
        case 0: return storage.0
        case 1: return storage.1
        case 2: return storage.2
        default: return storage.3
        }
    }

    public mutating func append(_ name: Range<Int>) {
        switch count {
        case 0: storage.0 = name
        case 1: storage.1 = name
        case 2: storage.2 = name
        case 3: storage.3 = name
        default:
            omitted += 1
            return
        }
        count += 1
    }

    public static func == (a: ALPNNames, b: ALPNNames) -> Bool {
        a.omitted == b.omitted && a.elementsEqual(b)
    }
}

public struct TLSClientHello: Sendable, Equatable {
    /// The record layer's version (0x0301 for most clients, TLS 1.3 included).
    public var recordVersion: UInt16
    /// The ClientHello's legacy_version; nil when not captured.
    public var clientVersion: UInt16?
    /// The first host_name of the server_name extension; nil when absent or not captured
    /// (see `extensionsComplete`), or when the name is empty, longer than 255 bytes or
    /// not printable ASCII.
    public var sni: Range<Int>?
    /// The application_layer_protocol_negotiation names; nil when the extension is absent
    /// or its list was not captured whole (a partial list is never reported).
    public var alpn: ALPNNames?
    /// Every extension was captured and walked: a nil `sni` / `alpn` is absent.
    public var extensionsComplete: Bool

    public init(recordVersion: UInt16, clientVersion: UInt16?, sni: Range<Int>?, alpn: ALPNNames?,
                extensionsComplete: Bool) {
        self.recordVersion = recordVersion
        self.clientVersion = clientVersion
        self.sni = sni
        self.alpn = alpn
        self.extensionsComplete = extensionsComplete
    }

    enum Offset {
        static let recordHeader = 5          // type, version, length
        static let handshakeHeader = 4       // type, 24-bit length
        static let random = 32
    }
    static let handshakeContentType: UInt8 = 22
    static let clientHelloType: UInt8 = 1
    static let serverNameExtension: UInt16 = 0
    static let alpnExtension: UInt16 = 16

    /// RFC 8701 GREASE: 0x0A0A, 0x1A1A, …, 0xFAFA (extension types, and the two-byte
    /// ALPN identifiers {0x?A, 0x?A} of RFC 8701 §2).
    @inline(__always)
    public static func isGREASE(_ value: UInt16) -> Bool {
        value & 0x0f0f == 0x0a0a && value >> 8 == value & 0xff
    }

    public static func parse(_ bytes: UnsafeRawBufferPointer, payloadLength: Int) -> TLSClientHello? {
        let captured = min(bytes.count, max(payloadLength, 0))
        // Record header: the type and version decide recognition, so they must be there.
        guard captured >= Offset.recordHeader,
              bytes.u8(0) == handshakeContentType, bytes.u8(1) == 3, bytes.u8(2) <= 4 else { return nil }
        let recordLength = Int(bytes.u16(3))
        guard recordLength >= Offset.handshakeHeader, recordLength <= 16384 + 2048 else { return nil }
        var hello = TLSClientHello(recordVersion: bytes.u16(1), clientVersion: nil, sni: nil, alpn: nil,
                                   extensionsComplete: false)
        // The first record's content, as far as it was captured.
        let end = min(captured, Offset.recordHeader + recordLength)
        var at = Offset.recordHeader
        guard at < end, bytes.u8(at) == clientHelloType else { return nil }
        guard at + Offset.handshakeHeader <= end else { return hello }
        let bodyLength = Int(bytes.u8(at + 1)) << 16 | Int(bytes.u16(at + 2))
        // version, random, session id length, one cipher suite, one compression method
        guard bodyLength >= 2 + Offset.random + 1 + 4 + 2 else { return nil }
        at += Offset.handshakeHeader
        // The body may continue in a later record or segment; read only what is here.
        let bodyEnd = at + bodyLength
        let limit = min(end, bodyEnd)
        /// Whether the next `count` bytes are there: declared beyond the body is
        /// malformed, declared but not captured is truncated.
        func available(_ count: Int) -> Bool? {
            if at + count > bodyEnd { return nil }
            return at + count <= limit
        }

        // legacy_version
        guard let versionThere = available(2) else { return nil }
        guard versionThere else { return hello }
        guard bytes.u8(at) == 3 else { return nil }
        hello.clientVersion = bytes.u16(at)
        at += 2 + Offset.random
        // legacy_session_id <0..32>
        guard let sessionThere = available(1) else { return nil }
        guard sessionThere else { return hello }
        let sessionLength = Int(bytes.u8(at))
        guard sessionLength <= 32 else { return nil }
        at += 1 + sessionLength
        // cipher_suites <2..2^16-2>
        guard let suitesThere = available(2) else { return nil }
        guard suitesThere else { return hello }
        let suitesLength = Int(bytes.u16(at))
        guard suitesLength >= 2, suitesLength % 2 == 0 else { return nil }
        at += 2 + suitesLength
        // legacy_compression_methods <1..2^8-1>
        guard let compressionThere = available(1) else { return nil }
        guard compressionThere else { return hello }
        let compressionLength = Int(bytes.u8(at))
        guard compressionLength >= 1 else { return nil }
        at += 1 + compressionLength
        // extensions <8..2^16-1>, absent in an old ClientHello that ends here
        if at == bodyEnd {
            hello.extensionsComplete = at <= limit
            return hello
        }
        guard let extensionsThere = available(2) else { return nil }
        guard extensionsThere else { return hello }
        let extensionsEnd = at + 2 + Int(bytes.u16(at))
        guard extensionsEnd <= bodyEnd else { return nil }
        at += 2
        while at < extensionsEnd {
            guard at + 4 <= extensionsEnd else { return nil }   // a stray byte or three
            guard at + 4 <= limit else { return hello }
            let type = bytes.u16(at)
            let dataEnd = at + 4 + Int(bytes.u16(at + 2))
            guard dataEnd <= extensionsEnd else { return nil }
            at += 4
            if dataEnd > limit {
                return hello                           // this extension was not captured whole
            }
            if isGREASE(type) {
                // reserved, meaningless: skip
            } else if type == serverNameExtension, hello.sni == nil {
                guard let name = serverName(bytes, at..<dataEnd) else { return nil }
                hello.sni = name.isEmpty ? nil : name
            } else if type == alpnExtension, hello.alpn == nil {
                guard let names = protocolNames(bytes, at..<dataEnd) else { return nil }
                hello.alpn = names
            }
            at = dataEnd
        }
        hello.extensionsComplete = true
        return hello
    }

    /// ServerNameList: the first host_name entry (type 0); an empty range when the list
    /// holds none or the name is not a printable host name; nil when malformed.
    static func serverName(_ bytes: UnsafeRawBufferPointer, _ data: Range<Int>) -> Range<Int>? {
        guard data.count >= 2 else { return nil }
        let listEnd = data.lowerBound + 2 + Int(bytes.u16(data.lowerBound))
        guard listEnd <= data.upperBound else { return nil }
        var at = data.lowerBound + 2
        while at < listEnd {
            guard at + 3 <= listEnd else { return nil }
            let nameType = bytes.u8(at)
            let nameEnd = at + 3 + Int(bytes.u16(at + 1))
            guard nameEnd <= listEnd else { return nil }
            if nameType == 0 {
                let name = at + 3..<nameEnd
                guard name.count >= 1, name.count <= 255 else { return at..<at }
                for i in name where !isVisible(bytes.u8(i)) { return at..<at }
                return name
            }
            at = nameEnd
        }
        return data.lowerBound..<data.lowerBound
    }

    /// ProtocolNameList <2..2^16-1> of ProtocolName <1..2^8-1>; nil when malformed.
    static func protocolNames(_ bytes: UnsafeRawBufferPointer, _ data: Range<Int>) -> ALPNNames? {
        guard data.count >= 2 else { return nil }
        let listEnd = data.lowerBound + 2 + Int(bytes.u16(data.lowerBound))
        guard listEnd <= data.upperBound else { return nil }
        var names = ALPNNames()
        var at = data.lowerBound + 2
        while at < listEnd {
            let nameEnd = at + 1 + Int(bytes.u8(at))
            guard nameEnd > at + 1, nameEnd <= listEnd else { return nil }
            let name = at + 1..<nameEnd
            if !(name.count == 2 && isGREASE(bytes.u16(name.lowerBound))) { names.append(name) }
            at = nameEnd
        }
        return names
    }
}
