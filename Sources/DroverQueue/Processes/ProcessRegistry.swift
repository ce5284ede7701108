import DroverPersistence
import Foundation

/// What a row in `processes` is.
public enum ProcessKind: String, Sendable, Codable, CaseIterable {
    /// `web` is the dashboard a supervisor runs when the configuration has a `web:` section
    /// (PostgreSQL migration 6, SQLite migration 3 let the table hold it).
    case supervisor, worker, dispatcher, scheduler, web
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

    init(row: Row, now: Date) throws {
        id = try row.decode("id")
        kind = ProcessKind(rawValue: try row.decode("kind")) ?? .worker
        name = try row.decode("name")
        hostname = try row.decode("hostname")
        pid = try row.decode("pid")
        supervisorID = try row.decode("supervisor_id")
        heartbeatAge = max(0, now.timeIntervalSince(try row.decode("last_heartbeat_at", as: Date.self)))
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
        on database: Driver.Database
    ) throws -> Record {
        var values: [String: any DatabaseEncodable] = [
            "kind": kind.rawValue, "name": name, "pid": Int(pid), "hostname": hostname, "supervisor_id": supervisorID,
            "metadata": metadata,
        ]
        // Otherwise the column's default: the database server's clock.
        if let date = now().date {
            values["last_heartbeat_at"] = date
            values["created_at"] = date
        }
        return try Record.insert(into: processes, values: values, on: database)
    }

    /// The id of the process called `name`, if it is registered.
    public func processID(named name: String, on database: Driver.Database) throws -> Int? {
        try database.ids("SELECT id FROM \(processes) WHERE name = \(name)").first
    }

    /// The names of the processes `supervisorID` started that are registered.
    public func processNames(supervisorID: Int, on database: Driver.Database) throws -> Set<String> {
        Set(try database.fetch("SELECT name FROM \(processes) WHERE supervisor_id = \(supervisorID)")
            .map { try $0.decode("name", as: String.self) })
    }

    /// What the children of `supervisorID` report in their heartbeats, summed.
    public func processTotals(supervisorID: Int, on database: Driver.Database) throws -> ProcessTotals {
        var totals = ProcessTotals()
        for row in try database.fetch("SELECT metadata FROM \(processes) WHERE supervisor_id = \(supervisorID)") {
            guard let counts = try? row.decode("metadata", as: JSON.self).decode(ReportedCounts.self) else { continue }
            totals.running += counts.running ?? 0
            totals.finished += counts.finished ?? 0
            totals.failed += counts.failed ?? 0
        }
        return totals
    }

    private struct ReportedCounts: Decodable {
        let running: Int?
        let finished: Int?
        let failed: Int?
    }

    /// Removes a process: gives its claimed jobs back (`reason`) and deletes its row, in one
    /// transaction, so that no claim is ever left pointing at a missing process.
    @discardableResult
    public func deregister(processID: Int, reason: ReleaseReason = .graceful, on database: Driver.Database) throws -> ReleaseOutcome {
        try database.atomically {
            let outcome = try release(processID: processID, reason: reason, on: database)
            try database.change("DELETE FROM \(processes) WHERE id = \(processID)")
            return outcome
        }
    }

    /// Recovers processes whose heartbeat is older than `threshold`: their jobs are released as
    /// crashed (failing any that reach `maxCrashes`) and their rows deleted. Each dead process is
    /// handled by exactly one pruner: rows another pruner holds are passed over. The processes
    /// named in `sparing` are left alone: a supervisor spares itself and the children it knows
    /// are alive.
    public func pruneDeadProcesses(
        olderThan threshold: Duration, sparing: [String] = [], maxCrashes: Int, on database: Driver.Database
    ) throws -> [PrunedProcess] {
        let now = self.now()
        return try database.atomically {
            let stale = try database.fetch("""
                SELECT id, name, hostname, kind, last_heartbeat_at, \(now.sql) AS now
                FROM \(processes)
                WHERE last_heartbeat_at < \(now.after(-threshold.seconds)) AND NOT (\(driver.contains("name", names: sparing)))
                ORDER BY id
                LIMIT 100\(driver.lockingRowsSkippingLocked)
                """)
            var pruned: [PrunedProcess] = []
            for row in stale {
                let id = try row.decode("id", as: Int.self)
                let name = try row.decode("name", as: String.self)
                let hostname = try row.decode("hostname", as: String.self)
                let age = try row.decode("now", as: Date.self).timeIntervalSince(try row.decode("last_heartbeat_at", as: Date.self))
                let failure = JobFailure(
                    errorClass: "ProcessLost",
                    message: "\(try row.decode("kind", as: String.self)) \(name) on \(hostname) stopped heartbeating "
                        + "(last heartbeat \(Int(age)) s ago) while running this job")
                let jobs = try deregister(processID: id, reason: .crashed(failure, maxCrashes: maxCrashes), on: database)
                pruned.append(PrunedProcess(id: id, name: name, hostname: hostname, jobs: jobs))
            }
            return pruned
        }
    }

    /// Releases, as crashed, claims whose process row is missing (a supervisor's boot, and every
    /// pruning pass, since a process can claim in the moment it is being pruned).
    public func recoverOrphanedClaims(maxCrashes: Int, on database: Driver.Database) throws -> ReleaseOutcome {
        try database.atomically {
            let orphans = try database.ids("""
                SELECT DISTINCT c.process_id FROM \(claimed) c
                WHERE NOT EXISTS (SELECT 1 FROM \(processes) p WHERE p.id = c.process_id) ORDER BY c.process_id
                """, column: "process_id")
            var released: [Int] = []
            var failed: [Int] = []
            for processID in orphans {
                let failure = JobFailure(errorClass: "ProcessLost", message: "process \(processID) disappeared while it held this job")
                let outcome = try release(processID: processID, reason: .crashed(failure, maxCrashes: maxCrashes), on: database)
                released += outcome.released
                failed += outcome.failed
            }
            return ReleaseOutcome(released: released.sorted(), failed: failed.sorted())
        }
    }

    /// The jobs `processID` holds a claim on now.
    public func claimedJobIDs(processID: Int, on database: Driver.Database) throws -> [Int] {
        try database.ids("SELECT job_id FROM \(claimed) WHERE process_id = \(processID) ORDER BY job_id", column: "job_id")
    }

    /// Every registered process, supervisors first, each followed by its children.
    public func listProcesses(on database: Driver.Database) throws -> [ProcessSummary] {
        let now = self.now()
        let rows = try database.fetch("""
            SELECT p.id, p.kind, p.name, p.hostname, p.pid, p.supervisor_id, p.metadata, p.last_heartbeat_at,
                   (SELECT count(*) FROM \(claimed) c WHERE c.process_id = p.id) AS claimed_jobs
            FROM \(processes) p
            ORDER BY (p.kind = 'supervisor') DESC, coalesce(p.supervisor_id, p.id), p.id
            """)
        let clock = try time(now, on: database)
        return try rows.map { try ProcessSummary(row: $0, now: clock) }
    }
}

/// What a supervisor's children report in their heartbeats, summed (for systemd's STATUS line).
public struct ProcessTotals: Sendable, Equatable {
    public var running = 0
    public var finished = 0
    public var failed = 0

    public init(running: Int = 0, finished: Int = 0, failed: Int = 0) {
        self.running = running
        self.finished = finished
        self.failed = failed
    }
}
