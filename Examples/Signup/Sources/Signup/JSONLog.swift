import Drover
import Foundation

/// The app's own log format, for a log pipeline that reads JSON: one object a line on stderr, with
/// `time`, `level`, `message` and every metadata field. `SIGNUP_LOG=json signup start` gives it to
/// `Drover.main(jobs:logHandler:)`, so that Drover's own lines and the jobs' lines come out in it.
struct JSONLogHandler: LogHandler {
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info

    init(label: String) {}

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var object: [String: String] = [:]
        for (key, value) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { _, call in call }) {
            object[key] = value.description
        }
        object["time"] = Date().formatted(.iso8601)
        object["level"] = event.level.rawValue
        object["message"] = event.message.description
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        guard var line = try? encoder.encode(object) else { return }
        line.append(0x0A)
        // One write a line: lines from the worker's threads do not mix.
        line.withUnsafeBytes { _ = write(2, $0.baseAddress, $0.count) }
    }
}
