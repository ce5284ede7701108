/// A wall-clock date and time without a zone, in the proleptic Gregorian calendar: the one
/// conversion between calendar dates and seconds since 1970-01-01 that database timestamps
/// (``DatabaseTime``) and cron schedules both use.
///
/// ```swift
/// let t = CivilDate(1_798_761_600)        // 2027-01-01 00:00:00
/// CivilDate(year: 2027, month: 1, day: 1).seconds == 1_798_761_600
/// ```
public struct CivilDate: Equatable, Sendable {
    public var year: Int
    public var month: Int
    public var day: Int
    public var hour = 0
    public var minute = 0
    public var second = 0

    public init(year: Int, month: Int, day: Int, hour: Int = 0, minute: Int = 0, second: Int = 0) {
        self.year = year
        self.month = month
        self.day = day
        self.hour = hour
        self.minute = minute
        self.second = second
    }

    /// From whole seconds since 1970-01-01 00:00:00 (as if UTC).
    public init(_ seconds: Int64) {
        let (days, rest) = seconds.floorDivided(by: 86_400)
        let (year, month, day) = Self.civil(fromDaysSinceEpoch: days)
        self.init(year: Int(year), month: Int(month), day: Int(day),
                  hour: Int(rest / 3600), minute: Int(rest % 3600 / 60), second: Int(rest % 60))
    }

    /// Days since 1970-01-01.
    public var days: Int64 { Self.daysSinceEpoch(year: Int64(year), month: Int64(month), day: Int64(day)) }

    /// Seconds since 1970-01-01 00:00:00 (as if UTC).
    public var seconds: Int64 { days * 86_400 + Int64(hour * 3600 + minute * 60 + second) }

    /// 0 = Sunday.
    public var weekday: Int { Int(((days % 7) + 11) % 7) }

    public var startOfNextDay: CivilDate { CivilDate((days + 1) * 86_400) }

    public static func daysIn(year: Int, month: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    // The era-based conversion (400-year eras of 146,097 days) known as days_from_civil and
    // civil_from_days, exact for every Int64 year that fits.
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
