import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

@Suite("Store: the process registry, on every backend")
struct ProcessScenarios {
    /// Registers a worker that claims `jobs` jobs of a queue named after it; returns its record.
    private func busyWorker(_ name: String, jobs: Int, supervisor: Int? = nil, _ s: any TestStore) throws -> Record {
        let record = try s.register(name, supervisorID: supervisor)
        _ = try s.enqueue((0..<jobs).map { _ in NewJob("W", queue: name) })
        #expect(try s.claim(try record.get("id", as: Int.self), try QueueSelection([name]), limit: jobs).count == jobs)
        return record
    }

    @Test("register, heartbeat through withLock, prune the dead (sparing the named), deregister", arguments: Backend.allCases)
    func lifecycle(_ backend: Backend) throws {
        let clock = ManualClock()
        try backend.withStore(clock: clock.storeClock) { s in
            let worker = try busyWorker("worker-a", jobs: 2, s)
            let spared = try busyWorker("worker-b", jobs: 1, s)
            let workerID = try worker.get("id", as: Int.self)
            clock.advance(by: 120)
            #expect(try s.prune(olderThan: .seconds(300), sparing: [], maxCrashes: 3).isEmpty)
            let pruned = try s.prune(olderThan: .seconds(60), sparing: ["worker-b"], maxCrashes: 3)
            #expect(pruned.map(\.name) == ["worker-a"] && pruned[0].id == workerID && pruned[0].hostname == "test-host")
            #expect(pruned[0].jobs.released.count == 2 && pruned[0].jobs.failed.isEmpty)
            let released = try #require(try s.job(pruned[0].jobs.released[0]))
            #expect(released.crashes == 1 && released.lastError?.errorClass == "ProcessLost")
            #expect(released.lastError?.message == "worker worker-a on test-host stopped heartbeating (last heartbeat 120 s ago) while running this job")
            // A heartbeat of the pruned process finds its row gone: it must stop.
            let gone = #expect(throws: DatabaseError.self) { try s.heartbeat(worker, at: clock.now) }
            #expect(gone?.code == .recordNotFound)
            // A live heartbeat keeps a process from being pruned.
            try s.heartbeat(spared, at: clock.now)
            #expect(try s.prune(olderThan: .seconds(60), sparing: [], maxCrashes: 3).isEmpty)
            let sparedID = try spared.get("id", as: Int.self)
            #expect(try s.deregister(processID: sparedID, reason: .graceful) == ReleaseOutcome(released: [3], failed: []))
            #expect(try s.processID(named: "worker-b") == nil && s.claimedJobIDs(processID: sparedID).isEmpty)
        }
    }

    @Test("a release of only earlier claims leaves a claim made after its own time: a give-back that commits late cannot take a job claimed again since", arguments: Backend.allCases)
    func releaseSparesLaterClaims(_ backend: Backend) throws {
        let clock = ManualClock()
        try backend.withStore(clock: clock.storeClock) { s in
            let worker = try s.register("worker-r", supervisorID: nil)
            let workerID = try worker.get("id", as: Int.self)
            let id = try s.enqueue([NewJob("W", queue: "r")])[0]
            clock.advance(by: 10)
            #expect(try s.claim(processID: workerID, queues: QueueSelection(["r"]), limit: 1).map(\.id) == [id])
            // A give-back whose statement was stamped before that claim (it was sent, then held
            // up, while the job was given back, claimed and started again): it takes nothing.
            clock.advance(by: -5)
            #expect(try s.release(processID: workerID, jobIDs: [id], onlyEarlierClaims: true, reason: .graceful) == ReleaseOutcome(released: [], failed: []))
            #expect(try s.claimedJobIDs(processID: workerID) == [id])
            // One stamped after the claim gives it back, as any release does.
            clock.advance(by: 10)
            #expect(try s.release(processID: workerID, jobIDs: [id], onlyEarlierClaims: true, reason: .graceful) == ReleaseOutcome(released: [id], failed: []))
            #expect(try s.state(id) == .ready)
        }
    }

