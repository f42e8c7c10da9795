import Testing
@testable import FinscopeWire

/// Real ClientHellos, recorded with `tcpdump -i lo -s 0` in a private namespace against
/// `openssl s_server -accept 8443 -alpn h2,http/1.1` (OpenSSL 3.0.19); payloads from
/// `tshark -e tcp.payload`, names from `tshark -e tls.handshake.extensions_server_name
/// -e tls.handshake.extensions_alpn_str -e tls.handshake.extension.type`:
/// - opensslHello: `openssl s_client -servername api.finscope.test -alpn h2,http/1.1`
///   (341 bytes): api.finscope.test, h2,http/1.1; extensions 0,11,10,35,16,22,23,13,43,45,51
/// - pythonHello: Python 3.11 `ssl` (`set_alpn_protocols(["h2", "http/1.1"])`,
///   server_hostname="py.finscope.test"; 517 bytes with padding, extension 21)
/// - plainHello: `openssl s_client -noservername`, no -alpn: neither extension
/// - greaseHello: opensslHello rewritten (Python, lengths fixed) with a GREASE extension
///   0x0a0a (empty) first, 0xfafa (one byte) last, and the GREASE ALPN name {0x3a,0x3a}
///   before h2; tshark (via text2pcap) shows server_name api.finscope.test, alpn_str
///   "::,h2,http/1.1" and extension types 2570,0,…,64250. finscope leaves the GREASE
///   name out (RFC 8701 §2 reserves {0x?A,0x?A} ALPN identifiers).
enum TLSVectors {
    static let opensslHello = hexBytes("""
        16030101500100014c03033f59a0dbfe55f2620c6126097753a063c297bfbd9d3d59f2fce66865849c8f5e20ce165f77
        1d1a5d6d7e6a29491758782ec65c24033faf2f1d8ce93f8811002e48003e130213031301c02cc030009fcca9cca8ccaa
        c02bc02f009ec024c028006bc023c0270067c00ac0140039c009c0130033009d009c003d003c0035002f00ff010000c5
        0000001600140000116170692e66696e73636f70652e74657374000b000403000102000a00160014001d0017001e0019
        001801000101010201030104002300000010000e000c02683208687474702f312e310016000000170000000d002a0028
        040305030603080708080809080a080b080408050806040105010601030303010302040205020602002b000908030403
        0303020301002d00020101003300260024001d002096fce67c764806ab514166c8e407c7586fa8abce3055bd669404bb
        7c06caa657
        """)
    static let pythonHello = hexBytes("""
        1603010200010001fc03036e6264ade07bf0985dbdfe3c0cb4c13b68d7a846cc0202923e6251db03ce445f20c4b7ebdd
        2da3ead7ae67eec977f939c7d5428efd5518eeb3ee26241fce803f620024130213031301c02cc030c02bc02fcca9cca8
        c024c028c023c027009f009e006b006700ff0100018f00000015001300001070792e66696e73636f70652e7465737400
        0b000403000102000a00160014001d0017001e0019001801000101010201030104002300000010000e000c0268320868
        7474702f312e310016000000170000000d002a0028040305030603080708080809080a080b0804080508060401050106
        01030303010302040205020602002b00050403040303002d00020101003300260024001d00202d198f51ceffa726f7e9
        1afab8096d309cce33bd4290a3752908f6f15dc0320b001500cb00000000000000000000000000000000000000000000
        000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000
        000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000
        000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000
        00000000000000000000000000000000000000000000000000000000000000000000000000
        """)
    static let plainHello = hexBytes("""
        160301012401000120030344294458565341b6ff895052d8baa57dade7bb2680566f5528d3f76b13fe72bd208be0cf5b
        d2748971d2668bf688d33a11d4aed62677cac8207c6cf23889cf71c1003e130213031301c02cc030009fcca9cca8ccaa
        c02bc02f009ec024c028006bc023c0270067c00ac0140039c009c0130033009d009c003d003c0035002f00ff01000099
        000b000403000102000a00160014001d0017001e0019001801000101010201030104002300000016000000170000000d
        002a0028040305030603080708080809080a080b080408050806040105010601030303010302040205020602002b0009
        080304030303020301002d00020101003300260024001d00209dfea89bb287ba6a7bfcbbd5906d15d894e51db787a313
        4e5554796b0ca0de43
        """)
    static let greaseHello = hexBytes("""
        160301015c0100015803033f59a0dbfe55f2620c6126097753a063c297bfbd9d3d59f2fce66865849c8f5e20ce165f77
        1d1a5d6d7e6a29491758782ec65c24033faf2f1d8ce93f8811002e48003e130213031301c02cc030009fcca9cca8ccaa
        c02bc02f009ec024c028006bc023c0270067c00ac0140039c009c0130033009d009c003d003c0035002f00ff010000d1
        0a0a00000000001600140000116170692e66696e73636f70652e74657374000b000403000102000a00160014001d0017
        001e00190018010001010102010301040023000000100011000f023a3a02683208687474702f312e3100160000001700
        00000d002a0028040305030603080708080809080a080b08040805080604010501060103030301030204020502060200
        2b0009080304030303020301002d00020101003300260024001d002096fce67c764806ab514166c8e407c7586fa8abce
        3055bd669404bb7c06caa657fafa000100
        """)
}

