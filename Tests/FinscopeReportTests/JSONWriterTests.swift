import FinscopeAnalysis
import FinscopeFindings
import FinscopeFlows
import FinscopeReport
import FinscopeWire
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The byte-level JSON writer: escaping (RFC 8259), numbers, times, structure, and its
/// descriptor, spool and closed-pipe behaviour.
@Suite struct JSONWriterTests {
    func written(_ body: (JSONWriter) -> Void) -> String {
        let json = JSONWriter.memory()
        defer { json.close() }
        body(json)
        return json.text
    }

    func quoted(_ text: String) -> String { written { $0.string(text) } }

    @Test func everyControlByteIsEscaped() throws {
        for byte in UInt8(0)...0x1F {
            let text = String(UnicodeScalar(byte))
            let expected: String
            switch byte {
            case 0x09: expected = #""\t""#
            case 0x0A: expected = #""\n""#
            case 0x0D: expected = #""\r""#
            default:
                // RFC 8259 §7: \u and four hex digits, lowercase here.
                let hex = Array("0123456789abcdef")
                expected = "\"\\u00\(hex[Int(byte >> 4)])\(hex[Int(byte & 15)])\""
            }
            let got = quoted(text)
            #expect(got == expected, "byte \(byte)")
            // And a JSON parser reads the byte back.
            let back = try JSONSerialization.jsonObject(with: Data("[\(got)]".utf8)) as? [String]
            #expect(back == [text], "byte \(byte)")
        }
        #expect(quoted("a\u{1B}[0mb") == #""a\u001b[0mb""#)
    }

    @Test func quoteBackslashAndDeleteAndNonASCII() throws {
        #expect(quoted("say \"hi\"") == #""say \"hi\"""#)
        #expect(quoted(#"C:\dir\"#) == #""C:\\dir\\""#)
        #expect(quoted("\u{7F}") == "\"\u{7F}\"")  // not a control character for JSON
        for text in ["é", "—", "😀", "\u{2028}", "naïve — 🇫🇷 \u{2029}", ""] {
            let got = quoted(text)
            #expect(Array(got.utf8) == [0x22] + Array(text.utf8) + [0x22], "\(text) passes through as UTF-8")
            let back = try JSONSerialization.jsonObject(with: Data("[\(got)]".utf8)) as? [String]
            #expect(back == [text])
        }
    }

    @Test func longStringsWithManyEscapesCrossTheBuffer() throws {
        // Each quote grows to two bytes, each control byte to six: past the buffer's room.
        let text = String(repeating: "\"\u{01}x\\", count: 20_000)
        let got = quoted(text)
        #expect(got.utf8.count == 2 + 20_000 * (2 + 6 + 1 + 2))
        let back = try JSONSerialization.jsonObject(with: Data("[\(got)]".utf8)) as? [String]
        #expect(back == [text])
    }

    @Test func numbers() {
        for value in [0, -1, 1, 9, 10, 99, 100, -10, 1_234_567, Int.max, Int.min, Int.min + 1] {
            #expect(written { $0.number(value) } == String(value))
        }
        #expect(written { $0.optionalNumber(nil) } == "null")
        #expect(written { $0.bool(true); $0.bool(false); $0.null() } == "truefalsenull")
    }

    @Test func timesAsSecondsText() {
        // Six decimals, truncated toward zero from nanoseconds (secondsText's rule).
        let cases: [(Nanoseconds, String)] = [
            (0, "0.000000"),
            (999, "0.000000"),
            (1_000, "0.000001"),
            (1_999_999_999, "1.999999"),
            (1_700_000_000_123_456_789, "1700000000.123456"),
            (-1, "-0.000000"),
            (-1_000, "-0.000001"),
            (-1_500_000_000, "-1.500000"),
            (-1_999_999, "-0.001999"),
            (Int64.max, "9223372036.854775"),
            (60_000_000_000, "60.000000"),
        ]
        for (value, text) in cases {
            #expect(written { $0.time(value) } == text, "\(value)")
            #expect(secondsText(value) == text, "secondsText(\(value))")
        }
        #expect(written { $0.time(nil) } == "null")
        #expect(written { $0.time(Int64.min) } == "-9223372036.854775", "no trap on the most negative time")
    }

