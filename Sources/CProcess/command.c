#define _GNU_SOURCE
#include "CProcess.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

// Between fork and exec only async-signal-safe calls: no malloc, no locks, no Swift.

static void report_and_exit(int fd, int step) {
    struct drover_spawn_failure failure = {step, errno};
    ssize_t ignored = write(fd, &failure, sizeof failure);
    (void)ignored;
    _exit(127);
}

// Moves `fd` to `target` (0, 1 or 2) without clobbering a descriptor still to be moved.
static int move_to(int fd, int target) {
    if (fd == target) {
        int flags = fcntl(fd, F_GETFD);
        return flags < 0 ? -1 : fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC);
    }
    return dup2(fd, target) < 0 ? -1 : 0;
}

static void child(const struct drover_command *command, int report, pid_t parent) {
    // A process group of its own, so that TERM and KILL reach everything the command starts.
    if (setpgid(0, 0) != 0) report_and_exit(report, DROVER_STEP_SETUP);
    // If the worker dies (even by SIGKILL), the command goes with it. The forking thread lives as
    // long as the worker; its grandchildren are the supervisor's to clean up (it is a subreaper).
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) report_and_exit(report, DROVER_STEP_SETUP);
    if (getppid() != parent) _exit(127);

    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int signal = 1; signal < NSIG; signal++) {
        if (signal == SIGKILL || signal == SIGSTOP) continue;
        sigaction(signal, &dfl, NULL);  // fails harmlessly for glibc's internal signals
    }
    sigset_t none;
    sigemptyset(&none);
    if (sigprocmask(SIG_SETMASK, &none, NULL) != 0) report_and_exit(report, DROVER_STEP_SETUP);

    // The report pipe must survive the moves; the three pipes are above 2 in the worker.
    if (report <= 2) {
        int moved = fcntl(report, F_DUPFD_CLOEXEC, 3);
        if (moved < 0) _exit(127);
        report = moved;
    }
    if (move_to(command->stdin_fd, 0) != 0 || move_to(command->stdout_fd, 1) != 0 || move_to(command->stderr_fd, 2) != 0) {
        report_and_exit(report, DROVER_STEP_SETUP);
    }
    // Everything else closes: below the report pipe now, above it at exec (it is CLOEXEC).
    if (report > 3) syscall(SYS_close_range, 3, report - 1, 0);
    syscall(SYS_close_range, report + 1, ~0U, 0);

    if (command->directory && chdir(command->directory) != 0) report_and_exit(report, DROVER_STEP_DIRECTORY);
    if (command->switch_user) {
        // Raw system calls: this process has one thread, and glibc's wrappers would try to
        // synchronize the credentials of threads the fork did not copy.
        if (syscall(SYS_setgroups, command->group_count, command->groups) != 0) report_and_exit(report, DROVER_STEP_USER);
        if (syscall(SYS_setresgid, command->gid, command->gid, command->gid) != 0) report_and_exit(report, DROVER_STEP_USER);
        if (syscall(SYS_setresuid, command->uid, command->uid, command->uid) != 0) report_and_exit(report, DROVER_STEP_USER);
    }
    execve(command->path, command->argv, command->envp);
    report_and_exit(report, DROVER_STEP_EXEC);
}

int drover_spawn_command(const struct drover_command *command, pid_t *pid, struct drover_spawn_failure *failure) {
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) {
        failure->step = DROVER_STEP_FORK;
        failure->error = errno;
        return -1;
    }
    pid_t parent = getpid();
    pid_t forked = fork();
    if (forked < 0) {
        failure->step = DROVER_STEP_FORK;
        failure->error = errno;
        close(report[0]);
        close(report[1]);
        return -1;
    }
    if (forked == 0) {
        close(report[0]);
        child(command, report[1], parent);
    }
    close(report[1]);
    // Also from this side, so that a signal sent to the group right away finds it.
    setpgid(forked, forked);

    struct drover_spawn_failure reported;
    ssize_t n;
    do {
        n = read(report[0], &reported, sizeof reported);
    } while (n < 0 && errno == EINTR);
    close(report[0]);
    if (n == sizeof reported) {
        // The child exits at once: reap it so that no zombie is left.
        int status;
        while (waitpid(forked, &status, 0) < 0 && errno == EINTR) {}
        *failure = reported;
        return -1;
    }
    *pid = forked;
    return 0;
}

int drover_pidfd_open(pid_t pid) {
    return (int)syscall(SYS_pidfd_open, pid, 0);
}