@Suite("TLS ClientHello")
struct TLSClientHelloTests {
    static func names(_ bytes: [UInt8], _ alpn: ALPNNames?) -> [String]? {
        alpn.map { list in list.map { text(bytes, $0)! } }
    }

    /// Where the extension holding `needle` ends (the needle is its last bytes).
    static func end(of needle: [UInt8], in bytes: [UInt8]) -> Int {
        bytes.indices.first { bytes[$0...].starts(with: needle) }! + needle.count
    }

    @Test("openssl s_client: SNI and ALPN")
    func openssl() throws {
        let bytes = TLSVectors.opensslHello
        #expect(bytes.count == 341)
        let hello = try #require(parseHello(bytes))
        #expect(hello.recordVersion == 0x0301)
        #expect(hello.clientVersion == 0x0303)
        #expect(text(bytes, hello.sni) == "api.finscope.test")
        #expect(Self.names(bytes, hello.alpn) == ["h2", "http/1.1"])
        #expect(hello.alpn?.omitted == 0)
        #expect(hello.extensionsComplete)
    }

    @Test("Python ssl: SNI and ALPN, padding extension")
    func python() throws {
        let bytes = TLSVectors.pythonHello
        #expect(bytes.count == 517)
        let hello = try #require(parseHello(bytes))
        #expect(text(bytes, hello.sni) == "py.finscope.test")
        #expect(Self.names(bytes, hello.alpn) == ["h2", "http/1.1"])
        #expect(hello.extensionsComplete)
    }

    @Test("no SNI, no ALPN: absent, and known to be absent")
    func plain() throws {
        let hello = try #require(parseHello(TLSVectors.plainHello))
        #expect(hello.sni == nil)
        #expect(hello.alpn == nil)
        #expect(hello.extensionsComplete)
    }

