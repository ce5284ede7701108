import DroverRuntime
import Foundation
import Testing

/// Cron parsing and next runs, against a table of cases: pure logic, no I/O.
@Suite("Schedules: cron, shorthands, intervals, time zones and daylight-saving time")
struct ScheduleTests {
    static func utc(_ text: String) -> Date { ISO8601DateFormatter().date(from: text)! }
    static func text(_ date: Date?) -> String { date.map { ISO8601DateFormatter().string(from: $0) } ?? "never" }

    /// (schedule, time zone, after, the next runs in UTC)
    static let cases: [(String, String, String, [String])] = [
        ("*/15 * * * *", "UTC", "2026-11-27T10:07:00Z", ["2026-11-27T10:15:00Z", "2026-11-27T10:30:00Z"]),
        ("*/7 * * * *", "UTC", "2026-11-27T10:50:00Z", ["2026-11-27T10:56:00Z", "2026-11-27T11:00:00Z", "2026-11-27T11:07:00Z"]),
        ("10-50/20 * * * *", "UTC", "2026-11-27T10:00:00Z", ["2026-11-27T10:10:00Z", "2026-11-27T10:30:00Z", "2026-11-27T10:50:00Z", "2026-11-27T11:10:00Z"]),
        ("5/20 8 * * *", "UTC", "2026-11-27T00:00:00Z", ["2026-11-27T08:05:00Z", "2026-11-27T08:25:00Z", "2026-11-27T08:45:00Z", "2026-11-28T08:05:00Z"]),
        ("0 3 * * *", "Europe/Berlin", "2026-11-27T10:00:00Z", ["2026-11-28T02:00:00Z"]),
        ("0 3 * * *", "Europe/Berlin", "2026-07-01T10:00:00Z", ["2026-07-02T01:00:00Z"]),
        // Feb 29 only in leap years.
        ("0 0 29 2 *", "UTC", "2026-01-01T00:00:00Z", ["2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"]),
        ("0 12 31 * *", "UTC", "2026-11-27T00:00:00Z", ["2026-12-31T12:00:00Z", "2027-01-31T12:00:00Z", "2027-03-31T12:00:00Z"]),
        // Both day fields restricted: either matches (2026-11-27 is a Friday).
        ("0 0 13 * 5", "UTC", "2026-11-27T01:00:00Z", ["2026-12-04T00:00:00Z", "2026-12-11T00:00:00Z", "2026-12-13T00:00:00Z", "2026-12-18T00:00:00Z"]),
        ("0 0 13 * *", "UTC", "2026-11-27T01:00:00Z", ["2026-12-13T00:00:00Z"]),
        ("0 0 * * FRI", "UTC", "2026-11-27T01:00:00Z", ["2026-12-04T00:00:00Z"]),
        // A field written with * is unrestricted, so only the day of week decides.
        ("0 0 */2 * 0", "UTC", "2026-11-27T01:00:00Z", ["2026-11-29T00:00:00Z", "2026-12-06T00:00:00Z"]),
        ("0 0 * * 7", "UTC", "2026-11-27T01:00:00Z", ["2026-11-29T00:00:00Z"]),
        ("0 9 * jan-mar mon-fri", "UTC", "2026-11-27T00:00:00Z", ["2027-01-01T09:00:00Z", "2027-01-04T09:00:00Z"]),
        ("*/10 * * * * *", "UTC", "2026-11-27T10:00:05Z", ["2026-11-27T10:00:10Z", "2026-11-27T10:00:20Z"]),
        ("30 0 12 * * *", "UTC", "2026-11-27T12:00:30Z", ["2026-11-28T12:00:30Z"]),
        ("@hourly", "UTC", "2026-11-27T10:00:00Z", ["2026-11-27T11:00:00Z"]),
        ("@daily", "UTC", "2026-11-27T10:00:00Z", ["2026-11-28T00:00:00Z"]),
        ("@weekly", "UTC", "2026-11-27T10:00:00Z", ["2026-11-29T00:00:00Z"]),
        ("@monthly", "UTC", "2026-11-27T10:00:00Z", ["2026-12-01T00:00:00Z"]),
        ("@yearly", "UTC", "2026-11-27T10:00:00Z", ["2027-01-01T00:00:00Z"]),
        ("every 5m", "UTC", "2026-11-27T10:07:30Z", ["2026-11-27T10:10:00Z", "2026-11-27T10:15:00Z"]),
        ("every 1s", "Europe/Berlin", "2026-11-27T10:07:30Z", ["2026-11-27T10:07:31Z"]),
        // Berlin, spring: 02:00 CET jumps to 03:00 CEST (01:00 UTC) on 2026-03-29. 02:30 does not exist:
        // it runs at the jump, once; the next day at 02:30 CEST.
        ("30 2 * * *", "Europe/Berlin", "2026-03-28T12:00:00Z", ["2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"]),
        // Every 15 minutes through the gap: 02:00–02:45 do not exist; runs go on every 15 real minutes.
        ("*/15 * * * *", "Europe/Berlin", "2026-03-29T00:30:00Z",
         ["2026-03-29T00:45:00Z", "2026-03-29T01:00:00Z", "2026-03-29T01:15:00Z"]),
        ("0 * * * *", "Europe/Berlin", "2026-03-28T23:30:00Z", ["2026-03-29T00:00:00Z", "2026-03-29T01:00:00Z", "2026-03-29T02:00:00Z"]),
        // Berlin, autumn: 03:00 CEST falls back to 02:00 CET (01:00 UTC) on 2026-10-25. 02:30 occurs
        // twice: a time of day runs at the first only, an hourly schedule at both.
        ("30 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00Z", ["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"]),
        ("0 * * * *", "Europe/Berlin", "2026-10-24T23:30:00Z", ["2026-10-25T00:00:00Z", "2026-10-25T01:00:00Z", "2026-10-25T02:00:00Z"]),
        ("*/20 2 * * *", "Europe/Berlin", "2026-10-25T00:10:00Z",
         ["2026-10-25T00:20:00Z", "2026-10-25T00:40:00Z", "2026-10-26T01:00:00Z"]),
        // New York: 02:00 EST jumps to 03:00 EDT (07:00 UTC) on 2026-03-08; 02:00 EDT falls back to
        // 01:00 EST (06:00 UTC) on 2026-11-01.
        ("30 2 * * *", "America/New_York", "2026-03-07T12:00:00Z", ["2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"]),
        ("30 1 * * *", "America/New_York", "2026-10-31T12:00:00Z", ["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"]),
        ("0 9 * * 1-5", "America/New_York", "2026-11-27T15:00:00Z", ["2026-11-30T14:00:00Z"]),
    ]

