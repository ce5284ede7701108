import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

@Suite("drover processes and drover status, and children that must not come back")
struct ProcessCommandsTests {
    static let config = """
        workers:
          - queues: ["*"]
            threads: 2
            processes: 2
            polling_interval: 200ms
        dispatchers:
          - polling_interval: 200ms
        \(SupervisorHarness.fastSupervisor)
        """

    private func drover(_ arguments: [String], _ h: SupervisorHarness) throws -> DroverBinary.Outcome {
        try DroverBinary.run(arguments + ["--schema", h.schema], environment: ["DROVER_DATABASE_URL": try TestDatabase.url()])
    }

    @Test("processes lists every process with its pid and the jobs it holds; status sums it all up")
    func listings() throws {
        let h = try SupervisorHarness(config: Self.config)
        try h.waitForReady()
        let running = try h.enqueue("drover.test.sleep", arguments: #"{"ms": 20000}"#)[0]
        try h.enqueue("drover.test.fail", arguments: #"{"permanent": true}"#)
        try waitUntil("one job runs and one has failed") {
            try h.state(running)?.state == .claimed && h.store.listJobs(state: .failed, on: h.db).count == 1
        }
        let table = try drover(["processes"], h)
        #expect(table.status == 0, "\(table)")
        let lines = table.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first == "KIND        NAME                 HOST  PID    HEARTBEAT  JOBS" || lines.first?.hasPrefix("KIND") == true)
        #expect(lines.count == 5, "\(table.stdout)")
        #expect(lines[1].hasPrefix("supervisor") && lines[1].contains(" \(h.pid) "))
        for pid in h.childPIDs() { #expect(table.stdout.contains(" \(pid) "), "child \(pid) is listed") }
        let json = try drover(["processes", "--json"], h)
        let processes = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]])
        #expect(processes.compactMap { $0["jobs"] as? Int }.reduce(0, +) == 1)
        #expect(processes.allSatisfy { ($0["heartbeat_age_seconds"] as? Double ?? 99) < 5 })

        let status = try drover(["status"], h)
        #expect(status.status == 0)
        #expect(status.stdout.contains("processes:  1 supervisor, 2 workers, 1 dispatcher on 1 host"), "\(status.stdout)")
        #expect(status.stdout.contains("jobs:       0 ready, 0 scheduled, 1 running, 0 blocked, 1 failed"), "\(status.stdout)")
        #expect(status.stdout.contains("failures:   1 failed job: see drover failed list"))
        let statusJSON = try #require(try JSONSerialization.jsonObject(with: Data(try drover(["status", "--json"], h).stdout.utf8)) as? [String: Any])
        #expect((statusJSON["processes"] as? [String: Any])?["workers"] as? Int == 2)
        #expect(try h.stop().status == 0)
        #expect(try drover(["processes"], h).stdout == "No Drover process is running.\n")
    }

    @Test("a child that exits 78 (configuration) is not started again; one that exits 71 (transient) is, after the backoff")
    func exitStatus78() throws {
        // max_crashes 1: the exiting job fails at once instead of taking the other worker down too.
        let h = try SupervisorHarness(config: Self.config + "\n  max_crashes: 1")
        try h.waitForReady()
        try h.enqueue("drover.test.exit", arguments: #"{"status": 78}"#)
        try waitUntil("the supervisor gave up on that child") { h.log.contains("not starting it again") }
        Thread.sleep(forTimeInterval: 1.5)
        #expect(try h.registeredChildren().filter { $0.kind == .worker }.count == 1, "no replacement for the one that exited 78")
        try h.enqueue("drover.test.exit", arguments: #"{"status": 71}"#)
        try waitUntil("the other child, which exited 71 (a start-up failure that may pass), was started again after the backoff") {
            h.log.contains("how=\"exited with status 71\"") && h.log.contains("msg=\"starting a replacement\" kind=worker in=1s")
        }
        try waitUntil("its replacement registered") { try h.registeredChildren().filter { $0.kind == .worker }.count == 1 }
        #expect(try h.stop().status == 0)
    }
}
