import CFinscopeStream
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Opening capture files: the reader is decided before reading, by the first bytes.
///
/// gzip (1f 8b), zstd (28 b5 2f fd) and xz (fd 37 7a 58 5a 00) are decompressed as they
/// are read, whatever the file's name; the decompressed content's first bytes then pick
/// the reader as for a plain file. `-` is standard input (see `StandardInput`).
public enum CaptureFiles {
    /// The name that stands for standard input.
    public static let standardInput = "-"

    /// A pcapng file goes to finscope's own reader (it reads files whose interfaces differ in
    /// link type, which libpcap refuses, so nothing ever restarts); anything else to libpcap.
    public static func open(path: String, filter: String?) throws -> any FrameSource {
        if path == standardInput { return try StandardInput.shared.open(filter: filter) }
        let first = firstBytes(path, 6)
        guard compression(of: first) != nil else {
            // Plain files keep the fast paths: a mapping for pcapng, and for classic pcap the own
            // record reader when it takes the file (else libpcap's own reads).
            if first.starts(with: pcapNGMagic) { return try PcapNGSource(path: path, filter: filter) }
            if useRecordReader, PcapRecordReader.magicKind(first) != nil,
               let reader = try PcapRecordReader.open(path: path, filter: filter) {
                return reader
            }
            return try PcapFileSource(path: path, filter: filter)
        }
        return try open(stream: ByteStream(path: path), name: path, filter: filter)
    }

    /// The reader for a stream's content, by its first (decompressed) bytes.
    static func open(stream: ByteStream, name: String, filter: String?) throws -> any FrameSource {
        let magic = stream.peek(4)
        if magic.isEmpty, let problem = stream.error { throw CaptureError.cannotRead(path: name, reason: problem) }
        do {
            if magic.starts(with: pcapNGMagic) { return try PcapNGSource(name: name, stream: stream, filter: filter) }
            return try PcapFileSource(name: name, stream: stream, filter: filter)
        } catch CaptureError.cannotRead(let path, let reason) where stream.compression != nil && stream.error == nil {
            throw CaptureError.cannotRead(path: path, reason: "\(reason), in its \(stream.compression!)-compressed content")
        }
    }

    /// False when FINSCOPE_PCAP_READER=libpcap: classic pcap files then always go to libpcap
    /// (to measure one reader against the other, and to compare them).
    public static let useRecordReader: Bool = {
        guard let value = getenv("FINSCOPE_PCAP_READER") else { return true }
        return String(cString: value) != "libpcap"
    }()

    static let pcapNGMagic: [UInt8] = [0x0A, 0x0D, 0x0D, 0x0A]

    /// "gzip", "zstd" or "xz" when `bytes` start with that format's magic, else nil.
    public static func compression(of bytes: [UInt8]) -> String? {
        switch Int(fs_sniff(bytes, bytes.count)) {
        case Int(FS_GZIP): return "gzip"
        case Int(FS_ZSTD): return "zstd"
        case Int(FS_XZ): return "xz"
        default: return nil
        }
    }

    /// Whether the capture (decompressed) starts with a pcapng section header block.
    public static func isPcapNG(_ path: String) -> Bool {
        contentMagic(path) == pcapNGMagic
    }

    /// A classic pcap capture with microsecond timestamps (either byte order), compressed or not.
    public static func isMicrosecondPcap(_ path: String) -> Bool {
        let magic = contentMagic(path)
        return magic == [0xd4, 0xc3, 0xb2, 0xa1] || magic == [0xa1, 0xb2, 0xc3, 0xd4]
    }

    /// The first four bytes of the capture's content: decompressed, and for standard input
    /// those of its spool (empty when it was not kept).
    static func contentMagic(_ path: String) -> [UInt8] {
        if path == standardInput { return StandardInput.shared.contentMagic() }
        let first = firstBytes(path, 6)
        guard compression(of: first) != nil else { return Array(first.prefix(4)) }
        return (try? ByteStream(path: path))?.peek(4) ?? []
    }

    static func firstBytes(_ path: String, _ count: Int) -> [UInt8] {
        guard let file = fopen(path, "rb") else { return [] }
        defer { fclose(file) }
        var bytes = [UInt8](repeating: 0, count: count)
        let read = fread(&bytes, 1, count, file)
        return Array(bytes.prefix(read))
    }
}

/// Standard input as a capture (`-`): read once, as a stream (pcap or pcapng, compressed
/// or not). When a second pass will need the packets again (ladders, exports, the HTML
/// page), `keepForSecondPass()` first makes a spool file in $TMPDIR, removed from the
/// directory at once (the descriptor keeps it until exit), and every raw byte read from
/// standard input is written there too; opening `-` again reads the spool.
public final class StandardInput: @unchecked Sendable {
    public static let shared = StandardInput()

