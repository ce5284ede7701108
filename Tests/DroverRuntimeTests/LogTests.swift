import DroverPersistence
import DroverQueue
@testable import DroverRuntime
import DroverTestSupport
import Foundation
import Logging
import Synchronization
import Testing

@Suite("Logging: DroverLogHandler's lines and journal fields, levels, a job's logger")
struct LogTests {
    /// Entries a handler made, instead of writing them.
    final class Captured: Sendable {
        let entries = Mutex<[LogEntry]>([])
        var all: [LogEntry] { entries.withLock { $0 } }
        var lines: [String] { all.map { $0.logfmt(time: "T") } }

        /// A logger whose handler is Drover's, at `level`, writing here.
        func logger(level: Logger.Level = .info) -> Logger {
            var logger = Logger(label: "drover") { [self] label in
                DroverLogHandler(label: label) { entry in self.entries.withLock { $0.append(entry) } }
            }
            logger.logLevel = level
            return logger
        }
    }

    @Test("a line: the logger's known keys in their order, its other keys by name, msg, then the call's fields as written")
    func lineOrder() {
        let captured = Captured()
        var logger = captured.logger()
        // Set in a scrambled order: the line does not depend on it.
        for (key, value) in [("zone", "b"), ("queue", "mail"), ("job", "7"), ("area", "a"), ("pid", "42"), ("class", "SendReport"),
                             ("name", "worker-ab12"), ("process", "worker")] {
            logger[metadataKey: key] = .string(value)
        }
        let log = Log(logger: logger)
        log.info("output", [("stream", "stderr"), ("line", "to-stderr"), ("attempt", "2")])
        log.warning("child died", [("name", "worker-x"), ("how", "killed by signal 9")])
        #expect(captured.lines == [
            "time=T level=info process=worker name=worker-ab12 pid=42 job=7 class=SendReport queue=mail area=a zone=b msg=output "
                + "stream=stderr line=to-stderr attempt=2",
            // A key given to the call as well is written once, with the call's value, where the call put it.
            "time=T level=warning process=worker pid=42 job=7 class=SendReport queue=mail area=a zone=b msg=\"child died\" "
                + "name=worker-x how=\"killed by signal 9\"",
        ])
    }

    @Test("Log.adding keeps its context's order; fields given to swift-log directly come after Log's, by name; an error is a field")
    func swiftLogCalls() {
        let captured = Captured()
        let log = Log(logger: captured.logger(), adding: [("process", "worker"), ("name", "w1")]).adding([("job", "3"), ("class", "C")])
        log.logger.info("sent", metadata: ["to": "ada", "attempt": "1", "id": .stringConvertible(5)])
        struct Refused: Error, CustomStringConvertible { var description: String { "refused by the server" } }
        log.logger.error("not sent", error: Refused())
        #expect(captured.lines == [
            "time=T level=info process=worker name=w1 job=3 class=C msg=sent attempt=1 id=5 to=ada",
            "time=T level=error process=worker name=w1 job=3 class=C msg=\"not sent\" error=\"refused by the server\"",
        ])
    }

    @Test("a value is bare when it is plain printable ASCII, else quoted with \", \\, newline and tab escaped")
    func quoting() {
        let captured = Captured()
        Log(logger: captured.logger()).info("m", [
            ("plain", "a-b_c.d/1:2"), ("empty", ""), ("space", "a b"), ("quote", #"say "hi""#), ("equals", "a=b"),
            ("backslash", #"C:\x"#), ("newline", "a\nb"), ("tab", "a\tb"), ("accent", "café"),
        ])
        #expect(captured.lines == [
            #"time=T level=info msg=m plain=a-b_c.d/1:2 empty="" space="a b" quote="say \"hi\"" equals="a=b" backslash="C:\\x" "#
                + #"newline="a\nb" tab="a\tb" accent="café""#,
        ])
    }

    @Test("every swift-log level has its level= text and syslog priority")
    func levels() {
        let captured = Captured()
        let logger = captured.logger(level: .trace)
        for level in Logger.Level.allCases { logger.log(level: level, "m") }
        #expect(captured.all.map(\.level) == Logger.Level.allCases)
        #expect(captured.lines.map { $0.split(separator: " ")[1] } == [
            "level=trace", "level=debug", "level=info", "level=notice", "level=warning", "level=error", "level=critical",
        ])
        #expect(captured.all.map { $0.journalFields[1].1 } == ["7", "7", "6", "5", "4", "3", "2"])
        #expect(Log.Level.allCases.map(\.loggerLevel) == [.debug, .info, .warning, .error])
        #expect(Log.Level.debug < .info && Log.Level.info < .warning && Log.Level.warning < .error)
    }

    @Test("lines below the logger's level are not written; a Log starts at the process's level")
    func minimum() {
        let captured = Captured()
        let log = Log(logger: captured.logger(level: .warning))
        log.debug("d")
        log.info("i")
        log.warning("w")
        log.error("e")
        #expect(captured.lines == ["time=T level=warning msg=w", "time=T level=error msg=e"])
        #expect(Log().logger.logLevel == Log.minimum.loggerLevel)
        #expect(DroverLogHandler(label: "drover").logLevel == Log.minimum.loggerLevel)
    }

    @Test("log fields become journal fields: the job's id and class, queue, process kind and name, priority")
    func journalFields() {
        let entry = LogEntry(level: .warning, message: "job failed", context: [
            ("process", "worker"), ("name", "worker-ab12"), ("pid", "42"), ("job", "7"), ("class", "SendReport"), ("queue", "mail"),
        ], fields: [("stream", "stderr"), ("run_at", "x"), ("9lives", "y")])
        let fields = entry.journalFields
        #expect(fields.map(\.0) == [
            "MESSAGE", "PRIORITY", "SYSLOG_IDENTIFIER", "PROCESS_KIND", "PROCESS_NAME", "PROCESS_PID", "JOB_ID", "JOB_CLASS",
            "QUEUE", "STREAM", "RUN_AT", "F_9LIVES",
        ])
        #expect(fields[0].1 == "job failed" && fields[1].1 == "4" && fields[2].1 == "drover" && fields[6].1 == "7" && fields[9].1 == "stderr")
    }

    @Test("stderr is the journal only when JOURNAL_STREAM names this very stream")
    func journalDetection() {
        var info = stat()
        #expect(fstat(2, &info) == 0)
        let matching = "\(info.st_dev):\(info.st_ino)"
        #expect(LogOutput.stderrIsJournal(["JOURNAL_STREAM": matching]))
        #expect(!LogOutput.stderrIsJournal(["JOURNAL_STREAM": "\(info.st_dev):\(info.st_ino + 1)"]))
        #expect(!LogOutput.stderrIsJournal(["JOURNAL_STREAM": "garbage"]))
        #expect(!LogOutput.stderrIsJournal([:]))
    }

    @Test("drover start --log-level warning (or DROVER_LOG_LEVEL) keeps info lines out of every process's log")
    func levelReachesChildren() throws {
        let h = try SupervisorHarness(config: SupervisorHarness.oneWorker, environment: ["DROVER_LOG_LEVEL": "warning"])
        try h.waitForReady()
        let job = try h.enqueue("drover.test.fail", arguments: #"{"message": "boom"}"#, maxAttempts: 1)
        try waitUntil("the job failed") { try h.state(job[0])?.state == .failed }
        let worker = try #require(try h.registeredChildren().first { $0.kind == .worker })
        kill(pid_t(worker.pid), SIGKILL)
        try waitUntil("the death was logged") { h.log.contains("level=warning process=supervisor") }
        #expect(try h.stop().status == 0)
        #expect(!h.log.contains("level=info"), "\(h.log)")
    }

    @Test("a level that is not one is refused: 64 as an option, 78 in the environment")
    func badLevels() throws {
        let option = try DroverBinary.run(["start", "--log-level", "loud", "--database-url", try TestDatabase.url()])
        #expect(option.status == 64)
        #expect(option.stderr.contains("--log-level \"loud\" is not a level; use debug, info, warning or error"))
        let environment = try DroverBinary.run(["start", "--database-url", try TestDatabase.url()], environment: ["DROVER_LOG_LEVEL": "loud"])
        #expect(environment.status == 78)
        #expect(environment.stderr.contains("DROVER_LOG_LEVEL: \"loud\" is not a level"))
    }

    /// The line `drover.test.wait` writes through `context.logger` for job `id` on queue `mail`:
    /// the worker's fields, then the job's, then its own.
    static func jobLine(_ log: String, job id: Int) -> Substring? {
        log.split(separator: "\n").first { $0.contains(" job=\(id) ") && $0.contains("msg=waiting") }
    }

    static func expectJobLine(_ line: Substring?, job id: Int, sourceLocation: SourceLocation = #_sourceLocation) {
        let pattern = try! Regex(
            #"^time=\S+ level=info process=worker name=worker-[a-z0-9]+ pid=[0-9]+ job=\#(id) class=drover\.test\.wait queue=mail msg=waiting ms=1$"#)
        #expect(line.map { $0.wholeMatch(of: pattern) != nil } == true, "\(line ?? "no line")", sourceLocation: sourceLocation)
    }

    @Test("a Swift job's line through context.logger names the worker, then the job: id, class and queue (PostgreSQL)")
    func jobLoggerOnPostgres() throws {
        let h = try SupervisorHarness(config: SupervisorHarness.oneWorker)
        try h.waitForReady()
        let id = try h.store.enqueue([NewJob("drover.test.wait", arguments: try JSON(validating: #"{"ms": 1}"#), queue: "mail")], on: h.db)[0]
        try h.waitUntilFinished([id])
        try waitUntil("the job's line is in the log") { Self.jobLine(h.log, job: id) != nil }
        Self.expectJobLine(Self.jobLine(h.log, job: id), job: id)
        #expect(try h.stop().status == 0)
    }

    @Test("a Swift job's line through context.logger names the worker, then the job: id, class and queue (SQLite)")
    func jobLoggerOnSQLite() throws {
        let run = try SQLiteRuntimeTests.Run(config: SupervisorHarness.oneWorker)
        try run.waitForReady()
        let (store, db) = try run.open()
        let id = try store.enqueue([NewJob("drover.test.wait", arguments: try JSON(validating: #"{"ms": 1}"#), queue: "mail")], on: db)[0]
        try waitUntil("the job finished", timeout: .seconds(30)) { try store.job(id, on: db)?.state == .finished }
        try waitUntil("the job's line is in the log") { Self.jobLine(run.process.stderrSoFar, job: id) != nil }
        Self.expectJobLine(Self.jobLine(run.process.stderrSoFar, job: id), job: id)
        #expect(try run.stop().status == 0)
    }
}
