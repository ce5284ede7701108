import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

@Suite("Recovery: a lost registration, claims orphaned before boot")
struct RecoveryTests {
    static let config = SupervisorHarness.oneWorker

    @Test("a worker whose row is gone (taken for dead elsewhere) stops at its next heartbeat and is replaced")
    func rowGone() throws {
        let h = try SupervisorHarness(config: Self.config)
        try h.waitForReady()
        let worker = try #require(try h.registeredChildren().first { $0.kind == .worker })
        try h.db.execute("DELETE FROM \(h.store.schema.qualifying("processes")) WHERE id = \(worker.id)")
        try waitUntil("the worker exited") { !ProcessTable.isAlive(pid_t(worker.pid)) }
        // Its last line may still be in the pipe when it is gone.
        try waitUntil("the worker's last log line arrived") { h.log.contains("this process's registration is gone") }
        try waitUntil("a replacement registered") {
            try h.registeredChildren().contains { $0.kind == .worker && $0.pid != worker.pid }
        }
        let job = try h.enqueue("drover.test.succeed")
        try h.waitUntilFinished(job)
        #expect(try h.stop().status == 0)
    }

    @Test("heartbeats failing for longer than its lease make a worker fence and exit 76; it is replaced and its job released as crashed")
    func heartbeatsFailTooLong() throws {
        let h = try SupervisorHarness(config: Self.config)
        try h.waitForReady()
        let id = try h.enqueue("drover.test.sleep", arguments: #"{"ms": 60000}"#)[0]
        try waitUntil("the job runs") { try h.state(id)?.state == .claimed }
        let worker = try #require(try h.registeredChildren().first { $0.kind == .worker })
        // Hold the worker's row well past alive_threshold (1 s); its heartbeats time out (lock_timeout 1 s).
        let holder = try TestDatabase.connect()
        try holder.execute("BEGIN")
        try holder.execute("SELECT * FROM \(h.store.schema.qualifying("processes")) WHERE id = \(worker.id) FOR UPDATE")
        try waitUntil("the worker gave up", timeout: .seconds(15)) { !ProcessTable.isAlive(pid_t(worker.pid)) }
        // It fenced itself, or (its heartbeat blocked on the lock for lock_timeout, 400 ms, longer
        // than its 200 ms margin) its supervisor killed it before its lease ran out.
        try waitUntil("the worker's or the supervisor's log line arrived") {
            h.log.contains("could not renew the lease") || h.log.contains("killing it (SIGKILL)")
        }
        try holder.execute("COMMIT")
        // The supervisor's release waited for the lock, then went through.
        try waitUntil("the job left the gone worker") { try h.state(id)?.claimedBy != worker.id }
        #expect(try h.state(id)?.crashes == 1, "a job its worker's fence stopped counts a crash")
        try waitUntil("a replacement registered") {
            try h.registeredChildren().contains { $0.kind == .worker && $0.pid != worker.pid }
        }
        #expect(try h.stop().status == 0)
    }

    @Test("the dispatcher makes scheduled jobs ready when they are due")
    func dispatcher() throws {
        let h = try SupervisorHarness(config: Self.config.replacingOccurrences(of: "dispatchers: []", with: "dispatchers:\n  - polling_interval: 100ms"))
        try h.waitForReady()
        let id = try h.store.enqueue(NewJob("drover.test.succeed", runIn: .milliseconds(400)), on: h.db)
        #expect(try h.state(id)?.state == .scheduled)
        try h.waitUntilFinished([id], timeout: .seconds(10))
        #expect(try h.stop().status == 0)
    }

    @Test("claims left by a process that vanished before the supervisor started are recovered at boot")
    func orphansAtBoot() throws {
        // Prepare the schema and an orphaned claim, then start the supervisor on it.
        let schema = TestDatabase.uniqueSchemaName()
        let (store, db) = try PostgresDriver.open(
            url: try TestDatabase.url(), options: StoreOptions(schema: schema, applicationName: "drover-tests", migrating: .always))
        defer { _ = try? db.execute("DROP SCHEMA IF EXISTS \(SQLIdentifier(schema)) CASCADE") }
        let id = try store.enqueue(NewJob("drover.test.succeed"), on: db)
        #expect(try store.claim(processID: 987_654, queues: ["*"], limit: 1, on: db).count == 1)

        let directory = try TemporaryDirectory("drover-orphan")
        let path = try directory.file(Self.config)
        let supervisor = try DroverBinary.start(
            ["start", "--config", path, "--database-url", try TestDatabase.url(), "--schema", schema],
            environment: ["DROVER_TEST_HANDLERS": "1"])
        defer {
            for child in ProcessTable.children(of: supervisor.pid) { kill(child.pid, SIGKILL) }
            kill(supervisor.pid, SIGKILL)
        }
        try waitUntil("the orphaned job ran") { try store.job(id, on: db)?.state == .finished }
        #expect(try store.job(id, on: db)?.crashes == 1)
        #expect(supervisor.stderrSoFar.contains("recovered jobs claimed by processes that vanished"))
        kill(supervisor.pid, SIGTERM)
        #expect(try supervisor.wait(timeout: .seconds(15)).status == 0)
    }
}
