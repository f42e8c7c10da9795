import FinscopeFindings
import FinscopeFlows
import FinscopeWire

/// Exact decimal seconds from nanoseconds, microsecond precision: "1700000000.123456".
public func secondsText(_ nanoseconds: Nanoseconds) -> String {
    let negative = nanoseconds < 0
    let micros = (negative ? -nanoseconds : nanoseconds) / 1_000
    let whole = micros / 1_000_000
    let fraction = String(micros % 1_000_000)
    let padded = String(repeating: "0", count: 6 - fraction.count) + fraction
    return (negative ? "-" : "") + "\(whole).\(padded)"
}

/// A human duration: "850 ms", "12.4 s", "3 min 05 s", "2 h 04 min".
public func durationText(_ nanoseconds: Nanoseconds) -> String {
    let ms = nanoseconds / 1_000_000
    if ms < 1_000 { return "\(ms) ms" }
    if ms < 60_000 {
        let tenths = (ms + 50) / 100
        return "\(tenths / 10).\(tenths % 10) s"
    }
    let seconds = ms / 1_000
    if seconds < 3_600 { return "\(seconds / 60) min \(twoDigits(seconds % 60)) s" }
    return "\(seconds / 3_600) h \(twoDigits(seconds % 3_600 / 60)) min"
}

func twoDigits(_ value: Int64) -> String { value < 10 ? "0\(value)" : "\(value)" }

/// UTC wall-clock time of day with milliseconds: "2026-11-26 06:55:44.123 UTC".
public func utcText(_ nanoseconds: Nanoseconds) -> String {
    let totalMs = nanoseconds / 1_000_000
    var days = totalMs / 86_400_000
    var msOfDay = totalMs % 86_400_000
    if msOfDay < 0 { msOfDay += 86_400_000; days -= 1 }
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468
    let era = (z >= 0 ? z : z - 146_096) / 146_097
    let doe = z - era * 146_097
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
    let mp = (5 * doy + 2) / 153
    let day = doy - (153 * mp + 2) / 5 + 1
    let month = mp < 10 ? mp + 3 : mp - 9
    let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
    let h = msOfDay / 3_600_000, m = msOfDay / 60_000 % 60, s = msOfDay / 1_000 % 60, milli = msOfDay % 1_000
    let milliText = milli < 10 ? "00\(milli)" : milli < 100 ? "0\(milli)" : "\(milli)"
    return "\(year)-\(twoDigits(month))-\(twoDigits(day)) \(twoDigits(h)):\(twoDigits(m)):\(twoDigits(s)).\(milliText) UTC"
}

/// "1,234,567".
public func grouped(_ value: Int) -> String {
    let digits = String(value.magnitude)
    var out = ""
    for (index, character) in digits.enumerated() {
        if index > 0, (digits.count - index) % 3 == 0 { out += "," }
        out.append(character)
    }
    return value < 0 ? "-" + out : out
}
