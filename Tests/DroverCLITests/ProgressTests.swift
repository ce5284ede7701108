@testable import Drover
import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

/// Long commands: a progress line on a terminal and nowhere else, and Ctrl-C that stops between
/// two batches, leaving every batch done or untouched.
@Suite("Long commands: a progress line on a terminal only; Ctrl-C stops between batches")
struct ProgressTests {
    typealias Backend = HostileArgumentsTests.Backend
    typealias Target = HostileArgumentsTests.Target

    /// `drover ARGUMENTS` on a pseudo-terminal (script(1)): what it wrote there, stdout and stderr
    /// together, and its exit status.
    static func onTerminal(_ target: Target, _ arguments: [String]) throws -> DroverBinary.Outcome {
        let quoted = ([DroverBinary.path] + arguments + target.flags).map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }
        let environment = ProcessInfo.processInfo.environment.merging(target.environment.compactMapValues { $0 }) { $1 }
        return try RunningProcess(executable: "/usr/bin/script", arguments: ["-qefc", quoted.joined(separator: " "), "/dev/null"],
                                  environment: environment).wait(timeout: .seconds(60))
    }

    /// `count` failed jobs.
    static func failed(_ target: Target, count: Int) throws -> [Int] {
        let ids = try target.admin().enqueue((0..<count).map { _ in NewJob("Report") })
        try target.failJobs(ids, error: JobFailure(errorClass: "E", message: "m"))
        return ids
    }

    static func failedCount(_ target: Target) throws -> Int {
        try target.admin().countJobs(JobFilter(state: .failed))
    }

    @Test("a bulk change draws its progress (counts and rate) on a terminal; in a pipe, and with --json, nothing of it",
          arguments: Backend.allCases)
    func progressOnTerminalOnly(_ backend: Backend) throws {
        let target = try Target(backend)
        _ = try Self.failed(target, count: 1_200)
        let shown = try Self.onTerminal(target, ["failed", "retry", "--all", "--batch-size", "100"])
        #expect(shown.status == 0, "\(shown)")
        #expect(shown.stdout.contains("\r\u{1B}[Kretried ") && shown.stdout.contains(" of 1,200 jobs, "), "\(shown.stdout.debugDescription)")
        #expect(shown.stdout.contains("/s"))
        #expect(shown.stdout.hasSuffix("retried 1200 jobs\r\n"), "the line is cleared before the result: \(shown.stdout.debugDescription)")

        // Not a terminal: the result alone.
        let piped = try target.run(["jobs", "cancel", "--all", "--batch-size", "100"])
        #expect(piped.status == 0 && piped.stdout == "cancelled 1200 jobs\n" && piped.stderr.isEmpty, "\(piped)")

        // JSON on a terminal: the JSON alone.
        _ = try Self.failed(target, count: 300)
        let json = try Self.onTerminal(target, ["failed", "discard", "--all", "--batch-size", "100", "--json"])
        #expect(json.status == 0 && json.stdout == "{\"count\":300,\"skipped\":0}\r\n", "\(json.stdout.debugDescription)")
    }

    @Test("Ctrl-C stops a bulk change between two batches: exit 130, what it did is said and done, the rest untouched; run again, it goes on",
          arguments: Backend.allCases)
    func interrupted(_ backend: Backend) throws {
        let target = try Target(backend)
        let total = 2_000
        _ = try Self.failed(target, count: total)
        let running = try DroverBinary.start(["failed", "discard", "--all", "--batch-size", "1"] + target.flags,
                                             environment: target.environment)
        try waitUntil("some jobs were discarded", timeout: .seconds(30)) { try Self.failedCount(target) < total - 20 }
        kill(running.pid, SIGINT)
        let stopped = try running.wait(timeout: .seconds(30))
        #expect(stopped.status == 130, "\(stopped)")
        #expect(stopped.stderr.contains("drover: interrupted: the ") && stopped.stderr.contains("run the same command again to go on"),
                "\(stopped.stderr)")
        let said = try #require(Int(stopped.stdout.replacingOccurrences(of: "discarded ", with: "").split(separator: " ").first ?? ""),
                                "\(stopped.stdout)")
        // Every batch committed is counted, none is half done, nothing else was touched.
        #expect(said > 0 && said < total)
        #expect(try Self.failedCount(target) == total - said)
        #expect(try target.admin().countJobs(JobFilter()) == total - said)
        let rest = try target.run(["failed", "discard", "--all", "--json"])
        #expect(rest.status == 0 && rest.stdout == "{\"count\":\(total - said),\"skipped\":0}\n", "\(rest)")
        #expect(try Self.failedCount(target) == 0)
    }
}

@Suite("The progress line's numbers")
struct ProgressNumberTests {
    @Test("counts and rates are grouped by thousands", arguments: [
        (0, "0"), (7, "7"), (999, "999"), (1_000, "1,000"), (80_000, "80,000"), (1_234_567, "1,234,567"), (-1_234, "-1,234"),
    ])
    func grouped(_ n: Int, _ text: String) {
        #expect(ProgressLine.grouped(n) == text)
    }
}
