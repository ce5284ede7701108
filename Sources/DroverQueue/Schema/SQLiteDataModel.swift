import DroverPersistence

extension DroverSchema {
    /// The SQLite migrations: the same tables, columns and constraints as the PostgreSQL data model
    /// (migrations 1 to 3), in SQLite's dialect. `{schema}` stands for the schema's quoted name (the
    /// attached database file, see `SQLiteConnection`).
    ///
    /// Types: ids are `INTEGER PRIMARY KEY` (rowids); timestamps are text in PostgreSQL's format
    /// (`2026-11-27 03:00:00.5+00`), so that they sort and decode alike; JSON is text checked by
    /// `json_valid`; intervals are seconds (`REAL`); booleans are 0 and 1.
    public static let sqliteMigrations: [Migration] = [
        Migration(version: 1, name: "data_model", sql: sqliteDataModelSQL),
        Migration(version: 2, name: "unique_ids_and_fixed_width_times", sql: sqliteRebuildSQL),
        Migration(version: 3, name: "metrics", sql: sqliteMetricsSQL),
        Migration(version: 4, name: "trace_context", sql: sqliteTraceContextSQL),
        Migration(version: 5, name: "failed_jobs_by_queue", sql: sqliteFailedByQueueSQL),
        Migration(version: 6, name: "snoozes", sql: sqliteSnoozesSQL),
        Migration(version: 7, name: "failure_hooks", sql: sqliteFailureHooksSQL),
        Migration(version: 8, name: "class_pauses", sql: sqliteClassPausesSQL),
        Migration(version: 9, name: "rate_limits", sql: sqliteRateLimitsSQL),
        Migration(version: 10, name: "batches_and_dependencies", sql: sqliteBatchesSQL),
    ]

    /// Migration 10: batches, dependencies and results, as PostgreSQL's migration 14.
    static let sqliteBatchesSQL = """
        CREATE TABLE {schema}.batches (
            id             INTEGER PRIMARY KEY AUTOINCREMENT,
            description    TEXT,
            on_success     TEXT,
            on_complete    TEXT,
            on_failure     TEXT,
            callback_queue TEXT NOT NULL DEFAULT 'default',
            total          INTEGER NOT NULL DEFAULT 0,
            pending        INTEGER NOT NULL DEFAULT 0,
            finished       INTEGER NOT NULL DEFAULT 0,
            failed         INTEGER NOT NULL DEFAULT 0,
            success_job_id  INTEGER,
            complete_job_id INTEGER,
            failure_job_id  INTEGER,
            completed_at   TEXT,
            created_at     TEXT NOT NULL,
            updated_at     TEXT NOT NULL,
            CHECK (pending >= 0 AND finished >= 0 AND failed >= 0 AND pending + finished + failed = total)
        );
        ALTER TABLE {schema}.jobs ADD COLUMN batch_id INTEGER;
        ALTER TABLE {schema}.jobs ADD COLUMN result TEXT CHECK (result IS NULL OR json_valid(result));
        ALTER TABLE {schema}.jobs ADD COLUMN has_dependants INTEGER NOT NULL DEFAULT 0 CHECK (has_dependants IN (0, 1));
        CREATE INDEX {schema}.jobs_by_batch ON jobs (batch_id, id) WHERE batch_id IS NOT NULL;
        CREATE TABLE {schema}.job_dependencies (
            job_id     INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
            depends_on INTEGER NOT NULL,
            outcome    TEXT CHECK (outcome IN ('finished', 'failed')),
            result     TEXT CHECK (result IS NULL OR json_valid(result)),
            run_after_failure INTEGER NOT NULL DEFAULT 0 CHECK (run_after_failure IN (0, 1)),
            PRIMARY KEY (job_id, depends_on)
        ) WITHOUT ROWID;
        CREATE INDEX {schema}.job_dependencies_by_dependency ON job_dependencies (depends_on);
        CREATE TABLE {schema}.waiting_executions (
            job_id            INTEGER PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
            queue_name        TEXT NOT NULL,
            priority          INTEGER NOT NULL DEFAULT 0,
            created_at        TEXT NOT NULL
        );
        """

