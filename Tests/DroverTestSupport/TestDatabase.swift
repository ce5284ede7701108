import DroverPersistence
import DroverQueue
import Foundation

/// The PostgreSQL server the tests run against: `DROVER_TEST_DATABASE_URL`, which `make test` sets
/// to a throwaway cluster it starts (or to the server you name).
public enum TestDatabase {
    public static let environmentVariable = "DROVER_TEST_DATABASE_URL"

    /// Why database tests cannot run, as a failure (never a skip).
    public struct Unavailable: Error, CustomStringConvertible {
        public let description: String
    }

    /// The test server's connection string.
    public static func url() throws -> String {
        guard let url = ProcessInfo.processInfo.environment[environmentVariable], !url.isEmpty else {
            throw Unavailable(description: """
                \(environmentVariable) is not set, so there is no PostgreSQL to test against. Run the tests \
                with `make test`, which starts a throwaway PostgreSQL, or set \(environmentVariable) to a \
                server where you may create and drop schemas.
                """)
        }
        return url
    }

    /// A new connection to the test server.
    public static func connect(applicationName: String = "drover-tests") throws -> Connection {
        do {
            return try Connection(try url(), applicationName: applicationName)
        } catch let error as DatabaseError {
            throw Unavailable(description: "cannot reach the test PostgreSQL (\(environmentVariable)): \(error)")
        }
    }

    /// A schema name no other test uses.
    public static func uniqueSchemaName() -> String {
        "drover_t_" + String(UInt64.random(in: .min ... .max), radix: 36)
    }

    /// The role the wrong-password tests log in as, and its right password. The throwaway cluster of
    /// `make test` asks this role (and only it) for a password (scram-sha-256 in pg_hba.conf).
    public static let passwordRole = (name: "drover_password_test", password: "Sup3r-Secret-pw")

    /// Creates ``passwordRole`` if it is missing and sets its password.
    public static func ensurePasswordRole() throws {
        try connect().execute(unsafeRawScript: """
            DO $$ BEGIN
                CREATE ROLE \(passwordRole.name) LOGIN;
            EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
            END $$;
            ALTER ROLE \(passwordRole.name) PASSWORD '\(passwordRole.password)';
            """)
    }

    /// Whether server process `pid` is blocked waiting for a lock (a row lock, an advisory lock).
    public static func isWaitingForLock(_ pid: Int32, admin: Connection) throws -> Bool {
        try admin.query("SELECT wait_event_type FROM pg_stat_activity WHERE pid = \(pid)")
            .first?.decode("wait_event_type", as: String?.self) == "Lock"
    }

    /// Runs `body` with an empty schema of its own (migrated to Drover's tables when `migrate`),
    /// then drops the schema, whether `body` passed or not.
    public static func withSchema<R>(
        migrate: Bool = true, _ body: (_ schema: String, _ connection: Connection) throws -> R
    ) throws -> R {
        let connection = try connect()
        let schema = uniqueSchemaName()
        if migrate {
            try PostgresJobStore(schema: schema).migrate(on: connection)
        } else {
            try connection.execute("CREATE SCHEMA \(SQLIdentifier(schema))")
        }
        defer {
            if let cleanup = try? TestDatabase.connect() {
                _ = try? cleanup.execute("DROP SCHEMA IF EXISTS \(SQLIdentifier(schema)) CASCADE")
            }
        }
        return try body(schema, connection)
    }
}
