import DroverQueue
import Foundation

/// A small in-memory reference model of the job state machine: what the store must do, written
/// from the design rather than from the store's code, with no database. The differential test runs
/// the same steps on it, on PostgreSQL and on SQLite, and compares what every job looks like after
/// each step.
///
/// Concurrency slots are not counted here: a key's free slots are its limit less its jobs that are
/// ready or claimed, which is what the store's semaphores must always say.
final class StoreModel {
    enum State: String { case scheduled, ready, claimed, blocked, waiting, failed, finished }

    struct Job {
        let id: Int
        let queue: String
        let className: String
        let priority: Int
        var maxAttempts: Int
        let uniqueKey: String?
        let concurrencyKey: String?
        var state: State
        var attempts = 0
        var crashes = 0
        var scheduledAt: Date
        var claimedBy: Int?
        var cancelRequested = false
        var lastErrorClass: String?
        /// The jobs it waits for, with each one's outcome once recorded ("finished", "failed").
        var after: [Int] = []
        var outcomes: [Int: String] = [:]
        var runAfterFailure = false
        var batch: Int?
        /// When it was enqueued to run (the store's `jobs.scheduled_at`, which retries leave as it is).
        var runAt: Date? = nil
        var isLive: Bool { state != .finished && state != .failed }
    }

    struct Batch {
        let id: Int
        let onSuccess: String?
        let onComplete: String?
        let onFailure: String?
        var total = 0
        var pending = 0
        var finished = 0
        var failed = 0
        var success: Int?
        var complete: Int?
        var failure: Int?
        var completed = false
    }

    struct Rule {
        let maxRunning: Int
        let discard: Bool
        let render: ([String: String]) -> String?
    }

    /// What went wrong, as the store says it: the code and the jobs at fault (the words are
    /// compared between the backends, not with the model).
    struct Failure: Error, Equatable, CustomStringConvertible {
        let code: QueueError.Code
        let jobIDs: [Int]
        var description: String { "\(code) \(jobIDs)" }
    }

    private(set) var jobs: [Int: Job] = [:]
    private(set) var batches: [Int: Batch] = [:]
    private var nextBatchID = 1
    /// Every id ever given, deleted jobs' too (a step may name them).
    private(set) var everyID: [Int] = []
    private var nextJobID = 1
    private(set) var processes: [Int: Date] = [:]
    private var nextProcessID = 1
    private var paused: Set<String> = []
    private(set) var now: Date
    let keepFinished: Bool
    let rules: [String: Rule]
    let retry: RetryPolicy

    init(now: Date, keepFinished: Bool, rules: [String: Rule], retry: RetryPolicy) {
        self.now = now
        self.keepFinished = keepFinished
        self.rules = rules
        self.retry = retry
    }

    func tick(_ seconds: Double) { now = now.addingTimeInterval(seconds) }

    // MARK: - Slots

    private func holders(_ key: String) -> Int {
        jobs.values.filter { $0.concurrencyKey == key && ($0.state == .ready || $0.state == .claimed) }.count
    }

    private func free(_ key: String, of job: Job) -> Int? {
        guard let rule = rules[job.className] else { return nil }
        return rule.maxRunning - holders(key)
    }

    /// Admits due jobs with a key, in priority then id order.
    private func admit(_ ids: [Int]) {
        var discarded: [(Int, Bool)] = []
        for id in ids.sorted(by: { (jobs[$0]!.priority, $0) < (jobs[$1]!.priority, $1) }) {
            var job = jobs[id]!
            if let key = job.concurrencyKey, let free = free(key, of: job), free <= 0 {
                if rules[job.className]!.discard {
                    job.state = .finished
                    job.lastErrorClass = "Discarded"
                    discarded.append((id, false))
                } else {
                    job.state = .blocked
                }
            } else {
                job.state = .ready
            }
            jobs[id] = job
        }
        settle(discarded)
    }

    /// Lets blocked jobs of `keys` take the slots that are free, in priority then id order.
    private func signal(_ keys: [String]) {
        for key in Set(keys).sorted() {
            while true {
                let waiting = jobs.values.filter { $0.concurrencyKey == key && $0.state == .blocked }
                    .sorted { ($0.priority, $0.id) < ($1.priority, $1.id) }
                guard let next = waiting.first, let free = free(key, of: next), free > 0 else { break }
                jobs[next.id]!.state = .ready
            }
        }
    }

