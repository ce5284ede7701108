import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import PropertyBased
import Testing

/// Random sequences of store operations, run side by side on PostgreSQL, SQLite and the reference
/// model (``StoreModel``); after every step, what each operation answered and what every job looks
/// like (state, attempts, crashes, next run time, claim holder, last error) must be the same on all
/// three, and an error's words the same on both backends.
///
/// `make test` runs a fixed seed: ``defaultSequences`` sequences of 50 to 70 steps.
/// `make soak-store SEED=… N=…` runs as many as asked (`DROVER_STORE_SEED`: a seed as this test
/// prints it, or `random`; `DROVER_STORE_SEQUENCES`). A sequence that diverges is shrunk by the
/// property-based testing library to a minimal one, printed with its seed.
@Suite("Differential: store operations on PostgreSQL, SQLite and a reference model agree")
struct DifferentialTests {
    static let defaultSeed = "ZHJvdmVyIGlzc3VlIDE1OiBkaWZmZXJlbnRpYWwgMS4="
    static let defaultSequences = 200
    static let steps = 50...70

    @Test("random sequences of enqueue, claim, finish, fail, retry, discard, cancel, release, prune, dispatch, pause, clear")
    func sequencesAgree() async throws {
        let environment = ProcessInfo.processInfo.environment
        let count = Int(environment["DROVER_STORE_SEQUENCES"] ?? "") ?? Self.defaultSequences
        let seed = environment["DROVER_STORE_SEED"].map { $0 == "random" ? Xoshiro().currentSeed : $0 } ?? Self.defaultSeed
        guard var rng = Xoshiro(seed: seed) else {
            Issue.record("DROVER_STORE_SEED=\(seed) is not a seed: give one this test printed (base64 of 32 bytes), or random")
            return
        }
        print("differential store test: \(count) sequences from seed \(seed)")
        let harness = try Harness()
        let generator = StoreCase.generator(count: Self.steps)
        var steps = 0
        let start = ContinuousClock.now
        for index in 0..<count {
            let caseSeed = rng.currentSeed
            let value = generator.run(using: &rng)
            steps += value.steps.count
            guard let divergence = try harness.run(value) else { continue }
            Issue.record("""
                sequence \(index + 1) of seed \(seed) diverged: \(divergence)
                reproduce it alone: DROVER_STORE_SEED=\(caseSeed) DROVER_STORE_SEQUENCES=1 make soak-store
                """)
            // The library shrinks it to a minimal sequence and prints that.
            await propertyCheck(count: 1, input: Generator(run: { _ in value }, shrink: { StoreCase.shrinks($0) })) { candidate in
                if let divergence = try harness.run(candidate) { Issue.record("\(divergence)") }
            }
            return
        }
        print("differential store test: \(count) sequences, \(steps) steps, no divergence, in \(ContinuousClock.now - start)")
    }
}

/// One store per backend, emptied before each sequence, and the model beside them.
final class Harness {
    let clock = ManualClock()
    let postgres: BoundTestStore<PostgresDriver>
    let sqlite: BoundTestStore<SQLiteDriver>
    private let directory: TemporaryDirectory
    private let schema: String
    private var records: [Backend: [Int: Record]] = [:]

    static let rules: [ConcurrencyRule] = [
        ConcurrencyRule(className: "K", keyTemplate: "{k}", maxRunning: 2, duration: .seconds(600)),
        ConcurrencyRule(className: "D", keyTemplate: "d", maxRunning: 1, duration: .seconds(600), onConflict: .discard),
    ]
    nonisolated(unsafe) static let modelRules: [String: StoreModel.Rule] = [
        "K": .init(maxRunning: 2, discard: false, render: { $0["k"] }),
        "D": .init(maxRunning: 1, discard: true, render: { _ in "d" }),
    ]
    static let retry = RetryPolicy(baseDelay: .seconds(5), maxDelay: .seconds(3600), jitter: 0)
    static let queues = ["default", "mail.out", "mail.in", "critical"]
    static let patterns: [[String]] = [
        ["*"], ["critical", "*"], ["mail.out", "mail*"], ["mail*", "mail.out", "*"], ["default"], ["critical", "default", "mail*"],
        ["mail.in", "mail.out"], ["critical", "critical", "mail*"],
    ]

