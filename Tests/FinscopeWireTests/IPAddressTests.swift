import Testing
@testable import FinscopeWire
import FinscopeTestSupport

@Suite("IPAddress text")
struct IPAddressTests {
    @Test("IPv4 round trips", arguments: ["0.0.0.0", "10.0.0.1", "192.168.255.254", "255.255.255.255", "127.0.0.1"])
    func ipv4RoundTrip(_ text: String) throws {
        let address = try #require(IPAddress(text))
        #expect(!address.isIPv6)
        #expect(address.description == text)
    }

    @Test("IPv4 value layout")
    func ipv4Value() throws {
        let address = try #require(IPAddress("10.1.2.3"))
        #expect(address == IPAddress(ipv4: 0x0a01_0203))
        #expect(address.high == 0 && address.low == 0x0a01_0203)
    }

    @Test("RFC 5952 canonical forms print as they are written", arguments: [
        "2001:db8::1",
        "::",
        "::1",
        "1::",
        "fe80::1:0:0:1",          // the longer (first) zero run is compressed
        "2001:db8::1:0:0:1",      // equal runs: the first one
        "2001:0:0:1::1",          // longest run chosen over an earlier shorter one
        "2001:db8:0:1:1:1:1:1",   // a single zero group is not compressed
        "1:0:1:0:1:0:1:0",
        "::3:4:5:6:7:8",          // leading run
        "1:2:3:4:5:6::",          // trailing run
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        "fd00::2",
        "::ffff:10.0.0.1",        // IPv4-mapped keeps its dotted tail
    ])
    func canonicalRoundTrip(_ text: String) throws {
        let address = try #require(IPAddress(text))
        #expect(address.isIPv6)
        #expect(address.description == text)
    }

    @Test("non-canonical input prints canonically", arguments: [
        ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("2001:DB8::1", "2001:db8::1"),
        ("0:0:0:0:0:0:0:0", "::"),
        ("0:0:0:0:0:0:0:1", "::1"),
        ("1:0:0:0:0:0:0:0", "1::"),
        ("2001:db8:0:0:1:0:0:0", "2001:db8:0:0:1::"),
        ("2001:db8:0:0:0:1:0:0", "2001:db8::1:0:0"),
        ("1:0:0:2:0:0:0:3", "1:0:0:2::3"),
        ("::ffff:a00:1", "::ffff:10.0.0.1"),
        ("0:0:0:0:0:ffff:192.168.1.2", "::ffff:192.168.1.2"),
        ("fe80:0:0:0:0:0:0:1", "fe80::1"),
        // A single zero group is written out (RFC 5952 §4.2.2), also at either end.
        ("::2:3:4:5:6:7:8", "0:2:3:4:5:6:7:8"),
        ("1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"),
        ("1:2:3::5:6:7:8", "1:2:3:0:5:6:7:8"),
    ])
    func canonicalization(_ input: String, _ output: String) throws {
        let address = try #require(IPAddress(input))
        #expect(address.description == output)
    }

    @Test("IPv6 value layout")
    func ipv6Value() throws {
        let address = try #require(IPAddress("2001:db8::8:800:200c:417a"))
        #expect(address == IPAddress(ipv6High: 0x2001_0db8_0000_0000, low: 0x0000_0008_0800_200c_417a & 0xffff_ffff_ffff_ffff))
        #expect(address.low == 0x0008_0800_200c_417a)
        #expect(address.networkBytes == [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0x08, 0x08, 0x00, 0x20, 0x0c, 0x41, 0x7a])
    }

    @Test("invalid text does not parse", arguments: [
        "", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1..2.3", "a.b.c.d",
        ":", ":::", "1:2", "1:2:3:4:5:6:7:8:9", "1::2::3", "12345::", "g::", "::1:", ":1::",
        "1:2:3:4:5:6:7:8::", "::1:2:3:4:5:6:7:8", "::ffff:1.2.3", "::ffff:1.2.3.256", "::1.2.3.4:5",
    ])
    func invalid(_ text: String) {
        #expect(IPAddress(text) == nil)
    }

    // BUG (IPAddress.swift lines 47-51): a dotted quad is accepted as the last field of
    // the part *before* "::", so "1.2.3.4::" parses (as 102:304::). RFC 4291 §2.2 allows
    // the dotted quad only as the last 32 bits of the address. Expected nil.
    @Test("a dotted quad before :: does not parse")
    func dottedQuadBeforeGap() {
        #expect(IPAddress("1.2.3.4::") == nil)
        #expect(IPAddress("1:2:1.2.3.4::") == nil)
    }

    // BUG (IPAddress.swift lines 27 and 53): `UInt8(_:)` / `UInt16(_:radix:)` accept a
    // leading "+" (and "-0"), so "+1.2.3.4" and "+1::" parse. Expected nil.
    @Test("sign characters do not parse")
    func signs() {
        #expect(IPAddress("+1.2.3.4") == nil)
        #expect(IPAddress("+1::") == nil)
        #expect(IPAddress("::-0") == nil)
    }

    @Test("IPv4 sorts before IPv6, then by value")
    func ordering() throws {
        let v4a = try #require(IPAddress("10.0.0.1"))
        let v4b = try #require(IPAddress("10.0.0.2"))
        let v6 = try #require(IPAddress("::1"))
        let v6b = try #require(IPAddress("fd00::1"))
        #expect(v4a < v4b)
        #expect(v4b < v6)
        #expect(v6 < v6b)
        // "::a00:1" is not the IPv4 address 10.0.0.1.
        #expect(try #require(IPAddress("::a00:1")) != v4a)
    }
}
