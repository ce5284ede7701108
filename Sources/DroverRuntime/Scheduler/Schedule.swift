import Foundation
import DroverPersistence
import DroverQueue

/// When a recurring task runs: a cron expression in a time zone, or a fixed interval.
///
/// ```swift
/// let nightly = try Schedule("0 3 * * *", timeZone: "Europe/Berlin")
/// let next = nightly.next(after: Date())
/// ```
///
/// Cron expressions have 5 fields (minute hour day-of-month month day-of-week) or 6 (seconds
/// first), with `*`, lists (`1,15`), ranges (`1-5`), steps (`*/7`, `10-50/20`, `5/15`) and names
/// (`JAN`–`DEC`, `SUN`–`SAT`; day 7 is Sunday too), or one of `@yearly` (`@annually`), `@monthly`,
/// `@weekly`, `@daily` (`@midnight`) and `@hourly`. As in Vixie cron, when both day fields are
/// restricted a day matching either runs, and a field starting with `*` is unrestricted.
/// `every 5m` runs every 5 minutes, aligned on the Unix epoch so that every host agrees.
///
/// An expression that can never run is refused: `0 0 30 2 *` throws "February has no day 30"
/// (`0 0 29 2 *` runs in leap years; `0 0 30 2 1` runs on Mondays in February).
///
/// Daylight-saving time, and any other change of a zone's UTC offset, goes by the hour field:
///
/// - A schedule whose hour field allows every hour (`*/15 * * * *`, `0,30 * * * *`, `0 * * * *`,
///   `@hourly`, `*/10 * * * * *`) keeps its rhythm in real time: it runs whenever the clock shows
///   one of its times. A repeated time runs at each occurrence: `*/15` in Europe/Berlin on
///   2026-10-25 runs at 02:00, 02:15, 02:30, 02:45 CEST, then at 02:00, 02:15, 02:30, 02:45 CET,
///   every 15 real minutes, and `@hourly` runs once per real hour, twice in the 2 o'clock hour. A
///   skipped time does not exist and does not run: on 2026-03-29 `*/15` runs at 01:45 CET, then
///   03:00 CEST, 15 real minutes later.
/// - Any other schedule names times of day (`30 2 * * *`, `0 */6 * * *`, `*/20 2 * * *`): each of
///   its times runs once a day. A repeated time runs at its first occurrence only; a skipped time
///   runs when the clocks jump, once however many of the schedule's times fell in the gap.
///
/// Why: an every-hour schedule is a rhythm (no 75-minute hole in `*/15` in autumn, one run per
/// real hour for `@hourly`), while a time of day is an appointment (a nightly job runs once a night).
/// Clocks that move by a whole hour keep an every-hour schedule's intervals exactly. Where they move
/// by 30 minutes (Australia/Lord_Howe), a schedule whose times do not repeat every 30 minutes has
/// one interval up to 30 minutes longer or shorter on each of those days: `0 * * * *` runs 90
/// minutes apart once (02:00 is skipped in spring; 01:30–02:00, repeated in autumn, holds no full
/// hour), `30 * * * *` 30 minutes apart.
public struct Schedule: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        case cron(CronFields)
        case every(Duration)
    }

    public let kind: Kind
    public let timeZone: TimeZone
    /// The text it was parsed from.
    public let description: String

    public struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        public let description: String
    }

    public init(_ text: String, timeZone name: String? = nil) throws(ParseError) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        description = trimmed
        guard let zone = name.map({ TimeZone(identifier: $0) }) ?? TimeZone(identifier: "UTC") else {
            throw ParseError(description: "time zone \"\(name ?? "")\" is not in the time zone database: use an IANA name such as Europe/Berlin or UTC")
        }
        timeZone = zone
        let lowered = trimmed.lowercased()
        if lowered.hasPrefix("every ") {
            let amount = String(trimmed.dropFirst("every ".count)).trimmingCharacters(in: .whitespaces)
            guard let interval = DurationText.parse(amount), interval >= .seconds(1), interval <= .seconds(366 * 86_400) else {
                throw ParseError(description: "schedule \"\(trimmed)\": \"\(amount)\" is not an interval from 1s to 366d, such as every 5m or every 1h30m")
            }
            kind = .every(interval)
            return
        }
        let macros = ["@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
                      "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"]
        let expression: String
        if lowered.hasPrefix("@") {
            guard let expanded = macros[lowered] else {
                throw ParseError(description: "schedule \"\(trimmed)\": unknown shorthand; use @yearly, @monthly, @weekly, @daily or @hourly")
            }
            expression = expanded
        } else {
            expression = trimmed
        }
        let fields: CronFields
        do {
            fields = try CronFields(expression)
        } catch {
            throw ParseError(description: "schedule \"\(trimmed)\": \(error.description)")
        }
        if let reason = fields.whyItNeverRuns {
            throw ParseError(description: "schedule \"\(trimmed)\" can never run: \(reason)")
        }
        kind = .cron(fields)
    }

    /// The first run strictly after `date`.
    public func next(after date: Date) -> Date? {
        switch kind {
        case .every(let interval):
            let step = interval.seconds
            let seconds = date.timeIntervalSince1970
            return Date(timeIntervalSince1970: (floor(seconds / step) + 1) * step)
        case .cron(let fields):
            return fields.next(after: date, in: timeZone)
        }
    }

    /// The runs in `(after, through]`, at most `limit` of them.
    public func runs(after: Date, through: Date, limit: Int = 10_000) -> [Date] {
        var runs: [Date] = []
        var cursor = after
        while runs.count < limit, let run = next(after: cursor), run <= through {
            runs.append(run)
            cursor = run
        }
        return runs
    }
}

