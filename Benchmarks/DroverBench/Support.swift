import ArgumentParser
import DroverPersistence
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

/// What the figures were measured on.
struct Machine: Encodable {
    let cpu: String
    let cores: Int
    let memoryGiB: Double
    let kernel: String
    let postgres: String
    let settings: [String: String]

    static func describe(_ db: Connection) throws -> Machine {
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let cpu = cpuinfo.split(separator: "\n").first { $0.hasPrefix("model name") }
            .map { String($0.split(separator: ":", maxSplits: 1)[1]).trimmingCharacters(in: .whitespaces) } ?? "unknown"
        let meminfo = (try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8)) ?? ""
        let kib = meminfo.split(separator: "\n").first { $0.hasPrefix("MemTotal") }
            .flatMap { Double($0.split(separator: " ").dropFirst().first ?? "") } ?? 0
        let kernel = ((try? String(contentsOfFile: "/proc/sys/kernel/osrelease", encoding: .utf8)) ?? "")
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let version = try db.query("SHOW server_version")[0].decode(at: 0, as: String.self)
        var settings: [String: String] = [:]
        for name in ["fsync", "synchronous_commit", "shared_buffers", "max_wal_size"] {
            settings[name] = try db.query("SELECT current_setting(\(name)) AS v")[0].decode("v", as: String.self)
        }
        return Machine(cpu: cpu, cores: ProcessInfo.processInfo.activeProcessorCount, memoryGiB: (kib / 1_048_576 * 10).rounded() / 10,
                       kernel: kernel, postgres: version, settings: settings)
    }

    var summary: String {
        "machine: \(cpu), \(cores) cores, \(memoryGiB) GiB; Linux \(kernel); PostgreSQL \(postgres) on the same host "
            + "(fsync \(settings["fsync"] ?? "?"), synchronous_commit \(settings["synchronous_commit"] ?? "?"), shared_buffers \(settings["shared_buffers"] ?? "?"))"
    }
}
