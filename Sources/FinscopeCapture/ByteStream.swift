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

/// The bytes a pcapng reader walks through: a plain file mapped into memory (no copy), or
/// a stream read into one bounded, reused buffer. `window(_:)` gives `count` contiguous
/// bytes at the current position, valid until the next `window(_:)`.
final class BlockInput {
    private enum Storage {
        case mapped(UnsafeRawPointer, Int)
        case stream(ByteStream)
    }

    private let storage: Storage
    /// The stream mode's buffer: valid bytes are `buffer[start..<end]`.
    private var buffer: UnsafeMutableRawPointer?
    private var capacity = 0
    private var start = 0
    private var end = 0
    /// Offset of the current position in the (decompressed) content.
    private(set) var position = 0
    /// False once the stream has no more bytes.
    private var more = true

    /// A plain file, mapped.
    init(mapping path: String) throws {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw CaptureError.cannotRead(path: path, reason: CaptureError.explain(String(cString: strerror(errno))))
        }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else {
            throw CaptureError.cannotRead(path: path, reason: CaptureError.explain(String(cString: strerror(errno))))
        }
        guard (info.st_mode & S_IFMT) != S_IFDIR else {
            throw CaptureError.cannotRead(path: path, reason: "is a directory, not a capture file")
        }
        let size = Int(info.st_size)
        guard size > 0 else {
            storage = .mapped(UnsafeRawPointer(bitPattern: 1)!, 0)
            return
        }
        guard let base = mmap(nil, size, PROT_READ, MAP_PRIVATE, descriptor, 0), base != MAP_FAILED else {
            throw CaptureError.cannotRead(path: path, reason: CaptureError.explain(String(cString: strerror(errno))))
        }
        madvise(base, size, MADV_SEQUENTIAL)
        storage = .mapped(UnsafeRawPointer(base), size)
    }

    init(stream: ByteStream) {
        storage = .stream(stream)
    }

    deinit {
        if case .mapped(let base, let size) = storage, size > 0 { munmap(UnsafeMutableRawPointer(mutating: base), size) }
        buffer?.deallocate()
    }

    /// The stream, when reading one.
    var stream: ByteStream? {
        if case .stream(let stream) = storage { return stream }
        return nil
    }

    /// The content's size when known in advance (a mapped file).
    var knownSize: Int? {
        if case .mapped(_, let size) = storage { return size }
        return nil
    }

    var bytesRead: Int64 {
        switch storage {
        case .mapped: return Int64(position)
        case .stream(let stream): return stream.consumed
        }
    }

    var totalBytes: Int64 {
        switch storage {
        case .mapped(_, let size): return Int64(size)
        case .stream(let stream): return stream.totalBytes
        }
    }

    /// `count` contiguous bytes at the position, or nil when the content ends first.
    func window(_ count: Int) -> UnsafeRawPointer? {
        switch storage {
        case .mapped(let base, let size):
            return position + count <= size ? base + position : nil
        case .stream(let stream):
            if end - start >= count { return UnsafeRawPointer(buffer! + start) }
            fill(count, from: stream)
            return end - start >= count ? UnsafeRawPointer(buffer! + start) : nil
        }
    }

    /// Bytes left at the position, at least as far as a failed `window` looked.
    var available: Int {
        switch storage {
        case .mapped(_, let size): return size - position
        case .stream: return end - start
        }
    }

    func advance(_ count: Int) {
        position += count
        if case .stream = storage { start += count }
    }

    /// Moves the unread bytes to the front (growing the buffer to `count` when needed) and
    /// reads until `count` bytes are there or the stream ends.
    private func fill(_ count: Int, from stream: ByteStream) {
        let wanted = max(count, 1 << 20)
        if capacity < wanted {
            let grown = UnsafeMutableRawPointer.allocate(byteCount: wanted, alignment: 16)
            if let buffer, end > start { grown.copyMemory(from: buffer + start, byteCount: end - start) }
            buffer?.deallocate()
            buffer = grown
            capacity = wanted
        } else if start > 0 {
            if end > start { memmove(buffer!, buffer! + start, end - start) }
        }
        end -= start
        start = 0
        while more, end < count {
            let got = stream.read(into: buffer! + end, count: capacity - end)
            if got == 0 { more = false } else { end += got }
        }
    }
}
