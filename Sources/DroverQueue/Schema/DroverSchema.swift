import DroverPersistence

/// Drover's tables, as the numbered migrations that create them.
///
/// ```swift
/// let report = try DroverSchema.migrator(schema: "drover").migrate(on: db)
/// ```
public enum DroverSchema {
    /// The schema used when none is configured.
    public static let defaultName = "drover"

    /// Every migration, in order. Append only: a migration that has shipped is never edited.
    public static let migrations: [Migration] = [
        Migration(version: 1, name: "data_model", sql: dataModelSQL),
        Migration(version: 2, name: "enqueue_functions", sql: enqueueFunctionsSQL),
        Migration(version: 3, name: "job_control", sql: concurrencySQL + jobControlSQL),
    ]

    /// The version a fully migrated database is at.
    public static var latestVersion: Int { migrations.last!.version }

    /// A migrator for Drover's tables in `schema`.
    public static func migrator(schema: String = defaultName) throws(DatabaseError) -> Migrator {
        try Migrator(schema: schema, migrations: migrations)
    }
}
