import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

/// Examples/Signup: an app with its own Swift job types and `Drover.main(jobs:)`, built and run for
/// real.
@Suite("The example app (Examples/Signup)")
struct ExampleAppTests {
    static let packagePath = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Examples/Signup").path

    /// Builds the example (`make test` built it already, so this is quick there) and returns its binary.
    static func build() throws -> String {
        let swift = ProcessInfo.processInfo.environment["SWIFT"] ?? "/usr/bin/env"
        let prefix = swift == "/usr/bin/env" ? ["swift"] : []
        func build() throws -> DroverBinary.Outcome {
            try RunningProcess(
                executable: swift, arguments: prefix + ["build", "--package-path", packagePath],
                environment: ProcessInfo.processInfo.environment
            ).wait(timeout: .seconds(900))
        }
        var outcome = try build()
        if outcome.status != 0 {
            // SwiftPM can miss files added to Drover when it rebuilds the example: start it afresh.
            try? FileManager.default.removeItem(atPath: packagePath + "/.build")
            outcome = try build()
        }
        guard outcome.status == 0 else {
            throw BuildFailed(description: "swift build --package-path \(packagePath) failed:\n\(outcome.stdout)\n\(outcome.stderr)")
        }
        let binary = packagePath + "/.build/debug/signup"
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw BuildFailed(description: "the example built, but \(binary) is not there")
        }
        return binary
    }

    struct BuildFailed: Error, CustomStringConvertible { let description: String }

    @Test("built and started, it runs exactly the typed jobs whose transactions committed, and cancels a Swift job")
    func endToEnd() throws {
        let signup = try Self.build()
        let url = try TestDatabase.url()
        let schema = TestDatabase.uniqueSchemaName()
        let db = try TestDatabase.connect()
        defer { _ = try? db.execute("DROP SCHEMA IF EXISTS \(SQLIdentifier(schema)) CASCADE") }
        let directory = try TemporaryDirectory("drover-signup")
        let outbox = directory.url.appendingPathComponent("outbox").path
        try FileManager.default.createDirectory(atPath: outbox, withIntermediateDirectories: true)
        let config = try directory.file("""
            workers:
              - queues: ["*"]
                threads: 2
                polling_interval: 200ms
            \(SupervisorHarness.fastSupervisor)
            """)
        var environment = ProcessInfo.processInfo.environment
        environment["DROVER_DATABASE_URL"] = url
        environment["SIGNUP_OUTBOX"] = outbox
        environment["NOTIFY_SOCKET"] = nil
        func run(_ arguments: [String]) throws -> DroverBinary.Outcome {
            try RunningProcess(executable: signup, arguments: arguments, environment: environment).wait(timeout: .seconds(60))
        }

        let migrated = try run(["migrate", "--schema", schema])
        #expect(migrated.status == 0, "\(migrated)")
        let app = try RunningProcess(
            executable: signup, arguments: ["start", "--config", config, "--schema", schema], environment: environment)
        defer {
            if app.isRunning {
                kill(app.pid, SIGKILL)
                _ = try? app.wait(timeout: .seconds(10))
            }
        }

        // Two users committed, one rolled back: the user's row and its welcome email share a transaction.
        let ada = try run(["register", "ada@example.com", "--schema", schema, "--request-id", "req-ada-1"])
        let ghost = try run(["register", "ghost@example.com", "--rollback", "--schema", schema])
        let bob = try run(["register", "bob@example.com", "--schema", schema])
        for outcome in [ada, ghost, bob] { #expect(outcome.status == 0, "\(outcome)") }
        #expect(ghost.stdout.contains("rolled back"))

        let store = try PostgresJobStore(schema: schema)
        try waitUntil("the committed welcome emails are sent", timeout: .seconds(30)) {
            try store.listJobs(state: .finished, on: db).count == 2
        }
        let users = try db.query("SELECT id, address FROM \(SQLIdentifier(schema, "signup_users")) ORDER BY id")
            .map { (try $0.decode("id", as: Int.self), try $0.decode("address", as: String.self)) }
        #expect(users.map(\.1) == ["ada@example.com", "bob@example.com"])
        let sent = try FileManager.default.contentsOfDirectory(atPath: outbox).sorted()
        #expect(sent == users.map { "welcome-\($0.0).eml" })
        let message = try String(contentsOfFile: "\(outbox)/welcome-\(users[0].0).eml", encoding: .utf8)
        #expect(message.hasPrefix("To: ada@example.com\n"))
        let jobs = try store.listJobs(on: db)
        #expect(jobs.count == 2 && jobs.allSatisfy { $0.className == "SendWelcomeEmail" && $0.queue == "mail" })
        // SendWelcomeEmail.rateLimit, recorded by `signup start`; the welcomes started under its key.
        #expect(try store.rateLimitRules(on: db) == [RateLimitRule(className: "SendWelcomeEmail", keyTemplate: "smtp", limit: 50, period: .seconds(1))])
        let rateLimits = try run(["rate-limits", "--json", "--schema", schema])
        #expect(rateLimits.stdout.contains(#"{"class":"SendWelcomeEmail","key":"smtp","limit":50,"period_seconds":1}"#), "\(rateLimits)")
        #expect(try store.rateLimitStarts(on: db).filter { $0.key == "smtp" }.count == 2)

        // A Swift job of the app, cancelled while it runs.
        let enqueued = try run(["enqueue", "GenerateReport", "--args", #"{"seconds": 600}"#, "--schema", schema])
        let report = try #require(Int(enqueued.stdout.trimmingCharacters(in: .whitespacesAndNewlines)), "\(enqueued)")
        try waitUntil("the report runs") { try store.job(report, on: db)?.state == .claimed }
        // One report at a time (GenerateReport.concurrency): a second waits, blocked.
        let second = try run(["enqueue", "GenerateReport", "--args", #"{"seconds": 1}"#, "--schema", schema])
        let secondID = try #require(Int(second.stdout.trimmingCharacters(in: .whitespacesAndNewlines)), "\(second)")
        #expect(try store.job(secondID, on: db)?.state == .blocked)
        let limits = try run(["concurrency", "list", "--json", "--schema", schema])
        #expect(limits.stdout.contains(#"{"class":"GenerateReport","duration_seconds":300,"key":"reports","limit":1,"on_conflict":"block"}"#),
                "\(limits)")
        #expect(limits.stdout.contains(#""key":"reports","limit":1,"running":1}"#) || limits.stdout.contains(#""blocked":1"#), "\(limits)")
        let cancelled = try run(["jobs", "cancel", String(report), "--schema", schema])
        #expect(cancelled.status == 0, "\(cancelled)")
        try waitUntil("the report is cancelled") { try store.job(report, on: db)?.state == .failed }
        #expect(try store.job(report, on: db)?.lastError?.errorClass == "Cancelled")
        // GenerateReport.onFailure, recorded by `signup start`, enqueued ReportFailed with the failure.
        #expect(try store.failureHooks(on: db) == [FailureHook(className: "GenerateReport", hookClass: "ReportFailed", includeCancelled: true)])
        try waitUntil("ReportFailed told ops", timeout: .seconds(30)) {
            FileManager.default.fileExists(atPath: "\(outbox)/report-failed-\(report).eml")
        }
        #expect(try String(contentsOfFile: "\(outbox)/report-failed-\(report).eml", encoding: .utf8).contains("Subject: report \(report): cancelled"))
        // Its slot went to the second report, which ran.
        try waitUntil("the second report ran") { try store.job(secondID, on: db)?.state == .finished }

        kill(app.pid, SIGTERM)
        let stopped = try app.wait(timeout: .seconds(30))
        #expect(stopped.status == 0, "\(stopped.stderr)")
        #expect(stopped.stderr.contains("msg=\"sending a welcome email\""))
        // The request id of `register --request-id`, stored with the job by the app's instrument
        // and restored around perform in the worker; bob's request had none.
        let sending = stopped.stderr.split(separator: "\n").filter { $0.contains("msg=\"sending a welcome email\"") }
        #expect(sending.count == 2, "\(stopped.stderr)")
        #expect(sending.contains { $0.hasSuffix("request=req-ada-1 user=\(users[0].0)") }, "\(sending)")
        #expect(sending.contains { $0.hasSuffix("request=- user=\(users[1].0)") }, "\(sending)")
        let stored = try db.query("SELECT trace_context::text AS t FROM \(SQLIdentifier(schema, "jobs")) ORDER BY id LIMIT 1")[0]
        #expect(try stored.decode("t", as: String?.self) == #"{"x-request-id": "req-ada-1"}"#)
    }

    @Test("given to Drover.main(jobs:logHandler:), the app's own handler gets every line: Drover's and its jobs', with the job's metadata")
    func appLogHandler() throws {
        let signup = try Self.build()
        let directory = try TemporaryDirectory("drover-signup-log")
        let outbox = directory.url.appendingPathComponent("outbox").path
        try FileManager.default.createDirectory(atPath: outbox, withIntermediateDirectories: true)
        let config = try directory.file("""
            database:
              url: "sqlite://\(directory.url.appendingPathComponent("queue.sqlite3").path)"
            workers:
              - queues: ["*"]
                polling_interval: 200ms
            \(SupervisorHarness.fastSupervisor)
            """)
        var environment = ProcessInfo.processInfo.environment
        environment["SIGNUP_LOG"] = "json"
        environment["SIGNUP_OUTBOX"] = outbox
        environment["NOTIFY_SOCKET"] = nil
        environment["DROVER_DATABASE_URL"] = nil
        // The handler's own level is info: Drover gives its loggers the level asked for.
        let app = try RunningProcess(executable: signup, arguments: ["start", "--config", config, "--log-level", "debug"], environment: environment)
        defer {
            if app.isRunning {
                kill(app.pid, SIGKILL)
                _ = try? app.wait(timeout: .seconds(10))
            }
        }
        let enqueued = try RunningProcess(
            executable: signup, arguments: ["enqueue", "SendWelcomeEmail", "--queue", "mail", "--config", config,
                                            "--args", #"{"userID": 7, "address": "ada@example.com"}"#],
            environment: environment
        ).wait(timeout: .seconds(60))
        let id = try #require(Int(enqueued.stdout.trimmingCharacters(in: .whitespacesAndNewlines)), "\(enqueued)")
        try waitUntil("the welcome email is sent", timeout: .seconds(30)) {
            FileManager.default.fileExists(atPath: "\(outbox)/welcome-7.eml")
        }
        try waitUntil("the job's line is logged") { app.stderrSoFar.contains("sending a welcome email") }
        kill(app.pid, SIGTERM)
        let stopped = try app.wait(timeout: .seconds(30))
        #expect(stopped.status == 0, "\(stopped.stderr)")

        // Every line is the app's JSON: none is Drover's logfmt.
        let lines = stopped.stderr.split(separator: "\n")
        let objects = lines.compactMap { try? JSONDecoder().decode([String: String].self, from: Data($0.utf8)) }
        #expect(objects.count == lines.count && !lines.isEmpty, "\(stopped.stderr)")
        for message in ["started", "stopped"] {
            #expect(objects.contains { $0["message"] == message && $0["process"] == "supervisor" && $0["level"] == "info" }, "\(stopped.stderr)")
        }
        #expect(objects.contains { $0["message"] == "registered" && $0["process"] == "worker" }, "\(stopped.stderr)")
        #expect(objects.contains { $0["level"] == "debug" && $0["process"] == "worker" }, "\(stopped.stderr)")
        let job = try #require(objects.first { $0["message"] == "sending a welcome email" }, "\(stopped.stderr)")
        #expect(job["job"] == String(id) && job["class"] == "SendWelcomeEmail" && job["queue"] == "mail", "\(job)")
        #expect(job["process"] == "worker" && job["name"]?.hasPrefix("worker-") == true && job["pid"] != nil, "\(job)")
        #expect(job["user"] == "7" && job["attempt"] == "1", "\(job)")
    }

    @Test("each worker builds the app's services once, when it starts (again after a setup that threw), every job of that worker gets that instance, and it is shut down at stop")
    func servicesPerWorker() throws {
        let signup = try Self.build()
        let directory = try TemporaryDirectory("drover-signup-services")
        let outbox = directory.url.appendingPathComponent("outbox").path
        let journal = directory.url.appendingPathComponent("journal").path
        let url = "sqlite://" + directory.url.appendingPathComponent("queue.sqlite3").path
        // Two workers and a dispatcher: only the workers build services.
        let config = try directory.file("""
            database:
              url: "\(url)"
            workers:
              - queues: ["*"]
                threads: 2
                polling_interval: 200ms
              - queues: ["*"]
                threads: 2
                polling_interval: 200ms
            \(SupervisorHarness.fastSupervisor)
            """)
        var environment = ProcessInfo.processInfo.environment
        environment["SIGNUP_OUTBOX"] = outbox   // not there yet: the mailer's setup throws
        environment["SIGNUP_JOURNAL"] = journal
        environment["NOTIFY_SOCKET"] = nil
        environment["DROVER_DATABASE_URL"] = nil
        let app = try RunningProcess(executable: signup, arguments: ["start", "--config", config], environment: environment)
        defer {
            if app.isRunning {
                kill(app.pid, SIGKILL)
                _ = try? app.wait(timeout: .seconds(10))
            }
        }

        // A setup that throws is the app's, and may pass: the worker says what threw and exits 71,
        // and the supervisor starts it again after its backoff.
        try waitUntil("a worker's services setup fails", timeout: .seconds(30)) {
            app.stderrSoFar.contains("Mailer.OutboxMissing")
        }
        let failure = try #require(app.stderrSoFar.split(separator: "\n").first { $0.contains("Mailer.OutboxMissing") })
        #expect(failure.contains("process=worker") && failure.contains("status=71") && failure.contains("cannot start for now"), "\(failure)")
        #expect(failure.contains("the outbox \(outbox) is not a directory"), "\(failure)")
        try FileManager.default.createDirectory(atPath: outbox, withIntermediateDirectories: true)
        try waitUntil("both workers start again and build their mailers", timeout: .seconds(30)) {
            ((try? String(contentsOfFile: journal, encoding: .utf8)) ?? "").split(separator: "\n").filter { $0.hasPrefix("setup ") }.count >= 2
        }

        let (store, db) = try SQLiteDriver.open(url: url, options: StoreOptions())
        let ids = try store.enqueue((1...8).map { i in
            NewJob("SendWelcomeEmail", arguments: try JSON(validating: #"{"userID": \#(i), "address": "user\#(i)@example.com"}"#), queue: "mail")
        }, on: db)
        try waitUntil("the 8 emails are sent", timeout: .seconds(60)) {
            try store.listJobs(queue: nil, state: .finished, className: nil, limit: 100, on: db).count == 8
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: outbox).count == 8)
        kill(app.pid, SIGTERM)
        let stopped = try app.wait(timeout: .seconds(30))
        #expect(stopped.status == 0, "\(stopped.stderr)")

        // setup PID ID / sent PID ID JOB / shutdown PID ID SENT
        let lines = try String(contentsOfFile: journal, encoding: .utf8).split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
        let setups = lines.filter { $0.first == "setup" }
        #expect(setups.count == 2, "once per worker process, not per job, nor in the dispatcher: \(lines)")
        var instanceOf: [String: String] = [:]   // pid: the id of its mailer
        for setup in setups { instanceOf[setup[1]] = setup[2] }
        #expect(instanceOf.count == 2, "two workers, one mailer each: \(lines)")
        let sent = lines.filter { $0.first == "sent" }
        #expect(Set(sent.map { Int($0[3]) }) == Set(ids.map { Optional($0) }) && sent.count == 8, "\(lines)")
        for line in sent {
            #expect(instanceOf[line[1]] == line[2], "a job saw its worker's own mailer: \(line)")
        }
        let shutdowns = lines.filter { $0.first == "shutdown" }
        #expect(shutdowns.count == 2, "\(lines)")
        for line in shutdowns {
            #expect(instanceOf[line[1]] == line[2], "\(line)")
            #expect(Int(line[3]) == sent.filter { $0[1] == line[1] }.count, "it shut down after its last job: \(line)")
        }
        #expect(lines.last?.first == "shutdown", "\(lines)")
        #expect(stopped.stderr.contains("msg=\"services shut down\""), "\(stopped.stderr)")
    }
}
