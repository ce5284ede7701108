import Foundation
import Synchronization

/// Log lines on stderr as logfmt: `time=… level=… process=… name=… msg="…" key=value`.
///
/// (Journald fields come with the packaging work; under systemd, stderr goes to the journal anyway.)
public struct Log: Sendable {
    public enum Level: String, Sendable { case debug, info, warning, error }

    private static let lock = Mutex(())
    private let context: [(String, String)]

    public init(_ context: [(String, String)] = []) { self.context = context }

    /// This log with `fields` on every line as well.
    public func adding(_ fields: [(String, String)]) -> Log { Log(context + fields) }

    public func info(_ message: String, _ fields: [(String, String)] = []) { write(.info, message, fields) }
    public func warning(_ message: String, _ fields: [(String, String)] = []) { write(.warning, message, fields) }
    public func error(_ message: String, _ fields: [(String, String)] = []) { write(.error, message, fields) }

    public func write(_ level: Level, _ message: String, _ fields: [(String, String)] = []) {
        var line = "time=\(Self.timestamp()) level=\(level.rawValue)"
        for (key, value) in context + [("msg", message)] + fields {
            line += " \(key)=\(Self.quoted(value))"
        }
        line += "\n"
        Self.lock.withLock { _ in
            FileHandle.standardError.write(Data(line.utf8))
        }
    }

    static func quoted(_ value: String) -> String {
        let plain = !value.isEmpty && value.unicodeScalars.allSatisfy {
            $0.value > 0x20 && $0.value < 0x7F && $0 != "\"" && $0 != "=" && $0 != "\\"
        }
        if plain { return value }
        var escaped = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": escaped += "\\\""
            case "\\": escaped += "\\\\"
            case "\n": escaped += "\\n"
            case "\t": escaped += "\\t"
            default: escaped.unicodeScalars.append(scalar)
            }
        }
        return escaped + "\""
    }

    private static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var parts = tm()
        var seconds = now.tv_sec
        gmtime_r(&seconds, &parts)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday,
                      parts.tm_hour, parts.tm_min, parts.tm_sec, Int(now.tv_nsec / 1_000_000))
    }
}