    @Test("next runs", arguments: cases)
    func nextRuns(_ expression: String, _ zone: String, _ after: String, _ expected: [String]) throws {
        let schedule = try Schedule(expression, timeZone: zone)
        var cursor = Self.utc(after)
        var runs: [String] = []
        for _ in expected {
            let next = schedule.next(after: cursor)
            runs.append(Self.text(next))
            guard let next else { break }
            cursor = next
        }
        #expect(runs == expected, "\(expression) in \(zone) after \(after)")
    }

    @Test("every minute across both Berlin transitions: one run per real minute, none doubles, none is lost")
    func everyMinuteAcrossTransitions() throws {
        let schedule = try Schedule("* * * * *", timeZone: "Europe/Berlin")
        // Spring: 60 wall-clock minutes do not exist; the real minutes go on.
        let spring = schedule.runs(after: Self.utc("2026-03-28T23:00:00Z"), through: Self.utc("2026-03-29T03:00:00Z"))
        #expect(spring == (1...4 * 60).map { Self.utc("2026-03-28T23:00:00Z").addingTimeInterval(Double($0) * 60) })
        // Autumn: the repeated hour's minutes run at both offsets.
        let autumn = schedule.runs(after: Self.utc("2026-10-24T23:00:00Z"), through: Self.utc("2026-10-25T03:00:00Z"))
        #expect(autumn == (1...4 * 60).map { Self.utc("2026-10-24T23:00:00Z").addingTimeInterval(Double($0) * 60) })
    }

