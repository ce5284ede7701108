import Drover
import DroverQueue
import DroverTestSupport
import Foundation
import Logging
import PostgresNIO
import Synchronization

/// The test PostgreSQL (`DROVER_TEST_DATABASE_URL`, a libpq URL) as a postgres-nio client: the
/// same server, database and user. `scripts/with-postgres` listens on a unix socket only
/// (`postgresql:///drover_test?host=/tmp/…/s&port=5432`).
enum NIODatabase {
    static let logger = Logger(label: "drover.postgres-nio-tests", factory: { _ in SwiftLogNoOpLogHandler() })

    static func configuration() throws -> PostgresClient.Configuration {
        let url = try TestDatabase.url()
        guard let components = URLComponents(string: url), ["postgresql", "postgres"].contains(components.scheme) else {
            throw SetupFailed(description: "\(TestDatabase.environmentVariable) is not a postgresql:// URL")
        }
        let query = Dictionary((components.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { _, last in last })
        let host = query["host"] ?? components.host ?? "/var/run/postgresql"
        let port = query["port"].flatMap(Int.init) ?? components.port ?? 5432
        let user = components.user ?? query["user"] ?? ProcessInfo.processInfo.environment["PGUSER"] ?? currentUser()
        let database = components.path.isEmpty || components.path == "/" ? user : String(components.path.dropFirst())
        var configuration = host.hasPrefix("/")
            ? PostgresClient.Configuration(unixSocketPath: "\(host)/.s.PGSQL.\(port)", username: user, password: components.password,
                                           database: database)
            : PostgresClient.Configuration(host: host, port: port, username: user, password: components.password,
                                           database: database, tls: .disable)
        configuration.options.minimumConnections = 0
        return configuration
    }

    static func currentUser() -> String {
        guard let entry = getpwuid(geteuid()), let name = entry.pointee.pw_name else { return "postgres" }
        return String(cString: name)
    }

    /// Runs `body` with a running client, shut down afterwards.
    static func withClient<R: Sendable>(_ body: (PostgresClient) async throws -> R) async throws -> R {
        let client = PostgresClient(configuration: try configuration(), backgroundLogger: logger)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            return try await body(client)
        }
    }
}

/// A migrated schema of its own, an app table `notes` in it, a postgres-nio client and a libpq
/// connection (to read what was written, and to enqueue through the libpq Swift API); the schema
/// is dropped afterwards.
struct NIOScene: Sendable {
    let schema: String
    let client: PostgresClient
    let store: PostgresJobStore

    var notes: String { "\"\(schema)\".notes" }

    static func with<R: Sendable>(_ body: (NIOScene, Connection) async throws -> R) async throws -> R {
        let db = try TestDatabase.connect()
        let schema = TestDatabase.uniqueSchemaName()
        let store = try PostgresJobStore(schema: schema)
        try store.migrate(on: db)
        try db.execute("CREATE TABLE \(SQLIdentifier(schema, "notes")) (id bigserial PRIMARY KEY, body text NOT NULL UNIQUE)")
        defer { _ = try? TestDatabase.connect().execute("DROP SCHEMA IF EXISTS \(SQLIdentifier(schema)) CASCADE") }
        return try await NIODatabase.withClient { client in
            try await body(NIOScene(schema: schema, client: client, store: store), db)
        }
    }

    /// Inserts a note on `connection` (inside its transaction, if any) and returns its id.
    func insertNote(_ body: String, on connection: PostgresConnection) async throws -> Int {
        let rows = try await connection.query("INSERT INTO \(unescaped: notes) (body) VALUES (\(body)) RETURNING id", logger: NIODatabase.logger)
        for try await id in rows.decode(Int.self) { return id }
        throw SetupFailed(description: "the insert returned no id")
    }

    func count(_ table: String, _ db: Connection) throws -> Int {
        try db.query("SELECT count(*) AS n FROM \(SQLIdentifier(schema, table))")[0].decode("n", as: Int.self)
    }

    /// The columns a job's enqueue decides, as text (equal rows compare equal).
    func row(_ id: Int, _ db: Connection) throws -> [String: String] {
        let row = try db.query("""
            SELECT class_name, queue_name, priority::text AS priority, arguments::text AS arguments, max_attempts::text AS max_attempts,
                   coalesce(extract(epoch FROM timeout)::text, 'none') AS timeout, coalesce(unique_key, 'none') AS unique_key,
                   coalesce(concurrency_key, 'none') AS concurrency_key, coalesce(trace_context::text, 'none') AS trace_context
            FROM \(SQLIdentifier(schema, "jobs")) WHERE id = \(id)
            """)[0]
        var values: [String: String] = [:]
        for column in ["class_name", "queue_name", "priority", "arguments", "max_attempts", "timeout", "unique_key", "concurrency_key", "trace_context"] {
            values[column] = try row.decode(column, as: String.self)
        }
        return values
    }
}

/// What the test jobs did, in order.
final class Ledger: Sendable {
    private let entries = Mutex<[String]>([])
    func record(_ entry: String) { entries.withLock { $0.append(entry) } }
    var all: [String] { entries.withLock { $0 } }
}

/// A job type with defaults of its own for everything `enqueue` takes from the type.
struct PublishNote: Job {
    static let queue = "notes"
    static let priority = 7
    static let maxAttempts = 3
    static let timeout: Duration? = .seconds(45)

    var noteID: Int
    var text: String
    var key: String?

    var uniqueKey: String? { key }

    func perform(_ context: JobContext) async throws {
        try context.services(Ledger.self).record("published \(noteID): \(text)")
    }
}

/// A job type with every default Drover's.
struct Plain: Job {
    var n: Int
    func perform(_ context: JobContext) async throws {}
}

/// A unique key with a NUL in it (which PostgreSQL cannot store), from arguments without one.
struct NULKey: Job {
    var uniqueKey: String? { "key\u{0}" }
    func perform(_ context: JobContext) async throws {}
}

struct SetupFailed: Error, CustomStringConvertible { let description: String }