    init() throws {
        schema = TestDatabase.uniqueSchemaName()
        directory = try TemporaryDirectory("drover-differential")
        let url = try TestDatabase.url()
        let sqliteURL = "sqlite://" + directory.url.appendingPathComponent("drover.sqlite3").path
        let pg = try PostgresDriver.open(url: url, options: Self.options(schema: schema, keepFinished: true, clock: clock))
        postgres = BoundTestStore(store: pg.store, database: pg.database, backend: .postgresql) { throw CancellationError() }
        let lite = try SQLiteDriver.open(url: sqliteURL, options: Self.options(schema: "drover", keepFinished: true, clock: clock))
        sqlite = BoundTestStore(store: lite.store, database: lite.database, backend: .sqlite) { throw CancellationError() }
    }

    deinit {
        if let cleanup = try? TestDatabase.connect() {
            _ = try? cleanup.execute("DROP SCHEMA IF EXISTS \(SQLIdentifier(schema)) CASCADE")
        }
    }

    static func options(schema: String, keepFinished: Bool, clock: ManualClock) -> StoreOptions {
        StoreOptions(schema: schema, preserveFinishedJobs: keepFinished, retryPolicy: retry, clock: clock.storeClock,
                     applicationName: "drover-differential", migrating: .always)
    }

    private var backends: [any TestStore] { [postgres, sqlite] }

    /// The stores on this case's setting, emptied, with the rules and three workers.
    private func reset(keepFinished: Bool) throws -> [any TestStore] {
        clock.set(to: Date(timeIntervalSince1970: 1_800_000_000))
        let tables = ["ready_executions", "claimed_executions", "scheduled_executions", "blocked_executions", "failed_executions",
                      "waiting_executions", "job_dependencies", "recurring_executions", "jobs", "batches", "processes", "pauses",
                      "semaphores", "concurrency_rules", "recurring_tasks"]
        try postgres.sql(SQL(unsafeRaw: "TRUNCATE " + tables.map { postgres.table($0).quoted }.joined(separator: ", ") + " RESTART IDENTITY"))
        for table in tables { try sqlite.sql("DELETE FROM \(sqlite.table(table))") }
        try sqlite.sql("DELETE FROM \(sqlite.table("sqlite_sequence"))")
        var pgStore = postgres.store
        pgStore.preserveFinishedJobs = keepFinished
        var liteStore = sqlite.store
        liteStore.preserveFinishedJobs = keepFinished
        let stores: [any TestStore] = [
            BoundTestStore(store: pgStore, database: postgres.database, backend: .postgresql) { throw CancellationError() },
            BoundTestStore(store: liteStore, database: sqlite.database, backend: .sqlite) { throw CancellationError() },
        ]
        records = [:]
        for store in stores {
            try store.syncConcurrencyRules(Self.rules)
            for n in 1...3 { records[store.backend, default: [:]][n] = try store.register("worker-\(n)") }
        }
        return stores
    }

    /// Runs `value`'s steps on both backends and the model; the first divergence, or nil.
    func run(_ value: StoreCase) throws -> String? {
        let stores = try reset(keepFinished: value.keepFinished)
        let model = StoreModel(now: clock.now, keepFinished: value.keepFinished, rules: Self.modelRules, retry: Self.retry)
        for _ in 1...3 { _ = model.register() }
        for (number, step) in value.steps.enumerated() {
            let action = Action(step, model: model)
            let expected = action.apply(to: model)
            if case .tick(let seconds) = action { clock.advance(by: seconds) }
            var answers: [String] = []
            var words: [String] = []
            for store in stores {
                let (answer, message) = action.apply(to: store, records: &records[store.backend, default: [:]])
                answers.append(answer)
                words.append(message ?? "")
            }
            let where_ = "step \(number + 1), \(step) = \(action)"
            for (store, answer) in zip(stores, answers) where answer != expected {
                return "\(where_): \(store.backend) answered \(answer), the model \(expected)"
            }
            if words[0] != words[1] {
                return "\(where_): PostgreSQL said \"\(words[0])\", SQLite \"\(words[1])\""
            }
            let expectedJobs = model.visible
            for store in stores {
                let jobs = try store.list(limit: 1_000_000).reversed().map { job in
                    StoreModel.describe(id: job.id, state: job.state.rawValue, attempts: job.attempts, crashes: job.crashes,
                                        nextRunAt: job.nextRunAt, claimedBy: job.claimedBy, lastError: job.lastError?.errorClass)
                }
                if jobs != expectedJobs {
                    let diff = zip(jobs, expectedJobs).filter { $0 != $1 }.first.map { "\($0.0) where the model has \($0.1)" }
                        ?? "\(jobs.count) jobs where the model has \(expectedJobs.count)"
                    return "\(where_): on \(store.backend) \(diff)"
                }
                var batches: [String] = []
                let batchCount = try store.count("batches")
                for id in stride(from: 1, through: batchCount, by: 1) {
                    guard let batch = try store.batch(id) else { continue }
                    let shown = StoreModel.Batch(
                        id: batch.id, onSuccess: batch.onSuccess, onComplete: batch.onComplete, onFailure: batch.onFailure, total: batch.total,
                        pending: batch.pending, finished: batch.finished, failed: batch.failed, success: batch.successJobID,
                        complete: batch.completeJobID, failure: batch.failureJobID, completed: batch.completedAt != nil)
                    batches.append(StoreModel.describe(shown))
                }
                if batches != model.visibleBatches {
                    return "\(where_): on \(store.backend) batches \(batches) where the model has \(model.visibleBatches)"
                }
                if number % 10 == 9 || number == value.steps.count - 1 {
                    let violations = try store.invariantViolations()
                    if !violations.isEmpty { return "\(where_): \(store.backend) broke its invariant: \(violations)" }
                }
            }
        }
        return nil
    }
}

