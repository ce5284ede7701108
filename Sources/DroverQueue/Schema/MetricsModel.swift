import DroverPersistence

extension DroverSchema {
    /// PostgreSQL migration 6: job counts kept by the database, in the transaction of the change
    /// they count (``JobStore`` writes them; docs/architecture.md, "Metrics").
    ///
    /// - `metric_events`: one row per operation and (queue, class, bucket), appended in the
    ///   operation's own transaction. Only appended, never updated, so that workers finishing jobs
    ///   of one class at once never wait for each other's row. The dispatcher folds it into
    ///   `metric_totals` (``JobStore/foldMetricEvents(on:)``).
    /// - `metric_totals`: the running totals. A reader adds the events not folded yet.
    /// - `metric_minutes`: what each fold added, by minute and metric (the dashboard's chart of
    ///   the last hour), to within the fold's interval; kept a day.
    /// - `bucket` is -1 for a count, else the histogram bucket of ``MetricBuckets`` the `total`
    ///   seconds fell in.
    /// - Every insert into `jobs` counts as `enqueued`, whoever makes it (the store, the SQL
    ///   functions, an application's own SQL): a statement trigger.
    /// - The `web` process kind (the dashboard).
    static let metricsSQL = """
        CREATE TABLE metric_events (
            metric     text NOT NULL,
            queue_name text NOT NULL,
            class_name text NOT NULL,
            bucket     smallint NOT NULL DEFAULT -1,
            n          bigint NOT NULL,
            total      double precision NOT NULL DEFAULT 0
        );
        COMMENT ON TABLE metric_events IS 'Job counts appended by each operation, folded into metric_totals by the dispatcher.';

        CREATE TABLE metric_totals (
            metric     text NOT NULL,
            queue_name text NOT NULL,
            class_name text NOT NULL,
            bucket     smallint NOT NULL DEFAULT -1,
            n          bigint NOT NULL,
            total      double precision NOT NULL DEFAULT 0,
            PRIMARY KEY (metric, queue_name, class_name, bucket)
        );
        COMMENT ON TABLE metric_totals IS 'Job counts since the schema was created, by metric, queue, class and histogram bucket.';

        CREATE TABLE metric_minutes (
            minute timestamptz NOT NULL,
            metric text NOT NULL,
            n      bigint NOT NULL,
            PRIMARY KEY (minute, metric)
        );
        COMMENT ON TABLE metric_minutes IS 'Job counts by minute, for the dashboard''s chart: what each fold of metric_events added.';

        CREATE FUNCTION count_enqueued() RETURNS trigger
        LANGUAGE plpgsql
        SET search_path FROM CURRENT
        AS $function$
        BEGIN
            INSERT INTO metric_events (metric, queue_name, class_name, n)
            SELECT 'enqueued', queue_name, class_name, count(*) FROM inserted GROUP BY queue_name, class_name;
            RETURN NULL;
        END
        $function$;
        CREATE TRIGGER jobs_count_enqueued AFTER INSERT ON jobs
            REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION count_enqueued();

        ALTER TABLE processes DROP CONSTRAINT processes_kind_known;
        ALTER TABLE processes ADD CONSTRAINT processes_kind_known
            CHECK (kind IN ('supervisor', 'worker', 'dispatcher', 'scheduler', 'web'));
        """

    /// SQLite migration 3: the same counts. SQLite has one writer at a time, so the store adds to
    /// `metric_totals` directly (no event log to fold), a row trigger counts every insert into
    /// `jobs`, and triggers on the totals keep `metric_minutes` (by the host's clock, as every
    /// SQLite time). `processes` is rebuilt to admit the `web` kind (a CHECK constraint cannot
    /// be altered in place).
    static let sqliteMetricsSQL: String = {
        let now = sqliteFixedNow
        return """
            CREATE TABLE {schema}.metric_totals (
                metric     TEXT NOT NULL,
                queue_name TEXT NOT NULL,
                class_name TEXT NOT NULL,
                bucket     INTEGER NOT NULL DEFAULT -1,
                n          INTEGER NOT NULL,
                total      REAL NOT NULL DEFAULT 0,
                PRIMARY KEY (metric, queue_name, class_name, bucket)
            );
            CREATE TABLE {schema}.metric_minutes (
                minute TEXT NOT NULL,
                metric TEXT NOT NULL,
                n      INTEGER NOT NULL,
                PRIMARY KEY (minute, metric)
            );
            CREATE TRIGGER {schema}.metric_totals_by_minute_insert AFTER INSERT ON metric_totals
            BEGIN
                INSERT INTO metric_minutes (minute, metric, n)
                VALUES (strftime('%Y-%m-%d %H:%M:00.000000+00', 'now'), NEW.metric, NEW.n)
                ON CONFLICT (minute, metric) DO UPDATE SET n = n + excluded.n;
            END;
            CREATE TRIGGER {schema}.metric_totals_by_minute_update AFTER UPDATE OF n ON metric_totals
            BEGIN
                INSERT INTO metric_minutes (minute, metric, n)
                VALUES (strftime('%Y-%m-%d %H:%M:00.000000+00', 'now'), NEW.metric, NEW.n - OLD.n)
                ON CONFLICT (minute, metric) DO UPDATE SET n = n + excluded.n;
            END;
            CREATE TRIGGER {schema}.jobs_count_enqueued AFTER INSERT ON jobs
            BEGIN
                INSERT INTO metric_totals (metric, queue_name, class_name, bucket, n, total)
                VALUES ('enqueued', NEW.queue_name, NEW.class_name, -1, 1, 0)
                ON CONFLICT (metric, queue_name, class_name, bucket) DO UPDATE SET n = n + 1;
            END;

            CREATE TABLE {schema}.processes_v3 (
                id                INTEGER PRIMARY KEY AUTOINCREMENT,
                kind              TEXT NOT NULL CHECK (kind IN ('supervisor', 'worker', 'dispatcher', 'scheduler', 'web')),
                name              TEXT NOT NULL UNIQUE,
                pid               INTEGER NOT NULL,
                hostname          TEXT NOT NULL,
                supervisor_id     INTEGER,
                metadata          TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metadata)),
                last_heartbeat_at TEXT NOT NULL DEFAULT \(now),
                created_at        TEXT NOT NULL DEFAULT \(now)
            );
            INSERT INTO {schema}.processes_v3 (id, kind, name, pid, hostname, supervisor_id, metadata, last_heartbeat_at, created_at)
                SELECT id, kind, name, pid, hostname, supervisor_id, metadata, last_heartbeat_at, created_at FROM {schema}.processes;
            -- Ids are never used twice: the new table goes on from the old one's last id, not its largest row's.
            DELETE FROM {schema}.sqlite_sequence WHERE name = 'processes_v3';
            INSERT INTO {schema}.sqlite_sequence (name, seq) SELECT 'processes_v3', seq FROM {schema}.sqlite_sequence WHERE name = 'processes';
            DROP TABLE {schema}.processes;
            ALTER TABLE {schema}.processes_v3 RENAME TO processes;
            CREATE INDEX {schema}.processes_heartbeat ON processes (last_heartbeat_at);
            CREATE INDEX {schema}.processes_by_supervisor ON processes (supervisor_id);
            """
    }()
}