    /// Migration 9: rate limits, as PostgreSQL's migration 13.
    static let sqliteRateLimitsSQL = """
        CREATE TABLE {schema}.rate_limit_rules (
            class_name   TEXT PRIMARY KEY,
            key_template TEXT NOT NULL,
            max_starts   INTEGER NOT NULL CHECK (max_starts >= 1),
            period       REAL NOT NULL CHECK (period > 0),
            updated_at   TEXT NOT NULL
        );
        CREATE TABLE {schema}.rate_limit_keys (
            key        TEXT PRIMARY KEY,
            max_starts INTEGER NOT NULL,
            period     REAL NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE TABLE {schema}.rate_limit_slots (
            key     TEXT NOT NULL REFERENCES rate_limit_keys (key) ON DELETE CASCADE,
            at      TEXT NOT NULL,
            job_id  INTEGER NOT NULL,
            started INTEGER NOT NULL CHECK (started IN (0, 1))
        );
        CREATE INDEX {schema}.rate_limit_slots_by_time ON rate_limit_slots (key, started, at);
        CREATE UNIQUE INDEX {schema}.rate_limit_slots_one_per_waiting_job ON rate_limit_slots (job_id) WHERE NOT started;
        """

    /// Migration 8: paused job classes, as PostgreSQL's migration 12.
    static let sqliteClassPausesSQL = """
        CREATE TABLE {schema}.class_pauses (
            class_name TEXT PRIMARY KEY,
            created_at TEXT NOT NULL
        );
        """

    /// Migration 7: failure hooks, as PostgreSQL's migration 11.
    static let sqliteFailureHooksSQL = """
        CREATE TABLE {schema}.failure_hooks (
            class_name        TEXT PRIMARY KEY,
            hook_class        TEXT NOT NULL,
            include_cancelled INTEGER NOT NULL DEFAULT 0 CHECK (include_cancelled IN (0, 1)),
            updated_at        TEXT NOT NULL
        );
        """

    /// Migration 6: each job's snoozes, as PostgreSQL's migration 10.
    static let sqliteSnoozesSQL = """
        ALTER TABLE {schema}.jobs ADD COLUMN snoozes INTEGER NOT NULL DEFAULT 0 CHECK (snoozes >= 0);
        """

    /// Migration 5: the failed jobs of each queue, as PostgreSQL's migration 9.
    static let sqliteFailedByQueueSQL = """
        CREATE INDEX {schema}.jobs_failed_by_queue ON jobs (queue_name) WHERE failed_at IS NOT NULL;
        """

    /// Migration 4: the trace context, as PostgreSQL's migration 7 (a JSON object, as text).
    static let sqliteTraceContextSQL = """
        ALTER TABLE {schema}.jobs ADD COLUMN trace_context TEXT
            CHECK (trace_context IS NULL OR (json_valid(trace_context) AND json_type(trace_context) = 'object'));
        """

    /// The current time as text in PostgreSQL's timestamptz format, for SQLite defaults
    /// (migration 1: milliseconds).
    static let sqliteNow = "(strftime('%Y-%m-%d %H:%M:%f', 'now') || '+00')"

