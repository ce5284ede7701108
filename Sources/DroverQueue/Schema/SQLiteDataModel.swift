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
    ]

    /// The current time as text in PostgreSQL's timestamptz format, for SQLite defaults.
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