    @Test("GREASE extension types are skipped, the GREASE ALPN name left out")
    func grease() throws {
        let bytes = TLSVectors.greaseHello
        let hello = try #require(parseHello(bytes))
        #expect(text(bytes, hello.sni) == "api.finscope.test")
        #expect(Self.names(bytes, hello.alpn) == ["h2", "http/1.1"])
        #expect(hello.extensionsComplete)
        for value: UInt16 in [0x0a0a, 0x1a1a, 0x2a2a, 0x7a7a, 0xaaaa, 0xfafa] { #expect(TLSClientHello.isGREASE(value)) }
        for value: UInt16 in [0x0a1a, 0x0a0b, 0x0000, 0x0010, 0xabab, 0x0b0b, 0x1a2a] { #expect(!TLSClientHello.isGREASE(value)) }
    }

    /// Cut at every byte, as a snapshot cut and as the end of the first segment of a
    /// ClientHello that spans segments: fields are whole or nil.
    @Test("truncated at every byte boundary", arguments: [false, true])
    func truncated(snapshotCut: Bool) {
        for (full, name) in [(TLSVectors.opensslHello, "api.finscope.test"), (TLSVectors.greaseHello, "api.finscope.test"),
                             (TLSVectors.pythonHello, "py.finscope.test")] {
            let sniEnd = Self.end(of: Array(name.utf8), in: full)
            let alpnEnd = Self.end(of: Array("\u{8}http/1.1".utf8), in: full)
            for k in 0...full.count {
                let part = Array(full[..<k])
                let hello = parseHello(part, payloadLength: snapshotCut ? full.count : k)
                guard k >= 6 else {                     // record header and handshake type
                    #expect(hello == nil, "\(k)")
                    continue
                }
                guard let hello else {
                    Issue.record("prefix \(k) of \(name) not recognised")
                    continue
                }
                #expect(hello.clientVersion == (k >= 11 ? 0x0303 : nil), "\(k)")
                #expect(text(part, hello.sni) == (k >= sniEnd ? name : nil), "\(name) prefix \(k)")
                #expect(Self.names(part, hello.alpn) == (k >= alpnEnd ? ["h2", "http/1.1"] : nil), "\(name) prefix \(k)")
                #expect(hello.extensionsComplete == (k == full.count), "\(name) prefix \(k)")
            }
        }
    }

    /// Patches one field of the real hello.
    static func patched(_ edit: (inout [UInt8]) -> Void) -> [UInt8] {
        var bytes = TLSVectors.opensslHello
        edit(&bytes)
        return bytes
    }

    @Test("contradictory lengths and wrong types are not a ClientHello")
    func malformed() {
        let hello = TLSVectors.opensslHello
        let sessionAt = 5 + 4 + 2 + 32
        let suitesAt = sessionAt + 1 + Int(hello[sessionAt])
        let sni = Self.end(of: Array("api.finscope.test".utf8), in: hello) - 17
        let cases: [(String, [UInt8])] = [
            ("application data record", Self.patched { $0[0] = 23 }),
            ("record version 2.x", Self.patched { $0[1] = 2 }),
            ("record version 3.5", Self.patched { $0[2] = 5 }),
            ("ServerHello", Self.patched { $0[5] = 2 }),
            ("legacy_version 2.0", Self.patched { $0[9] = 2 }),
            ("session id of 33", Self.patched { $0[sessionAt] = 33 }),
            ("odd cipher-suite length", Self.patched { $0[suitesAt + 1] |= 1 }),
            ("no cipher suites", Self.patched { $0[suitesAt] = 0; $0[suitesAt + 1] = 0 }),
            ("extensions longer than the body", Self.patched { $0[suitesAt + 2 + Int($0[suitesAt + 1]) + 2] = 0xff }),
            ("server name longer than its list", Self.patched { $0[sni - 1] = 0x40 }),
            ("handshake body of 3 bytes", Self.patched { $0[6] = 0; $0[7] = 0; $0[8] = 3 }),
            ("record of 3 bytes", Self.patched { $0[3] = 0; $0[4] = 3 }),
        ]
        for (label, bytes) in cases {
            #expect(parseHello(bytes) == nil, "\(label)")
        }
    }

    /// A hand-made ClientHello with the given extensions (type, data).
    static func hello(_ extensions: [(UInt16, [UInt8])]) -> [UInt8] {
        var ext: [UInt8] = []
        for (type, data) in extensions {
            ext += [UInt8(type >> 8), UInt8(type & 0xff), UInt8(data.count >> 8), UInt8(data.count & 0xff)] + data
        }
        let body: [UInt8] = [3, 3] + [UInt8](repeating: 7, count: 32) + [0] + [0, 2, 0x13, 0x01] + [1, 0]
            + [UInt8(ext.count >> 8), UInt8(ext.count & 0xff)] + ext
        let handshake: [UInt8] = [1, 0, UInt8(body.count >> 8), UInt8(body.count & 0xff)] + body
        return [22, 3, 1, UInt8(handshake.count >> 8), UInt8(handshake.count & 0xff)] + handshake
    }

    static func alpnData(_ names: [String]) -> [UInt8] {
        let list = names.flatMap { [UInt8($0.utf8.count)] + Array($0.utf8) }
        return [UInt8(list.count >> 8), UInt8(list.count & 0xff)] + list
    }

    static func sniData(_ entries: [(UInt8, String)]) -> [UInt8] {
        let list = entries.flatMap { [$0.0, UInt8($0.1.utf8.count >> 8), UInt8($0.1.utf8.count & 0xff)] + Array($0.1.utf8) }
        return [UInt8(list.count >> 8), UInt8(list.count & 0xff)] + list
    }

    @Test("at most four ALPN names, the rest counted")
    func manyNames() throws {
        let bytes = Self.hello([(16, Self.alpnData(["h3", "h2", "http/1.1", "spdy/3", "acme-tls/1", "imap"]))])
        let hello = try #require(parseHello(bytes))
        #expect(Self.names(bytes, hello.alpn) == ["h3", "h2", "http/1.1", "spdy/3"])
        #expect(hello.alpn?.omitted == 2)
    }

    @Test("server names: the first host_name; odd names are not reported")
    func serverNames() throws {
        let other = Self.hello([(0, Self.sniData([(1, "x"), (0, "b.test")]))])
        #expect(text(other, try #require(parseHello(other)).sni) == "b.test")
        let spaced = Self.hello([(0, Self.sniData([(0, "a b")]))])
        #expect(try #require(parseHello(spaced)).sni == nil)
        let empty = Self.hello([(0, Self.sniData([(0, "")]))])
        #expect(try #require(parseHello(empty)).sni == nil)
        let none = Self.hello([(0, [0, 0])])
        #expect(try #require(parseHello(none)).sni == nil)
        let zeroName = Self.hello([(16, [0, 3, 2, 0x68, 0x32] + [0])])   // trailing byte after the list: tolerated
        #expect(Self.names(zeroName, try #require(parseHello(zeroName)).alpn) == ["h2"])
        let emptyName = Self.hello([(16, [0, 1, 0])])
        #expect(parseHello(emptyName) == nil)
        let stray = Self.hello([]) + []
        #expect(try #require(parseHello(stray)).extensionsComplete)
    }

    @Test("a ClientHello without extensions (old clients)")
    func noExtensions() throws {
        let body: [UInt8] = [3, 1] + [UInt8](repeating: 1, count: 32) + [0] + [0, 2, 0, 0x2f] + [1, 0]
        let bytes: [UInt8] = [22, 3, 1, 0, UInt8(body.count + 4), 1, 0, 0, UInt8(body.count)] + body
        let hello = try #require(parseHello(bytes))
        #expect(hello.extensionsComplete && hello.sni == nil && hello.alpn == nil)
        #expect(hello.clientVersion == 0x0301)
    }

    @Test("random bytes: never a crash, never a ClientHello")
    func randomBytes() {
        var rng = SplitMix64(state: 0x7157)
        for _ in 0..<20000 {
            let count = Int.random(in: 0...400, using: &rng)
            let bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) }
            #expect(parseHello(bytes) == nil)
        }
    }

    @Test("damaged ClientHellos: never a crash, ranges inside the captured bytes")
    func mutations() {
        var rng = SplitMix64(state: 0xfeed)
        for original in [TLSVectors.opensslHello, TLSVectors.pythonHello, TLSVectors.greaseHello] {
            for _ in 0..<3000 {
                var bytes = original
                for _ in 0..<Int.random(in: 1...6, using: &rng) {
                    bytes[Int.random(in: 5..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                }
                let k = Int.random(in: 0...bytes.count, using: &rng)
                let part = Array(bytes[..<k])
                guard let hello = parseHello(part, payloadLength: bytes.count) else { continue }
                for range in [hello.sni].compactMap({ $0 }) + Array(hello.alpn ?? ALPNNames()) {
                    #expect(range.lowerBound >= 0 && range.upperBound <= k && !range.isEmpty)
                }
            }
        }
    }
}
