import DroverPersistence
import DroverRuntime
import Foundation
import Testing

/// Random cron expressions in zones with every kind of clock change, from random instants near a
/// change: the runs `Schedule` computes are checked against a model that walks real time minute by
/// minute and applies the two rules of ``Schedule`` directly. A fixed seed by default;
/// `DROVER_SCHEDULE_SEED=n` (or `random`) and `DROVER_SCHEDULE_CASES=n` for more; the seed is in
/// every failure.
@Suite("Schedules: random expressions across clock changes, against a minute-by-minute model")
struct SchedulePropertyTests {
    typealias Generator = FuzzTests.Generator

    static let defaultSeed: UInt64 = 20_261_025
    static let environment = ProcessInfo.processInfo.environment
    static let seed: UInt64 = environment["DROVER_SCHEDULE_SEED"].map { $0 == "random" ? UInt64.random(in: 1 ... .max) : UInt64($0) ?? defaultSeed }
        ?? defaultSeed
    static let count = environment["DROVER_SCHEDULE_CASES"].flatMap { Int($0) } ?? 200

    /// Whole-hour and half-hour changes, changes at midnight, a skipped day (Apia, 2011), four
    /// changes a year (Casablanca), the southern hemisphere, and zones with none.
    static let zones = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "America/Santiago", "Pacific/Apia",
                        "Africa/Casablanca", "America/Havana", "Australia/Sydney", "Pacific/Chatham", "Europe/London",
                        "Asia/Tehran", "Asia/Kathmandu", "UTC"]

    /// A cron expression with the sets of values it allows, written down as it is generated.
    struct Expression: CustomStringConvertible {
        var text: [String] = []
        var seconds: Set<Int> = [0]
        var minutes: Set<Int> = []
        var hours: Set<Int> = []
        var days: Set<Int> = []
        var months: Set<Int> = []
        var weekdays: Set<Int> = []
        var dayStar = false
        var weekdayStar = false
        var minuteMask: UInt64 = 0
        var hourMask: UInt64 = 0
        var description: String { text.joined(separator: " ") }

        var everyHour: Bool { hours.count == 24 }
        var everyDay: Bool { dayStar && weekdayStar && months.count == 12 }

        /// Whether the wall clock `wall` (seconds since 1970 as if UTC) is one of its times, the day
        /// fields as documented: either matches when both are restricted, and one written with `*` is unrestricted.
        func matches(_ wall: Int64) -> Bool {
            let t = CivilDate(wall)
            guard seconds.contains(t.second), minutes.contains(t.minute), hours.contains(t.hour), months.contains(t.month) else { return false }
            switch (dayStar, weekdayStar) {
            case (true, true): return true
            case (false, true): return days.contains(t.day)
            case (true, false): return weekdays.contains(t.weekday)
            case (false, false): return days.contains(t.day) || weekdays.contains(t.weekday)
            }
        }

        /// `matches`, quicker for the many minutes the model looks at: most fail on the minute or the hour.
        func matchesMinute(_ wall: Int64) -> Bool {
            let rest = wall % 86_400  // wall times here are after 1970
            return minuteMask & (1 << UInt64(rest % 3600 / 60)) != 0 && hourMask & (1 << UInt64(rest / 3600)) != 0 && matches(wall)
        }

        /// The longest wait between two of its times within the hours it runs, in seconds.
        var longestInterval: Int64 {
            let times = minutes.flatMap { m in seconds.map { Int64(m * 60 + $0) } }.sorted()
            let gaps = zip(times, times.dropFirst()).map { $1 - $0 }
            return (gaps + [3600 - times.last! + times.first!]).max()!
        }
    }

    static func field(_ range: ClosedRange<Int>, star: Int, _ random: inout Generator) -> (text: String, values: Set<Int>, star: Bool) {
        let span = range.upperBound - range.lowerBound + 1
        if Int.random(in: 0..<100, using: &random) < star { return ("*", Set(range), true) }
        let pick = { (random: inout Generator) in Int.random(in: range, using: &random) }
        switch Int.random(in: 0..<6, using: &random) {
        case 0:
            let step = [1, 2, 3, 5, 7, 10, 15, 20, 30].filter { $0 < span }.randomElement(using: &random) ?? 1
            return ("*/\(step)", Set(stride(from: range.lowerBound, through: range.upperBound, by: step)), true)
        case 1:
            let a = pick(&random)
            return ("\(a)", [a], false)
        case 2:
            let values = Set((0..<Int.random(in: 2...4, using: &random)).map { _ in pick(&random) })
            return (values.sorted().map(String.init).joined(separator: ","), values, false)
        case 3:
            let (a, b) = (pick(&random), pick(&random))
            return ("\(min(a, b))-\(max(a, b))", Set(min(a, b)...max(a, b)), false)
        case 4:
            let (a, b) = (pick(&random), pick(&random))
            let step = Int.random(in: 2...5, using: &random)
            return ("\(min(a, b))-\(max(a, b))/\(step)", Set(stride(from: min(a, b), through: max(a, b), by: step)), false)
        default:
            let a = pick(&random)
            let step = Int.random(in: 2...min(9, range.upperBound), using: &random)
            return ("\(a)/\(step)", Set(stride(from: a, through: range.upperBound, by: step)), false)
        }
    }

    static func expression(_ random: inout Generator) -> Expression {
        var e = Expression()
        if Int.random(in: 0..<10, using: &random) == 0 {
            let seconds = field(0...59, star: 0, &random)
            e.text.append(seconds.text)
            e.seconds = seconds.values
        }
        let minutes = field(0...59, star: 10, &random)
        let hours = field(0...23, star: 50, &random)
        let days = field(1...31, star: 75, &random)
        let months = field(1...12, star: 80, &random)
        let weekdays = field(0...7, star: 80, &random)
        e.text += [minutes.text, hours.text, days.text, months.text, weekdays.text]
        (e.minutes, e.hours, e.days, e.months) = (minutes.values, hours.values, days.values, months.values)
        e.weekdays = Set(weekdays.values.map { $0 == 7 ? 0 : $0 })  // 7 is Sunday too
        e.minuteMask = minutes.values.reduce(0) { $0 | 1 << UInt64($1) }
        e.hourMask = hours.values.reduce(0) { $0 | 1 << UInt64($1) }
        (e.dayStar, e.weekdayStar) = (days.star, weekdays.star)
        return e
    }

    static let march2099 = Date(timeIntervalSince1970: Double(CivilDate(year: 2099, month: 3, day: 1).seconds))

    /// The whole minute at or before `t`.
    static func minuteBefore(_ t: Int64) -> Int64 { t - ((t % 60) + 60) % 60 }

    /// What the rules of ``Schedule`` say runs in `(after, through]`, found by walking real time a
    /// minute at a time (every offset here is whole minutes). An every-hour expression runs at
    /// every minute whose wall time matches; any other runs at the first minute that shows a
    /// matching wall time not shown before, where a jump forward shows the times it skips too.
    static func model(_ e: Expression, _ zone: TimeZone, after: Int64, through: Int64) -> [Int64] {
        func wall(_ t: Int64) -> Int64 { t + Int64(zone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(t)))) }
        // From a day before, so that a time of day knows which times were already shown.
        var t = Self.minuteBefore(after) - 86_400
        var highest = wall(t)
        var runs: [Int64] = []
        while t < through {
            t += 60
            let shows = wall(t)
            var runsNow = false
            if e.everyHour {
                runsNow = e.matchesMinute(shows)
            } else if shows > highest {
                var shown = Self.minuteBefore(highest) + 60
                while shown <= shows, !runsNow {
                    runsNow = e.matchesMinute(shown)
                    shown += 60
                }
                highest = shows
            }
            if runsNow, t > after, t <= through { runs.append(t) }
        }
        return runs
    }

    /// An instant up to `lead` seconds before one of the zone's changes in a year from 2000 to
    /// 2037, or any instant of that year when it has none.
    static func start(in zone: TimeZone, lead: Int64, _ random: inout Generator) -> Int64 {
        let year = Int.random(in: 2000...2037, using: &random)
        let january = Date(timeIntervalSince1970: Double(CivilDate(year: year, month: 1, day: 1).seconds))
        var changes: [Date] = []
        var cursor = january
        while changes.count < 6, let change = zone.nextDaylightSavingTimeTransition(after: cursor),
              change.timeIntervalSince(january) < 366 * 86_400 {
            changes.append(change)
            cursor = change
        }
        if year == 2011 && zone.identifier == "Pacific/Apia" || Int.random(in: 0..<20, using: &random) == 0 { changes = [] }
        guard let change = changes.randomElement(using: &random) else {
            return Int64(january.timeIntervalSince1970) + Int64.random(in: 0..<365 * 86_400, using: &random)
        }
        return Int64(change.timeIntervalSince1970) - Int64.random(in: 0...lead, using: &random)
    }

    @Test("runs increase, are the expression's times, keep an every-hour rhythm and match the model")
    func againstTheModel() throws {
        var random = Generator(state: Self.seed)
        var compared = 0
        for index in 0..<Self.count {
            let e = Self.expression(&random)
            let zoneName = Self.zones.randomElement(using: &random)!
            let zone = try #require(TimeZone(identifier: zoneName))
            // Two days from up to a day and a half before a change; with seconds, three hours from up to two before.
            let minutely = e.seconds == [0]
            let lead: Int64 = minutely ? 36 * 3600 : 2 * 3600
            let length: Int64 = minutely ? 2 * 86_400 : 3 * 3600
            var after = Self.start(in: zone, lead: lead, &random)
            if index % 5 == 0, zoneName == "Pacific/Apia" { after = 1_325_239_200 - Int64.random(in: 0...lead, using: &random) }
            let fraction = Double(Int.random(in: 0..<1000, using: &random)) / 1000
            let through = after + length
            let context = "seed \(Self.seed), case \(index): \"\(e)\" in \(zoneName) after \(after)+\(fraction)s "
                + "(repeat: DROVER_SCHEDULE_SEED=\(Self.seed) swift test --filter SchedulePropertyTests)"
            guard let schedule = try? Schedule(e.description, timeZone: zoneName) else {
                // Refused only for a day of the month no month allowed has.
                #expect(!e.dayStar && e.weekdayStar && e.days.min()! > e.months.map { CivilDate.daysIn(year: 2000, month: $0) }.max()!,
                        "refused: \(context)")
                continue
            }
            let runs = schedule.runs(after: Date(timeIntervalSince1970: Double(after) + fraction),
                                     through: Date(timeIntervalSince1970: Double(through)), limit: 200_000)
            let instants = runs.map { Int64($0.timeIntervalSince1970) }

            #expect(zip(runs, runs.dropFirst()).allSatisfy { $0 < $1 }, "not increasing: \(context)")
            #expect(runs.allSatisfy { $0.timeIntervalSince1970 == $0.timeIntervalSince1970.rounded() }, "not whole seconds: \(context)")
            for run in instants where !e.matches(run + Int64(zone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(run))))) {
                // The one exception: a time of day the clocks jumped over runs at the jump.
                let before = zone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(run - 1)))
                let now = zone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(run)))
                let skipped = now > before && (Int64(before)..<Int64(now)).contains { e.matches(run + $0) }
                #expect(!e.everyHour && skipped, "run at \(run) is not one of the expression's times: \(context)")
            }
            if e.everyHour && e.everyDay {
                // A clock change of a whole number of hours keeps the rhythm exactly; a change by
                // half an hour may stretch one interval by as much (the documented exception).
                for (earlier, later) in zip(instants, instants.dropFirst()) {
                    let shift = abs(zone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(later)))
                        - zone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(earlier))))
                    #expect(later - earlier <= e.longestInterval + Int64(shift % 3600),
                            "\(later - earlier) s from \(earlier) to \(later), more than \(e.longestInterval) s: \(context)")
                }
            }
            if minutely {
                compared += 1
                let expected = Self.model(e, zone, after: after, through: through)
                #expect(instants == expected, """
                    differs from the model: \(context)
                    schedule: \(instants.prefix(20).map { ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double($0))) })
                    model:    \(expected.prefix(20).map { ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double($0))) })
                    """)
            }
            // Whatever it allows comes round again, even Feb 29 across 2100 (not a leap year).
            #expect(schedule.next(after: Date(timeIntervalSince1970: Double(through))) != nil, "no next run: \(context)")
            #expect(schedule.next(after: Self.march2099) != nil, "no run after 2099-03-01: \(context)")
        }
        print("schedule property test: \(Self.count) expressions (\(compared) against the model) from seed \(Self.seed)")
    }
}