/// The fields of a cron expression, as sets of allowed values.
public struct CronFields: Sendable, Equatable {
    struct Field: Sendable, Equatable {
        var allowed: UInt64 = 0
        /// Written starting with `*`: unrestricted, for the day-of-month/day-of-week rule.
        var star = false
        func contains(_ value: Int) -> Bool { allowed & (1 << UInt64(value)) != 0 }
        /// The smallest allowed value at or above `value`.
        func first(atLeast value: Int, max: Int) -> Int? {
            guard value <= max else { return nil }
            for candidate in value...max where contains(candidate) { return candidate }
            return nil
        }
    }

    struct FieldError: Error, CustomStringConvertible {
        let description: String
    }

    var seconds: Field
    var minutes: Field
    var hours: Field
    var days: Field
    var months: Field
    var weekdays: Field

    static let monthNames = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
    static let dayNames = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]

    init(_ expression: String) throws(FieldError) {
        let parts = expression.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard parts.count == 5 || parts.count == 6 else {
            throw FieldError(description: "has \(parts.count) fields; use 5 (minute hour day-of-month month day-of-week), "
                             + "6 with seconds first, @daily-style shorthands, or every 5m")
        }
        let offset = parts.count - 5
        seconds = offset == 1 ? try Self.field(parts[0], "second", 0...59) : Field(allowed: 1)
        minutes = try Self.field(parts[offset], "minute", 0...59)
        hours = try Self.field(parts[offset + 1], "hour", 0...23)
        days = try Self.field(parts[offset + 2], "day of month", 1...31)
        months = try Self.field(parts[offset + 3], "month", 1...12, names: Self.monthNames, firstName: 1)
        weekdays = try Self.field(parts[offset + 4], "day of week", 0...7, names: Self.dayNames, firstName: 0)
        if weekdays.contains(7) { weekdays.allowed |= 1 }  // 7 is Sunday too
        weekdays.allowed &= ~(1 << 7)
    }

    private static func field(
        _ text: String, _ name: String, _ range: ClosedRange<Int>, names: [String] = [], firstName: Int = 0
    ) throws(FieldError) -> Field {
        var field = Field()
        field.star = text.hasPrefix("*")
        func value(_ token: String) throws(FieldError) -> Int {
            if let number = Int(token) {
                guard range.contains(number) else {
                    throw FieldError(description: "\(name) \(number) is out of range \(range.lowerBound)–\(range.upperBound)")
                }
                return number
            }
            if let index = names.firstIndex(of: token.uppercased()) { return index + firstName }
            if token == "?" {
                throw FieldError(description: "\(name) \"?\" is not supported; use *")
            }
            throw FieldError(description: "\(name) \"\(token)\" is not a number"
                             + (names.isEmpty ? "" : " or a name (\(names.first!)…\(names.last!))"))
        }
        for item in text.split(separator: ",", omittingEmptySubsequences: false).map(String.init) {
            guard !item.isEmpty else { throw FieldError(description: "\(name) \"\(text)\" has an empty list item") }
            let pieces = item.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            guard pieces.count <= 2 else { throw FieldError(description: "\(name) \"\(item)\" has more than one /") }
            var step = 1
            if pieces.count == 2 {
                guard let n = Int(pieces[1]), n >= 1, n <= range.upperBound else {
                    throw FieldError(description: "\(name) step \"\(pieces[1])\" is not a number from 1 to \(range.upperBound)")
                }
                step = n
            }
            let low: Int
            let high: Int
            if pieces[0] == "*" {
                (low, high) = (range.lowerBound, range.upperBound)
            } else if let dash = pieces[0].firstIndex(of: "-") {
                low = try value(String(pieces[0][..<dash]))
                high = try value(String(pieces[0][pieces[0].index(after: dash)...]))
                guard low <= high else {
                    throw FieldError(description: "\(name) range \"\(pieces[0])\" runs backwards; write it low-high")
                }
            } else {
                low = try value(pieces[0])
                high = pieces.count == 2 ? range.upperBound : low  // "5/15": from 5 to the end, every 15
            }
            for v in stride(from: low, through: high, by: step) { field.allowed |= 1 << UInt64(v) }
        }
        return field
    }

    static let fullMonthNames = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
                                 "October", "November", "December"]

    /// Why no day of any year matches, or nil when some day does: the days of the month allowed are
    /// all past the end of every month allowed (`0 0 30 2 *`). February counts with its 29 days, so
    /// `0 0 29 2 *` runs, in leap years. A restricted day of week always finds a day, since either
    /// day field may match.
    var whyItNeverRuns: String? {
        guard !days.star, weekdays.star else { return nil }
        let allowedMonths = (1...12).filter(months.contains)
        let allowedDays = (1...31).filter(days.contains)
        let longest = allowedMonths.map { CivilDate.daysIn(year: 2000, month: $0) }.max() ?? 0  // 2000 is a leap year
        guard let first = allowedDays.first, first > longest else { return nil }
        func list(_ items: [String], _ conjunction: String) -> String {
            items.count < 2 ? items.joined() : items.dropLast().joined(separator: ", ") + " \(conjunction) " + items.last!
        }
        return list(allowedMonths.map { Self.fullMonthNames[$0 - 1] }, "and") + (allowedMonths.count == 1 ? " has" : " have")
            + " no day " + list(allowedDays.map(String.init), "or")
    }

    /// Whether `day` (of `month` in `year`, a `weekday` with 0 = Sunday) is a day to run.
    func dayMatches(day: Int, weekday: Int) -> Bool {
        switch (days.star, weekdays.star) {
        case (true, true): return true
        case (false, true): return days.contains(day)
        case (true, false): return weekdays.contains(weekday)
        case (false, false): return days.contains(day) || weekdays.contains(weekday)
        }
    }

    /// Whether every hour of the day is allowed (`*`, `*/1`, `0-23`): the schedule repeats within
    /// each hour, and runs by the clock at every offset (see ``Schedule``).
    var runsEveryHour: Bool { hours.allowed & 0xFF_FFFF == 0xFF_FFFF }

    /// How many changes of UTC offset a search crosses at most: a valid expression runs within 8
    /// years, and no zone changes its offset more than 4 times a year.
    static let transitionLimit = 1_000

    /// The first run strictly after `date`, in `zone`; nil only for dates outside the years 1 to
    /// 9999, which are not computed.
    func next(after date: Date, in zone: TimeZone) -> Date? {
        let after = date.timeIntervalSince1970
        guard after >= LocalTime.earliest, after < LocalTime.latest else { return nil }
        return runsEveryHour ? nextAtEveryOccurrence(after: after, in: zone) : nextAtFirstOccurrence(after: after, in: zone)
    }

    /// Every instant at which the clock shows a matching time: a repeated time runs at each
    /// occurrence, a skipped one not at all. Searches each stretch of one UTC offset in turn.
    private func nextAtEveryOccurrence(after: Double, in zone: TimeZone) -> Date? {
        var from = floor(after) + 1
        for _ in 0..<Self.transitionLimit {
            let start = Date(timeIntervalSince1970: from)
            let offset = Int64(zone.secondsFromGMT(for: start))
            guard let match = nextMatch(atOrAfter: Int64(from) + offset) else { return nil }
            let instant = Double(match - offset)
            guard let change = zone.nextDaylightSavingTimeTransition(after: start)?.timeIntervalSince1970, change <= instant else {
                return Date(timeIntervalSince1970: instant)
            }
            // The offset changes before the clock shows `match`: look again from the change.
            from = ceil(change)
        }
        return nil
    }

    /// Each matching wall-clock time once: at its first occurrence, or when the clocks jump over it.
    private func nextAtFirstOccurrence(after: Double, in zone: TimeZone) -> Date? {
        var wall = LocalTime.wallClock(floor(after) + 1, in: zone)
        for _ in 0..<Self.transitionLimit {
            guard let match = nextMatch(atOrAfter: wall) else { return nil }
            let instant = LocalTime.instant(forWallClock: match, in: zone)
            if instant > after { return Date(timeIntervalSince1970: instant) }
            // The clocks went back since `match` was first shown: every time they showed from then
            // until they went back has had its run. Look on from the highest time they showed.
            wall = match + 1
            let shown = Date(timeIntervalSince1970: instant)
            if let back = zone.nextDaylightSavingTimeTransition(after: shown), back.timeIntervalSince1970 <= after + 1 {
                wall = max(wall, Int64(ceil(back.timeIntervalSince1970)) + Int64(zone.secondsFromGMT(for: shown)))
            }
        }
        return nil
    }

    /// The first wall-clock second at or after `wall` (seconds since 1970 as if UTC) that matches.
    func nextMatch(atOrAfter wall: Int64) -> Int64? {
        var t = CivilDate(wall)
        // Expressions that never run are refused, and Feb 29 comes back within 8 years (2096, 2104).
        let limit = t.year + 30
        while t.year <= limit {
            guard let month = months.first(atLeast: t.month, max: 12) else {
                t = CivilDate(year: t.year + 1, month: 1, day: 1)
                continue
            }
            if month != t.month { t = CivilDate(year: t.year, month: month, day: 1) }
            if t.day > CivilDate.daysIn(year: t.year, month: t.month) {
                t = t.month == 12 ? CivilDate(year: t.year + 1, month: 1, day: 1) : CivilDate(year: t.year, month: t.month + 1, day: 1)
                continue
            }
            if !dayMatches(day: t.day, weekday: t.weekday) {
                t = t.startOfNextDay
                continue
            }
            guard let hour = hours.first(atLeast: t.hour, max: 23) else {
                t = t.startOfNextDay
                continue
            }
            if hour != t.hour { t = CivilDate(year: t.year, month: t.month, day: t.day, hour: hour) }
            guard let minute = minutes.first(atLeast: t.minute, max: 59) else {
                t = t.hour == 23 ? t.startOfNextDay : CivilDate(year: t.year, month: t.month, day: t.day, hour: t.hour + 1)
                continue
            }
            if minute != t.minute { t = CivilDate(year: t.year, month: t.month, day: t.day, hour: t.hour, minute: minute) }
            guard let second = seconds.first(atLeast: t.second, max: 59) else {
                t = CivilDate(t.seconds - Int64(t.second) + 60)  // the next minute
                continue
            }
            t.second = second
            return t.seconds
        }
        return nil
    }
}