    private let lock = NSLock()
    private var spool: Int32 = -1
    private var spoolDirectory = ""
    private var consumed = false
    /// The first pass's stream, to ask whether spooling failed.
    private weak var firstStream: ByteStream?
    private var spoolErrno: Int32 = 0

    /// Shown in messages about standard input.
    public static let displayName = "standard input"

    /// The directory for the spool: $TMPDIR, else /tmp.
    static var temporaryDirectory: String {
        let value = ProcessInfo.processInfo.environment["TMPDIR"] ?? ""
        return value.isEmpty ? "/tmp" : value
    }

    /// Makes the spool file (before standard input is first read). Throws when it cannot
    /// be made: the second pass would have nothing to read.
    public func keepForSecondPass() throws {
        lock.lock()
        defer { lock.unlock() }
        guard spool < 0, !consumed else { return }
        let directory = Self.temporaryDirectory
        var template = Array("\(directory)/finscope-stdin-XXXXXX".utf8CString)
        let descriptor = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard descriptor >= 0 else {
            throw CaptureError.cannotWrite(path: directory, reason: "cannot keep standard input for the second pass "
                + "(--ladder, --export, --html): \(String(cString: strerror(errno))) (set TMPDIR to a writable directory)")
        }
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC)
        spool = descriptor
        spoolDirectory = directory
    }

    /// Why the spool does not hold all that was read (a failed write, e.g. no space), or nil.
    public func spoolProblem() -> CaptureError? {
        lock.lock()
        defer { lock.unlock() }
        guard spool >= 0 else { return nil }
        let error = firstStream?.spoolErrno ?? spoolErrno
        if let stream = firstStream { spoolErrno = stream.spoolErrno }
        guard error != 0 else { return nil }
        return CaptureError.cannotWrite(path: spoolDirectory, reason: "cannot keep standard input for the second pass "
            + "(--ladder, --export, --html): \(String(cString: strerror(error))) (set TMPDIR to a directory with room)")
    }

    /// Standard input the first time; its spool afterwards (an error when none was kept).
    func open(filter: String?) throws -> any FrameSource {
        let name = Self.displayName
        let stream = try lock.withLock { () throws -> ByteStream in
            if consumed {
                return try reopenSpool()
            }
            if isatty(0) != 0 {
                throw CaptureError.cannotRead(path: name, reason: "it is a terminal; pipe or redirect a capture into finscope "
                    + "(tcpdump -w - ... | finscope analyze -)")
            }
            consumed = true
            let descriptor = dup(0)
            guard descriptor >= 0 else {
                throw CaptureError.cannotRead(path: name, reason: String(cString: strerror(errno)))
            }
            let stream = try ByteStream(descriptor: descriptor, spool: spool, name: name)
            firstStream = stream
            return stream
        }
        return try CaptureFiles.open(stream: stream, name: name, filter: filter)
    }

    /// A fresh read of the spool from its start (a descriptor of its own: readers do not
    /// share a file offset).
    private func reopenSpool() throws -> ByteStream {
        let name = Self.displayName
        guard spool >= 0 else {
            throw CaptureError.cannotRead(path: name, reason: "standard input was read already and not kept "
                + "(it can be read only once)")
        }
        if let stream = firstStream { spoolErrno = stream.spoolErrno }
        guard spoolErrno == 0 else {
            throw CaptureError.cannotRead(path: name, reason: "its spool is incomplete (\(String(cString: strerror(spoolErrno))))")
        }
        var descriptor = openReadOnly("/proc/self/fd/\(spool)")
        if descriptor < 0 {
            descriptor = dup(spool)
            if descriptor >= 0 { lseek(descriptor, 0, SEEK_SET) }
        }
        guard descriptor >= 0 else {
            throw CaptureError.cannotRead(path: name, reason: "its spool cannot be reopened (\(String(cString: strerror(errno))))")
        }
        return try ByteStream(descriptor: descriptor, name: name)
    }

    /// The first four bytes of standard input's content (from the spool), or empty.
    func contentMagic() -> [UInt8] {
        let stream = lock.withLock { consumed ? try? reopenSpool() : nil }
        return stream?.peek(4) ?? []
    }
}

/// open(2) by path, read-only (outside `StandardInput`, whose `open(filter:)` hides it).
private func openReadOnly(_ path: String) -> Int32 {
    open(path, O_RDONLY | O_CLOEXEC)
}
