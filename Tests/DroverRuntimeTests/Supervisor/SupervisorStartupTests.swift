import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

@Suite("The supervisor's start and end: an unreachable database, permanent errors, QUIT, crash loops")
struct SupervisorStartupTests {
    static let config = SupervisorHarness.oneWorker

    /// Where the configuration files of these tests live (removed with the suite's instance).
    private let directory: TemporaryDirectory

    init() throws { directory = try TemporaryDirectory("drover-start") }

    private func start(databaseURL: String, schema: String, listener: NotifyListener? = nil) throws -> RunningProcess {
        let path = try directory.file(Self.config, named: "\(UUID()).yml")
        var environment: [String: String?] = ["DROVER_TEST_HANDLERS": "1"]
        if let listener { environment["NOTIFY_SOCKET"] = listener.path }
        return try DroverBinary.start(["start", "--config", path, "--database-url", databaseURL, "--schema", schema],
                                      environment: environment)
    }

    @Test("an unreachable database is waited for: STATUS says so and the start timeout is extended; TERM still stops it")
    func waitsForDatabase() throws {
        let listener = try NotifyListener()
        let process = try start(databaseURL: "postgresql:///drover?host=/nonexistent/socket/dir", schema: "drover", listener: listener)
        let waiting = try listener.waitFor("EXTEND_TIMEOUT_USEC") { $0.fields["EXTEND_TIMEOUT_USEC"] != nil }
        #expect(waiting.fields["STATUS"]?.hasPrefix("waiting for database: cannot connect to") == true, "\(waiting)")
        #expect(process.isRunning)
        kill(process.pid, SIGTERM)
        let outcome = try process.wait(timeout: .seconds(10))
        #expect(outcome.status == 0, "\(outcome.stderr)")
        #expect(outcome.stderr.components(separatedBy: "msg=\"waiting for the database\"").count == 2, "logged once, not per attempt")
    }

    @Test("permanent errors at start exit at once, saying what to do", arguments: [
        ("missing database", 69, "the database does not exist"),
        ("not migrated", 69, "run drover migrate"),
        ("bad URL", 78, "the database URL is not valid"),
    ])
    func permanentErrors(_ scenario: String, _ status: Int32, _ message: String) throws {
        let probe = try TestDatabase.connect()
        let host = "host=\(probe.target.host)&port=\(probe.target.port)"
        let (url, schema): (String, String) = switch scenario {
        case "missing database": ("postgresql:///drover_no_such_db?\(host)", "drover")
        case "not migrated": (try TestDatabase.url(), TestDatabase.uniqueSchemaName())
        default: ("postgresql://u@h:port/db", "drover")
        }
        let outcome = try start(databaseURL: url, schema: schema).wait(timeout: .seconds(20))
        #expect(outcome.status == status, "\(outcome.stderr)")
        #expect(outcome.stderr.contains(message), "\(outcome.stderr)")
    }

    @Test("QUIT stops at once: children are killed, their jobs released, exit 0")
    func quit() throws {
        let h = try SupervisorHarness(config: Self.config)
        try h.waitForReady()
        let id = try h.enqueue("drover.test.sleep", arguments: #"{"ms": 30000}"#)[0]
        try waitUntil("the job runs") { try h.state(id)?.state == .claimed }
        let children = h.childPIDs()
        let started = ContinuousClock.now
        let outcome = try h.stop(SIGQUIT, timeout: .seconds(10))
        #expect(outcome.status == 0)
        #expect(ContinuousClock.now - started < .seconds(2), "immediate, not after shutdown_timeout")
        #expect(children.allSatisfy { !ProcessTable.isAlive($0) })
        let job = try #require(try h.state(id))
        #expect(job.state == .ready && job.crashes == 0, "released, not counted as a crash: \(job)")
    }

    @Test("children crashing in a loop trip the intensity limit: the supervisor stops them and exits non-zero")
    func crashLoop() throws {
        let config = Self.config + "\n  max_restarts: 2\n  restart_window: 1m\n  max_crashes: 100"
        let h = try SupervisorHarness(config: config)
        try h.waitForReady()
        try h.enqueue("drover.test.crash", count: 10)
        let outcome = try h.process.wait(timeout: .seconds(60))
        #expect(outcome.status == 70, "\(outcome.stderr)")
        #expect(outcome.stderr.contains("children keep crashing"))
        #expect(ProcessTable.children(of: h.pid).isEmpty)
    }
}
