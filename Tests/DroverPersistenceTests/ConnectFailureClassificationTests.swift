@testable import DroverPersistence
import Testing

/// libpq reports connection failures as text only; these are texts libpq 15 and PostgreSQL 15 write.
@Suite("Classifying connection failures")
struct ConnectFailureClassificationTests {
    let target = ConnectionTarget(host: "/run/postgresql", port: "5432", database: "drover", user: "app")

    @Test("each failure gets its code", arguments: [
        ("connection to server on socket \"/run/postgresql/.s.PGSQL.5432\" failed: FATAL:  password authentication failed for user \"app\"\n",
         DatabaseError.Code.authenticationFailed),
        ("connection to server on socket \"/run/postgresql/.s.PGSQL.5432\" failed: fe_sendauth: no password supplied\n", .authenticationFailed),
        ("connection to server on socket \"/run/postgresql/.s.PGSQL.5432\" failed: FATAL:  role \"app\" does not exist\n", .authenticationFailed),
        ("connection to server at \"10.0.0.5\", port 5432 failed: FATAL:  no pg_hba.conf entry for host \"10.0.0.9\", user \"app\", database \"drover\", no encryption\n",
         .authenticationFailed),
        ("connection to server on socket \"/run/postgresql/.s.PGSQL.5432\" failed: FATAL:  pg_hba.conf rejects connection for host \"[local]\", user \"app\", database \"drover\", no encryption\n",
         .authenticationFailed),
        ("connection to server on socket \"/run/postgresql/.s.PGSQL.5432\" failed: FATAL:  database \"drover\" does not exist\n", .databaseNotFound),
        ("connection to server on socket \"/run/postgresql/.s.PGSQL.5432\" failed: No such file or directory\n\tIs the server running locally and accepting connections on that socket?\n",
         .connectionFailed),
        ("could not translate host name \"db.invalid\" to address: Name or service not known\n", .connectionFailed),
        ("connection to server at \"10.0.0.5\", port 5432 failed: timeout expired\n", .connectionFailed),
        ("invalid integer value \"x\" for connection option \"port\"\n", .invalidConnectionString),
        ("invalid sslmode value: \"sometimes\"\n", .invalidConnectionString),
    ])
    func classifies(_ text: String, _ code: DatabaseError.Code) {
        let error = Connection.classifyConnectFailure(text, target: target, secrets: [])
        #expect(error.code == code, "\(error)")
    }

    @Test("the message names the target, drops libpq's duplicate prefix and hints, and redacts secrets")
    func message() {
        let error = Connection.classifyConnectFailure(
            "connection to server on socket \"/run/postgresql/.s.PGSQL.5432\" failed: No such file or directory\n\tIs the server running locally?\n",
            target: target, secrets: [])
        #expect(error.message.hasPrefix(
            "cannot connect to database \"drover\" on socket /run/postgresql/.s.PGSQL.5432 as user \"app\": No such file or directory;"))
        #expect(!error.message.contains("Is the server running locally?"))
        let redacted = Connection.classifyConnectFailure("invalid percent-encoded token: \"hunter2%zz\"", target: target, secrets: ["hunter2%zz"])
        #expect(!redacted.message.contains("hunter2"))
    }
}
