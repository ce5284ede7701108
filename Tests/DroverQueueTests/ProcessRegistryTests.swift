import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

@Suite("The process registry: registration, pruning dead processes, orphaned claims")
struct ProcessRegistryTests {
    /// Registers a worker that claims `jobs` jobs, and returns its id.
    private func busyWorker(_ name: String, jobs: Int, supervisor: Int? = nil, _ store: PostgresJobStore, _ db: Connection) throws -> Int {
        let record = try store.register(kind: .worker, name: name, pid: 1234, hostname: "h1", supervisorID: supervisor, on: db)
        let id = try record.get("id", as: Int.self)
        try store.enqueue((0..<jobs).map { _ in NewJob("W", queue: name) }, on: db)
        #expect(try store.claim(processID: id, queues: try QueueSelection([name]), limit: jobs, on: db).count == jobs)
        return id
    }

    private func age(_ store: PostgresJobStore, _ ids: [Int], by seconds: Int, _ db: Connection) throws {
        try db.execute("""
            UPDATE \(store.schema.qualifying("processes"))
            SET last_heartbeat_at = now() - make_interval(secs => \(Double(seconds))) WHERE id = ANY(\(ids))
            """)
    }

    @Test("deregistering gives the jobs back and deletes the row together")
    func deregister() throws {
        try withStore { store, db throws in
            let id = try busyWorker("w1", jobs: 3, store, db)
            let outcome = try store.deregister(processID: id, on: db)
            #expect(outcome.released.count == 3)
            #expect(try store.processID(named: "w1", on: db) == nil)
            #expect(try count(store, "claimed_executions", db) == 0)
            try expectInvariant(store, db)
        }
    }

    @Test("two pruners at once recover each dead process exactly once; live ones and the spared stay")
    func pruneExactlyOnce() throws {
        try withStore { store, db throws in
            let supervisor = try store.register(kind: .supervisor, name: "sup", pid: 1, hostname: "h1", supervisorID: nil, on: db)
            let supervisorID = try supervisor.get("id", as: Int.self)
            let dead = try (0..<20).map { try busyWorker("dead\($0)", jobs: 2, store, db) }
            let own = try busyWorker("own", jobs: 1, supervisor: supervisorID, store, db)
            let alive = try busyWorker("alive", jobs: 1, store, db)
            try age(store, dead + [own, supervisorID], by: 120, db)

            let gate = Gate()
            let pruners = (0..<2).map { _ in
                BackgroundWork { () -> [PrunedProcess] in
                    let connection = try TestDatabase.connect()
                    gate.wait()
                    var all: [PrunedProcess] = []
                    while true {
                        let batch = try store.pruneDeadProcesses(
                            olderThan: .seconds(60), sparing: ["sup", "own"], maxCrashes: 3, on: connection)
                        if batch.isEmpty { return all }
                        all += batch
                    }
                }
            }
            gate.open()
            let pruned = try pruners.flatMap { try $0.value() }
            #expect(pruned.map(\.id).sorted() == dead, "each dead process pruned once, by one of them")
            #expect(pruned.flatMap(\.jobs.released).count == 40)
            #expect(try store.processID(named: "own", on: db) == own, "a supervisor's own children are its business")
            #expect(try store.processID(named: "alive", on: db) == alive)
            let jobs = try store.listJobs(state: .ready, on: db)
            #expect(jobs.count == 40 && jobs.allSatisfy { $0.crashes == 1 && $0.lastError?.errorClass == "ProcessLost" })
            #expect(jobs.first?.lastError?.message.contains("on h1 stopped heartbeating") == true)

            // Another supervisor prunes the first one and its stale child.
            let other = try store.pruneDeadProcesses(olderThan: .seconds(60), maxCrashes: 3, on: db)
            #expect(Set(other.map(\.id)) == [supervisorID, own])
            try expectInvariant(store, db)
        }
    }

    @Test("claims whose process row is gone are recovered as crashed")
    func orphans() throws {
        try withStore { store, db throws in
            let id = try busyWorker("ghost", jobs: 2, store, db)
            try db.execute("DELETE FROM \(store.schema.qualifying("processes")) WHERE id = \(id)")
            let outcome = try store.recoverOrphanedClaims(maxCrashes: 3, on: db)
            #expect(outcome.released.count == 2)
            #expect(try store.recoverOrphanedClaims(maxCrashes: 3, on: db).released.isEmpty)
            try expectInvariant(store, db)
        }
    }

    @Test("processes are listed with their heartbeat age and the jobs they hold")
    func list() throws {
        try withStore { store, db throws in
            let supervisor = try store.register(kind: .supervisor, name: "sup", pid: 10, hostname: "h1", supervisorID: nil, on: db)
            let supervisorID = try supervisor.get("id", as: Int.self)
            let worker = try busyWorker("w", jobs: 2, supervisor: supervisorID, store, db)
            try age(store, [worker], by: 30, db)
            let processes = try store.listProcesses(on: db)
            #expect(processes.map(\.name) == ["sup", "w"])
            #expect(processes[1].kind == .worker && processes[1].claimedJobs == 2 && processes[1].supervisorID == supervisorID)
            #expect((29...40).contains(processes[1].heartbeatAge))
        }
    }
}
