#define _GNU_SOURCE
#include "CProcess.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <unistd.h>

int drover_pipe_high(int fds[2], int nonblocking) {
    int low[2];
    if (pipe2(low, O_CLOEXEC | (nonblocking ? O_NONBLOCK : 0)) != 0) return -1;
    for (int i = 0; i < 2; i++) {
        fds[i] = fcntl(low[i], F_DUPFD_CLOEXEC, 10);
        if (fds[i] < 0) {
            int saved = errno;
            if (i == 1) close(fds[0]);
            close(low[0]);
            close(low[1]);
            errno = saved;
            return -1;
        }
    }
    close(low[0]);
    close(low[1]);
    return 0;
}

int drover_memfd_holding(const char *name, const void *bytes, size_t count) {
    int low = memfd_create(name, MFD_CLOEXEC);
    if (low < 0) return -1;
    int fd = fcntl(low, F_DUPFD_CLOEXEC, 10);
    int saved = errno;
    close(low);
    if (fd < 0) {
        errno = saved;
        return -1;
    }
    const char *next = bytes;
    size_t left = count;
    while (left > 0) {
        ssize_t n = write(fd, next, left);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            saved = n < 0 ? errno : EIO;
            close(fd);
            errno = saved;
            return -1;
        }
        next += n;
        left -= (size_t)n;
    }
    if (lseek(fd, 0, SEEK_SET) != 0) {
        saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

int drover_pipe_cloexec(int fds[2]) {
    return pipe2(fds, O_CLOEXEC);
}

int drover_signalfd(const sigset_t *mask) {
    return signalfd(-1, mask, SFD_NONBLOCK | SFD_CLOEXEC);
}

int drover_signalfd_read(int fd, pid_t *pid) {
    struct signalfd_siginfo info;
    ssize_t n;
    do {
        n = read(fd, &info, sizeof info);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return (errno == EAGAIN) ? 0 : -1;
    if (n != sizeof info) {
        errno = EIO;
        return -1;
    }
    *pid = (pid_t)info.ssi_pid;
    return (int)info.ssi_signo;
}

int drover_eventfd(void) {
    return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
}

void drover_eventfd_signal(int fd) {
    uint64_t one = 1;
    ssize_t n;
    do {
        n = write(fd, &one, sizeof one);
    } while (n < 0 && errno == EINTR);
}

void drover_eventfd_drain(int fd) {
    uint64_t value;
    ssize_t n;
    do {
        n = read(fd, &value, sizeof value);
    } while (n < 0 && errno == EINTR);
}

int drover_become_subreaper(void) {
    return prctl(PR_SET_CHILD_SUBREAPER, 1);
}

long drover_trim_file_pages(void) {
    FILE *smaps = fopen("/proc/self/smaps", "re");
    if (smaps == NULL) return -1;
    char line[8192];
    unsigned long start = 0, end = 0;
    int candidate = 0;  // a private, read-only mapping of a file
    long rss = 0, copied = 0, dropped = 0;
    while (fgets(line, sizeof line, smaps) != NULL) {
        unsigned long a, b;
        char perms[8];
        int path_at = -1;
        if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %n", &a, &b, perms, &path_at) == 3 && path_at > 0) {
            // A mapping's first line: "start-end perms offset dev inode [path]".
            start = a;
            end = b;
            rss = copied = 0;
            candidate = line[path_at] == '/' && perms[0] == 'r' && perms[1] != 'w' && perms[3] == 'p';
            continue;
        }
        long kib;
        if (sscanf(line, "Rss: %ld kB", &kib) == 1) {
            rss = kib;
        } else if (sscanf(line, "Anonymous: %ld kB", &kib) == 1) {
            // Pages of a private file mapping that were written are copies of their own
            // ("anonymous"): relocated data, RELRO. A mapping with any keeps all its pages.
            copied = kib;
        } else if (strncmp(line, "VmFlags:", 8) == 0) {
            // The mapping's last line.
            if (candidate && rss > 0 && copied == 0 && madvise((void *)start, end - start, MADV_DONTNEED) == 0) dropped += rss;
            candidate = 0;
        }
    }
    fclose(smaps);
    return dropped;
}
