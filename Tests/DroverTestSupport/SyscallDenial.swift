import Foundation

/// A launcher that runs a program with one system call refused by a seccomp filter, as a container
/// runtime's profile or an older kernel would refuse it: `launcher(denying:with:) + [program, args…]`.
/// The filter is inherited by everything the program starts. Built once per test run from C with
/// the C compiler that builds Drover's own C targets (the toolchain's clang, else cc).
public enum SyscallDenial {
    /// The system calls a test can deny, by their x86-64 and generic (arm64) numbers.
    public enum Call: String, Sendable {
        case closeRange = "close_range"
        var number: Int { 436 }  // the same in both tables
    }

    public static func launcher(denying call: Call, with error: Int32) throws -> [String] {
        [try built(), String(call.number), String(error)]
    }

    private static let source = #"""
        #include <errno.h>
        #include <linux/audit.h>
        #include <linux/filter.h>
        #include <linux/seccomp.h>
        #include <stddef.h>
        #include <stdio.h>
        #include <stdlib.h>
        #include <sys/prctl.h>
        #include <unistd.h>

        #if defined(__x86_64__)
        #define ARCH AUDIT_ARCH_X86_64
        #elif defined(__aarch64__)
        #define ARCH AUDIT_ARCH_AARCH64
        #endif

        /* deny NUMBER ERRNO PROGRAM [ARG...]: exec PROGRAM with system call NUMBER failing with ERRNO. */
        int main(int argc, char **argv) {
            if (argc < 4) { fprintf(stderr, "usage: deny NUMBER ERRNO PROGRAM [ARG...]\n"); return 64; }
            unsigned nr = (unsigned)atoi(argv[1]);
            unsigned error = (unsigned)atoi(argv[2]);
            struct sock_filter filter[] = {
                BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
                BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ARCH, 0, 3),
                BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
                BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 1),
                BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (error & SECCOMP_RET_DATA)),
                BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
            };
            struct sock_fprog program = { (unsigned short)(sizeof filter / sizeof filter[0]), filter };
            if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) != 0) {
                perror("deny: seccomp");
                return 71;
            }
            execvp(argv[3], argv + 3);
            perror("deny: exec");
            return 127;
        }
        """#

    nonisolated(unsafe) private static var path: String? = nil
    private static let lock = NSLock()

    private static func built() throws -> String {
        lock.lock()
        defer { lock.unlock() }
        if let path { return path }
        let directory = try TemporaryDirectory("drover-deny")
        let sourcePath = try directory.file(source, named: "deny.c")
        let output = directory.url.appendingPathComponent("deny").path
        var failures: [String] = []
        for compiler in compilers() {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: compiler)
            process.arguments = ["-O1", "-o", output, sourcePath]
            let errors = Pipe()
            process.standardError = errors
            try process.run()
            let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            if process.terminationStatus == 0 {
                keep.append(directory)
                path = output
                return output
            }
            failures.append("\(compiler): \(message)")
        }
        throw DeadlineExceeded(description: "cannot build the seccomp launcher: \(failures.joined(separator: "; "))")
    }

    nonisolated(unsafe) private static var keep: [TemporaryDirectory] = []

    /// clang beside `swift` on PATH (the one that compiles Drover's C targets), then clang and cc.
    private static func compilers() -> [String] {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        let directories = path.split(separator: ":").map(String.init)
        var found: [String] = []
        for name in ["clang", "cc"] {
            for directory in directories {
                let candidate = directory + "/" + name
                if FileManager.default.isExecutableFile(atPath: candidate) && !found.contains(candidate) { found.append(candidate) }
            }
        }
        if let swift = directories.map({ $0 + "/swift" }).first(where: { FileManager.default.isExecutableFile(atPath: $0) }) {
            let beside = URL(fileURLWithPath: swift).resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent("clang").path
            if FileManager.default.isExecutableFile(atPath: beside) { found.insert(beside, at: 0) }
        }
        return found
    }
}
