import Drover
import Foundation
import Logging
import PostgresNIO

/// What the app's jobs share in a worker: its PostgreSQL client (postgres-nio), built once when
/// the worker starts (`Drover.main(jobs:services:)`) and shut down when it stops.
final class PostsServices: ServicesShutdown, Sendable {
    let client: PostgresClient
    /// The app's table, schema-qualified and quoted.
    let posts: String
    let logger = Logger(label: "posts")
    private let running: Task<Void, Never>

    init(environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        client = PostgresClient(configuration: try PostsDatabase.configuration(environment: environment))
        posts = try PostsDatabase.postsTable(environment: environment)
        running = Task { [client] in await client.run() }
    }

    func shutdown() async throws {
        running.cancel()
        await running.value
    }
}

/// The app's database settings, from the environment: `POSTS_DATABASE_URL` and `POSTS_SCHEMA`, the
/// schema of the app's table (`public`). The app's own variable, not Drover's `DROVER_DATABASE_URL`:
/// Drover's supervisor hands its workers the database URL in their spec, and removes that variable
/// from their environment (any process of the user can read /proc/PID/environ), while the workers'
/// services read the app's settings.
enum PostsDatabase {
    struct Misconfigured: Error, CustomStringConvertible {
        let description: String
    }

    /// A postgres-nio configuration from a `postgresql://` URL: `postgresql://user:password@host:port/db`,
    /// or a unix socket as libpq has it, `postgresql:///db?host=/run/postgresql`. The password is
    /// never part of an error.
    static func configuration(environment: [String: String]) throws -> PostgresClient.Configuration {
        guard let url = environment["POSTS_DATABASE_URL"], !url.isEmpty else {
            throw Misconfigured(description: "set POSTS_DATABASE_URL to the app's PostgreSQL database, e.g. postgresql:///posts?host=/run/postgresql")
        }
        guard let components = URLComponents(string: url), ["postgresql", "postgres"].contains(components.scheme ?? "") else {
            throw Misconfigured(description: "POSTS_DATABASE_URL is not a postgresql:// URL (posts-example needs PostgreSQL)")
        }
        let query = Dictionary((components.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { _, last in last })
        let host = query["host"] ?? components.host.flatMap { $0.isEmpty ? nil : $0 } ?? "/run/postgresql"
        guard let port = Int(query["port"] ?? components.port.map(String.init) ?? "5432") else {
            throw Misconfigured(description: "the port in POSTS_DATABASE_URL is not a number")
        }
        let user = components.user ?? query["user"] ?? environment["PGUSER"] ?? currentUser()
        let database = components.path.count > 1 ? String(components.path.dropFirst()) : user
        let password = components.password ?? query["password"] ?? environment["PGPASSWORD"]
        if host.hasPrefix("/") {
            return PostgresClient.Configuration(unixSocketPath: "\(host)/.s.PGSQL.\(port)", username: user, password: password, database: database)
        }
        return PostgresClient.Configuration(host: host, port: port, username: user, password: password, database: database, tls: .disable)
    }

    /// `"POSTS_SCHEMA"."posts"`, the name checked: lowercase letters, digits and underscores.
    static func postsTable(environment: [String: String]) throws -> String {
        let schema = environment["POSTS_SCHEMA"] ?? "public"
        guard let first = schema.unicodeScalars.first, !("0"..."9").contains(first), schema.unicodeScalars.count <= 63,
              schema.unicodeScalars.allSatisfy({ ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" }) else {
            throw Misconfigured(description: "POSTS_SCHEMA \"\(schema)\" is not a plain name: use lowercase letters, digits and _")
        }
        return "\"\(schema)\".\"posts\""
    }

    private static func currentUser() -> String {
        guard let entry = getpwuid(geteuid()), let name = entry.pointee.pw_name else { return "postgres" }
        return String(cString: name)
    }
}
