import Logging

/// Drover's swift-log handler, the one `drover` bootstraps: logfmt lines on stderr, or journald
/// entries with structured fields when stderr is the journal (`JOURNAL_STREAM` names it; see
/// ``Log/configure(minimum:environment:)``).
///
/// A line is `time=… level=…`, then the logger's metadata (the known keys `process`, `name`, `pid`,
/// `job`, `class`, `queue` in that order, then the others by key), then `msg="…"`, then the call's
/// metadata: in the order ``Log`` was given it, else by key. A key both places is written once,
/// with the call's value, among the call's fields.
///
/// ```
/// time=2026-11-27T03:00:00.123Z level=info process=worker name=worker-x1y2 pid=812 job=42 class=SendReport queue=mail msg=sending to=ada
/// ```
///
/// Levels, as `level=` and as journald `PRIORITY` (syslog(3)): trace 7, debug 7, info 6, notice 5,
/// warning 4, error 3, critical 2. Journal fields: `job` is `JOB_ID`, `class` `JOB_CLASS`, `queue`
/// `QUEUE`, `process` `PROCESS_KIND`, `name` `PROCESS_NAME`, `pid` `PROCESS_PID`; any other key
/// upper-cased, with `_` for what a field name cannot hold.
///
/// An app that wants its lines and another handler's can bootstrap both:
///
/// ```swift
/// Drover.main(jobs: [SendWelcomeEmail.self], logHandler: { label in
///     MultiplexLogHandler([DroverLogHandler(label: label), MyShipper(label: label)])
/// })
/// ```
public struct DroverLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    /// Starts at the process's level (`drover start --log-level`, `DROVER_LOG_LEVEL`).
    public var logLevel: Logger.Level
    /// Where entries go: the process's output, or (in tests) a function.
    private let sink: @Sendable (LogEntry) -> Void

    public init(label: String, metadataProvider: Logger.MetadataProvider? = LoggingSystem.metadataProvider) {
        self.init(label: label, metadataProvider: metadataProvider, sink: LogOutput.write)
    }

    init(label: String, metadataProvider: Logger.MetadataProvider? = nil, sink: @escaping @Sendable (LogEntry) -> Void) {
        self.metadataProvider = metadataProvider
        logLevel = LogOutput.minimum.loggerLevel
        self.sink = sink
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        sink(entry(for: event))
    }

    /// `event` with its fields in line order.
    func entry(for event: LogEvent) -> LogEntry {
        var call = event.metadata ?? [:]
        if let error = event.error, call["error"] == nil {
            call["error"] = .string(String(describing: error))
        }
        var logger = metadata
        if let provided = metadataProvider?.get() {
            logger.merge(provided) { _, provided in provided }
        }
        let context = logger.filter { call[$0.key] == nil }.sorted { a, b in
            switch (Self.rank(a.key), Self.rank(b.key)) {
            case let (x?, y?): x < y
            case (.some, nil): true
            case (nil, .some): false
            case (nil, nil): a.key < b.key
            }
        }
        let fields = call.sorted { a, b in
            switch (a.value.attributes[FieldPosition.self], b.value.attributes[FieldPosition.self]) {
            case let (x?, y?): x.rawValue < y.rawValue
            case (.some, nil): true
            case (nil, .some): false
            case (nil, nil): a.key < b.key
            }
        }
        return LogEntry(level: event.level, message: event.message.description,
                        context: context.map { ($0.key, $0.value.description) }, fields: fields.map { ($0.key, $0.value.description) })
    }

    /// The keys that say whose line it is, in line order, with their journal field names.
    static let knownKeys = [
        ("process", "PROCESS_KIND"), ("name", "PROCESS_NAME"), ("pid", "PROCESS_PID"),
        ("job", "JOB_ID"), ("class", "JOB_CLASS"), ("queue", "QUEUE"),
    ]

    private static func rank(_ key: String) -> Int? { knownKeys.firstIndex { $0.0 == key } }

    /// Where a field of one ``Log`` call stands among the call's fields (metadata is a dictionary).
    /// Other handlers see the value alone.
    struct FieldPosition: Logger.MetadataValueAttributes.Attribute {
        let rawValue: Int64
        init(rawValue: Int64) { self.rawValue = rawValue }
    }
}

/// One line of the log, its fields in order: the logger's (`context`) before the message, the call's after.
struct LogEntry: Sendable {
    var level: Logger.Level
    var message: String
    var context: [(String, String)]
    var fields: [(String, String)]

    /// `time=… level=… <context> msg=… <fields>`, without the newline.
    func logfmt(time: String) -> String {
        var line = "time=\(time) level=\(level.rawValue)"
        for (key, value) in context + [("msg", message)] + fields {
            line += " \(key)=\(Self.quoted(value))"
        }
        return line
    }

    /// The fields of one journal entry: the message, its priority, and each field under its journal name.
    var journalFields: [(String, String)] {
        var entry = [("MESSAGE", message), ("PRIORITY", String(Self.priority(level))), ("SYSLOG_IDENTIFIER", "drover")]
        for (key, value) in context + fields {
            entry.append((Self.journalName(key), value))
        }
        return entry
    }

    /// syslog(3) priorities, as journald wants them. swift-log has no level below debug, nor
    /// syslog's alert and emergency: trace shares debug's 7, and critical is 2 (LOG_CRIT).
    static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    static func journalName(_ key: String) -> String {
        if let known = DroverLogHandler.knownKeys.first(where: { $0.0 == key }) { return known.1 }
        // Journal field names: upper-case letters, digits and underscores, not starting with one.
        let name = String(key.uppercased().map { $0.isASCII && ($0.isLetter || $0.isNumber) ? $0 : "_" })
        return name.first.map { $0.isLetter } == true ? name : "F_" + name
    }

    /// A value as logfmt writes it: bare when it is printable ASCII with no space, quote, `=` or
    /// backslash; else quoted, with `"`, `\`, newline and tab escaped.
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
}
