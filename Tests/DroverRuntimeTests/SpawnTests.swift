@testable import DroverRuntime
import CProcess
import DroverTestSupport
import Foundation
import Testing

@Suite("Spawning children through the C shim")
struct SpawnTests {
    private func status(_ pid: pid_t, _ field: String) throws -> String {
        let text = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        let line = try #require(text.split(separator: "\n").first { $0.hasPrefix(field + ":") })
        return line.dropFirst(field.count + 1).trimmingCharacters(in: .whitespaces)
    }

    @Test("the child has no blocked or ignored signal, its own process group, fd 3, and nothing else open")
    func childState() throws {
        var fds: [Int32] = [0, 0]
        #expect(drover_pipe_cloexec(&fds) == 0)
        defer { close(fds[0]); close(fds[1]) }
        // This thread blocks signals, as the supervisor's threads do; the child must not inherit that.
        var blocked = sigset_t()
        sigfillset(&blocked)
        var previous = sigset_t()
        pthread_sigmask(SIG_BLOCK, &blocked, &previous)
        let pid = try Spawn.start("/bin/sleep", arguments: ["30"], environment: ["ONLY": "this"], descriptors: [fds[0]])
        pthread_sigmask(SIG_SETMASK, &previous, nil)
        defer {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
        // comm changes early in exec; the new image's environment is set up after it.
        try waitUntil("sleep has started") {
            (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8)) == "sleep\n"
                && (try? String(contentsOfFile: "/proc/\(pid)/environ", encoding: .utf8))?.isEmpty == false
        }
        #expect(try status(pid, "SigBlk") == "0000000000000000")
        // Signals 32 and 33 are glibc's own (SIGCANCEL, SIGSETXID): no program can set them with
        // sigaction, so no spawn can reset them; every signal an application uses must be default.
        let ignored = try #require(UInt64(try status(pid, "SigIgn"), radix: 16))
        #expect(ignored & ~UInt64(0x1_8000_0000) == 0, "ignored: \(String(ignored, radix: 16))")
        let stat = try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
        let fields = stat[stat.range(of: ") ")!.upperBound...].split(separator: " ")
        #expect(Int32(fields[2]) == pid, "its own process group")
        let open = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").compactMap(Int.init).sorted()
        #expect(open == [0, 1, 2, 3])
        let fd3 = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/3")
        #expect(fd3 == (try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(fds[0])")))
        let environ = try String(contentsOfFile: "/proc/\(pid)/environ", encoding: .utf8)
        #expect(environ == "ONLY=this\0")
    }

    @Test("descriptors become 3, 4, 5 in order; a memory file arrives whole; a source that an earlier one replaces is refused")
    func descriptorsInOrder() throws {
        var a: [Int32] = [0, 0]
        var b: [Int32] = [0, 0]
        #expect(drover_pipe_high(&a, 0) == 0 && drover_pipe_high(&b, 0) == 0)
        defer { for fd in a + b { close(fd) } }
        // Past a pipe's 64 KiB, which a spec with many handlers may be.
        let text = String(repeating: "spec ", count: 30_000)
        let file = Array(text.utf8).withUnsafeBytes { drover_memfd_holding("drover-test", $0.baseAddress, $0.count) }
        #expect(file >= 10)
        defer { close(file) }
        let pid = try Spawn.start("/bin/sleep", arguments: ["30"], environment: [:], descriptors: [a[0], b[1], file])
        defer {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
        try waitUntil("sleep has started") { (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8)) == "sleep\n" }
        let open = ProcessTable.descriptors(pid)
        #expect(open.keys.sorted() == [0, 1, 2, 3, 4, 5])
        #expect(open[3] == ProcessTable.descriptors(getpid())[Int(a[0])])
        #expect(open[4] == ProcessTable.descriptors(getpid())[Int(b[1])])
        #expect(open[5]?.hasPrefix("/memfd:drover-test") == true, "\(open)")
        #expect(FileManager.default.contents(atPath: "/proc/\(pid)/fd/5") == Data(text.utf8))

        let clobbered = #expect(throws: SpawnError.self) {
            try Spawn.start("/bin/true", arguments: [], environment: [:], descriptors: [a[0], 3])
        }
        #expect(clobbered?.errno == EINVAL)
    }

    @Test("a program that cannot be run is an error with its errno, not a child that dies")
    func execFailure() throws {
        let missing = #expect(throws: SpawnError.self) {
            try Spawn.start("/nonexistent/drover", arguments: [], environment: [:])
        }
        #expect(missing?.errno == ENOENT)
        #expect(missing?.description == "cannot start /nonexistent/drover: No such file or directory")
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("drover-not-executable-\(UUID())").path
        try "#!/bin/sh\n".write(toFile: file, atomically: true, encoding: .utf8)
        chmod(file, 0o644)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let notExecutable = #expect(throws: SpawnError.self) { try Spawn.start(file, arguments: [], environment: [:]) }
        #expect(notExecutable?.errno == EACCES)
    }
}
