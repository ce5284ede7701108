import DroverPersistence

/// Drover's tables, as the numbered migrations that create them.
///
/// ```swift
/// let report = try DroverSchema.migrator(schema: "drover").migrate(on: db)
/// ```
public enum DroverSchema {
    /// The schema used when none is configured.
    public static let defaultName = "drover"

    /// Every migration, in order. Append only: a migration that has shipped is never edited.
    public static let migrations: [Migration] = [
        Migration(version: 1, name: "data_model", sql: dataModelSQL),
        Migration(version: 2, name: "enqueue_functions", sql: enqueueFunctionsSQL),
        Migration(version: 3, name: "job_control", sql: concurrencySQL + jobControlSQL),
        Migration(version: 4, name: "claim_all_index_for_star_only", sql: claimAllIndexSQL),
        Migration(version: 5, name: "admission_by_the_store", sql: admissionByTheStoreSQL),
        Migration(version: 6, name: "metrics", sql: metricsSQL),
        Migration(version: 7, name: "trace_context", sql: traceContextSQL),
        Migration(version: 8, name: "trace_context_in_sql_functions", sql: traceContextFunctionsSQL),
        Migration(version: 9, name: "failed_jobs_by_queue", sql: failedByQueueSQL),
        Migration(version: 10, name: "snoozes", sql: snoozesSQL),
        Migration(version: 11, name: "failure_hooks", sql: failureHooksSQL),
        Migration(version: 12, name: "class_pauses", sql: classPausesSQL),
        Migration(version: 13, name: "rate_limits", sql: rateLimitsSQL),
    ]

    /// Migration 13: rate limits (``RateLimitRule``). `rate_limit_rules` is kept in step with the
    /// configuration and the Swift job types by `drover start`, as concurrency rules are.
    /// `rate_limit_keys` has a row per key in use, which a claim locks while it decides whether
    /// the key's jobs start; `rate_limit_slots` holds the key's recent starts and the times its
    /// waiting jobs were given (one per waiting job). No foreign key to `jobs`: deleting a
    /// finished job would pay for a lookup here; the dispatcher prunes what no job waits for.
    static let rateLimitsSQL = """
        CREATE TABLE rate_limit_rules (
            class_name   text PRIMARY KEY,
            key_template text NOT NULL,
            max_starts   integer NOT NULL CONSTRAINT rate_limit_rules_max_starts CHECK (max_starts >= 1),
            period       interval NOT NULL CONSTRAINT rate_limit_rules_period CHECK (period > interval '0'),
            updated_at   timestamptz NOT NULL DEFAULT now()
        );
        COMMENT ON TABLE rate_limit_rules IS 'At most max_starts jobs of a class with one key start in any period.';
        CREATE TABLE rate_limit_keys (
            key        text PRIMARY KEY,
            max_starts integer NOT NULL,
            period     interval NOT NULL,
            updated_at timestamptz NOT NULL
        );
        COMMENT ON TABLE rate_limit_keys IS 'Rate-limit keys in use; a claim locks its key''s row while it decides.';
        CREATE TABLE rate_limit_slots (
            key     text NOT NULL REFERENCES rate_limit_keys (key) ON DELETE CASCADE,
            at      timestamptz NOT NULL,
            job_id  bigint NOT NULL,
            started boolean NOT NULL
        );
        COMMENT ON TABLE rate_limit_slots IS 'A rate-limit key''s recent starts, and the start times its waiting jobs were given.';
        CREATE INDEX rate_limit_slots_by_time ON rate_limit_slots (key, started, at);
        CREATE UNIQUE INDEX rate_limit_slots_one_per_waiting_job ON rate_limit_slots (job_id) WHERE NOT started;
        """

    /// Migration 12: job classes no worker claims until they are resumed, on every queue.
    static let classPausesSQL = """
        CREATE TABLE class_pauses (
            class_name text PRIMARY KEY,
            created_at timestamptz NOT NULL DEFAULT now()
        );
        COMMENT ON TABLE class_pauses IS 'Job classes no worker claims until they are resumed.';
        """

    /// Migration 11: the job class enqueued when a job of a class fails for good (`on_failure`),
    /// kept in step with the configuration and the Swift job types by `drover start`
    /// (``FailureHook``); `*` is the hook of every class without one.
    static let failureHooksSQL = """
        CREATE TABLE failure_hooks (
            class_name        text PRIMARY KEY,
            hook_class        text NOT NULL,
            include_cancelled boolean NOT NULL DEFAULT false,
            updated_at        timestamptz NOT NULL DEFAULT now()
        );
        COMMENT ON TABLE failure_hooks IS 'The job class enqueued when a job of a class (* for every class) fails for good.';
        """

