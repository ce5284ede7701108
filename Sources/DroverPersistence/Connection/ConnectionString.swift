import CLibPQ
import Foundation

/// What is known about a connection string before connecting: the options libpq parsed from it,
/// and the secrets that must never reach a message.
struct ConnectionString {
    let raw: String
    let options: [String: String]
    let secrets: [String]

    /// Parses `raw` (a `postgresql://` URL or `key=value` pairs; empty means libpq's defaults).
    init(_ raw: String) throws(DatabaseError) {
        self.raw = raw
        var secrets = Self.suspectedSecrets(in: raw)
        if let envPassword = ProcessInfo.processInfo.environment["PGPASSWORD"], !envPassword.isEmpty {
            secrets.append(envPassword)
        }
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
        if let password = options["password"], !password.isEmpty { secrets.append(password) }
        self.options = options
        self.secrets = secrets.filter { !$0.isEmpty }.sorted { $0.count > $1.count }
    }

    /// Replaces every occurrence of a secret in `text`.
    static func redact(_ text: String, secrets: [String]) -> String {
        var text = text
        for secret in secrets where !secret.isEmpty {
            text = text.replacingOccurrences(of: secret, with: "***")
        }
        return text
    }

    /// Passwords as they may appear in the raw text, found without trusting libpq to parse it:
    /// the URL's user-info password (raw and percent-decoded) and `password=` values.
    static func suspectedSecrets(in raw: String) -> [String] {
        var found: [String] = []
        if let scheme = raw.range(of: "://") {
            let rest = raw[scheme.upperBound...]
            let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
            let authority = rest[..<authorityEnd]
            if let at = authority.lastIndex(of: "@") {
                let userInfo = authority[..<at]
                if let colon = userInfo.firstIndex(of: ":") {
                    let password = String(userInfo[userInfo.index(after: colon)...])
                    found.append(password)
                    if let decoded = password.removingPercentEncoding { found.append(decoded) }
                }
            }
        }
        // key=value form and ?password= in URLs.
        var search = raw[...]
        while let range = search.range(of: "password=") {
            var value = search[range.upperBound...]
            if value.first == "'" {
                value = value.dropFirst()
                let end = value.firstIndex(of: "'") ?? value.endIndex
                found.append(String(value[..<end]))
            } else {
                let end = value.firstIndex(where: { $0 == " " || $0 == "&" }) ?? value.endIndex
                let token = String(value[..<end])
                found.append(token)
                if let decoded = token.removingPercentEncoding { found.append(decoded) }
            }
            search = raw[range.upperBound...]
        }
        return found
    }
}

extension Connection {
    /// `connectionString` with its password (and anything that looks like one) replaced by `***`,
    /// for showing a configured URL to people.
    public static func redacted(_ connectionString: String) -> String {
        ConnectionString.redact(connectionString, secrets: ConnectionString.suspectedSecrets(in: connectionString))
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

    init(_ handle: OpaquePointer) {
        func read(_ value: UnsafeMutablePointer<CChar>?) -> String { value.map { String(cString: $0) } ?? "" }
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
