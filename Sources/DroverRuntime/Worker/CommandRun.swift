import DroverPersistence
import CProcess
import DroverQueue
import Foundation

/// One attempt of a command handler, on an executor thread: starts the command, writes the job's
/// arguments to its stdin, reads its stdout and stderr, all without blocking (whatever the command
/// reads or writes), stops it when asked (TERM to its process group, KILL after the grace period),
/// and reaps it and whatever it left in its process group.
struct CommandRun {
    let handler: CommandHandler
    let execution: Execution
    /// The worker's log with the job attached.
    let log: Log

    /// How long the pipes may stay open after the command exited: a process that left its process
    /// group can hold them, and the job's result must not wait for it.
    static let drainAfterExit: Duration = .seconds(1)

    func run() -> JobResult {
        let job = execution.job
        guard let program = handler.program() else {
            return failed("CommandNotFound", "\(handler.command[0]) was not found in PATH (\(handler.environment["PATH"] ?? "")): "
                          + "install it or give its absolute path in handlers.\(handler.className).command")
        }
        var pipes: [[Int32]] = []
        for _ in 0..<4 {
            var fds: [Int32] = [-1, -1]
            guard drover_pipe_cloexec(&fds) == 0 else {
                let error = errno
                for pipe in pipes { close(pipe[0]); close(pipe[1]) }
                return failed("CommandFailed", "cannot create a pipe for the command: \(String(cString: strerror(error)))")
            }
            pipes.append(fds)
        }
        let (stdinPipe, stdoutPipe, stderrPipe, resultPipe) = (pipes[0], pipes[1], pipes[2], pipes[3])

        let spawned = spawn(program, stdin: stdinPipe[0], stdout: stdoutPipe[1], stderr: stderrPipe[1], result: resultPipe[1])
        for fd in [stdinPipe[0], stdoutPipe[1], stderrPipe[1], resultPipe[1]] { close(fd) }
        guard case .success(let pid) = spawned else {
            for fd in [stdinPipe[1], stdoutPipe[0], stderrPipe[0], resultPipe[0]] { close(fd) }
            if case .failure(let message) = spawned { return failed("CommandFailed", message) }
            return failed("CommandFailed", "cannot start \(program)")
        }
        execution.commandStarted(pid)
        for fd in [stdinPipe[1], stdoutPipe[0], stderrPipe[0], resultPipe[0]] { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }

        var io = CommandIO(
            input: Array(job.arguments.text.utf8), stdin: stdinPipe[1], stdout: stdoutPipe[0], stderr: stderrPipe[0],
            result: resultPipe[0], log: log)
        let ending = supervise(pid: pid, io: &io)
        io.closeAll()
        return result(ending, output: io.output.tail, written: io.result)
    }

    private enum Spawned { case success(pid_t), failure(String) }

    private func spawn(_ program: String, stdin: Int32, stdout: Int32, stderr: Int32, result: Int32) -> Spawned {
        let argv = ([program] + handler.command.dropFirst()).map { strdup($0) } + [nil]
        let envp = handler.environment(for: execution.job).sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        let directory: UnsafeMutablePointer<CChar>? = handler.workingDirectory.flatMap { strdup($0) }
        defer {
            for pointer in argv + envp { free(pointer) }
            free(directory)
        }
        let credentials = geteuid() == 0 ? handler.credentials : nil
        let groups = credentials?.groups ?? []
        var pid: pid_t = 0
        var failure = drover_spawn_failure()
        let status = argv.withUnsafeBufferPointer { argvBuffer in
            envp.withUnsafeBufferPointer { envpBuffer in
                groups.withUnsafeBufferPointer { groupBuffer in
                    var command = drover_command(
                        path: argvBuffer[0], argv: argvBuffer.baseAddress, envp: envpBuffer.baseAddress,
                        directory: directory.map { UnsafePointer($0) }, stdin_fd: stdin, stdout_fd: stdout, stderr_fd: stderr,
                        result_fd: result,
                        switch_user: credentials == nil ? 0 : 1, uid: credentials?.uid ?? 0, gid: credentials?.gid ?? 0,
                        groups: groupBuffer.baseAddress, group_count: groups.count)
                    return drover_spawn_command(&command, &pid, &failure)
                }
            }
        }
        guard status != 0 else { return .success(pid) }
        let reason = String(cString: strerror(failure.error))
        switch Int(failure.step) {
        case Int(DROVER_STEP_DIRECTORY):
            return .failure("cannot start \(program): working directory \(handler.workingDirectory ?? ""): \(reason)")
        case Int(DROVER_STEP_USER):
            return .failure("cannot start \(program) as user \(handler.credentials?.name ?? ""): \(reason)")
        case Int(DROVER_STEP_EXEC):
            return .failure("cannot start \(program): \(reason)")
        default:
            return .failure("cannot start \(program): \(reason)")
        }
    }

