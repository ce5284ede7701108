import CLibPQ
import Foundation

/// What is known about a connection string before connecting: the options libpq parsed from it,
/// and the secrets that must never reach a message (``ConnectionStringMask``).
struct ConnectionString {
    let raw: String
    let options: [String: String]
    let secrets: [String]

    /// Parses `raw` (a `postgresql://` URL or `key=value` pairs; empty means libpq's defaults).
    init(_ raw: String) throws(DatabaseError) {
        self.raw = raw
        let mask = ConnectionStringMask(raw)
        secrets = mask.secrets
        var options: [String: String] = [:]
        if !raw.isEmpty {
            var errorMessage: UnsafeMutablePointer<CChar>? = nil
            guard let parsed = PQconninfoParse(raw, &errorMessage) else {
                let reason = errorMessage.map { String(cString: $0) } ?? "libpq could not parse it"
                if let errorMessage { PQfreemem(errorMessage) }
                let shown = Self.redact(reason.trimmingCharacters(in: .whitespacesAndNewlines), secrets: secrets)
                throw DatabaseError(
                    .invalidConnectionString,
                    "the database URL is not valid: \(shown); expected postgresql://USER@HOST:PORT/DATABASE, "
                        + "postgresql:///DATABASE?host=/run/postgresql or key=value pairs such as "
                        + "\"host=/run/postgresql dbname=drover\"")
            }
            defer { PQconninfoFree(parsed) }
            var option = parsed
            while let keyword = option.pointee.keyword {
                if let value = option.pointee.val {
                    options[String(cString: keyword)] = String(cString: value)
                }
                option += 1
            }
        }
        self.options = options
    }

    /// Replaces every occurrence of a secret in `text`, longest first.
    static func redact(_ text: String, secrets: [String]) -> String {
        var text = text
        for secret in secrets.sorted(by: { $0.count > $1.count }) where !secret.isEmpty {
            text = text.replacingOccurrences(of: secret, with: ConnectionStringMask.marker)
        }
        return text
    }
}

extension Connection {
    /// `connectionString` as people may see it: every password `***`, found with libpq's own parser
    /// (a URL's user-info and `?password=`, `password = value` pairs quoted or not), the rest as
    /// written; a string libpq refuses has whatever looks like a password masked. `PGPASSWORD`'s
    /// value is masked wherever it appears.
    ///
    /// ```swift
    /// Connection.redacted("postgresql://app:hunter2@db/app")       // "postgresql://app:***@db/app"
    /// Connection.redacted("host=db password = 'hunter 2'")          // "host=db password = ***"
    /// ```
    public static func redacted(_ connectionString: String) -> String {
        ConnectionStringMask(connectionString).text
    }

    /// `text` with every form of `connectionString`'s passwords, and of `password`, masked: for a
    /// message of someone else's code (an app's error) that may quote them.
    ///
    /// ```swift
    /// Connection.redacting("cannot reach postgresql://app:hunter2@db", secretsOf: "postgresql://app:hunter2@db/app", password: nil)
    /// // "cannot reach postgresql://app:***@db"
    /// ```
    public static func redacting(_ text: String, secretsOf connectionString: String, password: String?) -> String {
        ConnectionString.redact(text, secrets: ConnectionStringMask(connectionString, environmentPassword: password).secrets)
    }
}

/// Where a connection went, for messages: host or socket, port, database, user. Never the password.
public struct ConnectionTarget: Sendable, CustomStringConvertible {
    public let host: String
    public let port: String
    public let database: String
    public let user: String

    init(host: String, port: String, database: String, user: String) {
        self.host = host
        self.port = port
        self.database = database
        self.user = user
    }

    /// What libpq says of `handle`, with any of `secrets` masked (a user name equal to the password,
    /// a database name that is a URL with one).
    init(_ handle: OpaquePointer, secrets: [String]) {
        func read(_ value: UnsafeMutablePointer<CChar>?) -> String {
            ConnectionString.redact(value.map { String(cString: $0) } ?? "", secrets: secrets)
        }
        host = read(PQhost(handle))
        port = read(PQport(handle))
        database = read(PQdb(handle))
        user = read(PQuser(handle))
    }

    public var description: String {
        var place: String
        if host.hasPrefix("/") || host.isEmpty {
            let directory = host.isEmpty ? "the default socket directory" : host
            place = "socket \(directory)/.s.PGSQL.\(port.isEmpty ? "5432" : port)"
        } else {
            place = "host \(host) port \(port.isEmpty ? "5432" : port)"
        }
        return "database \"\(database)\" on \(place) as user \"\(user)\""
    }
}
