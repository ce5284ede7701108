#ifndef DROVER_CSYSTEMD_SHIM_H
#define DROVER_CSYSTEMD_SHIM_H
// libsystemd from libsystemd-dev (pkg-config: libsystemd): sd_notify and the journal.
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>
#endif
