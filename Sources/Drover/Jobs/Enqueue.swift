import DroverPersistence
import DroverQueue
import Foundation

/// A database the Swift API enqueues into and schedules on: PostgreSQL (``Connection``) or a SQLite
/// file (``SQLiteConnection``), each with its store driver.
public protocol JobDatabase: SQLDatabase {
    associatedtype Driver: StoreDriver where Driver.Database == Self
}

extension Connection: JobDatabase {
    public typealias Driver = PostgresDriver
}

extension SQLiteConnection: JobDatabase {
    public typealias Driver = SQLiteDriver
}

extension JobDatabase {
    /// Drover's store in `schema` of this database.
    static func store(schema: String) throws -> JobStore<Driver> { try JobStore<Driver>(schema: schema) }
}

extension JobDatabase {
    /// Enqueues `job` and returns its id. Inside a transaction, the job is enqueued if and only if
    /// the transaction commits: workers never see a job whose data was rolled back.
    ///
    /// ```swift
    /// let db = try Connection("postgresql:///shop")   // or SQLiteConnection(path: "/var/lib/shop/drover.sqlite3")
    /// try db.withTransaction { tx in
    ///     try tx.execute("INSERT INTO users (id, email) VALUES (\(id), \(email))")
    ///     try tx.enqueue(SendWelcomeEmail(userID: id, address: email))
    /// }
    /// try db.enqueue(RebuildIndex(), runIn: .seconds(60))   // alone: it commits at once
    /// ```
    ///
    /// Options not given come from the job type (`queue`, `priority`, `maxAttempts`, `timeout`) and
    /// the job (`uniqueKey`): while a live job has the same unique key, its id is returned and
    /// nothing is enqueued.
    ///
    /// The current `ServiceContext` (swift-distributed-tracing) is injected by the bootstrapped
    /// instrument and stored with the job; the worker runs `perform` inside it, under a span
    /// `perform CLASS`. With no instrument, or no current context, nothing is stored.
    ///
    /// - Throws: `QueueError` (`invalidJob`) before anything is sent, so a bad job never aborts the
    ///   caller's transaction; `DatabaseError` when the database fails.
    @discardableResult
    public func enqueue<J: Job>(
        _ job: J, queue: String? = nil, priority: Int? = nil, runAt: Date? = nil, runIn delay: Duration? = nil,
        maxAttempts: Int? = nil, timeout: Duration? = nil, after: [Int] = [], runAfterFailure: Bool = false, batch: Int? = nil,
        schema: String = DroverSchema.defaultName
    ) throws -> Int {
        try enqueue([job], queue: queue, priority: priority, runAt: runAt, runIn: delay, maxAttempts: maxAttempts,
                    timeout: timeout, after: after, runAfterFailure: runAfterFailure, batch: batch, schema: schema)[0]
    }

    /// Enqueues `jobs` in one statement (waking each queue's workers once) and returns their ids.
    @discardableResult
    public func enqueue<J: Job>(
        _ jobs: [J], queue: String? = nil, priority: Int? = nil, runAt: Date? = nil, runIn delay: Duration? = nil,
        maxAttempts: Int? = nil, timeout: Duration? = nil, after: [Int] = [], runAfterFailure: Bool = false, batch: Int? = nil,
        schema: String = DroverSchema.defaultName
    ) throws -> [Int] {
        let store = try Self.store(schema: schema)
        let newJobs = try NewJob.jobs(jobs, queue: queue, priority: priority, runAt: runAt, runIn: delay, maxAttempts: maxAttempts,
                                      timeout: timeout, after: after, runAfterFailure: runAfterFailure, batch: batch)
        return try store.enqueue(newJobs, on: self)
    }

    /// Opens a batch, runs `body` with its id (enqueue its jobs there, with `batch: id`, of any
    /// types), and commits both together; returns the batch's id. A body that enqueued no job
    /// into the batch throws, and nothing is written.
    ///
    /// ```swift
    /// let batch = try db.withBatch(NewBatch(description: "album 7", onComplete: ZipAlbum.className)) { batch in
    ///     let thumbs = try db.enqueue(photos.map { Thumbnail(photo: $0) }, batch: batch)
    ///     try db.enqueue(ZipAlbum(album: 7), after: thumbs, batch: batch)
    /// }
    /// ```
    @discardableResult
    public func withBatch(_ batch: NewBatch, schema: String = DroverSchema.defaultName, _ body: (Int) throws -> Void) throws -> Int {
        let store = try Self.store(schema: schema)
        return try inWriteTransaction {
            let id = try store.openBatch(batch, on: self)
            try body(id)
            try store.requireJobs(inBatch: id, on: self)
            return id
        }
    }

    /// A batch with its counts, or nil.
    public func batch(_ id: Int, schema: String = DroverSchema.defaultName) throws -> BatchInfo? {
        try Self.store(schema: schema).batch(id, on: self)
    }

    /// The jobs of batch `id`, in id order, with their states and results, `limit` at a time after
    /// `after`: what a batch's callback reads.
    ///
    /// ```swift
    /// let done = try db.batchJobs(arguments.batchID)
    /// let thumbs = try done.compactMap { try $0.result?.decode(String.self) }
    /// ```
    public func batchJobs(_ id: Int, after: Int = 0, limit: Int = 1000, schema: String = DroverSchema.defaultName) throws -> [BatchJob] {
        try Self.store(schema: schema).batchJobs(id, after: after, limit: limit, on: self)
    }

    /// The result job `id` handed back, decoded as `type`: nil while it has not finished, or when it
    /// finished without one.
    public func result<T: Decodable>(of id: Int, as type: T.Type = T.self, schema: String = DroverSchema.defaultName) throws -> T? {
        guard let job = try Self.store(schema: schema).job(id, on: self) else {
            throw QueueError(.jobNotFound, "no job with id \(id)", jobIDs: [id])
        }
        return try job.result?.decode(T.self)
    }
}

extension NewJob {
    /// `jobs` as every Swift enqueue writes them (this API's and DroverPostgresNIO's): options not
    /// given from the job type and the job, the run time from `runAt` or `runIn`, and the
    /// enqueuer's trace context, restored around each job's perform.
    package static func jobs<J: Job>(
        _ jobs: [J], queue: String?, priority: Int?, runAt: Date?, runIn delay: Duration?, maxAttempts: Int?, timeout: Duration?,
        after: [Int] = [], runAfterFailure: Bool = false, batch: Int? = nil
    ) throws -> [NewJob] {
        let at = runAt ?? delay.map { Date().addingTimeInterval($0.seconds) }
        let trace = JobTrace.carrier()
        return try jobs.map { job in
            NewJob(
                J.className, arguments: try JSON(encoding: job), queue: queue ?? J.queue, priority: priority ?? J.priority,
                runAt: at, maxAttempts: maxAttempts ?? J.maxAttempts, timeout: timeout ?? J.timeout, uniqueKey: job.uniqueKey,
                traceContext: trace, after: after, runAfterFailure: runAfterFailure, batchID: batch)
        }
    }
}
