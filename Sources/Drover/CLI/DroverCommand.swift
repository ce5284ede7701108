import ArgumentParser

/// `drover`: the root command.
struct DroverCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drover",
        abstract: "A background job system for Linux, backed by PostgreSQL.",
        discussion: """
            Drover runs jobs that applications put into PostgreSQL. The database is chosen by \
            --database-url, then DROVER_DATABASE_URL, then database.url in the configuration file \
            (--config, DROVER_CONFIG or /etc/drover/drover.yml), then libpq's defaults (PGHOST, \
            PGDATABASE, ~/.pgpass, service files).

            Exit status: 0 success, 64 bad usage, 65 bad data, 69 database unavailable, \
            70 internal error, 78 configuration error.
            """,
        version: Drover.version,
        subcommands: [
            StartCommand.self, CheckCommand.self, MigrateCommand.self, EnqueueCommand.self, JobsCommand.self, FailedCommand.self,
            QueuesCommand.self, RecurringCommand.self, ConcurrencyCommand.self, ProcessesCommand.self, StatusCommand.self,
            VersionCommand.self, ChildCommand.self,
        ]
    )
}
