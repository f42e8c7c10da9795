// IEEE 802.11 header views: the MAC header of data frames, the LLC/SNAP header that
// follows it, and the two radio headers captures put in front (radiotap, PPI).
// Formats and sources: docs/link-types.md.

/// The 802.11 MAC header (IEEE 802.11-2020 §9.2.4, §9.3.2.1). `check` needs only the
/// frame control to classify a frame; for data frames it also requires the whole header.
struct IEEE80211HeaderView {
    /// Frame control, duration, three addresses, sequence control.
    static let baseLength = 24
    static let dataType: UInt8 = 2
    enum Field {
        static let frameControl = 0
        static let flags = 1
        static let duration = 2
        static let address1 = 4
        static let address2 = 10
        static let address3 = 16
        static let sequenceControl = 22
        static let address4 = 24
    }
    enum Flag {
        static let toDS: UInt8 = 0x01
        static let fromDS: UInt8 = 0x02
        static let moreFragments: UInt8 = 0x04
        static let protected: UInt8 = 0x40
        /// +HTC on QoS data frames: a 4-byte HT Control field follows QoS control.
        static let order: UInt8 = 0x80
    }
    typealias Problem = HeaderProblem
    let bytes: UnsafeRawBufferPointer

    static func check(_ bytes: UnsafeRawBufferPointer) -> Problem? {
        guard bytes.count >= 2 else { return .truncated }
        let view = IEEE80211HeaderView(checked: bytes)
        guard view.type == dataType else { return nil }  // classified from the frame control alone
        return bytes.count >= view.headerLength ? nil : .truncated
    }

    init(checked bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    /// Bits 0-1 of the frame control: 0 for every frame but 802.11ah's PV1.
    var protocolVersion: UInt8 { bytes.u8(Field.frameControl) & 0x03 }
    /// 0 management, 1 control, 2 data, 3 extension.
    var type: UInt8 { (bytes.u8(Field.frameControl) >> 2) & 0x03 }
    var subtype: UInt8 { bytes.u8(Field.frameControl) >> 4 }
    var flags: UInt8 { bytes.u8(Field.flags) }
    /// Data subtypes 8-15 carry a 2-byte QoS control field.
    var isQoS: Bool { subtype & 0x08 != 0 }
    /// Data subtypes with bit 2 set (Null, QoS Null, CF-Ack/Poll only) have no frame body.
    var hasNoBody: Bool { subtype & 0x04 != 0 }
    var isProtected: Bool { flags & Flag.protected != 0 }
    var moreFragments: Bool { flags & Flag.moreFragments != 0 }

    /// Valid for data frames (after `check`).
    var headerLength: Int {
        var length = Self.baseLength
        if flags & (Flag.toDS | Flag.fromDS) == Flag.toDS | Flag.fromDS { length += 6 }  // address 4
        if isQoS {
            length += 2
            if flags & Flag.order != 0 { length += 4 }
        }
        return length
    }
    var fragmentNumber: Int { Int(bytes.u8(Field.sequenceControl) & 0x0f) }
    /// QoS control bit 7: the body is an A-MSDU (several subframes), not one MSDU.
    var isAggregate: Bool {
        guard isQoS else { return false }
        let qos = flags & (Flag.toDS | Flag.fromDS) == Flag.toDS | Flag.fromDS ? 30 : 24
        return bytes.u8(qos) & 0x80 != 0
    }
}

/// IEEE 802.2 LLC with a SNAP header (RFC 1042): AA AA 03, an OUI, an EtherType.
struct LLCSNAPHeaderView {
    static let length = 8
    enum Field {
        static let dsap = 0
        static let ssap = 1
        static let control = 2
        static let organization = 3
        static let etherType = 6
    }
    typealias Problem = HeaderProblem
    let bytes: UnsafeRawBufferPointer

    static func check(_ bytes: UnsafeRawBufferPointer) -> Problem? {
        bytes.count >= length ? nil : .truncated
    }

