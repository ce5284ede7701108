import ArgumentParser
import DroverPersistence
import DroverQueue
import DroverRuntime

/// `drover migrate`: creates or upgrades Drover's tables.
struct MigrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Create or upgrade Drover's tables in the database.",
        discussion: """
            Applies the migrations the database lacks, each in its own transaction, under an advisory \
            lock: several hosts may run it at once, and running it again changes nothing.
            """
    )

    @OptionGroup var database: DatabaseOptions

    @Flag(name: .customLong("status"), help: "Only show which migrations are applied and which are pending.")
    var statusOnly = false

    func run() throws {
        let location = try reportingErrors { try database.resolve() }
        try reportingErrors(location: location) {
            let migrator = try DroverSchema.migrator(schema: location.schema)
            let connection = try Connection(location.connectionString, applicationName: "drover migrate")
            if statusOnly {
                let status = try migrator.status(on: connection)
                for migration in migrator.migrations {
                    let state = status.pending.contains { $0.version == migration.version } ? "pending" : "applied"
                    print("\(migration.version)\t\(migration.name)\t\(state)")
                }
                warnAboutUnknown(status.unknownVersions, schema: location.schema)
                return
            }
            let report = try migrator.migrate(on: connection) { migration in
                print("applied migration \(migration.version) (\(migration.name))")
            }
            if report.applied.isEmpty {
                print("schema \"\(location.schema)\" is up to date at version \(report.currentVersion)")
            } else {
                print("schema \"\(location.schema)\" is now at version \(report.currentVersion)")
            }
            warnAboutUnknown(report.unknownVersions, schema: location.schema)
        }
    }

    private func warnAboutUnknown(_ versions: [Int], schema: String) {
        guard !versions.isEmpty else { return }
        printError(
            "drover: warning: schema \"\(schema)\" has migrations this drover \(Drover.version) does not know "
                + "(\(versions.map(String.init).joined(separator: ", "))): a newer Drover migrated it; upgrade this one")
    }
}
