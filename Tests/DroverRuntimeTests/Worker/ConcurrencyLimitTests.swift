import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

@Suite("Concurrency limits across worker processes")
struct ConcurrencyLimitTests {
    /// Records when it starts and ends, and sleeps `{"sleep": seconds}` (default 0.3) in between.
    static let script = """
        args=$(cat)
        secs=$(echo "$args" | sed -n 's/.*"sleep": *\\([0-9.]*\\).*/\\1/p')
        echo "start $(date +%s.%N)" > "run-$DROVER_JOB_ID"
        sleep "${secs:-0.3}"
        echo "end $(date +%s.%N)" >> "run-$DROVER_JOB_ID"
        """

    static func config(_ directory: String, limit: Int, duration: String) -> String {
        """
        workers:
          - queues: ["*"]
            threads: 2
            processes: 4
            polling_interval: 200ms
        dispatchers:
          - polling_interval: 100ms
        \(SupervisorHarness.fastSupervisor)
          max_crashes: 1
        handlers:
          Limited:
            command: [\(directory)/limited.sh]
            working_directory: \(directory)
            concurrency: {key: "account:{account}", limit: \(limit), duration: \(duration)}
        """
    }

    /// (start, end) of each job that ran, from the files the script wrote.
    static func intervals(_ directory: TemporaryDirectory, _ ids: [Int]) -> [(Double, Double)] {
        ids.compactMap { id in
            guard let text = try? String(contentsOfFile: directory.url.appendingPathComponent("run-\(id)").path, encoding: .utf8) else { return nil }
            let values = text.split(separator: "\n").compactMap { Double($0.split(separator: " ").last ?? "") }
            return values.count == 2 ? (values[0], values[1]) : nil
        }
    }

    /// The most intervals that overlap at any moment.
    static func maxOverlap(_ intervals: [(Double, Double)]) -> Int {
        var events: [(time: Double, change: Int)] = []
        for (start, end) in intervals {
            events.append((start, 1))
            events.append((end, -1))
        }
        // At the same instant an end comes before a start: touching is not overlapping.
        events.sort { a, b in a.time != b.time ? a.time < b.time : a.change < b.change }
        var running = 0
        var most = 0
        for (_, change) in events {
            running += change
            most = max(most, running)
        }
        return most
    }

    @Test("limit 2 with 20 jobs of one key over 4 worker processes: never more than 2 run at once, and all run")
    func neverMoreThanTheLimit() throws {
        let directory = try TemporaryDirectory("drover-limit")
        try directory.file("#!/bin/sh\n" + Self.script, named: "limited.sh", mode: 0o755)
        let h = try SupervisorHarness(config: Self.config(directory.url.path, limit: 2, duration: "1m"))
        try h.waitForReady()
        let same = try h.store.enqueue((0..<20).map { _ in
            NewJob("Limited", arguments: try! JSON(validating: #"{"account": 1}"#))
        }, on: h.db)
        let other = try h.store.enqueue((0..<4).map { _ in
            NewJob("Limited", arguments: try! JSON(validating: #"{"account": 2}"#))
        }, on: h.db)
        try h.waitUntilFinished(same + other, timeout: .seconds(60))
        let runs = Self.intervals(directory, same)
        #expect(runs.count == 20)
        #expect(Self.maxOverlap(runs) == 2, "at most 2 at once, and the limit was used")
        // Another key is not held back by the first: all 24 together overlapped more than 2.
        #expect(Self.maxOverlap(runs + Self.intervals(directory, other)) > 2)
        #expect(try h.store.concurrencyKeys(on: h.db).allSatisfy { $0.holding == 0 && $0.blocked == 0 })
        #expect(try h.stop().status == 0)
    }

    @Test("when a worker holding the only slot is killed, the blocked job still runs, within the duration")
    func killedHolder() throws {
        let directory = try TemporaryDirectory("drover-limit")
        try directory.file("#!/bin/sh\n" + Self.script, named: "limited.sh", mode: 0o755)
        let h = try SupervisorHarness(config: Self.config(directory.url.path, limit: 1, duration: "3s"))
        try h.waitForReady()
        let holder = try h.store.enqueue(NewJob("Limited", arguments: try JSON(validating: #"{"account": 7, "sleep": 1000}"#)), on: h.db)
        let waiting = try h.store.enqueue(NewJob("Limited", arguments: try JSON(validating: #"{"account": 7}"#)), on: h.db)
        try waitUntil("the holder runs") { FileManager.default.fileExists(atPath: directory.url.appendingPathComponent("run-\(holder)").path) }
        #expect(try h.state(waiting)?.state == .blocked)
        let listing = try DroverBinary.run(["concurrency", "list", "--json", "--database-url", try TestDatabase.url(), "--schema", h.schema])
        #expect(listing.status == 0, "\(listing)")
        #expect(listing.stdout.hasPrefix(#"{"keys":[{"blocked":1,"expires_at":"#), "\(listing)")
        #expect(listing.stdout.hasSuffix(#""key":"account:7","limit":1,"running":1}],"rules":[{"class":"Limited","duration_seconds":3,"key":"account:{account}","limit":1,"on_conflict":"block"}]}"# + "\n"))
        let processID = try #require(try h.state(holder)?.claimedBy)
        let worker = try #require(try h.registeredChildren().first { $0.id == processID })
        let killed = ContinuousClock.now
        kill(pid_t(worker.pid), SIGKILL)
        try h.waitUntilFinished([waiting], timeout: .seconds(20))
        #expect(ContinuousClock.now - killed < .seconds(3) + .seconds(2), "it ran within the duration")
        // The holder crashed its worker max_crashes (1) times: it failed and gave its slot back.
        #expect(try h.state(holder)?.state == .failed)
        #expect(try h.stop().status == 0)
    }
}
