import DroverPersistence
import CSystemd
import Foundation
import Synchronization

/// Drover's log. Under systemd, when stderr is the journal (`JOURNAL_STREAM` names it), each line
/// goes to journald with structured fields (`PRIORITY`, `JOB_ID`, `JOB_CLASS`, `QUEUE`,
/// `PROCESS_KIND`, `PROCESS_NAME`, …); otherwise it is a logfmt line on stderr:
/// `time=… level=… process=… name=… msg="…" key=value`.
public struct Log: Sendable {
    public enum Level: String, Sendable, CaseIterable, Comparable {
        case debug, info, warning, error

        var rank: Int { Self.allCases.firstIndex(of: self)! }
        public static func < (a: Level, b: Level) -> Bool { a.rank < b.rank }

        /// syslog(3) priorities, as journald wants them.
        var priority: Int {
            switch self {
            case .debug: 7
            case .info: 6
            case .warning: 4
            case .error: 3
            }
        }
    }

    /// Where lines go, decided once per process.
    enum Destination: Sendable, Equatable {
        case stderr
        case journal
    }

    private static let lock = Mutex(())
    private static let settings = Mutex((minimum: Level.info, destination: Destination.stderr))
    private let context: [(String, String)]

    public init(_ context: [(String, String)] = []) { self.context = context }

    /// This log with `fields` on every line as well.
    public func adding(_ fields: [(String, String)]) -> Log { Log(context + fields) }

    /// Lines below `minimum` are dropped; `environment` decides between journald and stderr.
    public static func configure(minimum: Level, environment: [String: String] = ProcessInfo.processInfo.environment) {
        settings.withLock { $0 = (minimum, stderrIsJournal(environment) ? .journal : .stderr) }
    }

    /// The level below which lines are dropped.
    public static var minimum: Level { settings.withLock { $0.minimum } }

    public func debug(_ message: String, _ fields: [(String, String)] = []) { write(.debug, message, fields) }
    public func info(_ message: String, _ fields: [(String, String)] = []) { write(.info, message, fields) }
    public func warning(_ message: String, _ fields: [(String, String)] = []) { write(.warning, message, fields) }
    public func error(_ message: String, _ fields: [(String, String)] = []) { write(.error, message, fields) }

    public func write(_ level: Level, _ message: String, _ fields: [(String, String)] = []) {
        let (minimum, destination) = Self.settings.withLock { $0 }
        guard level >= minimum else { return }
        let all = context + fields
        if destination == .journal, Self.sendToJournal(Self.journalFields(level, message, all)) { return }
        var line = "time=\(Self.timestamp()) level=\(level.rawValue)"
        for (key, value) in context + [("msg", message)] + fields {
            line += " \(key)=\(Self.quoted(value))"
        }
        line += "\n"
        Self.lock.withLock { _ in
            FileHandle.standardError.write(Data(line.utf8))
        }
    }

    /// Whether stderr is the stream `JOURNAL_STREAM` ("device:inode") names, as sd_journal_stream_fd
    /// sets it up for a service's stdout and stderr.
    static func stderrIsJournal(_ environment: [String: String]) -> Bool {
        guard let stream = environment["JOURNAL_STREAM"] else { return false }
        let parts = stream.split(separator: ":")
        guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]) else { return false }
        var info = stat()
        guard fstat(2, &info) == 0 else { return false }
        return UInt64(info.st_dev) == device && UInt64(info.st_ino) == inode
    }

    /// The fields of one journal entry: the message, its priority, and each context and line field
    /// under a journal name (`job` is `JOB_ID`; other keys are upper-cased).
    static func journalFields(_ level: Level, _ message: String, _ fields: [(String, String)]) -> [(String, String)] {
        var entry = [("MESSAGE", message), ("PRIORITY", String(level.priority)), ("SYSLOG_IDENTIFIER", "drover")]
        for (key, value) in fields {
            entry.append((journalName(key), value))
        }
        return entry
    }

    static func journalName(_ key: String) -> String {
        switch key {
        case "job": return "JOB_ID"
        case "class": return "JOB_CLASS"
        case "queue": return "QUEUE"
        case "process": return "PROCESS_KIND"
        case "name": return "PROCESS_NAME"
        case "pid": return "PROCESS_PID"
        default:
            // Journal field names: upper-case letters, digits and underscores, not starting with one.
            let name = String(key.uppercased().map { $0.isASCII && ($0.isLetter || $0.isNumber) ? $0 : "_" })
            return name.first.map { $0.isLetter } == true ? name : "F_" + name
        }
    }

    /// Sends one entry with sd_journal_sendv(3); false when journald cannot be reached.
    private static func sendToJournal(_ fields: [(String, String)]) -> Bool {
        var buffers = fields.map { Array("\($0.0)=\($0.1)".utf8) }
        let count = buffers.count
        return buffers.withUnsafeMutableBufferPointer { all -> Bool in
            var vectors: [iovec] = []
            vectors.reserveCapacity(count)
            for index in 0..<count {
                all[index].withUnsafeMutableBytes { bytes in
                    vectors.append(iovec(iov_base: bytes.baseAddress, iov_len: bytes.count))
                }
            }
            return sd_journal_sendv(vectors, Int32(count)) >= 0
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
        return DatabaseTime.utcText(Date(timeIntervalSince1970: Double(now.tv_sec) + Double(now.tv_nsec / 1_000_000) / 1000),
                                    milliseconds: true)
    }
}
