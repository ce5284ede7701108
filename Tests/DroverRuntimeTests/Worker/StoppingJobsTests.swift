import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

@Suite("Stopping jobs: timeouts, cancellation, and no process left behind")
struct StoppingJobsTests {
    /// Starts a child that ignores TERM, a grandchild in its process group and one that left it
    /// (setsid), records all three pids, and waits.
    static let family = """
        trap "" TERM
        sleep 1000 &
        echo $! > "grandchild-$DROVER_JOB_ID"
        setsid sleep 1000 &
        echo $! > "escaped-$DROVER_JOB_ID"
        echo $$ > "pid-$DROVER_JOB_ID"
        wait
        """

    static let familyHandler = """
          Family:
            command: [$DIR/family.sh]
            working_directory: $DIR
            grace_period: 500ms
        """

    func familyPIDs(_ jobs: CommandJobs, _ id: Int) throws -> [pid_t] {
        try ["pid", "grandchild", "escaped"].map { try jobs.waitForPID("\($0)-\(id)") }
    }

    @Test("past its timeout a command gets TERM, then KILL after grace_period; it fails with a timeout error, and nothing it started survives")
    func timeoutTermThenKill() throws {
        let jobs = try CommandJobs(handlers: Self.familyHandler + "\n    timeout: 1s", scripts: ["family.sh": Self.family])
        let id = try jobs.enqueue("Family", maxAttempts: 1)
        let pids = try familyPIDs(jobs, id)
        let failed = try jobs.waitUntilState(id, .failed)
        #expect(failed.lastError?.errorClass == "Timeout")
        #expect(failed.lastError?.signal == Int(SIGKILL), "it ignored TERM, so KILL ended it")
        #expect(failed.lastError?.message.contains("ran longer than its timeout of 1s") == true)
        #expect(jobs.harness.log.contains("the command outlived its grace period after SIGTERM; killing it"))
        try waitUntil("every process of the job is gone") { pids.allSatisfy { !ProcessTable.isAlive($0) } }
        #expect(try jobs.harness.stop().status == 0)
    }

    @Test("a command that writes without pause (yes) is stopped at its timeout, like any other")
    func floodingCommandTimesOut() throws {
        let jobs = try CommandJobs(handlers: """
              Flood:
                command: ["/usr/bin/yes"]
                timeout: 2s
            """)
        let id = try jobs.enqueue("Flood", maxAttempts: 1)
        let started = ContinuousClock.now
        let failed = try jobs.waitUntilState(id, .failed, timeout: .seconds(20))
        #expect(ContinuousClock.now - started < .seconds(10), "stopped after \(ContinuousClock.now - started)")
        #expect(failed.lastError?.errorClass == "Timeout", "\(String(describing: failed.lastError))")
        #expect(failed.lastError?.output?.hasSuffix("y\n") == true)
        #expect(jobs.harness.log.contains("the rest is not logged"), "the log budget held")
        #expect(try jobs.harness.stop().status == 0)
    }

    @Test("a failing command that prints NUL and bytes that are not UTF-8 fails like any other: its output is stored and logged with them escaped")
    func hostileOutput() throws {
        // printf in a script: the bytes never pass through YAML.
        let jobs = try CommandJobs(handlers: """
              Odd:
                command: ["$DIR/odd.sh"]
            """, scripts: ["odd.sh": "printf 'a\\000b\\377c\\n'\nexit 1\n"])
        let id = try jobs.enqueue("Odd", maxAttempts: 1)
        let failed = try jobs.waitUntilState(id, .failed, timeout: .seconds(20))
        #expect(failed.lastError?.output == "a\\x00b\\xFFc\n", "\(String(describing: failed.lastError))")
        #expect(jobs.harness.log.contains(#"line="a\\x00b\\xFFc""#) || jobs.harness.log.contains(#"line=a\\x00b\\xFFc"#), "the log line, escaped")
        #expect(!jobs.harness.log.contains("\0"), "no raw NUL in the log")
        #expect(try jobs.harness.stop().status == 0)
    }

    @Test("a timeout given at enqueue wins over the handler's; a command that honours TERM ends with it, and is retried")
    func jobTimeout() throws {
        let jobs = try CommandJobs(handlers: """
              Slow:
                command: [sleep, "1000"]
                timeout: 1h
            """)
        let id = try jobs.enqueue("Slow", maxAttempts: 2, timeout: .seconds(1))
        let retry = try jobs.waitUntilState(id, .scheduled)
        #expect(retry.lastError?.errorClass == "Timeout")
        #expect(retry.lastError?.signal == Int(SIGTERM))
        #expect(retry.attempts == 1)
        #expect(try jobs.harness.stop().status == 0)
    }

    @Test("when its worker is killed, the command and everything it started are killed too")
    func workerKilled() throws {
        let jobs = try CommandJobs(handlers: Self.familyHandler, scripts: ["family.sh": Self.family])
        let id = try jobs.enqueue("Family")
        let pids = try familyPIDs(jobs, id)
        let worker = try jobs.workerPID(runningJob: id)
        kill(worker, SIGKILL)
        try waitUntil("every process of the job is gone") { pids.allSatisfy { !ProcessTable.isAlive($0) } }
        #expect(try jobs.harness.stop().status == 0)
        // The job itself was released (a crash) and is claimed again or waiting.
        #expect(try jobs.harness.state(id)?.crashes == 1)
    }

    @Test("when its worker stops and shutdown_timeout passes, the command and everything it started are killed; the job is released")
    func workerStops() throws {
        let jobs = try CommandJobs(handlers: Self.familyHandler, scripts: ["family.sh": Self.family])
        let id = try jobs.enqueue("Family")
        let pids = try familyPIDs(jobs, id)
        let stopped = try jobs.harness.stop(SIGTERM)
        #expect(stopped.status == 0)
        try waitUntil("every process of the job is gone") { pids.allSatisfy { !ProcessTable.isAlive($0) } }
        let info = try #require(try jobs.harness.state(id))
        #expect(info.state == .ready && info.attempts == 0 && info.crashes == 0)
    }

