#define _GNU_SOURCE
#include "CTestSupport.h"

#include <sys/resource.h>

int drover_test_set_descriptor_limit(pid_t pid, unsigned long soft, unsigned long *old_soft) {
    struct rlimit old;
    if (prlimit(pid, RLIMIT_NOFILE, NULL, &old) != 0) return -1;
    struct rlimit wanted = {soft, old.rlim_max};
    if (prlimit(pid, RLIMIT_NOFILE, &wanted, NULL) != 0) return -1;
    if (old_soft) *old_soft = old.rlim_cur;
    return 0;
}
