import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

/// `drover start` as a real process: children, signals, sd_notify datagrams, crashes.
@Suite("The supervisor's life: readiness, crashes, kills, stopping")
struct SupervisorLifecycleTests {
    static func config(workers: Int = 2, threads: Int = 2, extra: String = "") -> String {
        """
        workers:
          - queues: ["*"]
            threads: \(threads)
            processes: \(workers)
            polling_interval: 200ms
        dispatchers:
          - polling_interval: 200ms
        \(SupervisorHarness.fastSupervisor)
        \(extra)
        """
    }

    @Test("READY=1 comes from the supervisor once every child registered; STATUS, WATCHDOG and STOPPING too; children never notify")
    func readinessAndNotifications() throws {
        let h = try SupervisorHarness(config: Self.config(), environment: ["WATCHDOG_USEC": "400000"])
        let ready = try h.waitForReady()
        #expect(ready.pid == h.pid)
        #expect(ready.fields["STATUS"]?.hasPrefix("2 workers, 1 dispatcher;") == true, "\(ready)")
        let children = try h.registeredChildren()
        #expect(children.map(\.kind.rawValue).sorted() == ["dispatcher", "worker", "worker"])
        #expect(Set(children.map { pid_t($0.pid) }) == Set(h.childPIDs()))
        let registeredAt = try h.db.query("""
            SELECT max(created_at) AS last FROM \(h.store.schema.qualifying("processes")) WHERE kind <> 'supervisor'
            """)[0].decode("last", as: Date.self)
        #expect(registeredAt <= ready.receivedAt, "READY=1 came before the last child registered")
        try h.listener.waitFor("WATCHDOG=1") { $0.fields["WATCHDOG"] == "1" }
        let children0 = h.childPIDs()
        let outcome = try h.stop()
        #expect(outcome.status == 0, "\(outcome.stderr)")
        #expect(h.listener.messages.contains { $0.fields["STOPPING"] == "1" })
        #expect(h.listener.messages.allSatisfy { $0.pid == h.pid }, "only the supervisor notifies: \(h.listener.messages)")
        #expect(children0.allSatisfy { !ProcessTable.isAlive($0) })
        #expect(try h.store.listProcesses(on: h.db).isEmpty, "everyone deregistered")
    }

    @Test("a worker SIGKILLed while it runs a job: the job is back within 1 s, a replacement starts, the job completes with one crash")
    func killedWorker() throws {
        let h = try SupervisorHarness(config: Self.config(workers: 2))
        try h.waitForReady()
        let id = try h.enqueue("drover.test.sleep", arguments: #"{"ms": 1500}"#)[0]
        try waitUntil("the job is claimed") { try h.state(id)?.state == .claimed }
        let holder = try #require(try h.state(id)?.claimedBy)
        let victim = try #require(try h.registeredChildren().first { $0.id == holder }).pid
        kill(pid_t(victim), SIGKILL)
        try waitUntil("the job is back", timeout: .seconds(1), interval: .milliseconds(5)) {
            guard let job = try h.state(id) else { return false }
            return job.state != .claimed || job.claimedBy != holder
        }
        try h.waitUntilFinished([id])
        #expect(try h.state(id)?.crashes == 1)
        try waitUntil("a replacement worker registered") {
            let workers = try h.registeredChildren().filter { $0.kind == .worker }
            return workers.count == 2 && !workers.contains { $0.pid == victim }
        }
        #expect(h.log.contains("was killed by signal 9 (SIGKILL)"))
        try h.listener.waitFor("STATUS names the last error") {
            $0.fields["STATUS"]?.contains("last error: worker worker-") == true && $0.fields["STATUS"]?.contains("was killed by signal 9") == true
        }
        #expect(try h.stop().status == 0)
    }

    @Test("a job that crashes its worker every time fails after max_crashes, and other jobs are still served")
    func poisonPill() throws {
        // One thread per worker: a crash counts against every job its worker held (nobody can tell
        // which one killed it), so with more threads an innocent job could share the blame.
        let h = try SupervisorHarness(config: Self.config(workers: 2, threads: 1, extra: "  max_crashes: 2"))
        try h.waitForReady()
        let poison = try h.enqueue("drover.test.crash")[0]
        let others = try h.enqueue("drover.test.succeed", count: 10)
        try waitUntil("the poison pill failed", timeout: .seconds(30)) { try h.state(poison)?.state == .failed }
        let job = try #require(try h.state(poison))
        #expect(job.crashes == 2)
        #expect(job.lastError?.errorClass == "WorkerCrashed")
        #expect(job.lastError?.signal == 9)
        #expect(job.lastError?.message.contains("was killed by signal 9 (SIGKILL) while running this job") == true)
        try h.waitUntilFinished(others)
        #expect(h.process.isRunning)
        let more = try h.enqueue("drover.test.succeed", count: 5)
        try h.waitUntilFinished(more)
        #expect(try h.stop().status == 0)
    }

    @Test("SIGKILL to the supervisor: its children notice on fd 3, stop within shutdown_timeout and release their jobs")
    func supervisorKilled() throws {
        let h = try SupervisorHarness(config: Self.config(workers: 2).replacingOccurrences(of: "shutdown_timeout: 2s", with: "shutdown_timeout: 1s"))
        try h.waitForReady()
        let id = try h.enqueue("drover.test.sleep", arguments: #"{"ms": 30000}"#)[0]
        try waitUntil("the job is claimed") { try h.state(id)?.state == .claimed }
        let children = h.childPIDs()
        #expect(children.count == 3)
        kill(h.pid, SIGKILL)
        let killedAt = ContinuousClock.now
        try waitUntil("every child has exited", timeout: .seconds(5)) { children.allSatisfy { !ProcessTable.isAlive($0) } }
        let took = ContinuousClock.now - killedAt
        #expect(took < .seconds(2), "the children took \(took) (shutdown_timeout is 1s)")
        let job = try #require(try h.state(id))
        #expect(job.state == .ready && job.attempts == 0 && job.crashes == 0, "\(job)")
        let rows = try h.store.listProcesses(on: h.db)
        #expect(rows.map(\.kind) == [.supervisor], "the children deregistered; only the dead supervisor's row is left for pruning")
    }

    @Test("TERM: short jobs finish, a job longer than shutdown_timeout is released, not lost; exit 0")
    func gracefulStop() throws {
        let h = try SupervisorHarness(config: Self.config(workers: 1, threads: 3).replacingOccurrences(of: "shutdown_timeout: 2s", with: "shutdown_timeout: 1s"))
        try h.waitForReady()
        let long = try h.enqueue("drover.test.sleep", arguments: #"{"ms": 20000}"#)[0]
        let short = try h.enqueue("drover.test.sleep", arguments: #"{"ms": 400}"#, count: 2)
        try waitUntil("all three are running") {
            try ([long] + short).allSatisfy { try h.state($0)?.state == .claimed }
        }
        let outcome = try h.stop(SIGTERM, timeout: .seconds(10))
        #expect(outcome.status == 0, "\(outcome.stderr)")
        for id in short { #expect(try h.state(id)?.state == .finished) }
        let released = try #require(try h.state(long))
        #expect(released.state == .ready && released.attempts == 0 && released.crashes == 0)
        #expect(outcome.stderr.contains("shutdown_timeout passed with jobs still running; releasing them"))
    }
}
