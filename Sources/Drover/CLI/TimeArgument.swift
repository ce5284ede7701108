import DroverPersistence
import Foundation

/// Times as people type them on the command line.
enum TimeArgument {
    /// The times a job may be given, as a user reads them.
    static let range = "0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z"

    static let examples = "2026-11-27T03:00:00Z, 2026-11-27T03:00:00+01:00, 2026-11-27 03:00 (local time) or @1795000000"

    /// `text` as a time: ISO 8601 with an offset, a local date and time, or `@` and Unix seconds.
    static func parse(_ text: String, timeZone: TimeZone = .current) -> Date? {
        if text.hasPrefix("@"), let seconds = Double(text.dropFirst()), seconds.isFinite {
            return Date(timeIntervalSince1970: seconds)
        }
        // With Z or an offset: read in the proleptic Gregorian calendar that PostgreSQL and SQLite
        // store (Foundation's formatter switches to the Julian calendar before 1582, so year 1
        // came out two days early, before the first time a job can have).
        // Foundation's formatters would also roll 2026-02-30 over into March.
        if let parsed = parseWithOffset(text) { return parsed }
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

    /// `YYYY-MM-DDTHH:MM:SS[.ffffff](Z|±HH:MM)`, years of four digits or more: nil when `text`
    /// is not of that form, else the time it names (nil inside when it names none).
    private static func parseWithOffset(_ text: String) -> Date?? {
        let bytes = Array(text.utf8)
        guard let t = bytes.firstIndex(of: UInt8(ascii: "T")), t >= 10, bytes[t - 3] == UInt8(ascii: "-"),
              bytes[t - 6] == UInt8(ascii: "-")
        else { return nil }
        var rest = String(decoding: bytes[(t + 1)...], as: UTF8.self)
        if rest.hasSuffix("Z") { rest = String(rest.dropLast()) + "+00" }
        guard rest.contains("+") || rest.contains("-") else { return nil }
        guard let year = Int(String(decoding: bytes[..<(t - 6)], as: UTF8.self)), year >= 0,
              let month = Int(String(decoding: bytes[(t - 5)..<(t - 3)], as: UTF8.self)), (1...12).contains(month),
              let day = Int(String(decoding: bytes[(t - 2)..<t], as: UTF8.self)),
              (1...CivilDate.daysIn(year: year, month: month)).contains(day)
        else { return .some(nil) }
        return .some(DatabaseTime.parse(String(decoding: bytes[..<t], as: UTF8.self) + " " + rest))
    }
}
