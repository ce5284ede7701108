import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation

/// A supervisor whose configuration declares command handlers, with a directory for their scripts
/// and what they write.
final class CommandJobs {
    let scripts: TemporaryDirectory
    let harness: SupervisorHarness

    /// `handlers` is the body of the `handlers:` section; `$DIR` in it stands for the scripts'
    /// directory, which handlers also get as $OUT.
    init(
        handlers: String, scripts: [String: String] = [:], threads: Int = 2, environment: [String: String?] = [:],
        launcher: [String] = [], topLevel: String = ""
    ) throws {
        let directory = try TemporaryDirectory("drover-cmd")
        chmod(directory.url.path, 0o777)
        for (name, text) in scripts { try directory.file("#!/bin/sh\n" + text, named: name, mode: 0o755) }
        self.scripts = directory
        let config = """
            workers:
              - queues: ["*"]
                threads: \(threads)
                polling_interval: 200ms
            dispatchers:
              - polling_interval: 100ms
            \(SupervisorHarness.fastSupervisor)
            \(topLevel)
            handlers:
            \(handlers.replacingOccurrences(of: "$DIR", with: directory.url.path))
            """
        harness = try SupervisorHarness(config: config, environment: environment, launcher: launcher)
        try harness.waitForReady()
    }

    var directory: String { scripts.url.path }

    func path(_ name: String) -> String { scripts.url.appendingPathComponent(name).path }

    func read(_ name: String) -> String? { try? String(contentsOfFile: path(name), encoding: .utf8) }

    /// Waits for a file a handler writes, and returns its text.
    func waitForFile(_ name: String, timeout: Duration = .seconds(20)) throws -> String {
        var text: String? = nil
        try waitUntil("\(name) was written", timeout: timeout) {
            text = read(name).flatMap { $0.hasSuffix("\n") ? $0 : nil }
            return text != nil
        }
        return text!
    }

    /// A pid a handler wrote into `name`.
    func waitForPID(_ name: String) throws -> pid_t {
        let text = try waitForFile(name)
        return try require(pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)), "\(name) holds \(text)")
    }

    func enqueue(_ className: String, arguments: JSON = .emptyObject, maxAttempts: Int = 5, timeout: Duration? = nil) throws -> Int {
        try harness.store.enqueue(NewJob(className, arguments: arguments, maxAttempts: maxAttempts, timeout: timeout), on: harness.db)
    }

    func waitUntilState(_ id: Int, _ state: JobState, timeout: Duration = .seconds(30)) throws -> JobInfo {
        var info: JobInfo? = nil
        try waitUntil("job \(id) is \(state)", timeout: timeout) {
            info = try harness.state(id)
            return info?.state == state
        }
        return info!
    }

    /// The worker process running job `id`.
    func workerPID(runningJob id: Int) throws -> pid_t {
        let processID = try require(try harness.state(id)?.claimedBy, "job \(id) is claimed")
        let process = try require(try harness.registeredChildren().first { $0.id == processID }, "process \(processID) is registered")
        return pid_t(process.pid)
    }
}

/// `#require` outside a test function: throws instead of recording.
func require<T>(_ value: T?, _ message: @autoclosure () -> String = "") throws -> T {
    guard let value else { throw MissingValue(description: "required value missing: \(message())") }
    return value
}

struct MissingValue: Error, CustomStringConvertible {
    let description: String
}
