import ArgumentParser
import DroverRuntime
import Foundation

/// `drover check`: validates the configuration without starting anything.
struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate the configuration file and print the configuration in effect.",
        discussion: """
            Reads --config (else $DROVER_CONFIG, else /etc/drover/drover.yml), reports the first problem \
            with its file, line and key (exit 78), or prints the whole configuration with every default \
            filled in (exit 0), and the database in effect (--database-url, else $DROVER_DATABASE_URL, \
            else the file's, else libpq's defaults or SQLite) with its password as ***. It does not \
            connect to the database. A handler whose program is not installed (or not executable) is \
            reported as a warning on stderr, not an error.
            """
    )

    @OptionGroup var database: DatabaseOptions

    @Flag(name: .customLong("quiet"), help: "Print nothing when the file is valid.")
    var quiet = false

    func run() throws {
        let environment = ProcessInfo.processInfo.environment
        let configuration = try reportingErrors { try ConfigurationLoader.load(explicitPath: database.configPath, environment: environment) }
        for warning in configuration?.handlerWarnings(environment: environment) ?? [] {
            FileHandle.standardError.write(Data("drover: warning: \(warning)\n".utf8))
        }
        guard !quiet else { return }
        if let path = configuration?.path {
            print("# \(path) is valid; the configuration in effect, with defaults filled in:")
        } else {
            print("# no configuration file at \(ConfigurationLoader.defaultPath); the defaults in effect:")
        }
        let location = DatabaseLocation.resolve(
            commandLineURL: database.databaseURL, commandLineSchema: database.schema, environment: environment,
            configuration: configuration)
        print("# the database in effect: \(location.isSQLite ? "SQLite" : "PostgreSQL") \(location.redacted), "
              + "schema \(location.schema) (from \(location.source))")
        print((configuration ?? Configuration()).renderedYAML(), terminator: "")
    }
}