    @Test("drover jobs cancel deletes a waiting job")
    func cancelWaiting() throws {
        let jobs = try CommandJobs(handlers: "  Later:\n    command: [true]")
        let id = try jobs.harness.store.enqueue(NewJob("Later", runIn: .seconds(3600)), on: jobs.harness.db)
        let outcome = try cancel(id, jobs)
        #expect(outcome.status == 0, "\(outcome)")
        #expect(outcome.stdout.contains("Job \(id) was scheduled; it is deleted."))
        #expect(try jobs.harness.state(id) == nil)
        let again = try cancel(id, jobs)
        #expect(again.status == 65)
        #expect(again.stderr.contains("no job with id \(id)"))
        #expect(try jobs.harness.stop().status == 0)
    }

    @Test("drover jobs cancel stops a running command (TERM, then KILL) and fails it as cancelled, without retry")
    func cancelRunningCommand() throws {
        let jobs = try CommandJobs(handlers: Self.familyHandler, scripts: ["family.sh": Self.family])
        let id = try jobs.enqueue("Family", maxAttempts: 5)
        let pids = try familyPIDs(jobs, id)
        let outcome = try cancel(id, jobs)
        #expect(outcome.status == 0, "\(outcome)")
        #expect(outcome.stdout.contains("its worker was asked to stop it"))
        let failed = try jobs.waitUntilState(id, .failed)
        #expect(failed.attempts == 1)
        #expect(failed.lastError?.errorClass == "Cancelled")
        try waitUntil("every process of the job is gone") { pids.allSatisfy { !ProcessTable.isAlive($0) } }
        let finished = try cancel(id, jobs)
        #expect(finished.status == 65)
        #expect(finished.stderr.contains("job \(id) is failed: only waiting or running jobs can be cancelled"))
        #expect(try jobs.harness.stop().status == 0)
    }

    @Test("drover jobs cancel cancels a running Swift job's task; it fails as cancelled, without retry")
    func cancelRunningSwiftJob() throws {
        let jobs = try CommandJobs(handlers: "  Unused:\n    command: [true]")
        let id = try jobs.harness.enqueue("drover.test.wait", arguments: "{}")[0]
        _ = try jobs.waitUntilState(id, .claimed)
        try waitUntil("the job runs") { jobs.harness.log.contains("job=\(id) class=drover.test.wait queue=default msg=waiting") }
        let outcome = try cancel(id, jobs)
        #expect(outcome.status == 0, "\(outcome)")
        let failed = try jobs.waitUntilState(id, .failed)
        #expect(failed.attempts == 1)
        #expect(failed.lastError?.errorClass == "Cancelled")
        // It honoured the cancellation: its worker did not have to give it up.
        #expect(!jobs.harness.log.contains("ignored its cancellation"))
        #expect(try jobs.harness.stop().status == 0)
    }

    @Test("a Swift job past its timeout is cancelled and fails with a timeout error")
    func swiftTimeout() throws {
        let jobs = try CommandJobs(handlers: "  Unused:\n    command: [true]")
        let id = try jobs.harness.store.enqueue(
            NewJob("drover.test.wait", maxAttempts: 1, timeout: .seconds(1)), on: jobs.harness.db)
        let failed = try jobs.waitUntilState(id, .failed)
        #expect(failed.lastError?.errorClass == "Timeout")
        #expect(failed.lastError?.message == "drover.test.wait ran longer than its timeout of 1s and was cancelled")
        #expect(try jobs.harness.stop().status == 0)
    }

    @Test("a Swift job that ignores cancellation past its grace period fails; its worker finishes its other job and is replaced")
    func swiftJobIgnoresCancellation() throws {
        let jobs = try CommandJobs(handlers: "  Unused:\n    command: [true]")
        let stubborn = try jobs.harness.store.enqueue(
            NewJob("drover.test.stubborn", arguments: try JSON(validating: #"{"ms": 600000}"#), maxAttempts: 1, timeout: .seconds(1)),
            on: jobs.harness.db)
        _ = try jobs.waitUntilState(stubborn, .claimed)
        let worker = try jobs.workerPID(runningJob: stubborn)
        // Still running when the stubborn job is given up (at 1.5 s): the worker waits for it.
        let other = try jobs.harness.enqueue("drover.test.sleep", arguments: #"{"ms": 2500}"#)[0]
        let failed = try jobs.waitUntilState(stubborn, .failed)
        #expect(failed.lastError?.errorClass == "Timeout")
        #expect(failed.lastError?.message.contains("it ignored cancellation for 500ms, so its worker gave it up") == true)
        try jobs.harness.waitUntilFinished([other])
        try waitUntil("the worker exited with 75 (replace me)") {
            !ProcessTable.isAlive(worker) && jobs.harness.log.contains("how=\"exited with status 75\"")
        }
        try waitUntil("a replacement worker registered") {
            try jobs.harness.registeredChildren().contains { $0.kind == .worker && $0.pid != Int(worker) }
        }
        let next = try jobs.harness.enqueue("drover.test.succeed")
        try jobs.harness.waitUntilFinished(next)
        #expect(try jobs.harness.stop().status == 0)
    }

    private func cancel(_ id: Int, _ jobs: CommandJobs) throws -> DroverBinary.Outcome {
        try DroverBinary.run(["jobs", "cancel", String(id), "--database-url", try TestDatabase.url(), "--schema", jobs.harness.schema])
    }
}
