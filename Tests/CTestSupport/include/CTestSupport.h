#ifndef DROVER_CTESTSUPPORT_H
#define DROVER_CTESTSUPPORT_H

#include <stddef.h>
#include <sys/types.h>

/// A bound AF_UNIX datagram socket at `path` that receives its senders' credentials (SO_PASSCRED),
/// as systemd's notification socket does. Returns the descriptor or -1.
int drover_test_notify_socket(const char *path);

/// Receives one datagram into `buffer` (at most `size` - 1 bytes, NUL-terminated), sets `*pid` to the
/// sender's pid, closes any descriptors passed along with it (systemd-notify's BARRIER=1 sends one).
/// Returns the length, or -1 (errno set; EAGAIN when nothing arrived within `timeout_ms`).
int drover_test_notify_receive(int fd, char *buffer, size_t size, pid_t *pid, int timeout_ms);

/// prlimit(2) on RLIMIT_NOFILE of `pid`: sets its soft limit to `soft` (its hard limit stays) and
/// returns the old soft limit in `*old_soft` (may be NULL). Returns 0, or -1 and errno.
int drover_test_set_descriptor_limit(pid_t pid, unsigned long soft, unsigned long *old_soft);

#endif
