@testable import DroverQueue
import DroverPersistence
import DroverTestSupport
import Foundation
import Testing

/// A runtime process's PostgreSQL connection never waits for ever: on a path that died, on a
/// server that never answers, on a statement that hangs. PostgreSQL only: these are libpq's and
/// the server's settings (a SQLite connection waits only for the file's lock, its busy timeout).
@Suite("Runtime connections: dead paths and hung statements are noticed")
struct RuntimeConnectionTests {
    @Test("a server that accepts the connection and never answers is given up after network_timeout, not libpq's default")
    func silentServer() throws {
        // A TCP port whose connections the kernel completes and nobody ever reads: what a
        // server behind a path that died after the handshake looks like.
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        try withUnsafeMutablePointer(to: &address) { pointer in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                #expect(bind(listener, $0, length) == 0)
                #expect(listen(listener, 8) == 0)
                #expect(getsockname(listener, $0, &length) == 0)
            }
        }
        let port = UInt16(bigEndian: address.sin_port)
        var options = StoreOptions(applicationName: "drover-tests")
        options.networkTimeout = .seconds(2)
        let started = ContinuousClock.now
        #expect(throws: DatabaseError.self) {
            _ = try PostgresDriver.connect(url: "postgresql://nobody@127.0.0.1:\(port)/none?sslmode=disable", options: options)
        }
        let took = ContinuousClock.now - started
        // libpq counts connect_timeout in whole seconds of time(): 2 means between 1 and 2 s.
        #expect(took >= .milliseconds(900) && took < .seconds(5), "gave up after \(took); libpq's default would be 10 s")

        // The URL's own setting wins over network_timeout's.
        options.networkTimeout = .seconds(8)
        let again = ContinuousClock.now
        #expect(throws: DatabaseError.self) {
            _ = try PostgresDriver.connect(url: "postgresql://nobody@127.0.0.1:\(port)/none?sslmode=disable&connect_timeout=2", options: options)
        }
        #expect(ContinuousClock.now - again < .seconds(5), "the URL's connect_timeout=2 was not used")

        // A runtime process's attempts are bounded to the millisecond (libpq's connect_timeout
        // counts whole seconds, at least two): it fences and gives signs of life meanwhile.
        options.connectAttemptTimeout = .milliseconds(300)
        let bounded = ContinuousClock.now
        let error = #expect(throws: DatabaseError.self) {
            _ = try PostgresDriver.connect(url: "postgresql://nobody@127.0.0.1:\(port)/none?sslmode=disable", options: options)
        }
        let tookBounded = ContinuousClock.now - bounded
        #expect(tookBounded >= .milliseconds(250) && tookBounded < .seconds(1), "gave up after \(tookBounded)")
        #expect(error?.code == .connectionFailed && error?.message.contains("no answer within 300 ms") == true, "\(String(describing: error))")
    }

    @Test("a runtime connection made with an attempt timeout works as any other, and reconnects after its backend is ended")
    func boundedAttemptConnects() throws {
        var options = StoreOptions(applicationName: "drover-tests-bounded", tunedForRuntime: true)
        options.connectAttemptTimeout = .seconds(2)
        let connection = try PostgresDriver.connect(url: try TestDatabase.url(), options: options)
        #expect(try connection.query("SELECT 1 AS one")[0].decode("one", as: Int.self) == 1)
        let admin = try TestDatabase.connect()
        try admin.execute("SELECT pg_terminate_backend(\(connection.backendPID))")
        // The first use after the end may report the loss; the next reconnects within the bound.
        _ = try? connection.query("SELECT 1 AS one")
        #expect(try connection.query("SELECT 2 AS two")[0].decode("two", as: Int.self) == 2)
    }

    @Test("a statement that runs past statement_timeout is cancelled, and the connection goes on")
    func hungStatement() throws {
        var options = StoreOptions(applicationName: "drover-tests", tunedForRuntime: true)
        options.statementTimeout = .milliseconds(300)
        options.networkTimeout = .seconds(4)
        let connection = try PostgresDriver.connect(url: try TestDatabase.url(), options: options)
        let started = ContinuousClock.now
        let error = #expect(throws: DatabaseError.self) { _ = try connection.query("SELECT pg_sleep(10)") }
        #expect(error?.code == .queryCanceled, "\(String(describing: error))")
        #expect(ContinuousClock.now - started < .seconds(3))
        #expect(try connection.query("SELECT 1 AS one")[0].decode("one", as: Int.self) == 1)
    }

    @Test("keepalives probe an idle connection after half of network_timeout and tcp_user_timeout fails unacknowledged sends after it; a URL's own settings win")
    func keepaliveSettings() {
        let settings = Dictionary(uniqueKeysWithValues: PostgresDriver.keepaliveSettings(.seconds(15)))
        #expect(settings == ["keepalives": "1", "keepalives_idle": "7", "keepalives_interval": "3", "keepalives_count": "3",
                             "tcp_user_timeout": "15000", "connect_timeout": "15"])
        let short = Dictionary(uniqueKeysWithValues: PostgresDriver.keepaliveSettings(.milliseconds(750)))
        #expect(short["keepalives_idle"] == "1" && short["keepalives_interval"] == "1" && short["connect_timeout"] == "2",
                "whole seconds, at least 1 (libpq's unit); connect_timeout at least 2 (libpq rounds 1 up)")
    }
}
