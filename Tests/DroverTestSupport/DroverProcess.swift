import Foundation
import Synchronization

/// The `drover` binary under test, run as a real process.
public enum DroverBinary {
    /// `$DROVER_BIN` (set by `make test`), else `drover` next to the test bundle in the build folder.
    public static var path: String {
        if let path = ProcessInfo.processInfo.environment["DROVER_BIN"], !path.isEmpty { return path }
        let bundleDirectory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        var directory = bundleDirectory
        // The test runner may sit inside a .xctest bundle directory.
        for _ in 0..<4 {
            let candidate = directory.appendingPathComponent("drover").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            directory.deleteLastPathComponent()
        }
        return bundleDirectory.appendingPathComponent("drover").path
    }

    public struct Outcome: Sendable, CustomStringConvertible {
        public let status: Int32
        public let stdout: String
        public let stderr: String
        public var description: String { "exit \(status)\nstdout: \(stdout)\nstderr: \(stderr)" }
    }

    /// Starts `drover arguments…` with `environment` added to (or, for nil values, removed from) this
    /// process's environment, in `directory` (else this process's working directory).
    /// With a `launcher` (a program and its arguments), runs `launcher… drover arguments…`: a
    /// launcher that execs keeps the pid.
    public static func start(
        _ arguments: [String], environment: [String: String?] = [:], clearDatabaseEnvironment: Bool = true,
        in directory: String? = nil, launcher: [String] = [], stdin: Data? = nil
    ) throws -> RunningProcess {
        let executable = path
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw DeadlineExceeded(description: "the drover binary is not at \(executable); build it (swift build) or set DROVER_BIN")
        }
        var env = ProcessInfo.processInfo.environment
        if clearDatabaseEnvironment {
            // Tests say which database a command uses; nothing leaks in from the developer's shell.
            for key in ["DROVER_DATABASE_URL", "DROVER_CONFIG", "PGHOST", "PGPORT", "PGDATABASE", "PGUSER",
                        "PGPASSWORD", "PGSERVICE", "PGSERVICEFILE", "PGPASSFILE"] {
                env[key] = nil
            }
        }
        for (key, value) in environment { env[key] = value }
        if let program = launcher.first {
            return try RunningProcess(
                executable: program, arguments: launcher.dropFirst() + [executable] + arguments, environment: env, in: directory,
                stdin: stdin)
        }
        return try RunningProcess(executable: executable, arguments: arguments, environment: env, in: directory, stdin: stdin)
    }

    /// Runs `drover arguments…` to completion (within `timeout`).
    public static func run(
        _ arguments: [String], environment: [String: String?] = [:], timeout: Duration = .seconds(60), in directory: String? = nil,
        launcher: [String] = [], stdin: Data? = nil
    ) throws -> Outcome {
        try start(arguments, environment: environment, in: directory, launcher: launcher, stdin: stdin).wait(timeout: timeout)
    }
}

/// A child process whose output is collected in the background (so a chatty child never blocks on
/// a full pipe), readable while it runs, and whose exit can be awaited with a deadline.
public final class RunningProcess: @unchecked Sendable {
    // @unchecked: `process` is only touched by the thread that owns this object; output buffers are
    // behind their locks.
    private let process = Process()
    private final class Buffer: Sendable {
        let data = Mutex(Data())
    }
    private let stdoutBuffer = Buffer()
    private let stderrBuffer = Buffer()
    private let readersDone = DispatchGroup()

    /// With `stdin`, the child reads those bytes and then the end of its input; without, /dev/null.
    public init(
        executable: String, arguments: [String], environment: [String: String], in directory: String? = nil, stdin: Data? = nil
    ) throws {
        let out = Pipe()
        let err = Pipe()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = environment
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        process.standardOutput = out
        process.standardError = err
        let input = stdin.map { _ in Pipe() }
        process.standardInput = input ?? FileHandle.nullDevice
        try process.run()
        if let input, let stdin {
            // Written from a thread of its own: a child that stops reading must not block the test.
            let writer = input.fileHandleForWriting
            Thread {
                try? writer.write(contentsOf: stdin)
                try? writer.close()
            }.start()
        }
        for (handle, buffer) in [(out.fileHandleForReading, stdoutBuffer), (err.fileHandleForReading, stderrBuffer)] {
            readersDone.enter()
            let thread = Thread { [readersDone] in
                while true {
                    let chunk = handle.availableData
                    if chunk.isEmpty { break }
                    buffer.data.withLock { $0.append(chunk) }
                }
                readersDone.leave()
            }
            thread.start()
        }
    }

    public var pid: Int32 { process.processIdentifier }
    public var isRunning: Bool { process.isRunning }

    /// What it wrote to stderr so far (Drover's log).
    public var stderrSoFar: String { stderrBuffer.data.withLock { String(decoding: $0, as: UTF8.self) } }
    public var stdoutSoFar: String { stdoutBuffer.data.withLock { String(decoding: $0, as: UTF8.self) } }

    /// Waits for the process to exit and returns its status and output; kills it after `timeout`.
    public func wait(timeout: Duration = .seconds(60)) throws -> DroverBinary.Outcome {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            if ContinuousClock.now >= deadline {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
                throw DeadlineExceeded(description: "drover \(process.arguments ?? []) did not exit within \(timeout)\nstderr: \(stderrSoFar)")
            }
            Thread.sleep(forTimeInterval: 0.005)
        }
        process.waitUntilExit()
        _ = readersDone.wait(timeout: .now() + 10)
        return DroverBinary.Outcome(status: process.terminationStatus, stdout: stdoutSoFar, stderr: stderrSoFar)
    }
}