    init(checked bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    /// SNAP with OUI 00-00-00 (RFC 1042) or 00-00-F8 (802.1H bridge tunnel): an EtherType follows.
    var carriesEtherType: Bool {
        guard bytes.u8(Field.dsap) == 0xaa, bytes.u8(Field.ssap) == 0xaa, bytes.u8(Field.control) == 0x03 else { return false }
        let organization = UInt32(bytes.u8(Field.organization)) << 16 | UInt32(bytes.u16(Field.organization + 1))
        return organization == 0 || organization == 0xf8
    }
    var etherType: UInt16 { bytes.u16(Field.etherType) }
}

/// The radiotap header (LINKTYPE_IEEE802_11_RADIOTAP 127, radiotap.org): version 0, pad,
/// little-endian length and present bitmap(s), then fields in bit order, each aligned to
/// its natural size. Only the Flags field is read: TSFT (bit 0, 8 bytes, 8-aligned) is
/// the one field that can precede it.
struct RadiotapHeaderView {
    static let minimumLength = 8
    enum Field {
        static let version = 0
        static let pad = 1
        static let length = 2
        static let present = 4
    }
    enum Present {
        static let tsft: UInt32 = 1 << 0
        static let flags: UInt32 = 1 << 1
        /// Another 32-bit present word follows this one.
        static let extended: UInt32 = 1 << 31
    }
    enum Flag {
        /// The 802.11 frame ends with its 4-byte FCS.
        static let fcsAtEnd: UInt8 = 0x10
        /// Padding between the 802.11 header and the body, to a multiple of 4.
        static let dataPad: UInt8 = 0x20
        /// The frame failed its FCS check.
        static let badFCS: UInt8 = 0x40
    }
    typealias Problem = HeaderProblem
    let bytes: UnsafeRawBufferPointer

    static func check(_ bytes: UnsafeRawBufferPointer, wireLength: Int) -> Problem? {
        guard bytes.count >= minimumLength else { return wireLength >= minimumLength ? .truncated : .malformed }
        guard bytes.u8(Field.version) == 0 else { return .malformed }
        let length = Int(bytes.u16le(Field.length))
        guard length >= minimumLength, length <= wireLength else { return .malformed }
        guard bytes.count >= length else { return .truncated }
        return nil
    }

    init(checked bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var headerLength: Int { Int(bytes.u16le(Field.length)) }

    /// The Flags field, or 0 when absent (or when the header is too short to hold it).
    var flags: UInt8 {
        let length = headerLength
        let first = bytes.u32le(Field.present)
        var word = Field.present
        var present = first
        // Walk extended bitmaps to find where the fields begin; bounded by the header length.
        while present & Present.extended != 0 {
            word += 4
            guard word + 4 <= length else { return 0 }
            present = bytes.u32le(word)
        }
        guard first & Present.flags != 0 else { return 0 }
        var offset = word + 4
        if first & Present.tsft != 0 { offset = ((offset + 7) & ~7) + 8 }
        return offset < length ? bytes.u8(offset) : 0
    }
}

/// The PPI header (LINKTYPE_PPI 192, CACE "Per-Packet Information Header Specification"
/// 1.0.10): version 0, flags, little-endian length and the DLT of the frame that follows,
/// then fields (type, length, data; little-endian). The 802.11-Common field (type 2)
/// says whether the frame ends with an FCS.
struct PPIHeaderView {
    static let minimumLength = 8
    enum Field {
        static let version = 0
        static let flags = 1
        static let length = 2
        static let linkType = 4
        static let fields = 8
    }
    /// The contained link types decoded, from `LinkKind.table` (read once, not per frame).
    static let ieee80211LinkType = UInt32(LinkKind.ieee80211.linkType)
    static let ethernetLinkType = UInt32(LinkKind.ethernet.linkType)
    static let commonFieldType: UInt16 = 2
    /// Offset of the flags inside the 802.11-Common field's data (after the TSF timer).
    static let commonFlagsOffset = 8
    enum CommonFlag {
        static let fcsPresent: UInt16 = 0x0001
        static let fcsInvalid: UInt16 = 0x0004
    }
    /// Header flag bit 0: fields are padded to 32-bit boundaries.
    static let alignedFlag: UInt8 = 0x01
    typealias Problem = HeaderProblem
    let bytes: UnsafeRawBufferPointer

    static func check(_ bytes: UnsafeRawBufferPointer, wireLength: Int) -> Problem? {
        guard bytes.count >= minimumLength else { return wireLength >= minimumLength ? .truncated : .malformed }
        guard bytes.u8(Field.version) == 0 else { return .malformed }
        let length = Int(bytes.u16le(Field.length))
        guard length >= minimumLength, length <= wireLength else { return .malformed }
        guard bytes.count >= length else { return .truncated }
        return nil
    }

    init(checked bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var headerLength: Int { Int(bytes.u16le(Field.length)) }
    var linkType: UInt32 { bytes.u32le(Field.linkType) }

    /// The 802.11-Common field's flags, or 0 without one. Each step moves at least 4
    /// bytes and stays inside the header.
    var commonFlags: UInt16 {
        let end = headerLength
        let aligned = bytes.u8(Field.flags) & Self.alignedFlag != 0
        var offset = Field.fields
        while offset + 4 <= end {
            let type = bytes.u16le(offset)
            let length = Int(bytes.u16le(offset + 2))
            if type == Self.commonFieldType {
                let at = offset + 4 + Self.commonFlagsOffset
                return length >= Self.commonFlagsOffset + 2 && at + 2 <= end ? bytes.u16le(at) : 0
            }
            offset += 4 + length
            if aligned { offset = (offset + 3) & ~3 }
        }
        return 0
    }
}
