import CPcap

/// A compiled BPF filter (pcap-filter(7)) and the one owner of its memory.
///
/// Offline, filters run per frame with `pcap_offline_filter` rather than being installed
/// with `pcap_setfilter`, so that frames they reject still tell when the capture ended.
public final class BPFProgram {
    /// Owned here; a dispatch loop may hold it unretained while the program lives.
    let program: UnsafeMutablePointer<bpf_program>

    private init(program: UnsafeMutablePointer<bpf_program>) {
        self.program = program
    }

    deinit {
        pcap_freecode(program)
        program.deallocate()
    }

    /// Compiles `expression` for an open handle (a file or a live capture).
    public convenience init(expression: String, handle: OpaquePointer) throws {
        let program = UnsafeMutablePointer<bpf_program>.allocate(capacity: 1)
        program.initialize(to: bpf_program())
        guard pcap_compile(handle, program, expression, 1, PCAP_NETMASK_UNKNOWN) == 0 else {
            let reason = String(cString: pcap_geterr(handle))
            program.deallocate()
            throw CaptureError.badFilter(expression: expression, reason: reason)
        }
        self.init(program: program)
    }

    /// Compiles `expression` for frames of `linkType` (a file's LINKTYPE_ value).
    public convenience init(expression: String, linkType: Int32) throws {
        // LINKTYPE_RAW (101) is DLT_RAW (12) to libpcap's compiler.
        guard let dead = pcap_open_dead(linkType == 101 ? 12 : linkType, 262_144) else {
            throw CaptureError.badFilter(expression: expression, reason: "libpcap cannot compile for link type \(linkType)")
        }
        defer { pcap_close(dead) }
        try self.init(expression: expression, handle: dead)
    }

    /// A program that passes nothing: for an interface the expression cannot describe.
    public static func rejectingAll(linkType: Int32) -> BPFProgram? {
        try? BPFProgram(expression: "less 0", linkType: linkType)
    }

    @inline(__always)
    public func matches(_ header: UnsafePointer<pcap_pkthdr>, _ data: UnsafePointer<UInt8>) -> Bool {
        pcap_offline_filter(program, header, data) != 0
    }

    /// Installs the program in the kernel (live capture): rejected frames never reach us.
    func install(on handle: OpaquePointer) throws {
        guard pcap_setfilter(handle, program) == 0 else {
            throw CaptureError.badFilter(expression: "", reason: String(cString: pcap_geterr(handle)))
        }
    }
}
