import ArgumentParser
import CSQLite
import DroverPersistence
import DroverQueue
import Foundation

@main
struct DroverBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drover-bench",
        abstract: "Drover's benchmarks (make bench): throughput of the queue layer, and of the whole system.",
        subcommands: [QueueBenchmark.self, SystemBenchmark.self])
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

/// Hands each connection to the one worker that uses it.
struct UnsafeTransfer<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

struct AnyEncodable: Encodable {
    let encodeValue: (Encoder) throws -> Void
    init<T: Encodable>(_ value: T) { encodeValue = value.encode(to:) }
    func encode(to encoder: Encoder) throws { try encodeValue(encoder) }
}

/// The database a benchmark runs on: PostgreSQL (a fresh schema per run) or SQLite (a fresh file
/// per run, in WAL mode with synchronous = NORMAL, as Drover opens it).
enum BenchDatabase {
    case postgresql(url: String)
    case sqlite

    /// `--sqlite`, else `--database-url`, else $DROVER_TEST_DATABASE_URL, else libpq's defaults.
    init(sqlite: Bool, url: String?) {
        self = sqlite ? .sqlite : .postgresql(url: url ?? ProcessInfo.processInfo.environment["DROVER_TEST_DATABASE_URL"] ?? "")
    }

    var name: String {
        if case .sqlite = self { return "SQLite" }
        return "PostgreSQL"
    }

    func machine() throws -> Machine {
        switch self {
        case .postgresql(let url): return try Machine.describe(try Connection(url, applicationName: "drover-bench"))
        case .sqlite: return Machine.describeSQLite()
        }
    }

    /// Runs `run` on a fresh store: its own schema or file, dropped afterwards.
    func withFreshStore<Run: StoreRun>(_ run: Run) throws -> Run.Output {
        switch self {
        case .postgresql(let url):
            let schema = "drover_bench_" + String(UInt32.random(in: 0 ... .max), radix: 36)
            let options = StoreOptions(schema: schema, applicationName: "drover-bench", migrating: .always)
            let (store, admin) = try PostgresDriver.open(url: url, options: options)
            defer { _ = try? admin.execute("DROP SCHEMA \(SQLIdentifier(schema)) CASCADE") }
            return try run.run(
                store: store, admin: admin, open: { try PostgresDriver.connect(url: url, options: options) },
                startArguments: ["--database-url", url, "--schema", schema])
        case .sqlite:
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("drover-bench-db-\(UUID())")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let url = "sqlite://" + directory.appendingPathComponent("drover.sqlite3").path
            let options = StoreOptions(applicationName: "drover-bench")
            let (store, admin) = try SQLiteDriver.open(url: url, options: options)
            return try run.run(
                store: store, admin: admin, open: { try SQLiteDriver.connect(url: url, options: options) },
                startArguments: ["--database-url", url])
        }
    }
}

/// One benchmark run on a store of either backend.
protocol StoreRun {
    associatedtype Output
    func run<Driver: StoreDriver>(
        store: JobStore<Driver>, admin: Driver.Database, open: @escaping () throws -> Driver.Database, startArguments: [String]
    ) throws -> Output
}

/// What the figures were measured on.
struct Machine: Encodable {
    let cpu: String
    let cores: Int
    let memoryGiB: Double
    let kernel: String
    /// "PostgreSQL 15.18" or "SQLite 3.40.1".
    let database: String
    let settings: [String: String]

    static func describeSQLite() -> Machine {
        let host = host()
        return Machine(cpu: host.cpu, cores: host.cores, memoryGiB: host.memoryGiB, kernel: host.kernel,
                       database: "SQLite \(String(cString: sqlite3_libversion()))",
                       settings: ["journal_mode": "wal", "synchronous": "normal"])
    }

    private static func host() -> (cpu: String, cores: Int, memoryGiB: Double, kernel: String) {
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let cpu = cpuinfo.split(separator: "\n").first { $0.hasPrefix("model name") }
            .map { String($0.split(separator: ":", maxSplits: 1)[1]).trimmingCharacters(in: .whitespaces) } ?? "unknown"
        let meminfo = (try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8)) ?? ""
        let kib = meminfo.split(separator: "\n").first { $0.hasPrefix("MemTotal") }
            .flatMap { Double($0.split(separator: " ").dropFirst().first ?? "") } ?? 0
        let kernel = ((try? String(contentsOfFile: "/proc/sys/kernel/osrelease", encoding: .utf8)) ?? "")
            .trimmingCharacters(in: .whitespacesAndNewlines)
        return (cpu, ProcessInfo.processInfo.activeProcessorCount, (kib / 1_048_576 * 10).rounded() / 10, kernel)
    }

    static func describe(_ db: Connection) throws -> Machine {
        let host = host()
        let version = try db.query("SHOW server_version")[0].decode(at: 0, as: String.self)
        var settings: [String: String] = [:]
        for name in ["fsync", "synchronous_commit", "shared_buffers", "max_wal_size"] {
            settings[name] = try db.query("SELECT current_setting(\(name)) AS v")[0].decode("v", as: String.self)
        }
        return Machine(cpu: host.cpu, cores: host.cores, memoryGiB: host.memoryGiB, kernel: host.kernel,
                       database: "PostgreSQL \(version)", settings: settings)
    }

    var summary: String {
        if database.hasPrefix("SQLite") {
            return "machine: \(cpu), \(cores) cores, \(memoryGiB) GiB; Linux \(kernel); \(database), a file on the local disk "
                + "(journal_mode WAL, synchronous NORMAL)"
        }
        return "machine: \(cpu), \(cores) cores, \(memoryGiB) GiB; Linux \(kernel); \(database) on the same host "
            + "(fsync \(settings["fsync"] ?? "?"), synchronous_commit \(settings["synchronous_commit"] ?? "?"), shared_buffers \(settings["shared_buffers"] ?? "?"))"
    }
}