    @Test func nestedObjectsArraysAndCommas() throws {
        let text = written { json in
            json.beginObject()
            json.key("a")
            json.beginArray()
            json.element(); json.number(1)
            json.element(); json.beginObject(); json.key("b"); json.beginArray(); json.endArray(); json.endObject()
            json.element(); json.beginArray(); json.element(); json.null(); json.endArray()
            json.endArray()
            json.key("c"); json.beginObject(); json.endObject()
            json.field("d", nil as String?)
            json.field("e", "x")
            json.timeField("f", 1_500_000_000)
            json.key("g"); json.ip(IPAddress("192.168.0.1")!)
            json.key("h"); json.ip(IPAddress("fd00::1")!)
            json.endObject()
            json.newline()
            json.beginObject(); json.field("next", true); json.endObject()
        }
        #expect(text == #"{"a":[1,{"b":[]},[null]],"c":{},"d":null,"e":"x","f":1.500000,"g":"192.168.0.1","h":"fd00::1"}"#
            + "\n" + #"{"next":true}"#)
        let first = try #require(text.split(separator: "\n").first)
        #expect(try JSONSerialization.jsonObject(with: Data(first.utf8)) is [String: Any])
    }

    @Test func ipv4EdgeAddresses() {
        for text in ["0.0.0.0", "255.255.255.255", "10.0.0.5", "1.22.103.9"] {
            #expect(written { $0.ip(IPAddress(text)!) } == "\"\(text)\"")
        }
    }

    /// A file's descriptor gets exactly the memory writer's bytes, in writes of at most 64 KiB.
    @Test func descriptorOutputEqualsMemoryOutput() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("jsonwriter-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("out.json").path
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        #expect(descriptor >= 0)
        func body(_ json: JSONWriter) {
            json.beginArray()
            for n in 0..<50_000 {
                json.element()
                json.beginObject(); json.field("n", n); json.field("s", "é\"\(n)\n"); json.endObject()
            }
            json.endArray()
        }
        let file = JSONWriter.descriptor(descriptor)
        body(file)
        file.flush()
        #expect(file.failure == 0)
        file.close()
        _ = close(descriptor)
        let expected = written(body)
        #expect(expected.utf8.count > 4 * 65_536)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == expected)
    }

    /// A spool past its memory bound moves to a temporary file and reads back whole.
    @Test func spoolSpillsToAFileAndCopiesThrough() throws {
        let spool = JSONWriter.spool(memoryBound: 1_000)
        for n in 0..<30_000 { spool.element(); spool.string("flow \(n)") }
        let out = JSONWriter.memory()
        out.beginArray()
        out.append(contentsOf: spool)
        out.endArray()
        #expect(spool.failure == 0)
        spool.close()
        let back = try JSONSerialization.jsonObject(with: Data(out.text.utf8)) as? [String]
        out.close()
        #expect(back == (0..<30_000).map { "flow \($0)" })
    }

    /// The reader went away (`| head`): writes fail with EPIPE, are dropped, and nothing traps.
    @Test func closedPipeEndsQuietly() throws {
        signal(SIGPIPE, SIG_IGN)  // as live mode runs; analyze keeps SIGPIPE's default (exit 141, as before)
        var ends: [Int32] = [0, 0]
        #expect(pipe(&ends) == 0)
        _ = close(ends[0])
        let json = JSONWriter.descriptor(ends[1])
        for n in 0..<100_000 { json.field("n", n) }
        json.flush()
        #expect(json.failure == EPIPE)
        for n in 0..<100_000 { json.field("n", n) }  // still dropped, quietly
        json.close()
        _ = close(ends[1])
    }

    /// RFC 4180 quoting at the byte level: a CR LF pair is a line break too.
    @Test func csvFieldsQuotedByTheirBytes() {
        #expect(CSVReport.quoted("a\r\nb") == "\"a\r\nb\"")
        #expect(CSVReport.quoted("é, “x”") == "\"é, “x”\"")
        #expect(CSVReport.quoted("q\"") == "\"q\"\"\"")
        #expect(CSVReport.quoted("GET /a;b") == "GET /a;b")
        #expect(CSVReport.quoted("") == "")
    }
}
