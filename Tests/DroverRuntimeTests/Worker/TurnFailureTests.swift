import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

/// A statement that fails inside a worker's turn (a trigger the test puts on the jobs table, on
/// either backend, refuses the error of the job class Poison) must not drop the turn's results:
/// they are reported on later turns, one by one, and no job stays claimed by a worker that no
/// longer runs it.
@Suite("A worker's failed turn keeps its results")
struct TurnFailureTests {
    static let config = """
        workers:
          - queues: ["*"]
            threads: 4
            polling_interval: 100ms
        dispatchers: []
        handlers:
          Poison:
            command: ["/bin/sh", "-c", "sleep 0.3; echo poisoned output; exit 3"]
          Fine:
            command: ["/bin/sh", "-c", "sleep 0.3"]
        \(SupervisorHarness.fastSupervisor)
        """

    @Test("a result the database refuses: the turn's finished jobs are still reported, the refused error is stored as why",
          arguments: ["postgresql", "sqlite"])
    func turnFailureKeepsResults(_ backend: String) throws {
        if backend == "postgresql" {
            let harness = try SupervisorHarness(config: Self.config)
            try harness.waitForReady()
            let table = harness.store.table("jobs")
            try harness.db.execute(unsafeRawScript: """
                CREATE FUNCTION \(harness.store.schema.quoted).poison() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    IF NEW.class_name = 'Poison' AND NEW.last_error ->> 'class' = 'CommandFailed' THEN
                        RAISE EXCEPTION 'poisoned by the test';
                    END IF;
                    RETURN NEW;
                END $$;
                CREATE TRIGGER poison BEFORE UPDATE ON \(table.quoted) FOR EACH ROW EXECUTE FUNCTION \(harness.store.schema.quoted).poison();
                """)
            let ids = try harness.store.enqueue([NewJob("Poison"), NewJob("Fine"), NewJob("Fine"), NewJob("Fine")], on: harness.db)
            try check(ids, log: { harness.log }) { try harness.store.job($0, on: harness.db) }
            let workers = try harness.registeredChildren().filter { $0.kind == .worker }
            #expect(workers.count == 1 && workers.allSatisfy { $0.claimedJobs == 0 })
        } else {
            let run = try SQLiteRuntimeTests.Run(config: Self.config)
            try run.waitForReady()
            let (store, db) = try run.open()
            try db.execute(unsafeRawScript: """
                CREATE TRIGGER drover.poison BEFORE UPDATE ON jobs
                WHEN NEW.class_name = 'Poison' AND json_extract(NEW.last_error, '$.class') = 'CommandFailed'
                BEGIN SELECT RAISE(ABORT, 'poisoned by the test'); END;
                """)
            let ids = try store.enqueue([NewJob("Poison"), NewJob("Fine"), NewJob("Fine"), NewJob("Fine")], on: db)
            try check(ids, log: { run.process.stderrSoFar }) { try store.job($0, on: db) }
            #expect(try store.listProcesses(on: db).filter { $0.kind == .worker }.allSatisfy { $0.claimedJobs == 0 })
        }
    }

    private func check(_ ids: [Int], log: () -> String, job: (Int) throws -> JobInfo?) throws {
        try waitUntil("every job has an outcome", timeout: .seconds(30)) {
            try ids.allSatisfy { id in try job(id).map { $0.state != .claimed && $0.state != .ready } ?? false }
        }
        for id in ids.dropFirst() { #expect(try job(id)?.state == .finished, "the turn's finished job \(id) was reported") }
        let poisoned = try #require(try job(ids[0]))
        #expect(poisoned.state == .scheduled && poisoned.attempts == 1, "failed once, to be retried")
        #expect(poisoned.lastError?.errorClass == "ErrorNotStored")
        #expect(poisoned.lastError?.message.contains("CommandFailed") == true)
        #expect(poisoned.lastError?.message.contains("poisoned by the test") == true)
        #expect(poisoned.lastError?.exitStatus == 3)
        #expect(log().contains("the results stay, to be reported one by one"), "\(log())")
        #expect(!log().contains("starting a replacement"), "the worker was not replaced")
    }
}
