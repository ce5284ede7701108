extension DroverSchema {
    /// Part of migration 3: concurrency limits.
    ///
    /// A job class may have a rule (`concurrency_rules`, kept in step with the configuration and the
    /// app's job types by `drover start`): its jobs get a concurrency key, rendered from the rule's
    /// template and their arguments at enqueue, and at most `max_running` jobs with one key hold a
    /// slot at once. A job holds a slot while it is ready or claimed; `semaphores.value` counts the
    /// free slots. A due job with a key is admitted (`concurrency_admit`): it takes a slot and goes to
    /// ready, or waits in blocked (or, with `on_conflict = 'discard'`, is finished as discarded). A job
    /// that gives its slot back (finished, failed, retried later, cancelled) lets the next blocked job
    /// of its key run, in priority order (`concurrency_signal`). A key whose semaphore or blocked jobs
    /// have not moved for the rule's `duration` is counted again from the jobs themselves
    /// (`concurrency_recount`, run by the dispatcher), so a slot lost with a crashed process comes
    /// back after `duration`, and no job stays blocked while its key is free.
    static let concurrencySQL = #"""
        CREATE TABLE concurrency_rules (
            class_name   text PRIMARY KEY,
            key_template text NOT NULL,
            max_running  integer NOT NULL,
            duration     interval NOT NULL,
            on_conflict  text NOT NULL DEFAULT 'block',
            updated_at   timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT concurrency_rules_max_running CHECK (max_running >= 1),
            CONSTRAINT concurrency_rules_duration CHECK (duration > interval '0'),
            CONSTRAINT concurrency_rules_on_conflict CHECK (on_conflict IN ('block', 'discard'))
        );
        COMMENT ON TABLE concurrency_rules IS
            'Per job class: at most max_running jobs with one key (key_template over the arguments) run at once.';

        ALTER TABLE semaphores ADD COLUMN max_value integer NOT NULL DEFAULT 1;
        ALTER TABLE semaphores ADD COLUMN duration interval NOT NULL DEFAULT interval '5 minutes';
        CREATE INDEX jobs_concurrency_key ON jobs (concurrency_key)
            WHERE concurrency_key IS NOT NULL AND finished_at IS NULL AND failed_at IS NULL;

        -- The template with each {name} replaced by that argument ({a.b} reaches into objects);
        -- NULL when an argument is missing. STRICT: a job of a class without a rule (a NULL
        -- template) costs no call at all, which keeps bulk enqueue fast.
        CREATE FUNCTION concurrency_key(template text, arguments jsonb) RETURNS text
        LANGUAGE plpgsql IMMUTABLE STRICT
        AS $function$
        DECLARE
            result text := '';
            rest text := template;
            opening integer;
            closing integer;
            value text;
        BEGIN
            LOOP
                opening := strpos(rest, '{');
                EXIT WHEN opening = 0;
                closing := strpos(substr(rest, opening), '}');
                EXIT WHEN closing = 0;
                value := arguments #>> string_to_array(substr(rest, opening + 1, closing - 2), '.');
                IF value IS NULL THEN
                    RETURN NULL;
                END IF;
                result := result || substr(rest, 1, opening - 1) || value;
                rest := substr(rest, opening + closing);
            END LOOP;
            RETURN result || rest;
        END
        $function$;

        -- Admits due jobs that have a concurrency key: each takes a free slot and goes to ready, or
        -- waits in blocked, or is finished as discarded. Returns how many went to ready.
        CREATE FUNCTION concurrency_admit(job_ids bigint[]) RETURNS integer
        LANGUAGE plpgsql
        SET search_path FROM CURRENT
        AS $function$
        DECLARE
            job record;
            acquired text;
            admitted integer := 0;
        BEGIN
            FOR job IN
                SELECT j.id, j.queue_name, j.priority, j.concurrency_key, r.max_running, r.duration, r.on_conflict
                FROM jobs j LEFT JOIN concurrency_rules r ON r.class_name = j.class_name
                WHERE j.id = ANY(job_ids) ORDER BY j.priority, j.id
            LOOP
                acquired := NULL;
                IF job.concurrency_key IS NULL OR job.max_running IS NULL THEN
                    acquired := '';  -- no rule (any more): no limit
                ELSE
                    INSERT INTO semaphores AS s (key, value, max_value, duration, expires_at)
                    VALUES (job.concurrency_key, job.max_running - 1, job.max_running, job.duration, now() + job.duration)
                    ON CONFLICT (key) DO UPDATE SET value = s.value - 1, expires_at = now() + s.duration, updated_at = now()
                    WHERE s.value > 0
                    RETURNING s.key INTO acquired;
                END IF;
                IF acquired IS NOT NULL THEN
                    INSERT INTO ready_executions (job_id, queue_name, priority) VALUES (job.id, job.queue_name, job.priority);
                    PERFORM pg_notify(current_schema(), job.queue_name);
                    admitted := admitted + 1;
                ELSIF job.on_conflict = 'discard' THEN
                    UPDATE jobs SET finished_at = now(), updated_at = now(),
                        last_error = jsonb_build_object('class', 'Discarded', 'message',
                            format('discarded at enqueue: %s jobs with concurrency key %s were running already', job.max_running, job.concurrency_key))
                    WHERE id = job.id;
                ELSE
                    INSERT INTO blocked_executions (job_id, queue_name, priority, concurrency_key, expires_at)
                    VALUES (job.id, job.queue_name, job.priority, job.concurrency_key, now() + job.duration);
                END IF;
            END LOOP;
            RETURN admitted;
        END
        $function$;

        -- Counts the slots of key k again from the jobs that hold them (ready or claimed), lets as
        -- many blocked jobs run as there are free slots, and renews the semaphore; a key nothing
        -- holds or waits for loses its semaphore. Returns how many went to ready.
        CREATE FUNCTION concurrency_recount(k text) RETURNS integer
        LANGUAGE plpgsql
        SET search_path FROM CURRENT
        AS $function$
        DECLARE
            limit_value integer;
            lease interval;
            holders integer;
            moved integer;
            notified integer;
        BEGIN
            -- The limit in force: the rule of a live job's class (limits change with the configuration);
            -- none left means nothing limits what waits.
            SELECT r.max_running, r.duration INTO limit_value, lease
            FROM jobs j JOIN concurrency_rules r ON r.class_name = j.class_name
            WHERE j.concurrency_key = k AND j.finished_at IS NULL AND j.failed_at IS NULL
            LIMIT 1;
            IF NOT FOUND THEN
                limit_value := 2147483647;
                lease := interval '5 minutes';
            END IF;
            -- Taking the semaphore's row lock serializes this with admits and signals of the key.
            INSERT INTO semaphores AS s (key, value, max_value, duration, expires_at)
            VALUES (k, 0, limit_value, lease, now() + lease)
            ON CONFLICT (key) DO UPDATE SET max_value = excluded.max_value, duration = excluded.duration;
            SELECT count(*) INTO holders FROM jobs j
            WHERE j.concurrency_key = k AND j.finished_at IS NULL AND j.failed_at IS NULL
              AND (EXISTS (SELECT 1 FROM ready_executions r WHERE r.job_id = j.id)
                   OR EXISTS (SELECT 1 FROM claimed_executions c WHERE c.job_id = j.id));
            WITH next AS (
                SELECT job_id FROM blocked_executions WHERE concurrency_key = k
                ORDER BY priority, job_id LIMIT greatest(limit_value - holders, 0)
                FOR UPDATE SKIP LOCKED
            ), unblocked AS (
                DELETE FROM blocked_executions b USING next WHERE b.job_id = next.job_id
                RETURNING b.job_id, b.queue_name, b.priority
            ), back AS (
                INSERT INTO ready_executions (job_id, queue_name, priority)
                SELECT job_id, queue_name, priority FROM unblocked RETURNING queue_name
            )
            SELECT count(*), count(pg_notify(current_schema(), queue_name)) INTO moved, notified FROM back;
            IF holders + moved = 0 AND NOT EXISTS (SELECT 1 FROM blocked_executions WHERE concurrency_key = k) THEN
                DELETE FROM semaphores WHERE key = k;
            ELSE
                UPDATE semaphores SET value = greatest(limit_value - holders - moved, 0), expires_at = now() + lease, updated_at = now()
                WHERE key = k;
                UPDATE blocked_executions SET expires_at = now() + lease WHERE concurrency_key = k;
            END IF;
            RETURN moved;
        END
        $function$;

        -- Gives back one slot per element of keys (a key twice: two slots) and lets the next blocked
        -- job of that key run. Returns how many went to ready.
        CREATE FUNCTION concurrency_signal(keys text[]) RETURNS integer
        LANGUAGE plpgsql
        SET search_path FROM CURRENT
        AS $function$
        DECLARE
            k text;
            free integer;
            next record;
            moved integer := 0;
        BEGIN
            FOREACH k IN ARRAY coalesce(keys, '{}') LOOP
                CONTINUE WHEN k IS NULL;
                UPDATE semaphores SET value = least(value + 1, max_value), updated_at = now() WHERE key = k RETURNING value INTO free;
                IF NOT FOUND THEN
                    moved := moved + concurrency_recount(k);
                    CONTINUE;
                END IF;
                CONTINUE WHEN free = 0;
                SELECT b.job_id, b.queue_name, b.priority INTO next FROM blocked_executions b
                WHERE b.concurrency_key = k ORDER BY b.priority, b.job_id LIMIT 1 FOR UPDATE SKIP LOCKED;
                CONTINUE WHEN NOT FOUND;
                DELETE FROM blocked_executions WHERE job_id = next.job_id;
                INSERT INTO ready_executions (job_id, queue_name, priority) VALUES (next.job_id, next.queue_name, next.priority);
                UPDATE semaphores SET value = value - 1, expires_at = now() + duration WHERE key = k;
                PERFORM pg_notify(current_schema(), next.queue_name);
                moved := moved + 1;
            END LOOP;
            RETURN moved;
        END
        $function$;

        -- For the dispatcher: counts again up to batch keys whose semaphore or blocked jobs have
        -- not moved for their duration. Returns how many jobs went to ready.
        CREATE FUNCTION concurrency_expire(batch integer) RETURNS integer
        LANGUAGE plpgsql
        SET search_path FROM CURRENT
        AS $function$
        DECLARE
            k text;
            moved integer := 0;
        BEGIN
            FOR k IN
                SELECT key FROM (
                    SELECT concurrency_key AS key FROM blocked_executions WHERE expires_at <= now()
                    UNION SELECT key FROM semaphores WHERE expires_at <= now()
                ) expired LIMIT batch
            LOOP
                moved := moved + concurrency_recount(k);
            END LOOP;
            RETURN moved;
        END
        $function$;

        """#
}