    @Test("bad schedules and time zones say what is wrong", arguments: [
        ("61 * * * *", "UTC", "schedule \"61 * * * *\": minute 61 is out of range 0–59"),
        ("* 24 * * *", "UTC", "schedule \"* 24 * * *\": hour 24 is out of range 0–23"),
        ("* * 0 * *", "UTC", "schedule \"* * 0 * *\": day of month 0 is out of range 1–31"),
        ("* * * 13 *", "UTC", "schedule \"* * * 13 *\": month 13 is out of range 1–12"),
        ("* * * * 8", "UTC", "schedule \"* * * * 8\": day of week 8 is out of range 0–7"),
        ("* * *", "UTC", "schedule \"* * *\": has 3 fields; use 5 (minute hour day-of-month month day-of-week), 6 with seconds first, @daily-style shorthands, or every 5m"),
        ("* * * * * * *", "UTC", "schedule \"* * * * * * *\": has 7 fields; use 5 (minute hour day-of-month month day-of-week), 6 with seconds first, @daily-style shorthands, or every 5m"),
        ("5-1 * * * *", "UTC", "schedule \"5-1 * * * *\": minute range \"5-1\" runs backwards; write it low-high"),
        ("*/0 * * * *", "UTC", "schedule \"*/0 * * * *\": minute step \"0\" is not a number from 1 to 59"),
        ("* * * * FUN", "UTC", "schedule \"* * * * FUN\": day of week \"FUN\" is not a number or a name (SUN…SAT)"),
        ("0 0 ? * MON", "UTC", "schedule \"0 0 ? * MON\": day of month \"?\" is not supported; use *"),
        ("1,,2 * * * *", "UTC", "schedule \"1,,2 * * * *\": minute \"1,,2\" has an empty list item"),
        ("@often", "UTC", "schedule \"@often\": unknown shorthand; use @yearly, @monthly, @weekly, @daily or @hourly"),
        ("every 0s", "UTC", "schedule \"every 0s\": \"0s\" is not an interval from 1s to 366d, such as every 5m or every 1h30m"),
        ("every soon", "UTC", "schedule \"every soon\": \"soon\" is not an interval from 1s to 366d, such as every 5m or every 1h30m"),
        // Days that no month allowed has: refused rather than accepted and never run.
        ("0 0 30 2 *", "UTC", "schedule \"0 0 30 2 *\" can never run: February has no day 30"),
        ("0 0 31 2 *", "UTC", "schedule \"0 0 31 2 *\" can never run: February has no day 31"),
        ("0 0 30,31 feb *", "UTC", "schedule \"0 0 30,31 feb *\" can never run: February has no day 30 or 31"),
        ("0 0 31 4 *", "UTC", "schedule \"0 0 31 4 *\" can never run: April has no day 31"),
        ("0 0 31 4,6 *", "UTC", "schedule \"0 0 31 4,6 *\" can never run: April and June have no day 31"),
        ("0 0 31 2,4,6,9,11 *", "UTC",
         "schedule \"0 0 31 2,4,6,9,11 *\" can never run: February, April, June, September and November have no day 31"),
        ("0 0 0 31 4 */2", "UTC", "schedule \"0 0 0 31 4 */2\" can never run: April has no day 31"),
        ("0 3 * * *", "Mars/Olympus_Mons", "time zone \"Mars/Olympus_Mons\" is not in the time zone database: use an IANA name such as Europe/Berlin or UTC"),
    ])
    func errors(_ expression: String, _ zone: String, _ message: String) {
        let error = #expect(throws: Schedule.ParseError.self) { try Schedule(expression, timeZone: zone) }
        #expect(error?.description == message)
    }

    @Test("a day that some month allowed has, or a restricted day of week, can run", arguments: [
        ("0 0 29 2 *", "2028-02-29T00:00:00Z"),   // leap years only
        ("0 0 30 1-2 *", "2027-01-30T00:00:00Z"),
        ("0 0 31 2,3 *", "2027-03-31T00:00:00Z"),
        ("0 0 31 * *", "2026-12-31T00:00:00Z"),
        ("0 0 30 2 1", "2027-02-01T00:00:00Z"),    // Mondays in February (either day field matches)
        ("0 0 31 4 sun", "2027-04-04T00:00:00Z"),
    ])
    func possibleDays(_ expression: String, _ first: String) throws {
        let schedule = try Schedule(expression)
        #expect(Self.text(schedule.next(after: Self.utc("2026-11-27T10:00:00Z"))) == first)
    }
}
