import DroverPersistence
import Foundation

/// The process registry on SQLite: registration, pruning the dead, orphaned claims.
extension SQLiteJobStore {
    private var processes: SQLIdentifier { schema.qualifying("processes") }

    public func register(
        kind: ProcessKind, name: String, pid: Int32, hostname: String, supervisorID: Int?, metadata: JSON = .emptyObject,
        on database: SQLiteConnection
    ) throws -> Record {
        let now = Self.timestamp(Date())
        return try Record.insert(
            into: processes,
            values: [
                "kind": kind.rawValue, "name": name, "pid": Int(pid), "hostname": hostname, "supervisor_id": supervisorID,
                "metadata": metadata.text, "last_heartbeat_at": now, "created_at": now,
            ],
            on: database)
    }

    @discardableResult
    public func deregister(processID: Int, reason: ReleaseReason = .graceful, on database: SQLiteConnection) throws -> ReleaseOutcome {
        try database.withTransaction { db in
            let outcome = try release(processID: processID, jobIDs: nil, reason: reason, on: db)
            try db.execute("DELETE FROM \(processes) WHERE id = \(processID)")
            return outcome
        }
    }

    public func pruneDeadProcesses(
        olderThan threshold: Duration, sparing: [String] = [], maxCrashes: Int, on database: SQLiteConnection
    ) throws -> [PrunedProcess] {
        try database.withTransaction { db in
            let cutoff = Self.timestamp(Date().addingTimeInterval(-threshold.seconds))
            let stale = try db.query("""
                SELECT id, name, hostname, kind, last_heartbeat_at FROM \(processes)
                WHERE last_heartbeat_at < \(cutoff)
                  AND name NOT IN (SELECT value FROM json_each(\(String(decoding: try JSONEncoder().encode(sparing), as: UTF8.self))))
                ORDER BY id LIMIT 100
                """)
            var pruned: [PrunedProcess] = []
            for row in stale {
                let id = try row.decode("id", as: Int.self)
                let name = try row.decode("name", as: String.self)
                let hostname = try row.decode("hostname", as: String.self)
                let age = Date().timeIntervalSince(try row.decode("last_heartbeat_at", as: Date.self))
                let failure = JobFailure(
                    errorClass: "ProcessLost",
                    message: "\(try row.decode("kind", as: String.self)) \(name) on \(hostname) stopped heartbeating "
                        + "(last heartbeat \(Int(age)) s ago) while running this job")
                let jobs = try deregister(processID: id, reason: .crashed(failure, maxCrashes: maxCrashes), on: db)
                pruned.append(PrunedProcess(id: id, name: name, hostname: hostname, jobs: jobs))
            }
            return pruned
        }
    }

    public func recoverOrphanedClaims(maxCrashes: Int, on database: SQLiteConnection) throws -> ReleaseOutcome {
        try database.withTransaction { db in
            let orphans = try db.query("""
                SELECT DISTINCT c.process_id FROM \(claimed) c
                WHERE NOT EXISTS (SELECT 1 FROM \(processes) p WHERE p.id = c.process_id) ORDER BY c.process_id
                """).map { try $0.decode("process_id", as: Int.self) }
            var released: [Int] = []
            var failedIDs: [Int] = []
            for processID in orphans {
                let failure = JobFailure(errorClass: "ProcessLost", message: "process \(processID) disappeared while it held this job")
                let outcome = try release(processID: processID, jobIDs: nil, reason: .crashed(failure, maxCrashes: maxCrashes), on: db)
                released += outcome.released
                failedIDs += outcome.failed
            }
            return ReleaseOutcome(released: released.sorted(), failed: failedIDs.sorted())
        }
    }

    public func claimedJobIDs(processID: Int, on database: SQLiteConnection) throws -> [Int] {
        try database.query("SELECT job_id FROM \(claimed) WHERE process_id = \(processID) ORDER BY job_id")
            .map { try $0.decode("job_id", as: Int.self) }
    }
}
