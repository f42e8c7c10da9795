/// The link-layer header types finscope decodes, by the numbers libpcap reports
/// (`pcap_datalink`, which gives DLT_ values) and the LINKTYPE_ values files carry.
///
/// `LinkKind.table` below is the only list of those numbers in the package: reading
/// (`init?(linkType:)`), writing (`linkType`) and error messages (`decodedNames`) all
/// come from it. The formats are described in docs/link-types.md.
public enum LinkKind: Sendable, Equatable, CaseIterable {
    case ethernet
    /// BSD loopback: a 4-byte address family in the capturing host's byte order.
    case null
    /// OpenBSD loopback: the same, in network byte order.
    case loop
    case rawIP
    case ipv4
    case ipv6
    case linuxCooked
    case linuxCooked2
    /// Linux netfilter NFLOG (`tcpdump -i nflog:N`): a 4-byte header, then TLVs.
    case nflog
    /// PPP (DLT_PPP): optional address/control, then the PPP protocol number.
    case ppp
    /// PPP in HDLC-like framing (DLT_PPP_SERIAL), or Cisco HDLC framing on the same link type.
    case pppHDLC
    /// Cisco HDLC (DLT_C_HDLC): address, control, an EtherType.
    case ciscoHDLC
    /// OpenBSD/FreeBSD/macOS pf log (`pflog0`): a variable-length pfloghdr, then IP.
    case pflog
    /// IP over InfiniBand as Linux captures it: a 40-byte address pseudo-header, then 4 bytes.
    case ipOverInfiniBand
    /// IEEE 802.11 frames without a radio header.
    case ieee80211
    /// IEEE 802.11 frames behind a radiotap header.
    case ieee80211Radiotap
    /// A PPI header, then a frame of the link type it names (802.11 or Ethernet).
    case ppi

    struct Entry {
        var kind: LinkKind
        /// The DLT_ value to hand to `pcap_open_dead` (libpcap turns it into the file's
        /// LINKTYPE_), then any other numbers that mean the same format.
        var numbers: [Int32]
        var name: String
        /// The wording in `decodedNames`; kinds sharing one are listed once.
        var family: String
    }

    /// Every decoded link type. DLT_RAW is 12 on Linux and most BSDs (14 on OpenBSD)
    /// and files carry LINKTYPE_RAW 101; libpcap writes 101 for DLT 12, so 12 comes
    /// first. DLT_LOOP is 108 except on OpenBSD (12 there, which this Linux tool reads
    /// as raw IP, as libpcap on Linux does).
    static let table: [Entry] = [
        Entry(kind: .ethernet, numbers: [1], name: "Ethernet", family: "Ethernet"),
        Entry(kind: .linuxCooked, numbers: [113], name: "Linux cooked (SLL)", family: "Linux cooked (SLL/SLL2)"),
        Entry(kind: .linuxCooked2, numbers: [276], name: "Linux cooked v2 (SLL2)", family: "Linux cooked (SLL/SLL2)"),
        Entry(kind: .null, numbers: [0], name: "BSD loopback (NULL)", family: "BSD loopback"),
        Entry(kind: .loop, numbers: [108], name: "OpenBSD loopback (LOOP)", family: "BSD loopback"),
        Entry(kind: .rawIP, numbers: [12, 14, 101], name: "raw IP", family: "raw IP"),
        Entry(kind: .ipv4, numbers: [228], name: "raw IPv4", family: "raw IP"),
        Entry(kind: .ipv6, numbers: [229], name: "raw IPv6", family: "raw IP"),
        Entry(kind: .nflog, numbers: [239], name: "Linux NFLOG", family: "NFLOG"),
        Entry(kind: .ppp, numbers: [9], name: "PPP", family: "PPP"),
        Entry(kind: .pppHDLC, numbers: [50], name: "PPP in HDLC framing", family: "PPP"),
        Entry(kind: .ciscoHDLC, numbers: [104], name: "Cisco HDLC", family: "Cisco HDLC"),
        Entry(kind: .pflog, numbers: [117], name: "pflog", family: "pflog"),
        Entry(kind: .ipOverInfiniBand, numbers: [242], name: "IP over InfiniBand", family: "IPoIB"),
        Entry(kind: .ieee80211, numbers: [105], name: "802.11", family: "802.11 (plain, radiotap, PPI)"),
        Entry(kind: .ieee80211Radiotap, numbers: [127], name: "802.11 with radiotap", family: "802.11 (plain, radiotap, PPI)"),
        Entry(kind: .ppi, numbers: [192], name: "PPI", family: "802.11 (plain, radiotap, PPI)"),
    ]

    /// nil for a link type finscope does not decode.
    public init?(linkType: Int32) {
        guard let entry = Self.table.first(where: { $0.numbers.contains(linkType) }) else { return nil }
        self = entry.kind
    }

    private var entry: Entry {
        // Every case has a row (a test checks it); the fallback only keeps this total.
        Self.table.first { $0.kind == self } ?? Self.table[0]
    }

    /// The DLT number to write for this kind (`pcap_open_dead`, then `pcap_dump_open`).
    public var linkType: Int32 { entry.numbers[0] }

    /// A short human name ("Linux NFLOG", "802.11 with radiotap").
    public var name: String { entry.name }

    /// The decoded link types for an error message: "Ethernet, Linux cooked (SLL/SLL2), ...".
    public static var decodedNames: String {
        var families: [String] = []
        for entry in table where !families.contains(entry.family) { families.append(entry.family) }
        return families.joined(separator: ", ")
    }
}
