extension DroverSchema {
    /// Migration 4: when a recurring task's schedule last changed. Runs up to then followed the old
    /// schedule; runs after it follow the new one, so a change never doubles or skips a run.
    static let recurringSchedulesSQL = """
        ALTER TABLE recurring_tasks ADD COLUMN schedule_changed_at timestamptz NOT NULL DEFAULT now();
        COMMENT ON COLUMN recurring_tasks.schedule_changed_at IS
            'When schedule or time_zone last changed: the scheduler enqueues runs after it only.';
        ALTER TABLE recurring_tasks ADD CONSTRAINT recurring_tasks_key_length CHECK (char_length(key) BETWEEN 1 AND 200);
        """
}
