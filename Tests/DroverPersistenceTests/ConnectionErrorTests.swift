import DroverPersistence
import DroverTestSupport
import Foundation
import Testing

@Suite("Connecting: URLs, libpq settings and readable failures")
struct ConnectionErrorTests {
    static let password = TestDatabase.passwordRole.password

    /// The test server's socket directory, port and database, from DROVER_TEST_DATABASE_URL.
    static func server() throws -> (host: String, port: String, database: String) {
        let probe = try TestDatabase.connect()
        return (probe.target.host, probe.target.port, probe.target.database)
    }

    @Test("a URL and a key=value string both connect, and the target names socket, database and user")
    func connectsFromURLAndKeywords() throws {
        let (host, port, database) = try Self.server()
        let fromKeywords = try Connection("host=\(host) port=\(port) dbname=\(database)")
        #expect(fromKeywords.target.database == database)
        #expect(fromKeywords.target.description.contains("socket \(host)/.s.PGSQL.\(port)"))
        let fromURL = try Connection(try TestDatabase.url())
        #expect(fromURL.target.database == database)
    }

    @Test("a wrong password is authenticationFailed, and the password is in no message")
    func wrongPassword() throws {
        let (host, port, database) = try Self.server()
        try TestDatabase.ensurePasswordRole()
        let good = "postgresql://drover_password_test:\(Self.password)@/\(database)?host=\(host)&port=\(port)"
        let goodConnection = try Connection(good)
        #expect(goodConnection.target.user == "drover_password_test")

        for wrong in ["postgresql://drover_password_test:Wr0ng-pw-XYZ@/\(database)?host=\(host)&port=\(port)",
                      "host=\(host) port=\(port) dbname=\(database) user=drover_password_test password=Wr0ng-pw-XYZ"] {
            let error = #expect(throws: DatabaseError.self) { try Connection(wrong) }
            #expect(error?.code == .authenticationFailed,
                    "the server must ask drover_password_test for a password (make test's cluster does); got \(String(describing: error))")
            #expect(error?.description.contains("Wr0ng-pw-XYZ") == false)
            #expect(error?.description.contains("drover_password_test") == true)
        }
    }

    @Test("an unreachable host is connectionFailed and says where it tried")
    func unreachableHost() throws {
        let error = #expect(throws: DatabaseError.self) {
            try Connection("postgresql://someone:\(Self.password)@127.0.0.1:1/anything?connect_timeout=5")
        }
        #expect(error?.code == .connectionFailed)
        #expect(error?.description.contains("host 127.0.0.1 port 1") == true)
        #expect(error?.description.contains(Self.password) == false)

        let noSocket = #expect(throws: DatabaseError.self) { try Connection("host=/nonexistent/drover dbname=x") }
        #expect(noSocket?.code == .connectionFailed)
        #expect(noSocket?.description.contains("socket /nonexistent/drover/.s.PGSQL.5432") == true)
    }

    @Test("a missing database is databaseNotFound and says how to create it")
    func missingDatabase() throws {
        let (host, port, _) = try Self.server()
        let error = #expect(throws: DatabaseError.self) {
            try Connection("host=\(host) port=\(port) dbname=drover_no_such_database")
        }
        #expect(error?.code == .databaseNotFound)
        #expect(error?.description.contains("createdb drover_no_such_database") == true)
    }

    @Test("a malformed URL is invalidConnectionString and does not echo the password", arguments: [
        "postgresql://user:\(password)%zz@host/db",
        "postgresql://user:\(password)@host:notaport/db?bogus_option=1",
        "host=x password=\(password) unknown_keyword=1",
        "host='unterminated password=\(password)",
    ])
    func malformedURL(_ url: String) throws {
        let error = #expect(throws: DatabaseError.self) { try Connection(url) }
        #expect(error?.code == .invalidConnectionString || error?.code == .connectionFailed)
        #expect(error?.description.contains(Self.password) == false, "\(String(describing: error))")
    }
}
