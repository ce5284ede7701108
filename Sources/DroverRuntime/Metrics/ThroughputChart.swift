import DroverQueue
import Foundation

/// The dashboard's chart of the last hour, drawn by the server as SVG (no script, no network):
/// finished jobs per minute as bars, failed ones as red bars in front, the axis in minutes ago.
/// Only numbers and fixed text reach the markup.
public enum ThroughputChart {
    public static let width = 720
    public static let height = 180

    public static func svg(_ minutes: [MinuteCounts]) -> String {
        let left = 48.0, right = 8.0, top = 10.0, bottom = 24.0
        let plotWidth = Double(width) - left - right
        let plotHeight = Double(height) - top - bottom
        let peak = max(1, minutes.map { max($0.finished, $0.failed) }.max() ?? 1)
        let scale = niceCeiling(peak)
        let slot = plotWidth / Double(max(1, minutes.count))
        let finished = minutes.reduce(0) { $0 + $1.finished }
        let failed = minutes.reduce(0) { $0 + $1.failed }
        var svg = """
            <svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 \(width) \(height)" width="\(width)" height="\(height)" \
            role="img" aria-label="Jobs per minute over the last hour: \(finished) finished, \(failed) failed">
            <title>Jobs per minute, last \(minutes.count) minutes: \(finished) finished, \(failed) failed</title>

            """
        // Grid lines at 0, half and the top of the scale.
        for fraction in [0.0, 0.5, 1.0] {
            let y = top + plotHeight * (1 - fraction)
            svg += "<line x1=\"\(fmt(left))\" y1=\"\(fmt(y))\" x2=\"\(fmt(left + plotWidth))\" y2=\"\(fmt(y))\" stroke=\"#ccc\" stroke-width=\"1\"/>\n"
            svg += "<text x=\"\(fmt(left - 6))\" y=\"\(fmt(y + 4))\" text-anchor=\"end\" font-size=\"11\" fill=\"#555\">\(Int(Double(scale) * fraction))</text>\n"
        }
        for (index, minute) in minutes.enumerated() {
            let x = left + Double(index) * slot
            for (value, colour, name) in [(minute.finished, "#3a7d44", "finished"), (minute.failed, "#c0392b", "failed")] where value > 0 {
                let h = plotHeight * Double(value) / Double(scale)
                svg += "<rect class=\"\(name)\" x=\"\(fmt(x + 1))\" y=\"\(fmt(top + plotHeight - h))\" width=\"\(fmt(max(1, slot - 2)))\" "
                    + "height=\"\(fmt(h))\" fill=\"\(colour)\"><title>\(value) \(name)</title></rect>\n"
            }
        }
        // The time axis: minutes ago, every 15.
        let count = minutes.count
        for ago in stride(from: 0, through: count - 1, by: 15) {
            let x = left + (Double(count - 1 - ago) + 0.5) * slot
            svg += "<text x=\"\(fmt(x))\" y=\"\(fmt(Double(height) - 6))\" text-anchor=\"middle\" font-size=\"11\" fill=\"#555\">"
                + (ago == 0 ? "now" : "-\(ago) min") + "</text>\n"
        }
        svg += "</svg>"
        return svg
    }

    /// The smallest of 1, 2, 5 × 10ⁿ at or above `value`.
    static func niceCeiling(_ value: Int) -> Int {
        var magnitude = 1
        while magnitude * 10 <= value { magnitude *= 10 }
        for step in [1, 2, 5, 10] where step * magnitude >= value { return step * magnitude }
        return 10 * magnitude
    }

    private static func fmt(_ value: Double) -> String { String(format: "%.1f", value) }
}
