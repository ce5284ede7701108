import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

@Suite("Command handlers: argv, arguments on stdin, environment, output, exit statuses")
struct CommandHandlerTests {
    struct Arguments: Codable, Equatable {
        var text: String
        var shellLike: String
        var padding: String
    }

    @Test("a command gets the job's arguments intact on stdin, its variables and the handler's env, and no secret")
    func argumentsAndEnvironment() throws {
        let marker = "/tmp/drover-shell-\(UUID().uuidString)"
        let secret = "pg-secret-\(UUID().uuidString)"
        let jobs = try CommandJobs(
            handlers: """
              Record:
                command: [$DIR/record.sh, --flag]
                working_directory: $DIR
                env: {GREETING: "hello world"}
            """,
            scripts: ["record.sh": """
                cat > "args-$DROVER_JOB_ID.json"
                env > "env-$DROVER_JOB_ID"
                pwd > "pwd-$DROVER_JOB_ID"
                echo "$@" > "argv-$DROVER_JOB_ID"
                """],
            environment: ["PGPASSWORD": secret, "DROVER_DATABASE_URL": "postgresql://drover:\(secret)@nowhere/drover"])
        // Near the 1 MiB limit, with characters JSON escapes and the shell would interpret.
        let arguments = Arguments(
            text: "héllo wörld ✓ 日本語 \"quoted\" 'single' \\ back\nslash\ttab",
            shellLike: "$(touch \(marker)); rm -rf / `touch \(marker)` && touch \(marker) ; $HOME",
            padding: String(repeating: "0123456789abcdef", count: 65_000))
        let id = try jobs.enqueue("Record", arguments: try JSON(encoding: arguments))
        _ = try jobs.waitUntilState(id, .finished)

        let received = try #require(jobs.read("args-\(id).json"))
        #expect(try JSONDecoder().decode(Arguments.self, from: Data(received.utf8)) == arguments)
        #expect(!FileManager.default.fileExists(atPath: marker), "job data reached a shell")

        let environment = Dictionary(
            try jobs.waitForFile("env-\(id)").split(separator: "\n").compactMap { line -> (String, String)? in
                guard let equals = line.firstIndex(of: "=") else { return nil }
                return (String(line[..<equals]), String(line[line.index(after: equals)...]))
            }, uniquingKeysWith: { first, _ in first })
        #expect(environment["DROVER_JOB_ID"] == String(id))
        #expect(environment["DROVER_QUEUE"] == "default")
        #expect(environment["DROVER_ATTEMPT"] == "1")
        #expect(environment["DROVER_JOB_CLASS"] == "Record")
        #expect(environment["GREETING"] == "hello world")
        #expect(environment["PATH"] != nil)
        for key in ["PGPASSWORD", "DROVER_DATABASE_URL", "DROVER_CHILD_SPEC", "NOTIFY_SOCKET", "DROVER_TEST_HANDLERS"] {
            #expect(environment[key] == nil, "\(key) reached the command")
        }
        let everything = try jobs.waitForFile("env-\(id)")
        #expect(!everything.contains(secret))
        #expect(!everything.contains(jobs.harness.schema), "the database URL or schema reached the command")
        #expect(try jobs.waitForFile("pwd-\(id)").trimmingCharacters(in: .newlines) == jobs.directory)
        #expect(try jobs.waitForFile("argv-\(id)") == "--flag\n")
        // Its output went to the log, with the job attached.
        #expect(!jobs.harness.log.contains(secret))
        #expect(try jobs.harness.stop().status == 0)
    }

    @Test("a command's output goes to the log with its job: id, class and queue")
    func outputIsLogged() throws {
        let jobs = try CommandJobs(handlers: """
              Talk:
                command: [sh, -c, "echo to-stdout; echo to-stderr >&2"]
            """)
        let id = try jobs.enqueue("Talk")
        _ = try jobs.waitUntilState(id, .finished)
        try waitUntil("the output was logged") {
            jobs.harness.log.contains("job=\(id) class=Talk queue=default msg=output stream=stdout line=to-stdout")
                && jobs.harness.log.contains("job=\(id) class=Talk queue=default msg=output stream=stderr line=to-stderr")
        }
        #expect(try jobs.harness.stop().status == 0)
    }