/// Wall clocks and instants in a time zone, daylight-saving transitions included.
enum LocalTime {
    /// 0001-01-01 and 10000-01-01 UTC: the instants schedules are computed between.
    static let earliest: Double = -62_135_596_800
    static let latest: Double = 253_402_300_800

    /// The wall-clock time (seconds since 1970 as if UTC) in `zone` at the instant `seconds`.
    static func wallClock(_ seconds: Double, in zone: TimeZone) -> Int64 {
        let instant = Date(timeIntervalSince1970: seconds)
        return Int64(seconds) + Int64(zone.secondsFromGMT(for: instant))
    }

    /// The instant (seconds since 1970) at which the wall clock of `zone` shows `wall`: its first
    /// occurrence when it shows it twice; when it never shows it (a gap), the end of the gap.
    static func instant(forWallClock wall: Int64, in zone: TimeZone) -> Double {
        // The offsets in force a day either side cover every transition near `wall`.
        let around = [-86_400, 0, 86_400].map { zone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(wall + Int64($0)))) }
        var candidates: [Int64] = []
        for offset in Set(around) {
            let t = wall - Int64(offset)
            if zone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(t))) == offset { candidates.append(t) }
        }
        if let first = candidates.min() { return Double(first) }
        // In a gap: the clocks jumped over `wall`. Run at the jump.
        let before = Double(wall - Int64(around.max()!))
        if let transition = zone.nextDaylightSavingTimeTransition(after: Date(timeIntervalSince1970: before - 1)) {
            return transition.timeIntervalSince1970
        }
        return Double(wall - Int64(around[0]))
    }
}
