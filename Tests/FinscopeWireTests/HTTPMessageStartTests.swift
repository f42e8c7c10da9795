import Testing
@testable import FinscopeWire

/// Real bytes: the incident's client. Scripts/capture-programs/Heartbeat.java (Apache
/// HttpClient 4.5.14 on Java 17.0.15, `HttpClients.createDefault()` per request) against
/// `httpleak.py server` on 127.0.0.1:8282 in a private namespace, recorded with
/// `tcpdump -i lo -s 0`; payloads from `tshark -o tcp.desegment_tcp_streams:FALSE -e
/// tcp.payload`. tshark's http.request.method / uri / host / user_agent: PUT,
/// /heartbeat, 127.0.0.1:8282, Apache-HttpClient/4.5.14 (Java/17.0.15); the response's
/// http.response.code: 201. The request is one 245-byte segment (head and JSON body).
enum HTTPVectors {
    static let heartbeatRequest = hexBytes("""
        505554202f68656172746265617420485454502f312e310d0a436f6e74656e742d4c656e6774683a2032310d0a436f6e
        74656e742d547970653a206170706c69636174696f6e2f6a736f6e3b20636861727365743d5554462d380d0a486f7374
        3a203132372e302e302e313a383238320d0a436f6e6e656374696f6e3a204b6565702d416c6976650d0a557365722d41
        67656e743a204170616368652d48747470436c69656e742f342e352e313420284a6176612f31372e302e3135290d0a41
        63636570742d456e636f64696e673a20677a69702c6465666c6174650d0a0d0a7b226e6f6465223a226e31222c227365
        71223a307d
        """)
    static let createdResponse = hexBytes("""
        485454502f312e312032303120437265617465640d0a5365727665723a2042617365485454502f302e3620507974686f
        6e2f332e31312e370d0a446174653a205475652c2030312044656320323032362031333a35393a313520474d540d0a43
        6f6e74656e742d547970653a206170706c69636174696f6e2f6a736f6e0d0a436f6e74656e742d4c656e6774683a2031
        320d0a0d0a
        """)
    static let heartbeatUserAgent = "Apache-HttpClient/4.5.14 (Java/17.0.15)"
    /// Offsets in `heartbeatRequest`, found with Python's bytes.find on the same bytes.
    static let userAgentValue = 150..<189
    static let headEnd = 224          // the blank line's CRLF ends here
}

@Suite("HTTP request start")
struct HTTPRequestStartTests {
    static func ascii(_ s: String) -> [UInt8] { Array(s.utf8) }

    @Test("the incident's heartbeat request, as Apache HttpClient sent it")
    func heartbeat() throws {
        let bytes = HTTPVectors.heartbeatRequest
        #expect(bytes.count == 245)
        let start = try #require(parseRequest(bytes))
        #expect(text(bytes, start.method) == "PUT")
        #expect(text(bytes, start.path) == "/heartbeat")
        #expect(text(bytes, start.host) == "127.0.0.1:8282")
        #expect(text(bytes, start.userAgent) == HTTPVectors.heartbeatUserAgent)
        #expect(start.userAgent == HTTPVectors.userAgentValue)
        #expect(start.minorVersion == 1)
        #expect(start.headComplete)
        #expect(!start.snapshotCut)
        #expect(beginsRequest(bytes))
    }

