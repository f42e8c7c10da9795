import FinscopeFindings
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The capture files named on the command line, opened by their exact bytes.
///
/// `CommandLine.arguments` (and so ArgumentParser) decodes argv as UTF-8 and replaces
/// every invalid byte with U+FFFD, so a file named `caf\xe9.pcap` (Latin-1) would not
/// open. Each file argument is matched back to its argv entry; when the raw bytes are not
/// the argument's UTF-8, the file is opened with `open(2)` on those bytes and read through
/// `/dev/fd/N`, which every reader (libpcap, fopen) opens as the same file. Messages and
/// reports name it by its bytes, `\xNN` for those that are not UTF-8.
struct InputPath: Sendable, Equatable {
    /// The path the readers open.
    var open: String
    /// The name reports and messages show (not UTF-8 bytes as `\xNN`).
    var name: String
}

enum InputPaths {
    /// argv[1...] as bytes.
    static let rawArguments: [[UInt8]] = (1..<Int(CommandLine.argc)).map { index in
        guard let argument = CommandLine.unsafeArgv[index] else { return [] }
        return Array(UnsafeRawBufferPointer(start: argument, count: strlen(argument)))
    }

    private static let lock = NSLock()
    nonisolated(unsafe) private static var resolved: [String: InputPath] = [:]
    nonisolated(unsafe) private static var used = Set<Int>()

    /// The paths for `arguments` (as ArgumentParser gave them), resolved once each.
    static func resolve(_ arguments: [String]) -> [InputPath] {
        lock.lock()
        defer { lock.unlock() }
        return arguments.map { argument in
            if let known = resolved[argument] { return known }
            let path = resolveLocked(argument)
            resolved[argument] = path
            return path
        }
    }

    private static func resolveLocked(_ argument: String) -> InputPath {
        let plain = InputPath(open: argument, name: argument)
        // "-" is standard input, for the readers to handle.
        guard argument != "-", argument.unicodeScalars.contains("\u{FFFD}") else { return plain }
        // The first unused argv entry that decodes to this argument, whole or after "=" (--read=FILE).
        for (index, raw) in rawArguments.enumerated() where !used.contains(index) {
            var bytes = raw
            if String(decoding: bytes, as: UTF8.self) != argument {
                guard let equals = raw.firstIndex(of: UInt8(ascii: "=")),
                      String(decoding: raw[(equals + 1)...], as: UTF8.self) == argument else { continue }
                bytes = Array(raw[(equals + 1)...])
            }
            guard bytes != Array(argument.utf8) else { return plain }
            used.insert(index)
            let name = Names.display(bytes, escapingControls: false)
            let descriptor = (bytes + [0]).withUnsafeBufferPointer { buffer in
                buffer.baseAddress!.withMemoryRebound(to: CChar.self, capacity: buffer.count) {
                    open($0, O_RDONLY | O_CLOEXEC)
                }
            }
            // Unreadable: the readers try the repaired name and report what is wrong with it.
            guard descriptor >= 0 else { return InputPath(open: argument, name: name) }
            return InputPath(open: "/dev/fd/\(descriptor)", name: name)
        }
        return plain
    }

    /// `text` (a message or warning) with the paths readers opened replaced by their names.
    static func naming(_ text: String, _ paths: [InputPath]) -> String {
        var text = text
        // Longest first, so that /dev/fd/12 is not replaced inside /dev/fd/123.
        for path in paths.sorted(by: { $0.open.count > $1.open.count }) where path.open != path.name {
            text = text.replacingOccurrences(of: path.open, with: path.name)
        }
        return text
    }

    /// The result with its name and warnings naming the files as given.
    static func naming(_ result: AnalysisResult, _ paths: [InputPath]) -> AnalysisResult {
        guard paths.contains(where: { $0.open != $0.name }) else { return result }
        var result = result
        result.source.name = paths.map(\.name).joined(separator: ", ")
        result.source.warnings = result.source.warnings.map { naming($0, paths) }
        return result
    }
}
