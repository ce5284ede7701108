import ArgumentParser
import DroverPersistence
import DroverQueue
import DroverRuntime
import Foundation

/// `drover enqueue --jsonl`: one job per line, a JSON object with the keys of the SQL function
/// `enqueue_many` (class, arguments, queue, priority, run_at, max_attempts, timeout, unique_key).
/// What a line leaves out comes from the command's own options (`defaults`).
enum JobLines {
    static let keys = ["class", "arguments", "queue", "priority", "run_at", "max_attempts", "timeout", "unique_key", "trace_context",
                       "after", "run_after_failure", "batch"]
    /// `drover batches enqueue` also takes `after_lines`: jobs of the same file, by line number.
    static let batchKeys = keys.filter { $0 != "batch" } + ["after_lines"]

    /// A bad line: its number (from 1) and what is wrong, naming the field.
    struct BadLine: Error, Equatable {
        let number: Int
        let problem: String
        var description: String { "line \(number): \(problem)" }
    }

    /// The job on `line` (number `number`), or why there is none. `defaults.className` is empty
    /// when the command named no class: then every line must.
    static func job(_ line: Substring, number: Int, defaults: NewJob) -> Result<NewJob, BadLine> {
        Self.line(line, number: number, defaults: defaults, keys: keys).map { (parsed: Line) in parsed.job }
    }

    /// A line of `drover batches enqueue`: its job, and the lines (numbers) it waits for.
    struct Line {
        var job: NewJob
        var afterLines: [Int] = []
    }

    static func line(_ line: Substring, number: Int, defaults: NewJob, keys: [String]) -> Result<Line, BadLine> {
        func bad(_ problem: String) -> Result<Line, BadLine> { .failure(BadLine(number: number, problem: problem)) }
        func ids(_ value: JSON, _ name: String) -> [Int]? {
            guard value.isArray, let list = try? JSONDecoder().decode([Int].self, from: Data(value.text.utf8)) else { return nil }
            return list
        }
        var afterLines: [Int] = []
        let members: [(name: String, value: JSON)]
        do {
            let object = try JSON(validating: String(line))
            guard object.isObject else { return bad("a line must be a JSON object such as {\"class\": \"SendReport\", \"arguments\": {\"id\": 1}}") }
            members = try object.objectMembers()
        } catch {
            return bad(error.message)
        }
        var job = defaults
        var named = Set<String>()
        for (name, value) in members {
            guard keys.contains(name) else {
                return bad("unknown key \"\(name)\"; the keys are \(keys.joined(separator: ", "))")
            }
            guard named.insert(name).inserted else { return bad("the key \"\(name)\" is given twice") }
            let text = value.text
            switch name {
            case "class":
                guard let string = string(text) else { return bad("class must be a string such as \"SendReport\"") }
                job.className = string
            case "arguments":
                guard value.isObject || value.isArray else { return bad("arguments must be a JSON object or array") }
                job.arguments = value
            case "queue":
                guard let string = string(text) else { return bad("queue must be a string such as \"default\"") }
                job.queue = string
            case "priority":
                guard let n = Int(text), JobRules.priorityRange.contains(n) else {
                    return bad("priority \(text) is not an integer from \(JobRules.priorityRange.lowerBound) to \(JobRules.priorityRange.upperBound)")
                }
                job.priority = n
            case "max_attempts":
                guard let n = Int(text), JobRules.maxAttemptsRange.contains(n) else {
                    return bad("max_attempts \(text) is not an integer from 1 to \(JobRules.maxAttemptsRange.upperBound)")
                }
                job.maxAttempts = n
            case "run_at":
                guard let string = string(text), let date = TimeArgument.parse(string), JobRules.runAtRange.contains(date) else {
                    return bad("run_at \(text) is not a time from \(TimeArgument.range); write \(TimeArgument.examples)")
                }
                job.runAt = date
            case "timeout":
                // Seconds, as enqueue_many takes it, or a duration as --timeout does.
                var duration: Duration?
                if let seconds = Double(text), seconds.isFinite {
                    duration = .seconds(seconds)
                } else if let words = string(text) {
                    duration = DurationText.parse(words)
                }
                guard let duration, JobRules.timeoutRange.contains(duration) else {
                    return bad("timeout \(text) is not from 1 second to 7 days: give seconds (90) or a duration (\"1m30s\")")
                }
                job.timeout = duration
            case "trace_context":
                // A JSON object of strings (traceparent, tracestate, …), as enqueue_many takes it.
                guard value.isObject, let members = try? value.objectMembers(),
                      case let pairs = members.map({ ($0.name, string($0.value.text)) }), pairs.allSatisfy({ $0.1 != nil }) else {
                    return bad("trace_context must be a JSON object of strings, such as {\"traceparent\": \"00-…-01\"}")
                }
                job.traceContext = pairs.isEmpty ? nil : Dictionary(pairs.map { ($0.0, $0.1!) }) { _, last in last }
            case "after":
                guard let list = ids(value, name) else { return bad("after must be an array of job ids, such as [12, 13]") }
                job.after = list
            case "after_lines":
                guard let list = ids(value, name) else { return bad("after_lines must be an array of line numbers, such as [1, 2]") }
                if let wrong = list.first(where: { $0 < 1 || $0 >= number }) {
                    return bad("after_lines names line \(wrong), which is not a line before this one")
                }
                afterLines = list
            case "run_after_failure":
                guard text == "true" || text == "false" else { return bad("run_after_failure must be true or false") }
                job.runAfterFailure = text == "true"
            case "batch":
                guard let n = Int(text), n >= 1 else { return bad("batch \(text) is not a batch id (an integer from 1)") }
                job.batchID = n
            default:  // unique_key
                guard let string = string(text) else { return bad("unique_key must be a string") }
                job.uniqueKey = string
            }
        }
        guard !job.className.isEmpty else {
            return bad("the job has no class: give \"class\" on the line or a class to the command")
        }
        do {
            var checked = job
            // A line may wait for lines only: checked as if it waited for a job.
            if checked.after.isEmpty && !afterLines.isEmpty { checked.after = [1] }
            try JobRules.check(checked)
        } catch {
            return bad(error.message)
        }
        return .success(Line(job: job, afterLines: afterLines))
    }