    /// Every prefix, as the first part of a request split across segments (the segment
    /// ends there) and as a snapshot cut (the segment is longer): a field is either the
    /// whole value or nil, never a piece of it.
    @Test("every prefix of the request: whole values or nil", arguments: [false, true])
    func prefixes(snapshotCut: Bool) {
        let full = HTTPVectors.heartbeatRequest
        let hostLineEnd = Array(full).indices.first { i in
            full[i...].starts(with: Array("Host: 127.0.0.1:8282\r\n".utf8))
        }! + "Host: 127.0.0.1:8282\r\n".utf8.count
        for k in 0...full.count {
            let part = Array(full[..<k])
            let start = parseRequest(part, payloadLength: snapshotCut ? full.count : k)
            if k < 5 {                                  // "PUT /": method, SP, a target byte
                #expect(start == nil, "prefix \(k)")
                continue
            }
            guard let start else {
                Issue.record("prefix \(k) not recognised")
                continue
            }
            #expect(text(part, start.method) == "PUT")
            #expect(start.path == (k >= 15 ? 4..<14 : nil), "prefix \(k): path \(String(describing: start.path))")
            #expect((start.host != nil) == (k >= hostLineEnd), "prefix \(k)")
            if start.host != nil { #expect(text(part, start.host) == "127.0.0.1:8282") }
            #expect((start.userAgent != nil) == (k >= HTTPVectors.userAgentValue.upperBound + 2), "prefix \(k)")
            if start.userAgent != nil { #expect(start.userAgent == HTTPVectors.userAgentValue) }
            #expect(start.headComplete == (k >= HTTPVectors.headEnd), "prefix \(k)")
            #expect(start.minorVersion == (k >= 25 ? 1 : nil), "prefix \(k)")
            #expect(start.snapshotCut == (snapshotCut && k < full.count))
            #expect(beginsRequest(part))
        }
    }

    /// From the third byte on. A split after "P" or "PU" leaves "UT /heartbeat HTTP/1.1"
    /// or "T /heartbeat …": whole request lines with the (unregistered) token "UT" or "T"
    /// as method, which content alone cannot tell from a request: a known limit.
    @Test("the second segment of a split request begins nothing")
    func secondPart() {
        let full = HTTPVectors.heartbeatRequest
        #expect(text(Array(full[1...]), parseRequest(Array(full[1...]))?.method) == "UT")
        for k in 3..<full.count {
            #expect(parseRequest(Array(full[k...])) == nil, "suffix from \(k)")
            #expect(!beginsRequest(Array(full[k...])), "suffix from \(k)")
        }
    }

    @Test("the query string is cut off; a target cut inside the query keeps its path")
    func query() throws {
        let bytes = Self.ascii("GET /item/7?x=1&y=2 HTTP/1.1\r\nHost: a\r\n\r\n")
        let start = try #require(parseRequest(bytes))
        #expect(text(bytes, start.path) == "/item/7")
        let cut = Array(bytes[..<13])                   // "GET /item/7?x"
        #expect(text(cut, try #require(parseRequest(cut, payloadLength: bytes.count)).path) == "/item/7")
        let beforeQuestionMark = Array(bytes[..<11])    // "GET /item/7": the target may go on
        #expect(try #require(parseRequest(beforeQuestionMark, payloadLength: bytes.count)).path == nil)
    }

    @Test("a request line longer than the snapshot: path nil, never a guess")
    func longTarget() throws {
        let line = "GET /" + String(repeating: "a", count: 600) + " HTTP/1.1\r\nHost: h\r\n\r\n"
        let bytes = Self.ascii(line)
        let captured = Array(bytes[..<100])
        let start = try #require(parseRequest(captured, payloadLength: bytes.count))
        #expect(start.path == nil)
        #expect(start.host == nil)
        #expect(!start.headComplete)
        #expect(start.snapshotCut)
        #expect(text(bytes, try #require(parseRequest(bytes)).path)?.count == 601)
    }

    @Test("pipelined requests in one segment: the first is parsed, the segment begins one request")
    func pipelined() throws {
        let bytes = Self.ascii("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: y\r\nUser-Agent: z\r\n\r\n")
        let start = try #require(parseRequest(bytes))
        #expect(text(bytes, start.path) == "/a")
        #expect(text(bytes, start.host) == "x")
        #expect(start.userAgent == nil)                 // the second request's, not the first's
        #expect(start.headComplete)
        #expect(beginsRequest(bytes))
        // a segment holding the end of a body and then the next request begins none
        #expect(!beginsRequest(Self.ascii("}\r\nGET /b HTTP/1.1\r\n\r\n")))
    }

    @Test("header names are case-insensitive, values trimmed of OWS, the first occurrence wins")
    func headers() throws {
        let bytes = Self.ascii("POST /x HTTP/1.0\r\nhOST: \t example.test:81 \t\r\nuser-agent:curl/8.5.0\r\n"
                               + "Host: second\r\n\r\nbody")
        let start = try #require(parseRequest(bytes))
        #expect(text(bytes, start.host) == "example.test:81")
        #expect(text(bytes, start.userAgent) == "curl/8.5.0")
        #expect(start.minorVersion == 0)
        #expect(start.headComplete)
    }

    @Test("absent versus not captured: headComplete")
    func absentHeaders() throws {
        let absent = Self.ascii("GET / HTTP/1.1\r\nAccept: */*\r\n\r\n")
        let a = try #require(parseRequest(absent))
        #expect(a.host == nil && a.userAgent == nil && a.headComplete)
        let notCaptured = Array(absent[..<20])
        let b = try #require(parseRequest(notCaptured, payloadLength: absent.count))
        #expect(b.host == nil && !b.headComplete)
        let empty = Self.ascii("GET / HTTP/1.1\r\nUser-Agent:  \r\n\r\n")
        #expect(try #require(parseRequest(empty)).userAgent?.isEmpty == true)
    }

    @Test("a line that is not a header field ends the walk")
    func oddHeaderLines() throws {
        for head in ["GET / HTTP/1.1\r\n folded\r\nHost: h\r\n\r\n", "GET / HTTP/1.1\r\nno colon\r\nHost: h\r\n\r\n",
                     "GET / HTTP/1.1\r\nX: 1\nHost: h\r\n\r\n", "GET / HTTP/1.1\r\n: v\r\nHost: h\r\n\r\n"] {
            let start = try #require(parseRequest(Self.ascii(head)), "\(head.debugDescription)")
            #expect(start.host == nil && !start.headComplete, "\(head.debugDescription)")
        }
    }

    @Test("any token is a method when the whole request line is there")
    func methods() throws {
        let brew = Self.ascii("BREW /pot HTTP/1.1\r\n\r\n")
        #expect(text(brew, try #require(parseRequest(brew)).method) == "BREW")
        #expect(parseRequest(Array(brew[..<12]), payloadLength: brew.count) == nil)   // unknown, line cut
        #expect(!beginsRequest(Array(brew[..<12])))
        let sixteen = Self.ascii(String(repeating: "M", count: 16) + " / HTTP/1.1\r\n\r\n")
        #expect(parseRequest(sixteen) != nil)
        let seventeen = Self.ascii(String(repeating: "M", count: 17) + " / HTTP/1.1\r\n\r\n")
        #expect(parseRequest(seventeen) == nil)
        for method in ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"] {
            let cut = Self.ascii(method + " /lon")
            #expect(parseRequest(cut, payloadLength: 100)?.path == nil, "\(method)")
            #expect(beginsRequest(cut), "\(method)")
        }
        let connect = Self.ascii("CONNECT api.finscope.test:443 HTTP/1.1\r\nHost: api.finscope.test:443\r\n\r\n")
        #expect(text(connect, try #require(parseRequest(connect)).path) == "api.finscope.test:443")
    }

    @Test("not HTTP/1.x requests", arguments: [
        "client-first\n", "OK client-first                 \n", "HTTP/1.1 200 OK\r\n\r\n", "hello world",
        "GET  / HTTP/1.1\r\n", "GET / HTTP/2.0\r\n\r\n", "GET / HTTP/1.x\r\n", "GET /\tHTTP/1.1\r\n",
        "GET / HTTP/1.1\n\n", "GET / HTTP/1.1\r\r", "GET\r\n", "GET", "GET ", " GET / HTTP/1.1\r\n",
        "{\"node\":\"n1\"}", "ping\n", "pong\n", "GET /caf\u{e9} HTTP/1.1\r\n", "",
    ])
    func notRequests(_ payload: String) {
        let bytes = Self.ascii(payload)
        #expect(parseRequest(bytes) == nil)
        #expect(!beginsRequest(bytes))
    }

    @Test("captured bytes beyond the payload length (padding) are ignored; a negative length is nothing")
    func payloadLength() throws {
        let bytes = Self.ascii("GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
        let start = try #require(parseRequest(bytes + [0, 0, 0], payloadLength: bytes.count))
        #expect(start.headComplete && !start.snapshotCut)
        #expect(parseRequest(bytes, payloadLength: 4) == nil)          // "GET " only
        #expect(parseRequest(bytes, payloadLength: -1) == nil)
    }

    @Test("random bytes: never a crash, never a request or a status line")
    func randomBytes() {
        var rng = SplitMix64(state: 0x5eed)
        for _ in 0..<20000 {
            let count = Int.random(in: 0...300, using: &rng)
            let bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) }
            #expect(parseRequest(bytes) == nil)
            #expect(!beginsRequest(bytes))
            #expect(parseStatus(bytes) == nil)
        }
    }

