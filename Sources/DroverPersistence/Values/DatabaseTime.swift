import Foundation

/// How Drover writes a time into a database and reads it back, on both backends: the one
/// timestamp format of the project.
///
/// Written: `2026-11-27 02:02:31.123456+00`, always UTC with six fraction digits, so that every
/// written time has the same width and its text order is its time order (SQLite keeps times as
/// this text and compares it as text; PostgreSQL reads it as a `timestamptz`). Read: that, and
/// whatever PostgreSQL prints for `timestamptz` under DateStyle ISO (fractions of any length,
/// offsets `+05:30` and `+05:53:28`, `BC` years, `infinity`).
///
/// Written by hand rather than with a date formatter: it is on every row that carries a time, it
/// must not depend on the process locale, and PostgreSQL's offsets and `BC` years do not fit ISO
/// 8601 formatters.
public enum DatabaseTime {
    private static let microsPerSecond: Int64 = 1_000_000
    private static let secondsPerDay: Int64 = 86_400
    /// The widest instant whose microseconds fit in an Int64 (about 292,000 years either way).
    private static let limit = Double(Int64.max / 1_000_000 - 1)

    /// The text of `date`; `infinity` or `-infinity` for a date too far out to count in microseconds.
    public static func format(_ date: Date) -> String {
        let t = date.timeIntervalSince1970
        if date == .distantFuture || t.isNaN || t >= limit { return "infinity" }
        if date == .distantPast || t <= -limit { return "-infinity" }
        let micros = Int64((t * 1e6).rounded())
        let (seconds, fraction) = micros.floorDivided(by: microsPerSecond)
        let civil = CivilDate(seconds)

        var text = ""
        text.reserveCapacity(32)
        // PostgreSQL numbers years before 1 AD as "n BC" with no year 0.
        let bc = civil.year <= 0
        text += pad(Int64(bc ? 1 - civil.year : civil.year), 4)
        text += "-" + pad(Int64(civil.month), 2) + "-" + pad(Int64(civil.day), 2)
        text += " " + pad(Int64(civil.hour), 2) + ":" + pad(Int64(civil.minute), 2) + ":" + pad(Int64(civil.second), 2)
        text += "." + pad(fraction, 6) + "+00"
        if bc { text += " BC" }
        return text
    }

    /// `date` for people and logs, in UTC: `2026-11-27T02:02:31Z`, or with milliseconds
    /// `2026-11-27T02:02:31.123Z`; `separator` goes between the date and the time.
    public static func utcText(_ date: Date, separator: String = "T", milliseconds: Bool = false) -> String {
        let t = date.timeIntervalSince1970
        guard t.isFinite, abs(t) < limit else { return t < 0 ? "-infinity" : "infinity" }
        let millis = Int64((t * 1000).rounded(.down))
        let (seconds, fraction) = millis.floorDivided(by: 1000)
        let civil = CivilDate(seconds)
        var text = pad(Int64(civil.year), 4) + "-" + pad(Int64(civil.month), 2) + "-" + pad(Int64(civil.day), 2) + separator
        text += pad(Int64(civil.hour), 2) + ":" + pad(Int64(civil.minute), 2) + ":" + pad(Int64(civil.second), 2)
        if milliseconds { text += "." + pad(fraction, 3) }
        return text + "Z"
    }

    /// Parses what PostgreSQL prints for `timestamptz` (or `timestamp`, read as UTC) under DateStyle ISO.
    public static func parse(_ text: String) -> Date? {
        switch text {
        case "infinity": return .distantFuture
        case "-infinity": return .distantPast
        default: break
        }
        var scanner = Scanner(Array(text.utf8))
        guard let yearDigits = scanner.digits(), scanner.take(UInt8(ascii: "-")),
              let month = scanner.digits(count: 2), scanner.take(UInt8(ascii: "-")),
              let day = scanner.digits(count: 2), scanner.take(UInt8(ascii: " ")),
              let hour = scanner.digits(count: 2), scanner.take(UInt8(ascii: ":")),
              let minute = scanner.digits(count: 2), scanner.take(UInt8(ascii: ":")),
              let second = scanner.digits(count: 2)
        else { return nil }
        var fraction: Int64 = 0
        if scanner.take(UInt8(ascii: ".")) {
            let start = scanner.position
            guard let value = scanner.digits(), scanner.position - start <= 6 else { return nil }
            var scaled = value
            for _ in 0..<(6 - (scanner.position - start)) { scaled *= 10 }
            fraction = scaled
        }
        var offsetSeconds: Int64 = 0
        if let sign = scanner.peek(), sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") {
            scanner.position += 1
            guard let oh = scanner.digits(count: 2) else { return nil }
            var offset = oh * 3600
            if scanner.take(UInt8(ascii: ":")) {
                guard let om = scanner.digits(count: 2) else { return nil }
                offset += om * 60
                if scanner.take(UInt8(ascii: ":")) {
                    guard let os = scanner.digits(count: 2) else { return nil }
                    offset += os
                }
            }
            offsetSeconds = sign == UInt8(ascii: "+") ? offset : -offset
        }
        var year = yearDigits
        if scanner.take(Array(" BC".utf8)) { year = 1 - year }
        guard scanner.atEnd, (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60,
              second < 60
        else { return nil }

        let days = CivilDate.daysSinceEpoch(year: year, month: month, day: day)
        let seconds = days * secondsPerDay + hour * 3600 + minute * 60 + second - offsetSeconds
        let micros = seconds * microsPerSecond + fraction
        return Date(timeIntervalSince1970: Double(micros) / 1e6)
    }

    private static func pad(_ value: Int64, _ width: Int) -> String {
        let digits = String(value)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }

    private struct Scanner {
        let bytes: [UInt8]
        var position = 0
        init(_ bytes: [UInt8]) { self.bytes = bytes }

        var atEnd: Bool { position == bytes.count }
        func peek() -> UInt8? { position < bytes.count ? bytes[position] : nil }

        mutating func take(_ byte: UInt8) -> Bool {
            guard peek() == byte else { return false }
            position += 1
            return true
        }

        mutating func take(_ sequence: [UInt8]) -> Bool {
            guard bytes.count - position >= sequence.count,
                  Array(bytes[position..<position + sequence.count]) == sequence
            else { return false }
            position += sequence.count
            return true
        }

        /// Exactly `count` digits, or (count nil) one or more.
        mutating func digits(count: Int? = nil) -> Int64? {
            var value: Int64 = 0
            let start = position
            while let b = peek(), b >= UInt8(ascii: "0"), b <= UInt8(ascii: "9") {
                if let count, position - start == count { break }
                guard position - start < 18 else { return nil }
                value = value * 10 + Int64(b - UInt8(ascii: "0"))
                position += 1
            }
            if position == start { return nil }
            if let count, position - start != count { return nil }
            return value
        }
    }
}