extension ManualClock {
    func set(to date: Date) { advance(by: date.timeIntervalSince(now)) }
}

/// A step made concrete against the model's state: the same arguments for every backend.
enum Action: CustomStringConvertible {
    case enqueue([StoreModel.NewJobSpec])
    case enqueueBatch([StoreModel.NewJobSpec], success: String?, complete: String?, failure: String?)
    case claim(process: Int, queues: [String], limit: Int)
    case finish([Int], process: Int)
    case fail(Int, process: Int, permanent: Bool, maxAttempts: Int?)
    case release(process: Int, jobs: [Int]?, crash: Bool)
    case cancel(Int)
    case retry([Int])
    case discard([Int])
    case retryAll(batch: Int)
    case discardAll
    case dispatch(batch: Int)
    case tick(Double)
    case pause(String)
    case resume(String)
    case clear(String, batch: Int)
    case heartbeat(Int)
    case prune
    case expire
    case recoverOrphans
    case register

    init(_ step: Step, model: StoreModel) {
        let (a, b, c) = (step.a, step.b, step.c)
        let queues = Harness.queues
        /// A registered process, or (7, or none left) one that never was.
        func process(_ n: Int) -> Int {
            let live = model.processes.keys.sorted()
            return n == 7 || live.isEmpty ? 99 : live[n % live.count]
        }
        /// A job that exists or existed, or (7, or none yet) one that never did.
        func job(_ n: Int) -> Int {
            n == 7 || model.everyID.isEmpty ? 9_000 + n : model.everyID[(n * 5 + c) % model.everyID.count]
        }
        func failedJobs() -> [Int] { model.jobs.values.filter { $0.state == .failed }.map(\.id).sorted() }
        switch Step.operations[step.kind % Step.kinds] {
        case "enqueue":
            self = .enqueue((0...(a % 3)).map { i in
                .init(className: "W", queue: queues[(b + i) % 4], priority: (c + i) % 3 - 1,
                      runAt: (a + i) % 4 == 3 ? model.now.addingTimeInterval(Double(30 * (i + 1))) : nil, uniqueKey: nil, arguments: [:])
            })
        case "enqueueUnique":
            let keyed = c % 2 == 1
            self = .enqueue([.init(className: keyed ? "K" : "W", queue: queues[b % 4], priority: 0,
                                   runAt: c % 3 == 0 ? model.now.addingTimeInterval(60) : nil, uniqueKey: "u\(a % 3)",
                                   arguments: keyed ? ["k": a % 2 == 0 ? "a" : "b"] : [:])])
        case "enqueueKeyed":
            self = .enqueue((0...(b % 3)).map { i in
                let discard = a % 4 == 3
                return .init(className: discard ? "D" : "K", queue: queues[(a + i) % 4], priority: (c + i) % 3 - 1,
                             runAt: c == 7 ? model.now.addingTimeInterval(45) : nil, uniqueKey: nil,
                             arguments: discard ? [:] : (b == 7 && i == 0 ? [:] : ["k": (a + i) % 2 == 0 ? "a" : "b"]))
            })
        case "enqueueAfter":
            // One or two jobs that exist (or existed, or never did), maybe into a batch.
            var after = [job(b)]
            if a % 2 == 1 {
                let other = job((b + 3) % 7)
                if other != after[0] { after.append(other) }
            }
            let keyed = c % 4 == 1
            let batches = model.batches.keys.sorted()
            self = .enqueue([.init(className: keyed ? "K" : "W", queue: queues[(a + c) % 4], priority: c % 3 - 1,
                                   runAt: a % 4 == 3 ? model.now.addingTimeInterval(40) : nil, uniqueKey: nil,
                                   arguments: keyed ? ["k": b % 2 == 0 ? "a" : "b"] : [:], after: after, runAfterFailure: c % 3 == 0,
                                   batch: b % 2 == 0 && !batches.isEmpty ? batches[(a + b) % batches.count] : nil)])
        case "enqueueBatch":
            self = .enqueueBatch((0...(a % 3)).map { i in
                .init(className: (b + i) % 5 == 4 ? "D" : "W", queue: queues[(c + i) % 4], priority: 0,
                      runAt: (a + i) % 5 == 4 ? model.now.addingTimeInterval(20) : nil, uniqueKey: nil, arguments: [:])
            }, success: a % 2 == 0 ? "CbS" : nil, complete: b % 3 != 2 ? "CbC" : nil, failure: c % 2 == 0 ? "CbF" : nil)
        case "claim":
            self = .claim(process: process(a), queues: Harness.patterns[b % Harness.patterns.count], limit: 1 + c % 4)
        case "finish":
            let p = process(a)
            var ids = Array(model.claimed(by: p).prefix(c % 3 + 1))
            if b % 3 == 0 { ids.append(job(b)) }
            if c == 7, let first = ids.first { ids.append(first) }
            self = .finish(ids, process: p)
        case "fail":
            let p = process(a)
            let mine = model.claimed(by: p)
            self = .fail(mine.isEmpty || b == 7 ? job(b) : mine[b % mine.count], process: p, permanent: c % 4 == 0,
                         maxAttempts: c % 5 == 1 ? 1 : nil)
        case "releaseGraceful":
            let p = process(a)
            let mine = model.claimed(by: p)
            self = .release(process: p, jobs: c % 2 == 0 || mine.isEmpty ? nil : [mine[b % mine.count], job(b)], crash: false)
        case "releaseCrashed":
            self = .release(process: process(a), jobs: nil, crash: true)
        case "cancel":
            self = .cancel(job(b))
        case "retryFailed", "discardFailed":
            let failed = failedJobs()
            var ids = failed.isEmpty ? [] : [failed[b % failed.count]]
            if c % 3 == 0 { ids.append(job(c)) }
            if c % 2 == 1, let first = ids.first { ids.append(first) }
            if ids.isEmpty { ids = [job(a)] }
            self = Step.operations[step.kind % Step.kinds] == "retryFailed" ? .retry(ids) : .discard(ids)
        case "retryOrDiscardAll":
            self = a % 3 == 2 ? .discardAll : .retryAll(batch: 1 + b % 3)
        case "dispatch":
            self = .dispatch(batch: 1 + a % 3)
        case "tick":
            self = .tick([1, 5, 30, 61, 600, 3600, 2, 10][a % 8])
        case "pauseOrResume":
            self = b % 2 == 0 ? .pause(queues[a % 4]) : .resume(queues[a % 4])
        case "clear":
            self = .clear(queues[a % 4], batch: 1 + b % 3)
        case "heartbeat":
            self = .heartbeat(process(a))
        case "prune":
            self = .prune
        case "expireOrRecover":
            self = a % 2 == 0 ? .expire : .recoverOrphans
        default:
            self = .register
        }
    }