    private func makeReady(_ ids: [Int]) {
        var keyed: [Int] = []
        for id in ids.sorted() {
            if jobs[id]!.concurrencyKey != nil { keyed.append(id) } else { jobs[id]!.state = .ready }
        }
        admit(keyed)
    }

    // MARK: - Enqueue and claim

    struct NewJobSpec {
        let className: String
        let queue: String
        let priority: Int
        let runAt: Date?
        let uniqueKey: String?
        let arguments: [String: String]
        var after: [Int] = []
        var runAfterFailure = false
        var batch: Int? = nil
    }

    /// A batch of `specs` with its callbacks, all or nothing.
    func enqueueBatch(_ specs: [NewJobSpec], onSuccess: String?, onComplete: String?, onFailure: String?) throws(Failure) -> (Int, [Int]) {
        let saved = (jobs, batches, nextJobID, nextBatchID, everyID)
        let id = nextBatchID
        nextBatchID += 1
        batches[id] = Batch(id: id, onSuccess: onSuccess, onComplete: onComplete, onFailure: onFailure)
        do {
            return (id, try enqueue(specs.map { var spec = $0; spec.batch = id; return spec }))
        } catch {
            (jobs, batches, nextJobID, nextBatchID, everyID) = saved
            throw error
        }
    }

    func enqueue(_ specs: [NewJobSpec]) throws(Failure) -> [Int] {
        var keys: [String?] = []
        for spec in specs {
            if let rule = rules[spec.className] {
                guard let key = rule.render(spec.arguments) else { throw Failure(code: .invalidJob, jobIDs: []) }
                keys.append(key)
            } else {
                keys.append(nil)
            }
        }
        // The jobs waited for, then the batches joined, as the store checks them.
        let waitedFor = Set(specs.flatMap(\.after)).sorted()
        let missing = waitedFor.filter { jobs[$0] == nil }
        if !missing.isEmpty { throw Failure(code: .invalidJob, jobIDs: missing) }
        for spec in specs where !spec.runAfterFailure {
            if let failed = spec.after.sorted().first(where: { jobs[$0]!.state == .failed }) {
                throw Failure(code: .invalidJob, jobIDs: [failed])
            }
        }
        var joining: [Int: Int] = [:]
        for spec in specs { if let batch = spec.batch { joining[batch, default: 0] += 1 } }
        for (batch, count) in joining.sorted(by: { $0.key < $1.key }) {
            guard let open = batches[batch], !open.completed else { throw Failure(code: .invalidJob, jobIDs: []) }
            batches[batch]!.total = open.total + count
            batches[batch]!.pending = open.pending + count
        }
        var ids: [Int] = []
        var toAdmit: [Int] = []
        for (spec, key) in zip(specs, keys) {
            if let unique = spec.uniqueKey, let live = jobs.values.filter({ $0.uniqueKey == unique && $0.isLive }).map(\.id).min() {
                ids.append(live)
                continue
            }
            let id = nextJobID
            nextJobID += 1
            everyID.append(id)
            let at = spec.runAt ?? now
            var outcomes: [Int: String] = [:]
            for dependency in spec.after {
                switch jobs[dependency]!.state {
                case .failed: outcomes[dependency] = "failed"
                case .finished: outcomes[dependency] = "finished"
                default: break
                }
            }
            let waits = outcomes.count < spec.after.count
            // A due job with a key holds no slot until admission gives it one.
            let state: State = waits ? .waiting : at > now ? .scheduled : key == nil ? .ready : .blocked
            jobs[id] = Job(id: id, queue: spec.queue, className: spec.className, priority: spec.priority, maxAttempts: 5,
                           uniqueKey: spec.uniqueKey, concurrencyKey: key, state: state, scheduledAt: at, after: spec.after,
                           outcomes: outcomes, runAfterFailure: spec.runAfterFailure, batch: spec.batch, runAt: at)
            if state == .blocked { toAdmit.append(id) }
            ids.append(id)
        }
        admit(toAdmit)
        return ids
    }

