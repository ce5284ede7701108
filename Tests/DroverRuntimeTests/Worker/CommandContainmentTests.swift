import DroverPersistence
import DroverQueue
import CTestSupport
import DroverTestSupport
import Foundation
import Testing

/// A command is held by its worker: it dies with it (as whatever user it runs), it inherits no
/// descriptor of the worker's even where close_range(2) is missing, and a worker that can no
/// longer watch it ends the attempt instead of spinning.
@Suite("Commands are contained: they die with their worker, inherit nothing, and are never left unwatched")
struct CommandContainmentTests {
    /// Writes its pid, then becomes `sleep 300`.
    static func sleeper(user: String?) -> String {
        """
              Sleeper:
                command: [sh, -c, "echo $$ > $DIR/pid-$DROVER_JOB_ID; exec sleep 300"]
        """ + (user.map { "\n        user: \($0)" } ?? "")
    }

    /// SIGKILLs the worker running the job and its supervisor at once: no process of Drover is
    /// left to stop the command, only the kernel's parent-death signal.
    func commandDiesWithWorkerAndSupervisor(user: String?) throws {
        let jobs = try CommandJobs(handlers: Self.sleeper(user: user))
        let id = try jobs.enqueue("Sleeper")
        let command = try jobs.waitForPID("pid-\(id)")
        if let user {
            let uid = try #require(getpwnam(user)).pointee.pw_uid
            #expect(ProcessTable.uid(command) == uid, "the command runs as \(user)")
        }
        let worker = try jobs.workerPID(runningJob: id)
        kill(jobs.harness.pid, SIGKILL)
        kill(worker, SIGKILL)
        try waitUntil("the command died with its worker", timeout: .seconds(5)) { !ProcessTable.isAlive(command) }
    }

    @Test("a command dies when its worker and supervisor are SIGKILLed together")
    func diesWithWorker() throws {
        try commandDiesWithWorkerAndSupervisor(user: nil)
    }

    @Test("a command run as another user (user: nobody) dies when its worker and supervisor are SIGKILLed together",
          .enabled(if: geteuid() == 0, "user: needs the supervisor to run as root"))
    func diesWithWorkerAsOtherUser() throws {
        try commandDiesWithWorkerAndSupervisor(user: "nobody")
    }

    @Test("where close_range(2) fails (ENOSYS: before Linux 5.9; EPERM: a seccomp profile), a command still inherits only stdin, stdout, stderr and its result channel (3)",
          arguments: [ENOSYS, EPERM])
    func noDescriptorLeaksWithoutCloseRange(error: Int32) throws {
        let launcher = try SyscallDenial.launcher(denying: .closeRange, with: error)
        let jobs = try CommandJobs(handlers: Self.sleeper(user: nil), launcher: launcher)
        let id = try jobs.enqueue("Sleeper")
        let command = try jobs.waitForPID("pid-\(id)")
        // Looked at from outside, once the shell has become sleep: no descriptor of the test's.
        try waitUntil("the command runs sleep") { ProcessTable.entry(command)?.command == "sleep" }
        let open = ProcessTable.descriptors(command).keys.sorted()
        #expect(open == [0, 1, 2, 3], "the command's descriptors: \(ProcessTable.descriptors(command))")
        #expect(ProcessTable.descriptors(command)[3]?.hasPrefix("pipe:") == true, "fd 3 is the result pipe: \(ProcessTable.descriptors(command))")
        // The worker itself had more than those to leak: the pipe to its supervisor at least.
        let worker = try #require(try jobs.harness.registeredChildren().first { $0.kind == .worker })
        #expect(ProcessTable.descriptors(pid_t(worker.pid)).keys.contains(4), "the worker holds its life-sign pipe on fd 4")
        #expect(try jobs.harness.stop().status == 0)
    }

    @Test("a worker whose poll(2) fails under a command (its descriptor limit lowered below what it polls) kills the command and fails the attempt with the reason; the job is retried and the worker serves on")
    func pollFailureEndsTheAttempt() throws {
        let jobs = try CommandJobs(handlers: """
              Ticker:
                command: [sh, -c, "echo $$ > $DIR/pid-$DROVER_JOB_ID; while :; do echo tick; sleep 0.2; done"]
            """, threads: 1)
        let id = try jobs.enqueue("Ticker", maxAttempts: 2)
        let command = try jobs.waitForPID("pid-\(id)")
        let worker = try jobs.workerPID(runningJob: id)
        // poll(2) refuses more descriptors than RLIMIT_NOFILE allows (EINVAL); the command loop
        // polls at least three (stdout, stderr, the pidfd), and the next tick wakes it.
        var soft: UInt = 0
        try #require(drover_test_set_descriptor_limit(worker, 2, &soft) == 0, "prlimit: \(errno)")
        let retried = try jobs.waitUntilState(id, .scheduled, timeout: .seconds(10))
        #expect(retried.lastError?.errorClass == "CommandFailed", "\(String(describing: retried.lastError))")
        #expect(retried.lastError?.message.contains("could not watch sh (poll(2) failed: Invalid argument) and killed it") == true,
                "\(String(describing: retried.lastError))")
        #expect(!ProcessTable.isAlive(command))
        #expect(jobs.harness.log.contains("the worker cannot watch the command any more; killing it"))
        #expect(drover_test_set_descriptor_limit(worker, soft, nil) == 0)
        // The same worker runs the next command.
        let next = try jobs.enqueue("Ticker")
        _ = try jobs.waitForPID("pid-\(next)")
        #expect(try jobs.workerPID(runningJob: next) == worker)
        #expect(try jobs.harness.stop().status == 0)
    }
}
