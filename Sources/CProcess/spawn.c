#define _GNU_SOURCE
#include "CProcess.h"

#include <errno.h>
#include <signal.h>
#include <spawn.h>

int drover_spawn(const char *path, char *const argv[], char *const envp[], int fd3, int fd4, pid_t *pid) {
    if (fd3 == 4 || fd4 == 3 || (fd4 >= 0 && fd3 < 0)) return EINVAL;
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
    if (error == 0 && fd3 >= 0) error = posix_spawn_file_actions_adddup2(&actions, fd3, 3);
    if (error == 0 && fd4 >= 0) error = posix_spawn_file_actions_adddup2(&actions, fd4, 4);
    if (error == 0) error = posix_spawn_file_actions_addclosefrom_np(&actions, fd4 >= 0 ? 5 : fd3 >= 0 ? 4 : 3);
    if (error == 0) error = posix_spawn(pid, path, &actions, &attributes, argv, envp);

    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
    return error;
}