    /// How a command ended: its wait status, and why the loop stopped watching it, if it did.
    private struct Ending {
        let status: Int32
        var unwatched: String? = nil
    }

    /// Runs the command to its end.
    private func supervise(pid: pid_t, io: inout CommandIO) -> Ending {
        let pidfd = drover_pidfd_open(pid)
        defer { if pidfd >= 0 { close(pidfd) } }
        var killAt: ContinuousClock.Instant? = nil
        var signalled = false
        var status: Int32? = nil
        var drainUntil: ContinuousClock.Instant? = nil
        while true {
            if let status, io.outputClosed || ContinuousClock.now >= drainUntil! { return Ending(status: status) }
            var fds = io.pollDescriptors()
            if status == nil {
                // Without a pidfd (kernels before 5.3), the loop checks on the child every 50 ms.
                if pidfd >= 0 { fds.append(pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)) }
                // After the TERM too: a fence may bring the KILL forward.
                if let control = execution.control { fds.append(pollfd(fd: control.descriptor, events: Int16(POLLIN), revents: 0)) }
            }
            var deadline = status == nil ? killAt : drainUntil
            if status == nil && pidfd < 0 { deadline = min(deadline ?? .now + .milliseconds(50), .now + .milliseconds(50)) }
            let timeout: Int32 = deadline.map { Int32(clamping: max(0, Int64((ContinuousClock.now.duration(to: $0).seconds * 1000).rounded(.up)))) } ?? -1
            if poll(&fds, nfds_t(fds.count), timeout) < 0 {
                let error = errno
                if error != EINTR {
                    // Nothing about the command can be watched any more (EINVAL: the descriptor
                    // limit was lowered under the worker; ENOMEM): end the attempt, not the worker.
                    return abandon(pid: pid, status: status, because: "poll(2) failed: \(String(cString: strerror(error)))")
                }
                continue
            }
            io.service(fds)

            if status == nil && !signalled, let reason = execution.stopReason {
                signalled = true
                log.info("stopping the command", [("reason", reason.description), ("signal", "SIGTERM")])
                execution.signalCommand(SIGTERM)
                killAt = .now + execution.gracePeriod
            }
            execution.control?.drain()
            if status == nil, signalled, let by = execution.killBy, let at = killAt, by < at { killAt = by }
            if status == nil, let at = killAt, ContinuousClock.now >= at {
                if let by = execution.killBy, by <= at {
                    log.warning("the command is still running as its worker's lease runs out; killing it",
                                [("after_term", DurationText.format(ContinuousClock.now - (execution.stopRequestedAt ?? .now)))])
                } else {
                    log.warning("the command outlived its grace period after SIGTERM; killing it",
                                [("grace_period", DurationText.format(execution.gracePeriod))])
                }
                execution.signalCommand(SIGKILL)
                killAt = nil
            }
            if status == nil {
                var info = siginfo_t()
                // Peek first (WNOWAIT): the pid stays reserved until the group is signalled for good.
                if waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info._sifields._sigchld.si_pid == pid {
                    // Whatever the command started in its group goes with it.
                    status = killAndReap(pid)
                    drainUntil = .now + Self.drainAfterExit
                }
            }
        }
    }

    /// Kills the command's process group (unless it already ended with `status`) and reaps the
    /// command: the attempt ends as a failure that is retried, naming `reason`.
    private func abandon(pid: pid_t, status: Int32?, because reason: String) -> Ending {
        log.error("the worker cannot watch the command any more; killing it", [("reason", reason)])
        return Ending(status: status ?? killAndReap(pid), unwatched: reason)
    }

    /// KILLs the command's whole process group, and reaps the command: its wait status.
    private func killAndReap(_ pid: pid_t) -> Int32 {
        execution.signalCommand(SIGKILL)
        execution.commandExited()
        var waitStatus: Int32 = 0
        while waitpid(pid, &waitStatus, 0) < 0 && errno == EINTR {}
        return waitStatus
    }

    private func result(_ ending: Ending, output: String, written: CommandIO.Written) -> JobResult {
        let status = ending.status
        let exitCode: Int32? = (status & 0x7f) == 0 ? (status >> 8) & 0xff : nil
        let signal: Int32? = exitCode == nil ? status & 0x7f : nil
        let name = handler.command[0]
        let how = exitCode.map { "exited with status \($0)" } ?? "was killed by \(Signals.signalName(signal!))"
        if let reason = ending.unwatched {
            return failed("CommandFailed", "the worker could not watch \(name) (\(reason)) and killed it: it \(how)",
                          exitStatus: exitCode, signal: signal, output: output)
        }
        if let reason = execution.stopReason {
            switch reason {
            case .timeout(let limit):
                return failed(JobFailure.timeoutClass, "\(name) ran longer than its timeout of \(DurationText.format(limit)) and was stopped: it \(how)",
                              exitStatus: exitCode, signal: signal, output: output)
            case .cancelled:
                return failed(JobFailure.cancelledClass, "cancelled by drover jobs cancel: \(name) \(how)",
                              exitStatus: exitCode, signal: signal, output: output, permanent: true)
            case .leaseLost:
                return failed(JobFailure.leaseLostClass, "its worker lost its lease and stopped it: \(name) \(how)",
                              exitStatus: exitCode, signal: signal, output: output)
            }
        }
        if exitCode == 0 {
            guard !written.tooLarge else {
                return failed("ResultTooLarge", "\(name) wrote more than \(JobRules.maxResultBytes) bytes (64 KiB) of result to descriptor 3: "
                              + "store large data elsewhere and write a reference to it", exitStatus: exitCode, output: output, permanent: true)
            }
            let text = String(decoding: written.bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard !text.isEmpty else { return JobResult(job: execution.job, outcome: .finished) }
            guard let value = try? JSON(validating: text) else {
                return failed("ResultInvalid", "\(name) wrote a result to descriptor 3 that is not one JSON document: "
                              + "\"\(text.prefix(80))\"; write a JSON value, such as {\"path\": \"/tmp/out.zip\"}",
                              exitStatus: exitCode, output: output, permanent: true)
            }
            var finished = JobResult(job: execution.job, outcome: .finished)
            finished.result = value
            return finished
        }
        if exitCode == CommandHandler.permanentFailureStatus {
            return failed("CommandFailed", "\(name) exited with status 100: a permanent failure, not retried",
                          exitStatus: exitCode, output: output, permanent: true)
        }
        if exitCode == CommandHandler.snoozeStatus {
            // The delay is the last line it printed: `echo 30s; exit 101`.
            let last = output.split(whereSeparator: \.isNewline).last { !$0.allSatisfy(\.isWhitespace) }
                .map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
            guard let delay = DurationText.parse(last), SnoozeRules.delayRange.contains(delay) else {
                let shown = last.isEmpty ? "nothing" : "\"\(last.prefix(80))\""
                return failed("CommandFailed", "\(name) exited with status 101 to snooze, but its last line of output (\(shown)) is not a delay "
                              + "from 1ms to 30d, such as 30s or 5m: print the delay last; the attempt counts as failed",
                              exitStatus: exitCode, output: output)
            }
            return JobResult(job: execution.job, outcome: .snoozed(delay))
        }
        return failed("CommandFailed", "\(name) \(how)", exitStatus: exitCode, signal: signal, output: output)
    }

    private func failed(
        _ errorClass: String, _ message: String, exitStatus: Int32? = nil, signal: Int32? = nil, output: String? = nil,
        permanent: Bool = false
    ) -> JobResult {
        let failure = JobFailure(
            errorClass: errorClass, message: message, exitStatus: exitStatus.map(Int.init), signal: signal.map(Int.init),
            output: output.flatMap { $0.isEmpty ? nil : $0 })
        return JobResult(job: execution.job, outcome: .failed(failure, permanent: permanent))
    }
}

