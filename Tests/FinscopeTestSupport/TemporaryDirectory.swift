import Foundation

/// A fresh directory under the system temporary directory, removed when the value is
/// released (or by `remove()`).
///
///     let dir = try TemporaryDirectory()
///     let url = dir.url(for: "close.pcap")
public final class TemporaryDirectory: Sendable {
    public let url: URL

    public init(prefix: String = "finscope-tests") throws {
        let base = FileManager.default.temporaryDirectory
        url = base.appendingPathComponent("\(prefix)-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    /// A path inside the directory (the file is not created).
    public func url(for name: String) -> URL {
        url.appendingPathComponent(name)
    }

    /// Writes `data` to `name` inside the directory and returns its URL.
    @discardableResult
    public func write(_ data: Data, to name: String) throws -> URL {
        let file = url(for: name)
        try data.write(to: file)
        return file
    }

    public var path: String { url.path }

    public func remove() {
        try? FileManager.default.removeItem(at: url)
    }

    deinit { remove() }
}
