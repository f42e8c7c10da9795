import CFinscopeStream
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A capture's bytes as a stream: a file or standard input, gzip, zstd and xz decompressed
/// on the fly (named by their magic bytes, not by the file's suffix), anything else passed
/// through. Memory is bounded: one 256 KiB input buffer and the decoder's state.
final class ByteStream {
    let stream: OpaquePointer
    /// The file's size on disk (compressed), 0 when unknown (a pipe).
    let totalBytes: Int64

    /// Takes ownership of `descriptor`; `spool` (not owned) receives every raw byte read.
    init(descriptor: Int32, spool: Int32 = -1, name: String) throws {
        var info = stat()
        totalBytes = fstat(descriptor, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG ? Int64(info.st_size) : 0
        if fstat(descriptor, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR {
            close(descriptor)
            throw CaptureError.cannotRead(path: name, reason: "is a directory, not a capture file")
        }
        var error = [CChar](repeating: 0, count: 256)
        guard let stream = fs_open_fd(descriptor, spool, &error, error.count) else {
            throw CaptureError.cannotRead(path: name, reason: CaptureError.explain(String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)))
        }
        self.stream = stream
    }

    /// Opens `path` for reading.
    convenience init(path: String) throws {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw CaptureError.cannotRead(path: path, reason: CaptureError.explain(String(cString: strerror(errno))))
        }
        try self.init(descriptor: descriptor, name: path)
    }

    deinit {
        fs_close(stream)
    }

    /// "gzip", "zstd", "xz", or nil for an uncompressed stream.
    var compression: String? {
        fs_kind(stream) == Int32(FS_PLAIN) ? nil : String(cString: fs_kind_name(stream))
    }

    /// Up to `count` bytes into `buffer`; 0 at the end or at damage (see `error`).
    func read(into buffer: UnsafeMutableRawPointer, count: Int) -> Int {
        fs_read(stream, buffer, count)
    }

    /// The first `count` bytes of the content, which reading then returns again.
    func peek(_ count: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        let got = fs_peek(stream, &bytes, count)
        return Array(bytes.prefix(got))
    }

    /// Raw bytes consumed from the file (compressed bytes for a compressed file).
    var consumed: Int64 { fs_consumed(stream) }

    /// Why the stream stopped before its end (cut short, damaged, a read error), or nil.
    var error: String? { fs_error(stream).map { String(cString: $0) } }

    /// errno of the first failed write to the spool, or 0.
    var spoolErrno: Int32 { fs_spool_errno(stream) }

    /// A stdio FILE reading the (decompressed) stream, for libpcap; closing it leaves the
    /// stream open.
    func file() -> UnsafeMutablePointer<FILE>? {
        fs_fopen(stream)
    }
}

/// The bytes a pcapng reader walks through: a stream read into one bounded, reused buffer.
/// `window(_:)` gives `count` contiguous bytes at the current position, valid until the
/// next `window(_:)`.
///
/// Plain files are streamed too: a read-only mapping measured about 10% faster on a
/// 290 MB pcapng (0.12 s against 0.135 s), but its pages count in the resident set (305 MB
/// against 24 MB) and a file truncated while mapped kills the reader with SIGBUS.
final class BlockInput {
    let stream: ByteStream
    /// The content's size when known in advance (a plain file opened by path): a block
    /// reaching past it is reported as such, whatever its size.
    let knownSize: Int?
    /// Valid bytes are `buffer[start..<end]`.
    private var buffer: UnsafeMutableRawPointer?
    private var capacity = 0
    private var start = 0
    private var end = 0
    /// Offset of the current position in the (decompressed) content.
    private(set) var position = 0
    /// False once the stream has no more bytes.
    private var more = true

    init(stream: ByteStream, knownSize: Int? = nil) {
        self.stream = stream
        self.knownSize = knownSize
    }

    deinit {
        buffer?.deallocate()
    }

    var bytesRead: Int64 { stream.consumed }
    var totalBytes: Int64 { stream.totalBytes }

    /// `count` contiguous bytes at the position, or nil when the content ends first.
    func window(_ count: Int) -> UnsafeRawPointer? {
        if end - start < count { fill(count) }
        return end - start >= count ? UnsafeRawPointer(buffer! + start) : nil
    }

    /// Bytes left at the position, at least as far as a failed `window` looked.
    var available: Int { end - start }

    func advance(_ count: Int) {
        position += count
        start += count
    }

    /// Moves the unread bytes to the front (growing the buffer to `count` when needed) and
    /// reads until `count` bytes are there or the stream ends.
    private func fill(_ count: Int) {
        let wanted = max(count, 1 << 20)
        if capacity < wanted {
            let grown = UnsafeMutableRawPointer.allocate(byteCount: wanted, alignment: 16)
            if let buffer, end > start { grown.copyMemory(from: buffer + start, byteCount: end - start) }
            buffer?.deallocate()
            buffer = grown
            capacity = wanted
        } else if start > 0, end > start {
            memmove(buffer!, buffer! + start, end - start)
        }
        end -= start
        start = 0
        while more, end < count {
            let got = stream.read(into: buffer! + end, count: capacity - end)
            if got == 0 { more = false } else { end += got }
        }
    }
}