    static let sqliteDataModelSQL = """
        CREATE TABLE {schema}.jobs (
            id              INTEGER PRIMARY KEY,
            queue_name      TEXT NOT NULL CHECK (length(queue_name) BETWEEN 1 AND 128),
            class_name      TEXT NOT NULL CHECK (length(class_name) BETWEEN 1 AND 256),
            arguments       TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(arguments) AND json_type(arguments) IN ('object', 'array')),
            priority        INTEGER NOT NULL DEFAULT 0,
            scheduled_at    TEXT NOT NULL DEFAULT \(sqliteNow),
            attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
            max_attempts    INTEGER NOT NULL DEFAULT 5 CHECK (max_attempts >= 1),
            crashes         INTEGER NOT NULL DEFAULT 0 CHECK (crashes >= 0),
            timeout         REAL CHECK (timeout IS NULL OR timeout > 0),
            concurrency_key TEXT,
            unique_key      TEXT,
            last_error      TEXT CHECK (last_error IS NULL OR json_valid(last_error)),
            finished_at     TEXT,
            failed_at       TEXT,
            created_at      TEXT NOT NULL DEFAULT \(sqliteNow),
            updated_at      TEXT NOT NULL DEFAULT \(sqliteNow)
        );
        CREATE UNIQUE INDEX {schema}.jobs_unique_key_live ON jobs (unique_key)
            WHERE unique_key IS NOT NULL AND finished_at IS NULL AND failed_at IS NULL;
        CREATE INDEX {schema}.jobs_finished_at ON jobs (finished_at) WHERE finished_at IS NOT NULL;
        CREATE INDEX {schema}.jobs_class_name ON jobs (class_name);
        CREATE INDEX {schema}.jobs_concurrency_key ON jobs (concurrency_key)
            WHERE concurrency_key IS NOT NULL AND finished_at IS NULL AND failed_at IS NULL;

        CREATE TABLE {schema}.ready_executions (
            job_id     INTEGER PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
            queue_name TEXT NOT NULL,
            priority   INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL DEFAULT \(sqliteNow)
        );
        CREATE INDEX {schema}.ready_executions_claim_by_queue ON ready_executions (queue_name, priority, job_id);
        CREATE INDEX {schema}.ready_executions_claim_all ON ready_executions (priority, job_id);

        CREATE TABLE {schema}.claimed_executions (
            job_id              INTEGER PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
            process_id          INTEGER NOT NULL,
            cancel_requested_at TEXT,
            created_at          TEXT NOT NULL DEFAULT \(sqliteNow)
        );
        CREATE INDEX {schema}.claimed_executions_by_process ON claimed_executions (process_id, job_id);

        CREATE TABLE {schema}.scheduled_executions (
            job_id       INTEGER PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
            queue_name   TEXT NOT NULL,
            priority     INTEGER NOT NULL DEFAULT 0,
            scheduled_at TEXT NOT NULL,
            created_at   TEXT NOT NULL DEFAULT \(sqliteNow)
        );
        CREATE INDEX {schema}.scheduled_executions_due ON scheduled_executions (scheduled_at, priority, job_id);

        CREATE TABLE {schema}.blocked_executions (
            job_id          INTEGER PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
            queue_name      TEXT NOT NULL,
            priority        INTEGER NOT NULL DEFAULT 0,
            concurrency_key TEXT NOT NULL,
            expires_at      TEXT NOT NULL,
            created_at      TEXT NOT NULL DEFAULT \(sqliteNow)
        );
        CREATE INDEX {schema}.blocked_executions_release ON blocked_executions (concurrency_key, priority, job_id);
        CREATE INDEX {schema}.blocked_executions_expiry ON blocked_executions (expires_at, concurrency_key);

        CREATE TABLE {schema}.failed_executions (
            job_id     INTEGER PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
            error      TEXT NOT NULL CHECK (json_valid(error)),
            created_at TEXT NOT NULL DEFAULT \(sqliteNow)
        );
        CREATE INDEX {schema}.failed_executions_by_time ON failed_executions (created_at, job_id);

        CREATE TABLE {schema}.processes (
            id                INTEGER PRIMARY KEY,
            kind              TEXT NOT NULL CHECK (kind IN ('supervisor', 'worker', 'dispatcher', 'scheduler')),
            name              TEXT NOT NULL UNIQUE,
            pid               INTEGER NOT NULL,
            hostname          TEXT NOT NULL,
            supervisor_id     INTEGER,
            metadata          TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metadata)),
            last_heartbeat_at TEXT NOT NULL DEFAULT \(sqliteNow),
            created_at        TEXT NOT NULL DEFAULT \(sqliteNow)
        );
        CREATE INDEX {schema}.processes_heartbeat ON processes (last_heartbeat_at);
        CREATE INDEX {schema}.processes_by_supervisor ON processes (supervisor_id);

        CREATE TABLE {schema}.pauses (
            queue_name TEXT PRIMARY KEY,
            created_at TEXT NOT NULL DEFAULT \(sqliteNow)
        );

        CREATE TABLE {schema}.semaphores (
            key        TEXT PRIMARY KEY,
            value      INTEGER NOT NULL CHECK (value >= 0),
            max_value  INTEGER NOT NULL DEFAULT 1,
            duration   REAL NOT NULL DEFAULT 300,
            expires_at TEXT NOT NULL,
            created_at TEXT NOT NULL DEFAULT \(sqliteNow),
            updated_at TEXT NOT NULL DEFAULT \(sqliteNow)
        );
        CREATE INDEX {schema}.semaphores_expiry ON semaphores (expires_at);

        CREATE TABLE {schema}.concurrency_rules (
            class_name   TEXT PRIMARY KEY,
            key_template TEXT NOT NULL,
            max_running  INTEGER NOT NULL CHECK (max_running >= 1),
            duration     REAL NOT NULL CHECK (duration > 0),
            on_conflict  TEXT NOT NULL DEFAULT 'block' CHECK (on_conflict IN ('block', 'discard')),
            updated_at   TEXT NOT NULL DEFAULT \(sqliteNow)
        );

        CREATE TABLE {schema}.recurring_tasks (
            key                 TEXT PRIMARY KEY CHECK (length(key) BETWEEN 1 AND 200),
            schedule            TEXT NOT NULL,
            time_zone           TEXT NOT NULL DEFAULT 'UTC',
            class_name          TEXT NOT NULL,
            arguments           TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(arguments)),
            queue_name          TEXT,
            priority            INTEGER,
            catch_up            INTEGER NOT NULL DEFAULT 0,
            static              INTEGER NOT NULL DEFAULT 1,
            description         TEXT,
            schedule_changed_at TEXT NOT NULL DEFAULT \(sqliteNow),
            created_at          TEXT NOT NULL DEFAULT \(sqliteNow),
            updated_at          TEXT NOT NULL DEFAULT \(sqliteNow)
        );

        CREATE TABLE {schema}.recurring_executions (
            id         INTEGER PRIMARY KEY,
            task_key   TEXT NOT NULL,
            run_at     TEXT NOT NULL,
            job_id     INTEGER REFERENCES jobs (id) ON DELETE SET NULL,
            created_at TEXT NOT NULL DEFAULT \(sqliteNow),
            UNIQUE (task_key, run_at)
        );
        CREATE INDEX {schema}.recurring_executions_by_job ON recurring_executions (job_id);
        """
}

