import ArgumentParser
import DroverPersistence
import DroverQueue
import DroverRuntime
import Foundation

/// `drover processes`: every registered Drover process.
struct ProcessesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "processes",
        abstract: "List every Drover process: kind, name, host, pid, heartbeat age and jobs held.")

    @Flag(help: "Print JSON for programs instead of a table for people.")
    var json = false

    @OptionGroup var database: DatabaseOptions

    struct ProcessJSON: Encodable {
        let id: Int
        let kind: String
        let name: String
        let host: String
        let pid: Int
        let supervisorID: Int?
        let heartbeatAgeSeconds: Double
        let jobs: Int

        enum CodingKeys: String, CodingKey {
            case id, kind, name, host, pid, jobs
            case supervisorID = "supervisor_id", heartbeatAgeSeconds = "heartbeat_age_seconds"
        }
    }

    func run() throws {
        try database.withQueue { queue in
            let processes = try queue.listProcesses()
            if json {
                return try printJSON(processes.map {
                    ProcessJSON(id: $0.id, kind: $0.kind.rawValue, name: $0.name, host: $0.hostname, pid: $0.pid,
                                supervisorID: $0.supervisorID, heartbeatAgeSeconds: $0.heartbeatAge, jobs: $0.claimedJobs)
                })
            }
            guard !processes.isEmpty else { return print("No Drover process is running.") }
            var table = Table("KIND", "NAME", "HOST", "PID", "HEARTBEAT", "JOBS")
            for p in processes {
                table.add(p.kind.rawValue, p.name, p.hostname, String(p.pid),
                          DurationText.format(.seconds(Int64(p.heartbeatAge.rounded()))) + " ago",
                          p.kind == .worker ? String(p.claimedJobs) : "")
            }
            print(table.render())
        }
    }
}

/// `drover status`: processes, jobs and queues in a few lines.
struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Sum up processes, jobs, queues and failures.",
        discussion: "A process is stale when its heartbeat is older than alive_threshold (from the configuration).")

    @Flag(help: "Print JSON for programs instead of text for people.")
    var json = false

    @OptionGroup var database: DatabaseOptions

    struct StatusJSON: Encodable {
        struct Processes: Encodable { let supervisors, workers, dispatchers, schedulers, stale, hosts: Int }
        struct Jobs: Encodable { let ready, scheduled, running, blocked, failed: Int }
        struct Queue: Encodable { let name: String; let ready: Int; let paused: Bool }
        let processes: Processes
        let jobs: Jobs
        let queues: [Queue]
    }

    func run() throws {
        let environment = ProcessInfo.processInfo.environment
        let configuration = try reportingErrors {
            try ConfigurationLoader.load(explicitPath: database.configPath, environment: environment) ?? Configuration()
        }
        let threshold = configuration.supervisor.aliveThreshold.seconds
        try database.withQueue { queue in
            let processes = try queue.listProcesses()
            let queues = try queue.listQueues()
            func count(_ kind: ProcessKind) -> Int { processes.filter { $0.kind == kind }.count }
            let status = StatusJSON(
                processes: .init(
                    supervisors: count(.supervisor), workers: count(.worker), dispatchers: count(.dispatcher),
                    schedulers: count(.scheduler), stale: processes.filter { $0.heartbeatAge > threshold }.count,
                    hosts: Set(processes.map(\.hostname)).count),
                jobs: .init(
                    ready: queues.map(\.ready).reduce(0, +), scheduled: queues.map(\.scheduled).reduce(0, +),
                    running: queues.map(\.claimed).reduce(0, +), blocked: queues.map(\.blocked).reduce(0, +),
                    failed: queues.map(\.failed).reduce(0, +)),
                queues: queues.map { .init(name: $0.name, ready: $0.ready, paused: $0.paused) })
            if json { return try printJSON(status) }
            let p = status.processes
            var processLine = "\(p.supervisors) supervisor\(p.supervisors == 1 ? "" : "s"), \(p.workers) worker\(p.workers == 1 ? "" : "s"), "
                + "\(p.dispatchers) dispatcher\(p.dispatchers == 1 ? "" : "s") on \(p.hosts) host\(p.hosts == 1 ? "" : "s")"
            if p.stale > 0 { processLine += "; \(p.stale) stale (no heartbeat for over \(DurationText.format(configuration.supervisor.aliveThreshold)))" }
            let j = status.jobs
            print("processes:  \(processLine)")
            print("jobs:       \(j.ready) ready, \(j.scheduled) scheduled, \(j.running) running, \(j.blocked) blocked, \(j.failed) failed")
            let queueText = status.queues.isEmpty ? "none with jobs"
                : status.queues.map { "\($0.name) (\($0.ready) ready\($0.paused ? ", paused" : ""))" }.joined(separator: ", ")
            print("queues:     \(queueText)")
            if j.failed > 0 { print("failures:   \(j.failed) failed job\(j.failed == 1 ? "" : "s"): see drover failed list") }
        }
    }
}