    @Test("a non-zero exit is retried with backoff, then fails with its status and the end of its output in drover failed list")
    func failureIsRetriedThenFailed() throws {
        let jobs = try CommandJobs(handlers: """
              Flaky:
                command: [sh, -c, "seq 1 5000; echo \\"attempt $DROVER_ATTEMPT gave up\\" >&2; exit 3"]
            """)
        let id = try jobs.enqueue("Flaky", maxAttempts: 2)
        let retry = try jobs.waitUntilState(id, .scheduled)
        #expect(retry.attempts == 1)
        #expect(retry.lastError?.exitStatus == 3)
        // The backoff: 5 s less up to 25 % jitter.
        let delay = try #require(retry.nextRunAt).timeIntervalSinceNow
        #expect(delay > 3 && delay <= 5.1, "retry in \(delay) s")
        let failed = try jobs.waitUntilState(id, .failed, timeout: .seconds(30))
        #expect(failed.attempts == 2)

        let listing = try DroverBinary.run([
            "failed", "list", "--json", "--database-url", try TestDatabase.url(), "--schema", jobs.harness.schema,
        ])
        #expect(listing.status == 0, "\(listing)")
        let entries = try #require(try JSONSerialization.jsonObject(with: Data(listing.stdout.utf8)) as? [[String: Any]])
        let entry = try #require(entries.first { $0["id"] as? Int == id })
        let error = try #require((entry["last_error"] ?? entry["lastError"]) as? [String: Any], "\(entry)")
        #expect(error["class"] as? String == "CommandFailed")
        #expect(error["exit_status"] as? Int == 3)
        let output = try #require(error["output"] as? String)
        #expect(output.hasSuffix("attempt 2 gave up\n"))
        #expect(output.utf8.count <= 4096 && output.utf8.count > 4000)
        #expect(try jobs.harness.stop().status == 0)
    }

    @Test("exit status 100 fails the job at once, without retries")
    func permanentFailure() throws {
        let jobs = try CommandJobs(handlers: """
              Broken:
                command: [sh, -c, "echo bad input >&2; exit 100"]
            """)
        let id = try jobs.enqueue("Broken", maxAttempts: 5)
        let failed = try jobs.waitUntilState(id, .failed)
        #expect(failed.attempts == 1)
        #expect(failed.lastError?.exitStatus == 100)
        #expect(failed.lastError?.message.contains("permanent") == true)
        #expect(failed.lastError?.output == "bad input\n")
        #expect(try jobs.harness.stop().status == 0)
    }

    @Test("a handler's max_attempts overrides the job's")
    func handlerMaxAttempts() throws {
        let jobs = try CommandJobs(handlers: """
              Once:
                command: [sh, -c, "exit 1"]
                max_attempts: 1
            """)
        let id = try jobs.enqueue("Once", maxAttempts: 5)
        let failed = try jobs.waitUntilState(id, .failed)
        #expect(failed.attempts == 1 && failed.maxAttempts == 1)
        #expect(try jobs.harness.stop().status == 0)
    }

    @Test("a command that ignores stdin and writes 10 MB to stdout and stderr finishes, and its worker keeps serving")
    func floodOfOutput() throws {
        let jobs = try CommandJobs(handlers: """
              Flood:
                command: [sh, -c, "head -c 10000000 /dev/zero | tr '\\\\0' x; head -c 10000000 /dev/zero | tr '\\\\0' y >&2"]
            """, threads: 1)
        // 1 MiB of arguments the command never reads: far more than a pipe holds.
        let big = try JSON(encoding: ["padding": String(repeating: "z", count: 1_000_000)])
        let id = try jobs.enqueue("Flood", arguments: big)
        _ = try jobs.waitUntilState(id, .finished, timeout: .seconds(60))
        #expect(jobs.harness.log.contains("the command's output passed 256 KiB; the rest is not logged"))
        let next = try jobs.harness.enqueue("drover.test.succeed")
        try jobs.harness.waitUntilFinished(next)
        #expect(try jobs.harness.stop().status == 0)
    }

