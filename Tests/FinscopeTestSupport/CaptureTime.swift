/// A capture timestamp held exactly: whole seconds since the Unix epoch plus nanoseconds.
///
/// `Double` seconds are fine for writing tests ("start + 9.001"), but only the
/// nanosecond form is exact; both writers keep this form until they encode a record.
public struct CaptureTime: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var seconds: Int64
    /// 0 ..< 1_000_000_000
    public var nanoseconds: Int64

    public init(seconds: Int64, nanoseconds: Int64) {
        let carry = nanoseconds >= 0 ? nanoseconds / 1_000_000_000 : (nanoseconds - 999_999_999) / 1_000_000_000
        self.seconds = seconds + carry
        self.nanoseconds = nanoseconds - carry * 1_000_000_000
    }

    /// Exact nanoseconds since the epoch.
    public init(nanoseconds total: Int64) {
        self.init(seconds: 0, nanoseconds: total)
    }

    /// Seconds since the epoch, rounded to the nearest nanosecond.
    public init(_ seconds: Double) {
        let whole = seconds.rounded(.down)
        let fraction = seconds - whole  // exact (Sterbenz)
        self.init(seconds: Int64(whole), nanoseconds: Int64((fraction * 1e9).rounded()))
    }

    /// Exact nanoseconds since the epoch.
    public var totalNanoseconds: Int64 { seconds * 1_000_000_000 + nanoseconds }

    /// Seconds since the epoch as a `Double` (what finscope's JSON prints).
    public var doubleValue: Double { Double(seconds) + Double(nanoseconds) / 1e9 }

    /// This time plus `offset` seconds (rounded to the nanosecond).
    public func adding(_ offset: Double) -> CaptureTime {
        let whole = offset.rounded(.down)
        let fraction = offset - whole
        return CaptureTime(seconds: seconds + Int64(whole),
                           nanoseconds: nanoseconds + Int64((fraction * 1e9).rounded()))
    }

    /// This time plus `nanoseconds`.
    public func adding(nanoseconds delta: Int64) -> CaptureTime {
        CaptureTime(seconds: seconds, nanoseconds: nanoseconds + delta)
    }

    /// (seconds, microseconds) rounded to the nearest microsecond, carry included.
    public var microsecondParts: (seconds: Int64, microseconds: Int64) {
        let rounded = CaptureTime(seconds: seconds, nanoseconds: (nanoseconds + 500) / 1000 * 1000)
        return (rounded.seconds, rounded.nanoseconds / 1000)
    }

    public static func < (lhs: CaptureTime, rhs: CaptureTime) -> Bool {
        (lhs.seconds, lhs.nanoseconds) < (rhs.seconds, rhs.nanoseconds)
    }

    public var description: String {
        let fraction = String(nanoseconds)
        return "\(seconds).\(String(repeating: "0", count: 9 - fraction.count))\(fraction)"
    }
}
