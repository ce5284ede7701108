import DroverQueue
@testable import DroverRuntime
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing

@Suite("The dashboard's chart: SVG of the last hour")
struct ThroughputChartTests {
    static func minutes(_ values: [(Int, Int)]) -> [MinuteCounts] {
        values.enumerated().map { index, value in
            var minute = MinuteCounts(minute: Date(timeIntervalSince1970: Double(index) * 60))
            minute.finished = value.0
            minute.failed = value.1
            return minute
        }
    }

    @Test("one bar per minute with jobs, scaled to a round top; totals in the title; nothing but numbers and fixed words")
    func bars() throws {
        let svg = ThroughputChart.svg(Self.minutes([(0, 0), (40, 3), (87, 0)] + Array(repeating: (0, 0), count: 57)))
        #expect(svg.hasPrefix("<svg") && svg.hasSuffix("</svg>"))
        #expect(svg.components(separatedBy: "class=\"finished\"").count - 1 == 2)
        #expect(svg.components(separatedBy: "class=\"failed\"").count - 1 == 1)
        #expect(svg.contains("127 finished, 3 failed"))
        #expect(svg.contains(">100</text>"), "87 at most: the scale's top is 100")
        #expect(svg.contains(">now</text>") && svg.contains(">-45 min</text>"))
        let document = try XMLDocument(xmlString: svg)
        #expect(document.rootElement()?.name == "svg", "well-formed XML")
    }

    @Test("an hour with nothing draws an empty chart, not a division by zero")
    func empty() {
        let svg = ThroughputChart.svg(Self.minutes(Array(repeating: (0, 0), count: 60)))
        #expect(!svg.contains("<rect") && svg.contains("0 finished, 0 failed"))
        #expect(ThroughputChart.niceCeiling(1) == 1 && ThroughputChart.niceCeiling(3) == 5 && ThroughputChart.niceCeiling(11) == 20)
    }
}