extension CommandHandler {
    /// A command that exits with this status failed for good: no retry.
    static let permanentFailureStatus: Int32 = 100
    /// A command that exits with this status, the delay on its last line of output, runs again
    /// after that delay without spending an attempt.
    static let snoozeStatus: Int32 = 101
}

extension StopReason: CustomStringConvertible {
    public var description: String {
        switch self {
        case .timeout(let limit): "timeout of \(DurationText.format(limit))"
        case .cancelled: "cancelled"
        case .leaseLost: "lease lost"
        }
    }
}

/// The command's three pipes: the arguments go in, the output comes out to the log and the tail.
struct CommandIO {
    private var input: [UInt8]
    private var written = 0
    private var stdin: Int32
    private var stdout: Int32
    private var stderr: Int32
    private var resultFD: Int32
    private(set) var output: CommandOutput
    /// What the command wrote to descriptor 3, its result: at most ``JobRules/maxResultBytes`` kept.
    struct Written {
        var bytes: [UInt8] = []
        var tooLarge = false
    }
    private(set) var result = Written()

    init(input: [UInt8], stdin: Int32, stdout: Int32, stderr: Int32, result: Int32, log: Log) {
        self.input = input
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        resultFD = result
        output = CommandOutput(log: log)
        if input.isEmpty { closeInput() }
    }