    var description: String {
        switch self {
        case .enqueue(let specs):
            return "enqueue " + specs.map { spec in
                var text = "\(spec.className)@\(spec.queue)/\(spec.priority)"
                if let key = spec.uniqueKey { text += " unique=\(key)" }
                if let k = spec.arguments["k"] { text += " k=\(k)" }
                if spec.runAt != nil { text += " later" }
                if !spec.after.isEmpty { text += " after=\(spec.after)\(spec.runAfterFailure ? " anyway" : "")" }
                if let batch = spec.batch { text += " batch=\(batch)" }
                return text
            }.joined(separator: ", ")
        case .enqueueBatch(let specs, let success, let complete, let failure):
            return "batch of " + specs.map { "\($0.className)@\($0.queue)\($0.runAt == nil ? "" : " later")" }.joined(separator: ", ")
                + " callbacks \(success ?? "-")/\(complete ?? "-")/\(failure ?? "-")"
        case .claim(let p, let queues, let limit): return "claim by \(p) from \(queues) up to \(limit)"
        case .finish(let ids, let p): return "finish \(ids) by \(p)"
        case .fail(let id, let p, let permanent, let max): return "fail \(id) by \(p)\(permanent ? " permanently" : "")\(max.map { " max \($0)" } ?? "")"
        case .release(let p, let ids, let crash): return "release \(ids.map { "\($0)" } ?? "all") of \(p)\(crash ? " crashed" : "")"
        case .cancel(let id): return "cancel \(id)"
        case .retry(let ids): return "retry \(ids)"
        case .discard(let ids): return "discard \(ids)"
        case .retryAll(let batch): return "retry all by \(batch)"
        case .discardAll: return "discard all"
        case .dispatch(let batch): return "dispatch \(batch)"
        case .tick(let seconds): return "tick \(seconds) s"
        case .pause(let queue): return "pause \(queue)"
        case .resume(let queue): return "resume \(queue)"
        case .clear(let queue, let batch): return "clear \(queue) by \(batch)"
        case .heartbeat(let p): return "heartbeat \(p)"
        case .prune: return "prune"
        case .expire: return "expire"
        case .recoverOrphans: return "recover orphans"
        case .register: return "register"
        }
    }

