#define _GNU_SOURCE
#include "CProcess.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

// The child is started with clone(CLONE_VM | CLONE_VFORK), as glibc's posix_spawn does: it shares
// the worker's memory (so no page tables are copied, which a fork of a worker with many threads and
// mappings pays for on every job) and the worker's thread waits until it has exec'd or exited. Until
// exec the child runs only system calls on its own stack, and reports a failure in `failure`.
// Signals are blocked around the clone so that no handler of the worker's runs in the child.

struct spawn_arguments {
    const struct drover_command *command;
    pid_t parent;
    int failed;
    struct drover_spawn_failure failure;
};

static int fail(struct spawn_arguments *arguments, int step) {
    arguments->failure.step = step;
    arguments->failure.error = errno;
    arguments->failed = 1;
    _exit(127);
}

// Moves `fd` to `target` (0, 1 or 2).
static int move_to(int fd, int target) {
    if (fd == target) {
        int flags = fcntl(fd, F_GETFD);
        return flags < 0 ? -1 : fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC);
    }
    return dup2(fd, target) < 0 ? -1 : 0;
}

// Closes every descriptor from `lowest` up, for when close_range(2) is missing (ENOSYS before
// Linux 5.9) or refused (a seccomp filter's EPERM): one by one as /proc/self/fd lists them, or,
// without /proc, every number below the descriptor limit. System calls only, a buffer on this
// stack. Returns 0, or -1 with errno.
static int close_each_from(int lowest) {
    int directory = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (directory < 0) {
        struct rlimit limit;
        if (syscall(SYS_getrlimit, RLIMIT_NOFILE, &limit) != 0) return -1;
        rlim_t end = limit.rlim_cur == RLIM_INFINITY || limit.rlim_cur > (1u << 20) ? (1u << 20) : limit.rlim_cur;
        for (rlim_t fd = (rlim_t)lowest; fd < end; fd++) close((int)fd);
        return 0;
    }
    char buffer[4096] __attribute__((aligned(8)));
    // Closing while listing could make a listing skip an entry: list again until a pass closes none.
    for (int closed = 1; closed;) {
        closed = 0;
        if (lseek(directory, 0, SEEK_SET) != 0) break;
        for (;;) {
            long length = syscall(SYS_getdents64, directory, buffer, sizeof buffer);
            if (length < 0) {
                int saved = errno;
                close(directory);
                errno = saved;
                return -1;
            }
            if (length == 0) break;
            for (long at = 0; at < length;) {
                const struct { uint64_t inode; int64_t offset; unsigned short size; unsigned char type; char name[]; } *entry =
                    (const void *)(buffer + at);
                at += entry->size;
                int fd = 0, digits = 0;
                for (const char *c = entry->name; *c >= '0' && *c <= '9'; c++, digits++) fd = fd * 10 + (*c - '0');
                if (digits == 0 || entry->name[digits] != '\0' || fd < lowest || fd == directory) continue;
                close(fd);
                closed = 1;
            }
        }
    }
    close(directory);
    return 0;
}

static int child(void *context) {
    struct spawn_arguments *arguments = context;
    const struct drover_command *command = arguments->command;
    // A process group of its own, so that TERM and KILL reach everything the command starts.
    if (setpgid(0, 0) != 0) fail(arguments, DROVER_STEP_SETUP);
    // Every signal at its default disposition, none blocked (the worker blocks several).
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int signal = 1; signal < NSIG; signal++) {
        if (signal == SIGKILL || signal == SIGSTOP) continue;
        sigaction(signal, &dfl, NULL);  // fails harmlessly for glibc's internal signals
    }

    if (move_to(command->stdin_fd, 0) != 0 || move_to(command->stdout_fd, 1) != 0 || move_to(command->stderr_fd, 2) != 0) {
        fail(arguments, DROVER_STEP_SETUP);
    }
    int first_closed = 3;
    if (command->result_fd >= 0) {
        if (move_to(command->result_fd, 3) != 0) fail(arguments, DROVER_STEP_SETUP);
        first_closed = 4;
    }
    if (syscall(SYS_close_range, first_closed, ~0U, 0) != 0 && close_each_from(first_closed) != 0) fail(arguments, DROVER_STEP_SETUP);

    if (command->directory && chdir(command->directory) != 0) fail(arguments, DROVER_STEP_DIRECTORY);
    if (command->switch_user) {
        // Raw system calls: they change this task only (glibc's wrappers would try to change every
        // thread of the worker, whose memory this child shares).
        if (syscall(SYS_setgroups, command->group_count, command->groups) != 0) fail(arguments, DROVER_STEP_USER);
        if (syscall(SYS_setresgid, command->gid, command->gid, command->gid) != 0) fail(arguments, DROVER_STEP_USER);
        if (syscall(SYS_setresuid, command->uid, command->uid, command->uid) != 0) fail(arguments, DROVER_STEP_USER);
    }
    // If the worker dies (even by SIGKILL), the command goes with it. Set after the switch of user,
    // which clears it (as does exec of a set-user-ID program, which is the command's own choice);
    // read back so that a kernel that cleared it is caught. The cloning thread lives as long as
    // the worker; what the command starts is the supervisor's to clean up (a subreaper).
    int death_signal = 0;
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || prctl(PR_GET_PDEATHSIG, &death_signal) != 0 || death_signal != SIGKILL) {
        fail(arguments, DROVER_STEP_SETUP);
    }
    // The worker may have died before the signal was armed: then nothing would send it.
    if (getppid() != arguments->parent) _exit(127);
    sigset_t none;
    sigemptyset(&none);
    if (sigprocmask(SIG_SETMASK, &none, NULL) != 0) fail(arguments, DROVER_STEP_SETUP);
    execve(command->path, command->argv, command->envp);
    fail(arguments, DROVER_STEP_EXEC);
    return 127;
}

int drover_spawn_command(const struct drover_command *command, pid_t *pid, struct drover_spawn_failure *failure) {
    static const size_t stack_size = 256 * 1024;
    void *stack = mmap(NULL, stack_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED) {
        failure->step = DROVER_STEP_FORK;
        failure->error = errno;
        return -1;
    }
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &previous);

    struct spawn_arguments arguments = {command, getpid(), 0, {0, 0}};
    pid_t child_pid = clone(child, (char *)stack + stack_size, CLONE_VM | CLONE_VFORK | SIGCHLD, &arguments);
    int clone_error = errno;

    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    munmap(stack, stack_size);
    if (child_pid < 0) {
        failure->step = DROVER_STEP_FORK;
        failure->error = clone_error;
        return -1;
    }
    if (arguments.failed) {
        // The child has exited: reap it so that no zombie is left.
        int status;
        while (waitpid(child_pid, &status, 0) < 0 && errno == EINTR) {}
        *failure = arguments.failure;
        return -1;
    }
    *pid = child_pid;
    return 0;
}

int drover_pidfd_open(pid_t pid) {
    return (int)syscall(SYS_pidfd_open, pid, 0);
}
