#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
import FinscopeWire
#endif

/// A whole small file (`/proc` files report size 0, so read until EOF); nil when unreadable.
func readBytes(_ path: String, limit: Int = 1 << 24) -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65_536)
    while bytes.count < limit {
        let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if count < 0 {
            if errno == EINTR { continue }
            return nil
        }
        if count == 0 { break }
        bytes += chunk[0..<count]
    }
    return bytes
}

func readTextFile(_ path: String) -> String? {
    readBytes(path).map { String(decoding: $0, as: UTF8.self) }
}

/// The target of a symbolic link, e.g. `socket:[123456]`; nil when unreadable.
func readLink(_ path: String) -> String? {
    var buffer = [CChar](repeating: 0, count: 256)
    let count = readlink(path, &buffer, buffer.count - 1)
    guard count > 0 else { return nil }
    return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// The names in a directory (without "." and ".."); empty when unreadable.
func directoryEntries(_ path: String) -> [String] {
    guard let dir = opendir(path) else { return [] }
    defer { closedir(dir) }
    var names: [String] = []
    while let entry = readdir(dir) {
        let name = withUnsafePointer(to: entry.pointee.d_name) {
            $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
        }
        if name != ".", name != ".." { names.append(name) }
    }
    return names
}

/// The names in a directory (without "." and ".."), or the errno when it cannot be opened.
func directoryEntriesOrError(_ path: String) -> Result<[String], DirectoryError> {
    guard let dir = opendir(path) else { return .failure(DirectoryError(code: errno)) }
    defer { closedir(dir) }
    var names: [String] = []
    while let entry = readdir(dir) {
        let name = withUnsafePointer(to: entry.pointee.d_name) {
            $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
        }
        if name != ".", name != ".." { names.append(name) }
    }
    return .success(names)
}

struct DirectoryError: Error {
    var code: Int32
}

/// Calls `body` with each line of a file (without its newline), reading 1 MiB at a time, so
/// a file of any size is read whole; returns false when the file cannot be opened.
@discardableResult
func forEachLine(of path: String, _ body: (Substring) -> Void) -> Bool {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var pending: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 20)
    while true {
        let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if count < 0 {
            if errno == EINTR { continue }
            break
        }
        if count == 0 { break }
        pending += chunk[0..<count]
        guard let lastNewline = pending.lastIndex(of: 10) else { continue }
        let text = String(decoding: pending[...lastNewline], as: UTF8.self)
        for line in text.split(separator: "\n") { body(line) }
        pending.removeSubrange(...lastNewline)
    }
    if !pending.isEmpty { body(Substring(String(decoding: pending, as: UTF8.self))) }
    return true
}
