import ArgumentParser
import DroverPersistence
import DroverQueue
import DroverRuntime
import Foundation

/// Options of every command that talks to the database.
struct DatabaseOptions: ParsableArguments {
    @Option(
        name: .customLong("database-url"),
        help: ArgumentHelp(
            "The database: a postgresql:// URL or libpq key=value pairs, or sqlite:///path for a SQLite file.",
            discussion: "Overrides DROVER_DATABASE_URL and database.url in the configuration file. Prefer "
                + "PGPASSWORD, ~/.pgpass or a credential file to a password in the URL.",
            valueName: "url"))
    var databaseURL: String?

    @Option(
        name: .customLong("config"),
        help: ArgumentHelp(
            "The configuration file (default: $DROVER_CONFIG, else /etc/drover/drover.yml if it exists).",
            valueName: "path"))
    var configPath: String?

    @Option(
        name: .customLong("schema"),
        help: ArgumentHelp(
            "The PostgreSQL schema of Drover's tables (default: database.schema in the configuration, else drover).",
            valueName: "name"))
    var schema: String?

    func validate() throws {
        if let schema {
            do {
                _ = try SQLIdentifier.validated(schema, what: "--schema")
            } catch {
                throw ValidationError(error.message)
            }
        }
        if let databaseURL, databaseURL.isEmpty {
            throw ValidationError("--database-url is empty; give a URL such as postgresql:///drover?host=/run/postgresql, or leave the option out")
        }
    }

    /// Reads the configuration (if any) and decides which database to use.
    func resolve(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> DatabaseLocation {
        let configuration = try ConfigurationLoader.load(explicitPath: configPath, environment: environment)
        return DatabaseLocation.resolve(
            commandLineURL: databaseURL, commandLineSchema: schema, environment: environment,
            configuration: configuration)
    }
}

extension DatabaseOptions {
    /// Connects to the resolved database and runs `body` with Drover's queue there, reporting any
    /// error with the documented exit status. A SQLite file is created and migrated when it is new
    /// (nothing else shares it; PostgreSQL's schema is the operator's, through `drover migrate`).
    func withQueue(_ body: (any QueueAdmin) throws -> Void) throws {
        let location = try reportingErrors { try resolve() }
        try reportingErrors(location: location) {
            try body(try StoreFactory.openAdmin(url: location.connectionString, options: StoreOptions(schema: location.schema)))
        }
    }
}
