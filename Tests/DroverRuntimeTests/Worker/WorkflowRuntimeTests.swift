import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

/// The image pipeline of the README, run by a real supervisor on each backend: thumbnails that
/// write their results to descriptor 3, a zip that waits for them and reads their results on its
/// stdin, a callback once the batch is done; and results a command gets wrong.
@Suite("Workflows in a running supervisor: results on descriptor 3, dependencies on stdin, batch callbacks")
struct WorkflowRuntimeTests {
    enum Backend: String, CaseIterable, CustomTestStringConvertible, Sendable {
        case postgresql, sqlite
        var testDescription: String { rawValue }
    }

    static func config(_ directory: String) -> String {
        """
        workers:
          - queues: ["*"]
            threads: 3
            polling_interval: 200ms
        dispatchers:
          - polling_interval: 100ms
        \(SupervisorHarness.fastSupervisor)
        handlers:
          Thumb:
            command: [/bin/sh, -c, 'printf "{\\"thumb\\": \\"t-%s.jpg\\", \\"batch\\": \\"%s\\"}" "$DROVER_JOB_ID" "$DROVER_BATCH_ID" >&$DROVER_RESULT_FD']
          Zip:
            command: [/bin/sh, -c, 'cat > zip-input.json && echo "{\\"zip\\": \\"album.zip\\"}" >&3']
            working_directory: \(directory)
          Notify:
            command: [/bin/sh, -c, 'cat > notify-$DROVER_JOB_ID.json']
            working_directory: \(directory)
          Huge:
            command: [/bin/sh, -c, 'head -c 70000 /dev/zero | tr "\\0" x >&3']
          Garbled:
            command: [/bin/sh, -c, 'echo "not json" >&3']
          Quiet:
            command: [/bin/true]
        """
    }

    @Test("thumbnails fan out, a zip fans in with their results on stdin, the callback runs once after the last; bad results fail for good",
          .timeLimit(.minutes(3)), arguments: Backend.allCases)
    func pipeline(_ backend: Backend) throws {
        let directory = try TemporaryDirectory("drover-flow")
        let config = try directory.file(Self.config(directory.url.path))
        switch backend {
        case .postgresql:
            try TestDatabase.withSchema { schema, _ in
                let url = try TestDatabase.url()
                try run(PostgresDriver.self, url: url, schema: schema, flags: ["--database-url", url, "--schema", schema],
                        config: config, directory: directory)
            }
        case .sqlite:
            let url = "sqlite://" + directory.url.appendingPathComponent("drover.sqlite3").path
            try run(SQLiteDriver.self, url: url, schema: "drover", flags: ["--database-url", url], config: config, directory: directory)
        }
    }

