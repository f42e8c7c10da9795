@testable import FinscopeReport
import Testing

/// `TextReport.wrapped` counts widths on the UTF-8 bytes; it must wrap exactly as the
/// straightforward version that counts characters (graphemes) does.
@Suite struct WrapTests {
    /// The straightforward implementation (quadratic: `String.count` of the whole line per
    /// word), with a number kept on the line of the unit after it.
    func reference(_ text: String, indent: String, width: Int) -> String {
        let units: Set<String> = ["s", "ms", "min", "h", "%", "B", "MB", "connection", "connections", "socket", "sockets",
                                  "request", "requests", "flows", "packets"]
        var words: [String] = []
        for word in text.split(separator: " ").map(String.init) {
            let bare = String(word.reversed().drop { ",.):;".contains($0) }.reversed())
            if let last = words.last, last.last?.isASCII == true, last.last?.isNumber == true, units.contains(bare),
               text.contains(last + " " + word) {
                words[words.count - 1] = last + " " + word
            } else {
                words.append(word)
            }
        }
        var out = "", line = indent
        for word in words {
            if line.count > indent.count, line.count + 1 + word.count > width {
                out += line + "\n"
                line = indent
            }
            line += (line.count > indent.count ? " " : "") + word
        }
        return out + line + "\n"
    }

    @Test(arguments: [
        "",
        "one",
        "   leading and  doubled   spaces   ",
        "10.77.0.1 (client, 109 connections, ephemeral ports 42128–53244) acknowledged 10.77.0.2:8080's FIN and never "
            + "closed (median 15.8 s, max 23.7 s in CLOSE_WAIT when the capture ended): the program using these sockets "
            + "does not close connections its peer has closed — typically HTTP responses never released.",
        String(repeating: "x", count: 150) + " short " + String(repeating: "y", count: 99) + " z",
        "naïve café ↔ 日本語のテキスト 🇩🇪 flags e\u{301}tude — dash – en dash line\r\nbreak",
        String(repeating: "word ", count: 200),
    ])
    func wrapsLikeTheCharacterCountingVersion(_ text: String) {
        let report = TextReport()
        for width in [1, 10, 40, 100] {
            #expect(report.wrapped(text, indent: "    ", width: width) == reference(text, indent: "    ", width: width))
        }
        #expect(report.wrapped(text, indent: "", width: 20) == reference(text, indent: "", width: 20))
    }

    @Test func numbersStayWithTheirUnits() {
        let text = "stuck median 12.1 s, max 15.7 s for 25 connections and 3 requests"
        for width in 8...60 {
            let lines = TextReport().wrapped(text, indent: "  ", width: width).split(separator: "\n")
            for line in lines {
                let words = line.split(separator: " ")
                #expect(!["s,", "s", "connections", "requests"].contains(String(words.first ?? "")),
                        "width \(width): a line starts with a unit: \(line)")
            }
        }
    }
}
