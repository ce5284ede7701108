import DroverRuntime
import Foundation
import Testing

/// Every run over both of a year's clock changes, in zones that move by an hour (Berlin, New York)
/// and by half an hour (Lord Howe): the full list of instants, so a gap or a double would show.
/// Pure logic, no I/O. The rules are in ``Schedule``'s documentation.
@Suite("Schedules across daylight-saving changes: the runs, instant by instant")
struct ScheduleTransitionTests {
    static func utc(_ text: String) -> Date { ISO8601DateFormatter().date(from: text)! }
    static func text(_ date: Date) -> String { ISO8601DateFormatter().string(from: date) }

    /// The instants from `first` to `last`, `minutes` apart: what a schedule that keeps its interval runs.
    static func every(_ minutes: Int, from first: String, to last: String) -> [String] {
        stride(from: utc(first).timeIntervalSince1970, through: utc(last).timeIntervalSince1970, by: Double(minutes * 60))
            .map { text(Date(timeIntervalSince1970: $0)) }
    }

    /// (what it shows, schedule, time zone, after, through, every run in (after, through] in UTC)
    static let cases: [(String, String, String, String, String, [String])] = [
        // Europe/Berlin, spring: 2026-03-29 02:00 CET jumps to 03:00 CEST (01:00 UTC).
        ("every 15 minutes: 01:45 CET, then 03:00 CEST", "*/15 * * * *", "Europe/Berlin",
         "2026-03-28T23:50:00Z", "2026-03-29T02:10:00Z",
         ["2026-03-29T00:00:00Z", "2026-03-29T00:15:00Z", "2026-03-29T00:30:00Z", "2026-03-29T00:45:00Z", "2026-03-29T01:00:00Z",
          "2026-03-29T01:15:00Z", "2026-03-29T01:30:00Z", "2026-03-29T01:45:00Z", "2026-03-29T02:00:00Z"]),
        ("every 5 minutes", "*/5 * * * *", "Europe/Berlin", "2026-03-28T23:50:00Z", "2026-03-29T02:10:00Z",
         every(5, from: "2026-03-28T23:55:00Z", to: "2026-03-29T02:10:00Z")),
        ("02:30 does not exist: it runs at the jump, once", "30 2 * * *", "Europe/Berlin",
         "2026-03-28T00:00:00Z", "2026-03-30T23:00:00Z",
         ["2026-03-28T01:30:00Z", "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"]),
        ("the 2 o'clock hour's times all fall in the gap: one run at the jump", "*/20 2 * * *", "Europe/Berlin",
         "2026-03-28T00:00:00Z", "2026-03-30T23:00:00Z",
         ["2026-03-28T01:00:00Z", "2026-03-28T01:20:00Z", "2026-03-28T01:40:00Z", "2026-03-29T01:00:00Z",
          "2026-03-30T00:00:00Z", "2026-03-30T00:20:00Z", "2026-03-30T00:40:00Z"]),
        ("hourly: once per real hour, 02:00 does not exist", "0 * * * *", "Europe/Berlin",
         "2026-03-28T22:30:00Z", "2026-03-29T03:30:00Z",
         ["2026-03-28T23:00:00Z", "2026-03-29T00:00:00Z", "2026-03-29T01:00:00Z", "2026-03-29T02:00:00Z", "2026-03-29T03:00:00Z"]),
        ("04:00 is outside the gap", "0 4 * * *", "Europe/Berlin", "2026-03-28T00:00:00Z", "2026-03-30T23:00:00Z",
         ["2026-03-28T03:00:00Z", "2026-03-29T02:00:00Z", "2026-03-30T02:00:00Z"]),

        // Europe/Berlin, autumn: 2026-10-25 03:00 CEST falls back to 02:00 CET (01:00 UTC).
        ("every 15 minutes: 02:00–02:45 CEST, then 02:00–02:45 CET", "*/15 * * * *", "Europe/Berlin",
         "2026-10-24T23:50:00Z", "2026-10-25T02:10:00Z",
         ["2026-10-25T00:00:00Z", "2026-10-25T00:15:00Z", "2026-10-25T00:30:00Z", "2026-10-25T00:45:00Z", "2026-10-25T01:00:00Z",
          "2026-10-25T01:15:00Z", "2026-10-25T01:30:00Z", "2026-10-25T01:45:00Z", "2026-10-25T02:00:00Z"]),
        ("every 5 minutes", "*/5 * * * *", "Europe/Berlin", "2026-10-24T23:50:00Z", "2026-10-25T02:10:00Z",
         every(5, from: "2026-10-24T23:55:00Z", to: "2026-10-25T02:10:00Z")),
        ("every half hour", "0,30 * * * *", "Europe/Berlin", "2026-10-24T23:50:00Z", "2026-10-25T02:10:00Z",
         ["2026-10-25T00:00:00Z", "2026-10-25T00:30:00Z", "2026-10-25T01:00:00Z", "2026-10-25T01:30:00Z", "2026-10-25T02:00:00Z"]),
        ("02:30 occurs twice: it runs at the first", "30 2 * * *", "Europe/Berlin", "2026-10-24T00:00:00Z", "2026-10-26T23:00:00Z",
         ["2026-10-24T00:30:00Z", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"]),
        ("the 2 o'clock hour's times run in its first pass only", "*/20 2 * * *", "Europe/Berlin",
         "2026-10-23T23:00:00Z", "2026-10-26T23:00:00Z",
         ["2026-10-24T00:00:00Z", "2026-10-24T00:20:00Z", "2026-10-24T00:40:00Z",
          "2026-10-25T00:00:00Z", "2026-10-25T00:20:00Z", "2026-10-25T00:40:00Z",
          "2026-10-26T01:00:00Z", "2026-10-26T01:20:00Z", "2026-10-26T01:40:00Z"]),
        ("hourly: once per real hour, 02:00 CEST and 02:00 CET", "0 * * * *", "Europe/Berlin",
         "2026-10-24T22:30:00Z", "2026-10-25T03:30:00Z",
         ["2026-10-24T23:00:00Z", "2026-10-25T00:00:00Z", "2026-10-25T01:00:00Z", "2026-10-25T02:00:00Z", "2026-10-25T03:00:00Z"]),
        ("@hourly is the same", "@hourly", "Europe/Berlin", "2026-10-24T22:30:00Z", "2026-10-25T03:30:00Z",
         ["2026-10-24T23:00:00Z", "2026-10-25T00:00:00Z", "2026-10-25T01:00:00Z", "2026-10-25T02:00:00Z", "2026-10-25T03:00:00Z"]),
        ("04:00 is outside the repeated hour", "0 4 * * *", "Europe/Berlin", "2026-10-24T00:00:00Z", "2026-10-26T23:00:00Z",
         ["2026-10-24T02:00:00Z", "2026-10-25T03:00:00Z", "2026-10-26T03:00:00Z"]),

        // America/New_York, spring: 2026-03-08 02:00 EST jumps to 03:00 EDT (07:00 UTC).
        ("every 15 minutes: 01:45 EST, then 03:00 EDT", "*/15 * * * *", "America/New_York",
         "2026-03-08T05:50:00Z", "2026-03-08T08:10:00Z",
         ["2026-03-08T06:00:00Z", "2026-03-08T06:15:00Z", "2026-03-08T06:30:00Z", "2026-03-08T06:45:00Z", "2026-03-08T07:00:00Z",
          "2026-03-08T07:15:00Z", "2026-03-08T07:30:00Z", "2026-03-08T07:45:00Z", "2026-03-08T08:00:00Z"]),
        ("every 5 minutes", "*/5 * * * *", "America/New_York", "2026-03-08T05:50:00Z", "2026-03-08T08:10:00Z",
         every(5, from: "2026-03-08T05:55:00Z", to: "2026-03-08T08:10:00Z")),
        ("02:30 does not exist: it runs at the jump, once", "30 2 * * *", "America/New_York",
         "2026-03-07T00:00:00Z", "2026-03-09T23:00:00Z",
         ["2026-03-07T07:30:00Z", "2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"]),
        ("01:30 is before the gap", "30 1 * * *", "America/New_York", "2026-03-07T00:00:00Z", "2026-03-09T23:00:00Z",
         ["2026-03-07T06:30:00Z", "2026-03-08T06:30:00Z", "2026-03-09T05:30:00Z"]),
        ("hourly: once per real hour", "0 * * * *", "America/New_York", "2026-03-08T04:30:00Z", "2026-03-08T09:30:00Z",
         ["2026-03-08T05:00:00Z", "2026-03-08T06:00:00Z", "2026-03-08T07:00:00Z", "2026-03-08T08:00:00Z", "2026-03-08T09:00:00Z"]),

        // America/New_York, autumn: 2026-11-01 02:00 EDT falls back to 01:00 EST (06:00 UTC).
        ("every 15 minutes: 01:00–01:45 EDT, then 01:00–01:45 EST", "*/15 * * * *", "America/New_York",
         "2026-11-01T04:50:00Z", "2026-11-01T07:10:00Z",
         ["2026-11-01T05:00:00Z", "2026-11-01T05:15:00Z", "2026-11-01T05:30:00Z", "2026-11-01T05:45:00Z", "2026-11-01T06:00:00Z",
          "2026-11-01T06:15:00Z", "2026-11-01T06:30:00Z", "2026-11-01T06:45:00Z", "2026-11-01T07:00:00Z"]),
        ("every 5 minutes", "*/5 * * * *", "America/New_York", "2026-11-01T04:50:00Z", "2026-11-01T07:10:00Z",
         every(5, from: "2026-11-01T04:55:00Z", to: "2026-11-01T07:10:00Z")),
        ("01:30 occurs twice: it runs at the first", "30 1 * * *", "America/New_York",
         "2026-10-31T00:00:00Z", "2026-11-02T23:00:00Z",
         ["2026-10-31T05:30:00Z", "2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"]),
        ("02:30 is after the repeated hour", "30 2 * * *", "America/New_York", "2026-10-31T00:00:00Z", "2026-11-02T23:00:00Z",
         ["2026-10-31T06:30:00Z", "2026-11-01T07:30:00Z", "2026-11-02T07:30:00Z"]),
        ("hourly: once per real hour, 01:00 EDT and 01:00 EST", "0 * * * *", "America/New_York",
         "2026-11-01T03:30:00Z", "2026-11-01T08:30:00Z",
         ["2026-11-01T04:00:00Z", "2026-11-01T05:00:00Z", "2026-11-01T06:00:00Z", "2026-11-01T07:00:00Z", "2026-11-01T08:00:00Z"]),

        // Australia/Lord_Howe, autumn: 2026-04-05 02:00 (+11) falls back to 01:30 (+10:30) at 15:00 UTC on the 4th.
        ("every 15 minutes: 01:30, 01:45 at +11, then 01:30, 01:45 at +10:30", "*/15 * * * *", "Australia/Lord_Howe",
         "2026-04-04T13:50:00Z", "2026-04-04T16:10:00Z",
         ["2026-04-04T14:00:00Z", "2026-04-04T14:15:00Z", "2026-04-04T14:30:00Z", "2026-04-04T14:45:00Z", "2026-04-04T15:00:00Z",
          "2026-04-04T15:15:00Z", "2026-04-04T15:30:00Z", "2026-04-04T15:45:00Z", "2026-04-04T16:00:00Z"]),
        ("every 5 minutes", "*/5 * * * *", "Australia/Lord_Howe", "2026-04-04T13:50:00Z", "2026-04-04T16:10:00Z",
         every(5, from: "2026-04-04T13:55:00Z", to: "2026-04-04T16:10:00Z")),
        ("every half hour", "0,30 * * * *", "Australia/Lord_Howe", "2026-04-04T13:50:00Z", "2026-04-04T16:10:00Z",
         ["2026-04-04T14:00:00Z", "2026-04-04T14:30:00Z", "2026-04-04T15:00:00Z", "2026-04-04T15:30:00Z", "2026-04-04T16:00:00Z"]),
        ("01:30 occurs twice: it runs at the first", "30 1 * * *", "Australia/Lord_Howe",
         "2026-04-03T00:00:00Z", "2026-04-05T23:00:00Z",
         ["2026-04-03T14:30:00Z", "2026-04-04T14:30:00Z", "2026-04-05T15:00:00Z"]),
        ("hourly: the repeated half hour holds no full hour, so 90 real minutes pass", "0 * * * *", "Australia/Lord_Howe",
         "2026-04-04T12:30:00Z", "2026-04-04T17:00:00Z",
         ["2026-04-04T13:00:00Z", "2026-04-04T14:00:00Z", "2026-04-04T15:30:00Z", "2026-04-04T16:30:00Z"]),
        ("hourly at half past: 01:30 twice, so 30 real minutes apart", "30 * * * *", "Australia/Lord_Howe",
         "2026-04-04T12:50:00Z", "2026-04-04T17:00:00Z",
         ["2026-04-04T13:30:00Z", "2026-04-04T14:30:00Z", "2026-04-04T15:00:00Z", "2026-04-04T16:00:00Z", "2026-04-04T17:00:00Z"]),
        ("03:00 is after the repeated half hour", "0 3 * * *", "Australia/Lord_Howe", "2026-04-03T00:00:00Z", "2026-04-05T23:00:00Z",
         ["2026-04-03T16:00:00Z", "2026-04-04T16:30:00Z", "2026-04-05T16:30:00Z"]),

        // Australia/Lord_Howe, spring: 2026-10-04 02:00 (+10:30) jumps to 02:30 (+11) at 15:30 UTC on the 3rd.
        ("every 15 minutes: 01:45 at +10:30, then 02:30 at +11", "*/15 * * * *", "Australia/Lord_Howe",
         "2026-10-03T14:20:00Z", "2026-10-03T16:40:00Z",
         ["2026-10-03T14:30:00Z", "2026-10-03T14:45:00Z", "2026-10-03T15:00:00Z", "2026-10-03T15:15:00Z", "2026-10-03T15:30:00Z",
          "2026-10-03T15:45:00Z", "2026-10-03T16:00:00Z", "2026-10-03T16:15:00Z", "2026-10-03T16:30:00Z"]),
        ("every 5 minutes", "*/5 * * * *", "Australia/Lord_Howe", "2026-10-03T14:20:00Z", "2026-10-03T16:40:00Z",
         every(5, from: "2026-10-03T14:25:00Z", to: "2026-10-03T16:40:00Z")),
        ("02:15 does not exist: it runs at the jump, once", "15 2 * * *", "Australia/Lord_Howe",
         "2026-10-02T00:00:00Z", "2026-10-04T23:00:00Z",
         ["2026-10-02T15:45:00Z", "2026-10-03T15:30:00Z", "2026-10-04T15:15:00Z"]),
        ("01:30 is before the gap", "30 1 * * *", "Australia/Lord_Howe", "2026-10-02T00:00:00Z", "2026-10-04T23:00:00Z",
         ["2026-10-02T15:00:00Z", "2026-10-03T15:00:00Z", "2026-10-04T14:30:00Z"]),
        ("hourly: 02:00 does not exist, so 90 real minutes pass", "0 * * * *", "Australia/Lord_Howe",
         "2026-10-03T12:00:00Z", "2026-10-03T17:30:00Z",
         ["2026-10-03T12:30:00Z", "2026-10-03T13:30:00Z", "2026-10-03T14:30:00Z", "2026-10-03T16:00:00Z", "2026-10-03T17:00:00Z"]),
        ("hourly at half past: 01:30, then 02:30 just after the jump, 30 real minutes apart", "30 * * * *", "Australia/Lord_Howe",
         "2026-10-03T12:00:00Z", "2026-10-03T17:30:00Z",
         ["2026-10-03T13:00:00Z", "2026-10-03T14:00:00Z", "2026-10-03T15:00:00Z", "2026-10-03T15:30:00Z", "2026-10-03T16:30:00Z",
          "2026-10-03T17:30:00Z"]),

        // America/Santiago changes at midnight: on 2026-09-06 00:00 (-4) jumps to 01:00 (-3), at 04:00 UTC.
        ("midnight does not exist: the daily run is at the jump", "0 0 * * *", "America/Santiago",
         "2026-09-04T12:00:00Z", "2026-09-07T12:00:00Z",
         ["2026-09-05T04:00:00Z", "2026-09-06T04:00:00Z", "2026-09-07T03:00:00Z"]),
        // On 2026-04-05 00:00 (-3) falls back to 23:00 on the 4th (-4), at 03:00 UTC: 23:30 on the 4th occurs twice.
        ("23:30 occurs twice, on the day before: it runs at the first", "30 23 * * *", "America/Santiago",
         "2026-04-03T12:00:00Z", "2026-04-06T12:00:00Z",
         ["2026-04-04T02:30:00Z", "2026-04-05T02:30:00Z", "2026-04-06T03:30:00Z"]),

        // Pacific/Apia skipped 2011-12-30 entirely: 23:59:59 on the 29th (-10) was followed by 00:00 on the 31st (+14).
        ("every 15 minutes goes on in real time", "*/15 * * * *", "Pacific/Apia", "2011-12-30T09:20:00Z", "2011-12-30T10:40:00Z",
         ["2011-12-30T09:30:00Z", "2011-12-30T09:45:00Z", "2011-12-30T10:00:00Z", "2011-12-30T10:15:00Z", "2011-12-30T10:30:00Z"]),
        ("the missing day's noon runs at the jump", "0 12 * * *", "Pacific/Apia", "2011-12-29T00:00:00Z", "2012-01-01T00:00:00Z",
         ["2011-12-29T22:00:00Z", "2011-12-30T10:00:00Z", "2011-12-30T22:00:00Z", "2011-12-31T22:00:00Z"]),
    ]

    @Test("runs over the transition", arguments: cases)
    func runs(_ what: String, _ expression: String, _ zone: String, _ after: String, _ through: String, _ expected: [String]) throws {
        let schedule = try Schedule(expression, timeZone: zone)
        let runs = schedule.runs(after: Self.utc(after), through: Self.utc(through)).map(Self.text)
        #expect(runs == expected, "\(expression) in \(zone): \(what)")
    }

    @Test("the transition dates these cases assume are the time zone database's")
    func transitions() throws {
        let expected: [(String, String, String, Int, Int)] = [
            ("Europe/Berlin", "2026-01-01T00:00:00Z", "2026-03-29T01:00:00Z", 3600, 7200),
            ("Europe/Berlin", "2026-06-01T00:00:00Z", "2026-10-25T01:00:00Z", 7200, 3600),
            ("America/New_York", "2026-01-01T00:00:00Z", "2026-03-08T07:00:00Z", -18000, -14400),
            ("America/New_York", "2026-06-01T00:00:00Z", "2026-11-01T06:00:00Z", -14400, -18000),
            ("Australia/Lord_Howe", "2026-01-01T00:00:00Z", "2026-04-04T15:00:00Z", 39600, 37800),
            ("Australia/Lord_Howe", "2026-06-01T00:00:00Z", "2026-10-03T15:30:00Z", 37800, 39600),
            ("America/Santiago", "2026-01-01T00:00:00Z", "2026-04-05T03:00:00Z", -10800, -14400),
            ("America/Santiago", "2026-06-01T00:00:00Z", "2026-09-06T04:00:00Z", -14400, -10800),
            ("Pacific/Apia", "2011-12-01T00:00:00Z", "2011-12-30T10:00:00Z", -36000, 50400),
        ]
        for (name, from, at, before, after) in expected {
            let zone = try #require(TimeZone(identifier: name))
            let transition = try #require(zone.nextDaylightSavingTimeTransition(after: Self.utc(from)))
            #expect(Self.text(transition) == at, "\(name)")
            #expect(zone.secondsFromGMT(for: transition.addingTimeInterval(-1)) == before && zone.secondsFromGMT(for: transition) == after,
                    "\(name)")
        }
    }

    // Seconds since 1970 rather than dates: Date's description traps on some of these.
    @Test("far from now, or no date at all: nil or a later run, never a trap or a hang", arguments: [
        Date.distantPast.timeIntervalSince1970, Date.distantFuture.timeIntervalSince1970, 1e300, -1e300, .infinity, -.infinity, .nan,
    ])
    func extremes(_ seconds: Double) throws {
        let date = Date(timeIntervalSince1970: seconds)
        for expression in ["*/15 * * * *", "30 2 * * *", "0 0 29 2 *", "* * * * * *"] {
            if let next = try Schedule(expression, timeZone: "Europe/Berlin").next(after: date) {
                #expect(next > date, "\(expression) after \(seconds)")
            }
        }
    }
}
