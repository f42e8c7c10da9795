import ArgumentParser

/// A length of time on the command line, as `--duration 30s` or `--idle-timeout 5m` take
/// it: a number with a unit `ms`, `s`, `m` or `h`; a bare number is seconds (`1.5` and
/// `1.5s` are the same). The sign is kept, so that `validate()` can name the option and
/// its rule for a negative value rather than the parser calling it malformed.
struct TimeValue: ExpressibleByArgument, Equatable, Sendable, CustomStringConvertible {
    /// Seconds.
    var seconds: Double

    init(seconds: Double) {
        self.seconds = seconds
    }

    static let units: [(suffix: String, seconds: Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3_600)]

    init?(argument: String) {
        var number = Substring(argument)
        var scale = 1.0
        // "ms" before "s", so that 250ms is not read as "250m" + "s".
        for unit in Self.units where number.hasSuffix(unit.suffix) {
            number = number.dropLast(unit.suffix.count)
            scale = unit.seconds
            break
        }
        // Digits, at most one point and a leading sign: no "inf", "nan", "0x10" or "1e3".
        let digits = number.hasPrefix("-") || number.hasPrefix("+") ? number.dropFirst() : number
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }),
              digits.filter({ $0 == "." }).count <= 1, digits != ".",
              let value = Double(number) else { return nil }
        seconds = value * scale
    }

    /// "10s", "5m", "250ms": how a default shows in `--help`.
    var description: String {
        if seconds == 0 { return "0s" }
        for unit in Self.units.reversed() {
            let count = seconds / unit.seconds
            if count == count.rounded(), abs(count) >= 1 { return "\(Int(count))\(unit.suffix)" }
        }
        return "\(seconds)s"
    }

    var defaultValueDescription: String { description }

    /// The most any of these options takes: seconds × 10^9 must fit the 64-bit nanosecond clock.
    static let century = 3_155_760_000.0

    /// Throws a message naming `option` and its rule unless the value is more than 0 (or,
    /// with `zeroAllowed`, at least 0) and at most a century.
    func check(_ option: String, zeroAllowed: Bool = false, zeroMeans: String? = nil) throws {
        let lower = zeroAllowed ? seconds >= 0 : seconds > 0
        guard lower, seconds <= Self.century else {
            let rule = zeroAllowed
                ? "must be 0 or more\(zeroMeans.map { " (0: \($0))" } ?? "")"
                : "must be more than 0"
            throw ValidationError("\(option) \(rule) and at most a century (3155760000s): got \(self); "
                + "give a time such as 500ms, 30s, 5m or 1h (a bare number is seconds)")
        }
    }
}

/// The sentence every time option's help ends with.
let timeUnitsHelp = "Units: ms, s, m, h; a bare number is seconds."
