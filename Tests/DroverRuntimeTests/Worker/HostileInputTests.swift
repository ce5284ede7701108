import DroverPersistence
import DroverQueue
@testable import DroverRuntime
import DroverTestSupport
import Foundation
import Testing

/// Commands that print what a job system does not expect, and arguments at the limit, all at once
/// on one worker, on both backends. Each ends in a clear outcome within its deadline; a command
/// job enqueued while they run finishes within a second on the same worker; nothing stays claimed.
@Suite("Hostile input: commands that print NUL, bytes that are not UTF-8, endless output, only empty lines, or nothing at all")
struct HostileInputTests {
    typealias Backend = LeaseTests.Backend

    static let config = """
        workers:
          - queues: ["*"]
            threads: 8
            polling_interval: 200ms
        dispatchers:
          - polling_interval: 100ms
        supervisor:
          heartbeat_interval: 500ms
          alive_threshold: 10s
          shutdown_timeout: 5s
        handlers:
          Nul:
            command: [sh, -c, "printf 'a\\\\000b\\\\n'; exit 1"]
          NotUTF8:
            command: [sh, -c, "printf '\\\\377\\\\376 end\\\\n' >&2; exit 2"]
          Endless:
            command: [cat, /dev/zero]
            timeout: 3s
          EmptyLines:
            command: [sh, -c, "yes '' | head -n 200000"]
          Silent:
            command: [sleep, "300"]
            timeout: 2s
          Measure:
            command: [sh, -c, "cat > $DIR/args-$DROVER_JOB_ID"]
          Probe:
            command: ["true"]
        """

    @Test("each hostile command ends promptly with a readable outcome, the worker serves a probe within a second meanwhile, nothing stays claimed", arguments: Backend.allCases)
    func hostileCommands(_ backend: Backend) throws {
        let host = try LeaseTests.Host(backend, config: Self.config)
        // Exactly the limit of arguments: 1 MiB of JSON, which the command reads whole.
        let padding = JobRules.maxArgumentsBytes - #"{"p":""}"#.utf8.count
        let atLimit = try JSON(validating: #"{"p":""# + String(repeating: "x", count: padding) + #""}"#)
        #expect(atLimit.text.utf8.count == JobRules.maxArgumentsBytes)
        let started = ContinuousClock.now
        let ids = [
            "Nul": try host.enqueueJob(NewJob("Nul", maxAttempts: 1)),
            "NotUTF8": try host.enqueueJob(NewJob("NotUTF8", maxAttempts: 1)),
            "Endless": try host.enqueueJob(NewJob("Endless", maxAttempts: 1)),
            "EmptyLines": try host.enqueueJob(NewJob("EmptyLines", maxAttempts: 1)),
            // 1 MiB on stdin that it never reads: far more than a pipe holds.
            "Silent": try host.enqueueJob(NewJob("Silent", arguments: atLimit, maxAttempts: 1)),
            "Measure": try host.enqueueJob(NewJob("Measure", arguments: atLimit, maxAttempts: 1)),
        ]
        // While the endless and the silent commands run, a probe on the same worker.
        try waitUntil("the endless and the silent commands run", timeout: .seconds(20)) {
            try host.job(ids["Endless"]!)?.state == .claimed && host.job(ids["Silent"]!)?.state == .claimed
        }
        let worker = try #require(try host.workers().first { $0.claimedJobs > 0 })
        let probe = try host.enqueueJob(NewJob("Probe", maxAttempts: 1))
        try waitUntil("the probe finished", timeout: .seconds(10)) { try host.job(probe)?.state == .finished }
        let ran = try #require(try host.job(probe))
        let took = ran.finishedAt!.timeIntervalSince(ran.createdAt)
        #expect(took < 1, "the probe finished \(took) s after it was enqueued")
        #expect(try host.workers().map(\.pid) == [worker.pid], "the same worker served it")

        func outcome(_ name: String, _ state: JobState) throws -> JobInfo {
            var info: JobInfo? = nil
            try waitUntil("\(name) is \(state)", timeout: .seconds(30)) {
                info = try host.job(ids[name]!)
                return info?.state == state
            }
            return info!
        }
        let nul = try outcome("Nul", .failed)
        #expect(nul.lastError?.output == "a\\x00b\n" && nul.lastError?.exitStatus == 1, "\(String(describing: nul.lastError))")
        let bytes = try outcome("NotUTF8", .failed)
        #expect(bytes.lastError?.output == "\\xFF\\xFE end\n" && bytes.lastError?.exitStatus == 2, "\(String(describing: bytes.lastError))")
        let endless = try outcome("Endless", .failed)
        #expect(endless.lastError?.errorClass == "Timeout", "\(String(describing: endless.lastError))")
        #expect(endless.lastError?.output?.hasPrefix("\\x00\\x00") == true)
        let silent = try outcome("Silent", .failed)
        #expect(silent.lastError?.errorClass == "Timeout", "\(String(describing: silent.lastError))")
        _ = try outcome("EmptyLines", .finished)
        _ = try outcome("Measure", .finished)
        // Whole: the same JSON (PostgreSQL's jsonb writes it back with a space after the colon).
        let read = try Data(contentsOf: host.directory.url.appendingPathComponent("args-\(ids["Measure"]!)"))
        let received = try JSONDecoder().decode([String: String].self, from: read)
        #expect(received["p"]?.count == padding && received.count == 1, "the command read \(read.count) bytes")
        #expect(ContinuousClock.now - started < .seconds(30))

        // The log: escaped, never raw, and bounded in lines as well as bytes.
        let log = host.log()
        #expect(!log.contains("\0") && !log.utf8.contains(0xFF), "no raw NUL or invalid UTF-8 in the log")
        let emptyLines = ids["EmptyLines"]!
        let logged = log.split(separator: "\n").filter { $0.contains("job=\(emptyLines) ") && $0.contains("msg=output") }
        #expect(logged.count == CommandOutput.logBudgetLines, "\(logged.count) output lines logged")
        #expect(log.contains("job=\(emptyLines) ") && log.contains("the command's output passed 1000 lines; the rest is not logged"))
        #expect(log.contains("lines=199000"), "the count of what went unlogged")

        #expect(try host.workers().allSatisfy { $0.claimedJobs == 0 }, "nothing is left claimed")
        #expect(try host.stop().status == 0)
    }
}