    func claim(_ processID: Int, _ patterns: [QueueSelection.Pattern], limit: Int) -> [Int] {
        var taken: [Int] = []
        for pattern in patterns where taken.count < limit {
            let candidates = jobs.values.filter { job in
                guard job.state == .ready, !paused.contains(job.queue) else { return false }
                switch pattern {
                case .exact(let name): return job.queue == name
                case .prefix(let prefix): return job.queue.hasPrefix(prefix)
                case .all: return true
                }
            }.sorted { a, b in
                if case .prefix = pattern, a.queue != b.queue { return a.queue < b.queue }
                return (a.priority, a.id) < (b.priority, b.id)
            }
            for job in candidates.prefix(limit - taken.count) {
                jobs[job.id]!.state = .claimed
                jobs[job.id]!.claimedBy = processID
                jobs[job.id]!.cancelRequested = false
                taken.append(job.id)
            }
        }
        return taken
    }

    func claimed(by processID: Int) -> [Int] {
        jobs.values.filter { $0.state == .claimed && $0.claimedBy == processID }.map(\.id).sorted()
    }

    // MARK: - Finish, fail, release

    func finish(_ ids: [Int], by processID: Int) -> (finished: [Int], dropped: [Int]) {
        let wanted = Array(Set(ids)).sorted()
        let done = wanted.filter { jobs[$0]?.state == .claimed && jobs[$0]?.claimedBy == processID }
        var keys: [String] = []
        var ended: [(Int, Bool)] = []
        for id in done {
            if let key = jobs[id]!.concurrencyKey { keys.append(key) }
            ended.append((id, true))
            if keepFinished {
                jobs[id]!.state = .finished
                jobs[id]!.claimedBy = nil
            } else {
                gone[id] = jobs[id]!.batch
                jobs[id] = nil
            }
        }
        signal(keys)
        settle(ended)
        return (done, wanted.filter { !done.contains($0) })
    }

    enum FailResult: Equatable { case retry(at: Date, attempts: Int), failed(attempts: Int), dropped }

    func fail(_ id: Int, by processID: Int, permanent: Bool, maxAttempts: Int?) -> FailResult {
        guard var job = jobs[id], job.state == .claimed, job.claimedBy == processID else { return .dropped }
        job.attempts += 1
        if let maxAttempts { job.maxAttempts = maxAttempts }
        job.claimedBy = nil
        job.lastErrorClass = "E"
        let result: FailResult
        if permanent || job.attempts >= job.maxAttempts {
            job.state = .failed
            result = .failed(attempts: job.attempts)
        } else {
            job.state = .scheduled
            // The backoff worked out here, not by RetryPolicy: base × 2^(n-1), at most max (no jitter).
            let delay = min(retry.maxDelay.seconds, retry.baseDelay.seconds * Double(1 << min(job.attempts - 1, 40)))
            job.scheduledAt = now.addingTimeInterval(delay)
            result = .retry(at: job.scheduledAt, attempts: job.attempts)
        }
        jobs[id] = job
        if job.state == .failed { settle([(id, false)]) }
        if let key = job.concurrencyKey { signal([key]) }
        return result
    }

    /// nil: graceful; else the crash's error class and limit.
    func release(_ processID: Int, only: [Int]?, crash: (errorClass: String, maxCrashes: Int)?) -> (released: [Int], failed: [Int]) {
        var gone = claimed(by: processID)
        if let only { gone = gone.filter { only.contains($0) } }
        var released: [Int] = []
        var failed: [Int] = []
        var keys: [String] = []
        for id in gone {
            var job = jobs[id]!
            job.claimedBy = nil
            var fails = job.cancelRequested
            if let crash {
                job.crashes += 1
                job.lastErrorClass = crash.errorClass
                fails = fails || job.crashes >= crash.maxCrashes
            }
            if job.cancelRequested { job.lastErrorClass = JobFailure.cancelledClass }
            job.cancelRequested = false
            if fails {
                job.state = .failed
                failed.append(id)
                if let key = job.concurrencyKey { keys.append(key) }
            } else {
                job.state = .ready
                released.append(id)
            }
            jobs[id] = job
        }
        signal(keys)
        settle(failed.map { ($0, false) })
        return (released, failed)
    }