    /// The string a JSON string value holds, or nil for any other value.
    private static func string(_ text: String) -> String? {
        guard text.first == "\"" else { return nil }
        return try? JSONDecoder().decode(String.self, from: Data(text.utf8))
    }
}

/// Lines of a file or of standard input, read a block at a time (a line may be a megabyte of
/// arguments), without their end (`\n` or `\r\n`).
struct LineReader {
    private let handle: FileHandle
    private var buffer: [UInt8] = []
    private var start = 0
    private var ended = false

    init(path: String) throws {
        if path == "-" {
            handle = .standardInput
        } else {
            guard let opened = FileHandle(forReadingAtPath: path) else {
                let reason = FileManager.default.fileExists(atPath: path) ? "it cannot be read" : "there is no such file"
                throw ValidationError("--jsonl \(path): \(reason)")
            }
            handle = opened
        }
    }

    /// The next line's bytes, or nil at the end.
    mutating func next() -> ArraySlice<UInt8>? {
        while true {
            if let newline = buffer[start...].firstIndex(of: 0x0A) {
                var line = buffer[start..<newline]
                start = newline + 1
                if line.last == 0x0D { line = line.dropLast() }
                return line
            }
            if ended {
                guard start < buffer.count else { return nil }
                let line = buffer[start...]
                start = buffer.count
                return line
            }
            if start > 0 {
                buffer.removeSubrange(0..<start)
                start = 0
            }
            let chunk = handle.readData(ofLength: 1 << 16)
            if chunk.isEmpty { ended = true } else { buffer += chunk }
        }
    }
}

extension EnqueueCommand {
    /// `--jsonl`: the lines `reader` gives, in batches, each one transaction.
    func enqueueLines(from reader: inout LineReader, defaults: NewJob, into queue: any QueueAdmin) throws {
        var number = 0
        var batch: [(line: Int, job: NewJob)] = []
        var bad: [JobLines.BadLine] = []
        var skipped: [JobLines.BadLine] = []
        var ids: [Int] = []
        var lastWritten = 0

        func say(_ text: String) { FileHandle.standardError.write(Data((text + "\n").utf8)) }
        func summary() -> String {
            "enqueued \(ids.count) job\(ids.count == 1 ? "" : "s")"
                + (skipped.isEmpty ? "" : "; skipped \(skipped.count) bad line\(skipped.count == 1 ? "" : "s") (\(skipped.map { String($0.number) }.joined(separator: ", ")))")
        }
        func finish(failed: Bool) throws {
            if json {
                try printJSON(LinesReport(enqueued: ids.count, ids: ids, skipped: skipped.map { .init(line: $0.number, error: $0.problem) }))
            }
            say("drover: \(summary())")
            if failed { throw ExitCode(ExitStatus.usage.rawValue) }
        }
        func flush(through line: Int) throws {
            defer { (batch, bad) = ([], []) }
            if !bad.isEmpty {
                if !skipBad {
                    for line in bad { say("drover: error: \(line.description)") }
                    say("drover: nothing from line \(lastWritten + 1) on was enqueued"
                        + (lastWritten > 0 ? " (lines 1 to \(lastWritten) were)" : "")
                        + "; fix the line\(bad.count == 1 ? "" : "s") and enqueue the rest again (tail -n +\(lastWritten + 1)), or pass --skip-bad")
                    try finish(failed: true)
                }
                for line in bad { say("drover: skipped \(line.description)") }
                skipped += bad
            }
            if !batch.isEmpty {
                do {
                    let written = try queue.enqueue(batch.map(\.job))
                    if !json { print(written.map(String.init).joined(separator: "\n")) }
                    ids += written
                } catch let error as QueueError where error.code == .invalidJob && error.jobIndex != nil {
                    // A rule only the store can check (a concurrency key the arguments lack).
                    let index = error.jobIndex!
                    let prefix = "job \(index + 1): "
                    let problem = error.message.hasPrefix(prefix) ? String(error.message.dropFirst(prefix.count)) : error.message
                    bad = [JobLines.BadLine(number: batch[index].line, problem: problem)]
                    if !skipBad { return try flush(through: line) }
                    batch.remove(at: index)
                    return try flush(through: line)
                }
            }
            lastWritten = line
        }

        while let bytes = reader.next() {
            number += 1
            guard let text = String(validating: bytes, as: UTF8.self) else {
                bad.append(JobLines.BadLine(number: number, problem: "the line is not UTF-8 text"))
                continue
            }
            if text.allSatisfy(\.isWhitespace) { continue }  // blank lines, a last newline
            switch JobLines.job(Substring(text), number: number, defaults: defaults) {
            case .success(let job): batch.append((number, job))
            case .failure(let line): bad.append(line)
            }
            if batch.count + bad.count >= batchSize { try flush(through: number) }
        }
        try flush(through: number)
        try finish(failed: false)
    }
}

/// `drover enqueue --jsonl --json`: what was enqueued and what was skipped.
struct LinesReport: Encodable {
    struct Skipped: Encodable {
        let line: Int
        let error: String
    }
    let enqueued: Int
    let ids: [Int]
    let skipped: [Skipped]
}
