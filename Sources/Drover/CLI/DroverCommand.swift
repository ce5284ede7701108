import ArgumentParser

/// `drover`: the root command.
struct DroverCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drover",
        abstract: "A background job system for Linux, backed by PostgreSQL or SQLite.",
        discussion: """
            Drover runs jobs that applications put into PostgreSQL, or into a SQLite file on one host. \
            The database is chosen by --database-url, then DROVER_DATABASE_URL, then database.url in the \
            configuration file (--config, DROVER_CONFIG or /etc/drover/drover.yml), then libpq's \
            defaults when PGHOST, PGDATABASE or PGSERVICE is set, else the SQLite file \
            $STATE_DIRECTORY/drover.sqlite3 (under systemd) or ./drover.sqlite3. A URL is \
            postgresql://…, libpq key=value pairs, or sqlite:///path.

            Exit status: 0 success, 64 bad usage, 65 bad data, 69 database unavailable, \
            70 internal error, 78 configuration error; children of drover start also exit 71 \
            (start-up failure that may pass), 75 (registration pruned) and 76 (lease lost).
            """,
        version: Drover.version,
        subcommands: [
            StartCommand.self, CheckCommand.self, MigrateCommand.self, EnqueueCommand.self, JobsCommand.self, FailedCommand.self,
            QueuesCommand.self, ClassesCommand.self, RecurringCommand.self, ConcurrencyCommand.self, RateLimitsCommand.self, BatchesCommand.self, ProcessesCommand.self, StatusCommand.self,
            WebCommand.self, VersionCommand.self, BenchCommand.self, ChildCommand.self,
        ]
    )
}
