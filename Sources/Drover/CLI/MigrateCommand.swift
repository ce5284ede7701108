import ArgumentParser
import DroverPersistence
import DroverQueue
import DroverRuntime
import Foundation

/// `drover migrate`: creates or upgrades Drover's tables; `--to` moves a SQLite database's live
/// jobs into PostgreSQL.
struct MigrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Create or upgrade Drover's tables in the database, or move a SQLite database's jobs to PostgreSQL.",
        discussion: """
            Applies the migrations the database lacks, each in its own transaction, under an advisory \
            lock (PostgreSQL) or SQLite's write lock: several hosts may run it at once, and running it \
            again changes nothing. With --to, the database in use must be SQLite: its jobs that are not \
            finished (and the recurring tasks added at run time) are copied into the PostgreSQL database \
            given, in one transaction, and only then deleted from the SQLite file, so that an \
            interruption loses nothing: Ctrl-C while it copies rolls the copy back (exit 130). On a \
            terminal a progress line shows the jobs copied. Stop Drover first; then point \
            database.url at PostgreSQL.
            """
    )

    @OptionGroup var database: DatabaseOptions

    @Flag(name: .customLong("status"), help: "Only show which migrations are applied and which are pending.")
    var statusOnly = false

    @Option(name: .customLong("to"), help: ArgumentHelp(
        "Move the live jobs of the SQLite database in use into this PostgreSQL database (migrated first).",
        valueName: "postgresql-url"))
    var destination: String?

    func validate() throws {
        if let destination {
            if destination.isEmpty || DatabaseLocation.sqlitePath(destination) != nil {
                throw ValidationError("--to needs a PostgreSQL database: a postgresql:// URL or libpq key=value pairs")
            }
            if statusOnly { throw ValidationError("--status and --to do not go together; run them one after the other") }
        }
    }

    func run() throws {
        let location = try reportingErrors { try database.resolve() }
        if let destination {
            return try move(from: location, to: destination)
        }
        try reportingErrors(location: location) {
            try migrate(StoreFactory.driver(for: location.connectionString), location: location)
        }
    }

    private func migrate<Driver: StoreDriver>(_: Driver.Type, location: DatabaseLocation) throws {
        let (store, connection) = try Driver.open(
            url: location.connectionString,
            options: StoreOptions(schema: location.schema, applicationName: "drover migrate", migrating: .never))
        if statusOnly {
            let status = try store.migrationStatus(on: connection)
            for migration in Driver.migrations {
                let state = status.pending.contains { $0.version == migration.version } ? "pending" : "applied"
                print("\(migration.version)\t\(migration.name)\t\(state)")
            }
            return warnAboutUnknown(status.unknownVersions, schema: location.schema)
        }
        report(try store.migrate(on: connection, progress: announce), schema: location.schema)
    }

    private func announce(_ migration: Migration) {
        print("applied migration \(migration.version) (\(migration.name))")
    }

    private func report(_ report: Migrator.Report, schema: String) {
        if report.applied.isEmpty {
            print("schema \"\(schema)\" is up to date at version \(report.currentVersion)")
        } else {
            print("schema \"\(schema)\" is now at version \(report.currentVersion)")
        }
        warnAboutUnknown(report.unknownVersions, schema: schema)
    }

    /// `--to`: SQLite's live jobs into PostgreSQL, refused while Drover runs on the SQLite file.
    private func move(from location: DatabaseLocation, to destination: String) throws {
        guard let path = DatabaseLocation.sqlitePath(location.connectionString) else {
            printError("drover: --to moves jobs out of a SQLite database, and the database in use (\(location.source)) is PostgreSQL")
            throw ExitCode(ExitStatus.usage.rawValue)
        }
        guard FileManager.default.fileExists(atPath: path) else {
            printError("drover: there is no SQLite database at \(path) (\(location.source)); nothing to move")
            throw ExitCode(ExitStatus.usage.rawValue)
        }
        let configuration = try reportingErrors {
            try ConfigurationLoader.load(explicitPath: database.configPath, environment: ProcessInfo.processInfo.environment)
                ?? Configuration()
        }
        try reportingErrors(location: location) {
            let (source, sqlite) = try SQLiteDriver.open(
                url: location.connectionString, options: StoreOptions(schema: location.schema, applicationName: "drover migrate"))
            let threshold = configuration.supervisor.aliveThreshold.seconds
            let live = try source.listProcesses(on: sqlite).filter { $0.heartbeatAge < threshold }
            guard live.isEmpty else {
                printError("drover: Drover is running on \(path) (\(live.count) live processes, such as \(live[0].kind.rawValue) "
                           + "\(live[0].name) on \(live[0].hostname)); stop it first (systemctl stop drover), then run this again")
                throw ExitCode(ExitStatus.unavailable.rawValue)
            }
            // From here Ctrl-C is taken: the copy checks for it and rolls back.
            Interruption.catchInterrupts()
            let (target, postgres) = try PostgresDriver.open(
                url: destination, options: StoreOptions(schema: location.schema, applicationName: "drover migrate", migrating: .never))
            try target.migrate(on: postgres, progress: announce)
            // Ctrl-C before PostgreSQL commits rolls the copy back; the progress line is a terminal's.
            var progress = ProgressLine(json: false)
            let moved: MoveToPostgres.Report
            do {
                moved = try MoveToPostgres(from: source, to: target).run(from: sqlite, to: postgres) { copied, total in
                    progress.update("copied", copied, of: total)
                    return !Interruption.wasRequested
                }
                progress.finish()
            } catch let error as MoveToPostgres.Interrupted {
                progress.finish()
                printError("drover: \(error)")
                throw ExitCode(130)
            }
            let states = moved.moved.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.value) \($0.key.rawValue)" }
            print("moved \(moved.total) jobs\(states.isEmpty ? "" : " (" + states.joined(separator: ", ") + ")") and "
                  + "\(moved.tasks) recurring tasks added at run time from \(path) to \(Connection.redacted(destination))")
            print("next: set database.url (or DROVER_DATABASE_URL) to that PostgreSQL database and start drover")
        }
    }

    private func warnAboutUnknown(_ versions: [Int], schema: String) {
        guard !versions.isEmpty else { return }
        printError(
            "drover: warning: schema \"\(schema)\" has migrations this drover \(Drover.version) does not know "
                + "(\(versions.map(String.init).joined(separator: ", "))): a newer Drover migrated it; upgrade this one")
    }
}