    @Test("two pruners at once on connections of their own recover each dead process exactly once", arguments: Backend.allCases)
    func pruneExactlyOnce(_ backend: Backend) throws {
        let clock = ManualClock()
        try backend.withStore(clock: clock.storeClock) { s in
            let supervisor = try s.register("sup", kind: .supervisor)
            let supervisorID = try supervisor.get("id", as: Int.self)
            let dead = try (0..<20).map { try busyWorker("dead\($0)", jobs: 2, s).get("id", as: Int.self) }
            _ = try busyWorker("own", jobs: 1, supervisor: supervisorID, s)
            clock.advance(by: 120)
            let alive = try busyWorker("alive", jobs: 1, s)
            let stores = try (0..<2).map { _ in UncheckedBox(try s.connectAgain()) }
            let gate = Gate()
            let pruners = stores.map { store in
                BackgroundWork { () -> [PrunedProcess] in
                    gate.wait()
                    var all: [PrunedProcess] = []
                    while true {
                        let batch = try store.value.prune(olderThan: .seconds(60), sparing: ["sup", "own"], maxCrashes: 3)
                        if batch.isEmpty { return all }
                        all += batch
                    }
                }
            }
            gate.open()
            let pruned = try pruners.flatMap { try $0.value(timeout: .seconds(60)) }
            #expect(pruned.map(\.id).sorted() == dead, "each dead process pruned once, by one of them")
            #expect(pruned.flatMap(\.jobs.released).count == 40)
            #expect(try s.processID(named: "own") != nil && s.processID(named: "alive") == (try alive.get("id", as: Int.self)))
            let jobs = try s.list(state: .ready, limit: 100)
            #expect(jobs.count == 40 && jobs.allSatisfy { $0.crashes == 1 && $0.lastError?.errorClass == "ProcessLost" })
            // Another supervisor prunes the first one and its stale child.
            let other = try s.prune(olderThan: .seconds(60), sparing: [], maxCrashes: 3)
            #expect(Set(other.map(\.name)) == ["sup", "own"])
        }
    }

    @Test("claims whose process row is gone are recovered as crashed, up to max_crashes", arguments: Backend.allCases)
    func orphans(_ backend: Backend) throws {
        try backend.withStore { s in
            let ghost = try busyWorker("ghost", jobs: 2, s).get("id", as: Int.self)
            try s.sql("DELETE FROM \(s.table("processes")) WHERE id = \(ghost)")
            let outcome = try s.recoverOrphanedClaims(maxCrashes: 3)
            #expect(outcome.released.count == 2 && outcome.failed.isEmpty)
            #expect(try s.recoverOrphanedClaims(maxCrashes: 3) == ReleaseOutcome(released: [], failed: []))
            _ = try s.claim(999, ["*"], limit: 2)
            #expect(try s.recoverOrphanedClaims(maxCrashes: 2).failed.count == 2, "a second crash reaches a limit of 2")
        }
    }

    @Test("processes are listed, supervisors first, with their heartbeat age by the store's clock and the jobs they hold",
          arguments: Backend.allCases)
    func list(_ backend: Backend) throws {
        let clock = ManualClock()
        try backend.withStore(clock: clock.storeClock) { s in
            let supervisor = try s.register("sup", kind: .supervisor)
            let supervisorID = try supervisor.get("id", as: Int.self)
            let worker = try busyWorker("w", jobs: 2, supervisor: supervisorID, s)
            try s.heartbeat(worker, at: clock.now.addingTimeInterval(0.25))
            _ = try s.register("w2", supervisorID: supervisorID, metadata: .object(#"{"running": 2, "finished": 5, "failed": 1}"#))
            clock.advance(by: 30.5)
            let processes = try s.listProcesses()
            #expect(processes.map(\.name) == ["sup", "w", "w2"])
            #expect(processes[1].kind == .worker && processes[1].claimedJobs == 2 && processes[1].supervisorID == supervisorID)
            #expect(processes[1].heartbeatAge == 30.25 && processes[0].heartbeatAge == 30.5)
            #expect(try s.processNames(supervisorID: supervisorID) == ["w", "w2"])
            #expect(try s.processTotals(supervisorID: supervisorID) == ProcessTotals(running: 2, finished: 5, failed: 1))
            #expect(try s.processID(named: "w") == (try worker.get("id", as: Int.self)))
        }
    }
}