    static let crashMaximum = 2
    static let pruneThreshold = 60.0

    /// What the model answers.
    func apply(to model: StoreModel) -> String {
        do {
            switch self {
            case .enqueue(let specs): return "\(try model.enqueue(specs))"
            case .enqueueBatch(let specs, let success, let complete, let failure):
                let (batch, ids) = try model.enqueueBatch(specs, onSuccess: success, onComplete: complete, onFailure: failure)
                return "batch \(batch) \(ids)"
            case .claim(let p, let queues, let limit):
                return "claimed \(model.claim(p, (try! QueueSelection(queues)).patterns, limit: limit))"
            case .finish(let ids, let p):
                let (finished, dropped) = model.finish(ids, by: p)
                return "finished \(finished) dropped \(dropped)"
            case .fail(let id, let p, let permanent, let max):
                switch model.fail(id, by: p, permanent: permanent, maxAttempts: max) {
                case .retry(let at, let attempts): return "retry at \(at.timeIntervalSince1970) after \(attempts)"
                case .failed(let attempts): return "failed after \(attempts)"
                case .dropped: return "dropped"
                }
            case .release(let p, let ids, let crash):
                let outcome = model.release(p, only: ids, crash: crash ? ("WorkerCrashed", Self.crashMaximum) : nil)
                return "released \(outcome.released) failed \(outcome.failed)"
            case .cancel(let id):
                switch try model.cancel(id) {
                case .discarded(let state): return "discarded \(state.rawValue)"
                case .requested(let p): return "requested by \(p)"
                }
            case .retry(let ids): return "\(try model.retryFailed(ids))"
            case .discard(let ids): return "\(try model.discardFailed(ids))"
            case .retryAll(let batch): return "\(model.retryAllFailed(batchSize: batch))"
            case .discardAll: return "\(model.discardAllFailed())"
            case .dispatch(let batch): return "moved \(model.dispatchDue(batchSize: batch))"
            case .tick(let seconds):
                model.tick(seconds)
                return "ok"
            case .pause(let queue): return "\(model.pause(queue))"
            case .resume(let queue): return "\(model.resume(queue))"
            case .clear(let queue, let batch):
                let (ready, scheduled) = model.clear(queue, batchSize: batch)
                return "cleared \(ready) \(scheduled)"
            case .heartbeat(let p): return model.heartbeat(p) ? "ok" : "gone"
            case .prune:
                return "pruned " + model.prune(olderThan: Self.pruneThreshold, maxCrashes: Self.crashMaximum)
                    .map { "\($0.id) released \($0.released) failed \($0.failed)" }.joined(separator: "; ")
            case .expire: return "moved 0"
            case .recoverOrphans:
                let outcome = model.recoverOrphans(maxCrashes: Self.crashMaximum)
                return "released \(outcome.released) failed \(outcome.failed)"
            case .register: return "process \(model.register())"
            }
        } catch {
            return "error \(error)"
        }
    }

