import Foundation

/// Times as people type them on the command line.
enum TimeArgument {
    static let examples = "2026-11-27T03:00:00Z, 2026-11-27T03:00:00+01:00, 2026-11-27 03:00 (local time) or @1795000000"

    /// `text` as a time: ISO 8601 with an offset, a local date and time, or `@` and Unix seconds.
    static func parse(_ text: String, timeZone: TimeZone = .current) -> Date? {
        if text.hasPrefix("@"), let seconds = Double(text.dropFirst()), seconds.isFinite {
            return Date(timeIntervalSince1970: seconds)
        }
        let iso = ISO8601DateFormatter()
        iso.formatOptions = [.withInternetDateTime]
        if let date = iso.date(from: text) { return date }
        iso.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = iso.date(from: text) { return date }
        let local = DateFormatter()
        local.locale = Locale(identifier: "en_US_POSIX")
        local.timeZone = timeZone
        for format in ["yyyy-MM-dd'T'HH:mm:ss", "yyyy-MM-dd HH:mm:ss", "yyyy-MM-dd'T'HH:mm", "yyyy-MM-dd HH:mm"] {
            local.dateFormat = format
            if let date = local.date(from: text) { return date }
        }
        return nil
    }
}