    // MARK: - Cancel, retry, discard

    enum CancelResult: Equatable { case discarded(State), requested(Int) }

    func cancel(_ id: Int) throws(Failure) -> CancelResult {
        guard let job = jobs[id] else { throw Failure(code: .jobNotFound, jobIDs: [id]) }
        switch job.state {
        case .ready, .scheduled, .blocked, .waiting:
            gone[id] = job.batch
            jobs[id] = nil
            if job.state == .ready, let key = job.concurrencyKey { signal([key]) }
            settle([(id, false)])
            return .discarded(job.state)
        case .claimed:
            jobs[id]!.cancelRequested = true
            return .requested(job.claimedBy!)
        case .failed, .finished:
            throw Failure(code: .wrongState, jobIDs: [id])
        }
    }

    private func checkFailed(_ ids: [Int]) throws(Failure) {
        let missing = ids.filter { jobs[$0] == nil }
        if !missing.isEmpty { throw Failure(code: .jobNotFound, jobIDs: missing) }
        let others = ids.filter { jobs[$0]!.state != .failed }
        if !others.isEmpty { throw Failure(code: .wrongState, jobIDs: others) }
    }

    /// Failed jobs of `ids` (in order) whose unique key a live job, or an earlier one of them, holds.
    private func conflicts(_ ids: [Int]) -> [Int] {
        var taken: Set<String> = []
        var conflicting: [Int] = []
        for id in ids {
            guard let key = jobs[id]!.uniqueKey else { continue }
            if taken.contains(key) || jobs.values.contains(where: { $0.uniqueKey == key && $0.isLive }) {
                conflicting.append(id)
            } else {
                taken.insert(key)
            }
        }
        return conflicting
    }

    /// Of failed jobs retried together, those whose dependency failed and is not retried with
    /// them (checked again until none is left).
    private func refusals(_ ids: [Int]) -> [Int] {
        var retried = Set(ids)
        var refused: Set<Int> = []
        var changed = true
        while changed {
            changed = false
            for id in ids.sorted() where retried.contains(id) {
                let job = jobs[id]!
                guard !job.runAfterFailure else { continue }
                let failing = job.after.contains { dependency in
                    guard !retried.contains(dependency) else { return false }
                    if let other = jobs[dependency] { return other.state == .failed }
                    return job.outcomes[dependency] == "failed"
                }
                if failing {
                    retried.remove(id)
                    refused.insert(id)
                    changed = true
                }
            }
        }
        return refused.sorted()
    }

    private func revive(_ ids: [Int]) {
        for id in ids {
            jobs[id]!.attempts = 0
            jobs[id]!.crashes = 0
        }
        var plain: [Int] = []
        var routed: [Int] = []
        for id in ids {
            var job = jobs[id]!
            guard !job.after.isEmpty else {
                plain.append(id)
                continue
            }
            for dependency in job.after {
                guard let other = jobs[dependency] else { continue }
                // A job retried in the same call is running again.
                job.outcomes[dependency] = ids.contains(dependency) ? nil
                    : other.state == .failed ? "failed" : other.state == .finished ? "finished" : nil
            }
            if job.outcomes.count < job.after.count {
                job.state = .waiting
            } else {
                routed.append(id)
            }
            jobs[id] = job
        }
        // Those whose dependencies all ended first, as jobs released from waiting.
        route(routed)
        makeReady(plain)
        for id in ids {
            guard let batch = jobs[id]!.batch else { continue }
            batches[batch]!.failed -= 1
            batches[batch]!.pending += 1
        }
    }

    func retryFailed(_ ids: [Int]) throws(Failure) -> [Int] {
        let wanted = Array(Set(ids)).sorted()
        try checkFailed(wanted)
        let conflicting = conflicts(wanted)
        if !conflicting.isEmpty { throw Failure(code: .wrongState, jobIDs: conflicting) }
        let refused = refusals(wanted)
        if !refused.isEmpty { throw Failure(code: .wrongState, jobIDs: refused) }
        revive(wanted)
        return wanted
    }

    func discardFailed(_ ids: [Int]) throws(Failure) -> [Int] {
        let wanted = Array(Set(ids)).sorted()
        try checkFailed(wanted)
        for id in wanted { jobs[id] = nil }
        return wanted
    }

