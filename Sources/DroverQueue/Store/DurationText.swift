import DroverPersistence

/// Durations as people write them in configuration and on the command line: `500ms`, `30s`, `5m`,
/// `1h30m`, `2d`. A bare number is refused: `10` could mean anything.
public enum DurationText {
    private static let units: [(suffix: String, seconds: Double)] = [
        ("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86_400),
    ]

    /// The duration `text` names, or nil.
    public static func parse(_ text: String) -> Duration? {
        var rest = Substring(text)
        var total: Double = 0
        guard !rest.isEmpty else { return nil }
        while !rest.isEmpty {
            let digits = rest.prefix { $0.isASCII && ($0.isNumber || $0 == ".") }
            guard !digits.isEmpty, let value = Double(digits) else { return nil }
            rest = rest.dropFirst(digits.count)
            let letters = rest.prefix { $0.isASCII && $0.isLetter }
            guard let unit = units.first(where: { $0.suffix == letters }) else { return nil }
            rest = rest.dropFirst(letters.count)
            total += value * unit.seconds
        }
        guard total.isFinite, total < 1e12 else { return nil }
        return .milliseconds(Int64((total * 1000).rounded()))
    }

    /// What to write instead of `text`, for error messages.
    public static let examples = "500ms, 30s, 5m, 1h30m or 2d"

    /// `1h30m`, `45s`, `250ms`: the shortest text `parse` reads back as `duration` (to the millisecond).
    public static func format(_ duration: Duration) -> String {
        var millis = Int64((duration.seconds * 1000).rounded())
        if millis == 0 { return "0s" }
        var text = millis < 0 ? "-" : ""
        millis = abs(millis)
        for (suffix, seconds) in units.reversed() {
            let size = Int64(seconds * 1000)
            if millis >= size {
                text += "\(millis / size)\(suffix)"
                millis %= size
            }
        }
        return text
    }
}
