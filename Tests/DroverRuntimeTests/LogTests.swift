@testable import DroverRuntime
import DroverTestSupport
import Foundation
import Testing

@Suite("Logging: journald fields, the journal's detection, levels")
struct LogTests {
    @Test("log fields become journal fields: the job's id and class, queue, process kind and name, priority")
    func journalFields() {
        let fields = Log.journalFields(.warning, "job failed", [
            ("process", "worker"), ("name", "worker-ab12"), ("pid", "42"), ("job", "7"), ("class", "SendReport"),
            ("queue", "mail"), ("stream", "stderr"), ("run_at", "x"), ("9lives", "y"),
        ])
        #expect(fields.map(\.0) == [
            "MESSAGE", "PRIORITY", "SYSLOG_IDENTIFIER", "PROCESS_KIND", "PROCESS_NAME", "PROCESS_PID", "JOB_ID", "JOB_CLASS",
            "QUEUE", "STREAM", "RUN_AT", "F_9LIVES",
        ])
        #expect(fields[0].1 == "job failed" && fields[1].1 == "4" && fields[6].1 == "7")
        #expect(Log.journalFields(.error, "m", [])[1].1 == "3")
        #expect(Log.journalFields(.info, "m", [])[1].1 == "6")
        #expect(Log.journalFields(.debug, "m", [])[1].1 == "7")
    }

    @Test("stderr is the journal only when JOURNAL_STREAM names this very stream")
    func journalDetection() {
        var info = stat()
        #expect(fstat(2, &info) == 0)
        let matching = "\(info.st_dev):\(info.st_ino)"
        #expect(Log.stderrIsJournal(["JOURNAL_STREAM": matching]))
        #expect(!Log.stderrIsJournal(["JOURNAL_STREAM": "\(info.st_dev):\(info.st_ino + 1)"]))
        #expect(!Log.stderrIsJournal(["JOURNAL_STREAM": "garbage"]))
        #expect(!Log.stderrIsJournal([:]))
    }

    @Test("levels order from debug to error")
    func levels() {
        #expect(Log.Level.debug < .info && Log.Level.info < .warning && Log.Level.warning < .error)
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
}