    func retryAllFailed(batchSize: Int) -> Int {
        var total = 0
        var after = 0
        while true {
            let batch = Array(jobs.values.filter { $0.state == .failed && $0.id > after }.map(\.id).sorted().prefix(batchSize))
            let conflicting = conflicts(batch)
            let unretried = batch.filter { !conflicting.contains($0) }
            let refused = refusals(unretried)
            let revived = unretried.filter { !refused.contains($0) }
            revive(revived)
            total += revived.count
            guard batch.count == batchSize, let last = batch.last else { return total }
            after = last
        }
    }

    func discardAllFailed() -> Int {
        let failed = jobs.values.filter { $0.state == .failed }.map(\.id)
        for id in failed { jobs[id] = nil }
        return failed.count
    }

    // MARK: - Dispatch, queues

    func dispatchDue(batchSize: Int) -> Int {
        let due = jobs.values.filter { $0.state == .scheduled && $0.scheduledAt <= now }
            .sorted { ($0.scheduledAt, $0.priority, $0.id) < ($1.scheduledAt, $1.priority, $1.id) }
            .prefix(batchSize).map(\.id)
        makeReady(due)
        return due.count
    }

    func pause(_ queue: String) -> Bool { paused.insert(queue).inserted }
    func resume(_ queue: String) -> Bool { paused.remove(queue) != nil }

    func clear(_ queue: String, batchSize: Int) -> (ready: Int, scheduled: Int) {
        func deleteAll(_ state: State) -> Int {
            var total = 0
            while true {
                let batch = jobs.values.filter { $0.state == state && $0.queue == queue }.map(\.id).sorted().prefix(batchSize)
                let keys = batch.compactMap { jobs[$0]!.concurrencyKey }
                for id in batch {
                    gone[id] = jobs[id]!.batch
                    jobs[id] = nil
                }
                if state == .ready { signal(keys) }
                settle(batch.map { ($0, false) })
                total += batch.count
                if batch.count < batchSize { return total }
            }
        }
        return (deleteAll(.ready), deleteAll(.scheduled))
    }

    // MARK: - Dependencies and batches

    /// The batch of a job deleted in this step (finished and not kept, cancelled, cleared).
    private var gone: [Int: Int?] = [:]

    /// What follows from jobs that just ended (`true`: finished): the jobs waiting for them run or
    /// fail, down the chain; then their batches are counted and their callbacks enqueued.
    private func settle(_ ended: [(id: Int, finished: Bool)]) {
        var all: [(id: Int, finished: Bool)] = []
        var round = ended
        while !round.isEmpty {
            all += round
            for (id, finished) in round {
                for other in jobs.keys.sorted() where jobs[other]!.after.contains(id) && jobs[other]!.outcomes[id] == nil {
                    jobs[other]!.outcomes[id] = finished ? "finished" : "failed"
                }
            }
            let parents = Set(round.map(\.id))
            round = []
            var release: [Int] = []
            var failing: [Int] = []
            for id in jobs.keys.sorted() {
                let job = jobs[id]!
                guard job.state == .waiting, !parents.isDisjoint(with: job.after) else { continue }
                let failed = !job.runAfterFailure && job.outcomes.values.contains("failed")
                if failed { failing.append(id) } else if job.outcomes.count == job.after.count { release.append(id) }
            }
            route(release)
            for id in failing {
                jobs[id]!.state = .failed
                jobs[id]!.lastErrorClass = DependencyFailure.errorClass
                round.append((id, false))
            }
        }
        var byBatch: [Int: (finished: Int, failed: Int, first: Int?)] = [:]
        for (id, finished) in all {
            guard let batch = jobs[id]?.batch ?? gone[id] ?? nil else { continue }
            var counts = byBatch[batch] ?? (0, 0, nil)
            if finished { counts.finished += 1 } else { counts.failed += 1; counts.first = min(counts.first ?? id, id) }
            byBatch[batch] = counts
        }
        for (id, counts) in byBatch.sorted(by: { $0.key < $1.key }) {
            var batch = batches[id]!
            batch.pending -= counts.finished + counts.failed
            batch.finished += counts.finished
            batch.failed += counts.failed
            if counts.failed > 0, batch.failure == nil, let onFailure = batch.onFailure { batch.failure = callback(onFailure) }
            if batch.pending == 0 && !batch.completed {
                batch.completed = true
                if batch.failed == 0, let onSuccess = batch.onSuccess { batch.success = callback(onSuccess) }
                if let onComplete = batch.onComplete { batch.complete = callback(onComplete) }
            }
            batches[id] = batch
        }
    }