    var outputClosed: Bool { stdout < 0 && stderr < 0 && resultFD < 0 }

    func pollDescriptors() -> [pollfd] {
        var fds: [pollfd] = []
        if stdin >= 0 { fds.append(pollfd(fd: stdin, events: Int16(POLLOUT), revents: 0)) }
        if stdout >= 0 { fds.append(pollfd(fd: stdout, events: Int16(POLLIN), revents: 0)) }
        if stderr >= 0 { fds.append(pollfd(fd: stderr, events: Int16(POLLIN), revents: 0)) }
        if resultFD >= 0 { fds.append(pollfd(fd: resultFD, events: Int16(POLLIN), revents: 0)) }
        return fds
    }

    /// Writes and reads what `fds` (after poll) say can be, without blocking.
    mutating func service(_ fds: [pollfd]) {
        for fd in fds where fd.revents != 0 {
            if fd.fd == stdin { writeInput() }
            if fd.fd == stdout, !read(stdout, stream: .stdout) { stdout = -1 }
            if fd.fd == stderr, !read(stderr, stream: .stderr) { stderr = -1 }
            if fd.fd == resultFD, !readResult() { resultFD = -1 }
        }
    }

    private mutating func writeInput() {
        while written < input.count {
            let n = input[written...].withUnsafeBytes { Glibc.write(stdin, $0.baseAddress, $0.count) }
            if n > 0 { written += n; continue }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && errno == EAGAIN { return }
            break  // EPIPE: the command does not read its input, which is its right.
        }
        closeInput()
    }

    private mutating func closeInput() {
        if stdin >= 0 { close(stdin) }
        stdin = -1
    }

    /// At most this much is read from one stream per turn of the command's loop, so that the
    /// loop looks at timeouts, cancellations and stops between slices however fast the command
    /// writes (a loop that read until the pipe was empty never came back from `yes`).
    static let sliceBytes = 4 * 65536

    /// Reads what is there, up to ``sliceBytes``; false (and the descriptor closed) at end of file.
    private mutating func read(_ fd: Int32, stream: CommandOutput.Stream) -> Bool {
        var buffer = [UInt8](repeating: 0, count: 65536)
        var taken = 0
        while taken < Self.sliceBytes {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n > 0 {
                output.append(buffer[0..<n], from: stream)
                taken += n
                continue
            }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && errno == EAGAIN { return true }
            output.finish(stream)
            close(fd)
            return false
        }
        return true
    }

