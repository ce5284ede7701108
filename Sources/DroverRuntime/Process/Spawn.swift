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
    /// of its own, with no signal blocked, stdio inherited, `descriptors` as descriptors 3, 4, … in
    /// order, and nothing else open.
    public static func start(
        _ executable: String, argv0: String? = nil, arguments: [String], environment: [String: String],
        descriptors: [Int32] = []
    ) throws(SpawnError) -> pid_t {
        let argv = ([argv0 ?? executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv + envp { free(pointer) }
        }
        var pid: pid_t = 0
        let error = drover_spawn(executable, argv, envp, descriptors, Int32(descriptors.count), &pid)
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
        return bytes.map { String(decoding: $0, as: UTF8.self) }
    }()
}

extension ProcessArguments {
    /// The arguments' bytes as the kernel passed them, before Swift's runtime replaced what is not
    /// UTF-8 with U+FFFD (which would change a job's arguments without a word); from
    /// `/proc/self/cmdline` when the runtime saw none (see ``all``).
    public static let bytes: [[UInt8]] = {
        let count = Int(CommandLine.argc)
        if count > 0 {
            return (0..<count).map { index in
                guard let pointer = CommandLine.unsafeArgv[index] else { return [] }
                return Array(UnsafeBufferPointer(start: pointer, count: strlen(pointer))).map { UInt8(bitPattern: $0) }
            }
        }
        guard let data = FileManager.default.contents(atPath: "/proc/self/cmdline") else { return [] }
        return data.split(separator: 0, omittingEmptySubsequences: false).dropLast().map { Array($0) }
    }()

    /// Where `bytes` stop being UTF-8: the offset of the first byte that does not belong to a
    /// valid character; nil when all is valid.
    public static func firstInvalidUTF8(in bytes: [UInt8]) -> Int? {
        var parser = Unicode.UTF8.ForwardParser()
        var iterator = bytes.makeIterator()
        var offset = 0
        while true {
            switch parser.parseScalar(from: &iterator) {
            case .valid(let scalar): offset += scalar.count
            case .emptyInput: return nil
            case .error: return offset
            }
        }
    }

    /// A usage error for the first argument (after the program's name) that is not UTF-8: which
    /// argument, which option it is the value of, and where its bad bytes are; nil when all are
    /// valid.
    public static func invalidUTF8Message(_ arguments: [[UInt8]]) -> String? {
        for (index, argument) in arguments.enumerated().dropFirst() {
            guard let badOffset = firstInvalidUTF8(in: argument) else { continue }
            let text = String(decoding: argument, as: UTF8.self)
            var what = "argument \(index)"
            if text.hasPrefix("--"), let equals = text.firstIndex(of: "=") {
                what += " (\(text[..<equals])=…)"
            } else if index > 1, let option = String(validating: arguments[index - 1], as: UTF8.self), option.hasPrefix("-"),
                      !text.hasPrefix("-") {
                what += " (the value of \(option))"
            }
            // Where, not what: the bytes could be part of a password (--database-url).
            return "\(what) is not UTF-8 text: byte \(badOffset + 1) starts an invalid sequence. "
                + "Drover reads its arguments as UTF-8, so it refuses this rather than change it; "
                + "in JSON, write other characters as \\u escapes (\\u00ff)"
        }
        return nil
    }
}
