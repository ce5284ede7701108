import Foundation

/// PostgreSQL's ISO text format for `timestamptz` (DateStyle ISO), both ways, with microseconds.
///
/// Written by hand rather than with a date formatter: it is on every row that carries a time, it must
/// not depend on the process locale, and PostgreSQL's offsets (`+00`, `+05:30`, `+05:53:28`) and
/// `BC` years do not fit ISO 8601 formatters.
enum PostgresTimestamp {
    private static let microsPerSecond: Int64 = 1_000_000
    private static let secondsPerDay: Int64 = 86_400

    /// `2026-11-27 02:02:31.123456+00`, always in UTC, so it means the same under any session TimeZone.
    static func format(_ date: Date) -> String {
        if date == .distantFuture { return "infinity" }
        if date == .distantPast { return "-infinity" }
        let micros = Int64((date.timeIntervalSince1970 * 1e6).rounded())
        let (days, microsOfDay) = micros.floorDivided(by: secondsPerDay * microsPerSecond)
        let (year, month, day) = civil(fromDaysSinceEpoch: days)
        let seconds = microsOfDay / microsPerSecond
        let fraction = microsOfDay % microsPerSecond

        var text = ""
        text.reserveCapacity(32)
        // PostgreSQL numbers years before 1 AD as "n BC" with no year 0.
        let bc = year <= 0
        text += pad(bc ? 1 - year : year, 4)
        text += "-" + pad(month, 2) + "-" + pad(day, 2)
        text += " " + pad(seconds / 3600, 2) + ":" + pad(seconds / 60 % 60, 2) + ":" + pad(seconds % 60, 2)
        if fraction != 0 {
            var digits = pad(fraction, 6)[...]
            while digits.last == "0" { digits.removeLast() }
            text += "." + digits
        }
        text += "+00"
        if bc { text += " BC" }
        return text
    }

    /// Parses what PostgreSQL prints for `timestamptz` (or `timestamp`, read as UTC) under DateStyle ISO.
    static func parse(_ text: String) -> Date? {
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

        let days = daysSinceEpoch(year: year, month: month, day: day)
        let seconds = days * secondsPerDay + hour * 3600 + minute * 60 + second - offsetSeconds
        let micros = seconds * microsPerSecond + fraction
        return Date(timeIntervalSince1970: Double(micros) / 1e6)
    }

    // Days from the civil date (proleptic Gregorian) to 1970-01-01 and back: the well-known
    // era-based conversion (400-year eras of 146097 days), exact for any Int64 year that fits.
    static func daysSinceEpoch(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    static func civil(fromDaysSinceEpoch days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
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

extension Int64 {
    /// Division rounding toward negative infinity, with a non-negative remainder.
    func floorDivided(by divisor: Int64) -> (quotient: Int64, remainder: Int64) {
        var q = self / divisor
        var r = self % divisor
        if r < 0 {
            q -= 1
            r += divisor
        }
        return (q, r)
    }
}