    /// Migration 10: how many times each job snoozed (ran again later at its own request, spending
    /// no attempt), which ``SnoozeRules`` caps. A constant default: adding it rewrites nothing.
    static let snoozesSQL = """
        ALTER TABLE jobs ADD COLUMN snoozes integer NOT NULL DEFAULT 0 CONSTRAINT jobs_snoozes_range CHECK (snoozes >= 0);
        """

    /// Migration 9: the failed jobs of each queue, for `drover queues`, the dashboard and
    /// `/metrics`, which looked each failed job's queue up by id (20,000 lookups, about 35 ms, at
    /// a million jobs). A job has `failed_at` exactly while it has a `failed_executions` row, so
    /// the index holds the failed jobs only and costs nothing to enqueueing, claiming or
    /// finishing. Building it reads `jobs` once while it holds writes back (about a second a
    /// million jobs).
    static let failedByQueueSQL = """
        CREATE INDEX jobs_failed_by_queue ON jobs (queue_name) WHERE failed_at IS NOT NULL;
        """

    /// Migration 7: the trace context the Swift API's enqueue injects (a JSON object of strings:
    /// `traceparent`, `tracestate`, …), which the worker extracts around the job's `perform`. NULL
    /// for a job enqueued without one (the SQL functions, the CLI, an app with no instrument). A
    /// column without a default: adding it rewrites nothing.
    static let traceContextSQL = """
        ALTER TABLE jobs ADD COLUMN trace_context jsonb
            CONSTRAINT jobs_trace_context_object CHECK (trace_context IS NULL OR jsonb_typeof(trace_context) = 'object');
        COMMENT ON COLUMN jobs.trace_context IS
            'The enqueuer''s trace context (swift-distributed-tracing, injected at enqueue), restored around perform; NULL without one.';
        """

    /// Migration 5: concurrency admission is the store's (``Admission``, in Swift, the same on
    /// every backend). A job with a concurrency key that a SQL caller enqueues (`enqueue`,
    /// `enqueue_many`) and that is due waits in `scheduled_executions`, due now, and the
    /// dispatcher admits it by the store's rules within its polling interval. The plpgsql
    /// functions `concurrency_signal`, `concurrency_recount` and `concurrency_expire` of
    /// migration 3 stay for processes of an earlier version during an upgrade (they keep the same
    /// counts); Drover no longer calls them.
    static let admissionByTheStoreSQL = """
        CREATE OR REPLACE FUNCTION concurrency_admit(job_ids bigint[]) RETURNS integer
        LANGUAGE plpgsql
        SET search_path FROM CURRENT
        AS $function$
        BEGIN
            INSERT INTO scheduled_executions (job_id, queue_name, priority, scheduled_at)
            SELECT id, queue_name, priority, now() FROM jobs WHERE id = ANY(job_ids) ORDER BY id;
            RETURN 0;
        END
        $function$;
        COMMENT ON FUNCTION concurrency_admit(bigint[]) IS
            'Hands due jobs with a concurrency key to the dispatcher, which admits them by the store''s rules.';
        COMMENT ON FUNCTION concurrency_signal(text[]) IS 'Kept for processes of Drover before migration 5; not called since.';
        COMMENT ON FUNCTION concurrency_recount(text) IS 'Kept for processes of Drover before migration 5; not called since.';
        COMMENT ON FUNCTION concurrency_expire(integer) IS 'Kept for processes of Drover before migration 5; not called since.';
        """

    /// Migration 4: the `(priority, job_id)` index serves only the `*` claim. Workers keep one
    /// generic plan per prepared claim (`plan_cache_mode`), chosen without the queue's name; with
    /// both indexes usable, a named queue's claim could get this one and filter by name, stepping
    /// over every ready job of the other queues. A predicate that only the `*` claim states
    /// (`job_id > 0`, true of every job) keeps the planner from taking it for anything else.
    static let claimAllIndexSQL = """
        DROP INDEX ready_executions_claim_all;
        CREATE INDEX ready_executions_claim_all ON ready_executions (priority, job_id) WHERE job_id > 0;
        """

    /// The version a fully migrated database is at.
    public static var latestVersion: Int { migrations.last!.version }

    /// A migrator for Drover's tables in `schema`.
    public static func migrator(schema: String = defaultName) throws(DatabaseError) -> Migrator {
        try Migrator(schema: schema, migrations: migrations)
    }
}