    /// Jobs no longer waiting: scheduled if the time they were enqueued for has not come, else
    /// ready or admitted.
    private func route(_ ids: [Int]) {
        var due: [Int] = []
        for id in ids.sorted() {
            if let at = jobs[id]!.runAt, at > now {
                jobs[id]!.state = .scheduled
                jobs[id]!.scheduledAt = at
            } else {
                due.append(id)
            }
        }
        makeReady(due)
    }

    /// A callback job: a new ready job of `className` in the default queue.
    private func callback(_ className: String) -> Int {
        let id = nextJobID
        nextJobID += 1
        everyID.append(id)
        jobs[id] = Job(id: id, queue: "default", className: className, priority: 0, maxAttempts: 5, uniqueKey: nil, concurrencyKey: nil,
                       state: .ready, scheduledAt: now)
        return id
    }

    /// Every batch as its counts and callbacks, by id.
    var visibleBatches: [String] {
        batches.values.sorted { $0.id < $1.id }.map(Self.describe)
    }

    static func describe(_ batch: Batch) -> String {
        "batch #\(batch.id) total=\(batch.total) pending=\(batch.pending) finished=\(batch.finished) failed=\(batch.failed) "
            + "complete=\(batch.completed) callbacks=\(batch.success.map(String.init) ?? "-")/\(batch.complete.map(String.init) ?? "-")/"
            + "\(batch.failure.map(String.init) ?? "-")"
    }

    // MARK: - Processes

    func register() -> Int {
        let id = nextProcessID
        nextProcessID += 1
        processes[id] = now
        return id
    }

    func heartbeat(_ processID: Int) -> Bool {
        guard processes[processID] != nil else { return false }
        processes[processID] = now
        return true
    }

    func prune(olderThan threshold: Double, maxCrashes: Int) -> [(id: Int, released: [Int], failed: [Int])] {
        let stale = processes.filter { $0.value < now.addingTimeInterval(-threshold) }.keys.sorted()
        return stale.map { id in
            let outcome = release(id, only: nil, crash: ("ProcessLost", maxCrashes))
            processes[id] = nil
            return (id, outcome.released, outcome.failed)
        }
    }

    func recoverOrphans(maxCrashes: Int) -> (released: [Int], failed: [Int]) {
        let orphans = Set(jobs.values.filter { $0.state == .claimed && processes[$0.claimedBy!] == nil }.map { $0.claimedBy! }).sorted()
        var released: [Int] = []
        var failed: [Int] = []
        for processID in orphans {
            let outcome = release(processID, only: nil, crash: ("ProcessLost", maxCrashes))
            released += outcome.released
            failed += outcome.failed
        }
        return (released.sorted(), failed.sorted())
    }

    // MARK: - What a user sees

    /// Every job that exists, by id: state, attempts, crashes, next run time, claim holder, last
    /// error's class.
    var visible: [String] {
        jobs.values.sorted { $0.id < $1.id }.map { job in
            StoreModel.describe(id: job.id, state: job.state.rawValue, attempts: job.attempts, crashes: job.crashes,
                                nextRunAt: job.state == .scheduled ? job.scheduledAt : nil, claimedBy: job.claimedBy,
                                lastError: job.lastErrorClass)
        }
    }

    static func describe(
        id: Int, state: String, attempts: Int, crashes: Int, nextRunAt: Date?, claimedBy: Int?, lastError: String?
    ) -> String {
        var text = "#\(id) \(state) attempts=\(attempts) crashes=\(crashes)"
        if let nextRunAt { text += " at=\(nextRunAt.timeIntervalSince1970)" }
        if let claimedBy { text += " by=\(claimedBy)" }
        if let lastError { text += " error=\(lastError)" }
        return text
    }
}
