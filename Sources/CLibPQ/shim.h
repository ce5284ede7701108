#ifndef DROVER_CLIBPQ_SHIM_H
#define DROVER_CLIBPQ_SHIM_H
// libpq from libpq-dev (pkg-config: libpq). Debian installs the header under /usr/include/postgresql.
#include <libpq-fe.h>
#endif
