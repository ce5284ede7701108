@testable import DroverPersistence
import Foundation
import Testing

@Suite("Database time: one fixed-width text written, every PostgreSQL form read")
struct DatabaseTimeTests {
    private func utc(_ y: Int, _ mo: Int, _ d: Int, _ h: Int = 0, _ mi: Int = 0, _ s: Int = 0) -> Date {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar.date(from: DateComponents(year: y, month: mo, day: d, hour: h, minute: mi, second: s))!
    }

    @Test("formats in UTC with six fraction digits, always, so every written time has one width")
    func formats() {
        #expect(DatabaseTime.format(utc(2026, 11, 27, 2, 2, 31)) == "2026-11-27 02:02:31.000000+00")
        #expect(DatabaseTime.format(utc(1970, 1, 1).addingTimeInterval(0.000001)) == "1970-01-01 00:00:00.000001+00")
        #expect(DatabaseTime.format(utc(1969, 12, 31, 23, 59, 59).addingTimeInterval(0.5)) == "1969-12-31 23:59:59.500000+00")
        #expect(DatabaseTime.format(utc(2000, 2, 29)) == "2000-02-29 00:00:00.000000+00")
        #expect(DatabaseTime.format(.distantFuture) == "infinity")
        #expect(DatabaseTime.format(.distantPast) == "-infinity")
    }

    @Test("a date too far out to count in microseconds is infinity, never a trap")
    func farOut() {
        #expect(DatabaseTime.format(Date(timeIntervalSince1970: 1e300)) == "infinity")
        #expect(DatabaseTime.format(Date(timeIntervalSince1970: -1e300)) == "-infinity")
        #expect(DatabaseTime.format(Date(timeIntervalSince1970: .infinity)) == "infinity")
        #expect(DatabaseTime.format(Date(timeIntervalSince1970: .nan)) == "infinity")
        #expect(DatabaseTime.format(Date(timeIntervalSince1970: 253_402_300_800)) == "10000-01-01 00:00:00.000000+00")
    }

    @Test("from year 1 to 9999 the text order of written times is their time order")
    func textOrderIsTimeOrder() {
        var generator = SystemRandomNumberGenerator()
        let dates = (0..<2_000).map { _ in
            Date(timeIntervalSince1970: Double(Int64.random(in: -62_135_596_800_000_000 ... 253_402_300_799_999_999, using: &generator)) / 1e6)
        }
        let texts = dates.map(DatabaseTime.format)
        #expect(Set(texts.map(\.utf8.count)) == [29])
        let byTime = dates.indices.sorted { dates[$0] < dates[$1] }
        for (a, b) in zip(byTime, byTime.dropFirst()) {
            #expect(texts[a] <= texts[b], "\(texts[a]) sorts after \(texts[b])")
        }
    }

    @Test("times for people and logs: UTC, to the second or the millisecond, rounded down")
    func forPeople() {
        let date = utc(2026, 11, 27, 2, 2, 31).addingTimeInterval(0.1239)
        #expect(DatabaseTime.utcText(date) == "2026-11-27T02:02:31Z")
        #expect(DatabaseTime.utcText(date, separator: " ") == "2026-11-27 02:02:31Z")
        #expect(DatabaseTime.utcText(date, milliseconds: true) == "2026-11-27T02:02:31.123Z")
        #expect(DatabaseTime.utcText(utc(1969, 12, 31, 23, 59, 59).addingTimeInterval(0.5), milliseconds: true) == "1969-12-31T23:59:59.500Z")
        #expect(DatabaseTime.utcText(Date(timeIntervalSince1970: 1e300)) == "infinity")
    }

    @Test("parses every offset form PostgreSQL prints")
    func parsesOffsets() {
        let instant = utc(2026, 11, 26, 20, 32, 31)
        #expect(DatabaseTime.parse("2026-11-26 20:32:31+00") == instant)
        #expect(DatabaseTime.parse("2026-11-27 02:02:31+05:30") == instant)
        #expect(DatabaseTime.parse("2026-11-26 17:02:31-03:30") == instant)
        #expect(DatabaseTime.parse("2026-11-27 02:26:31+05:53:28")?.timeIntervalSince(instant) == 32)
        #expect(DatabaseTime.parse("2026-11-26 20:32:31") == instant)  // timestamp without time zone
        #expect(DatabaseTime.parse("2026-11-26 20:32:31.25+00") == instant.addingTimeInterval(0.25))
        #expect(DatabaseTime.parse("-infinity") == .distantPast)
    }

    @Test("round-trips across eras, leap days and BC years")
    func roundTrips() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2_000 {
            // From about 4700 BC to 9999 AD, at whole microseconds.
            let micros = Int64.random(in: -210_000_000_000_000_000 ... 253_402_300_799_000_000, using: &generator)
            let date = Date(timeIntervalSince1970: Double(micros) / 1e6)
            let text = DatabaseTime.format(date)
            guard let back = DatabaseTime.parse(text) else {
                Issue.record("cannot parse \(text)")
                continue
            }
            #expect(abs(back.timeIntervalSince(date)) <= 1e-6 + abs(date.timeIntervalSince1970) * 1e-15, "\(text)")
        }
        #expect(DatabaseTime.format(DatabaseTime.parse("0044-03-15 12:00:00+00 BC")!) == "0044-03-15 12:00:00.000000+00 BC")
    }

    @Test("rejects text that is not a timestamp")
    func rejectsGarbage() {
        for text in ["", "now", "2026-13-01 00:00:00+00", "2026-11-27", "2026-11-27T02:02:31Z", "11/27/2026 02:02:31",
                     "2026-11-27 02:02:31.1234567+00", "2026-11-27 25:00:00+00", "2026-11-27 02:02:31+00 junk"] {
            #expect(DatabaseTime.parse(text) == nil, "\(text)")
        }
    }

    @Test("civil date conversion agrees with Foundation's Gregorian calendar")
    func civilConversion() {
        for days in stride(from: Int64(-800_000), through: 800_000, by: 997) {
            let (y, m, d) = CivilDate.civil(fromDaysSinceEpoch: days)
            #expect(CivilDate.daysSinceEpoch(year: y, month: m, day: d) == days)
            if y > 1582 {
                #expect(utc(Int(y), Int(m), Int(d)).timeIntervalSince1970 == Double(days * 86_400))
            }
        }
    }
}
