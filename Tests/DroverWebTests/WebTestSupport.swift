import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

/// The two databases every dashboard test runs on.
enum Backend: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case sqlite, postgresql
    var testDescription: String { rawValue }
}

/// A migrated database of one backend for one test, dropped (or deleted) with it.
final class TestBase {
    let backend: Backend
    let url: String
    let schema: String
    let directory: TemporaryDirectory
    let admin: any QueueAdmin

    init(_ backend: Backend) throws {
        self.backend = backend
        directory = try TemporaryDirectory("drover-web")
        switch backend {
        case .sqlite:
            schema = "drover"
            url = "sqlite://" + directory.url.appendingPathComponent("drover.sqlite3").path
        case .postgresql:
            schema = TestDatabase.uniqueSchemaName()
            url = try TestDatabase.url()
        }
        admin = try StoreFactory.openAdmin(url: url, options: StoreOptions(schema: schema, applicationName: "drover-tests", migrating: .always))
    }

    deinit {
        if backend == .postgresql, let db = try? TestDatabase.connect() {
            _ = try? db.execute("DROP SCHEMA IF EXISTS \(SQLIdentifier(schema)) CASCADE")
        }
    }

    /// `--database-url` and `--schema` for a command.
    var arguments: [String] { ["--database-url", url, "--schema", schema] }

    /// The `database:` section of a configuration file.
    var databaseSection: String { "database:\n  url: \"\(url)\"\n  schema: \(schema)\n" }

    /// Registers a process row as a host would, with any `hostname`: a value the page shows.
    func registerProcess(name: String, hostname: String) throws {
        func register<D: StoreDriver>(_: D.Type) throws {
            let (store, db) = try D.open(url: url, options: StoreOptions(schema: schema, migrating: .never))
            _ = try store.register(kind: .worker, name: name, pid: 1, hostname: hostname, supervisorID: nil, on: db)
        }
        try register(StoreFactory.driver(for: url))
    }

    /// Fails `ids` for good with `error`, as a worker would (claimed, then failed); other jobs a
    /// claim takes meanwhile go back to ready.
    func failJobs(_ ids: [Int], error: JobFailure) throws {
        try StoreScene.failJobs(ids, error: error, url: url, schema: schema)
    }

    /// Makes `rule` the store's only concurrency rule.
    func syncRule(_ rule: ConcurrencyRule) throws {
        func sync<D: StoreDriver>(_: D.Type) throws {
            let (store, db) = try D.open(url: url, options: StoreOptions(schema: schema, migrating: .never))
            try store.syncConcurrencyRules([rule], on: db)
        }
        try sync(StoreFactory.driver(for: url))
    }

    /// Makes `rule` the store's only rate limit, and claims as a worker would (the claim is what
    /// puts a key in use).
    func rateLimit(_ rule: RateLimitRule, claim: Int, on queue: String) throws {
        func sync<D: StoreDriver>(_: D.Type) throws {
            let (store, db) = try D.open(url: url, options: StoreOptions(schema: schema, migrating: .never))
            try store.syncRateLimitRules([rule], on: db)
            _ = try store.claim(processID: 999_999, queues: [queue], limit: claim, on: db)
        }
        try sync(StoreFactory.driver(for: url))
    }

    func isPaused(_ queue: String) throws -> Bool {
        try admin.listQueues().first { $0.name == queue }?.paused ?? false
    }
}

/// The address a dashboard (`drover web`, or `drover start`'s web child) serves on, from the line
/// it logs once it does (port 0 picks a free one); nil if `process` exits first.
func dashboardAddress(of process: RunningProcess, timeout: Duration = .seconds(30)) throws -> String? {
    var address: String?
    try waitUntil("the dashboard serves", timeout: timeout) {
        if let line = process.stderrSoFar.split(separator: "\n").last(where: { $0.contains("serving the dashboard") }),
           let listen = line.range(of: "listen=") {
            address = String(line[listen.upperBound...].prefix { $0 != " " })
        }
        return address != nil || !process.isRunning
    }
    return address
}

/// `drover web` in the foreground, its address taken from its log line (port 0 picks a free one).
final class ForegroundWeb {
    let process: RunningProcess
    let http: HTTP
    let address: String

    init(_ arguments: [String], environment: [String: String?] = [:]) throws {
        process = try DroverBinary.start(["web"] + arguments, environment: environment)
        guard let address = try dashboardAddress(of: process) else {
            throw HTTPFailure(description: "drover web did not serve:\n\(process.stderrSoFar)")
        }
        self.address = address
        http = address.hasPrefix("/") ? HTTP(unixSocket: address) : HTTP(base: "http://\(address)")
    }

    deinit {
        if process.isRunning { kill(process.pid, SIGKILL) }
        _ = try? process.wait(timeout: .seconds(10))
    }

    func stop(_ signal: Int32 = SIGTERM) throws -> DroverBinary.Outcome {
        kill(process.pid, signal)
        return try process.wait(timeout: .seconds(30))
    }
}

extension HTTP.Answer {
    /// The headers every answer of the dashboard carries.
    func expectSecurityHeaders(cacheable: Bool = false, sourceLocation: SourceLocation = #_sourceLocation) {
        let policy = headers["content-security-policy"] ?? ""
        #expect(policy.contains("default-src 'self'"), "\(self)", sourceLocation: sourceLocation)
        #expect(policy.contains("script-src 'self'") && !policy.contains("unsafe-inline"), "\(self)", sourceLocation: sourceLocation)
        #expect(policy.contains("frame-ancestors 'none'"), "\(self)", sourceLocation: sourceLocation)
        #expect(headers["x-content-type-options"] == "nosniff", "\(self)", sourceLocation: sourceLocation)
        #expect(headers["referrer-policy"] == "no-referrer", "\(self)", sourceLocation: sourceLocation)
        #expect(headers["cache-control"] == (cacheable ? "public, max-age=3600" : "no-store"), "\(self)", sourceLocation: sourceLocation)
    }
}