    @Test("damaged requests: never a crash, ranges inside the buffer")
    func mutations() {
        var rng = SplitMix64(state: 0xbad)
        let original = HTTPVectors.heartbeatRequest
        for _ in 0..<5000 {
            var bytes = original
            for _ in 0..<Int.random(in: 1...8, using: &rng) {
                bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
            let k = Int.random(in: 0...bytes.count, using: &rng)
            let part = Array(bytes[..<k])
            guard let start = parseRequest(part, payloadLength: bytes.count) else { continue }
            for range in [start.method, start.path, start.host, start.userAgent].compactMap({ $0 }) {
                #expect(range.lowerBound >= 0 && range.upperBound <= k)
            }
            _ = beginsRequest(part)
        }
    }
}

@Suite("HTTP status line")
struct HTTPStatusLineTests {
    @Test("the heartbeat server's 201 Created")
    func created() {
        #expect(parseStatus(HTTPVectors.createdResponse) == 201)
    }

    @Test("status lines", arguments: [
        ("HTTP/1.1 201 Created\r\n", UInt16?.some(201)), ("HTTP/1.0 404\r\n", 404), ("HTTP/1.1 200", 200),
        ("HTTP/1.1 100 Continue\r\n\r\n", 100), ("HTTP/1.1 599 x", 599),
        ("HTTP/1.1 20", nil), ("HTTP/2 200 OK\r\n", nil), ("HTTP/1.1 2000 x", nil), ("HTTP/1.1 099 x", nil),
        ("HTTP/1.1 600 x", nil), ("HTTP/1.1  200 x", nil), ("http/1.1 200 OK\r\n", nil), ("HTTP/1.1 2x0 OK", nil),
        ("HTTP/1.1 200\tOK", nil), ("GET / HTTP/1.1\r\n", nil), ("", nil),
    ])
    func lines(_ line: String, _ code: UInt16?) {
        #expect(parseStatus(Array(line.utf8)) == code)
    }
}