extension DroverSchema {
    /// The current time as ``DatabaseTime`` writes it (six fraction digits, `+00`), for the
    /// defaults of migration 2 on (Drover binds every time it writes; these serve hand-written rows).
    static let sqliteFixedNow = "(strftime('%Y-%m-%d %H:%M:%f', 'now') || '000+00')"

    /// `column`'s time in the one fixed-width format: `2026-11-27 03:00:00.5+00` (PostgreSQL's
    /// text, as migration 1's rows hold it) becomes `2026-11-27 03:00:00.500000+00`. Migration 1
    /// wrote every time in UTC with `+00`.
    private static func fixedWidth(_ column: String) -> String {
        """
        CASE WHEN \(column) GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9]*+00'
             THEN substr(\(column), 1, 19) || '.'
                  || substr(CASE WHEN substr(\(column), 20, 1) = '.'
                                 THEN substr(\(column), 21, instr(substr(\(column), 20), '+') - 2) ELSE '' END || '000000', 1, 6)
                  || '+00'
             ELSE \(column) END
        """
    }

    /// Migration 2 (SQLite): every table again, as SQLite's documented way to change a table
    /// goes (new table, copy, drop, rename), so that
    /// - job, process and run ids are never used twice (`AUTOINCREMENT`; a plain rowid is the
    ///   largest id plus one, so the id of the newest job, once deleted, went to the next job, as
    ///   it never does on PostgreSQL, and a claim left by a vanished process could pass to the
    ///   next process);
    /// - every time is written with six fraction digits (``DatabaseTime``), so that text order
    ///   is time order and every reader parses it alike (migration 1's rows held fractions of
    ///   any length, which `julianday()` could not read).
    /// Children go before the table they reference, so that dropping `jobs` finds nothing to
    /// cascade to; the copies' references follow the renames.
    static let sqliteRebuildSQL: String = {
        let now = sqliteFixedNow
        func t(_ column: String) -> String { fixedWidth(column) }
        return """
            CREATE TABLE {schema}.jobs_v2 (
                id              INTEGER PRIMARY KEY AUTOINCREMENT,
                queue_name      TEXT NOT NULL CHECK (length(queue_name) BETWEEN 1 AND 128),
                class_name      TEXT NOT NULL CHECK (length(class_name) BETWEEN 1 AND 256),
                arguments       TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(arguments) AND json_type(arguments) IN ('object', 'array')),
                priority        INTEGER NOT NULL DEFAULT 0,
                scheduled_at    TEXT NOT NULL DEFAULT \(now),
                attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
                max_attempts    INTEGER NOT NULL DEFAULT 5 CHECK (max_attempts >= 1),
                crashes         INTEGER NOT NULL DEFAULT 0 CHECK (crashes >= 0),
                timeout         REAL CHECK (timeout IS NULL OR timeout > 0),
                concurrency_key TEXT,
                unique_key      TEXT,
                last_error      TEXT CHECK (last_error IS NULL OR json_valid(last_error)),
                finished_at     TEXT,
                failed_at       TEXT,
                created_at      TEXT NOT NULL DEFAULT \(now),
                updated_at      TEXT NOT NULL DEFAULT \(now)
            );
            CREATE TABLE {schema}.ready_executions_v2 (
                job_id     INTEGER PRIMARY KEY REFERENCES jobs_v2 (id) ON DELETE CASCADE,
                queue_name TEXT NOT NULL,
                priority   INTEGER NOT NULL DEFAULT 0,
                created_at TEXT NOT NULL DEFAULT \(now)
            );
            CREATE TABLE {schema}.claimed_executions_v2 (
                job_id              INTEGER PRIMARY KEY REFERENCES jobs_v2 (id) ON DELETE CASCADE,
                process_id          INTEGER NOT NULL,
                cancel_requested_at TEXT,
                created_at          TEXT NOT NULL DEFAULT \(now)
            );
            CREATE TABLE {schema}.scheduled_executions_v2 (
                job_id       INTEGER PRIMARY KEY REFERENCES jobs_v2 (id) ON DELETE CASCADE,
                queue_name   TEXT NOT NULL,
                priority     INTEGER NOT NULL DEFAULT 0,
                scheduled_at TEXT NOT NULL,
                created_at   TEXT NOT NULL DEFAULT \(now)
            );
            CREATE TABLE {schema}.blocked_executions_v2 (
                job_id          INTEGER PRIMARY KEY REFERENCES jobs_v2 (id) ON DELETE CASCADE,
                queue_name      TEXT NOT NULL,
                priority        INTEGER NOT NULL DEFAULT 0,
                concurrency_key TEXT NOT NULL,
                expires_at      TEXT NOT NULL,
                created_at      TEXT NOT NULL DEFAULT \(now)
            );
            CREATE TABLE {schema}.failed_executions_v2 (
                job_id     INTEGER PRIMARY KEY REFERENCES jobs_v2 (id) ON DELETE CASCADE,
                error      TEXT NOT NULL CHECK (json_valid(error)),
                created_at TEXT NOT NULL DEFAULT \(now)
            );
            CREATE TABLE {schema}.recurring_executions_v2 (
                id         INTEGER PRIMARY KEY AUTOINCREMENT,
                task_key   TEXT NOT NULL,
                run_at     TEXT NOT NULL,
                job_id     INTEGER REFERENCES jobs_v2 (id) ON DELETE SET NULL,
                created_at TEXT NOT NULL DEFAULT \(now),
                UNIQUE (task_key, run_at)
            );
            CREATE TABLE {schema}.processes_v2 (
                id                INTEGER PRIMARY KEY AUTOINCREMENT,
                kind              TEXT NOT NULL CHECK (kind IN ('supervisor', 'worker', 'dispatcher', 'scheduler')),
                name              TEXT NOT NULL UNIQUE,
                pid               INTEGER NOT NULL,
                hostname          TEXT NOT NULL,
                supervisor_id     INTEGER,
                metadata          TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metadata)),
                last_heartbeat_at TEXT NOT NULL DEFAULT \(now),
                created_at        TEXT NOT NULL DEFAULT \(now)
            );
            CREATE TABLE {schema}.pauses_v2 (
                queue_name TEXT PRIMARY KEY,
                created_at TEXT NOT NULL DEFAULT \(now)
            );
            CREATE TABLE {schema}.semaphores_v2 (
                key        TEXT PRIMARY KEY,
                value      INTEGER NOT NULL CHECK (value >= 0),
                max_value  INTEGER NOT NULL DEFAULT 1,
                duration   REAL NOT NULL DEFAULT 300,
                expires_at TEXT NOT NULL,
                created_at TEXT NOT NULL DEFAULT \(now),
                updated_at TEXT NOT NULL DEFAULT \(now)
            );
            CREATE TABLE {schema}.concurrency_rules_v2 (
                class_name   TEXT PRIMARY KEY,
                key_template TEXT NOT NULL,
                max_running  INTEGER NOT NULL CHECK (max_running >= 1),
                duration     REAL NOT NULL CHECK (duration > 0),
                on_conflict  TEXT NOT NULL DEFAULT 'block' CHECK (on_conflict IN ('block', 'discard')),
                updated_at   TEXT NOT NULL DEFAULT \(now)
            );
            CREATE TABLE {schema}.recurring_tasks_v2 (
                key                 TEXT PRIMARY KEY CHECK (length(key) BETWEEN 1 AND 200),
                schedule            TEXT NOT NULL,
                time_zone           TEXT NOT NULL DEFAULT 'UTC',
                class_name          TEXT NOT NULL,
                arguments           TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(arguments)),
                queue_name          TEXT,
                priority            INTEGER,
                catch_up            INTEGER NOT NULL DEFAULT 0,
                static              INTEGER NOT NULL DEFAULT 1,
                description         TEXT,
                schedule_changed_at TEXT NOT NULL DEFAULT \(now),
                created_at          TEXT NOT NULL DEFAULT \(now),
                updated_at          TEXT NOT NULL DEFAULT \(now)
            );

            INSERT INTO {schema}.jobs_v2
            SELECT id, queue_name, class_name, arguments, priority, \(t("scheduled_at")), attempts, max_attempts, crashes, timeout,
                   concurrency_key, unique_key, last_error, \(t("finished_at")), \(t("failed_at")), \(t("created_at")), \(t("updated_at"))
            FROM {schema}.jobs;
            INSERT INTO {schema}.ready_executions_v2
            SELECT job_id, queue_name, priority, \(t("created_at")) FROM {schema}.ready_executions;
            INSERT INTO {schema}.claimed_executions_v2
            SELECT job_id, process_id, \(t("cancel_requested_at")), \(t("created_at")) FROM {schema}.claimed_executions;
            INSERT INTO {schema}.scheduled_executions_v2
            SELECT job_id, queue_name, priority, \(t("scheduled_at")), \(t("created_at")) FROM {schema}.scheduled_executions;
            INSERT INTO {schema}.blocked_executions_v2
            SELECT job_id, queue_name, priority, concurrency_key, \(t("expires_at")), \(t("created_at")) FROM {schema}.blocked_executions;
            INSERT INTO {schema}.failed_executions_v2
            SELECT job_id, error, \(t("created_at")) FROM {schema}.failed_executions;
            INSERT INTO {schema}.recurring_executions_v2
            SELECT id, task_key, \(t("run_at")), job_id, \(t("created_at")) FROM {schema}.recurring_executions;
            INSERT INTO {schema}.processes_v2
            SELECT id, kind, name, pid, hostname, supervisor_id, metadata, \(t("last_heartbeat_at")), \(t("created_at"))
            FROM {schema}.processes;
            INSERT INTO {schema}.pauses_v2 SELECT queue_name, \(t("created_at")) FROM {schema}.pauses;
            INSERT INTO {schema}.semaphores_v2
            SELECT key, value, max_value, duration, \(t("expires_at")), \(t("created_at")), \(t("updated_at")) FROM {schema}.semaphores;
            INSERT INTO {schema}.concurrency_rules_v2
            SELECT class_name, key_template, max_running, duration, on_conflict, \(t("updated_at")) FROM {schema}.concurrency_rules;
            INSERT INTO {schema}.recurring_tasks_v2
            SELECT key, schedule, time_zone, class_name, arguments, queue_name, priority, catch_up, static, description,
                   \(t("schedule_changed_at")), \(t("created_at")), \(t("updated_at"))
            FROM {schema}.recurring_tasks;

            DROP TABLE {schema}.ready_executions;
            DROP TABLE {schema}.claimed_executions;
            DROP TABLE {schema}.scheduled_executions;
            DROP TABLE {schema}.blocked_executions;
            DROP TABLE {schema}.failed_executions;
            DROP TABLE {schema}.recurring_executions;
            DROP TABLE {schema}.jobs;
            DROP TABLE {schema}.processes;
            DROP TABLE {schema}.pauses;
            DROP TABLE {schema}.semaphores;
            DROP TABLE {schema}.concurrency_rules;
            DROP TABLE {schema}.recurring_tasks;

            ALTER TABLE {schema}.jobs_v2 RENAME TO jobs;
            ALTER TABLE {schema}.ready_executions_v2 RENAME TO ready_executions;
            ALTER TABLE {schema}.claimed_executions_v2 RENAME TO claimed_executions;
            ALTER TABLE {schema}.scheduled_executions_v2 RENAME TO scheduled_executions;
            ALTER TABLE {schema}.blocked_executions_v2 RENAME TO blocked_executions;
            ALTER TABLE {schema}.failed_executions_v2 RENAME TO failed_executions;
            ALTER TABLE {schema}.recurring_executions_v2 RENAME TO recurring_executions;
            ALTER TABLE {schema}.processes_v2 RENAME TO processes;
            ALTER TABLE {schema}.pauses_v2 RENAME TO pauses;
            ALTER TABLE {schema}.semaphores_v2 RENAME TO semaphores;
            ALTER TABLE {schema}.concurrency_rules_v2 RENAME TO concurrency_rules;
            ALTER TABLE {schema}.recurring_tasks_v2 RENAME TO recurring_tasks;

            CREATE UNIQUE INDEX {schema}.jobs_unique_key_live ON jobs (unique_key)
                WHERE unique_key IS NOT NULL AND finished_at IS NULL AND failed_at IS NULL;
            CREATE INDEX {schema}.jobs_finished_at ON jobs (finished_at) WHERE finished_at IS NOT NULL;
            CREATE INDEX {schema}.jobs_class_name ON jobs (class_name);
            CREATE INDEX {schema}.jobs_concurrency_key ON jobs (concurrency_key)
                WHERE concurrency_key IS NOT NULL AND finished_at IS NULL AND failed_at IS NULL;
            CREATE INDEX {schema}.ready_executions_claim_by_queue ON ready_executions (queue_name, priority, job_id);
            CREATE INDEX {schema}.ready_executions_claim_all ON ready_executions (priority, job_id);
            CREATE INDEX {schema}.claimed_executions_by_process ON claimed_executions (process_id, job_id);
            CREATE INDEX {schema}.scheduled_executions_due ON scheduled_executions (scheduled_at, priority, job_id);
            CREATE INDEX {schema}.blocked_executions_release ON blocked_executions (concurrency_key, priority, job_id);
            CREATE INDEX {schema}.blocked_executions_expiry ON blocked_executions (expires_at, concurrency_key);
            CREATE INDEX {schema}.failed_executions_by_time ON failed_executions (created_at, job_id);
            CREATE INDEX {schema}.recurring_executions_by_job ON recurring_executions (job_id);
            CREATE INDEX {schema}.processes_heartbeat ON processes (last_heartbeat_at);
            CREATE INDEX {schema}.processes_by_supervisor ON processes (supervisor_id);
            CREATE INDEX {schema}.semaphores_expiry ON semaphores (expires_at);
            """
    }()
}