    @Test("exit 101 with a delay as its last line snoozes the job: no attempt spent, run again after the delay; a line that is no delay is a failed attempt; past max_snoozes a snooze fails")
    func snooze() throws {
        let jobs = try CommandJobs(
            handlers: """
              Polite:
                command: [$DIR/polite.sh]
                working_directory: $DIR
              Vague:
                command: [sh, -c, "echo soon; exit 101"]
              Restless:
                command: [sh, -c, "echo 'still waiting'; echo ' 10ms '; exit 101"]
                max_snoozes: 3
            """,
            scripts: ["polite.sh": """
                date +%s.%N >> "runs-$DROVER_JOB_ID"
                if [ ! -e "snoozed-$DROVER_JOB_ID" ]; then
                  touch "snoozed-$DROVER_JOB_ID"
                  echo "the API said: slow down"
                  echo 1500ms
                  exit 101
                fi
                echo "attempt $DROVER_ATTEMPT" > "done-$DROVER_JOB_ID"
                """])
        // One attempt each: a snooze that spent it would fail the job.
        let polite = try jobs.enqueue("Polite", maxAttempts: 1)
        let vague = try jobs.enqueue("Vague", maxAttempts: 1)
        let restless = try jobs.enqueue("Restless", maxAttempts: 1)

        let done = try jobs.waitUntilState(polite, .finished)
        #expect(done.attempts == 0 && done.snoozes == 1 && done.lastError == nil)
        #expect(try jobs.waitForFile("done-\(polite)") == "attempt 1\n", "the attempt after a snooze is still the first")
        let runs = try #require(jobs.read("runs-\(polite)")).split(separator: "\n").compactMap { Double($0) }
        #expect(runs.count == 2 && runs[1] - runs[0] >= 1.5, "ran again after \(runs.count == 2 ? runs[1] - runs[0] : -1) s")
        #expect(jobs.harness.log.contains("job snoozed") && jobs.harness.log.contains("delay=1s500ms"))

        let failed = try jobs.waitUntilState(vague, .failed)
        #expect(failed.attempts == 1 && failed.snoozes == 0)
        #expect(failed.lastError?.message.contains("exited with status 101 to snooze, but its last line of output (\"soon\") is not a delay") == true,
                "\(String(describing: failed.lastError))")

