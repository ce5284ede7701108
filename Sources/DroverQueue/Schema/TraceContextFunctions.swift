extension DroverSchema {
    /// Migration 8: the SQL functions take the trace context too, so that a caller that enqueues
    /// through them (DroverPostgresNIO, or any language with a tracer) stores it as the Swift API's
    /// enqueue does (migration 7's column).
    ///
    /// `enqueue_many` is replaced whole, as migration 3 left it (as migration 5 left its callees),
    /// with one more optional key per job: `trace_context`, a JSON object of string values
    /// (`traceparent`, `tracestate`, …) of at most 16 KiB of keys and values, the rules of
    /// `JobRules` (a test holds the two together); an empty object stores NULL, as the Swift API
    /// does. Every other check, message, default, unique key, concurrency admission and NOTIFY is
    /// migration 3's. `enqueue` gains the parameter `trace_context jsonb DEFAULT NULL` (the old
    /// signature goes, so that a call is never ambiguous; calls that worked before work the same).
    static let traceContextFunctionsSQL = #"""
        CREATE OR REPLACE FUNCTION enqueue_many(new_jobs jsonb) RETURNS SETOF bigint
        LANGUAGE plpgsql
        SET search_path FROM CURRENT
        AS $function$
        DECLARE
            problem record;
            ids bigint[];
            woken text[];
            job record;
            found_id bigint;
            keyed bigint[] := '{}';
            keyed_due bigint[];
            key_template text;
        BEGIN
            IF new_jobs IS NULL OR jsonb_typeof(new_jobs) <> 'array' THEN
                RAISE EXCEPTION 'drover: jobs must be a JSON array of job objects such as [{"class": "SendReport", "arguments": {"id": 1}}]'
                    USING ERRCODE = '22023', COLUMN = 'new_jobs';
            END IF;

            -- The first problem of the first bad job, checked in order (CASE evaluates in order, so
            -- a cast is only reached once the text is known to fit it). Character classes are
            -- unbounded with a separate length check: a bounded repeat such as {0,199} makes
            -- PostgreSQL's regular expressions about ten times slower, and this runs for every job.
            SELECT e.ord, c.problem[1] AS field, c.problem[2] AS message INTO problem
            FROM jsonb_array_elements(new_jobs) WITH ORDINALITY AS e(job, ord)
            CROSS JOIN LATERAL (SELECT CASE
                WHEN jsonb_typeof(e.job) <> 'object' THEN
                    ARRAY['job', 'must be a JSON object such as {"class": "SendReport"}']
                WHEN e.job - ARRAY['class', 'arguments', 'queue', 'priority', 'run_at', 'max_attempts', 'timeout', 'unique_key', 'trace_context'] <> '{}'::jsonb THEN
                    ARRAY['job', format('has an unknown key %s; the keys are class, arguments, queue, priority, run_at, max_attempts, timeout, unique_key and trace_context',
                        (SELECT min(k.key) FROM jsonb_object_keys(e.job) AS k(key)
                         WHERE k.key NOT IN ('class', 'arguments', 'queue', 'priority', 'run_at', 'max_attempts', 'timeout', 'unique_key', 'trace_context')))]
                WHEN jsonb_typeof(e.job -> 'class') IS DISTINCT FROM 'string' THEN
                    ARRAY['class', 'is required and must be a string such as "SendReport"']
                WHEN e.job ->> 'class' !~ '^[A-Za-z_][A-Za-z0-9_.:-]*$' OR length(e.job ->> 'class') > 200 THEN
                    ARRAY['class', format('%s is not a valid class name: use 1 to 200 letters, digits, _ . : -, starting with a letter or _', e.job -> 'class')]
                WHEN e.job ? 'queue' AND jsonb_typeof(e.job -> 'queue') <> 'string' THEN
                    ARRAY['queue', 'must be a string such as "default"']
                WHEN e.job ? 'queue' AND (e.job ->> 'queue' !~ '^[A-Za-z0-9_][A-Za-z0-9_.:-]*$' OR length(e.job ->> 'queue') > 100) THEN
                    ARRAY['queue', format('%s is not a valid queue name: use 1 to 100 letters, digits, _ . : -, starting with a letter, digit or _', e.job -> 'queue')]
                WHEN e.job ? 'arguments' AND jsonb_typeof(e.job -> 'arguments') NOT IN ('object', 'array') THEN
                    ARRAY['arguments', 'must be a JSON object or array']
                -- The text of a jsonb value is at most about 6 times its stored size (a string of
                -- control characters, each written as \u0001), so only large values are measured.
                WHEN e.job ? 'arguments' AND pg_column_size(e.job -> 'arguments') > 131072
                     AND octet_length((e.job -> 'arguments')::text) > 1048576 THEN
                    ARRAY['arguments', format('is %s bytes of JSON; the limit is 1048576 (1 MiB): pass a reference to large data instead', octet_length((e.job -> 'arguments')::text))]
                WHEN e.job ? 'priority' AND (jsonb_typeof(e.job -> 'priority') <> 'number' OR e.job ->> 'priority' !~ '^-?[0-9]{1,5}$') THEN
                    ARRAY['priority', format('%s is not an integer from -32768 to 32767', e.job -> 'priority')]
                WHEN e.job ? 'priority' AND (e.job ->> 'priority')::integer NOT BETWEEN -32768 AND 32767 THEN
                    ARRAY['priority', format('%s is not an integer from -32768 to 32767', e.job -> 'priority')]
                WHEN e.job ? 'max_attempts' AND (jsonb_typeof(e.job -> 'max_attempts') <> 'number' OR e.job ->> 'max_attempts' !~ '^[0-9]{1,4}$') THEN
                    ARRAY['max_attempts', format('%s is not an integer from 1 to 1000', e.job -> 'max_attempts')]
                WHEN e.job ? 'max_attempts' AND (e.job ->> 'max_attempts')::integer NOT BETWEEN 1 AND 1000 THEN
                    ARRAY['max_attempts', format('%s is not an integer from 1 to 1000', e.job -> 'max_attempts')]
                WHEN e.job ? 'run_at' AND (jsonb_typeof(e.job -> 'run_at') <> 'string'
                        OR e.job ->> 'run_at' !~ '^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?(Z|[+-][0-9]{2}(:?[0-9]{2})?)?$') THEN
                    ARRAY['run_at', format('%s is not a timestamp such as "2026-11-27T03:00:00Z"', e.job -> 'run_at')]
                WHEN e.job ? 'timeout' AND (jsonb_typeof(e.job -> 'timeout') <> 'number' OR e.job ->> 'timeout' !~ '^[0-9]{1,6}(\.[0-9]{1,3})?$') THEN
                    ARRAY['timeout', format('%s is not a number of seconds from 1 to 604800 (7 days), with at most 3 decimals', e.job -> 'timeout')]
                WHEN e.job ? 'timeout' AND (e.job ->> 'timeout')::numeric NOT BETWEEN 1 AND 604800 THEN
                    ARRAY['timeout', format('%s is not a number of seconds from 1 to 604800 (7 days), with at most 3 decimals', e.job -> 'timeout')]
                WHEN e.job ? 'unique_key' AND (jsonb_typeof(e.job -> 'unique_key') <> 'string'
                        OR length(e.job ->> 'unique_key') NOT BETWEEN 1 AND 1000) THEN
                    ARRAY['unique_key', 'must be a string of 1 to 1000 characters such as "report:2026-11-27"']
                -- Three steps: jsonb_each fails on anything but an object, and only CASE orders evaluation.
                WHEN e.job ? 'trace_context' AND jsonb_typeof(e.job -> 'trace_context') <> 'object' THEN
                    ARRAY['trace_context', 'must be a JSON object of strings such as {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}']
                WHEN e.job ? 'trace_context' AND EXISTS (SELECT 1 FROM jsonb_each(e.job -> 'trace_context') AS t(key, value)
                                                         WHERE jsonb_typeof(t.value) <> 'string') THEN
                    ARRAY['trace_context', format('must be a JSON object of strings; the value of %s is not a string',
                        (SELECT min(t.key) FROM jsonb_each(e.job -> 'trace_context') AS t(key, value) WHERE jsonb_typeof(t.value) <> 'string'))]
                WHEN e.job ? 'trace_context' AND (SELECT sum(octet_length(t.key) + octet_length(t.value))
                                                  FROM jsonb_each_text(e.job -> 'trace_context') AS t(key, value)) > 16384 THEN
                    ARRAY['trace_context', format('holds %s bytes; the limit is 16384 (16 KiB): carry less baggage',
                        (SELECT sum(octet_length(t.key) + octet_length(t.value)) FROM jsonb_each_text(e.job -> 'trace_context') AS t(key, value)))]
                END AS problem) AS c
            WHERE c.problem IS NOT NULL
            ORDER BY e.ord
            LIMIT 1;

            IF FOUND THEN
                RAISE EXCEPTION 'drover: job %: % %', problem.ord, problem.field, problem.message
                    USING ERRCODE = '22023', COLUMN = problem.field;
            END IF;

            -- Jobs of a class with a concurrency limit need the arguments its key is made of. (A
            -- separate query, skipped when there are no rules: it would slow every bulk enqueue.)
            IF EXISTS (SELECT 1 FROM concurrency_rules) THEN
                SELECT e.ord, 'arguments' AS field,
                       format('lack what the concurrency key %s of %s needs', cr.key_template, cr.class_name) AS message
                INTO problem
                FROM jsonb_array_elements(new_jobs) WITH ORDINALITY AS e(job, ord)
                JOIN concurrency_rules cr ON cr.class_name = e.job ->> 'class'
                WHERE concurrency_key(cr.key_template, coalesce(e.job -> 'arguments', '{}')) IS NULL
                ORDER BY e.ord
                LIMIT 1;
                IF FOUND THEN
                    RAISE EXCEPTION 'drover: job %: % %', problem.ord, problem.field, problem.message
                        USING ERRCODE = '22023', COLUMN = problem.field;
                END IF;
            END IF;

            WITH input AS (
                SELECT e.ord,
                       e.job ->> 'class' AS class_name,
                       coalesce(e.job -> 'arguments', '{}'::jsonb) AS arguments,
                       coalesce(e.job ->> 'queue', 'default') AS queue_name,
                       coalesce((e.job ->> 'priority')::integer, 0) AS priority,
                       coalesce((e.job ->> 'run_at')::timestamptz, now()) AS scheduled_at,
                       coalesce((e.job ->> 'max_attempts')::integer, 5) AS max_attempts,
                       make_interval(secs => (e.job ->> 'timeout')::float8) AS timeout,
                       concurrency_key(cr.key_template, coalesce(e.job -> 'arguments', '{}')) AS concurrency_key,
                       nullif(e.job -> 'trace_context', '{}'::jsonb) AS trace_context
                FROM jsonb_array_elements(new_jobs) WITH ORDINALITY AS e(job, ord)
                LEFT JOIN concurrency_rules cr ON cr.class_name = e.job ->> 'class'
                WHERE NOT e.job ? 'unique_key'
            ), inserted AS (
                INSERT INTO jobs (queue_name, class_name, arguments, priority, scheduled_at, max_attempts, timeout, concurrency_key,
                                  trace_context)
                SELECT queue_name, class_name, arguments, priority, scheduled_at, max_attempts, timeout, concurrency_key, trace_context
                FROM input ORDER BY ord
                RETURNING id, queue_name, priority, scheduled_at, concurrency_key
            ), ready AS (
                -- A job with a concurrency key is admitted below: ready if its key has a free slot.
                INSERT INTO ready_executions (job_id, queue_name, priority)
                SELECT id, queue_name, priority FROM inserted WHERE scheduled_at <= now() AND concurrency_key IS NULL
                RETURNING queue_name
            ), scheduled AS (
                INSERT INTO scheduled_executions (job_id, queue_name, priority, scheduled_at)
                SELECT id, queue_name, priority, scheduled_at FROM inserted WHERE scheduled_at > now()
            )
            SELECT array_agg(id ORDER BY id), (SELECT array_agg(DISTINCT queue_name) FROM ready),
                   array_agg(id ORDER BY id) FILTER (WHERE scheduled_at <= now() AND concurrency_key IS NOT NULL)
            INTO ids, woken, keyed_due
            FROM inserted;
            IF keyed_due IS NOT NULL THEN
                PERFORM concurrency_admit(keyed_due);
            END IF;

            -- Jobs with a unique key, one at a time: each either inserts or finds the live job that
            -- holds its key. The conflict check waits for a concurrent insert of the same key to
            -- commit or roll back; a live job found by the conflict may finish before it is looked
            -- up, in which case the insert is tried again.
            FOR job IN
                SELECT e.ord, e.job FROM jsonb_array_elements(new_jobs) WITH ORDINALITY AS e(job, ord)
                WHERE e.job ? 'unique_key' ORDER BY e.ord
            LOOP
                SELECT cr.key_template INTO key_template FROM concurrency_rules cr WHERE cr.class_name = job.job ->> 'class';
                LOOP
                    INSERT INTO jobs (queue_name, class_name, arguments, priority, scheduled_at, max_attempts, timeout, unique_key,
                                      concurrency_key, trace_context)
                    VALUES (coalesce(job.job ->> 'queue', 'default'), job.job ->> 'class', coalesce(job.job -> 'arguments', '{}'::jsonb),
                            coalesce((job.job ->> 'priority')::integer, 0), coalesce((job.job ->> 'run_at')::timestamptz, now()),
                            coalesce((job.job ->> 'max_attempts')::integer, 5),
                            make_interval(secs => (job.job ->> 'timeout')::float8), job.job ->> 'unique_key',
                            concurrency_key(key_template, coalesce(job.job -> 'arguments', '{}'::jsonb)),
                            nullif(job.job -> 'trace_context', '{}'::jsonb))
                    ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND finished_at IS NULL AND failed_at IS NULL
                    DO NOTHING
                    RETURNING id INTO found_id;
                    IF found_id IS NOT NULL THEN
                        IF key_template IS NOT NULL AND coalesce((job.job ->> 'run_at')::timestamptz, now()) <= now() THEN
                            PERFORM concurrency_admit(ARRAY[found_id]);
                            EXIT;
                        END IF;
                        INSERT INTO ready_executions (job_id, queue_name, priority)
                        SELECT id, queue_name, priority FROM jobs WHERE id = found_id AND scheduled_at <= now();
                        IF FOUND THEN
                            woken := array_append(woken, coalesce(job.job ->> 'queue', 'default'));
                        ELSE
                            INSERT INTO scheduled_executions (job_id, queue_name, priority, scheduled_at)
                            SELECT id, queue_name, priority, scheduled_at FROM jobs WHERE id = found_id;
                        END IF;
                        EXIT;
                    END IF;
                    SELECT id INTO found_id FROM jobs
                    WHERE unique_key = job.job ->> 'unique_key' AND finished_at IS NULL AND failed_at IS NULL;
                    EXIT WHEN found_id IS NOT NULL;
                END LOOP;
                keyed := keyed || ARRAY[job.ord, found_id];
            END LOOP;

            -- Workers listen on the schema's name; the payload is the queue.
            PERFORM pg_notify(current_schema(), queue) FROM (SELECT DISTINCT unnest(woken) AS queue) q;
            IF cardinality(keyed) = 0 THEN
                RETURN QUERY SELECT unnest(ids);
                RETURN;
            END IF;
            -- In input order: keyed jobs at their positions, the others in the order they were inserted.
            RETURN QUERY
            WITH plain AS (
                SELECT id, row_number() OVER (ORDER BY id) AS n FROM unnest(ids) AS id
            ), positions AS (
                SELECT e.ord, CASE WHEN NOT e.job ? 'unique_key'
                                   THEN count(*) FILTER (WHERE NOT e.job ? 'unique_key') OVER (ORDER BY e.ord) END AS n
                FROM jsonb_array_elements(new_jobs) WITH ORDINALITY AS e(job, ord)
            ), keyed_ids AS (
                SELECT keyed[2 * i - 1] AS ord, keyed[2 * i] AS id FROM generate_subscripts(keyed, 1) AS i
                WHERE i <= cardinality(keyed) / 2
            )
            SELECT coalesce(p.id, k.id) FROM positions x
            LEFT JOIN plain p ON p.n = x.n
            LEFT JOIN keyed_ids k ON k.ord = x.ord
            ORDER BY x.ord;
        END
        $function$;

        COMMENT ON FUNCTION enqueue_many(jsonb) IS
            'Enqueues a JSON array of jobs ({"class", "arguments", "queue", "priority", "run_at", "max_attempts", "timeout", "unique_key", "trace_context"}) and returns their ids in order; a job whose unique_key a live job holds is that job.';

        -- enqueue gains a parameter: the old signature goes, so that a call is never ambiguous.
        DROP FUNCTION enqueue(text, jsonb, text, integer, timestamptz, integer, interval, text);
        CREATE FUNCTION enqueue(
            class_name text,
            arguments jsonb DEFAULT '{}',
            queue_name text DEFAULT 'default',
            priority integer DEFAULT 0,
            run_at timestamptz DEFAULT NULL,
            max_attempts integer DEFAULT 5,
            timeout interval DEFAULT NULL,
            unique_key text DEFAULT NULL,
            trace_context jsonb DEFAULT NULL
        ) RETURNS bigint
        LANGUAGE sql
        SET search_path FROM CURRENT
        AS $function$
            -- A NULL argument means its default (jsonb_strip_nulls would also strip nulls inside
            -- the job's arguments, so the object is built key by key).
            SELECT enqueue_many(jsonb_build_array(
                jsonb_build_object('class', class_name)
                || CASE WHEN arguments IS NULL THEN '{}' ELSE jsonb_build_object('arguments', arguments) END
                || CASE WHEN queue_name IS NULL THEN '{}' ELSE jsonb_build_object('queue', queue_name) END
                || CASE WHEN priority IS NULL THEN '{}' ELSE jsonb_build_object('priority', priority) END
                || CASE WHEN run_at IS NULL THEN '{}' ELSE jsonb_build_object('run_at', run_at) END
                || CASE WHEN max_attempts IS NULL THEN '{}' ELSE jsonb_build_object('max_attempts', max_attempts) END
                || CASE WHEN timeout IS NULL THEN '{}' ELSE jsonb_build_object('timeout', round(extract(epoch FROM timeout), 3)) END
                || CASE WHEN unique_key IS NULL THEN '{}' ELSE jsonb_build_object('unique_key', unique_key) END
                || CASE WHEN trace_context IS NULL THEN '{}' ELSE jsonb_build_object('trace_context', trace_context) END))
        $function$;

        COMMENT ON FUNCTION enqueue(text, jsonb, text, integer, timestamptz, integer, interval, text, jsonb) IS
            'Enqueues one job and returns its id; a run_at in the future schedules it; timeout limits how long one attempt may run; a unique_key held by a live job returns that job''s id; trace_context (an object of strings) is restored around perform.';
        """#
}
