import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

extension ChaosRun {
    static let callbackClass = "chaos.callback"

    /// `count` batches of `size` audit jobs each, with `on_success` and `on_complete` callbacks of
    /// ``callbackClass``; their jobs join the audit. Returns the batches' ids.
    func enqueueBatches(_ count: Int, of size: Int) throws -> [Int] {
        var batches: [Int] = []
        let arguments = try JSON(encoding: AuditArguments(file: auditPath, ms: 2))
        for n in 0..<count {
            let (batch, jobs) = try retrying {
                try database.admin.enqueueBatch(
                    NewBatch(description: "chaos batch \(n)", onSuccess: Self.callbackClass, onComplete: Self.callbackClass),
                    jobs: (0..<size).map { _ in NewJob(Self.auditClass, arguments: arguments, maxAttempts: 100) }, afterPlaces: [])
            }
            batches.append(batch)
            addAudited(jobs)
        }
        return batches
    }

    /// Each batch's callbacks, audited: every batch complete, with all its jobs finished; exactly
    /// one `success` and one `complete` callback job per batch, each finished. Never early: each
    /// callback's command began (by its own record in `callbacksPath`, realtime) after every run of
    /// every job of its batch began (the audit jobs' records). Timestamps in the database cannot
    /// say it: `now()` is when a transaction began, and the one that completes a batch may have
    /// begun before another that finished a job of it committed. What is off, in words.
    func auditCallbacks(_ batches: [Int], callbacksPath: String) throws -> [String] {
        var problems: [String] = []
        let rows = try retrying { try database.query("""
            SELECT b.id, b.total, b.finished, b.failed, b.pending, b.completed_at IS NOT NULL AS complete
            FROM \(database.table("batches")) b ORDER BY b.id
            """) }
        for row in rows {
            let id = try row.decode("id", as: Int.self)
            let (total, finished, failed, pending) = (try row.decode("total", as: Int.self), try row.decode("finished", as: Int.self),
                                                      try row.decode("failed", as: Int.self), try row.decode("pending", as: Int.self))
            if !(try row.decode("complete", as: Bool.self)) || finished != total || failed != 0 || pending != 0 {
                problems.append("batch \(id): \(finished) of \(total) finished, \(failed) failed, \(pending) pending")
            }
        }
        var calls: [Int: [String: [(id: Int, finished: Bool)]]] = [:]
        for row in try retrying({ try database.query("""
            SELECT id, arguments, finished_at IS NOT NULL AS finished FROM \(database.table("jobs"))
            WHERE class_name = \(Self.callbackClass) ORDER BY id
            """) }) {
            let arguments = try row.decode("arguments", as: JSON.self).decode(BatchCallbackArguments.self)
            calls[arguments.batchID, default: [:]][arguments.event, default: []].append(
                (try row.decode("id"), try row.decode("finished")))
        }
        // When each callback's command began (its first run), and each batch's jobs' last start.
        var began: [Int: Int64] = [:]
        for line in ((try? String(contentsOfFile: callbacksPath, encoding: .utf8)) ?? "").split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count == 2, let id = Int(fields[0]), let at = Int64(fields[1]) else { continue }
            began[id] = min(began[id] ?? at, at)
        }
        let runs = auditAttempts()
        var members: [Int: [Int]] = [:]
        for row in try retrying({ try database.query("SELECT id, batch_id FROM \(database.table("jobs")) WHERE batch_id IS NOT NULL") }) {
            members[try row.decode("batch_id", as: Int.self), default: []].append(try row.decode("id", as: Int.self))
        }
        for batch in batches {
            let lastStart = members[batch, default: []].compactMap { runs[$0]?.map(\.start).max() }.max()
            for event in ["success", "complete"] {
                let made = calls[batch]?[event] ?? []
                if made.count != 1 { problems.append("batch \(batch): \(made.count) \(event) callbacks") }
                for call in made {
                    if !call.finished { problems.append("batch \(batch): its \(event) callback (job \(call.id)) did not run") }
                    guard let start = began[call.id] else {
                        problems.append("batch \(batch): its \(event) callback (job \(call.id)) left no record of its run")
                        continue
                    }
                    if let lastStart, start < lastStart {
                        problems.append("batch \(batch): its \(event) callback (job \(call.id)) ran before a job of the batch began")
                    }
                }
            }
        }
        return problems
    }
}

@Suite("Chaos: batches and their callbacks", .serialized)
struct BatchChaosTests {
    static func callbackHandlers(_ path: String) -> String {
        """
        handlers:
          \(ChaosRun.callbackClass):
            command: [/bin/sh, -c, 'cat > /dev/null; echo "$DROVER_JOB_ID $(date +%s%N)" >> \(path)']
            max_attempts: 100
        """
    }

    @Test("100 batches of 100 jobs on two hosts through worker SIGKILLs, a PostgreSQL restart and a supervisor SIGKILL: each callback enqueued once, after its batch's last job")
    func batchesUnderFaults() throws {
        let cluster = try PrivateCluster()
        let run = try ChaosRun("batches: kills, restarts, two hosts", backend: .postgresql(url: cluster.url))
        let callbacks = run.directory.url.appendingPathComponent("callbacks").path
        try run.addSupervisor("a", config: ChaosRun.config(extra: Self.callbackHandlers(callbacks)))
        let b = try run.addSupervisor("b", config: ChaosRun.config(workers: 2, extra: Self.callbackHandlers(callbacks)))
        let batches = try run.enqueueBatches(100, of: 100)
        let total = batches.count * 100
        // Workers of both hosts killed at random while the batches complete on both at once.
        run.inject(every: .milliseconds(300), for: .seconds(8)) {
            guard let victim = (run.supervisor.workerPIDs() + b.workerPIDs()).randomElement(), kill(victim, SIGKILL) == 0 else { return false }
            run.timeline.died(victim)
            return true
        }
        try waitUntil("a third of the jobs ran", timeout: .seconds(120)) { (run.finishedCount() ?? 0) >= total / 3 }
        try cluster.stop()
        try cluster.start()
        run.row.faults += 1
        try waitUntil("two thirds of the jobs ran", timeout: .seconds(120)) { (run.finishedCount() ?? 0) >= total * 2 / 3 }
        kill(b.pid, SIGKILL)
        _ = try? b.process.wait(timeout: .seconds(10))
        run.row.faults += 1
        try b.startAgain()
        try b.waitForReady(timeout: .seconds(60))
        try run.recoverAndDrain()
        var problems: [String] = []
        try? waitUntil("every batch's callbacks ran", timeout: .seconds(60), interval: .milliseconds(200)) {
            problems = try run.auditCallbacks(batches, callbacksPath: callbacks)
            return problems.isEmpty
        }
        #expect(problems.isEmpty, "\(problems.count) problems: \(problems.prefix(10).joined(separator: "; "))")
        print("batches: \(batches.count) of 100 jobs, \(try run.database.count("SELECT count(*) AS n FROM \(run.database.table("jobs")) WHERE class_name = \(ChaosRun.callbackClass)")) callback jobs")
        try run.finish()
    }
}
