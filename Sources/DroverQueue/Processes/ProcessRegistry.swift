import DroverPersistence
import Foundation

/// What a row in `processes` is.
public enum ProcessKind: String, Sendable, Codable, CaseIterable {
    case supervisor, worker, dispatcher, scheduler
}

/// A live (or supposedly live) Drover process, as `drover processes` shows it.
public struct ProcessSummary: Sendable, Equatable {
    public let id: Int
    public let kind: ProcessKind
    public let name: String
    public let hostname: String
    public let pid: Int
    public let supervisorID: Int?
    /// Seconds since its last heartbeat, by the database's clock.
    public let heartbeatAge: Double
    /// Jobs it has claimed now.
    public let claimedJobs: Int
    public let metadata: JSON

    init(row: Row) throws {
        id = try row.decode("id")
        kind = ProcessKind(rawValue: try row.decode("kind")) ?? .worker
        name = try row.decode("name")
        hostname = try row.decode("hostname")
        pid = try row.decode("pid")
        supervisorID = try row.decode("supervisor_id")
        heartbeatAge = try row.decode("age")
        claimedJobs = try row.decode("claimed_jobs")
        metadata = try row.decode("metadata")
    }
}

/// A process pruned for not heartbeating, and what became of its jobs.
public struct PrunedProcess: Sendable, Equatable {
    public let id: Int
    public let name: String
    public let hostname: String
    public let jobs: ReleaseOutcome
}

extension JobStore {
    /// Adds a process row and returns it as a record, for heartbeats through `withLock`.
    public func register(
        kind: ProcessKind, name: String, pid: Int32, hostname: String, supervisorID: Int?, metadata: JSON = .emptyObject,
        on connection: Connection
    ) throws(DatabaseError) -> Record {
        try Record.insert(
            into: processes,
            values: [
                "kind": kind.rawValue, "name": name, "pid": Int(pid), "hostname": hostname,
                "supervisor_id": supervisorID, "metadata": metadata,
            ],
            on: connection)
    }

    /// The id of the process called `name`, if it is registered.
    public func processID(named name: String, on connection: Connection) throws(DatabaseError) -> Int? {
        try connection.query("SELECT id FROM \(processes) WHERE name = \(name)").first?.decode("id", as: Int.self)
    }

    /// The names of the processes `supervisorID` started that are registered.
    public func processNames(supervisorID: Int, on connection: Connection) throws -> Set<String> {
        Set(try connection.query("SELECT name FROM \(processes) WHERE supervisor_id = \(supervisorID)")
            .map { try $0.decode("name", as: String.self) })
    }

    /// What the children of `supervisorID` report in their heartbeats, summed.
    public func processTotals(supervisorID: Int, on connection: Connection) throws(DatabaseError) -> ProcessTotals {
        let row = try connection.query("""
            SELECT coalesce(sum((metadata ->> 'running')::bigint), 0)::bigint AS running,
                   coalesce(sum((metadata ->> 'finished')::bigint), 0)::bigint AS finished,
                   coalesce(sum((metadata ->> 'failed')::bigint), 0)::bigint AS failed
            FROM \(processes) WHERE supervisor_id = \(supervisorID)
            """)[0]
        return ProcessTotals(running: try row.decode("running"), finished: try row.decode("finished"), failed: try row.decode("failed"))
    }

    /// Removes a process: gives its claimed jobs back (`reason`) and deletes its row, in one
    /// transaction, so that no claim is ever left pointing at a missing process.
    @discardableResult
    public func deregister(processID: Int, reason: ReleaseReason = .graceful, on connection: Connection) throws -> ReleaseOutcome {
        try connection.withTransaction { connection in
            let outcome = try release(processID: processID, reason: reason, on: connection)
            try connection.execute("DELETE FROM \(processes) WHERE id = \(processID)")
            return outcome
        }
    }

    /// Recovers processes whose heartbeat is older than `threshold`: their jobs are released as
    /// crashed (failing any that reach `maxCrashes`) and their rows deleted. Each dead process is
    /// handled by exactly one pruner: rows another pruner holds are skipped. The processes named in
    /// `sparing` are left alone: a supervisor spares itself and the children it knows are alive.
    public func pruneDeadProcesses(
        olderThan threshold: Duration, sparing: [String] = [], maxCrashes: Int, on connection: Connection
    ) throws -> [PrunedProcess] {
        try connection.withTransaction { connection in
            let stale = try connection.query("""
                SELECT id, name, hostname, kind, extract(epoch FROM now() - last_heartbeat_at)::float8 AS age
                FROM \(processes)
                WHERE last_heartbeat_at < now() - make_interval(secs => \(threshold.seconds))
                  AND name <> ALL(\(sparing))
                ORDER BY id
                LIMIT 100
                FOR UPDATE SKIP LOCKED
                """)
            var pruned: [PrunedProcess] = []
            for row in stale {
                let id = try row.decode("id", as: Int.self)
                let name = try row.decode("name", as: String.self)
                let hostname = try row.decode("hostname", as: String.self)
                let age = try row.decode("age", as: Double.self)
                let failure = JobFailure(
                    errorClass: "ProcessLost",
                    message: "\(try row.decode("kind", as: String.self)) \(name) on \(hostname) stopped heartbeating "
                        + "(last heartbeat \(Int(age)) s ago) while running this job")
                let jobs = try deregister(processID: id, reason: .crashed(failure, maxCrashes: maxCrashes), on: connection)
                pruned.append(PrunedProcess(id: id, name: name, hostname: hostname, jobs: jobs))
            }
            return pruned
        }
    }

    /// Releases, as crashed, claims whose process row is missing (a supervisor's boot, and every
    /// pruning pass, since a process can claim in the moment it is being pruned).
    public func recoverOrphanedClaims(maxCrashes: Int, on connection: Connection) throws(DatabaseError) -> ReleaseOutcome {
        let orphans = try connection.query("""
            SELECT DISTINCT c.process_id FROM \(claimed) c
            WHERE NOT EXISTS (SELECT 1 FROM \(processes) p WHERE p.id = c.process_id)
            """)
        var released: [Int] = []
        var failed: [Int] = []
        for row in orphans {
            let processID = try row.decode("process_id", as: Int.self)
            let failure = JobFailure(
                errorClass: "ProcessLost", message: "process \(processID) disappeared while it held this job")
            let outcome = try release(processID: processID, reason: .crashed(failure, maxCrashes: maxCrashes), on: connection)
            released += outcome.released
            failed += outcome.failed
        }
        return ReleaseOutcome(released: released.sorted(), failed: failed.sorted())
    }

    /// The jobs `processID` holds a claim on now.
    public func claimedJobIDs(processID: Int, on connection: Connection) throws(DatabaseError) -> [Int] {
        var ids: [Int] = []
        for row in try connection.query("SELECT job_id FROM \(claimed) WHERE process_id = \(processID) ORDER BY job_id") {
            ids.append(try row.decode("job_id", as: Int.self))
        }
        return ids
    }

    /// Every registered process, supervisors first, then by id.
    public func listProcesses(on connection: Connection) throws -> [ProcessSummary] {
        try connection.query("""
            SELECT p.id, p.kind, p.name, p.hostname, p.pid, p.supervisor_id, p.metadata,
                   extract(epoch FROM now() - p.last_heartbeat_at)::float8 AS age,
                   (SELECT count(*) FROM \(claimed) c WHERE c.process_id = p.id) AS claimed_jobs
            FROM \(processes) p
            ORDER BY (p.kind = 'supervisor') DESC, coalesce(p.supervisor_id, p.id), p.id
            """).map(ProcessSummary.init(row:))
    }
}
