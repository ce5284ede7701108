import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

@Suite("A database outage: the supervisor rides it out, workers give up their leases in time")
struct DatabaseOutageTests {
    @Test("PostgreSQL stopped for twice alive_threshold and started again: the supervisor stays up, workers fence and are replaced, every job completes, none fails")
    func outage() throws {
        let cluster = try PrivateCluster()
        let config = """
            workers:
              - queues: ["*"]
                threads: 3
                processes: 2
                polling_interval: 200ms
            dispatchers:
              - polling_interval: 200ms
            \(SupervisorHarness.fastSupervisor)
            """
        let h = try SupervisorHarness(config: config, databaseURL: cluster.url)
        try h.waitForReady()
        let ids = try h.enqueue("drover.test.sleep", arguments: #"{"ms": 20}"#, count: 600)
        try waitUntil("work is under way") {
            try h.db.query("SELECT count(*) AS n FROM \(h.store.schema.qualifying("jobs")) WHERE finished_at IS NOT NULL")[0]
                .decode("n", as: Int.self) > 50
        }
        let dispatcher = try #require(try h.registeredChildren().first { $0.kind == .dispatcher })
        try cluster.stop()
        // alive_threshold is 1 s: stay down for twice that.
        Thread.sleep(forTimeInterval: 2.0)
        #expect(h.process.isRunning, "the supervisor is still up during the outage")
        try h.listener.waitFor("STATUS says the database is unreachable") {
            $0.fields["STATUS"]?.contains("database unreachable") == true
        }
        try cluster.start()

        try h.waitUntilFinished(ids, timeout: .seconds(90))
        #expect(h.process.isRunning)
        // The outage outlasted the workers' leases (outages count): they stopped their jobs,
        // exited 76 and were replaced. The dispatcher holds no jobs and rode it out.
        #expect(h.childPIDs().contains(pid_t(dispatcher.pid)), "the dispatcher was not restarted")
        #expect(h.log.contains("could not renew the lease") && h.log.contains("exited with status 76"))
        let jobs = try h.db.query("""
            SELECT count(*) FILTER (WHERE attempts > 0) AS failed, count(*) FILTER (WHERE crashes > 1) AS twice
            FROM \(h.store.schema.qualifying("jobs"))
            """)[0]
        #expect(try jobs.decode("failed", as: Int.self) == 0, "a job stopped by a fence counts a crash, never a failed attempt")
        #expect(try jobs.decode("twice", as: Int.self) == 0, "one outage, at most one crash per job")
        #expect(h.log.contains("database unreachable; waiting for it and retrying"))
        #expect(h.log.contains("database reachable again"))
        let ready = try h.stop()
        #expect(ready.status == 0, "\(ready.stderr)")
    }
}
