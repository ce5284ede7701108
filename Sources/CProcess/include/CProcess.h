#ifndef DROVER_CPROCESS_H
#define DROVER_CPROCESS_H

// The Linux system calls Drover's processes are built on, for the few that Swift's Glibc module
// does not expose. Each returns what the system call returns; errors are in errno unless said.

#include <signal.h>
#include <stdint.h>
#include <sys/types.h>

/// Starts `path` with `argv` and `envp` (both NULL-terminated) as a child in a process group of its
/// own, with an empty signal mask, every catchable signal at its default disposition, stdin, stdout
/// and stderr inherited, `fds[0]`, `fds[1]`, … as descriptors 3, 4, … (`fd_count` of them), and
/// every other descriptor closed. No code of the caller runs in the child between fork and exec.
/// A descriptor in `fds` must not be the target of an earlier one (`fds[1]` must not be 3, say;
/// EINVAL): `drover_pipe_high` and `drover_memfd_holding` make descriptors of 10 or more, which cannot be.
///
/// Returns 0 and sets `*pid`, or returns an errno value: a failed exec (no such file, not
/// executable) is reported here, because glibc's posix_spawn waits for the exec.
int drover_spawn(const char *path, char *const argv[], char *const envp[], const int fds[], int fd_count, pid_t *pid);

/// A close-on-exec memory file (memfd_create) named `name` that holds the `count` bytes at `bytes`,
/// its offset back at 0, as a descriptor of 10 or more: for handing a child data that must not be
/// in its environment or argv, whatever its size (a pipe would block past its capacity).
/// Returns the descriptor, or -1 and errno.
int drover_memfd_holding(const char *name, const void *bytes, size_t count);

/// pipe2(fds, O_CLOEXEC): a pipe neither end of which a child inherits.
int drover_pipe_cloexec(int fds[2]);

/// A close-on-exec pipe (non-blocking both ends when `nonblocking`) whose descriptors are 10 or
/// more, so that `drover_spawn` can move them to 3 and 4 in either order. Returns 0, or -1 and errno.
int drover_pipe_high(int fds[2], int nonblocking);

/// A non-blocking, close-on-exec signalfd for the signals in `mask` (which the caller has blocked).
int drover_signalfd(const sigset_t *mask);

/// Reads one pending signal from a signalfd: returns its number and sets `*pid` to the sender
/// (for SIGCHLD, the child), or returns 0 when none is pending, or -1 on error.
int drover_signalfd_read(int fd, pid_t *pid);

/// A non-blocking, close-on-exec eventfd, for waking a thread that waits in poll(2).
int drover_eventfd(void);

/// Adds 1 to an eventfd, and empties one.
void drover_eventfd_signal(int fd);
void drover_eventfd_drain(int fd);

/// How to start a job's command (see `drover_spawn_command`).
struct drover_command {
    const char *path;           // the program's path
    char *const *argv;          // NULL-terminated
    char *const *envp;          // NULL-terminated, exactly the command's environment
    const char *directory;      // working directory, or NULL to keep the worker's
    int stdin_fd, stdout_fd, stderr_fd;  // become 0, 1, 2
    int result_fd;              // becomes 3 when not negative (the job's result channel)
    int switch_user;            // when non-zero: groups, gid and uid below (needs root)
    uid_t uid;
    gid_t gid;
    const gid_t *groups;
    size_t group_count;
};

/// Why `drover_spawn_command` failed: which step, and errno.
struct drover_spawn_failure {
    int step;   // DROVER_STEP_*
    int error;  // errno
};

enum {
    DROVER_STEP_FORK = 1,
    DROVER_STEP_DIRECTORY = 2,
    DROVER_STEP_USER = 3,
    DROVER_STEP_EXEC = 4,
    DROVER_STEP_SETUP = 5,
};

/// Starts a job's command: clone(CLONE_VM | CLONE_VFORK) as posix_spawn does, then in the child
/// (C only, system calls only) a process group of its own, default signal dispositions, the three
/// pipes as stdio, every other descriptor closed (close_range, or one by one where it is missing or
/// refused), the working directory, the user, SIGKILL when the calling thread dies
/// (PR_SET_PDEATHSIG, after the user: a change of user clears it), an empty mask, and exec. Returns 0 and sets
/// `*pid` once the command runs, or returns -1 and fills `*failure` with the step that failed.
int drover_spawn_command(const struct drover_command *command, pid_t *pid, struct drover_spawn_failure *failure);

/// prctl(PR_SET_CHILD_SUBREAPER): orphans among this process's descendants become its children.
int drover_become_subreaper(void);

/// pidfd_open(2): a descriptor that becomes readable when `pid` exits.
int drover_pidfd_open(pid_t pid);

/// Drops from this process's page tables the pages of its file mappings that are the file's own
/// (private, read-only, with no page of their own: the program's and libraries' code and read-only
/// data, most of it touched only to start). They stay in the page cache, and an access maps them
/// again (a minor fault). A mapping with a written page (relocated data, RELRO) keeps its pages.
/// Safe while other threads run: the dynamic loader writes only to mappings that are writable or
/// already hold written pages. Returns the KiB dropped, or -1 with errno.
long drover_trim_file_pages(void);

#endif
