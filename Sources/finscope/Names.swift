import FinscopeFindings

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How names from outside (file names, process command lines) are shown to people.
///
/// A file name on Linux is a string of bytes, not of characters. Swift's
/// `CommandLine.arguments` repairs invalid UTF-8 (each bad byte becomes U+FFFD), which
/// would both lose the name and fail to open the file; `InputPaths` recovers the exact
/// bytes from argv. For display, bytes that are not UTF-8 become `\xNN`, and in text
/// output so do control characters, so that a name can neither be mistaken for another
/// nor send escape sequences to the terminal.
enum Names {
    /// `bytes` as text: valid UTF-8 kept, every other byte as `\xNN`; control characters
    /// (C0, DEL, C1) also as `\xNN` of their UTF-8 bytes when `escapingControls`.
    static func display(_ bytes: [UInt8], escapingControls: Bool) -> String {
        var out = ""
        var parser = Unicode.UTF8.ForwardParser()
        var iterator = bytes.makeIterator()
        var offset = 0
        while true {
            switch parser.parseScalar(from: &iterator) {
            case .valid(let encoded):
                let scalar = Unicode.UTF8.decode(encoded)
                if escapingControls, isControl(scalar) {
                    for byte in encoded { out += hex(byte) }
                } else {
                    out.unicodeScalars.append(scalar)
                }
                offset += encoded.count
            case .error(let length):
                for byte in bytes[offset..<offset + length] { out += hex(byte) }
                offset += length
            case .emptyInput:
                return out
            }
        }
    }

    /// `text` with its control characters (but newlines and tabs) written as `\xNN`.
    static func escapingControls(_ text: String, keepingLineBreaks: Bool = true) -> String {
        guard text.unicodeScalars.contains(where: { isControl($0) }) else { return text }
        var out = ""
        for scalar in text.unicodeScalars {
            if isControl(scalar), !(keepingLineBreaks && (scalar == "\n" || scalar == "\t")) {
                for byte in String(scalar).utf8 { out += hex(byte) }
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value)
    }

    static func hex(_ byte: UInt8) -> String {
        let digits = Array("0123456789abcdef")
        return "\\x" + String(digits[Int(byte >> 4)]) + String(digits[Int(byte & 0xF)])
    }

    /// The result as the text report shows it: names and warnings without control characters.
    static func forText(_ result: AnalysisResult) -> AnalysisResult {
        var result = result
        result.source.name = escapingControls(result.source.name, keepingLineBreaks: false)
        result.source.warnings = result.source.warnings.map { escapingControls($0, keepingLineBreaks: false) }
        let commands = result.flows.contains { flow in
            flow.findings.contains { $0.process.map { escapingControls($0.command) != $0.command } ?? false }
        }
        if commands {
            result.updateFlows { flows in
                for f in flows.indices {
                    for i in flows[f].findings.indices {
                        guard let command = flows[f].findings[i].process?.command else { continue }
                        flows[f].findings[i].process?.command = escapingControls(command, keepingLineBreaks: false)
                    }
                }
            }
        }
        return result
    }
}

/// Text for people in the locale's character set: when the locale is not UTF-8
/// (LC_ALL, else LC_CTYPE, else LANG names no UTF-8 charset, or none is set: the C
/// locale), the typographic characters of the reports get ASCII stand-ins.
enum TextCharset {
    static let utf8: Bool = {
        for variable in ["LC_ALL", "LC_CTYPE", "LANG"] {
            guard let value = getenv(variable), value.pointee != 0 else { continue }
            let name = String(cString: value).lowercased()
            return name.contains("utf-8") || name.contains("utf8")
        }
        return false
    }()

    static let fallbacks: [(Character, String)] = [
        ("—", "--"), ("–", "-"), ("↔", "<->"), ("→", "->"), ("←", "<-"), ("…", "..."),
        ("─", "-"), ("⋮", ":"), ("×", "x"), ("≥", ">="), ("≤", "<="),
    ]

    /// `text` as this locale can show it.
    static func local(_ text: String) -> String {
        utf8 ? text : ascii(text)
    }

    static func ascii(_ text: String) -> String {
        guard !text.allSatisfy(\.isASCII) else { return text }
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for character in text {
            if let stand = fallbacks.first(where: { $0.0 == character }) { out += stand.1 } else { out.append(character) }
        }
        return out
    }
}
