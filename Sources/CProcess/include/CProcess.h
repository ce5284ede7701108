#ifndef DROVER_CPROCESS_H
#define DROVER_CPROCESS_H

// The Linux system calls Drover's processes are built on, for the few that Swift's Glibc module
// does not expose. Each returns what the system call returns; errors are in errno unless said.

#include <signal.h>
#include <stdint.h>
#include <sys/types.h>

/// Starts `path` with `argv` and `envp` (both NULL-terminated) as a child in a process group of its
/// own, with an empty signal mask, every catchable signal at its default disposition, stdin, stdout
/// and stderr inherited, `fd3` (when it is 0 or more) as descriptor 3, and every other descriptor
/// closed. No code of the caller runs in the child between fork and exec.
///
/// Returns 0 and sets `*pid`, or returns an errno value: a failed exec (no such file, not
/// executable) is reported here, because glibc's posix_spawn waits for the exec.
int drover_spawn(const char *path, char *const argv[], char *const envp[], int fd3, pid_t *pid);

/// pipe2(fds, O_CLOEXEC): a pipe neither end of which a child inherits.
int drover_pipe_cloexec(int fds[2]);

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

#endif
