import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

@Suite("Recovery: a lost registration, claims orphaned before boot")
struct RecoveryTests {
    static let config = """
        workers:
          - queues: ["*"]
            threads: 2
            polling_interval: 200ms
        dispatchers: []
        \(SupervisorHarness.fastSupervisor)
        """

    @Test("a worker whose row is gone (taken for dead elsewhere) stops at its next heartbeat and is replaced")
    func rowGone() throws {
        let h = try SupervisorHarness(config: Self.config)
        try h.waitForReady()
        let worker = try #require(try h.registeredChildren().first { $0.kind == .worker })
        try h.db.execute("DELETE FROM \(h.store.schema.qualifying("processes")) WHERE id = \(worker.id)")
        try waitUntil("the worker exited") { !ProcessTable.isAlive(pid_t(worker.pid)) }
        #expect(h.log.contains("this process's registration is gone"))
        try waitUntil("a replacement registered") {
            try h.registeredChildren().contains { $0.kind == .worker && $0.pid != worker.pid }
        }
        let job = try h.enqueue("drover.test.succeed")
        try h.waitUntilFinished(job)
        #expect(try h.stop().status == 0)
    }

    @Test("claims left by a process that vanished before the supervisor started are recovered at boot")
    func orphansAtBoot() throws {
        // Prepare the schema and an orphaned claim, then start the supervisor on it.
        let schema = TestDatabase.uniqueSchemaName()
        let db = try TestDatabase.connect()
        try DroverSchema.migrator(schema: schema).migrate(on: db)
        defer { _ = try? db.execute("DROP SCHEMA IF EXISTS \(SQLIdentifier(schema)) CASCADE") }
        let store = try JobStore(schema: schema)
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