    /// Reads the result channel: what fits is kept, the rest read and dropped (marked too large);
    /// false (and the descriptor closed) at end of file.
    private mutating func readResult() -> Bool {
        var buffer = [UInt8](repeating: 0, count: 65536)
        var taken = 0
        while taken < Self.sliceBytes {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(resultFD, $0.baseAddress, $0.count) }
            if n > 0 {
                taken += n
                if result.bytes.count + n > JobRules.maxResultBytes {
                    result.tooLarge = true
                } else {
                    result.bytes += buffer[0..<n]
                }
                continue
            }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && errno == EAGAIN { return true }
            close(resultFD)
            return false
        }
        return true
    }

    mutating func closeAll() {
        closeInput()
        for fd in [stdout, stderr, resultFD] where fd >= 0 { close(fd) }
        stdout = -1
        stderr = -1
        resultFD = -1
        output.finish(.stdout)
        output.finish(.stderr)
        output.summarize()
    }
}

/// A command's output: each line goes to the log (up to a budget of lines and of bytes, so that a
/// chatty command cannot flood the journal: journald drops a service's messages past its burst,
/// 10,000 in 30 s by default, Drover's own among them), and the end of both streams together is
/// kept for the job's error.
struct CommandOutput {
    enum Stream: String { case stdout, stderr }

    /// Lines longer than this are logged in pieces.
    static let maxLineBytes = 4096
    /// Output logged per attempt, whichever runs out first; beyond it only the tail is kept.
    static let logBudgetLines = 1000
    static let logBudgetBytes = 256 * 1024

    private let log: Log
    private var partial: [Stream: [UInt8]] = [:]
    private var loggedLines = 0
    private var loggedBytes = 0
    private var unloggedLines = 0
    private var unloggedBytes = 0
    private var end: [UInt8] = []

    init(log: Log) { self.log = log }

    /// The end of the output, NUL and invalid UTF-8 escaped (``SafeText``), from a character
    /// boundary on.
    var tail: String {
        var start = end.startIndex
        // Cut at the first byte that can start a character, so that the kept end does not begin
        // with the escaped middle of one.
        while start < end.endIndex, start < end.startIndex + 3, UTF8.isContinuation(end[start]) { start += 1 }
        return SafeText.escape(end[start...])
    }

    mutating func append(_ bytes: ArraySlice<UInt8>, from stream: Stream) {
        end += bytes.suffix(JobFailure.maxOutputBytes)
        if end.count > 2 * JobFailure.maxOutputBytes { end.removeFirst(end.count - JobFailure.maxOutputBytes) }
        var line = partial[stream] ?? []
        for byte in bytes {
            if byte == UInt8(ascii: "\n") {
                emit(line, stream)
                line.removeAll(keepingCapacity: true)
            } else {
                line.append(byte)
                if line.count >= Self.maxLineBytes {
                    emit(line, stream)
                    line.removeAll(keepingCapacity: true)
                }
            }
        }
        partial[stream] = line
    }

    mutating func finish(_ stream: Stream) {
        if let line = partial[stream], !line.isEmpty { emit(line, stream) }
        partial[stream] = nil
    }

    /// Once both streams are finished: says how much went unlogged, if any did.
    mutating func summarize() {
        guard unloggedLines > 0 else { return }
        log.info("the command's output that was not logged", [("lines", String(unloggedLines)), ("bytes", String(unloggedBytes))])
        unloggedLines = 0
        unloggedBytes = 0
    }

    private mutating func emit(_ line: [UInt8], _ stream: Stream) {
        guard loggedLines < Self.logBudgetLines && loggedBytes < Self.logBudgetBytes else {
            if unloggedLines == 0 {
                let limit = loggedLines >= Self.logBudgetLines ? "\(Self.logBudgetLines) lines" : "\(Self.logBudgetBytes / 1024) KiB"
                log.warning("the command's output passed \(limit); the rest is not logged "
                            + "(the last \(JobFailure.maxOutputBytes) bytes are kept with a failure)")
            }
            unloggedLines += 1
            unloggedBytes += line.count + 1
            return
        }
        loggedLines += 1
        loggedBytes += line.count + 1
        log.info("output", [("stream", stream.rawValue), ("line", SafeText.escape(line))])
    }
}
