import Foundation
import Logging

/// Drover's own log calls: a swift-log `Logger` (label `drover`) with fields given as ordered pairs,
/// so that a line's fields come out in the order written. `drover` bootstraps ``DroverLogHandler``
/// (logfmt on stderr, or journald); an app that embeds Drover may bootstrap another handler, which
/// then gets these lines too.
///
/// ```swift
/// let log = Log([("process", "worker"), ("name", name)])
/// log.info("job failed", [("job", String(id)), ("error", message)])
/// // level=info process=worker name=worker-x1y2 msg="job failed" job=42 error=…
/// ```
public struct Log: Sendable {
    /// The levels `--log-level` and `DROVER_LOG_LEVEL` accept.
    public enum Level: String, Sendable, CaseIterable, Comparable {
        case debug, info, warning, error

        var rank: Int { Self.allCases.firstIndex(of: self)! }
        public static func < (a: Level, b: Level) -> Bool { a.rank < b.rank }

        public var loggerLevel: Logger.Level {
            switch self {
            case .debug: .debug
            case .info: .info
            case .warning: .warning
            case .error: .error
            }
        }
    }

    /// Every line of this log goes through it; its metadata is this log's context.
    public let logger: Logger

    /// A log with `context` on every line, at the process's level (``configure(minimum:environment:)``),
    /// whichever handler the logging system was bootstrapped with.
    public init(_ context: [(String, String)] = []) {
        var logger = Logger(label: "drover")
        logger.logLevel = LogOutput.minimum.loggerLevel
        self.init(logger: logger, adding: context)
    }

    init(logger: Logger, adding context: [(String, String)] = []) {
        var logger = logger
        for (key, value) in context { logger[metadataKey: key] = .string(value) }
        self.logger = logger
    }

    /// This log with `fields` on every line as well.
    public func adding(_ fields: [(String, String)]) -> Log { Log(logger: logger, adding: fields) }

    /// Lines below `minimum` are dropped (loggers made from then on start at that level);
    /// `environment` decides between journald and stderr.
    public static func configure(minimum: Level, environment: [String: String] = ProcessInfo.processInfo.environment) {
        LogOutput.configure(minimum: minimum, environment: environment)
    }

    /// The level below which lines are dropped.
    public static var minimum: Level { LogOutput.minimum }

    public func debug(_ message: String, _ fields: [(String, String)] = [], file: String = #fileID, function: String = #function, line: UInt = #line) {
        write(.debug, message, fields, file: file, function: function, line: line)
    }

    public func info(_ message: String, _ fields: [(String, String)] = [], file: String = #fileID, function: String = #function, line: UInt = #line) {
        write(.info, message, fields, file: file, function: function, line: line)
    }

    public func warning(_ message: String, _ fields: [(String, String)] = [], file: String = #fileID, function: String = #function, line: UInt = #line) {
        write(.warning, message, fields, file: file, function: function, line: line)
    }

    public func error(_ message: String, _ fields: [(String, String)] = [], file: String = #fileID, function: String = #function, line: UInt = #line) {
        write(.error, message, fields, file: file, function: function, line: line)
    }

    public func write(_ level: Level, _ message: String, _ fields: [(String, String)] = [],
                      file: String = #fileID, function: String = #function, line: UInt = #line) {
        // The metadata is built only for a line that is written.
        guard logger.logLevel <= level.loggerLevel else { return }
        logger.log(level: level.loggerLevel, "\(message)", metadata: Self.metadata(fields), file: file, function: function, line: line)
    }

    /// `fields` as metadata, each value marked with its place, which ``DroverLogHandler`` keeps.
    static func metadata(_ fields: [(String, String)]) -> Logger.Metadata {
        var metadata = Logger.Metadata(minimumCapacity: fields.count)
        for (index, (key, value)) in fields.enumerated() {
            var attributes = Logger.MetadataValueAttributes()
            attributes[DroverLogHandler.FieldPosition.self] = DroverLogHandler.FieldPosition(rawValue: Int64(index))
            metadata[key] = .attributed(value, attributes: attributes)
        }
        return metadata
    }
}
