@testable import Drover
import DroverQueue
import DroverRuntime
import Foundation
import Testing

@Suite("Durations and times as people type them")
struct ArgumentParsingTests {
    @Test("durations")
    func durations() {
        #expect(DurationText.parse("500ms") == .milliseconds(500))
        #expect(DurationText.parse("30s") == .seconds(30))
        #expect(DurationText.parse("5m") == .seconds(300))
        #expect(DurationText.parse("1h30m") == .seconds(5400))
        #expect(DurationText.parse("2d") == .seconds(172_800))
        #expect(DurationText.parse("1.5s") == .milliseconds(1500))
        for bad in ["", "10", "s", "5 m", "5x", "-5s", "1h-30m", "ms5", "5mm"] {
            #expect(DurationText.parse(bad) == nil, "\(bad)")
        }
        for text in ["1d2h3m4s5ms", "45s", "250ms", "1h"] {
            #expect(DurationText.format(DurationText.parse(text)!) == text)
        }
    }

    @Test("times")
    func times() {
        let utc = TimeZone(identifier: "UTC")!
        let expected = Date(timeIntervalSince1970: 1_795_000_000)  // 2026-11-18 11:06:40 UTC
        #expect(TimeArgument.parse("2026-11-18T11:06:40Z") == expected)
        #expect(TimeArgument.parse("2026-11-18T12:06:40+01:00") == expected)
        #expect(TimeArgument.parse("2026-11-18T11:06:40.250Z") == expected.addingTimeInterval(0.25))
        #expect(TimeArgument.parse("@1795000000") == expected)
        #expect(TimeArgument.parse("2026-11-18 11:06:40", timeZone: utc) == expected)
        #expect(TimeArgument.parse("2026-11-18 12:06:40", timeZone: TimeZone(identifier: "Europe/Berlin")!) == expected)
        #expect(TimeArgument.parse("2026-11-18 11:06", timeZone: utc) == expected.addingTimeInterval(-40))
        for bad in ["tomorrow", "", "2026-13-01", "18/11/2026", "@x"] {
            #expect(TimeArgument.parse(bad) == nil, "\(bad)")
        }
    }
}
