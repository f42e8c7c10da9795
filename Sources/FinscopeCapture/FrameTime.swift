import CPcap
import FinscopeWire

/// The one conversion of capture timestamps to `Nanoseconds`, for every frame source.
///
/// Times are clamped to 1970...2116 (0 ..< 2^62 ns) so that the difference of any two
/// cannot overflow: a pcapng stamp is 64 bits with a signed offset, and a damaged or
/// hostile file can claim any time at all.
public enum FrameTime {
    /// The last second a frame time may hold. (Computed, so inlined callers fold it.)
    @inlinable public static var latestSecond: Int64 { 4_611_686_017 }

    /// A frame time from seconds and nanoseconds, clamped.
    @inlinable @inline(__always)
    public static func nanoseconds(seconds: Int64, nanoseconds: Int64) -> Nanoseconds {
        min(max(seconds, 0), latestSecond) &* 1_000_000_000 &+ min(max(nanoseconds, 0), 999_999_999)
    }

    /// A libpcap header's time; `nanosecondPrecision` when the handle was opened with
    /// PCAP_TSTAMP_PRECISION_NANO (libpcap then puts nanoseconds in `tv_usec`).
    @inlinable @inline(__always)  // every frame, in the consumer's libpcap callback
    public static func nanoseconds(_ ts: timeval, nanosecondPrecision: Bool) -> Nanoseconds {
        let fraction = Int64(ts.tv_usec)
        return nanoseconds(seconds: Int64(ts.tv_sec), nanoseconds: nanosecondPrecision ? fraction : fraction &* 1_000)
    }

    /// A pcapng timestamp: `units` since the epoch at `unitsPerSecond`, plus `if_tsoffset`.
    @inline(__always)
    public static func nanoseconds(units: UInt64, unitsPerSecond: UInt64, offsetSeconds: Int64) -> Nanoseconds {
        let seconds = Int64(truncatingIfNeeded: units / unitsPerSecond) &+ offsetSeconds
        let fraction = units % unitsPerSecond
        // fraction < unitsPerSecond, so the quotient is below 1e9 even when the product needs 128 bits.
        let nanos = Int64(unitsPerSecond.dividingFullWidth(fraction.multipliedFullWidth(by: 1_000_000_000)).quotient)
        return nanoseconds(seconds: seconds, nanoseconds: nanos)
    }

    /// A time as a libpcap header's `ts`, at nanosecond or microsecond precision.
    public static func timeval(_ time: Nanoseconds, nanosecondPrecision: Bool) -> timeval {
        var ts = CPcap.timeval()
        ts.tv_sec = Int(time / 1_000_000_000)
        let fraction = time % 1_000_000_000
        ts.tv_usec = Int(nanosecondPrecision ? fraction : fraction / 1_000)
        return ts
    }
}