    /// What a backend answers, and the words of its error if it failed.
    func apply(to store: any TestStore, records: inout [Int: Record]) -> (String, String?) {
        do {
            switch self {
            case .enqueue(let specs):
                let jobs = specs.map { spec in
                    NewJob(spec.className, arguments: try! JSON(encoding: spec.arguments), queue: spec.queue, priority: spec.priority,
                           runAt: spec.runAt, uniqueKey: spec.uniqueKey, after: spec.after, runAfterFailure: spec.runAfterFailure,
                           batchID: spec.batch)
                }
                return ("\(try store.enqueue(jobs))", nil)
            case .enqueueBatch(let specs, let success, let complete, let failure):
                let jobs = specs.map { spec in
                    NewJob(spec.className, arguments: try! JSON(encoding: spec.arguments), queue: spec.queue, priority: spec.priority,
                           runAt: spec.runAt)
                }
                let (batch, ids) = try store.enqueueBatch(NewBatch(onSuccess: success, onComplete: complete, onFailure: failure), jobs: jobs)
                return ("batch \(batch) \(ids)", nil)
            case .claim(let p, let queues, let limit):
                return ("claimed \(try store.claim(p, try QueueSelection(queues), limit: limit).map(\.id))", nil)
            case .finish(let ids, let p):
                let outcome = try store.finish(ids, by: p)
                return ("finished \(outcome.finished) dropped \(outcome.dropped)", nil)
            case .fail(let id, let p, let permanent, let max):
                switch try store.fail(id, by: p, permanent: permanent, maxAttempts: max) {
                case .retryScheduled(let at, let attempts): return ("retry at \(at.timeIntervalSince1970) after \(attempts)", nil)
                case .failed(let attempts): return ("failed after \(attempts)", nil)
                case .dropped: return ("dropped", nil)
                }
            case .release(let p, let ids, let crash):
                let reason: ReleaseReason = crash
                    ? .crashed(JobFailure(errorClass: "WorkerCrashed", message: "killed", signal: 9), maxCrashes: Self.crashMaximum)
                    : .graceful
                let outcome = try store.release(p, jobs: ids, reason: reason)
                return ("released \(outcome.released) failed \(outcome.failed)", nil)
            case .cancel(let id):
                switch try store.cancel(id) {
                case .discarded(let state): return ("discarded \(state.rawValue)", nil)
                case .requested(let p): return ("requested by \(p)", nil)
                }
            case .retry(let ids): return ("\(try store.retryFailed(ids))", nil)
            case .discard(let ids): return ("\(try store.discardFailed(ids))", nil)
            case .retryAll(let batch): return ("\(try store.retryAllFailed(batchSize: batch))", nil)
            case .discardAll: return ("\(try store.discardAllFailed(batchSize: 2))", nil)
            case .dispatch(let batch): return ("moved \(try store.dispatchDue(batchSize: batch))", nil)
            case .tick: return ("ok", nil)
            case .pause(let queue): return ("\(try store.pause(queue))", nil)
            case .resume(let queue): return ("\(try store.resume(queue))", nil)
            case .clear(let queue, let batch):
                let (ready, scheduled) = try store.clear(queue, batchSize: batch)
                return ("cleared \(ready) \(scheduled)", nil)
            case .heartbeat(let p):
                guard let record = records[p] else { return ("gone", nil) }
                do {
                    try store.heartbeat(record, at: store.currentTime())
                    return ("ok", nil)
                } catch let error as DatabaseError where error.code == .recordNotFound {
                    records[p] = nil
                    return ("gone", nil)
                }
            case .prune:
                let pruned = try store.prune(olderThan: .seconds(Self.pruneThreshold), sparing: [], maxCrashes: Self.crashMaximum)
                for process in pruned { records[process.id] = nil }
                return ("pruned " + pruned.map { "\($0.id) released \($0.jobs.released) failed \($0.jobs.failed)" }
                    .joined(separator: "; "), nil)
            case .expire: return ("moved \(try store.expireConcurrency(batchSize: 100))", nil)
            case .recoverOrphans:
                let outcome = try store.recoverOrphanedClaims(maxCrashes: Self.crashMaximum)
                return ("released \(outcome.released) failed \(outcome.failed)", nil)
            case .register:
                let record = try store.register("worker-\(UUID().uuidString.prefix(8))")
                let id = try record.get("id", as: Int.self)
                records[id] = record
                return ("process \(id)", nil)
            }
        } catch let error as QueueError {
            return ("error \(StoreModel.Failure(code: error.code, jobIDs: error.jobIDs))", error.message)
        } catch {
            return ("unexpected \(type(of: error)): \(error)", "\(error)")
        }
    }
}
