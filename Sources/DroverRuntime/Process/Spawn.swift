import CProcess
import Foundation

/// A child process could not be started.
public struct SpawnError: Error, Sendable, CustomStringConvertible {
    public let executable: String
    public let errno: Int32
    public var description: String {
        "cannot start \(executable): \(String(cString: strerror(errno)))"
    }
}

/// Starting child processes through the C shim (`CProcess`): Swift only prepares the arguments.
public enum Spawn {
    /// Starts `executable` with `arguments` (argv[1...]) and exactly `environment`, in a process group
    /// of its own, with no signal blocked, stdio inherited, `fd3` and `fd4` as descriptors 3 and 4
    /// and nothing else open.
    public static func start(
        _ executable: String, argv0: String? = nil, arguments: [String], environment: [String: String], fd3: Int32 = -1,
        fd4: Int32 = -1
    ) throws(SpawnError) -> pid_t {
        let argv = ([argv0 ?? executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv + envp { free(pointer) }
        }
        var pid: pid_t = 0
        let error = drover_spawn(executable, argv, envp, fd3, fd4, &pid)
        guard error == 0 else { throw SpawnError(executable: executable, errno: error) }
        return pid
    }
}

/// The process's own command line.
public enum ProcessArguments {
    /// `CommandLine.arguments`, or, when Swift's runtime saw none, what the kernel recorded in
    /// `/proc/self/cmdline`. A library preloaded ahead of the runtime can leave the runtime
    /// without them: libfaketime 0.9.10 does, and the clock-skew tests run Drover under it.
    public static let all: [String] = {
        if !CommandLine.arguments.isEmpty { return CommandLine.arguments }
        guard let data = FileManager.default.contents(atPath: "/proc/self/cmdline") else { return [] }
        return data.split(separator: 0, omittingEmptySubsequences: false).dropLast().map { String(decoding: $0, as: UTF8.self) }
    }()
}