        let worn = try jobs.waitUntilState(restless, .failed)
        #expect(worn.snoozes == 3 && worn.attempts == 1 && worn.lastError?.errorClass == "SnoozeLimit")
        #expect(try jobs.harness.stop().status == 0)
    }

    @Test("a handler's retry policy sets the wait before the next attempt, and drover jobs show says how long and why")
    func retryPolicy() throws {
        let jobs = try CommandJobs(handlers: """
              Flaky:
                command: [sh, -c, "echo upstream down >&2; exit 1"]
                retry: {backoff: fixed, base: 45m, max: 45m, jitter: 0}
            """)
        let id = try jobs.enqueue("Flaky", maxAttempts: 3)
        let waiting = try jobs.waitUntilState(id, .scheduled)
        #expect(waiting.attempts == 1)
        let wait = try #require(waiting.nextRunAt).timeIntervalSinceNow
        #expect(wait > 2690 && wait <= 2700, "next run in \(wait) s")
        #expect(waiting.lastError?.retryIn == 2700 && waiting.lastError?.backoff == "fixed backoff, base 45m, max 45m, jitter 0.0")
        let shown = try DroverBinary.run(["jobs", "show", String(id), "--database-url", try TestDatabase.url(), "--schema", jobs.harness.schema])
        #expect(shown.status == 0, "\(shown)")
        #expect(shown.stdout.contains("retried in: 45m (fixed backoff, base 45m, max 45m, jitter 0.0)"), "\(shown.stdout)")
        let json = try DroverBinary.run(["jobs", "show", String(id), "--json", "--database-url", try TestDatabase.url(), "--schema", jobs.harness.schema])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let error = try #require(object["last_error"] as? [String: Any])
        #expect(error["retry_in"] as? Double == 2700 && error["backoff"] as? String == "fixed backoff, base 45m, max 45m, jitter 0.0")
        #expect(object["snoozes"] as? Int == 0)
        #expect(try jobs.harness.stop().status == 0)
    }

    @Test("a job that fails for good enqueues its handler's on_failure job, or the top-level one, whose command gets the failure on stdin")
    func onFailure() throws {
        let jobs = try CommandJobs(
            handlers: """
              Invoice:
                command: [sh, -c, "echo 'card declined' >&2; exit 100"]
                on_failure: NotifyBilling
              Report:
                command: [sh, -c, "exit 3"]
                max_attempts: 1
              NotifyBilling:
                command: [sh, -c, "cat > billing-$DROVER_JOB_ID.json"]
                working_directory: $DIR
              PageOnCall:
                command: [sh, -c, "cat > page-$DROVER_JOB_ID.json"]
                working_directory: $DIR
              Audit:
                command: [/bin/true]
                on_failure: Ghost
            """,
            topLevel: "on_failure: PageOnCall")
        // A hook class no handler here runs is said at start; the others are not.
        let warnings = jobs.harness.log.split(separator: "\n").filter { $0.contains("on_failure names a job class no handler") }
        #expect(warnings.count == 1 && warnings[0].contains("class=Ghost"), "\(jobs.harness.log)")
        let invoice = try jobs.enqueue("Invoice", arguments: try JSON(encoding: ["order": 7]))
        let report = try jobs.enqueue("Report", maxAttempts: 1)
        _ = try jobs.waitUntilState(invoice, .failed)
        _ = try jobs.waitUntilState(report, .failed)
        func notice(_ prefix: String) throws -> [String: Any] {
            var found: [String: Any]? = nil
            try waitUntil("a \(prefix) notice was written", timeout: .seconds(20)) {
                let names = (try? FileManager.default.contentsOfDirectory(atPath: jobs.directory)) ?? []
                guard let name = names.first(where: { $0.hasPrefix(prefix) }), let text = jobs.read(name), !text.isEmpty else { return false }
                found = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
                return found != nil
            }
            return found!
        }
        let billing = try notice("billing-")
        #expect(billing["job_id"] as? Int == invoice && billing["class"] as? String == "Invoice" && billing["attempts"] as? Int == 1)
        #expect((billing["arguments"] as? [String: Any])?["order"] as? Int == 7)
        let error = try #require(billing["error"] as? [String: Any])
        #expect(error["exit_status"] as? Int == 100 && error["output"] as? String == "card declined\n")
        let page = try notice("page-")
        #expect(page["job_id"] as? Int == report && page["class"] as? String == "Report")
        #expect((page["error"] as? [String: Any])?["exit_status"] as? Int == 3)
        // The notices themselves finished; nothing else was paged.
        let names = try FileManager.default.contentsOfDirectory(atPath: jobs.directory)
        #expect(names.filter { $0.hasPrefix("page-") }.count == 1 && names.filter { $0.hasPrefix("billing-") }.count == 1)
        #expect(try jobs.harness.stop().status == 0)
    }

    @Test("a command that cannot start fails with the reason, retried per policy")
    func missingProgram() throws {
        let jobs = try CommandJobs(handlers: """
              Ghost:
                command: [no-such-program-anywhere]
              Lost:
                command: [/nonexistent/program]
              Elsewhere:
                command: [/bin/true]
                working_directory: /nonexistent-directory
            """)
        let ghost = try jobs.enqueue("Ghost", maxAttempts: 1)
        let lost = try jobs.enqueue("Lost", maxAttempts: 1)
        let notFound = try jobs.waitUntilState(ghost, .failed)
        #expect(notFound.lastError?.errorClass == "CommandNotFound")
        #expect(notFound.lastError?.message.contains("no-such-program-anywhere was not found in PATH") == true)
        let cannotStart = try jobs.waitUntilState(lost, .failed)
        #expect(cannotStart.lastError?.message == "cannot start /nonexistent/program: No such file or directory")
        let elsewhere = try jobs.enqueue("Elsewhere", maxAttempts: 1)
        let noDirectory = try jobs.waitUntilState(elsewhere, .failed)
        #expect(noDirectory.lastError?.message
                == "cannot start /bin/true: working directory /nonexistent-directory: No such file or directory")
        #expect(try jobs.harness.stop().status == 0)
    }

    @Test("a job of a class no handler knows fails at once naming the known handlers; drover failed retry runs it once one is deployed")
    func unknownClass() throws {
        let jobs = try CommandJobs(handlers: """
              Known:
                command: [true]
            """)
        let id = try jobs.enqueue("Unknown.Report")
        let failed = try jobs.waitUntilState(id, .failed)
        #expect(failed.attempts == 1)
        #expect(failed.lastError?.errorClass == "UnknownJobClass")
        let message = try #require(failed.lastError?.message)
        #expect(message.contains("no handler for class Unknown.Report"))
        #expect(message.contains("Known,") || message.contains("Known."))
        #expect(message.contains("drover failed retry \(id)"))

        try jobs.harness.rewriteConfig("""
            workers:
              - queues: ["*"]
                threads: 2
                polling_interval: 200ms
            dispatchers:
              - polling_interval: 100ms
            \(SupervisorHarness.fastSupervisor)
            handlers:
              Known:
                command: [true]
              Unknown.Report:
                command: [true]
            """)
        kill(jobs.harness.pid, SIGHUP)
        try jobs.harness.waitForReady(after: 1)
        let retried = try DroverBinary.run([
            "failed", "retry", String(id), "--database-url", try TestDatabase.url(), "--schema", jobs.harness.schema,
        ])
        #expect(retried.status == 0, "\(retried)")
        try jobs.harness.waitUntilFinished([id])
        #expect(try jobs.harness.stop().status == 0)
    }

    @Test("a handler's user: runs the command as that user when the supervisor is root, and is refused otherwise")
    func runsAsUser() throws {
        let nobody = try #require(getpwnam("nobody")).pointee.pw_uid
        if geteuid() != 0 {
            let directory = try TemporaryDirectory()
            let config = try directory.file("handlers:\n  Who:\n    command: [id, -u]\n    user: nobody\n")
            let outcome = try DroverBinary.run(["start", "--config", config, "--database-url", try TestDatabase.url()])
            #expect(outcome.status == 78)
            #expect(outcome.stderr.contains("handlers.Who.user: running commands as \"nobody\" needs the supervisor to run as root"))
            return
        }
        let jobs = try CommandJobs(handlers: """
              Who:
                command: [sh, -c, "id -u > $DIR/uid-$DROVER_JOB_ID; echo $HOME $USER > $DIR/home-$DROVER_JOB_ID"]
                user: nobody
            """)
        let id = try jobs.enqueue("Who")
        _ = try jobs.waitUntilState(id, .finished)
        #expect(try jobs.waitForFile("uid-\(id)") == "\(nobody)\n")
        #expect(try jobs.waitForFile("home-\(id)").hasSuffix(" nobody\n"))
        #expect(try jobs.harness.stop().status == 0)
    }
}

