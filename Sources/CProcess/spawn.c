#define _GNU_SOURCE
#include "CProcess.h"

#include <errno.h>
#include <signal.h>
#include <spawn.h>

int drover_spawn(const char *path, char *const argv[], char *const envp[], const int fds[], int fd_count, pid_t *pid) {
    // fds[i] becomes 3 + i, in order: a later source must not be an earlier target, or the
    // earlier dup2 would replace it before it is copied.
    if (fd_count < 0 || (fd_count > 0 && fds == NULL)) return EINVAL;
    for (int j = 0; j < fd_count; j++) {
        if (fds[j] < 0 || (fds[j] >= 3 && fds[j] < 3 + j)) return EINVAL;
    }
    posix_spawnattr_t attributes;
    posix_spawn_file_actions_t actions;
    int error = posix_spawnattr_init(&attributes);
    if (error != 0) return error;
    error = posix_spawn_file_actions_init(&actions);
    if (error != 0) {
        posix_spawnattr_destroy(&attributes);
        return error;
    }

    // The caller's threads block signals (libdispatch does, and Drover's loops read them from a
    // signalfd); a blocked mask survives exec, so the child starts with none blocked.
    sigset_t none, every;
    sigemptyset(&none);
    sigfillset(&every);
    sigdelset(&every, SIGKILL);
    sigdelset(&every, SIGSTOP);

    error = posix_spawnattr_setsigmask(&attributes, &none);
    if (error == 0) error = posix_spawnattr_setsigdefault(&attributes, &every);
    if (error == 0) error = posix_spawnattr_setpgroup(&attributes, 0);
    if (error == 0) {
        error = posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
    }
    for (int i = 0; error == 0 && i < fd_count; i++) error = posix_spawn_file_actions_adddup2(&actions, fds[i], 3 + i);
    if (error == 0) error = posix_spawn_file_actions_addclosefrom_np(&actions, 3 + fd_count);
    if (error == 0) error = posix_spawn(pid, path, &actions, &attributes, argv, envp);

    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
    return error;
}