    @Test("a command adds jobs to its own batch with drover enqueue --batch $DROVER_BATCH_ID; the callback waits for them",
          .timeLimit(.minutes(2)), arguments: Backend.allCases)
    func addFromACommand(_ backend: Backend) throws {
        let directory = try TemporaryDirectory("drover-split")
        func config(_ flags: [String]) throws -> String {
            let script = try directory.file("""
                #!/bin/sh
                set -e
                for n in 1 2; do
                  "$DROVER_UNDER_TEST" enqueue Leaf --batch "$DROVER_BATCH_ID" --args "{\\"n\\": $n}" \(flags.map { "'\($0)'" }.joined(separator: " ")) >> added
                done
                """, named: "split.sh", mode: 0o755)
            return try directory.file("""
                workers:
                  - queues: ["*"]
                    threads: 2
                    polling_interval: 200ms
                dispatchers:
                  - polling_interval: 100ms
                \(SupervisorHarness.fastSupervisor)
                handlers:
                  Split:
                    command: [\(script)]
                    working_directory: \(directory.url.path)
                    env: {DROVER_UNDER_TEST: "\(DroverBinary.path)"}
                  Leaf:
                    command: [/bin/sh, -c, 'sleep 0.3; echo "$DROVER_JOB_ID" >> \(directory.url.path)/leaves']
                  Done:
                    command: [/bin/sh, -c, 'cat > \(directory.url.path)/done.json']
                """, named: "drover.yml")
        }
        func check<D: StoreDriver>(_: D.Type, url: String, schema: String, flags: [String]) throws {
            let (store, db) = try D.open(url: url, options: StoreOptions(schema: schema, applicationName: "drover-tests", migrating: .always))
            let listener = try NotifyListener()
            let supervisor = try DroverBinary.start(["start", "--config", try config(flags)] + flags, environment: ["NOTIFY_SOCKET": listener.path])
            defer {
                for child in ProcessTable.children(of: supervisor.pid) { kill(child.pid, SIGKILL) }
                kill(supervisor.pid, SIGKILL)
                _ = try? supervisor.wait(timeout: .seconds(10))
            }
            _ = try listener.waitFor("READY=1", timeout: .seconds(60)) { $0.fields["READY"] == "1" }
            let (batch, _) = try store.enqueueBatch(NewBatch(onComplete: "Done"), jobs: [NewJob("Split")], on: db)
            do {
                try waitUntil("the callback ran", timeout: .seconds(60)) {
                    try store.batch(batch, on: db)?.completeJobID.map { try store.job($0, on: db)?.state == .finished } ?? false
                }
            } catch {
                Issue.record("\(try store.listJobs(limit: 10, on: db)) \(String(describing: try store.batch(batch, on: db)))\n\(supervisor.stderrSoFar.suffix(3000))")
                throw error
            }
            let added = try String(contentsOfFile: directory.url.appendingPathComponent("added").path, encoding: .utf8)
                .split(separator: "\n").compactMap { Int($0) }
            #expect(added.count == 2, "the command printed the ids it added: \(added)")
            #expect(try added.map { try store.job($0, on: db)?.batchID } == [batch, batch])
            let leaves = try String(contentsOfFile: directory.url.appendingPathComponent("leaves").path, encoding: .utf8)
                .split(separator: "\n").compactMap { Int($0) }
            #expect(Set(leaves) == Set(added), "both added jobs ran before the callback")
            let notice = try #require(try JSONSerialization.jsonObject(
                with: Data(contentsOf: directory.url.appendingPathComponent("done.json"))) as? [String: Any])
            #expect(notice["total"] as? Int == 3 && notice["finished"] as? Int == 3, "\(notice)")
        }
        switch backend {
        case .postgresql:
            try TestDatabase.withSchema { schema, _ in
                let url = try TestDatabase.url()
                try check(PostgresDriver.self, url: url, schema: schema, flags: ["--database-url", url, "--schema", schema])
            }
        case .sqlite:
            let url = "sqlite://" + directory.url.appendingPathComponent("drover.sqlite3").path
            try check(SQLiteDriver.self, url: url, schema: "drover", flags: ["--database-url", url])
        }
    }

    private func run<D: StoreDriver>(
        _: D.Type, url: String, schema: String, flags: [String], config: String, directory: TemporaryDirectory
    ) throws {
        let (store, db) = try D.open(url: url, options: StoreOptions(schema: schema, applicationName: "drover-tests", migrating: .always))
        let listener = try NotifyListener()
        let supervisor = try DroverBinary.start(["start", "--config", config] + flags, environment: ["NOTIFY_SOCKET": listener.path])
        defer {
            for child in ProcessTable.children(of: supervisor.pid) { kill(child.pid, SIGKILL) }
            kill(supervisor.pid, SIGKILL)
            _ = try? supervisor.wait(timeout: .seconds(10))
        }
        _ = try listener.waitFor("READY=1", timeout: .seconds(60)) { $0.fields["READY"] == "1" }

        // The batch from the command line, as the README shows it: three thumbnails, a zip after them.
        let lines = (1...3).map { #"{"class": "Thumb", "arguments": {"photo": \#($0)}}"# } + [#"{"class": "Zip", "after_lines": [1, 2, 3]}"#]
        let file = try directory.file(lines.joined(separator: "\n") + "\n", named: "album.jsonl")
        let enqueued = try DroverBinary.run(["batches", "enqueue", "--jsonl", file, "--on-complete", "Notify", "--description", "album 7"] + flags)
        #expect(enqueued.status == 0, "\(enqueued)")
        let printed = enqueued.stdout.split(separator: "\n").compactMap { Int($0) }
        try #require(printed.count == 5, "\(enqueued.stdout)")
        let (batch, thumbs, zip) = (printed[0], Array(printed[1...3]), printed[4])

        try waitUntil("the callback ran", timeout: .seconds(60)) {
            try store.batch(batch, on: db)?.completeJobID.map { try store.job($0, on: db)?.state == .finished } ?? false
        }
        let info = try #require(try store.batch(batch, on: db))
        #expect(info.finished == 4 && info.failed == 0 && info.pending == 0 && info.completedAt != nil)
        // Each thumbnail's result is kept with it, and it knew its batch.
        for id in thumbs {
            let result = try #require(try store.job(id, on: db)?.result)
            let object = try #require(try JSONSerialization.jsonObject(with: Data(result.text.utf8)) as? [String: String])
            #expect(object == ["thumb": "t-\(id).jpg", "batch": String(batch)], "\(result.text)")
        }
        // The zip read its arguments with what became of the thumbnails, results included.
        let input = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: directory.url.appendingPathComponent("zip-input.json")))
            as? [String: Any])
        let carried = try #require(input["drover_dependencies"] as? [[String: Any]])
        #expect(carried.compactMap { $0["job_id"] as? Int } == thumbs)
        #expect(carried.allSatisfy { $0["outcome"] as? String == "finished" })
        #expect(carried.compactMap { ($0["result"] as? [String: String])?["thumb"] } == thumbs.map { "t-\($0).jpg" })
        // The callback's arguments on its stdin; the zip finished before it was enqueued.
        let callback = try #require(info.completeJobID)
        let notice = try #require(try JSONSerialization.jsonObject(
            with: Data(contentsOf: directory.url.appendingPathComponent("notify-\(callback).json"))) as? [String: Any])
        #expect(notice["batch_id"] as? Int == batch && notice["event"] as? String == "complete" && notice["total"] as? Int == 4
                && notice["finished"] as? Int == 4 && notice["description"] as? String == "album 7", "\(notice)")
        let zipped = try #require(try store.job(zip, on: db))
        let called = try #require(try store.job(callback, on: db))
        #expect(try #require(zipped.finishedAt) <= called.createdAt, "never early")
        #expect(try store.listJobs(className: "Notify", limit: 10, on: db).count == 1, "exactly once")

        // drover jobs show and batches show say it too.
        let shown = try DroverBinary.run(["jobs", "show", String(zip)] + flags)
        #expect(shown.stdout.contains("batch:      \(batch)") && shown.stdout.contains("after:      \(thumbs[0]) (finished)")
                && shown.stdout.contains(#"result:     {"zip""#), "\(shown.stdout)")
        let listed = try DroverBinary.run(["batches", "show", String(batch), "--json", "--jobs"] + flags)
        let batchJSON = try #require(try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [String: Any])
        #expect((batchJSON["jobs"] as? [[String: Any]])?.count == 4 && (batchJSON["states"] as? [String: Int]) == ["finished": 4], "\(listed.stdout)")

        // Results a command gets wrong fail it for good, saying why; no result is no result.
        let huge = try store.enqueue(NewJob("Huge"), on: db)
        let garbled = try store.enqueue(NewJob("Garbled"), on: db)
        let quiet = try store.enqueue(NewJob("Quiet"), on: db)
        try waitUntil("the three ended", timeout: .seconds(30)) {
            try [huge, garbled, quiet].allSatisfy { [.failed, .finished].contains(try store.job($0, on: db)?.state) }
        }
        let tooLarge = try #require(try store.job(huge, on: db))
        #expect(tooLarge.state == .failed && tooLarge.attempts == 1 && tooLarge.lastError?.errorClass == "ResultTooLarge", "\(tooLarge)")
        #expect(tooLarge.lastError?.message.contains("64 KiB") == true)
        let notJSON = try #require(try store.job(garbled, on: db))
        #expect(notJSON.state == .failed && notJSON.lastError?.errorClass == "ResultInvalid" && notJSON.lastError?.message.contains("not json") == true)
        let none = try #require(try store.job(quiet, on: db))
        #expect(none.state == .finished && none.result == nil)
        print("pipeline on \(D.backendName): batch \(batch) done, callback job \(callback)")
    }
}
